"""After DELETE /v1/customers/{id} nothing of theirs remains, and no replay brings it back."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import service as customers
from app.events import importer
from app.events import service as events
from app.events.importer import import_file
from app.events.schemas import EventIn
from tests.hostile.support import PROBLEM, order, rows_mentioning, signed

PERSONAL = {"name": "Wang Fang", "email": "wang.fang@example.cn", "phone": "+86 10 1234 5678"}
NEEDLES = ["Wang Fang", "wang.fang", "8610123456", "cust-erased", "o-erased"]


async def _history(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, object]]:
    put = await client.put("/v1/customers/cust-erased", json=PERSONAL, headers=headers)
    assert put.status_code == 201
    events = [
        order(f"o-erased-{i}", "cust-erased", occurred_at=f"2026-0{i}-01T10:00:00Z")
        for i in range(1, 4)
    ]
    posted = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert posted.json() == {"accepted": 3, "duplicates": 0}
    body, hook_headers = signed(
        order("o-erased-hook", "cust-erased", customer={"name": "Wang Fang"}), msg_id="msg_a"
    )
    hook = await client.post("/v1/webhooks/orders", content=body, headers=hook_headers)
    assert hook.json() == {"accepted": 1, "duplicates": 0}
    return events


async def _fits(session: AsyncSession, *cutoffs: str) -> None:
    for cutoff in cutoffs:
        await session.execute(
            text(
                "INSERT INTO population_fits (policy_version, cutoff, horizon_days, model)"
                " VALUES (1, CAST(CAST(:cutoff AS text) AS timestamptz), 180, '{}')"
            ),
            {"cutoff": cutoff},
        )
    await session.commit()


async def test_erasure_leaves_nothing_in_any_table(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    await client.put("/v1/customers/someone-else", json={"name": "Li Lei"}, headers=admin)
    # A fit made before their first order never saw them; one made after did.
    await _fits(session, "2025-12-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert await rows_mentioning(session, "wang.fang")
    assert (await client.delete("/v1/customers/cust-erased", headers=admin)).status_code == 204
    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle
    cutoffs = (
        await session.execute(text("SELECT cutoff::date::text FROM population_fits"))
    ).scalars()
    assert list(cutoffs) == ["2025-12-01"]
    assert await rows_mentioning(session, "Li Lei") == {"customers": 1}


async def test_replays_do_not_restore_an_erased_history(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, tmp_path: Path
) -> None:
    events = await _history(client, admin)
    assert (await client.delete("/v1/customers/cust-erased", headers=admin)).status_code == 204

    # A CRM re-sync of the same batch, with one event of another customer.
    replay = await client.post(
        "/v1/events", json={"events": [*events, order("o-other", "c-other")]}, headers=admin
    )
    assert replay.status_code == 200
    result = replay.json()
    assert (result["accepted"], result["duplicates"]) == (1, 0)
    assert [s["index"] for s in result["skipped"]] == [0, 1, 2]
    assert all("erased" in s["reason"] for s in result["skipped"])

    # A webhook re-delivery under a new id, with the customer's fields.
    body, headers = signed(
        order("o-erased-hook", "cust-erased", customer=PERSONAL), msg_id="msg_new"
    )
    hook = await client.post("/v1/webhooks/orders", content=body, headers=headers)
    assert hook.status_code == 200
    assert hook.json()["accepted"] == 0
    assert hook.json()["skipped"][0]["event_id"] == "o-erased-hook"

    # The same import file.
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    rejected: list[tuple[int, str]] = []
    summary = await import_file(
        session, path=path, kind=None, reject=lambda line, why: rejected.append((line, why))
    )
    assert summary.imported == 0

    # A customer import of their record.
    customers = tmp_path / "customers.jsonl"
    customers.write_bytes(orjson.dumps({"customer_id": "cust-erased", **PERSONAL}))
    await import_file(session, path=customers, kind="customers", reject=lambda line, why: None)

    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle
    gone = await client.get("/v1/customers/cust-erased", headers=admin)
    assert gone.status_code == 404


async def test_an_erased_customer_comes_back_only_when_restored(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    await client.delete("/v1/customers/cust-erased", headers=admin)
    again = await client.put("/v1/customers/cust-erased", json=PERSONAL, headers=admin)
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["errors"] == [{"field": "customer_id", "message": "was erased"}]
    assert await rows_mentioning(session, "wang.fang") == {}

    restored = await client.put(
        "/v1/customers/cust-erased", params={"restore": "true"}, json=PERSONAL, headers=admin
    )
    assert restored.status_code == 201
    assert restored.json()["name"] == "Wang Fang"
    posted = await client.post(
        "/v1/events", json={"events": [order("o-new", "cust-erased")]}, headers=admin
    )
    assert posted.json() == {"accepted": 1, "duplicates": 0}
    erasures = await session.execute(text("SELECT count(*) FROM erasures"))
    assert erasures.scalar_one() == 0


async def test_erasure_is_stored_as_a_keyed_hash_only(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await client.put("/v1/customers/cust-erased", json=PERSONAL, headers=admin)
    await client.delete("/v1/customers/cust-erased", headers=admin)
    stored = (await session.execute(text("SELECT subject FROM erasures"))).scalars().all()
    assert len(stored) == 1
    assert bytes(stored[0]) != hashlib.sha256(b"cust-erased").digest()
    assert len(bytes(stored[0])) == 32


async def test_a_batch_racing_an_erasure_skips_the_erased_customer(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    async with app.state.sessionmaker() as erasing:
        await customers.erase(erasing, customer_id="cust-erased")
        # This batch finds the customer still there, then waits on the erasing transaction.
        batch = [order("o-erased-new", "cust-erased"), order("o-kept", "c-kept")]
        posting = asyncio.create_task(
            client.post("/v1/events", json={"events": batch}, headers=admin)
        )
        await asyncio.sleep(0.5)
        await erasing.commit()
    response = await posting
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [s["event_id"] for s in response.json()["skipped"]] == ["o-erased-new"]
    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle


async def test_an_import_racing_an_erasure_rejects_the_erased_customers_rows(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path
) -> None:
    await _history(client, admin)
    path = tmp_path / "events.jsonl"
    rows = [order("o-kept-import", "c-kept"), order("o-erased-import", "cust-erased")]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    rejected: list[tuple[int, str]] = []
    async with app.state.sessionmaker() as erasing, app.state.sessionmaker() as importing:
        await customers.erase(erasing, customer_id="cust-erased")
        # The import finds the customer still there, then waits on the erasing transaction.
        loading = asyncio.create_task(
            import_file(
                importing, path=path, kind=None, reject=lambda n, why: rejected.append((n, why))
            )
        )
        await asyncio.sleep(0.5)
        await erasing.commit()
        summary = await loading
    assert (summary.imported, summary.duplicates, summary.rejected) == (1, 0, 1)
    assert rejected == [(2, events.ERASED_REASON)]
    for needle in NEEDLES:
        async with app.state.sessionmaker() as session:
            assert await rows_mentioning(session, needle) == {}, needle


async def test_an_erasure_waiting_on_a_batch_takes_the_batchs_events_too(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    async with app.state.sessionmaker() as posting:
        # The batch has locked the customer's row to store its event, uncommitted...
        stored = await events.store(
            posting, events=[EventIn.model_validate(order("o-erased-mid", "cust-erased"))]
        )
        assert stored.accepted == 1
        erasing = asyncio.create_task(client.delete("/v1/customers/cust-erased", headers=admin))
        await asyncio.sleep(0.5)
        # ...so the erasure waits for it, then sees the event it committed.
        assert not erasing.done()
        await posting.commit()
    assert (await erasing).status_code == 204
    orphans = await session.execute(
        text(
            "SELECT count(*) FROM events e"
            " WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = e.customer_id)"
        )
    )
    assert orphans.scalar_one() == 0
    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle


async def test_a_delivery_racing_an_erasure_is_skipped_and_records_nothing(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    async with app.state.sessionmaker() as erasing:
        await customers.erase(erasing, customer_id="cust-erased")
        # The delivery finds the customer still there, then waits on the erasing transaction.
        body, headers = signed(
            order("o-erased-late", "cust-erased", customer={"name": "Wang Fang"}), msg_id="msg_z"
        )
        delivering = asyncio.create_task(
            client.post("/v1/webhooks/orders", content=body, headers=headers)
        )
        await asyncio.sleep(0.5)
        await erasing.commit()
    response = await delivering
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 0
    assert [s["event_id"] for s in response.json()["skipped"]] == ["o-erased-late"]
    for needle in [*NEEDLES, "msg_z"]:
        assert await rows_mentioning(session, needle) == {}, needle


async def test_a_put_racing_an_erasure_does_not_register_the_customer_again(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _history(client, admin)
    async with app.state.sessionmaker() as erasing:
        await customers.erase(erasing, customer_id="cust-erased")
        # The PUT finds no erasure yet, then waits on the erasing transaction's row.
        putting = asyncio.create_task(
            client.put("/v1/customers/cust-erased", json=PERSONAL, headers=admin)
        )
        await asyncio.sleep(0.5)
        await erasing.commit()
    response = await putting
    assert response.status_code == 409, response.text
    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle


def _erase_after(app: Any, check: Any) -> Any:
    """`check` that lets an erasure of cust-erased commit once it has first answered:
    the window between a batch's erasure check and its creating the customers."""
    erased = False

    async def checked(*args: Any, **kwargs: Any) -> Any:
        nonlocal erased
        answer = await check(*args, **kwargs)
        if not erased:
            async with app.state.sessionmaker() as erasing:
                await customers.erase(erasing, customer_id="cust-erased")
                await erasing.commit()
            erased = True
        return answer

    return checked


