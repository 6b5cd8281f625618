"""The embedded PostgreSQL a new user gets when no DATABASE_URL is set."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, *, cleanup: str = "stop") -> str:
    """Start (or attach to) the embedded server under `data_dir`; return a libpq URL.

    The server is stopped when the last process holding a handle exits, so data
    survives restarts while nothing is left running.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = pgserver.get_server(data_dir / "pgdata", cleanup_mode=cleanup)
    uri: str = server.get_uri()
    log.info("embedded PostgreSQL ready", extra={"pgdata": str(data_dir / "pgdata")})
    return uri


def to_async_url(url: str) -> str:
    """Turn any postgres:// URL into the SQLAlchemy asyncpg dialect's form."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql://")
