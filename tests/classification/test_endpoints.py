from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import service as classification_service
from app.classification.schemas import ClassificationOut

T = datetime(2026, 6, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _seed(
    session: AsyncSession, customer: str, orders: list[tuple[float, str]], **fields: Any
) -> None:
    """A customer with orders `days_before_T` ago, written straight to the tables."""
    columns = ", ".join(["external_id", *fields])
    values = ", ".join([":external_id", *(f":{k}" for k in fields)])
    customer_id = (
        await session.execute(
            text(f"INSERT INTO customers ({columns}) VALUES ({values}) RETURNING id"),
            {"external_id": customer, **fields},
        )
    ).scalar_one()
    for i, (days, amount) in enumerate(orders):
        await session.execute(
            text(
                "INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,"
                " amount_base) VALUES (:e, :c, 'order', :t, :a, 'USD', :a)"
            ),
            {"e": f"{customer}-o{i}", "c": customer_id, "t": T - timedelta(days=days), "a": amount},
        )
    await session.commit()


async def _classify(
    client: httpx.AsyncClient, headers: dict[str, str], customer: str, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/v1/customers/{customer}/classification", params=params, headers=headers
    )


async def test_contract_shape(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(200, "120.00"), (100, "80.50"), (10, "99.50")], country="DE")
    response = await _classify(client, reader, "c-1", as_of=_iso(T))
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "c-1"
    assert body["as_of"] == "2026-06-01T00:00:00Z"
    assert body["tier"]["code"] in {"high", "mid", "low"}
    assert 0 <= body["tier"]["score"] <= 1
    assert body["stage"]["code"] == "returning"
    assert body["segments"]["geography"] == "international"
    assert body["segments"]["rfm_group"]
    assert body["strategy"]["code"] and body["strategy"]["actions"]
    assert 1 <= body["strategy"]["priority"] <= 5
    metrics = body["metrics"]
    assert metrics["orders"] == 3
    assert metrics["revenue"] == "300.00"
    assert metrics["currency"] == "USD"
    assert metrics["recency_days"] == 10.0
    assert metrics["horizon_days"] == 180
    assert 0 <= metrics["churn_probability"] <= 1
    assert metrics["expected_orders"] >= 0
    assert body["reasons"] and all(isinstance(r, str) for r in body["reasons"])
    assert body["policy_version"] == 1


async def test_as_of_ignores_later_events(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(300, "50"), (200, "50")])
    before = (await _classify(client, reader, "c-1", as_of=_iso(T))).content
    await _seed(session, "c-2", [(-5, "5000")])  # another customer, after T
    await session.execute(
        text(
            "INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,"
            " amount_base) SELECT 'late', id, 'order', :t, 900, 'USD', 900 FROM customers"
            " WHERE external_id = 'c-1'"
        ),
        {"t": T + timedelta(days=3)},
    )
    await session.commit()
    after = (await _classify(client, reader, "c-1", as_of=_iso(T))).content
    assert before == after
    today = (await _classify(client, reader, "c-1")).json()
    assert today["metrics"]["orders"] == 3


async def test_same_input_same_bytes(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(40, "10"), (20, "10")])
    first = await _classify(client, reader, "c-1", as_of=_iso(T), horizon_days=90)
    second = await _classify(client, reader, "c-1", as_of=_iso(T), horizon_days=90)
    assert first.content == second.content
    assert first.json()["metrics"]["horizon_days"] == 90


