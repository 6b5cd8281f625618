"""The load generator: an asyncio (uvloop) httpx client, HTTP/1.1 keep-alive, in its own
process.

    python -m bench.load SPEC.json      # prints one JSON object of results

It runs apart from the runner so its CPU is counted on its own: while it measures it
also reads the CPU time of the server's process tree and of PostgreSQL's (psutil), so a
starved server shows up in the output instead of passing for a slow one.

SPEC keys: base_url, headers, concurrency, requests_file (JSON Lines of
[method, path, body-text-or-null]), mode ("once": every request once, in order, shared
out over the connections; "duration": cycle through them for `duration` seconds after
`warmup` seconds), sign_webhooks, webhook_secret, salt, watch ({"app": pid,
"postgres": pid}), keep_latencies.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import psutil
from standardwebhooks.webhooks import Webhook

Request = tuple[str, str, bytes | None]


def _tree_cpu(pid: int | None) -> dict[int, float]:
    """User + system CPU seconds of a process and of each of its live descendants."""
    if pid is None:
        return {}
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    seconds: dict[int, float] = {}
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        seconds[p.pid] = t.user + t.system
    return seconds


def _delta(start: dict[int, float], end: dict[int, float]) -> float:
    """CPU used in between by the processes alive at the end (new ones from zero).

    A process that exited inside the window (a closed database connection) is left out
    rather than subtracted.
    """
    return sum(seconds - start.get(pid, 0.0) for pid, seconds in end.items())


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuWindow:
    """Cores used by the client, the app, PostgreSQL and the whole machine over a window."""

    def __init__(self, watch: dict[str, int | None]) -> None:
        self.watch = watch

    def _sample(self) -> tuple[float, float, dict[int, float], dict[int, float], float]:
        return (
            time.perf_counter(),
            _own_cpu(),
            _tree_cpu(self.watch.get("app")),
            _tree_cpu(self.watch.get("postgres")),
            _machine_busy(),
        )

    def open(self) -> None:
        self.start = self._sample()

    def close(self) -> dict[str, float]:
        wall0, client0, app0, pg0, machine0 = self.start
        wall1, client1, app1, pg1, machine1 = self._sample()
        wall = max(wall1 - wall0, 1e-9)
        # In cores: 1.0 is one core busy for the whole window.
        return {
            "client": (client1 - client0) / wall,
            "app": _delta(app0, app1) / wall,
            "postgres": _delta(pg0, pg1) / wall,
            "machine": (machine1 - machine0) / wall,
        }


def read_requests(path: str) -> list[Request]:
    requests: list[Request] = []
    with open(path, "rb") as f:
        for line in f:
            method, target, body = orjson.loads(line)
            requests.append((method, target, None if body is None else body.encode()))
    return requests


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests = read_requests(spec["requests_file"])
    concurrency = int(spec["concurrency"])
    once = spec.get("mode", "once") == "once"
    duration = float(spec.get("duration", 5.0))
    warmup = float(spec.get("warmup", 0.0))
    signer = Webhook(spec["webhook_secret"]) if spec.get("sign_webhooks") else None
    salt = str(spec.get("salt", ""))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sample_error: list[str] = []
    cursor = 0
    measuring = False
    stop_at = 0.0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=spec["base_url"], headers=spec.get("headers", {}), limits=limits, timeout=120
    ) as client:

        def headers_for(number: int, body: bytes | None) -> dict[str, str]:
            headers = {"content-type": "application/json"} if body is not None else {}
            if signer is not None and body is not None:
                msg_id = f"msg_{salt}_{number}"
                now = datetime.now(UTC)
                headers["webhook-id"] = msg_id
                headers["webhook-timestamp"] = str(int(now.timestamp()))
                headers["webhook-signature"] = signer.sign(msg_id, now, body.decode())
            return headers

        async def worker() -> None:
            nonlocal cursor
            while True:
                if once:
                    if cursor >= len(requests):
                        return
                elif time.perf_counter() >= stop_at:
                    return
                number = cursor
                cursor += 1
                method, target, body = requests[number % len(requests)]
                headers = headers_for(number, body)
                started = time.perf_counter()
                response = await client.request(method, target, content=body, headers=headers)
                elapsed = time.perf_counter() - started
                if measuring:
                    latencies.append(elapsed)
                    statuses[response.status_code] += 1
                    if response.status_code >= 300 and not sample_error:
                        sample_error.append(f"{response.status_code} {response.text[:300]}")

        if not once and warmup > 0:
            stop_at = time.perf_counter() + warmup
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = CpuWindow(spec.get("watch", {}))
        measuring = True
        cpu.open()
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cores = cpu.close()

    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0

    errors = sum(n for code, n in statuses.items() if code >= 300)
    return {
        "requests": len(ordered),
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "sample_error": sample_error[0] if sample_error else None,
        "seconds": seconds,
        "rps": len(ordered) / seconds if seconds else 0.0,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "latencies_ms": [1000 * x for x in latencies] if spec.get("keep_latencies") else [],
        "cores": cores,
        "concurrency": concurrency,
    }


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        spec = orjson.loads(f.read())
    try:
        import uvloop
    except ImportError:  # the standard loop works, at some client CPU
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
