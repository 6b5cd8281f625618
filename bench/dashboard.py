"""Dashboard pages on a big installation, timed beside `GET /v1/segments/overview`.

    python -m bench.dashboard                       # 100,000 customers
    python -m bench.dashboard --customers 1000000   # a million (generation and two
                                                    # recomputes take several minutes)

Loads generated customers and events with COPY (`bench.generate`), classifies everyone
twice with `python -m app recompute` (30 days ago, then now, so there are movements to
show), starts the service as a user does, signs in through the form like a browser and
times each page (full HTML received), interleaved with the overview endpoint in every
round so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from datetime import timedelta

import httpx

from bench.generate import copy_into, generate, summary
from bench.server import fresh_database, running, server_description, server_env

BASELINE = "/v1/segments/overview"


def _recompute(url: str, as_of: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app", "recompute", "--as-of", as_of],
        env=server_env(url),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _sign_in(base: str, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, timeout=120)
    form = browser.get("/dashboard/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found, "no sign-in form"
    done = browser.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": found[1]})
    assert done.status_code == 303, done.text
    return browser


def _timed(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"# dashboard pages, {args.customers:,} customers, {server_description()}")
    started = time.perf_counter()
    data = generate(args.customers, seed=args.seed)
    print(f"generated {summary(data)} in {time.perf_counter() - started:.1f} s")
    with fresh_database() as url:
        started = time.perf_counter()
        asyncio.run(copy_into(url, data))
        print(f"COPY in {time.perf_counter() - started:.1f} s")
        end = data.end
        for as_of in (end - timedelta(days=30), end):
            stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"recompute as of {stamp}: {_recompute(url, stamp):.1f} s")
        with running(url, workers=1) as server:
            api = httpx.Client(base_url=server.base_url, headers=server.auth, timeout=120)
            api.post(
                "/v1/segments",
                json={
                    "key": "de-business",
                    "name": "German businesses",
                    "rule": {
                        "all": [
                            {"field": "country", "op": "eq", "value": "DE"},
                            {"field": "customer_type", "op": "eq", "value": "business"},
                        ]
                    },
                },
            ).raise_for_status()
            someone = api.get("/v1/customers?tier=high&stage=at_risk&limit=1").json()["items"]
            customer = someone[0]["customer_id"] if someone else data.customers.ids[0]
            browser = _sign_in(server.base_url, server.key)
            pages = {
                "GET /v1/segments/overview (baseline)": BASELINE,
                "overview": "/dashboard",
                "movements, 7 days": "/dashboard/movements?days=7",
                "movements, 90 days + first": "/dashboard/movements?days=90&first=true",
                "segments (18 cells, 90-day sizes)": "/dashboard/segments",
                "segment high.at_risk + members": "/dashboard/segments/high.at_risk",
                "segment low.churned, filtered DE": "/dashboard/segments/low.churned?country=DE",
                "custom segment (rule, count)": "/dashboard/segments/de-business",
                "customer (live classification)": f"/dashboard/customers/{customer}",
                "today (work list)": "/dashboard/today",
                "today, zh-CN": "/dashboard/today?lang=zh-CN",
            }
            # The first view after a recompute computes the population-wide aggregates
            # that later views reuse until classifications are written again.
            first = {
                name: _timed(api if path == BASELINE else browser, path)
                for name, path in pages.items()
            }
            times: dict[str, list[float]] = {name: [] for name in pages}
            for _ in range(args.rounds):
                for name, path in pages.items():
                    client = api if path == BASELINE else browser
                    times[name].append(_timed(client, path))
            csv_started = time.perf_counter()
            with browser.stream("GET", "/dashboard/segments/high.*/members.csv") as response:
                rows = sum(chunk.count("\n") for chunk in response.iter_text()) - 1
            csv_seconds = time.perf_counter() - csv_started

    baseline = statistics.median(times["GET /v1/segments/overview (baseline)"])
    print(f"\n{'page':<40} {'first ms':>9} {'median ms':>10} {'max ms':>8} {'x overview':>11}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<40} {first[name] * 1000:>9.0f} {median * 1000:>10.0f}"
            f" {max(values) * 1000:>8.0f} {median / baseline:>11.2f}"
        )
    print(
        f"\nCSV high.* ({rows:,} rows, streamed): {csv_seconds:.1f} s,"
        f" {rows / max(csv_seconds, 1e-9):,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
