"""The importer's plain-row checks accept only what the API's models accept, with the
same values, and take the generated (well-formed) rows without the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from app.customers.schemas import CustomerUpsert
from app.events.fast_rows import CUSTOMER_FIELDS, customer_record, event_record, latest_time
from app.events.schemas import EventIn
from app.events.service import customer_values
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument
from bench.generate import api_customers, api_events, generate

POLICY = PolicyDocument.model_validate(default_document())
GOOD: dict[str, Any] = {
    "event_id": "o-1",
    "customer_id": "c-1",
    "type": "order",
    "occurred_at": "2026-03-01T10:00:00Z",
    "amount": "129.90",
}
VARIANTS: list[dict[str, Any]] = [
    {},
    {"currency": "usd"},
    {"currency": " USD "},
    {"currency": "XXX"},
    {"currency": "JPY"},
    {"currency": None},
    {"currency": 5},
    {"amount": 129.9},
    {"amount": 12},
    {"amount": True},
    {"amount": "-1"},
    {"amount": "1e20"},
    {"amount": "999999999999999"},
    {"amount": "1.1234567"},
    {"amount": "NaN"},
    {"amount": " 5 "},
    {"amount": None},
    {"margin": "-3.5"},
    {"margin": 4},
    {"type": "refund", "margin": "1"},
    {"type": "refund"},
    {"type": "inquiry", "amount": None},
    {"type": "inquiry", "amount": "1"},
    {"type": "feedback", "rating": 7, "amount": "1"},
    {"type": "Order"},
    {"type": ["order"]},
    {"type": "x"},
    {"rating": 3},
    {"event_id": "o 1"},
    {"event_id": "o-1\n"},
    {"event_id": "x" * 129},
    {"event_id": 12},
    {"customer_id": ""},
    {"occurred_at": "2026-03-01 10:00:00+02:00"},
    {"occurred_at": "2026-03-01T10:00:00"},
    {"occurred_at": "2026-02-30T10:00:00Z"},
    {"occurred_at": "1969-12-31T23:59:59Z"},
    {"occurred_at": "2999-01-01T00:00:00Z"},
    {"occurred_at": " 2026-03-01T10:00:00.123456789+05:30 "},
    {"occurred_at": 1700000000},
    {"channel": "  webshop "},
    {"channel": "   "},
    {"channel": "a\x00b"},
    {"channel": "x" * 65},
    {"channel": 3},
    {"attributes": {"a": [1, 2.5, "x"], "b": None}},
    {"attributes": {"a": float("inf")}},
    {"attributes": {"a": "x\x00"}},
    {"attributes": []},
    {"attributes": {"a": "x" * 20000}},
    {"attributes": {"a": "x\x7f"}},
    {"attributes": {"a": 2**63, "b": [{"c": 1e16}]}},
    {"occurred_at": "2026-03-01T10:00:00.123456Z"},
    {"occurred_at": "2026-03-01T24:00:00Z"},
    {"extra": 1},
]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for change in VARIANTS:
        row = {**GOOD, **change}
        rows.append(row)
        for kind in ("feedback", "inquiry", "interaction"):
            other = {k: v for k, v in row.items() if k not in ("amount", "currency", "margin")}
            rows.append({**other, "type": kind, **({"rating": 4} if kind == "feedback" else {})})
    return rows


@pytest.mark.parametrize("row", _rows())
def test_a_plain_row_is_one_the_model_accepts_with_the_same_values(row: dict[str, Any]) -> None:
    text = orjson.dumps(row).decode() if "inf" not in repr(row) else None
    clean = text is not None and "\\" not in text and "\x7f" not in text
    plain = event_record(orjson.loads(text) if text else row, POLICY, latest_time(), clean=clean)
    try:
        model = (
            EventIn.model_validate_json(text, context={"policy": POLICY})
            if text
            else EventIn.model_validate(row, context={"policy": POLICY})
        )
    except ValidationError:
        assert plain is None
        return
    if plain is None:
        return  # the model decides such a row
    currency = None if model.amount is None else model.currency or POLICY.base_currency
    attributes = None if model.attributes is None else orjson.dumps(model.attributes).decode()
    assert plain == (
        model.event_id,
        model.customer_id,
        model.type,
        model.occurred_at,
        model.amount,
        currency,
        model.margin,
        model.rating,
        model.channel,
        attributes,
    )


def test_generated_rows_take_the_plain_path() -> None:
    end = datetime.now(UTC) - timedelta(days=1)
    rows = api_events(generate(300, seed=3, end=end))
    assert len(rows) > 1000
    plain = [event_record(orjson.loads(orjson.dumps(r)), POLICY, latest_time()) for r in rows]
    assert all(p is not None for p in plain)
    assert {p[2] for p in plain if p} == {"order", "refund", "inquiry", "feedback", "interaction"}
    assert any(p[4] is not None and p[4] != Decimal(0) for p in plain if p)


CUSTOMER: dict[str, Any] = {
    "name": " Acme GmbH ",
    "email": "Buyer@Acme.example",
    "country": "de",
    "customer_type": "business",
    "created_at": "2025-03-01T10:00:00Z",
    "attributes": {"tier": "gold", "n": 3},
}
CUSTOMER_VARIANTS: list[dict[str, Any]] = [
    {},
    {"name": None},
    {"name": "   "},
    {"name": "x" * 257},
    {"name": "a\x00b"},
    {"name": "a\tb"},
    {"name": "\ud800"},
    {"name": 5},
    {"email": "not-an-email"},
    {"email": "  A@B.example "},
    {"email": None},
    {"phone": "+49 (30) 123-456"},
    {"phone": "12"},
    {"country": "DE "},
    {"country": "XX"},
    {"country": ""},
    {"country": None},
    {"country": 49},
    {"customer_type": " Individual "},
    {"customer_type": "person"},
    {"role": "DISTRIBUTOR"},
    {"industry": "x" * 129},
    {"company_size": "huge"},
    {"company_size": None},
    {"created_at": "2026-02-30T10:00:00Z"},
    {"created_at": "2999-01-01T00:00:00Z"},
    {"created_at": "1969-12-31T23:59:59Z"},
    {"created_at": "2025-03-01T10:00:00+02:00"},
    {"created_at": "2025-03-01T10:00:00"},
    {"created_at": None},
    {"attributes": None},
    {"attributes": []},
    {"attributes": {"a": {"b": [1, 2.5, None, True]}}},
    {"attributes": {"a": 2**63}},
    {"attributes": {"a": 1e16}},
    {"attributes": {"a": "x" * 20000}},
    {"attributes": {"a": "x\x7f"}},
    {"unknown": 1},
]


@pytest.mark.parametrize("change", CUSTOMER_VARIANTS)
def test_a_plain_customer_is_one_the_model_accepts_with_the_same_values(
    change: dict[str, Any],
) -> None:
    row = {**CUSTOMER, **change}
    try:
        text = orjson.dumps(row)
    except orjson.JSONEncodeError:  # a lone surrogate: never clean
        text = b"\\"
    clean = b"\\" not in text and b"\x7f" not in text
    for plain in (
        customer_record(dict(row), latest_time(), clean=clean),
        customer_record(dict(row), latest_time(), clean=False),
    ):
        try:
            model = CustomerUpsert.model_validate(row)
        except ValidationError:
            assert plain is None
            continue
        if plain is None:
            continue  # the model decides such a row
        values = customer_values(model)
        expected = [
            (orjson.dumps(values[f]).decode() if f == "attributes" else values[f])
            if f in values
            else None
            for f in CUSTOMER_FIELDS
        ]
        assert plain == (expected, [f in values for f in CUSTOMER_FIELDS])


def test_generated_customers_take_the_plain_path() -> None:
    end = datetime.now(UTC) - timedelta(days=1)
    rows = api_customers(generate(300, seed=3, end=end))
    for row in rows:
        text = orjson.dumps(row)
        fields = orjson.loads(text)
        fields.pop("customer_id")
        assert customer_record(fields, latest_time(), clean=b"\\" not in text) is not None
