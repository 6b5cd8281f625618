"""One place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "stratum"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STRATUM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # The contract names DATABASE_URL without the prefix, like every PostgreSQL tool does.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "STRATUM_DATABASE_URL")
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    webhook_secret: SecretStr | None = None
    webhook_tolerance_seconds: int = 300
    max_body_bytes: int = 8 * 1024 * 1024
    # Connections are kept, not opened and closed under load (a PostgreSQL backend
    # each); the few overflow ones are headroom for a request that needs a second one
    # (a population fit on the primary while a read holds its connection).
    db_pool_size: int = 20
    db_max_overflow: int = 5
    # Bounded waits: a request that cannot get a connection, or whose statement or lock
    # wait runs over, gets a 503 with Retry-After instead of hanging (0 disables the
    # statement and lock timeouts).
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 30.0
    db_lock_timeout_seconds: float = 10.0
    # DATABASE_URL is a PgBouncer in transaction pooling mode (no startup parameters, no
    # named prepared statements kept across transactions).
    db_pgbouncer: bool = False
    # A streaming replica of DATABASE_URL for reads that tolerate a little lag.
    read_replica_url: str | None = None
    # After a replica fails, reads go to the primary for this long before it is tried again.
    replica_retry_seconds: float = 5.0
    log_level: str = "INFO"
    log_json: bool = True
    api_key_cache_seconds: float = 5.0
    # Keys the hashes that remember erased customer ids (HMAC-SHA256). Changing it forgets
    # every erasure made before, so set it once per installation.
    erasure_key: SecretStr = SecretStr("stratum-erasure-v1")
    # The horizons a caller may ask for besides the policy's own (each is a fit of its
    # own), and how long a request waits for another's fit before a 503.
    fit_horizons: tuple[int, ...] = (30, 60, 90, 180, 365)
    fit_wait_seconds: float = 20.0
    # Fit today's population model in the background at start and after midnight UTC.
    warm_models: bool = True
    # Jobs, schedules, incremental re-classification and notification delivery run in
    # every service process unless turned off (then run `python -m app worker`).
    worker: bool = True
    worker_poll_seconds: float = 2.0
    job_heartbeat_seconds: float = 60.0
    recompute_chunk: int = 50_000
    incremental_batch: int = 5000
    incremental_interval_seconds: float = 5.0
    # Re-classification waits until ingest has paused this long (a customer marked by
    # many batches is then classified once, not per batch), but never keeps a mark
    # waiting longer than the max delay, so a customer is current within a minute even
    # under sustained ingest.
    incremental_settle_seconds: float = 2.0
    incremental_max_delay_seconds: float = 20.0
    # Late events (before today) delete today's population fit; re-classification keeps
    # using the model it had for this long before it refits (a fit costs seconds of CPU,
    # and a backfill would otherwise cause one every round).
    incremental_fit_reuse_seconds: float = 60.0
    schedules: bool = True
    schedule_check_seconds: float = 30.0
    delivery_interval_seconds: float = 1.0
    delivery_batch: int = 50
    delivery_timeout_seconds: float = 10.0
    delivery_backoff_first_seconds: float = 5.0
    delivery_backoff_max_seconds: float = 600.0
    delivery_retry_for_seconds: float = 4 * 24 * 3600.0
    delivery_lease_seconds: float = 60.0
    metrics_interval_seconds: float = 15.0
    outbound_allow_private_networks: bool = False
    # Seals webhook endpoint secrets at rest; unset: a key file under data_dir.
    secret_key: SecretStr | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
