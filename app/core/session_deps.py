"""The request-scoped session dependencies, and the service's engines on `app.state`.

Apart from `app.core.db` so that the command line (import, recompute, worker) does not
load the web framework to reach the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import (
    AFTER_COMMIT,
    ReadRouting,
    create_engine,
    guarded,
)
from app.core.settings import Settings


async def open_databases(app: FastAPI, url: str, settings: Settings) -> None:
    """The engines and sessionmakers of the service, on `app.state`."""
    app.state.engine = create_engine(url, settings, request_timeouts=True)
    app.state.replica_engine = (
        create_engine(settings.read_replica_url, settings, request_timeouts=True)
        if settings.read_replica_url
        else None
    )
    app.state.reads = ReadRouting(
        app.state.engine,
        app.state.replica_engine,
        retry_seconds=settings.replica_retry_seconds,
        autocommit=not settings.db_pgbouncer,
    )
    app.state.sessionmaker = app.state.reads.writes


async def close_databases(app: FastAPI) -> None:
    if app.state.replica_engine is not None:
        await app.state.replica_engine.dispose()
    await app.state.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and one transaction per request: committed once the endpoint returned,
    rolled back on any error. Services only flush."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with guarded(sessionmaker) as session:
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


# scope="function": the exit code runs when the endpoint returns, before the response is
# sent (FastAPI >= 0.118 otherwise runs it after sending).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads that tolerate a little replication lag (see ReadRouting)."""
    routing: ReadRouting = request.app.state.reads
    async with routing.session() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
