"""Where a hot path spends its CPU: py-spy samples one service worker under load.

    python -m bench.profile classification --seconds 15
    python -m bench.profile events --seconds 15
    python -m bench.profile webhooks --seconds 15
    python -m bench.profile read

Needs `py-spy` (pip install py-spy) and the right to ptrace the server (root, or
kernel.yama.ptrace_scope=0). The service runs with one worker so one process holds the
whole path; load comes from bench.load as in the suite (16 connections for GETs, 4 for
POST /v1/events, 8 for the signed order webhook). Prints the functions with the most
samples on-CPU, by self time and by inclusive time, and keeps the raw collapsed stacks
(for flame graph tools).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench.classify import _wait_for_model
from bench.generate import copy_into, event_request_bodies, generate, webhook_bodies
from bench.measure import Request, Target, run_load
from bench.server import fresh_database, postgres_info, running

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """`function (path:line)` with the path cut down to its package."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(collapsed: str, top: int = 25) -> str:
    """Top functions by self and inclusive samples from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        if frames[-1].startswith("_worker (concurrent/futures/thread.py"):
            # A thread-pool worker waiting for work, which py-spy counts as running.
            idle += n
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return "no samples (is py-spy allowed to ptrace the server?)"
    lines = [f"{total} samples on CPU ({idle} of idle thread-pool workers left out)"]
    lines += ["", "self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive time (the service's own code and the main libraries):"]
    interesting = ("app/", "sqlalchemy", "asyncpg", "fastapi", "starlette", "pydantic", "uvicorn")
    chosen = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in interesting)]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in chosen[:top]]
    return "\n".join(lines)


def requests_for(path: str, ids: list[str], seconds: float) -> tuple[list[Request], int]:
    rng = random.Random(1)
    if path == "events":
        # Enough batches to keep one worker busy for the whole recording (~25k events/s).
        customers = int(25_000 * (seconds + 5) / 9)
        data = generate(customers, seed=21, customer_prefix="p-", event_prefix="pe-")
        return [("POST", "/v1/events", b) for b in event_request_bodies(data)], 4
    if path == "webhooks":
        # One signed order per request; more than a single worker answers in the time.
        # Live orders, as in bench.ingest: history would delete the day's fit.
        data = generate(
            int(600 * (seconds + 5) / 4), seed=22, customer_prefix="w-", event_prefix="we-"
        )
        bodies = webhook_bodies(data, live=True)
        return [("POST", "/v1/webhooks/orders", b) for b in bodies], 8
    template = {
        "classification": "/v1/customers/{}/classification",
        "read": "/v1/customers/{}",
    }[path]
    return [("GET", template.format(rng.choice(ids)), None) for _ in range(5000)], 16


def main() -> None:
    parser = argparse.ArgumentParser(description="py-spy profile of one hot path under load.")
    parser.add_argument("path", choices=["classification", "events", "webhooks", "read"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--native", action="store_true", help="include C frames (py-spy)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "stratum-profile")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    data = generate(args.customers, seed=1)
    ids = list(data.customers.ids)
    with fresh_database() as url:
        asyncio.run(copy_into(url, data))
        pg_pid, _ = asyncio.run(postgres_info(url))
        with running(url, workers=1) as server:
            if args.path == "classification":
                failure = _wait_for_model(server, ids[0])
                if failure:
                    sys.exit(f"classification fails: {failure}")
            requests, concurrency = requests_for(args.path, ids, args.seconds)
            target = Target(server, pg_pid)
            # Load runs in the background while py-spy samples the single worker.
            duration = None if args.path in ("events", "webhooks") else args.seconds + 3
            results = []
            loader = threading.Thread(
                target=lambda: results.append(
                    run_load(
                        target,
                        requests,
                        concurrency=concurrency,
                        duration=duration,
                        warmup=1.0,
                        sign_webhooks=args.path == "webhooks",
                    )
                )
            )
            loader.start()
            raw = args.out / f"{args.path}.txt"
            common = [
                "--pid",
                str(server.pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "250",
            ]
            subprocess.run(
                [spy, "record", *common, "--format", "raw", "--output", str(raw)],
                check=True,
                capture_output=True,
            )
            loader.join()
    load = results[0]
    print(
        f"{args.path}: {load.rps:,.0f} req/s, p50 {load.p50:.1f} ms under load "
        f"({concurrency} connections, 1 worker); raw stacks in {raw}"
    )
    print(summarise(raw.read_text()))


if __name__ == "__main__":
    main()
