"""The baseline: the same server stack (uvicorn, FastAPI, SQLAlchemy async, asyncpg) doing
one primary-key SELECT per request and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from app.core.db import create_engine, create_sessionmaker
from app.core.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    assert settings.database_url
    app.state.engine = create_engine(settings.database_url, settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.get("/bare/{customer_id}")
async def bare(customer_id: str) -> dict[str, object]:
    async with app.state.sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT id, external_id, country FROM customers WHERE external_id = :id"),
                {"id": customer_id},
            )
        ).one()
    return {"id": row.id, "customer_id": row.external_id, "country": row.country}
