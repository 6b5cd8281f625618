"""Deliver the outbox: claim due deliveries, sign, POST, record, back off.

A delivery is claimed with a lease (its next attempt moved a lease ahead) in a short
transaction, so a process that dies mid-delivery leaves it to be claimed again when the
lease runs out: at least once. Of one customer's notifications to one endpoint only the
oldest pending one is ever due, so they arrive in the order they happened. Each attempt
is signed afresh (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
`webhook-signature`) over a body rendered once, at the first attempt.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from app.classification.service import classify_customers
from app.core.db import raw_connection
from app.core.observability import log
from app.core.problems import Problem
from app.core.settings import Settings
from app.jobs.metrics import DELIVERIES, DELIVERY_LATENCY
from app.notifications import addresses
from app.notifications.json import iso_time
from app.notifications.sealing import unseal

_CLAIM = """
WITH due AS (
    SELECT d.id FROM notification_deliveries d
     WHERE d.state = 'pending' AND d.next_attempt_at <= now()
       AND NOT EXISTS (
           SELECT 1 FROM notification_deliveries p
            WHERE p.state = 'pending' AND p.endpoint_id = d.endpoint_id
              AND p.customer_id = d.customer_id AND p.notification_id < d.notification_id)
     ORDER BY d.next_attempt_at, d.id
     LIMIT $1
     FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
   SET next_attempt_at = now() + make_interval(secs => $2), attempts = d.attempts + 1
  FROM due, notifications n, webhook_endpoints e
 WHERE d.id = due.id AND n.id = d.notification_id AND e.id = d.endpoint_id
RETURNING d.id, d.attempts, d.created_at AS queued_at, d.endpoint_id, e.url,
          e.secret_sealed, n.id AS notification_id, n.event_id, n.type, n.body
"""

_CHANGE = """
SELECT n.id, n.event_id, n.type, n.created_at, n.data, c.external_id,
       ch.as_of, ch.policy_version, ch.from_tier, ch.to_tier, ch.from_stage, ch.to_stage
  FROM notifications n
  JOIN customers c ON c.id = n.customer_id
  LEFT JOIN classification_changes ch ON ch.id = n.change_id
 WHERE n.id = ANY($1::bigint[])
"""

_RECORD = """
INSERT INTO delivery_attempts
       (delivery_id, endpoint_id, event_id, event_type, attempt, status_code, error, duration_ms)
SELECT d.id, d.endpoint_id, $2, $3, $4, $5, $6, $7
  FROM notification_deliveries d WHERE d.id = $1
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempt: int, settings: Settings) -> float:
    """Seconds before attempt `attempt + 1`: doubling from the first delay, capped."""
    delay = min(
        settings.delivery_backoff_first_seconds * 2 ** max(attempt - 1, 0),
        settings.delivery_backoff_max_seconds,
    )
    # Jitter spreads retries of many deliveries after an outage; never above the cap.
    return float(delay * random.uniform(0.8, 1.0))  # noqa: S311 - not a secret


def _classification_data(row: Any, classification: dict[str, Any]) -> dict[str, Any]:
    before = (
        None if row["from_tier"] is None else {"tier": row["from_tier"], "stage": row["from_stage"]}
    )
    return {
        "customer_id": row["external_id"],
        "as_of": iso_time(row["as_of"]),
        "policy_version": row["policy_version"],
        "from": before,
        "to": {"tier": row["to_tier"], "stage": row["to_stage"]},
        "classification": classification,
    }


async def _classifications(
    sessionmaker: async_sessionmaker[AsyncSession], rows: list[Any], *, reuse_fit_for: float
) -> dict[int, dict[str, Any]]:
    """The classification object of each change's customer as of the change, with the
    population model the re-classification that made the change used (`reuse_fit_for`)."""
    found: dict[int, dict[str, Any]] = {}
    async with sessionmaker() as session:
        for row in rows:
            try:
                [item] = await classify_customers(
                    session,
                    customer_ids=[row["external_id"]],
                    as_of=row["as_of"],
                    horizon_days=None,
                    lang="en",
                    single=True,
                    reuse_fit_for=reuse_fit_for,
                )
            except Problem:
                continue  # erased meanwhile: its notifications go with it
            found[row["id"]] = item.model_dump(mode="json")
    return found


