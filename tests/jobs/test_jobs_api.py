from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.worker import Worker
from tests.jobs.conftest import eventually, orders


async def _job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_recompute_job_runs_and_reports(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, session: AsyncSession
) -> None:
    await orders(client, admin, "weekly", [3, 10, 17, 24, 31, 38, 45])
    await orders(client, admin, "once", [400])
    response = await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['job_id']}"
    assert job["state"] in ("queued", "running")

    async def finished() -> dict[str, Any] | None:
        body = await _job(client, admin, job["job_id"])
        return body if body["state"] not in ("queued", "running") else None

    done = await eventually(finished)
    assert done["state"] == "succeeded", done
    assert done["error"] is None
    assert done["progress"] == {"done": 2, "total": 2}
    result = done["result"]
    assert result["customers"] == 2
    assert result["as_of"] == done["as_of"].replace("+00:00", "Z")
    assert done["started_at"] <= done["finished_at"]
    listed = await client.get("/v1/customers?stage=churned", headers=admin)
    assert [c["customer_id"] for c in listed.json()["items"]] == ["once"]


async def test_unknown_kind_and_scopes(
    client: httpx.AsyncClient, admin: dict[str, str], reader: dict[str, str]
) -> None:
    bad = await client.post("/v1/jobs", json={"kind": "explode"}, headers=admin)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    forbidden = await client.post("/v1/jobs", json={"kind": "recompute"}, headers=reader)
    assert forbidden.status_code == 403
    missing = await client.get("/v1/jobs/job_999999", headers=reader)
    assert missing.status_code == 404
    nonsense = await client.get("/v1/jobs/whatever", headers=reader)
    assert nonsense.status_code == 404


async def test_list_newest_first_with_cursor_and_cancel(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    # No worker runs here: the jobs stay queued.
    ids = []
    for _ in range(3):
        response = await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)
        ids.append(response.json()["job_id"])
    first = (await client.get("/v1/jobs?limit=2", headers=admin)).json()
    assert [j["job_id"] for j in first["items"]] == [ids[2], ids[1]]
    second = (
        await client.get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert [j["job_id"] for j in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None

    cancelled = await client.delete(f"/v1/jobs/{ids[0]}", headers=admin)
    assert cancelled.status_code == 202
    assert cancelled.json()["state"] == "cancelled"
    again = await client.delete(f"/v1/jobs/{ids[0]}", headers=admin)
    assert again.status_code == 409
    assert again.json()["status"] == 409
    tasks = (await session.execute(text("SELECT count(*) FROM pgqueuer"))).scalar_one()
    assert tasks == 3


async def test_a_cancelled_job_does_nothing_when_its_task_runs(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: Any,
    settings: Any,
    database_url: str,
    session: AsyncSession,
) -> None:
    from tests.jobs.conftest import fast, running_worker

    await orders(client, admin, "weekly", [3, 10, 17])
    job = (await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)).json()
    await client.delete(f"/v1/jobs/{job['job_id']}", headers=admin)
    async with running_worker(fast(settings), database_url):

        async def drained() -> bool:
            left = (await session.execute(text("SELECT count(*) FROM pgqueuer"))).scalar_one()
            await session.rollback()
            return left == 0

        await eventually(drained)
    body = await _job(client, admin, job["job_id"])
    assert body["state"] == "cancelled"
    assert body["started_at"] is None and body["progress"] == {"done": 0, "total": 0}
    ranges = (await session.execute(text("SELECT count(*) FROM job_ranges"))).scalar_one()
    assert ranges == 0
