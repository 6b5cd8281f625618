from __future__ import annotations

from typing import Any

from app.core.db import close_session, drop_if_broken, raw_connection


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
