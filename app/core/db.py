"""Engines, sessions and read routing (the request-scoped dependencies on them are in
`app.core.session_deps`)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import greenlet_spawn

from app.core.embedded import start_embedded, to_async_url
from app.core.observability import log
from app.core.settings import Settings

# Named constraints keep Alembic migrations reviewable and reversible.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Keys of `AsyncSession.info` that read sessions carry.
REPLICA = "replica"  # True: the session reads a streaming replica (no writes there)
PRIMARY = "primary"  # the primary's transactional sessionmaker, for the rare write a read needs
# The read session's engine runs each statement on its own (autocommit), so its driver
# connection may be taken straight from the pool (see `_pooled_read`).
POOLED_READS = "pooled_reads"
_HELD = "held_connection"  # the pool connection `_pooled_read` checked out


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def resolve_database_url(settings: Settings) -> str:
    """The configured server, or the embedded one started on demand."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def _connect_args(settings: Settings, *, request_timeouts: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout": settings.db_connect_timeout_seconds}
    if settings.db_pgbouncer:
        # PgBouncer refuses startup parameters it does not know, and a transaction
        # pooler cannot keep session state: timeouts then belong on the role
        # (ALTER ROLE ... SET statement_timeout), and prepared statements get unique
        # names, which PgBouncer >= 1.21 (max_prepared_statements) maps per server.
        args["statement_cache_size"] = 0
        args["prepared_statement_name_func"] = lambda: f"__stratum_{uuid.uuid4().hex}__"
        args["prepared_statement_cache_size"] = 0
        return args
    if request_timeouts:
        settings_ms = {
            "statement_timeout": settings.db_statement_timeout_seconds,
            "lock_timeout": settings.db_lock_timeout_seconds,
        }
        args["server_settings"] = {
            name: str(int(seconds * 1000)) for name, seconds in settings_ms.items()
        }
    return args


def create_engine(url: str, settings: Settings, *, request_timeouts: bool = False) -> AsyncEngine:
    """An engine with bounded waits: connect, pool checkout and, for the service's
    requests (`request_timeouts`), statements and locks. Bulk commands leave the last two
    to the server's own settings."""
    engine = create_async_engine(
        to_async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args=_connect_args(settings, request_timeouts=request_timeouts),
    )
    _drop_unusable_connections(engine)
    return engine


def _drop_unusable_connections(engine: AsyncEngine) -> None:
    """Instead of a ping per checkout: a connection the server closed (restart,
    terminated backend, failover) is already marked closed by the driver, so it is
    replaced here without a round trip. A connection that dies mid-statement is
    invalidated by SQLAlchemy's disconnect handling, with every older one.

    So is one whose BEGIN the driver refused (another operation was still running on
    it): asyncpg then keeps the failed transaction as the connection's outer one, and
    every later BEGIN on it would become a SAVEPOINT outside any transaction."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            raise DisconnectionError("connection closed by the server")
        if getattr(driver, "_top_xact", None) is not None and not driver.is_in_transaction():
            raise DisconnectionError("connection left with a transaction that never began")


def create_sessionmaker(
    engine: AsyncEngine, *, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


_UNAVAILABLE = (
    PoolTimeout,
    OSError,
    asyncpg.PostgresConnectionError,
    # admin shutdown, crash shutdown, "starting up", statement timeout, cancel
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and what it wraps: SQLAlchemy's `orig`, the driver adapter's cause."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot serve right now (answered with a 503),
    as opposed to a bug: unreachable, restarting, shutting down, out of connections,
    or a statement or lock wait over its timeout. The error may come wrapped by
    SQLAlchemy or by the driver adapter (a raw pool connection's errors are)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return any(isinstance(e, _UNAVAILABLE) or is_broken_connection(e) for e in _causes(exc))


def is_broken_connection(exc: BaseException) -> bool:
    """A driver-side error that leaves the connection unusable: closed under it, or
    stuck in an operation that was interrupted (a terminated backend, a cancelled wait)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig.__cause__ or exc.orig
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError)


