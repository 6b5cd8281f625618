"""The importer's plain-row check accepts only what the API's model accepts, with the
same values, and takes the generated (well-formed) rows without the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from app.events.fast_rows import event_record, latest_time
from app.events.schemas import EventIn
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument
from bench.generate import api_events, generate

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
    plain = event_record(orjson.loads(text) if text else row, POLICY, latest_time())
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
