"""The model-free path of POST /v1/events accepts only what the model accepts, and stores
the same values."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.events.plain import batch_rows
from app.events.schemas import EventBatch, EventIn
from app.events.service import _rows
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument
from tests.hostile.strategies import body_for, encode

POLICY = PolicyDocument.model_validate(default_document())
REQUIRED = ("event_id", "customer_id", "type", "occurred_at", "amount")


def _model_rows(body: bytes) -> list[Any] | None:
    try:
        batch = EventBatch.model_validate_json(body, context={"policy": POLICY})
    except ValidationError:
        return None
    return _rows(enumerate(batch.events), POLICY)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(body_for(EventIn, required=REQUIRED), min_size=1, max_size=3))
def test_what_the_plain_path_accepts_the_model_accepts_with_the_same_rows(
    events: list[dict[str, Any]],
) -> None:
    body = encode({"events": events})
    plain = batch_rows(body, POLICY)
    if plain is not None:
        assert plain == _model_rows(body)


def test_a_plain_batch_takes_the_plain_path() -> None:
    events = [
        {
            "event_id": "e-1",
            "customer_id": "c-1",
            "type": "order",
            "occurred_at": "2026-03-01T10:00:00+01:00",
            "amount": "129.90",
            "currency": "eur",
            "margin": "-3.5",
            "channel": " webshop ",
            "attributes": {"sku": "A-17", "n": [1, 2.5, None]},
        },
        {
            "event_id": "e-2",
            "customer_id": "c-1",
            "type": "feedback",
            "rating": 7,
            "occurred_at": "2026-03-01T10:00:00Z",
        },
        {
            "event_id": "e-3",
            "customer_id": "c-2",
            "type": "refund",
            "amount": 12,
            "occurred_at": "2026-03-02T10:00:00Z",
            "channel": None,
        },
    ]
    body = encode({"events": events})
    plain = batch_rows(body, POLICY)
    assert plain is not None
    assert plain == _model_rows(body)


def test_anything_unusual_goes_to_the_model() -> None:
    usual = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "type": "order",
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount": "1",
    }
    unusual: list[dict[str, Any]] = [
        {**usual, "amount": 1.5},
        {**usual, "amount": " 1"},
        {**usual, "amount": "-1"},
        {**usual, "amount": -1},
        {**usual, "currency": "XAF"},
        {**usual, "rating": 3},
        {**usual, "occurred_at": "2026-03-01T10:00:00"},
        {**usual, "occurred_at": "2026-02-30T10:00:00Z"},
        {**usual, "occurred_at": "1969-12-31T23:59:59Z"},
        {**usual, "occurred_at": "2999-01-01T00:00:00Z"},
        {**usual, "attributes": {"a\tb": 1}},
        {**usual, "attributes": {"n": 2**63}},
        {**usual, "attributes": {"x": "\x7f"}},
        {**usual, "extra": 1},
        {**usual, "type": "inquiry"},
    ]
    for event in unusual:
        assert batch_rows(encode({"events": [event]}), POLICY) is None, event
    assert batch_rows(b'{"events": []}', POLICY) is None
    assert batch_rows(b"{nope", POLICY) is None
