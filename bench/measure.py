"""Runner-side helpers: drive `bench.load` in its own process, pool its results, and check
which endpoints the running service has."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from bench.server import WEBHOOK_SECRET, Server

# Other work on the machine above this (in cores) marks a window as noisy.
NOISY_CORES = 0.5

# One request: method, path, body (already JSON-encoded) or None.
Request = tuple[str, str, bytes | str | None]


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cores: dict[str, float]
    concurrency: int
    statuses: dict[str, int] = field(default_factory=dict)
    sample_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def app_cpu_ms(self) -> float:
        """The service's CPU per request (all its processes), in milliseconds."""
        return 1000 * self.cores.get("app", 0.0) * self.seconds / max(self.requests, 1)

    def other_cores(self) -> float:
        """Cores used by anything but the client, the service and PostgreSQL."""
        c = self.cores
        ours = c.get("client", 0.0) + c.get("app", 0.0) + c.get("postgres", 0.0)
        return max(c.get("machine", 0.0) - ours, 0.0)

    def cpu_split(self) -> str:
        """Cores used by the client / the service / PostgreSQL / the whole machine; a star
        when other work took more than half a core (a noisy window)."""
        c = self.cores
        split = "/".join(f"{c.get(k, 0.0):.2f}" for k in ("client", "app", "postgres", "machine"))
        return split + (" *" if self.other_cores() > NOISY_CORES else "")


def pool(results: Sequence[LoadResult]) -> LoadResult:
    """Several windows of the same measurement as one (requests and time add up)."""
    seconds = sum(r.seconds for r in results)
    cores: dict[str, float] = {}
    for r in results:
        for k, v in r.cores.items():
            cores[k] = cores.get(k, 0.0) + v * r.seconds / seconds
    statuses: dict[str, int] = {}
    for r in results:
        for k, n in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + n
    return LoadResult(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=seconds,
        latencies_ms=[x for r in results for x in r.latencies_ms],
        cores=cores,
        concurrency=results[0].concurrency,
        statuses=statuses,
        sample_error=next((r.sample_error for r in results if r.sample_error), None),
    )


@dataclass(frozen=True)
class Target:
    """Where load goes and which processes' CPU is watched."""

    server: Server
    postgres_pid: int | None


def run_load(
    target: Target,
    requests: Iterable[Request],
    *,
    concurrency: int,
    duration: float | None = None,
    warmup: float = 0.0,
    sign_webhooks: bool = False,
    salt: str = "",
) -> LoadResult:
    """Send the requests from a separate `python -m bench.load` process.

    With `duration`, cycle through them for that long (after `warmup`); without, send
    each once, in order.
    """
    with tempfile.TemporaryDirectory(prefix="stratum-load-") as tmp:
        requests_file = os.path.join(tmp, "requests.jsonl")
        with open(requests_file, "wb") as f:
            for method, path, body in requests:
                text = body.decode() if isinstance(body, bytes) else body
                f.write(orjson.dumps([method, path, text]) + b"\n")
        spec = {
            "base_url": target.server.base_url,
            "headers": target.server.auth,
            "concurrency": concurrency,
            "requests_file": requests_file,
            "mode": "once" if duration is None else "duration",
            "duration": duration or 0.0,
            "warmup": warmup,
            "sign_webhooks": sign_webhooks,
            "webhook_secret": WEBHOOK_SECRET,
            "salt": salt,
            "watch": {"app": target.server.pid, "postgres": target.postgres_pid},
            "keep_latencies": True,
        }
        spec_file = os.path.join(tmp, "spec.json")
        with open(spec_file, "wb") as f:
            f.write(orjson.dumps(spec))
        out = subprocess.run(
            [sys.executable, "-m", "bench.load", spec_file],
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise RuntimeError(f"bench.load failed:\n{out.stderr[-2000:]}")
    raw: dict[str, Any] = orjson.loads(out.stdout)
    return LoadResult(
        requests=raw["requests"],
        errors=raw["errors"],
        seconds=raw["seconds"],
        latencies_ms=raw["latencies_ms"],
        cores=raw["cores"],
        concurrency=raw["concurrency"],
        statuses=raw["statuses"],
        sample_error=raw["sample_error"],
    )


def missing_endpoints(server: Server, wanted: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (method, path template) pairs the running service does not offer."""
    document = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    return {(m, p) for m, p in wanted if m.lower() not in paths.get(p, {})}
