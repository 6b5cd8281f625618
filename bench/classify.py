"""Classification speed against a primary-key read through the same stack, in the same run.

    python -m bench.classify --customers 10000 --workers 2

For one population (COPYed into a fresh database) it starts the service and the bare
baseline app (`bench.bare_app`, same uvicorn settings) side by side and measures, at 1
and 16 concurrent connections:
  - GET /v1/customers/{id}/classification  (as of now, default horizon),
  - GET /v1/customers/{id}                 (a primary-key read through the same stack),
  - GET /bare/customers/{id}               (the minimal FastAPI + asyncpg app's
                                            primary-key read of the same row);
then POST /v1/classifications/batch with 1000 random ids against the bare app's
one-SELECT read of the same 1000 rows, and, when the population has one, the customer
with 10,000 events against a typical one. Each figure is `rounds` windows of
`duration` seconds (after a 1 s warm-up in each), interleaved with its baselines so
drift on a shared machine hits all of them alike. Customer ids are drawn at random.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import orjson

from bench.generate import copy_into, generate, heavy_customer
from bench.measure import LoadResult, Request, Target, missing_endpoints, pool, run_load
from bench.report import Figure, Section, check, errors_note, latency, missing
from bench.server import (
    BARE_APP,
    Server,
    backlog_drained,
    fresh_database,
    postgres_info,
    running,
    server_env,
)

CLASSIFY = ("GET", "/v1/customers/{customer_id}/classification")
BATCH = ("POST", "/v1/classifications/batch")
READ = ("GET", "/v1/customers/{customer_id}")
CLIENTS = (1, 16)
HEAVY_ID = "heavy-1"


@dataclass
class ClassifyResult:
    customers: int
    events: int
    setup_seconds: float
    # clients -> name -> pooled result; names: classification, read, bare
    single: dict[int, dict[str, LoadResult]] = field(default_factory=dict)
    batch: LoadResult | None = None
    bare_batch: LoadResult | None = None
    heavy: LoadResult | None = None
    typical: LoadResult | None = None  # one typical customer, asked like the heavy one
    recompute_seconds: float | None = None
    missing: set[tuple[str, str]] = field(default_factory=set)
    failure: str | None = None  # what the service answered when classification failed

    @property
    def label(self) -> str:
        n = self.customers
        return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def _paths(template: str, ids: list[str], n: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [("GET", template.format(rng.choice(ids)), None) for _ in range(n)]


def _wait_for_model(server: Server, customer_id: str, timeout: float = 600) -> str | None:
    """The first classification fits today's population model; wait for it once.

    Returns None when classifications work, else what the service answered.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, headers=server.auth, timeout=timeout) as client:
        while time.monotonic() < deadline:
            response = client.get(f"/v1/customers/{customer_id}/classification")
            if response.status_code == 200:
                return None
            if response.status_code not in (503, 504):
                return f"{response.status_code} {response.text[:120]}"
            time.sleep(1)
    return "no model within the timeout"


def measure(
    app: Target,
    bare: Target,
    ids: list[str],
    *,
    duration: float,
    rounds: int,
    heavy: bool,
    result: ClassifyResult,
) -> None:
    absent = result.missing
    has_classify = CLASSIFY not in absent
    if has_classify:
        result.failure = _wait_for_model(app.server, ids[0])
        if result.failure:
            # A broken service still gets its baselines measured; its own rows say why.
            absent |= {CLASSIFY, BATCH}
            has_classify = False
    plans: dict[str, tuple[Target, list[Request]]] = {
        "read": (app, _paths("/v1/customers/{}", ids, 5000, 1)),
        "bare": (bare, _paths("/bare/customers/{}", ids, 5000, 2)),
    }
    if has_classify:
        plans["classification"] = (app, _paths("/v1/customers/{}/classification", ids, 5000, 3))
    for clients in CLIENTS:
        windows: dict[str, list[LoadResult]] = {name: [] for name in plans}
        for _ in range(rounds):
            for name, (target, paths) in plans.items():
                windows[name].append(
                    run_load(target, paths, concurrency=clients, duration=duration, warmup=1.0)
                )
        result.single[clients] = {name: pool(w) for name, w in windows.items()}

    rng = random.Random(4)
    batches = [rng.sample(ids, min(1000, len(ids))) for _ in range(20)]
    bare_requests: list[Request] = [
        ("POST", "/bare/batch", orjson.dumps({"customer_ids": b})) for b in batches
    ]
    batch_requests: list[Request] = [
        ("POST", BATCH[1], orjson.dumps({"customer_ids": b})) for b in batches
    ]
    batch_windows: list[LoadResult] = []
    bare_windows: list[LoadResult] = []
    for _ in range(rounds):
        if BATCH not in absent:
            batch_windows.append(
                run_load(app, batch_requests, concurrency=1, duration=duration, warmup=1.0)
            )
        bare_windows.append(
            run_load(bare, bare_requests, concurrency=1, duration=duration, warmup=1.0)
        )
    result.batch = pool(batch_windows) if batch_windows else None
    result.bare_batch = pool(bare_windows)

    if heavy and has_classify:
        # The 10,000-event customer beside one typical customer, each asked again and
        # again, in alternating windows.
        heavy_windows: list[LoadResult] = []
        typical_windows: list[LoadResult] = []
        for _ in range(rounds):
            for customer, into in ((HEAVY_ID, heavy_windows), (ids[7], typical_windows)):
                path: list[Request] = [("GET", f"/v1/customers/{customer}/classification", None)]
                into.append(run_load(app, path, concurrency=1, duration=duration, warmup=1.0))
        result.heavy = pool(heavy_windows)
        result.typical = pool(typical_windows)


