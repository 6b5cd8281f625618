"""Smoke tests of the bench generator: seeded, API-shaped, and COPYable into the schema."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.schemas import CustomerUpsert
from app.events.schemas import EventBatch, WebhookOrder
from app.policies.default import default_document
from bench.generate import (
    KINDS,
    Dataset,
    api_customers,
    api_events,
    copy_into,
    event_request_bodies,
    generate,
    heavy_customer,
    webhook_bodies,
    write_files,
)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return generate(100, seed=3)


def test_same_seed_same_data() -> None:
    a, b, c = generate(200, seed=5), generate(200, seed=5), generate(200, seed=6)
    assert a.customers.ids == b.customers.ids
    assert np.array_equal(a.events.at, b.events.at)
    assert np.array_equal(a.events.amount, b.events.amount)
    assert not np.array_equal(a.events.at[:50], c.events.at[:50])


def test_histories_look_like_a_business(data: Dataset) -> None:
    big = generate(3000, seed=1)
    e = big.events
    assert 5 <= len(e) / len(big.customers) <= 15  # about ten events each
    assert set(np.unique(e.kind)) == set(range(len(KINDS)))
    assert np.all(np.diff(e.at) >= 0)  # time order
    assert e.at.max() <= int(big.end.timestamp())
    refunds = np.count_nonzero(e.kind == KINDS.index("refund"))
    orders = np.count_nonzero(e.kind == KINDS.index("order"))
    assert 0.005 < refunds / orders < 0.1
    ids = [item["event_id"] for item in api_events(big)]
    assert len(set(ids)) == len(ids)


def test_events_and_customers_validate_against_the_api(data: Dataset) -> None:
    for body in event_request_bodies(data, batch=1000):
        EventBatch.model_validate_json(body)
    for customer in api_customers(data):
        fields = dict(customer)
        fields.pop("customer_id")
        CustomerUpsert.model_validate(fields)
    for delivery in webhook_bodies(data):
        WebhookOrder.model_validate_json(delivery)
    heavy = heavy_customer("heavy-1", 500)
    assert len(api_events(heavy)) == 500


def test_files_have_the_import_shapes(data: Dataset, tmp_path: Path) -> None:
    out = tmp_path
    write_files(data, out)
    lines = (out / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == len(data.events)
    first = orjson.loads(lines[0])
    assert first["occurred_at"].endswith("Z")
    header = (out / "events.csv").read_text().splitlines()[0]
    assert header.startswith("event_id,customer_id,type,occurred_at,amount,currency")
    assert len((out / "customers.csv").read_text().splitlines()) == len(data.customers) + 1


async def test_copy_into_a_migrated_database(
    data: Dataset,
    database_url: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
) -> None:
    await copy_into(database_url, data, analyze=False)
    count = (await session.execute(text("SELECT count(*) FROM events"))).scalar_one()
    assert count == len(data.events)
    # amount_base is the amount at the default policy's rate, exactly.
    document = default_document()
    rates = {k: Decimal(v) for k, v in document["exchange_rates"].items()}
    rates[document["base_currency"]] = Decimal(1)
    rows = (
        await session.execute(
            text("SELECT amount, currency, amount_base FROM events WHERE amount IS NOT NULL")
        )
    ).all()
    assert rows
    assert all(r.amount_base == r.amount * rates[r.currency] for r in rows)
    response = await client.get(f"/v1/customers/{data.customers.ids[0]}", headers=admin)
    assert response.status_code == 200
    # The id sequence continues after the COPYed ids.
    created = await client.put("/v1/customers/new-one", json={}, headers=admin)
    assert created.status_code == 201


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
async def test_files_import_without_rejections(
    data: Dataset, tmp_path: Path, session: AsyncSession, app: object, suffix: str
) -> None:
    from app.events.importer import import_file

    write_files(data, tmp_path)
    rejected: list[tuple[int, str]] = []
    for kind in ("customers", "events"):
        summary = await import_file(
            session,
            path=tmp_path / f"{kind}.{suffix}",
            kind=None,
            reject=lambda line, reason: rejected.append((line, reason)),
        )
        assert summary.imported > 0
    assert rejected == []
    count = (await session.execute(text("SELECT count(*) FROM events"))).scalar_one()
    assert count == len(data.events)
