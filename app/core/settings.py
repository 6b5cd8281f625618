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
    db_pool_size: int = 10
    db_max_overflow: int = 10
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
    # Fits stored per policy version (days x horizons), the horizons a caller may ask
    # for besides the policy's own, and how long a request waits for another's fit.
    max_stored_fits: int = 16
    fit_horizons: tuple[int, ...] = (30, 60, 90, 180, 365)
    fit_wait_seconds: float = 20.0
    # Fit today's population model in the background at start and after midnight UTC.
    warm_models: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
