"""The outside baseline: a minimal FastAPI + asyncpg app doing the primary-key read of
`GET /v1/customers/{id}` (the customer row and its stored classification), and nothing
else: no auth, no ORM, no middleware. Served like the service:

    python -m bench.serve bench.bare_app:app --port 8001 --workers 1   # DATABASE_URL set
"""

import os
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, HTTPException

ONE = (
    "SELECT c.*, k.tier, k.stage, k.tier_score FROM customers c"
    " LEFT JOIN classifications k ON k.customer_id = c.id WHERE c.external_id = $1"
)
MANY = "SELECT id, external_id, country FROM customers WHERE external_id = ANY($1::text[])"


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], max_size=10)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.get("/bare/customers/{customer_id}")
async def one(customer_id: str) -> dict[str, object]:
    row = await app.state.pool.fetchrow(ONE, customer_id)
    if row is None:
        raise HTTPException(404)
    return dict(row)


@app.post("/bare/batch")
async def many(body: dict[str, list[str]]) -> dict[str, object]:
    return {"items": [dict(r) for r in await app.state.pool.fetch(MANY, body["customer_ids"])]}
