"""Hypothesis strategies for request bodies, built from the request models' fields, with
the values that broke the service before in their alphabets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

NASTY_CHARS = ["\x00", "\ud800", "\udfff", "\x1b", "\x7f", "\u202e", "\ufeff", "😀", "\n", "\t"]
EDGE_TIMES = [
    "9999-12-31T23:30:00-01:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-03-01T10:00:00",
    "2026-03-01T24:00:00Z",
    "2026-03-01T10:00:00+24:00",
    "٢٠٢٦-03-01T10:00:00Z",
]
NASTY_NUMBERS: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    -1e308,
    5e-324,
    10**30,
    -(10**30),
    2**63,
    2**64,
    0,
    -0.0,
    1e15,
    999999999999999.9,
]

nasty_text = st.text(
    alphabet=st.one_of(st.sampled_from(NASTY_CHARS), st.characters(codec="utf-8")), max_size=40
) | st.sampled_from(["", " ", "x" * 300, "DE", "de ", "null", "\x00"])


def _moment(d: datetime, offset_minutes: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    return d.replace(tzinfo=UTC).astimezone(zone).isoformat()


plausible_time = st.builds(
    _moment,
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 11, 30)),
    st.integers(-14 * 60, 14 * 60),
)
times = st.one_of(plausible_time, st.sampled_from(EDGE_TIMES), nasty_text)
numbers = st.one_of(
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
deep = st.integers(1, 60).map(lambda n: json.loads("[" * n + "1" + "]" * n))
wrong_types = st.one_of(st.none(), st.booleans(), numbers, st.just([]), st.just({}), nasty_text)
ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9._:@-]{1,20}\Z"), nasty_text, st.just("a" * 129))
money = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
    st.sampled_from(["1e15", "999999999999999", "0.0000001", "-1", "1e-7", "NaN", "12,50"]),
    numbers,
)

# Plausible values by field name; any field without one gets only hostile values, so a
# field added to a model is covered the day it is added.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["Acme GmbH", "王芳", " Li Lei "]),
    "email": st.sampled_from(["buyer@acme.example", "A@B.example", "not-an-email"]),
    "phone": st.sampled_from(["+86 10 1234 5678", "(030) 1234-567", "12"]),
    "country": st.sampled_from(["DE", "cn", "US", "XX"]),
    "customer_type": st.sampled_from(["individual", "business", "Business"]),
    "role": st.sampled_from(["end_customer", "distributor"]),
    "industry": st.sampled_from(["machinery", "retail"]),
    "company_size": st.sampled_from(["micro", "large", "huge"]),
    "created_at": plausible_time,
    "occurred_at": plausible_time,
    "attributes": st.dictionaries(st.sampled_from(["sku", "plan", "n"]), json_values, max_size=3),
    "event_id": st.from_regex(r"\Ae-[a-z0-9]{1,8}\Z"),
    "customer_id": st.sampled_from(["c-1", "c-2", "c-3"]),
    "type": st.sampled_from(["order", "refund", "inquiry", "feedback", "interaction"]),
    "amount": st.decimals(min_value=0, max_value=10**5, places=2, allow_nan=False).map(str),
    "currency": st.sampled_from(["USD", "CNY", "usd"]),
    "margin": st.sampled_from(["1.50", "-2", "0"]),
    "rating": st.integers(0, 10),
    "channel": st.sampled_from(["webshop", " email "]),
}
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "created_at": times,
    "occurred_at": times,
    "attributes": st.one_of(json_values, deep.map(lambda v: {"d": v}), wrong_types),
    "amount": money,
    "margin": money,
    "event_id": ids,
    "customer_id": ids,
}


def field_value(name: str, *, hostile: bool = True) -> st.SearchStrategy[Any]:
    bad = HOSTILE.get(name, st.one_of(nasty_text, wrong_types))
    plausible = PLAUSIBLE.get(name)
    if plausible is None:
        return bad
    return bad if hostile else plausible


MONEY_FIELDS = ("amount", "currency", "margin")


@st.composite
def body_for(draw: st.DrawFn, model: type[BaseModel], *, required: tuple[str, ...] = ()) -> Any:
    """A JSON object with some of `model`'s fields (the required ones mostly present).

    About half the bodies have no hostile field at all, so that valid ones are common and
    what they store is checked too; the others carry one to three hostile values.
    """
    fields = list(model.model_fields)
    hostile = draw(st.just(set()) | st.sets(st.sampled_from(fields), min_size=1, max_size=3))
    body: dict[str, Any] = {}
    for name in fields:
        present = name in hostile or draw(st.integers(0, 9)) < (10 if name in required else 3)
        if present:
            body[name] = draw(field_value(name, hostile=name in hostile))
    if not hostile and body.get("type") not in (None, "order", "refund"):
        for name in MONEY_FIELDS:
            body.pop(name, None)  # the type takes no money: a valid body has none
    if not hostile and body.get("type") != "feedback":
        body.pop("rating", None)
    if not hostile and body.get("type") != "order":
        body.pop("margin", None)
    if draw(st.integers(0, 19)) == 0:
        body[draw(nasty_text)] = draw(json_scalars)  # an unknown field
    return body


def encode(value: Any) -> bytes:
    """JSON as a hostile sender writes it: NaN and Infinity tokens, escaped surrogates."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


RULE_FIELDS = [
    "customer_id",
    "country",
    "tier",
    "tier_score",
    "orders",
    "revenue",
    "created_at",
    "attributes.plan",
    "attributes.n",
    "segments.rfm_group",
    "bogus",
    "attributes.",
]
RULE_OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains", "like"]
rule_values = st.one_of(json_scalars, st.lists(json_scalars, max_size=3), times)
conditions = st.fixed_dictionaries(
    {"field": st.sampled_from(RULE_FIELDS), "op": st.sampled_from(RULE_OPS)},
    optional={"value": rule_values},
)
rules = (
    st.recursive(
        conditions,
        lambda inner: st.one_of(
            st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"not": inner}),
        ),
        max_leaves=6,
    )
    | wrong_types
)
