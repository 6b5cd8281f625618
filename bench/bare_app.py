"""The ceiling: the service's stack (uvicorn with the same settings, FastAPI, the app's own
engine and request session, asyncpg) doing one primary-key SELECT per request and nothing
else: no auth, no service layer, no schema.

    python -m bench.serve bench.bare_app:app --port 8001 --workers 2   # DATABASE_URL set
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import text

from app.core.db import SessionDep, create_engine, create_sessionmaker
from app.core.settings import get_settings

_ONE = text("SELECT id, external_id, country, customer_type FROM customers WHERE external_id = :id")
_MANY = text(
    "SELECT id, external_id, country, customer_type FROM customers "
    "WHERE external_id = ANY(CAST(:ids AS text[]))"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("the bare app needs DATABASE_URL")
    app.state.engine = create_engine(settings.database_url, settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.get("/bare/customers/{customer_id}")
async def one(customer_id: str, session: SessionDep) -> dict[str, Any]:
    row = (await session.execute(_ONE, {"id": customer_id})).first()
    if row is None:
        raise HTTPException(404)
    return {
        "customer_id": row.external_id,
        "country": row.country,
        "customer_type": row.customer_type,
    }


class Batch(BaseModel):
    customer_ids: list[str]


@app.post("/bare/batch")
async def many(body: Batch, session: SessionDep) -> dict[str, Any]:
    rows = (await session.execute(_MANY, {"ids": body.customer_ids})).all()
    return {
        "items": [
            {"customer_id": r.external_id, "country": r.country, "customer_type": r.customer_type}
            for r in rows
        ]
    }
