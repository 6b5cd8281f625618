"""One command for the benchmark suite: ingest, classification and growth, each figure
beside a baseline measured in the same run.

    python -m bench.run                 # quick suite: 10k customers (a few minutes)
    python -m bench.run --size large    # adds 100k customers (growth)

Load comes from `bench.load`: an asyncio httpx client in its own process (so its CPU is
counted apart from the server's), with the concurrency named in each row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import asyncpg

from bench.generate import (
    EVENT_COLUMNS,
    api_event,
    copy_into,
    event_records,
    generate,
    heavy_customer,
)
from bench.server import Server, fresh_database, running

Row = tuple[str, str, str, str]


def load(
    server_url: str,
    requests: list[list[Any]],
    *,
    concurrency: int,
    headers: dict[str, str] | None = None,
    sign: bool = False,
    salt: str = "",
) -> dict[str, Any]:
    spec = {
        "base_url": server_url,
        "headers": headers or {},
        "concurrency": concurrency,
        "requests": requests,
        "sign_webhooks": sign,
        "salt": salt,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", f.name], capture_output=True, text=True, check=True
    )
    os.unlink(f.name)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key}"}


def classify_suite(server: Server, bare: Server, ids: list[str], label: str) -> list[Row]:
    rng = random.Random(5)
    headers = _auth(server)
    rows: list[Row] = []
    # Warm-up: the first classification fits the population model for today.
    load(
        server.base_url,
        [["GET", f"/v1/customers/{ids[0]}/classification", None]],
        concurrency=1,
        headers=headers,
    )
    load(
        server.base_url,
        [["GET", f"/v1/customers/{i}/classification", None] for i in ids[:200]],
        concurrency=4,
        headers=headers,
    )

    def paths(template: str, n: int) -> list[list[Any]]:
        return [["GET", template.format(rng.choice(ids)), None] for _ in range(n)]

    for clients, n in ((1, 400), (16, 3000)):
        cls = load(
            server.base_url,
            paths("/v1/customers/{}/classification", n),
            concurrency=clients,
            headers=headers,
        )
        read = load(
            server.base_url, paths("/v1/customers/{}", n), concurrency=clients, headers=headers
        )
        raw = load(bare.base_url, paths("/bare/{}", n), concurrency=clients)
        for name, r in (
            ("classification", cls),
            ("customer read (PK)", read),
            ("bare PK select", raw),
        ):
            rows.append(
                (
                    f"{label} GET {name}, {clients} client(s)",
                    f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms",
                    f"client CPU {r['client_cpu_share']:.0%}, errors {r['errors']}",
                    "",
                )
            )
        rows[-3] = (
            *rows[-3][:3],
            f"{cls['rps'] / read['rps']:.2f}x of PK read, {cls['rps'] / raw['rps']:.2f}x of bare",
        )
    batch = [
        ["POST", "/v1/classifications/batch", {"customer_ids": rng.sample(ids, 1000)}]
        for _ in range(10)
    ]
    b = load(server.base_url, batch, concurrency=1, headers=headers)
    rows.append(
        (
            f"{label} POST batch of 1000, 1 client",
            f"p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms",
            f"errors {b['errors']}",
            "target <= 300 ms",
        )
    )
    return rows


def heavy_suite(server: Server, typical: str) -> list[Row]:
    """The 10,000-event customer beside a typical one, same client, back to back."""
    headers = _auth(server)
    rows: list[Row] = []
    for label, customer in (("10,000-event customer", "heavy-1"), ("typical customer", typical)):
        r = load(
            server.base_url,
            [["GET", f"/v1/customers/{customer}/classification", None]] * 300,
            concurrency=1,
            headers=headers,
        )
        rows.append(
            (
                f"{label}, GET classification, 1 client",
                f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms",
                f"errors {r['errors']}",
                "target p50 <= 5 ms",
            )
        )
    return rows


async def _copy_rate(url: str, records: list[tuple[Any, ...]]) -> float:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "events",
            records=records,
            columns=EVENT_COLUMNS,
        )
        return len(records) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def _delete_events(url: str, prefix: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM events WHERE event_id LIKE $1", prefix + "%")
        return dict(await conn.fetch("SELECT external_id, id FROM customers"))
    finally:
        await conn.close()


def ingest_suite(server: Server, url: str, events: int) -> list[Row]:
    data = generate(max(events // 10, 100), seed=9)
    data.events[:] = [(f"n{e[0]}", *e[1:]) for e in data.events[:events]]
    data.customers[:] = [(f"n{c[0]}", *c[1:]) for c in data.customers]
    bodies = [api_event(data, e) for e in data.events]
    batches = [
        ["POST", "/v1/events", {"events": bodies[i : i + 1000]}]
        for i in range(0, len(bodies), 1000)
    ]
    api = load(server.base_url, batches, concurrency=4, headers=_auth(server))
    api_rate = len(bodies) / api["seconds"]
    ids = asyncio.run(_delete_events(url, "n"))
    copy_rate = asyncio.run(_copy_rate(url, event_records(data, ids)))
    orders = [b for b in bodies if b["type"] in ("order", "refund")][:3000]
    hooks = [
        ["POST", "/v1/webhooks/orders", {**b, "event_id": "w" + b["event_id"]}] for b in orders
    ]
    hook = load(server.base_url, hooks, concurrency=8, sign=True, salt=str(time.time()))
    return [
        (
            "POST /v1/events, 1000/request, 4 clients",
            f"{api_rate:,.0f} events/s",
            f"errors {api['errors']}, client CPU {api['client_cpu_share']:.0%}",
            f"{api_rate / copy_rate:.0%} of COPY",
        ),
        ("raw COPY of the same rows (baseline)", f"{copy_rate:,.0f} rows/s", "", ""),
        (
            "POST /v1/webhooks/orders, 8 clients",
            f"{hook['rps']:,.0f} events/s, p50 {hook['p50_ms']:.1f} ms",
            f"errors {hook['errors']}",
            f"{hook['rps'] / copy_rate:.1%} of COPY",
        ),
    ]


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())


def run_size(customers: int, *, workers: int, ingest_events: int, heavy: bool) -> list[Row]:
    rows: list[Row] = []
    with fresh_database() as url:
        started = time.perf_counter()
        data = generate(customers, seed=1)
        asyncio.run(copy_into(url, data))
        if heavy:
            asyncio.run(copy_into(url, heavy_customer("heavy-1", 10_000)))
        rows.append(
            (
                f"set-up: {customers:,} customers, {len(data.events):,} events via COPY",
                f"{time.perf_counter() - started:.1f} s",
                "",
                "",
            )
        )
        ids = [c[0] for c in data.customers]
        with (
            running(url, workers=workers) as server,
            running(url, workers=workers, module="bench.bare_app:app") as bare,
        ):
            rows += classify_suite(server, bare, ids, f"{customers // 1000}k:")
            if heavy:
                rows += heavy_suite(server, ids[7])
            if ingest_events:
                rows += ingest_suite(server, url, ingest_events)
            rows.append(recompute_row(url, customers))
    return rows


def recompute_row(url: str, customers: int) -> Row:
    """`python -m app recompute`: every customer classified and stored, one transaction."""
    from bench.server import _env

    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "app", "recompute"],
        env=_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    return (
        f"recompute all ({customers:,}+ customers), CLI",
        f"{seconds:.1f} s wall, {customers / seconds:,.0f} customers/s",
        out.stdout.strip()[:60],
        "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["quick", "large"], default="quick")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run_size(10_000, workers=args.workers, ingest_events=100_000, heavy=True)
    if args.size == "large":
        rows += run_size(100_000, workers=args.workers, ingest_events=0, heavy=False)
    header = (
        f"Stratum bench ({args.size}): {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, server `python -m app serve --workers {args.workers}`, "
        "load from bench.load (asyncio httpx, separate process), "
        f"total {time.perf_counter() - started:.0f} s"
    )
    print_table(rows, header)


if __name__ == "__main__":
    main()
