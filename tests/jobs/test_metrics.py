from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs import backlog


def _value(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_backlogs_show_in_metrics(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, app: Any
) -> None:
    # Queued jobs and marked customers, with no worker to take them yet.
    for _ in range(2):
        await client.post("/v1/jobs", json={"kind": "recompute"}, headers=admin)
    await session.execute(text("INSERT INTO customers (external_id) VALUES ('m1'), ('m2')"))
    await session.execute(
        text("INSERT INTO dirty_customers (customer_id) SELECT id FROM customers")
    )
    await session.commit()
    await backlog.refresh(app.state.sessionmaker)
    text_ = (await client.get("/metrics")).text
    assert (
        _value(text_, 'stratum_queue_tasks{entrypoint="stratum.recompute.plan",status="queued"}')
        == 2
    )
    assert _value(text_, 'stratum_jobs{state="queued"}') == 2
    assert _value(text_, "stratum_incremental_backlog") == 2
    assert _value(text_, "stratum_outbox_pending") == 0
    for name in ("stratum_job_duration_seconds", "stratum_webhook_deliveries_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in text_, name