async def test_an_erasure_right_after_a_batchs_check_keeps_the_customer_erased(
    app: Any,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _history(client, admin)
    monkeypatch.setattr(events, "erased_ids", _erase_after(app, events.erased_ids))
    batch = [order("o-erased-new", "cust-erased"), order("o-kept", "c-kept")]
    response = await client.post("/v1/events", json={"events": batch}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [s["event_id"] for s in response.json()["skipped"]] == ["o-erased-new"]
    for needle in NEEDLES:
        assert await rows_mentioning(session, needle) == {}, needle


@pytest.mark.parametrize("earlier_erasure", [False, True])
@pytest.mark.parametrize("kind", ["events", "customers"])
async def test_an_erasure_right_after_an_import_stages_check_keeps_the_customer_erased(
    app: Any,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    earlier_erasure: bool,
) -> None:
    await _history(client, admin)
    if earlier_erasure:  # then the stage checks every customer by their subject
        assert (await client.put("/v1/customers/c-gone", json={}, headers=admin)).is_success
        assert (await client.delete("/v1/customers/c-gone", headers=admin)).status_code == 204
    if kind == "events":
        rows = [order("o-kept-import", "c-kept"), order("o-erased-import", "cust-erased")]
    else:
        rows = [{"customer_id": "c-kept"}, {"customer_id": "cust-erased", **PERSONAL}]
    path = tmp_path / f"{kind}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    check = importer._Staged._without_erased
    monkeypatch.setattr(importer._Staged, "_without_erased", _erase_after(app, check))
    rejected: list[tuple[int, str]] = []
    async with app.state.sessionmaker() as importing:
        summary = await import_file(
            importing, path=path, kind=None, reject=lambda n, why: rejected.append((n, why))
        )
    assert (summary.imported, summary.duplicates, summary.rejected) == (1, 0, 1)
    assert rejected == [(2, events.ERASED_REASON)]
    for needle in NEEDLES:
        async with app.state.sessionmaker() as session:
            assert await rows_mentioning(session, needle) == {}, needle
