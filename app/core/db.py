"""Engine, sessions and the request-scoped session dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.embedded import start_embedded, to_async_url
from app.core.settings import Settings

# Named constraints keep Alembic migrations reviewable and reversible.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def resolve_database_url(settings: Settings) -> str:
    """The configured server, or the embedded one started on demand."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        to_async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # A server that went away and came back is found out here, not by a 500.
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and one transaction per request: committed once the endpoint returned,
    rolled back on any error. Services only flush."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        # A failed commit raises here, before the response exists, so it becomes an
        # error answer: a 2xx always means the work is stored.
        await session.commit()
        for callback in session.info.pop(AFTER_COMMIT, ()):
            callback()


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction is committed (metrics, caches)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


# scope="function": the exit code runs when the endpoint returns, before the response is
# sent (FastAPI >= 0.118 otherwise runs it after sending).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def raw_connection(session: AsyncSession) -> asyncpg.Connection[Any]:
    """The asyncpg connection behind a session, inside the session's transaction.

    Hot paths use it for array parameters and `COPY`, which SQLAlchemy does not expose.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection[Any] = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy begins its transaction lazily, on its own first statement; without
        # one, raw statements would each commit on their own.
        await conn.exec_driver_sql("SELECT 1")
    return driver
