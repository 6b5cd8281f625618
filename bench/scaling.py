"""What more processes, a read replica and PgBouncer buy, in the same run.

    python -m bench.scaling --customers 10000 --workers 2

On a throw-away primary with a streaming replica (and PgBouncer in transaction mode in
front of the primary, when `pgbouncer` is installed), all on this machine, it measures
`GET /v1/customers/{id}` and `GET .../classification` at 16 connections for:
  1. one worker on the primary,
  2. `--workers` workers on the primary,
  3. the same with STRATUM_READ_REPLICA_URL (reads served by the replica),
  4. the same through PgBouncer (STRATUM_DB_PGBOUNCER=true),
in interleaved windows, each beside the first. On one machine the replica and PgBouncer
share its cores with everything else, so they show their cost here; what they buy is
capacity on other hosts (the replica) and many service processes on few server
connections (PgBouncer).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.classify import _wait_for_model
from bench.cluster import Node, postgres_bin, start_pgbouncer, start_primary, start_replica
from bench.generate import copy_into, generate
from bench.measure import LoadResult, Request, Target, pool, run_load
from bench.report import Figure, Section, latency, render
from bench.server import postgres_info, running

CLIENTS = 16


def _paths(template: str, ids: list[str], seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [("GET", template.format(rng.choice(ids)), None) for _ in range(5000)]


def scaling_bench(
    customers: int, *, workers: int, duration: float, rounds: int
) -> tuple[list[Figure], str]:
    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit("no PostgreSQL server binaries (initdb, pg_basebackup) found")
    root = Path(tempfile.mkdtemp(prefix="stratum-scaling-"))
    nodes: list[Node] = []
    try:
        primary = start_primary(root, binaries)
        nodes.append(primary)
        from app.core.migrate import upgrade

        upgrade(primary.url)
        data = generate(customers, seed=1)
        ids = list(data.customers.ids)
        asyncio.run(copy_into(primary.url, data))
        replica = start_replica(primary, root)
        nodes.append(replica)
        bouncer_binary = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
        )
        pg_pid, _ = asyncio.run(postgres_info(primary.url))
        with ExitStack() as stack:
            setups: dict[str, Target] = {}
            one = stack.enter_context(running(primary.url, workers=1))
            setups["1 worker"] = Target(one, pg_pid)
            many = stack.enter_context(running(primary.url, workers=workers))
            setups[f"{workers} workers"] = Target(many, pg_pid)
            replicated = stack.enter_context(
                running(
                    primary.url,
                    workers=workers,
                    env={"STRATUM_READ_REPLICA_URL": replica.url},
                )
            )
            setups[f"{workers} workers, reads on the replica"] = Target(replicated, pg_pid)
            if bouncer_binary is not None:
                bouncer = start_pgbouncer(bouncer_binary, primary, root, pool_size=20)
                stack.callback(bouncer.stop)
                pooled = stack.enter_context(
                    running(
                        bouncer.url,
                        workers=workers,
                        asgi="app.asgi:app",  # migrations are applied; they need a session
                        env={"STRATUM_DB_PGBOUNCER": "true"},
                    )
                )
                setups[f"{workers} workers through PgBouncer"] = Target(pooled, pg_pid)
            for target in setups.values():
                failure = _wait_for_model(target.server, ids[0])
                if failure:
                    raise SystemExit(f"classification fails: {failure}")
            plans = {
                "GET customer": _paths("/v1/customers/{}", ids, 1),
                "GET classification": _paths("/v1/customers/{}/classification", ids, 2),
            }
            figures: list[Figure] = []
            for what, paths in plans.items():
                windows: dict[str, list[LoadResult]] = {name: [] for name in setups}
                for _ in range(rounds):
                    for name, target in setups.items():
                        windows[name].append(
                            run_load(
                                target, paths, concurrency=CLIENTS, duration=duration, warmup=1.0
                            )
                        )
                pooled_results = {name: pool(w) for name, w in windows.items()}
                first = next(iter(pooled_results.values()))
                for name, result in pooled_results.items():
                    figures.append(
                        Figure(
                            name=f"{what}, {CLIENTS} conn, {name}",
                            value=latency(result)
                            + (f" ({result.errors} errors)" if result.errors else ""),
                            baseline="1 worker " + latency(first),
                            ratio=f"{result.rps / first.rps:.2f}x",
                            cpu=result.cpu_split(),
                        )
                    )
        note = "" if bouncer_binary else "pgbouncer is not installed: its rows are left out"
        return figures, note
    finally:
        for node in reversed(nodes):
            if node.running():
                node.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Workers, a replica and PgBouncer.")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    figures, note = scaling_bench(
        args.customers, workers=args.workers, duration=args.duration, rounds=args.rounds
    )
    title = f"scaling at {args.customers:,} customers (primary, replica and PgBouncer local)"
    print(render([Section(title=title, figures=figures)]))
    if note:
        print(note)


if __name__ == "__main__":
    main()