def time_recompute(url: str) -> float:
    """Wall seconds of `python -m app recompute` (every customer classified and stored)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app", "recompute"],
        env=server_env(url),
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def classify_bench(
    customers: int,
    *,
    workers: int = 2,
    duration: float = 3.0,
    rounds: int = 2,
    heavy: bool = True,
    recompute: bool = False,
    seed: int = 1,
) -> ClassifyResult:
    started = time.perf_counter()
    data = generate(customers, seed=seed)
    ids = list(data.customers.ids)
    with fresh_database() as url:
        asyncio.run(copy_into(url, data))
        if heavy:
            asyncio.run(copy_into(url, heavy_customer(HEAVY_ID, 10_000)))
        result = ClassifyResult(
            customers=customers,
            events=len(data.events),
            setup_seconds=time.perf_counter() - started,
        )
        pg_pid, _ = asyncio.run(postgres_info(url))
        with (
            running(url, workers=workers) as server,
            running(url, workers=workers, asgi=BARE_APP) as bare,
        ):
            result.missing = missing_endpoints(server, [CLASSIFY, BATCH, READ])
            asyncio.run(backlog_drained(url))
            measure(
                Target(server, pg_pid),
                Target(bare, pg_pid),
                ids,
                duration=duration,
                rounds=rounds,
                heavy=heavy,
                result=result,
            )
        if recompute and not result.failure:
            result.recompute_seconds = time_recompute(url)
    return result


def _absent(name: str, r: ClassifyResult) -> Figure:
    return missing(name) if r.failure is None else Figure(name, f"failed: {r.failure}")


def section(r: ClassifyResult) -> Section:
    figures: list[Figure] = []
    for clients, results in r.single.items():
        read, bare = results["read"], results["bare"]
        name = f"GET classification, {clients} conn"
        cls = results.get("classification")
        if cls is None:
            figures.append(_absent(name, r))
        else:
            if clients == 1:
                target, ok = "p50 <= 1.5x bare", cls.p50 <= 1.5 * bare.p50
            else:
                target, ok = ">= 0.3x bare", cls.rps >= 0.3 * bare.rps
            figures.append(
                Figure(
                    name=name,
                    value=latency(cls) + errors_note(cls),
                    baseline="PK read " + latency(read),
                    ratio=f"{cls.rps / read.rps:.2f}x",
                    target=target,
                    verdict=check(ok),
                    cpu=cls.cpu_split(),
                )
            )
            figures.append(
                Figure(
                    name="  vs the bare PK SELECT",
                    value="",
                    baseline="bare " + latency(bare),
                    ratio=f"{cls.rps / bare.rps:.2f}x"
                    + (f", p50 {cls.p50 / bare.p50:.2f}x" if clients == 1 else ""),
                    cpu=bare.cpu_split(),
                )
            )
            figures.append(
                Figure(
                    name="  service CPU per request",
                    value=f"{cls.app_cpu_ms():.2f} ms",
                    baseline=f"PK read {read.app_cpu_ms():.2f} ms, bare {bare.app_cpu_ms():.2f} ms",
                    ratio=f"{cls.app_cpu_ms() / max(read.app_cpu_ms(), 1e-9):.2f}x",
                )
            )
        figures.append(
            Figure(
                name=f"GET customer (PK read), {clients} conn",
                value=latency(read) + errors_note(read),
                baseline="bare " + latency(bare),
                ratio=f"{read.rps / bare.rps:.2f}x",
                target=">= 0.5x bare" if clients > 1 else "",
                verdict=check(read.rps >= 0.5 * bare.rps) if clients > 1 else "",
                cpu=read.cpu_split(),
            )
        )
    name = "POST batch of 1000, 1 conn"
    bare_batch = r.bare_batch
    if r.batch is None or bare_batch is None:
        figures.append(_absent(name, r))
    else:
        b = r.batch
        figures.append(
            Figure(
                name=name,
                value=f"p50 {b.p50:.0f} p99 {b.p99:.0f} ms ({1000 * b.rps:,.0f} cust/s)"
                + errors_note(b),
                baseline=f"bare SELECT of 1000: p50 {bare_batch.p50:.1f} ms",
                ratio=f"{b.p50 / bare_batch.p50:.1f}x",
                target="p50 <= 300 ms",
                verdict=check(b.p50 <= 300),
                cpu=b.cpu_split(),
            )
        )
    if r.heavy is not None and r.typical is not None:
        h, typical = r.heavy, r.typical
        figures.append(
            Figure(
                name="GET classification, 10,000-event customer, 1 conn",
                value=latency(h) + errors_note(h),
                baseline="typical customer " + latency(typical),
                ratio=f"{h.p50 / typical.p50:.2f}x",
                target="p50 <= 5 ms",
                verdict=check(h.p50 <= 5.0),
                cpu=h.cpu_split(),
            )
        )
    if r.recompute_seconds is not None and r.batch is not None:
        total = r.customers + (1 if r.heavy is not None else 0)
        rate = total / r.recompute_seconds
        figures.append(
            Figure(
                name="python -m app recompute (all, stored)",
                value=f"{r.recompute_seconds:.1f} s ({rate:,.0f} cust/s)",
                baseline=f"batch endpoint {1000 * r.batch.rps:,.0f} cust/s",
                ratio=f"{rate / (1000 * r.batch.rps):.2f}x",
            )
        )
    return Section(
        title=f"classify at {r.customers:,} customers ({r.events:,} events; "
        f"set-up by COPY {r.setup_seconds:.0f} s)",
        figures=figures,
    )


def growth(small: ClassifyResult, large: ClassifyResult) -> Section:
    """Per-request cost at the larger population against the smaller one."""
    figures: list[Figure] = []
    for clients in CLIENTS:
        a = small.single.get(clients, {}).get("classification")
        b = large.single.get(clients, {}).get("classification")
        if a is None or b is None:
            figures.append(missing(f"GET classification, {clients} conn"))
            continue
        figures.append(
            Figure(
                name=f"GET classification p50, {clients} conn",
                value=f"{large.label}: {b.p50:.1f} ms",
                baseline=f"{small.label}: {a.p50:.1f} ms",
                ratio=f"{b.p50 / a.p50:.2f}x",
                target="~1x",
            )
        )
        figures.append(
            Figure(
                name=f"  service CPU per request, {clients} conn",
                value=f"{large.label}: {b.app_cpu_ms():.2f} ms",
                baseline=f"{small.label}: {a.app_cpu_ms():.2f} ms",
                ratio=f"{b.app_cpu_ms() / max(a.app_cpu_ms(), 1e-9):.2f}x",
                target="~1x",
            )
        )
    if small.batch is not None and large.batch is not None:
        figures.append(
            Figure(
                name="POST batch of 1000 p50",
                value=f"{large.label}: {large.batch.p50:.0f} ms",
                baseline=f"{small.label}: {small.batch.p50:.0f} ms",
                ratio=f"{large.batch.p50 / small.batch.p50:.2f}x",
                target="~1x",
            )
        )
    return Section(
        title=f"growth: {large.label} customers against {small.label} (per request)",
        figures=figures,
    )


def main() -> None:
    from bench.report import render

    parser = argparse.ArgumentParser(description="Classification speed against PK reads.")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-heavy", action="store_true", help="skip the 10,000-event customer")
    args = parser.parse_args()
    result = classify_bench(
        args.customers,
        workers=args.workers,
        duration=args.duration,
        rounds=args.rounds,
        heavy=not args.no_heavy,
    )
    print(render([section(result)]))


if __name__ == "__main__":
    main()
