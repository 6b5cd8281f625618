"""Apply Alembic migrations from code (CLI `migrate`, `serve` start-up, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from app.core.embedded import to_async_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# The newest revision in MIGRATIONS_DIR (a test holds it to Alembic's own answer). Every
# command checks the schema against it with one query: loading Alembic and its scripts
# to ask would cost a short command a quarter of a second.
HEAD = "0012_classifications_no_fk"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision; safe when several processes race."""
    # A schema already at the newest revision is the usual case: one query tells, where
    # Alembic's environment (the models, an engine, the migration lock) takes about half
    # a second.
    if _stored_revisions(database_url) == {HEAD}:
        return
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def _stored_revisions(database_url: str) -> set[str] | None:
    """The revisions the database records, or None when it cannot tell (no table yet,
    or no connection: Alembic then reports that as it always does)."""

    async def read(dsn: str) -> set[str]:
        # No named statements: the URL may point at PgBouncer in transaction mode.
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            rows = await conn.fetch("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()
        return {r["version_num"] for r in rows}

    try:
        dsn = "postgresql://" + to_async_url(database_url).removeprefix("postgresql+asyncpg://")
        return asyncio.run(read(dsn))
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
