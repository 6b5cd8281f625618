from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from app.core.db import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.jobs.worker import Worker
from tests.jobs.conftest import eventually, fast, orders, running_worker
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.usefixtures("loopback_allowed")


async def _register(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": events or ["*"], "description": "CRM"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _verified(secret: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every received body, each verified with the endpoint's secret."""
    hook = Webhook(secret)
    bodies = []
    for item in receiver.received:
        payload = hook.verify(item.body, item.headers)
        assert payload["id"] == item.headers["webhook-id"]
        bodies.append(payload)
    return bodies


async def _pending(session: AsyncSession) -> int:
    n = (
        await session.execute(
            text("SELECT count(*) FROM notification_deliveries WHERE state = 'pending'")
        )
    ).scalar_one()
    await session.rollback()
    return int(n)


async def test_every_change_is_delivered_signed_and_in_order(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    session: AsyncSession,
) -> None:
    endpoint = await _register(client, admin, receiver.url)
    await orders(client, admin, "weekly", [3, 10, 17, 24, 31, 38, 45])
    await orders(client, admin, "once", [400])

    async def delivered() -> list[dict[str, Any]] | None:
        got = _verified(endpoint["secret"], receiver)
        return got if len(got) >= 4 and await _pending(session) == 0 else None

    bodies = await eventually(delivered)
    changes = (await client.get("/v1/classification-changes", headers=admin)).json()["items"]
    assert len(changes) == 2
    kinds = sorted((b["data"]["customer_id"], b["type"]) for b in bodies)
    assert kinds == [
        ("once", "customer.stage_changed"),
        ("once", "customer.tier_changed"),
        ("weekly", "customer.stage_changed"),
        ("weekly", "customer.tier_changed"),
    ]
    # One customer's notifications arrive in the order they were written.
    for customer in ("weekly", "once"):
        mine = [b["type"] for b in bodies if b["data"]["customer_id"] == customer]
        assert mine == ["customer.tier_changed", "customer.stage_changed"]
    for body in bodies:
        data = body["data"]
        assert body["id"].startswith("evt_")
        assert data["from"] is None
        change = next(c for c in changes if c["customer_id"] == data["customer_id"])
        assert data["to"] == change["to"]
        assert data["as_of"] == change["as_of"].replace("+00:00", "Z")
        assert data["classification"]["customer_id"] == data["customer_id"]
        assert data["classification"]["tier"]["code"] == data["to"]["tier"]
        assert data["classification"]["stage"]["code"] == data["to"]["stage"]

    # The log shows each attempt with its answer.
    log = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=admin)
    ).json()
    assert len(log["items"]) == 4
    assert {a["status_code"] for a in log["items"]} == {204}
    assert all(a["duration_ms"] >= 0 and a["attempt"] == 1 for a in log["items"])


async def test_a_failing_receiver_gets_it_later_with_the_same_id_and_body(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    session: AsyncSession,
) -> None:
    endpoint = await _register(client, admin, receiver.url, ["customer.tier_changed"])
    log_url = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"

    async def attempts() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await client.get(log_url, headers=admin)).json()["items"]
        return items

    for mode, expect in (("500", "status"), ("hang", "timeout"), ("down", "refused")):
        receiver.received.clear()
        if mode == "down":
            await receiver.stop()
        else:
            receiver.mode = mode
        customer = f"c-{mode}"
        await orders(client, admin, customer, [5, 12])

        async def failed_twice(customer: str = customer) -> list[dict[str, Any]] | None:
            mine = [a for a in await attempts() if a["status_code"] != 204]
            return mine if len(mine) >= 2 else None

        failures = await eventually(failed_twice)
        if expect == "status":
            assert failures[0]["status_code"] == 500
        else:
            assert failures[0]["status_code"] is None and failures[0]["error"]
            if expect == "timeout":
                assert failures[0]["error"] == "timeout"
        if mode == "down":
            await receiver.start()
        receiver.mode = "ok"

        async def arrived() -> list[dict[str, Any]] | None:
            got = _verified(endpoint["secret"], receiver)
            return got if got and await _pending(session) == 0 else None

        [body] = await eventually(arrived)
        assert body["type"] == "customer.tier_changed"
        assert body["data"]["customer_id"] == customer
        # The same event id on every attempt; each attempt signed afresh.
        ids = {a["event_id"] for a in await attempts() if a["type"] == body["type"]}
        assert body["id"] in ids
        retries = [a for a in await attempts() if a["event_id"] == body["id"]]
        assert sorted(a["attempt"] for a in retries)[-1] >= 3
        await session.execute(text("DELETE FROM delivery_attempts"))
        await session.commit()


