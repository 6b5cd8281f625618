"""Ingest: events/s through POST /v1/events and the order webhook, against raw COPY of the
same rows into the same (indexed) events table, in the same run.

    python -m bench.ingest --events 100000 --workers 2

Set-up (not timed): a fresh migrated database, the customers COPYed in, the service
started. Phases, each from an empty events table (TRUNCATE between them):
  1. COPY of the rows, pre-encoded as CSV (the ceiling),
  2. POST /v1/events, 1000 events per request, 4 concurrent connections,
  3. COPY again (the COPY figure is the mean of 1 and 3, so drift shows up in neither),
  4. POST /v1/webhooks/orders, one signed order or refund (with its customer object) per
     delivery, 8 concurrent connections: live orders, dated when the run starts, as a
     shop posts them, once the re-classification that phase 2 set off has drained.
     (Events dated before today delete the day's population fit, and re-classification
     refits it once a minute: a backfill's cost, not a live webhook's.)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from bench.generate import (
    CHUNK,
    EVENT_COPY_COLUMNS,
    Dataset,
    copy_customers,
    event_copy_csv,
    event_request_bodies,
    generate,
    webhook_bodies,
)
from bench.measure import LoadResult, Target, missing_endpoints, run_load
from bench.report import Figure, Section, check, errors_note, missing
from bench.server import backlog_drained, fresh_database, plain_url, postgres_info, running

EVENTS = ("POST", "/v1/events")
WEBHOOK = ("POST", "/v1/webhooks/orders")
API_CLIENTS = 4
WEBHOOK_CLIENTS = 8


@dataclass
class IngestResult:
    events: int
    customers: int
    copy_rates: list[float]
    api: LoadResult | None  # None: the endpoint is missing
    stored: int
    webhook: LoadResult | None
    deliveries: int

    @property
    def copy_rate(self) -> float:
        return sum(self.copy_rates) / len(self.copy_rates)

    @property
    def api_rate(self) -> float:
        return self.events / self.api.seconds if self.api else 0.0


def dataset(events: int, seed: int, prefix: str = "n") -> Dataset:
    """Exactly `events` events (the first ones in time) of a generated population."""
    for per_customer in (8, 5, 2):
        data = generate(
            events // per_customer + 100,
            seed=seed,
            customer_prefix=f"{prefix}-",
            event_prefix=f"{prefix}e-",
        )
        if len(data.events) >= events:
            break
    return data.with_events(data.events.take(slice(0, events)))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _count(url: str) -> int:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def _timed_copy(url: str, chunks: list[bytes], columns: list[str]) -> float:
    """Rows/s of COPY of the pre-encoded rows into an empty, indexed events table."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute("TRUNCATE events")

        async def source() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        rows = sum(chunk.count(b"\n") for chunk in chunks)
        started = time.perf_counter()
        await conn.copy_to_table("events", source=source(), columns=columns, format="csv")
        return rows / (time.perf_counter() - started)
    finally:
        await conn.close()


