"""Alembic environment: async, against the URL the application resolves."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.embedded import to_async_url
from app.models import Base

# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK = 4_170_001

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to Alembic")
    engine = create_async_engine(to_async_url(url))
    async with engine.connect() as connection:
        # Several workers may start at once: one migrates, the others wait, then see
        # nothing left to do.
        await connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        await connection.commit()
        try:
            await connection.run_sync(_run)
            await connection.commit()
        finally:
            await connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported")

asyncio.run(_run_online())