async def test_chinese_labels_same_codes(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(5, "10")])
    english = (await _classify(client, reader, "c-1", as_of=_iso(T))).json()
    chinese = (
        await client.get(
            "/v1/customers/c-1/classification",
            params={"as_of": _iso(T)},
            headers={**reader, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"},
        )
    ).json()
    assert english["stage"]["code"] == chinese["stage"]["code"] == "new"
    assert chinese["stage"]["label"] == "新客户"
    assert english["stage"]["label"] == "New"
    assert chinese["strategy"]["code"] == english["strategy"]["code"]
    assert chinese["strategy"]["label"] != english["strategy"]["label"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese["reasons"][0])


async def test_prospect_without_orders(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    await client.put("/v1/customers/p-1", json={"country": "US"}, headers=writer)
    body = (await _classify(client, writer, "p-1")).json()
    assert body["stage"]["code"] == "prospect"
    assert body["segments"]["rfm_group"] == "prospects"
    assert body["metrics"]["orders"] == 0
    assert body["metrics"]["first_order_at"] is None


async def test_batch_keeps_order_and_rejects_unknown(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    for name in ("a", "b", "c"):
        await _seed(session, name, [(30, "10")])
    ids = ["c", "a", "b", "a"]
    response = await client.post(
        "/v1/classifications/batch",
        json={"customer_ids": ids, "as_of": _iso(T)},
        headers=reader,
    )
    assert response.status_code == 200
    assert [item["customer_id"] for item in response.json()["items"]] == ids
    unknown = await client.post(
        "/v1/classifications/batch", json={"customer_ids": ["a", "zz"]}, headers=reader
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["index"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"as_of": "2026-06-01T00:00:00"},
        {"as_of": "yesterday"},
        {"as_of": "2999-01-01T00:00:00Z"},
        {"horizon_days": 0},
        {"horizon_days": "many"},
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, params: dict[str, Any]
) -> None:
    await _seed(session, "c-1", [(30, "10")])
    response = await _classify(client, reader, "c-1", **params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_customer_and_auth(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    assert (await _classify(client, reader, "nobody")).status_code == 404
    assert (await client.get("/v1/customers/nobody/classification")).status_code == 401
    empty = await client.post(
        "/v1/classifications/batch", json={"customer_ids": []}, headers=reader
    )
    assert empty.status_code == 422
    too_many = await client.post(
        "/v1/classifications/batch",
        json={"customer_ids": [f"c{i}" for i in range(1001)]},
        headers=reader,
    )
    assert too_many.status_code == 422


async def test_batch_of_one_unknown_is_422(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/classifications/batch", json={"customer_ids": ["ghost"]}, headers=reader
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "customer_ids[0]", "message": "no customer 'ghost'", "index": 0}
    ]


async def test_fit_is_reused_and_dropped_by_late_events(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored fits are looked up on every request here, not once a second.
    monkeypatch.setattr(classification_service, "MODEL_TTL", 0.0)
    await _seed(session, "c-1", [(40, "10"), (20, "10")])

    async def fits() -> int:
        return int(
            (await session.execute(text("SELECT count(*) FROM population_fits"))).scalar_one()
        )

    await _classify(client, writer, "c-1", as_of=_iso(T))
    await _classify(client, writer, "c-1", as_of=_iso(T + timedelta(hours=5)))
    assert await fits() == 1  # one fit per UTC day of as_of
    late = {
        "event_id": "late-1",
        "customer_id": "c-2",
        "type": "order",
        "occurred_at": _iso(T - timedelta(days=3)),
        "amount": "5",
    }
    assert (
        await client.post("/v1/events", json={"events": [late]}, headers=writer)
    ).status_code == 200
    assert await fits() == 0  # it covered the day of the late event
    today = {**late, "event_id": "today-1", "occurred_at": _iso(datetime.now(UTC))}
    await _classify(client, writer, "c-1", as_of=_iso(T))
    assert (
        await client.post("/v1/events", json={"events": [today]}, headers=writer)
    ).status_code == 200
    assert await fits() == 1  # new events after the cut-off leave the fit alone


async def test_one_is_the_batch_item_as_fastapi_writes_it(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(300, "120.00"), (90, "80.50"), (3, "99.99")], country="CN")
    await _seed(session, "c-2", [])
    for customer in ("c-1", "c-2"):
        for language in ("en", "zh-CN"):
            headers = {**reader, "Accept-Language": language}
            one = await _classify(client, headers, customer, as_of=_iso(T))
            batch = await client.post(
                "/v1/classifications/batch",
                json={"customer_ids": [customer], "as_of": _iso(T)},
                headers=headers,
            )
            assert one.status_code == batch.status_code == 200
            assert one.headers["content-type"] == "application/json"
            assert int(one.headers["content-length"]) == len(one.content)
            [item] = batch.json()["items"]
            assert one.json() == item
            # The bytes FastAPI's own response-model path makes of the same answer.
            model = ClassificationOut.model_validate(item)
            assert one.content == TypeAdapter(ClassificationOut).dump_json(model)
