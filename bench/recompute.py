"""`recompute` and `import` at two sizes, each beside an outside baseline in the same run.

    python -m bench.recompute                 # 10k and 100k customers (~10 events each)
    python -m bench.recompute --size 1m       # 100k and 1M customers
    python -m bench.recompute --skip-import   # recompute only
    python -m bench.recompute --skip-recompute  # import only

For each size: generated data (`bench.generate`, seeded) is written as JSON Lines and
COPYed into a fresh migrated database, which is then vacuumed and analysed (what
autovacuum does to a table after a bulk load; it lets the range reads use index-only
scans). Then, as whole processes with their wall time and peak RSS (sampled):

- `python -m app recompute` (population model fit included) beside `bench.lifetimes_pipeline` (pandas + lifetimes:
  read the events file, RFM summary, BG/NBD + Gamma-Gamma fit, predictions);
- `python -m app import` of customers.jsonl and events.jsonl into another fresh
  database beside `pandas.read_json(lines=True)` of the same file.

PostgreSQL's own memory is not in the RSS figures (it is a separate server). On a
shared machine absolute times drift; the ratios, measured side by side, are the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

from bench.generate import Dataset, copy_into, generate, summary, write_files
from bench.server import fresh_database, plain_url, server_description

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    stdout: str


def run(args: list[str], *, env: dict[str, str] | None = None) -> Run:
    """A child process's wall time and peak resident memory, sampled every 20 ms.

    (wait4's ru_maxrss would count the pages this process shares with the child
    between fork and exec: the generated data set.)"""
    import psutil

    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env or dict(os.environ))
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}): {stderr[-2000:]}")
    return Run(seconds=seconds, peak_mb=peak / 2**20, stdout=stdout)


def app_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "STRATUM_LOG_LEVEL": "WARNING"}


async def _vacuum(url: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute("VACUUM (ANALYZE) customers")
        await conn.execute("VACUUM (ANALYZE) events")
    finally:
        await conn.close()


def line(what: str, value: str, note: str = "") -> None:
    print(f"{what:<58}{value:<26}{note}", flush=True)


def bench_size(
    n: int, *, work: Path, with_import: bool, with_recompute: bool = True
) -> dict[str, float]:
    as_of = generate_end()
    data = generate(n, seed=1, end=as_of)
    files = {p.name: p for p in write_files(data, work / f"{n}")}
    print(f"\n{summary(data)}", flush=True)
    figures: dict[str, float] = {}
    if not with_recompute:
        return _bench_import(data, files, figures)
    moment = (as_of + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    with fresh_database() as url:
        asyncio.run(copy_into(url, data))
        asyncio.run(_vacuum(url))
        ours = run([sys.executable, "-m", "app", "recompute", "--as-of", moment], env=app_env(url))
    theirs = run(
        [
            sys.executable,
            "-m",
            "bench.lifetimes_pipeline",
            str(files["events.jsonl"]),
            "--as-of",
            moment,
        ]
    )
    fitted = orjson.loads(theirs.stdout)["customers"]
    label = f"{n:,} customers, {len(data.events):,} events"
    line(
        f"recompute, {label}",
        f"{ours.seconds:.1f} s, {ours.peak_mb:.0f} MB",
        f"{theirs.seconds / ours.seconds:.1f}x faster than pandas + lifetimes",
    )
    line(
        "  pandas + lifetimes pipeline, same file (baseline)",
        f"{theirs.seconds:.1f} s, {theirs.peak_mb:.0f} MB",
        f"({fitted:,} buyers predicted)",
    )
    figures.update(recompute=ours.seconds, lifetimes=theirs.seconds, recompute_mb=ours.peak_mb)
    if not with_import:
        return figures
    return _bench_import(data, files, figures)


def _bench_import(
    data: Dataset, files: dict[str, Path], figures: dict[str, float]
) -> dict[str, float]:
    with fresh_database() as url:
        for kind, rows in (("customers", len(data.customers)), ("events", len(data.events))):
            path = files[f"{kind}.jsonl"]
            ours = run([sys.executable, "-m", "app", "import", str(path)], env=app_env(url))
            read = run(
                [
                    sys.executable,
                    "-c",
                    "import sys, pandas; pandas.read_json(sys.argv[1], lines=True)",
                    str(path),
                ]
            )
            line(
                f"import {kind}.jsonl, {rows:,} rows",
                f"{rows / ours.seconds:,.0f} rows/s, {ours.peak_mb:.0f} MB",
                f"{ours.seconds / read.seconds:.2f}x pandas' read time",
            )
            line(
                "  pandas.read_json(lines=True), same file (baseline)",
                f"{rows / read.seconds:,.0f} rows/s, {read.peak_mb:.0f} MB",
            )
            figures[f"import_{kind}"] = rows / ours.seconds
    return figures


def generate_end() -> datetime:
    from bench.generate import default_end

    return default_end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["100k", "1m"], default="100k")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-recompute", action="store_true")
    args = parser.parse_args()
    large = SIZES[args.size]
    print(f"bench.recompute on {server_description()}; {os.cpu_count()} cores", flush=True)
    steps = {"with_import": not args.skip_import, "with_recompute": not args.skip_recompute}
    with tempfile.TemporaryDirectory(prefix="stratum-bench-") as tmp:
        small_figures = bench_size(large // 10, work=Path(tmp), **steps)
        large_figures = bench_size(large, work=Path(tmp), **steps)
    if args.skip_recompute:
        return
    growth = large_figures["recompute"] / small_figures["recompute"]
    print(
        f"\nrecompute time grows {growth:.1f}x for 10x the customers"
        f" (pandas + lifetimes: {large_figures['lifetimes'] / small_figures['lifetimes']:.1f}x)"
    )


if __name__ == "__main__":
    main()