async def test_a_service_stopped_mid_delivery_delivers_after_restart(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    app: Any,
    settings: Settings,
    database_url: str,
    session: AsyncSession,
) -> None:
    endpoint = await _register(client, admin, receiver.url, ["customer.stage_changed"])
    receiver.mode = "hang"
    quick = fast(settings, delivery_timeout_seconds=30.0, delivery_lease_seconds=1.0)
    # The first worker has its own engine, like a separate process, and is cut off hard.
    engine = create_engine(database_url, settings)
    first = Worker(create_sessionmaker(engine), quick, database_url=database_url)
    first.start()
    await orders(client, admin, "mid-flight", [5, 12])

    async def in_flight() -> bool:
        return receiver.requests > 0

    await eventually(in_flight)
    await first.stop(grace=0)  # stopped while the receiver holds the request open
    await engine.dispose()
    assert receiver.received == []
    receiver.mode = "ok"
    async with running_worker(quick, database_url):

        async def arrived() -> list[dict[str, Any]] | None:
            got = _verified(endpoint["secret"], receiver)
            return got if got and await _pending(session) == 0 else None

        [body] = await eventually(arrived)
    assert body["data"]["customer_id"] == "mid-flight"


async def test_nothing_is_delivered_for_a_customer_erased_before_delivery(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    session: AsyncSession,
) -> None:
    endpoint = await _register(client, admin, receiver.url)
    await receiver.stop()
    await orders(client, admin, "forget-me", [5, 12])

    async def queued() -> bool:
        return await _pending(session) >= 2

    await eventually(queued)
    assert (await client.delete("/v1/customers/forget-me", headers=admin)).status_code == 204
    assert await _pending(session) == 0
    await receiver.start()
    await orders(client, admin, "keep-me", [5, 12])

    async def delivered() -> list[dict[str, Any]] | None:
        got = _verified(endpoint["secret"], receiver)
        return got if len(got) >= 2 and await _pending(session) == 0 else None

    bodies = await eventually(delivered)
    assert {b["data"]["customer_id"] for b in bodies} == {"keep-me"}
    left = (
        await session.execute(
            text(
                "SELECT count(*) FROM notifications n JOIN customers c ON c.id = n.customer_id "
                "WHERE c.external_id = 'forget-me'"
            )
        )
    ).scalar_one()
    assert left == 0
    assert "forget-me" not in json.dumps(
        (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=admin)
        ).json()
    )


async def test_segment_entered_and_exited_are_notified(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    session: AsyncSession,
) -> None:
    segment = {
        "key": "newcomers",
        "name": "Newcomers",
        "rule": {"field": "stage", "op": "eq", "value": "new"},
    }
    assert (await client.post("/v1/segments", json=segment, headers=admin)).status_code == 201
    endpoint = await _register(client, admin, receiver.url, ["segment.entered", "segment.exited"])
    await orders(client, admin, "fresh", [1])

    async def entered() -> list[dict[str, Any]] | None:
        got = _verified(endpoint["secret"], receiver)
        return got if got else None

    [first] = await eventually(entered)
    assert first["type"] == "segment.entered"
    assert first["data"]["customer_id"] == "fresh" and first["data"]["segment"] == "newcomers"
    assert first["data"]["as_of"].endswith("Z")

    await orders(client, admin, "fresh", [30, 60, 90])

    async def exited() -> list[dict[str, Any]] | None:
        got = _verified(endpoint["secret"], receiver)
        return got if len(got) >= 2 else None

    bodies = await eventually(exited)
    assert [b["type"] for b in bodies] == ["segment.entered", "segment.exited"]


async def test_a_failed_attempt_is_raised_only_once_the_others_have_finished(
    app: Any,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's recovery from a failed round (dropping pooled connections) must not
    run while other attempts of the round are still recording their outcome."""
    import asyncio

    from app.jobs import incremental
    from app.notifications import delivery

    await _register(client, admin, receiver.url)
    await orders(client, admin, "first", [3, 10])
    await orders(client, admin, "second", [4, 11])
    await incremental.run_once(app.state.sessionmaker, batch=100)
    finished: list[int] = []
    calls: list[int] = []

    async def attempt(*args: Any) -> bool:
        row = args[3]
        calls.append(row["id"])
        if len(calls) == 1:
            raise RuntimeError("the first attempt fails at once")
        await asyncio.sleep(0.05)
        finished.append(row["id"])
        return True

    monkeypatch.setattr(delivery, "_attempt", attempt)
    async with httpx.AsyncClient() as outbound:
        with pytest.raises(RuntimeError):
            await delivery.deliver_once(app.state.sessionmaker, outbound, fast(settings))
    assert len(calls) >= 2
    assert sorted(finished) == sorted(calls[1:])
