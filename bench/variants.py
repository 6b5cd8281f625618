"""The service with proposed changes applied in memory, to measure them before anyone edits
app/ (`python -m bench.experiment` runs it beside the unchanged service). The suite's own
figures never use this module.

Variants (comma-separated; the ASGI app `bench.variants:app` reads them from
STRATUM_BENCH_VARIANTS):
  no_pre_ping       the engine without pool_pre_ping (with asyncpg each checkout's ping is
                    three round trips: BEGIN, an empty query, ROLLBACK)
  begin_only        raw_connection() begins the transaction with BEGIN alone instead of
                    SQLAlchemy's BEGIN + `SELECT 1`
  autocommit_reads  GET requests run on an AUTOCOMMIT connection: no BEGIN/ROLLBACK, a
                    one-round-trip ping, nothing extra from raw_connection()
  json_body         POST /v1/events validates the raw body with
                    EventBatch.model_validate_json (pydantic-core parses the JSON; no
                    stdlib json.loads and no second pass over Python objects)
  pool20            20 pooled connections per worker instead of 10 (STRATUM_DB_POOL_SIZE)
  stamp_cache       the population fit's stamp (one query per classification request)
                    remembered for a second per worker, like the policy version
"""

# No `from __future__ import annotations`: FastAPI must see the real types of the
# dependencies defined inside the functions below, which import the app lazily.
import os
from collections.abc import AsyncIterator
from typing import Any

VARIANTS = (
    "no_pre_ping",
    "begin_only",
    "autocommit_reads",
    "json_body",
    "pool20",
    "stamp_cache",
)


def _chosen() -> set[str]:
    names = {v for v in os.environ.get("STRATUM_BENCH_VARIANTS", "").split(",") if v}
    unknown = names - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(sorted(unknown))}")
    return names


def _patch_engine() -> None:
    import app.core.db as db

    original = db.create_engine

    def create_engine(url: str, settings: Any) -> Any:
        engine = original(url, settings)
        engine.sync_engine.pool._pre_ping = False
        return engine

    db.create_engine = create_engine


def _patch_raw_connection() -> None:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncSession

    import app.core.db as db

    async def raw_connection(session: AsyncSession) -> Any:
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        adapter: Any = raw.dbapi_connection
        if not driver.is_in_transaction() and adapter.isolation_level != "autocommit":
            # What SQLAlchemy's first statement would do, without the statement.
            await adapter._start_transaction()
        return driver

    db.raw_connection = raw_connection


def _autocommit_reads(application: Any) -> None:
    from fastapi import Request
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from app.core.session_deps import get_session

    async def session_for(request: Request) -> AsyncIterator[AsyncSession]:
        state = request.app.state
        maker = state.sessionmaker
        if request.method == "GET":
            if not hasattr(state, "autocommit_sessionmaker"):
                state.autocommit_sessionmaker = async_sessionmaker(
                    state.engine.execution_options(isolation_level="AUTOCOMMIT"),
                    expire_on_commit=False,
                )
            maker = state.autocommit_sessionmaker
        async with maker() as session:
            yield session

    application.dependency_overrides[get_session] = session_for


def _json_body() -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from app.core.auth import WriteAccess
    from app.core.session_deps import SessionDep
    from app.events import endpoints, service
    from app.events.schemas import EventBatch, IngestResult

    router = endpoints.router
    router.routes[:] = [
        r
        for r in router.routes
        if not (getattr(r, "path", "") == "/v1/events" and "POST" in getattr(r, "methods", ()))
    ]

    @router.post("/v1/events", response_model=IngestResult)
    async def post_events(request: Request, session: SessionDep, _: WriteAccess) -> IngestResult:
        try:
            batch = EventBatch.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from exc
        return await service.ingest(session, events=batch.events, source="api")


def _stamp_cache() -> None:
    import time

    from app.classification import repository

    original = repository.fit_stamp
    remembered: dict[tuple[Any, ...], tuple[float, Any]] = {}

    async def fit_stamp(session: Any, *, version: int, cutoff: Any, horizon_days: int) -> Any:
        key = (version, cutoff, horizon_days)
        now = time.monotonic()
        hit = remembered.get(key)
        if hit is not None and now - hit[0] < 1.0 and hit[1] is not None:
            return hit[1]
        stamp = await original(session, version=version, cutoff=cutoff, horizon_days=horizon_days)
        remembered[key] = (now, stamp)
        return stamp

    repository.fit_stamp = fit_stamp


def build() -> Any:
    chosen = _chosen()
    # Patches to app.core.db must land before the modules that import from it.
    if "no_pre_ping" in chosen:
        _patch_engine()
    if chosen & {"begin_only", "autocommit_reads"}:
        _patch_raw_connection()
    if "json_body" in chosen:
        _json_body()
    if "stamp_cache" in chosen:
        _stamp_cache()
    from app.main import create_app

    application = create_app()
    if "autocommit_reads" in chosen:
        _autocommit_reads(application)
    return application


# Built lazily: uvicorn's workers import `bench.variants:app`, the runner imports this
# module only for its command line.
def __getattr__(name: str) -> Any:
    if name == "app":
        application = build()
        globals()["app"] = application
        return application
    raise AttributeError(name)
