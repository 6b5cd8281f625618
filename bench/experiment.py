"""Measure a proposed change before making it: the service as it is against the service with
a variant from `bench.variants` applied, side by side on one database, in alternating
windows.

    python -m bench.experiment classify no_pre_ping
    python -m bench.experiment classify no_pre_ping,autocommit_reads --customers 10000
    python -m bench.experiment ingest json_body
    python -m bench.experiment classify pool20 --workers 1

Prints, per figure, the unchanged service, the variant, and variant / unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Callable

import asyncpg

from bench.classify import _wait_for_model
from bench.generate import copy_into, event_request_bodies, generate
from bench.ingest import _load_customers, dataset
from bench.measure import LoadResult, Request, Target, pool, run_load
from bench.report import HEADINGS, Figure, Section, render
from bench.server import fresh_database, plain_url, postgres_info, running

POOL_SIZE = {"pool20": "20"}
COLUMNS = ("figure", "with the variant", "service as it is", "ratio", "", "", HEADINGS[-1])


def _env(variants: str) -> dict[str, str]:
    env = {"STRATUM_BENCH_VARIANTS": variants}
    for name, size in POOL_SIZE.items():
        if name in variants.split(","):
            env["STRATUM_DB_POOL_SIZE"] = size
    return env


def _compare(
    name: str, base: LoadResult, variant: LoadResult, unit: Callable[[LoadResult], float]
) -> list[Figure]:
    def describe(r: LoadResult) -> str:
        errors = f" ({r.errors} errors)" if r.errors else ""
        return f"{unit(r):,.0f}/s p50 {r.p50:.1f} ms, CPU/req {r.app_cpu_ms():.2f} ms{errors}"

    return [
        Figure(
            name=name,
            value=describe(variant),
            baseline=describe(base),
            ratio=f"{unit(variant) / unit(base):.2f}x",
            cpu=variant.cpu_split(),
        ),
        Figure(
            name="  p50, service CPU per request",
            value="",
            baseline="",
            ratio=f"{variant.p50 / base.p50:.2f}x, {variant.app_cpu_ms() / base.app_cpu_ms():.2f}x",
        ),
    ]


def classify(variants: str, *, customers: int, workers: int, duration: float, rounds: int) -> None:
    data = generate(customers, seed=1)
    ids = list(data.customers.ids)
    rng = random.Random(3)
    figures: list[Figure] = []
    with fresh_database() as url:
        asyncio.run(copy_into(url, data))
        pg, _ = asyncio.run(postgres_info(url))
        with (
            running(url, workers=workers) as base,
            running(url, workers=workers, asgi="bench.variants:app", env=_env(variants)) as var,
        ):
            for server in (base, var):
                failure = _wait_for_model(server, ids[0])
                if failure:
                    raise SystemExit(f"classification fails: {failure}")
            for path in ("/v1/customers/{}/classification", "/v1/customers/{}"):
                requests: list[Request] = [
                    ("GET", path.format(rng.choice(ids)), None) for _ in range(5000)
                ]
                for clients in (1, 16):
                    windows: dict[str, list[LoadResult]] = {"base": [], "variant": []}
                    for _ in range(rounds):
                        for label, server in (("base", base), ("variant", var)):
                            windows[label].append(
                                run_load(
                                    Target(server, pg),
                                    requests,
                                    concurrency=clients,
                                    duration=duration,
                                    warmup=1.0,
                                )
                            )
                    figures += _compare(
                        f"GET {path.format('{id}')}, {clients} conn",
                        pool(windows["base"]),
                        pool(windows["variant"]),
                        lambda r: r.rps,
                    )
    print(
        render([Section(title=f"variant {variants} against the service as it is", figures=figures)])
    )


def ingest(variants: str, *, events: int, workers: int, rounds: int) -> None:
    data = dataset(events, 11)
    bodies: list[Request] = [("POST", "/v1/events", b) for b in event_request_bodies(data)]
    windows: dict[str, list[LoadResult]] = {"base": [], "variant": []}

    async def truncate(url: str) -> None:
        conn = await asyncpg.connect(plain_url(url))
        try:
            await conn.execute("TRUNCATE events")
        finally:
            await conn.close()

    with fresh_database() as url:
        asyncio.run(_load_customers(url, data))
        pg, _ = asyncio.run(postgres_info(url))
        with (
            running(url, workers=workers) as base,
            running(url, workers=workers, asgi="bench.variants:app", env=_env(variants)) as var,
        ):
            for server in (base, var):  # warm-up, then an empty table for each window
                run_load(Target(server, pg), bodies[:8], concurrency=4)
            for _ in range(rounds):
                for label, server in (("base", base), ("variant", var)):
                    asyncio.run(truncate(url))
                    windows[label].append(run_load(Target(server, pg), bodies, concurrency=4))
    figures = _compare(
        "POST /v1/events, 1000/request, 4 conn (events/s)",
        pool(windows["base"]),
        pool(windows["variant"]),
        lambda r: 1000 * r.rps,
    )
    print(
        render([Section(title=f"variant {variants} against the service as it is", figures=figures)])
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", choices=["classify", "ingest"])
    parser.add_argument("variants", help="comma-separated names from bench.variants")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.path == "classify":
        classify(
            args.variants,
            customers=args.customers,
            workers=args.workers,
            duration=args.duration,
            rounds=args.rounds,
        )
    else:
        ingest(args.variants, events=args.events, workers=args.workers, rounds=args.rounds)


if __name__ == "__main__":
    main()
