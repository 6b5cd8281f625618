"""Every write endpoint, driven with hostile bodies: never a 5xx; a 2xx stored exactly what
a later GET returns; a 4xx changed nothing."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.schemas import CustomerUpsert
from app.events.importer import import_file
from app.events.schemas import EventIn
from app.segments.schemas import SegmentCreate
from tests.hostile.strategies import (
    body_for,
    encode,
    field_value,
    ids,
    json_values,
    nasty_text,
    rules,
    wrong_types,
)
from tests.hostile.support import PROBLEM, fingerprint, signed

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
JSON = {"content-type": "application/json"}
EVENT_REQUIRED = ("event_id", "customer_id", "type", "occurred_at", "amount")


def _ok_or_clean_4xx(response: httpx.Response) -> bool:
    """True for a 2xx; asserts a 4xx is a problem document, and that nothing is a 5xx."""
    assert response.status_code < 500, response.text
    event(f"{response.request.method} {response.status_code}")
    if 300 <= response.status_code < 400:
        return False  # "/v1/customers/" for an empty id: a redirect that stores nothing
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM
        assert {"type", "title", "status", "detail"} <= set(response.json())
        return False
    return True


_SERIAL = itertools.count()


def _fresh_ids(events: Any) -> Any:
    """Plausible event ids made unique per example: a 2xx then stored these very events,
    not duplicates of an earlier example's."""
    if isinstance(events, list):
        return [_fresh_ids(e) for e in events]
    if isinstance(events, dict) and str(events.get("event_id", "")).startswith("e-"):
        return {**events, "event_id": f"{events['event_id']}.{next(_SERIAL)}"}
    return events


def _same_money(sent: Any, stored: Any) -> bool:
    return stored is None if sent is None else Decimal(str(sent)) == Decimal(str(stored))


@FAST
@given(customer_id=ids, body=body_for(CustomerUpsert))
async def test_put_customer(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    customer_id: str,
    body: dict[str, Any],
) -> None:
    before = await fingerprint(session)
    response = await client.put(
        f"/v1/customers/{quote(customer_id, safe='')}",
        content=encode(body),
        headers={**admin, **JSON},
    )
    if not _ok_or_clean_4xx(response):
        assert await fingerprint(session) == before
        return
    stored = (await client.get(f"/v1/customers/{quote(customer_id)}", headers=admin)).json()
    assert stored == response.json()
    if "attributes" in body:
        assert stored["attributes"] == (body["attributes"] or {})


@FAST
@given(
    events=st.lists(body_for(EventIn, required=EVENT_REQUIRED), min_size=1, max_size=3)
    | wrong_types
)
async def test_post_events(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, events: Any
) -> None:
    events = _fresh_ids(events)
    before = await fingerprint(session)
    response = await client.post(
        "/v1/events", content=encode({"events": events}), headers={**admin, **JSON}
    )
    if not _ok_or_clean_4xx(response):
        assert await fingerprint(session) == before
        return
    await _check_stored(client, admin, events)


async def _check_stored(
    client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]
) -> None:
    firsts = {e["event_id"]: e for e in reversed(events)}
    for sent in firsts.values():
        listed = await client.get(
            f"/v1/customers/{quote(sent['customer_id'])}/events",
            params={"limit": 1000},
            headers=headers,
        )
        assert listed.status_code == 200
        stored = {e["event_id"]: e for e in listed.json()["items"]}
        got = stored[sent["event_id"]]
        if got["received_at"] and got["type"] == sent["type"]:
            assert _same_money(sent.get("amount"), got["amount"])
            if "attributes" in sent:
                assert got["attributes"] == sent["attributes"]


@FAST
@given(
    body=body_for(EventIn, required=EVENT_REQUIRED).map(lambda b: {**b, "type": "order"})
    | wrong_types,
    customer=st.none() | body_for(CustomerUpsert),
    msg_id=st.from_regex(r"\Amsg_[a-z0-9]{1,12}\Z"),
)
async def test_webhook_orders(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    body: Any,
    customer: dict[str, Any] | None,
    msg_id: str,
) -> None:
    body = _fresh_ids(body)
    if isinstance(body, dict) and customer is not None:
        body = {**body, "customer": customer}
    before = await fingerprint(session)
    payload, headers = signed(encode(body), msg_id=msg_id)
    response = await client.post("/v1/webhooks/orders", content=payload, headers=headers)
    if not _ok_or_clean_4xx(response):
        assert await fingerprint(session) == before
        return
    if response.json()["accepted"]:
        await _check_stored(client, admin, [body])