async def render(
    sessionmaker: async_sessionmaker[AsyncSession],
    notification_ids: list[int],
    *,
    reuse_fit_for: float = 0.0,
) -> None:
    """Freeze the body of each notification not yet rendered (first attempt)."""
    async with sessionmaker() as session:
        conn = await raw_connection(session)
        rows = list(await conn.fetch(_CHANGE, notification_ids))
    changes = [r for r in rows if r["as_of"] is not None]
    classified = (
        await _classifications(sessionmaker, changes, reuse_fit_for=reuse_fit_for)
        if changes
        else {}
    )
    bodies: list[tuple[int, str]] = []
    for row in rows:
        if row["as_of"] is not None:
            if row["id"] not in classified:
                continue
            data = _classification_data(row, classified[row["id"]])
        else:
            data = orjson.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
        body = {
            "id": row["event_id"],
            "type": row["type"],
            "created_at": iso_time(row["created_at"]),
            "data": data,
        }
        bodies.append((row["id"], orjson.dumps(body).decode()))
    if bodies:
        async with sessionmaker() as session:
            conn = await raw_connection(session)
            await conn.executemany(
                "UPDATE notifications SET body = $2 WHERE id = $1 AND body IS NULL", bodies
            )
            await session.commit()


async def send(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    event_id: str,
    body: str,
    settings: Settings,
) -> Outcome:
    started = time.perf_counter()
    try:
        await addresses.check(url, allow_private=settings.outbound_allow_private_networks)
    except addresses.RefusedUrl as exc:
        return Outcome(None, f"refused: {exc}", time.perf_counter() - started)
    moment = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "Stratum-Webhooks/1",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, moment, body),
    }
    try:
        response = await client.post(
            url, content=body.encode(), headers=headers, timeout=settings.delivery_timeout_seconds
        )
    except httpx.TimeoutException:
        return Outcome(None, "timeout", time.perf_counter() - started)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:300], time.perf_counter() - started)
    return Outcome(response.status_code, None, time.perf_counter() - started)


async def deliver_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
) -> int:
    """Claim and attempt one batch of due deliveries; how many were attempted."""
    async with sessionmaker() as session:
        conn = await raw_connection(session)
        claimed = list(
            await conn.fetch(_CLAIM, settings.delivery_batch, settings.delivery_lease_seconds)
        )
        await session.commit()
    if not claimed:
        return 0
    unrendered = sorted({r["notification_id"] for r in claimed if r["body"] is None})
    bodies: dict[int, str] = {}
    if unrendered:
        await render(sessionmaker, unrendered, reuse_fit_for=settings.incremental_fit_reuse_seconds)
        async with sessionmaker() as session:
            conn = await raw_connection(session)
            for r in await conn.fetch(
                "SELECT id, body FROM notifications WHERE id = ANY($1::bigint[])", unrendered
            ):
                if r["body"] is not None:
                    bodies[r["id"]] = r["body"]
    # Every attempt finishes (and records its outcome) before a failure of one is
    # raised: the loop's recovery then never runs beside attempts still under way.
    outcomes = await asyncio.gather(
        *(_attempt(sessionmaker, client, settings, row, bodies) for row in claimed),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return sum(1 for o in outcomes if o is True)


async def _attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    row: Any,
    bodies: dict[int, str],
) -> bool:
    body = row["body"] or bodies.get(row["notification_id"])
    if body is None:
        return False  # its customer was erased: the delivery went with them
    # The request runs in a task of its own: the HTTP client's timeouts are cancel
    # scopes, and a cancellation that lands late must not hit the database calls below
    # (a statement cancelled half-way leaves its pooled connection unusable).
    outcome = await asyncio.create_task(
        send(
            client,
            url=row["url"],
            secret=unseal(settings, row["secret_sealed"]),
            event_id=row["event_id"],
            body=body,
            settings=settings,
        )
    )
    DELIVERY_LATENCY.observe(outcome.seconds)
    DELIVERIES.labels("delivered" if outcome.ok else "failed").inc()
    async with sessionmaker() as session:
        conn = await raw_connection(session)
        await conn.execute(
            _RECORD,
            row["id"],
            row["event_id"],
            row["type"],
            row["attempts"],
            outcome.status_code,
            outcome.error,
            round(outcome.seconds * 1000, 3),
        )
        if outcome.ok:
            await conn.execute(
                "UPDATE notification_deliveries SET state = 'delivered', finished_at = now() "
                "WHERE id = $1",
                row["id"],
            )
        else:
            age = (datetime.now(UTC) - row["queued_at"]).total_seconds()
            if age >= settings.delivery_retry_for_seconds:
                await conn.execute(
                    "UPDATE notification_deliveries SET state = 'failed', finished_at = now() "
                    "WHERE id = $1",
                    row["id"],
                )
                log.warning("webhook delivery given up", event_id=row["event_id"])
            else:
                await conn.execute(
                    "UPDATE notification_deliveries "
                    "SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
                    row["id"],
                    backoff(row["attempts"], settings),
                )
        await session.commit()
    return True


async def backlog(session: AsyncSession) -> tuple[int, float]:
    """Pending deliveries and the age in seconds of the oldest."""
    conn = await raw_connection(session)
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
        "FROM notification_deliveries WHERE state = 'pending'"
    )
    assert row is not None
    return int(row["n"]), float(row["age"])
