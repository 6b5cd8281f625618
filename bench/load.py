"""The load generator: an asyncio httpx client in its own process.

    python -m bench.load SPEC.json  ->  prints one JSON line of results

SPEC: {"base_url", "headers", "concurrency", "requests": [[method, path, body|null], ...],
       "sign_webhooks": bool}. Requests are shared out over `concurrency` connections; the
client's own CPU time is reported so a starved server does not go unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from bench.server import WEBHOOK_SECRET


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    requests: list[list[Any]] = spec["requests"]
    concurrency = int(spec["concurrency"])
    signer = Webhook(WEBHOOK_SECRET) if spec.get("sign_webhooks") else None
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=spec["base_url"], headers=spec.get("headers", {}), limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < len(requests):
                method, path, body = requests[next_index]
                number = next_index
                next_index += 1
                content = None if body is None else orjson.dumps(body)
                headers = {"content-type": "application/json"} if content else {}
                if signer is not None and content is not None:
                    now = datetime.now(UTC)
                    msg_id = f"msg_{number}_{spec.get('salt', '')}"
                    headers.update(
                        {
                            "webhook-id": msg_id,
                            "webhook-timestamp": str(int(now.timestamp())),
                            "webhook-signature": signer.sign(msg_id, now, content.decode()),
                        }
                    )
                started = time.perf_counter()
                response = await client.request(method, path, content=content, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    errors += 1

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    ordered = sorted(latencies)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * ordered[len(ordered) // 2] if ordered else 0.0,
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        if ordered
        else 0.0,
        "client_cpu_share": cpu / elapsed if elapsed else 0.0,
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(_run(spec))))


if __name__ == "__main__":
    main()
