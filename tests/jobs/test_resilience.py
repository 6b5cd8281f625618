from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import recompute
from app.core.settings import Settings
from app.jobs.worker import Worker
from tests.jobs.conftest import eventually, fast, orders, running_worker


async def test_a_range_whose_connection_dies_mid_chunk_runs_again(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    app: Any,
    settings: Settings,
    database_url: str,
) -> None:
    for i in range(6):
        await orders(client, admin, f"c{i}", [3 + i, 30 + i])
    # Classified and stored in the transaction, then the server ends the connection
    # before the commit: the range must run again, and count once.
    original = recompute.run_range
    calls: list[tuple[int, int]] = []

    async def dying(session: AsyncSession, plan: Any, *, after: int, upto: int) -> Any:
        first = not calls  # ranges run concurrently: decide before awaiting
        calls.append((after, upto))
        result = await original(session, plan, after=after, upto=upto)
        if first:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return result

    monkeypatch.setattr(recompute, "run_range", dying)
    await session.execute(text("DELETE FROM dirty_customers"))
    await session.commit()
    # Two customers per range; only the job classifies.
    quiet = fast(settings, recompute_chunk=2, incremental_interval_seconds=3600)
    async with running_worker(quiet, database_url):
        job = (await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)).json()

        async def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await client.get(f"/v1/jobs/{job['job_id']}", headers=admin)
            ).json()
            return body if body["state"] not in ("queued", "running") else None

        done = await eventually(finished)
    assert done["state"] == "succeeded", done
    assert done["result"]["customers"] == 6
    assert done["result"]["tier_changed"] == 6
    assert done["progress"] == {"done": 6, "total": 6}
    assert calls.count(calls[0]) == 2  # the chunk cut off ran again
    assert len(calls) == 4  # three ranges, one of them twice
    stored = (await session.execute(text("SELECT count(*) FROM classifications"))).scalar_one()
    changes = (
        await session.execute(text("SELECT count(*) FROM classification_changes"))
    ).scalar_one()
    assert (stored, changes) == (6, 6)


async def test_a_failed_job_says_why_as_a_problem(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    worker: Worker,
) -> None:
    await orders(client, admin, "c1", [3, 30])

    async def broken(session: AsyncSession, plan: Any, *, after: int, upto: int) -> Any:
        raise ZeroDivisionError("the engine divided by zero")

    monkeypatch.setattr(recompute, "run_range", broken)
    job = (await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)).json()

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/v1/jobs/{job['job_id']}", headers=admin)).json()
        return body if body["state"] not in ("queued", "running") else None

    done = await eventually(finished)
    assert done["state"] == "failed"
    assert done["result"] is None and done["finished_at"] is not None
    error = done["error"]
    assert set(error) == {"type", "title", "status", "detail"}
    assert error["type"].endswith("/job-failed") and error["status"] == 500
    assert error["detail"] == "ZeroDivisionError: the engine divided by zero"
    assert (await client.delete(f"/v1/jobs/{job['job_id']}", headers=admin)).status_code == 409