class ReadRouting:
    """Where lag-tolerant reads go: the replica while it answers, else the primary.

    Read sessions run without an explicit transaction (each statement is its own, one
    round trip), which is what a single-statement read needs.
    """

    def __init__(
        self,
        primary: AsyncEngine,
        replica: AsyncEngine | None,
        *,
        retry_seconds: float,
        autocommit: bool = True,
    ) -> None:
        def reads(engine: AsyncEngine) -> AsyncEngine:
            # Behind a transaction pooler a statement's prepare and execute must share a
            # transaction, or they may land on different server connections.
            return engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine

        self.writes = create_sessionmaker(primary)
        pooled = {POOLED_READS: True} if autocommit else {}
        self.primary = create_sessionmaker(reads(primary), info={PRIMARY: self.writes, **pooled})
        self.replica = (
            None
            if replica is None
            else create_sessionmaker(
                reads(replica), info={PRIMARY: self.writes, REPLICA: True, **pooled}
            )
        )
        self.retry_seconds = retry_seconds
        self._replica_down_until = 0.0

    def replica_usable(self) -> bool:
        return self.replica is not None and self._replica_down_until <= time.monotonic()

    def replica_failed(self) -> None:
        self._replica_down_until = time.monotonic() + self.retry_seconds

    async def _connected(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> AsyncSession | None:
        """A session of `sessionmaker` holding a connection, or None if its server is down."""
        session = sessionmaker()
        try:
            await session.connection()
        except Exception as exc:
            await session.close()
            if not is_unavailable(exc):
                raise
            return None
        return session

    async def open(self) -> AsyncSession:
        """A read session: the replica's, checked out now so that a replica that is down
        sends this request to the primary instead of failing it; else the primary's."""
        if self.replica is None:
            return self.primary()
        if self.replica_usable():
            session = await self._connected(self.replica)
            if session is not None:
                return session
            self.replica_failed()
            return self.primary()
        # The replica failed a moment ago. The primary serves, unless it is the one that
        # is down now: then the replica is tried again before waiting out its pause.
        session = await self._connected(self.primary)
        if session is not None:
            return session
        session = await self._connected(self.replica)
        if session is not None:
            self._replica_down_until = 0.0
            return session
        return self.primary()

    def failed(self, session: AsyncSession, exc: BaseException) -> None:
        if is_replica(session) and is_unavailable(exc):
            self.replica_failed()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        session = await self.open()
        try:
            yield session
        except Exception as exc:
            self.failed(session, exc)
            await drop_if_broken(session, exc)
            raise
        finally:
            await close_session(session)


async def drop_if_broken(session: AsyncSession, exc: BaseException) -> None:
    """After a request failed on the database, its connections are discarded rather than
    handed to the next request: a read without a transaction would not notice an
    interrupted operation on return."""
    if is_unavailable(exc):
        held = session.info.pop(_HELD, None)
        with contextlib.suppress(Exception):
            if held is not None:
                # Closing the driver connection may await it: under the pool's greenlet.
                await greenlet_spawn(held.invalidate)
            await session.invalidate()


async def close_session(session: AsyncSession) -> None:
    """Close a request's session; a connection that cannot even roll back (the server
    went away mid-request) is dropped, not returned to the pool, and the answer the
    request already has stands: closing never turns it into a 500."""
    try:
        held = session.info.pop(_HELD, None)
        if held is not None:
            await _give_back(held)
        await session.close()
    except Exception as exc:
        log.warning("database session closed with an error", exc_type=type(exc).__name__)
        with contextlib.suppress(Exception):
            await session.invalidate()


@asynccontextmanager
async def guarded(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that is dropped when its work failed on the database and whose close
    never raises (see `drop_if_broken` and `close_session`)."""
    session = sessionmaker()
    try:
        yield session
    except Exception as exc:
        await drop_if_broken(session, exc)
        raise
    finally:
        await close_session(session)


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction is committed (metrics, caches)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def is_replica(session: AsyncSession) -> bool:
    return bool(session.info.get(REPLICA))


async def _pooled_read(session: AsyncSession) -> asyncpg.Connection[Any] | None:
    """For a read session whose statements each run on their own, the driver connection
    straight from the engine's pool (its checkout checks still run), held until the
    session closes: no ORM session transaction, which is most of the per-request cost
    of a session's connection. None for any other session."""
    held = session.info.get(_HELD)
    if held is None:
        bind = session.bind
        if not session.info.get(POOLED_READS) or session.in_transaction() or bind is None:
            return None
        assert isinstance(bind, AsyncEngine)
        held = await bind.raw_connection()
        session.info[_HELD] = held
    driver: asyncpg.Connection[Any] = held.driver_connection
    return driver


async def _give_back(held: Any) -> None:
    """Return a pool connection checked out by `_pooled_read` (its reset-on-return may
    await the driver, which needs the pool's greenlet)."""
    await greenlet_spawn(held.close)


async def raw_connection(session: AsyncSession) -> asyncpg.Connection[Any]:
    """The asyncpg connection behind a session, inside the session's transaction.

    Hot paths use it for array parameters and `COPY`, which SQLAlchemy does not expose,
    and for reads that need no ORM objects.
    """
    pooled = await _pooled_read(session)
    if pooled is not None:
        return pooled
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    driver: asyncpg.Connection[Any] = raw.driver_connection
    if adapter.autocommit or driver.is_in_transaction():
        return driver
    # SQLAlchemy begins its transaction lazily, on its own first statement; without one,
    # raw statements would each commit on their own. A bare BEGIN, not a statement.
    start = getattr(adapter, "_start_transaction", None)
    if start is not None:
        try:
            await start()
        except Exception as exc:
            # The adapter's own error type wraps the driver's; raise the driver's, which
            # the problem handlers know.
            raise (exc.__cause__ or exc) from exc
    else:
        await conn.exec_driver_sql("SELECT 1")
    return driver


_DRIVER = "driver_connection"


async def transaction_connection(session: AsyncSession) -> asyncpg.Connection[Any]:
    """`raw_connection`, remembered until the session's transaction ends: a request that
    sends several driver statements looks its connection up once."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_DRIVER)
    if cached is not None and transaction is not None and cached[0] is transaction:
        driver: asyncpg.Connection[Any] = cached[1]
        if driver.is_in_transaction():
            return driver
    driver = await raw_connection(session)
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver
