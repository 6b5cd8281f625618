"""Helpers for the hostile suite: a fingerprint of every table, signed webhook deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Base
from tests.conftest import WEBHOOK_SECRET

PROBLEM = "application/problem+json"
TABLES = [t.name for t in Base.metadata.sorted_tables]


async def fingerprint(session: AsyncSession) -> dict[str, str]:
    """Every table's rows, hashed: equal fingerprints mean nothing was stored or changed."""
    prints = {}
    for table in TABLES:
        found = await session.execute(
            text(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            )
        )
        prints[table] = str(found.scalar_one())
    await session.commit()
    return prints


async def rows_mentioning(session: AsyncSession, needle: str) -> dict[str, int]:
    """Tables holding `needle` anywhere in a row (as text, case-insensitive)."""
    found = {}
    for table in TABLES:
        result = await session.execute(
            text(f"SELECT count(*) FROM {table} t WHERE t::text ILIKE :needle"),
            {"needle": f"%{needle}%"},
        )
        count = int(result.scalar_one())
        if count:
            found[table] = count
    await session.commit()
    return found


def raw_json(value: Any) -> bytes:
    """JSON with every non-ASCII character escaped, so lone surrogates go out as `\\ud800`."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def signed(
    payload: dict[str, Any] | bytes, *, msg_id: str = "msg_1", stamp: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    stamp = stamp or str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def order(event_id: str = "o-1", customer_id: str = "c-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "order",
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount": "10.00",
        **fields,
    }
