from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.core.db import (
    close_session,
    create_engine,
    create_sessionmaker,
    drop_if_broken,
    raw_connection,
)


async def test_a_read_holds_one_pool_connection_until_it_closes(app: Any) -> None:
    routing = app.state.reads
    pool = app.state.engine.sync_engine.pool
    session = routing.primary()
    first = await raw_connection(session)
    assert await first.fetchval("SELECT 1") == 1
    # Every raw statement of the read runs on the same connection.
    assert await raw_connection(session) is first
    assert pool.checkedout() == 1
    await close_session(session)
    assert pool.checkedout() == 0
    assert not first.is_closed()


async def test_a_broken_read_drops_its_connection(app: Any) -> None:
    routing = app.state.reads
    pool = app.state.engine.sync_engine.pool
    session = routing.primary()
    driver = await raw_connection(session)
    # As after a failover: the connection is discarded, never handed to the next read.
    await drop_if_broken(session, ConnectionResetError("server went away"))
    await close_session(session)
    assert pool.checkedout() == 0
    assert driver.is_closed()


def _adapter_error(cause: BaseException) -> BaseException:
    """What a raw pool connection raises: the driver adapter's error, caused by asyncpg's."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    try:
        raise AsyncAdapt_asyncpg_dbapi.Error(str(cause)) from cause
    except AsyncAdapt_asyncpg_dbapi.Error as exc:
        return exc


def test_an_outage_is_recognised_however_it_is_wrapped() -> None:
    import asyncpg
    from sqlalchemy.exc import OperationalError

    from app.core.db import is_unavailable

    shutting_down = asyncpg.exceptions.CannotConnectNowError("the database is shutting down")
    assert is_unavailable(shutting_down)
    assert is_unavailable(_adapter_error(shutting_down))
    wrapped = OperationalError("SELECT 1", {}, _adapter_error(shutting_down))
    assert is_unavailable(wrapped)
    assert is_unavailable(_adapter_error(ConnectionRefusedError(111, "refused")))
    # A bug is not an outage, wrapped or not.
    assert not is_unavailable(ValueError("a bug"))
    assert not is_unavailable(_adapter_error(asyncpg.exceptions.UndefinedColumnError("x")))


async def test_reads_go_to_a_replica_marked_down_when_the_primary_is_down(app: Any) -> None:
    from app.core.db import ReadRouting, create_engine, is_replica
    from app.core.settings import Settings

    # A primary nobody answers on, and a "replica" that works but failed a moment ago.
    settings = Settings(db_connect_timeout_seconds=1)
    down = create_engine("postgresql://postgres@127.0.0.1:9/nowhere", settings)
    routing = ReadRouting(down, app.state.engine, retry_seconds=3600)
    routing.replica_failed()
    assert not routing.replica_usable()
    try:
        session = await routing.open()
        try:
            assert is_replica(session)
            assert await raw_connection(session) is not None
        finally:
            await close_session(session)
        # Found working again: the next read goes there directly.
        assert routing.replica_usable()
    finally:
        await down.dispose()


async def test_a_connection_whose_begin_failed_is_not_reused(
    settings: Any, database_url: str
) -> None:
    """A BEGIN refused by the driver (another operation still running on the connection,
    as after an interrupted statement) leaves asyncpg believing a transaction is open;
    the next session on that connection would then send SAVEPOINT outside any
    transaction. The pool hands out a fresh connection instead."""
    engine = create_engine(database_url, settings.model_copy(update={"db_pool_size": 1}))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            conn = await session.connection()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            running = asyncio.ensure_future(driver.fetchval("SELECT pg_sleep(0.2)"))
            await asyncio.sleep(0.05)
            with pytest.raises(Exception, match="another operation is in progress"):
                await raw.dbapi_connection._start_transaction()
            await asyncio.gather(running, return_exceptions=True)
        async with sessionmaker() as session:
            assert await (await raw_connection(session)).fetchval("SELECT 1") == 1
            await session.commit()
        assert driver.is_closed()
    finally:
        await engine.dispose()