async def _load_customers(url: str, data: Dataset) -> list[bytes]:
    """COPY the customers in; return the events as COPY CSV chunks (encoded up front)."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        ids = await copy_customers(conn, data)
        await conn.execute("ANALYZE customers")
    finally:
        await conn.close()
    return [
        event_copy_csv(data.events.take(slice(s, s + CHUNK)), data, ids)
        for s in range(0, len(data.events), CHUNK)
    ]


def ingest_bench(
    *, events: int = 100_000, deliveries: int = 2000, workers: int = 2, seed: int = 11
) -> IngestResult:
    data = dataset(events, seed)
    bodies = [("POST", EVENTS[1], b) for b in event_request_bodies(data, batch=1000)]
    hooks = [
        ("POST", WEBHOOK[1], b)
        for b in itertools.islice(webhook_bodies(data, live=True), deliveries)
    ]
    warm = dataset(2000, seed + 1000, prefix="warm")
    warm_bodies = [("POST", EVENTS[1], b) for b in event_request_bodies(warm, batch=500)]
    columns = list(EVENT_COPY_COLUMNS)
    with fresh_database() as url:
        chunks = asyncio.run(_load_customers(url, data))
        pg_pid, _ = asyncio.run(postgres_info(url))
        with running(url, workers=workers) as server:
            target = Target(server, pg_pid)
            absent = missing_endpoints(server, [EVENTS, WEBHOOK])
            copy_rates = [asyncio.run(_timed_copy(url, chunks, columns))]
            api: LoadResult | None = None
            stored = 0
            if EVENTS not in absent:
                # Warm-up: connections, the key and policy caches, on every worker.
                run_load(target, warm_bodies, concurrency=API_CLIENTS)
                asyncio.run(_execute(url, "TRUNCATE events"))
                api = run_load(target, bodies, concurrency=API_CLIENTS)
                stored = asyncio.run(_count(url))
            copy_rates.append(asyncio.run(_timed_copy(url, chunks, columns)))
            hook: LoadResult | None = None
            if WEBHOOK not in absent:
                asyncio.run(_execute(url, "TRUNCATE events, webhook_deliveries"))
                asyncio.run(backlog_drained(url))
                salt = str(int(time.time()))
                run_load(target, hooks[:50], concurrency=WEBHOOK_CLIENTS, sign_webhooks=True)
                asyncio.run(_execute(url, "TRUNCATE events, webhook_deliveries"))
                hook = run_load(
                    target, hooks, concurrency=WEBHOOK_CLIENTS, sign_webhooks=True, salt=salt
                )
    return IngestResult(
        events=len(data.events),
        customers=len(data.customers),
        copy_rates=copy_rates,
        api=api,
        stored=stored,
        webhook=hook,
        deliveries=len(hooks),
    )


def cpu_per_item(load: LoadResult, items: int, unit: float) -> str:
    """The service's and PostgreSQL's CPU per event or delivery: on a busy machine a
    figure that waiting does not inflate, unlike the rates."""
    cores = load.cores
    app, pg = (cores.get(k, 0.0) * load.seconds / max(items, 1) * unit for k in ("app", "postgres"))
    return f"service {app:,.1f}, PostgreSQL {pg:,.1f}"


def section(result: IngestResult) -> Section:
    copy = result.copy_rate
    spread = ", ".join(f"{r:,.0f}" for r in result.copy_rates)
    figures = [
        Figure(
            name="raw COPY of the same rows (CSV, indexed table)",
            value=f"{copy:,.0f} rows/s",
            baseline=f"runs: {spread}",
        )
    ]
    name = f"POST /v1/events, 1000/request, {API_CLIENTS} connections"
    if result.api is None:
        figures.append(missing(name))
    else:
        rate = result.api_rate
        lost = "" if result.stored == result.events else f", {result.stored:,} stored!"
        figures.append(
            Figure(
                name=name,
                value=f"{rate:,.0f} events/s{errors_note(result.api)}{lost}",
                baseline=f"COPY {copy:,.0f} rows/s",
                ratio=f"{rate / copy:.0%}",
                target=">=25% & >=25k/s",
                verdict=check(rate >= 0.25 * copy and rate >= 25_000),
                cpu=result.api.cpu_split(),
            )
        )
        figures.append(
            Figure(
                name="  per request (1000 events)",
                value=f"p50 {result.api.p50:.0f} ms, p99 {result.api.p99:.0f} ms",
                baseline=f"COPY {1000 / copy * 1000:.1f} ms per 1000",
                ratio=f"{result.api.p50 / (1e6 / copy):.1f}x",
            )
        )
        figures.append(
            Figure(
                name="  CPU per event (µs)",
                value=cpu_per_item(result.api, result.events, 1e6),
            )
        )
    name = f"POST /v1/webhooks/orders, {WEBHOOK_CLIENTS} connections"
    if result.webhook is None:
        figures.append(missing(name))
    else:
        w = result.webhook
        figures.append(
            Figure(
                name=name,
                value=f"{w.rps:,.0f} events/s p50 {w.p50:.1f} ms{errors_note(w)}",
                baseline=f"COPY {copy:,.0f} rows/s",
                ratio=f"{w.rps / copy:.2%}",
                target=">= 1,000/s",
                verdict=check(w.rps >= 1000),
                cpu=w.cpu_split(),
            )
        )
        figures.append(
            Figure(
                name="  CPU per delivery (ms)",
                value=cpu_per_item(w, w.requests, 1e3),
            )
        )
    return Section(
        title=f"ingest: {result.events:,} events of {result.customers:,} customers "
        "(customers present, events table emptied before each phase)",
        figures=figures,
    )


def main() -> None:
    from bench.report import render

    parser = argparse.ArgumentParser(description="Ingest throughput against raw COPY.")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    result = ingest_bench(
        events=args.events, deliveries=args.deliveries, workers=args.workers, seed=args.seed
    )
    print(render([section(result)]))


if __name__ == "__main__":
    main()
