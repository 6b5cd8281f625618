"""The FastAPI application: routers, problem handlers, middleware and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.apikeys.service import KeyCache
from app.changes.endpoints import router as changes_router
from app.classification.endpoints import router as classification_router
from app.classification.warmup import keep_warm
from app.core import handlers, openapi
from app.core.db import create_engine, create_sessionmaker, resolve_database_url
from app.core.health import router as health_router
from app.core.limits import BodyLimitMiddleware
from app.core.observability import RequestContextMiddleware, configure_logging
from app.core.session_deps import close_databases, open_databases
from app.core.settings import Settings, get_settings
from app.customers.endpoints import router as customers_router
from app.dashboard import warmup as dashboard_warmup
from app.dashboard.endpoints import router as dashboard_router
from app.events.endpoints import router as events_router
from app.jobs.endpoints import router as jobs_router
from app.jobs.worker import Worker
from app.notifications.endpoints import router as notifications_router
from app.policies.endpoints import router as policy_router
from app.segments.endpoints import router as segments_router
from app.webhooks.endpoints import router as webhooks_router

DESCRIPTION = """
Stratum classifies customers: a value tier, a lifecycle stage and a recommended
service strategy, with the reasons and numbers behind them.

Authenticate with `Authorization: Bearer <api key>` (create one with
`python -m app apikey create --name NAME --scopes read,write,admin`). Errors are
RFC 9457 problem details (`application/problem+json`).
"""


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_database_url(settings)
        await open_databases(app, url, settings)
        warmers = (
            [
                asyncio.create_task(keep_warm(app.state.sessionmaker)),
                asyncio.create_task(dashboard_warmup.warm(app.state.sessionmaker)),
            ]
            if settings.warm_models
            else []
        )
        # The worker has its own small pool: background work never starves requests.
        worker_engine = create_engine(url, settings.model_copy(update={"db_pool_size": 4}))
        worker = Worker(create_sessionmaker(worker_engine), settings, database_url=url)
        if settings.worker:
            worker.start()
        try:
            yield
        finally:
            await worker.stop()
            await worker_engine.dispose()
            for warmer in warmers:
                warmer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warmer
            await close_databases(app)

    app = FastAPI(
        title="Stratum",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    handlers.install(app)
    openapi.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    # The hot reads first: routes are matched in order.
    app.include_router(customers_router)
    app.include_router(classification_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    app.include_router(policy_router)
    app.include_router(segments_router)
    app.include_router(dashboard_router)
    app.include_router(jobs_router)
    app.include_router(changes_router)
    app.include_router(notifications_router)
    return app
