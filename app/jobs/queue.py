"""The job queue: pgqueuer's tables in the service's own PostgreSQL.

Tasks are enqueued on the caller's connection, inside its transaction, so a job row and
its first task commit together (or not at all). Each worker process dequeues with its own
connection; a task whose worker died is picked again once its heartbeat is stale.
"""

from __future__ import annotations

from typing import Any

import orjson
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection

PLAN = "stratum.recompute.plan"
RANGE = "stratum.recompute.range"
ENTRYPOINTS = (PLAN, RANGE)


def queries_on(connection: Any) -> Queries:
    return Queries(AsyncpgDriver(connection))


async def enqueue(session: AsyncSession, entrypoint: str, payloads: list[dict[str, Any]]) -> None:
    """Add tasks in the session's transaction; they become visible when it commits."""
    if not payloads:
        return
    queries = queries_on(await raw_connection(session))
    await queries.enqueue(
        [entrypoint] * len(payloads),
        [orjson.dumps(p) for p in payloads],
        [0] * len(payloads),
    )


async def depth(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Tasks by (entrypoint, status) that are still queued or picked."""
    conn = await raw_connection(session)
    rows = await conn.fetch(
        "SELECT entrypoint, status::text AS status, count(*) AS n FROM pgqueuer "
        "WHERE status IN ('queued', 'picked') GROUP BY entrypoint, status"
    )
    return {(r["entrypoint"], r["status"]): int(r["n"]) for r in rows}
