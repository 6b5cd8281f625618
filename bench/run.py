"""The benchmark suite in one command: ingest, classification, growth and the backtest, each
figure beside a baseline measured in the same run, printed as one table.

    python -m bench.run                  # quick suite (about 5 minutes on 2 cores)
    python -m bench.run --size large     # 100k and 1M customers, 1M events ingested
    python -m bench.run --json out.json  # also keep the figures

Sizes (customers for classification / growth, events for ingest, backtest customers):
  quick: 10k (+ one 10,000-event customer) and 100k; 100k events; 5,000
  large: 100k (+ the heavy customer) and 1M; 1M events; 20,000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

from bench import backtest, classify, ingest
from bench.report import Section, render
from bench.server import fresh_database, postgres_info, server_description

SIZES = {
    "quick": {"small": 10_000, "large": 100_000, "events": 100_000, "deliveries": 2000, "bt": 5000},
    "large": {
        "small": 100_000,
        "large": 1_000_000,
        "events": 1_000_000,
        "deliveries": 5000,
        "bt": 20_000,
    },
}


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({model or platform.machine()}), {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )


def postgres_version() -> str:
    with fresh_database() as url:
        _, version = asyncio.run(postgres_info(url))
    return f"PostgreSQL {version}, {server_description()}"


def header(args: argparse.Namespace, seconds: float, pg: str) -> str:
    cpus = os.cpu_count()
    return "\n".join(
        [
            f"Stratum bench, {args.size} suite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{seconds / 60:.1f} min: python -m bench.run"
            + (f" --size {args.size}" if args.size != "quick" else ""),
            f"machine: {machine()}; {pg}",
            f"service: python -m app serve --workers {args.workers} for ingest, "
            f"--workers {args.read_workers} for the classify figures (uvicorn with uvloop and "
            "httptools, STRATUM_LOG_LEVEL=WARNING); bare baseline: python -m bench.serve "
            f"bench.bare_app:app --workers {args.read_workers} (same uvicorn settings; a "
            "minimal FastAPI + asyncpg app doing the same primary-key read)",
            "load: python -m bench.load, an async httpx client (uvloop, HTTP/1.1 keep-alive) "
            "in its own process with the stated number of connections; GET and batch figures "
            f"pool {args.rounds} windows of {args.duration:g} s (each after 1 s of warm-up) "
            "interleaved with their baselines; customers drawn at random",
            "cores: CPU used in the timed window by the load generator / the service's "
            f"processes / PostgreSQL / the whole machine (of {cpus}); 'all' above the sum of "
            "the others is other work on the machine (a star marks windows where it took over "
            "half a core). Latencies in ms; service CPU per request is the service's CPU "
            "time over the requests it served.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="service workers for ingest"
    )
    parser.add_argument(
        "--read-workers",
        type=int,
        default=1,
        help="workers of the service and the bare app for the classify figures",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=2, help="windows per figure")
    parser.add_argument("--no-backtest", action="store_true")
    parser.add_argument("--no-growth", action="store_true", help="only the smaller population")
    parser.add_argument("--json", help="write the figures to this file as well")
    args = parser.parse_args()
    size = SIZES[args.size]
    started = time.perf_counter()
    pg = postgres_version()

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {what}", file=sys.stderr, flush=True)

    sections: list[Section] = []
    progress(f"ingest: {size['events']:,} events")
    sections.append(
        ingest.section(
            ingest.ingest_bench(
                events=size["events"], deliveries=size["deliveries"], workers=args.workers
            )
        )
    )
    runs = [size["small"]] + ([] if args.no_growth else [size["large"]])
    results = []
    for i, customers in enumerate(runs):
        progress(f"classify: {customers:,} customers")
        result = classify.classify_bench(
            customers,
            workers=args.read_workers,
            duration=args.duration,
            rounds=args.rounds,
            heavy=i == 0,
            recompute=i == 0,
        )
        results.append(result)
        sections.append(classify.section(result))
    if len(results) == 2:
        sections.append(classify.growth(results[0], results[1]))
    notes = []
    if not args.no_backtest:
        for process in ("simulate", "generate"):
            progress(f"backtest: {process}, {size['bt']:,} customers")
            bt = backtest.run_backtest(customers=size["bt"], process=process, workers=args.workers)
            sections.append(backtest.section(bt))
            notes.append(backtest.calibration(bt))
    print(header(args, time.perf_counter() - started, pg))
    print()
    print(render(sections))
    for note in notes:
        if note:
            print()
            print(note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(s) for s in sections], f, indent=1)


if __name__ == "__main__":
    main()