def _mutations(policy: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    paths = [
        ("base_currency",),
        ("exchange_rates",),
        ("home_country",),
        ("horizon_days",),
        ("min_population",),
        ("tiers", "method"),
        ("tiers", "high"),
        ("tiers", "mid"),
        ("stages", "churn_multiple"),
        ("strategies", 0, "label", "en"),
        ("strategies", 0, "actions", "en"),
        ("strategies", 0, "code"),
        ("strategies",),
    ]
    values = st.one_of(
        nasty_text,
        wrong_types,
        json_values,
        st.dictionaries(st.sampled_from(["EUR", "CNY", "xx"]), field_value("amount"), max_size=2),
        st.sampled_from(["1e999999", "0.8", "USD", "EUR", 180, 7, 1096, ["x\ud800"]]),
    )

    def apply(changes: list[tuple[tuple[str | int, ...], Any]]) -> dict[str, Any]:
        document = copy.deepcopy(policy)
        for path, value in changes:
            node: Any = document
            try:
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change replaced what this path goes through
        return document

    return st.lists(st.tuples(st.sampled_from(paths), values), max_size=3).map(apply)


@FAST
@given(data=st.data())
async def test_put_policy(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    data: st.DataObject,
) -> None:
    current = (await client.get("/v1/policy", headers=admin)).json()
    document = data.draw(_mutations(current))
    before = await fingerprint(session)
    response = await client.put("/v1/policy", content=encode(document), headers={**admin, **JSON})
    if not _ok_or_clean_4xx(response):
        assert await fingerprint(session) == before
        return
    stored = (await client.get("/v1/policy", headers=admin)).json()
    assert stored == response.json()
    assert stored["version"] == current["version"] + 1


@FAST
@given(
    key=st.one_of(st.from_regex(r"\A[a-z][a-z0-9_-]{0,10}\Z"), nasty_text),
    name=st.one_of(st.just("Segment"), nasty_text),
    description=st.none() | nasty_text,
    rule=rules,
)
async def test_post_segment(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    key: str,
    name: str,
    description: str | None,
    rule: Any,
) -> None:
    assert "key" in SegmentCreate.model_fields
    body = {"key": key, "name": name, "description": description, "rule": rule}
    before = await fingerprint(session)
    response = await client.post("/v1/segments", content=encode(body), headers={**admin, **JSON})
    if not _ok_or_clean_4xx(response):
        assert await fingerprint(session) == before
        return
    created = response.json()
    url = f"/v1/segments/{quote(created['key'])}"
    assert (await client.get(url, headers=admin)).json() == created
    # The rule compiled at definition time also runs at query time.
    members = await client.get(f"{url}/customers", headers=admin)
    assert members.status_code == 200, members.text
    await client.delete(url, headers=admin)


@settings(FAST, max_examples=15)
@given(rows=st.lists(body_for(EventIn, required=EVENT_REQUIRED), min_size=1, max_size=5))
async def test_import_events(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    tmp_path_factory: Any,
    rows: list[dict[str, Any]],
) -> None:
    rows = _fresh_ids(rows)
    path: Path = tmp_path_factory.mktemp("import") / "events.jsonl"
    path.write_bytes(b"\n".join(encode(r) for r in rows))  # noqa: ASYNC240
    rejected: list[int] = []
    summary = await import_file(
        session, path=path, kind="events", reject=lambda line, why: rejected.append(line)
    )
    await session.commit()
    assert summary.imported + summary.duplicates + summary.rejected == len(rows)
    valid = [r for i, r in enumerate(rows, start=1) if i not in rejected]
    await _check_stored(client, admin, valid)
    assert orjson.dumps(summary.line())
