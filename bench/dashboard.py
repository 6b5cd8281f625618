"""Dashboard pages on a big installation, each timed beside the plain SQL of its data.

    python -m bench.dashboard                       # 100,000 customers
    python -m bench.dashboard --customers 1000000   # a million (a few minutes)

Loading: a sample of generated customers (`--sample`, default 10,000) is COPYed in with
its events (`bench.generate`) and classified by the service's own `python -m app
recompute` at several dates over the last 90 days, so the stored classifications and
their changes are the engine's. The sample is then copied inside the database (INSERT …
SELECT, no API) until there are `--customers` customers: each copy gets the sample's
customers, stored classifications, classification changes and contact events (inquiries
and interactions, which the work list reads) under new ids; the customer page is timed on
a customer of the sample, whose full history is there. A VACUUM ANALYZE follows, as
autovacuum would.

Timing: the service runs as a user runs it (`python -m app serve`, the background worker
off so no scheduled recompute runs during the bench), a client signs in through the form
like a browser and fetches each page (full HTML). In every round one stored
classification is written first, so the first view of each page is "cold-ish" (the
population-wide aggregates the dashboard keeps per classification stamp are recomputed;
PostgreSQL's buffers stay warm), and a second view is warm. Beside each page: its data
read by plain SQL over asyncpg (the same aggregates and pages, nothing kept), in the same
round.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from app.core.migrate import upgrade
from bench.generate import copy_into, generate, summary
from bench.server import fresh_database, plain_url, running, server_description, server_env

# Days before the data's end at which the sample is classified (daily recomputes would
# spread changes over every day; these give movements in each window and a size history).
RECOMPUTE_DAYS = (60, 21, 5, 0)


def _recompute(url: str, as_of: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app", "recompute", "--as-of", as_of],
        env=server_env(url),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


_REPLICATE = (
    """
    INSERT INTO customers (id, external_id, name, email, phone, country, customer_type, role,
                           industry, company_size, created_at, attributes)
    SELECT c.id + k * $2, c.external_id || '-' || k, c.name, c.email, c.phone, c.country,
           c.customer_type, c.role, c.industry, c.company_size, c.created_at, c.attributes
      FROM customers c, generate_series(1, $1) k
     WHERE c.id <= $2
    """,
    """
    INSERT INTO classifications (customer_id, as_of, policy_version, tier, tier_score, stage,
                                 strategy, churn_probability, orders, revenue,
                                 expected_revenue, segments, updated_at)
    SELECT k.customer_id + n * $2, k.as_of, k.policy_version, k.tier, k.tier_score, k.stage,
           k.strategy, k.churn_probability, k.orders, k.revenue, k.expected_revenue,
           k.segments, k.updated_at
      FROM classifications k, generate_series(1, $1) n
     WHERE k.customer_id <= $2
    """,
    """
    INSERT INTO classification_changes (customer_id, as_of, policy_version, from_tier, to_tier,
                                        from_stage, to_stage, changed_at)
    SELECT c.customer_id + n * $2, c.as_of, c.policy_version, c.from_tier, c.to_tier,
           c.from_stage, c.to_stage, c.changed_at
      FROM classification_changes c, generate_series(1, $1) n
     WHERE c.customer_id <= $2
     ORDER BY c.as_of, n, c.id
    """,
    """
    INSERT INTO events (event_id, customer_id, type, occurred_at, channel, received_at)
    SELECT e.event_id || '-' || n, e.customer_id + n * $2, e.type, e.occurred_at, e.channel,
           e.received_at
      FROM events e, generate_series(1, $1) n
     WHERE e.customer_id <= $2 AND e.type IN ('inquiry', 'interaction')
    """,
)


_TABLES = ("customers", "classifications", "classification_changes", "events")


async def _replicate(url: str, copies: int) -> None:
    """`copies` more copies of everything the sample has (see the module's docstring)."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        span = int(await conn.fetchval("SELECT max(id) FROM customers"))
        # Secondary indexes are built once after the copies, not row by row (the primary
        # and unique keys stay, so a copy that collided would fail).
        indexes = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])"
            "   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conname = i.indexname)",
            list(_TABLES),
        )
        async with conn.transaction():
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            for statement in _REPLICATE:
                await conn.execute(statement, copies, span)
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for index in indexes:
                await conn.execute(index["indexdef"])
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)",
                span * (copies + 1),
            )
            # The copied contact events marked their customers for re-classification;
            # they are classified already (as copies of the sample).
            await conn.execute("DELETE FROM dirty_customers")
        for table in _TABLES:
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


# -- the baseline: each page's data in plain SQL, nothing kept -------------------------

_MATRIX = """
SELECT tier, stage, count(*), coalesce(sum(revenue), 0) FROM classifications
 GROUP BY tier, stage ORDER BY tier, stage"""
# Every figure of the overview in one pass: cells, splits by the stored sub-segments,
# churn bins, strategies (the statement the service runs, on the same index).
_POPULATION = """
SELECT tier, stage, segment_geography, segment_customer_type, strategy,
       least(width_bucket(churn_probability, 0, 1, 20), 20), count(*), sum(revenue),
       max(as_of), max(policy_version)
  FROM classifications GROUP BY 1, 2, 3, 4, 5, 6"""
_CUSTOMERS = "SELECT count(*) FROM customers"
_MOVES = """
SELECT from_tier, from_stage, to_tier, to_stage, count(*) FROM classification_changes
 WHERE as_of > now() - make_interval(days => $1) GROUP BY 1, 2, 3, 4"""
_CHANGES = """
SELECT c.id, c.as_of, c.from_tier, c.from_stage, c.to_tier, c.to_stage, u.external_id, u.name
  FROM classification_changes c JOIN customers u ON u.id = c.customer_id
 WHERE c.as_of > now() - make_interval(days => $1) AND ($2 OR c.from_tier IS NOT NULL)
 ORDER BY c.as_of DESC, c.id DESC LIMIT 51"""
_FLOWS = """
SELECT date_trunc('day', as_of, 'UTC'), from_tier, from_stage, to_tier, to_stage, count(*)
  FROM classification_changes WHERE as_of > now() - interval '90 days' GROUP BY 1, 2, 3, 4, 5"""
_CELL_MEMBERS = """
SELECT u.*, k.* FROM customers u JOIN classifications k ON k.customer_id = u.id
 WHERE k.tier = $1 AND k.stage = $2 AND ($3::text IS NULL OR u.country = $3)
 ORDER BY u.id LIMIT 51"""
_CELL_SIZE = "SELECT count(*) FROM classifications WHERE tier = $1 AND stage = $2"
_CELL_FLOWS = """
SELECT date_trunc('day', as_of, 'UTC'), sum(d) FROM (
  SELECT as_of, 1 AS d FROM classification_changes
   WHERE to_tier = $1 AND to_stage = $2 AND as_of > now() - interval '90 days'
  UNION ALL
  SELECT as_of, -1 FROM classification_changes
   WHERE from_tier = $1 AND from_stage = $2 AND as_of > now() - interval '90 days') m
 GROUP BY 1"""
_RULE_MEMBERS = """
SELECT u.*, k.* FROM customers u LEFT JOIN classifications k ON k.customer_id = u.id
 WHERE u.country = 'DE' AND u.customer_type = 'business' ORDER BY u.id LIMIT 51"""
_RULE_SIZE = "SELECT count(*) FROM customers WHERE country = 'DE' AND customer_type = 'business'"
_CUSTOMER = [
    "SELECT u.*, k.* FROM customers u LEFT JOIN classifications k ON k.customer_id = u.id"
    " WHERE u.external_id = $1",
    "SELECT * FROM events WHERE customer_id = (SELECT id FROM customers WHERE external_id = $1)"
    " ORDER BY occurred_at DESC, id DESC LIMIT 50",
    "SELECT * FROM classification_changes"
    " WHERE customer_id = (SELECT id FROM customers WHERE external_id = $1)"
    " ORDER BY changed_at DESC, id DESC LIMIT 100",
]
_STRATEGIES = "SELECT strategy, count(*) FROM classifications GROUP BY strategy"
_DUE = """
SELECT k.customer_id, k.tier_score, u.external_id, u.name, contact.last
  FROM classifications k JOIN customers u ON u.id = k.customer_id
  CROSS JOIN LATERAL (SELECT max(e.occurred_at) AS last FROM events e
                       WHERE e.customer_id = k.customer_id
                         AND e.type IN ('inquiry', 'interaction')) contact
 WHERE k.strategy = $1 AND (contact.last IS NULL OR contact.last < now() - make_interval(days => $2))
 ORDER BY k.tier_score DESC, k.customer_id LIMIT $3"""

Query = tuple[str, Sequence[Any]]


def baselines(customer: str, strategies: Sequence[tuple[str, int]]) -> dict[str, list[Query]]:
    """Per page, the statements that read what it shows."""
    due = [(_DUE, (code, cadence, 6)) for code, cadence in strategies]
    return {
        "overview": [(_POPULATION, ()), (_CUSTOMERS, ())],
        "movements, 7 days": [(_MOVES, (7,)), (_CHANGES, (7, False))],
        "movements, 90 days + first": [(_MOVES, (90,)), (_CHANGES, (90, True))],
        "segments (18 cells, 90-day sizes)": [(_MATRIX, ()), (_FLOWS, ())],
        "segment high.at_risk + members": [
            (_CELL_MEMBERS, ("high", "at_risk", None)),
            (_CELL_SIZE, ("high", "at_risk")),
            (_CELL_FLOWS, ("high", "at_risk")),
        ],
        "segment low.churned, filtered DE": [
            (_CELL_MEMBERS, ("low", "churned", "DE")),
            (_CELL_SIZE, ("low", "churned")),
            (_CELL_FLOWS, ("low", "churned")),
        ],
        "custom segment (rule, count)": [(_RULE_MEMBERS, ()), (_RULE_SIZE, ())],
        "customer": [(sql, (customer,)) for sql in _CUSTOMER],
        "today (work list)": [(_STRATEGIES, ()), *due],
        "today, zh-CN": [(_STRATEGIES, ()), *due],
        "GET /v1/segments/overview": [(_MATRIX, ()), (_CUSTOMERS, ())],
    }


async def _run_sql(conn: asyncpg.Connection, queries: Sequence[Query]) -> float:
    started = time.perf_counter()
    for sql, args in queries:
        await conn.fetch(sql, *args)
    return time.perf_counter() - started


# -- the pages --------------------------------------------------------------------------


def _sign_in(base: str, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, timeout=120)
    form = browser.get("/dashboard/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found, "no sign-in form"
    done = browser.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": found[1]})
    assert done.status_code == 303, done.text
    return browser


def _timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return elapsed


def _warm_up(client: httpx.Client, path: str) -> None:
    """One view, waiting out the 503 of a population fit still running after start."""
    deadline = time.monotonic() + 300
    while client.get(path).status_code == 503 and time.monotonic() < deadline:
        time.sleep(2)


async def _touch(conn: asyncpg.Connection) -> None:
    """Write one stored classification, as the incremental worker does: the stamp moves."""
    await conn.execute(
        "UPDATE classifications SET updated_at = clock_timestamp()"
        " WHERE customer_id = (SELECT min(customer_id) FROM classifications)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database",
        metavar="URL",
        help="use (and keep) this database: loaded when it has no customers, reused after",
    )
    args = parser.parse_args()
    sample = min(args.sample, args.customers)
    copies = max(0, -(-args.customers // sample) - 1)

    where = "the PostgreSQL of --database" if args.database else server_description()
    print(f"# dashboard pages, {sample * (copies + 1):,} customers, {where}")
    with _database(args.database) as url:
        if asyncio.run(_is_empty(url)):
            _load(url, sample=sample, copies=copies, seed=args.seed)
        else:
            print(f"reusing the data in {args.database}")
        asyncio.run(_describe(url))
        env = {"STRATUM_WORKER": "false"}
        with running(url, workers=1, env=env) as server:
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
            )
            someone = api.get("/v1/customers?tier=high&stage=at_risk&limit=1").json()["items"]
            customer = someone[0]["customer_id"] if someone else asyncio.run(_first(url))
            policy = api.get("/v1/policy").json()
            strategies = [(s["code"], s["cadence_days"]) for s in policy["strategies"]]
            browser = _sign_in(server.base_url, server.key)
            pages = {
                "overview": "/dashboard",
                "movements, 7 days": "/dashboard/movements?days=7",
                "movements, 90 days + first": "/dashboard/movements?days=90&first=true",
                "segments (18 cells, 90-day sizes)": "/dashboard/segments",
                "segment high.at_risk + members": "/dashboard/segments/high.at_risk",
                "segment low.churned, filtered DE": "/dashboard/segments/low.churned?country=DE",
                "custom segment (rule, count)": "/dashboard/segments/de-business",
                "customer": f"/dashboard/customers/{customer}",
                "today (work list)": "/dashboard/today",
                "today, zh-CN": "/dashboard/today?lang=zh-CN",
            }
            endpoint = "GET /v1/segments/overview"
            sql = baselines(customer, strategies)
            cold: dict[str, list[float]] = {name: [] for name in [*pages, endpoint]}
            warm: dict[str, list[float]] = {name: [] for name in [*pages, endpoint]}
            plain: dict[str, list[float]] = {name: [] for name in [*pages, endpoint]}
            first: dict[str, float] = {}
            for name, path in pages.items():
                _warm_up(browser, "/dashboard/customers/" + customer)  # the population fit
                first[name] = _timed(browser, path)
            first[endpoint] = _timed(api, "/v1/segments/overview")

            async def rounds() -> None:
                conn = await asyncpg.connect(plain_url(url))
                await conn.execute("SET jit = off")  # as the service runs the pass
                try:
                    for _ in range(args.rounds):
                        await _touch(conn)
                        for name, path in pages.items():
                            cold[name].append(_timed(browser, path))
                            warm[name].append(_timed(browser, path))
                            plain[name].append(await _run_sql(conn, sql[name]))
                        cold[endpoint].append(_timed(api, "/v1/segments/overview"))
                        warm[endpoint].append(_timed(api, "/v1/segments/overview"))
                        plain[endpoint].append(await _run_sql(conn, sql[endpoint]))
                finally:
                    await conn.close()

            asyncio.run(rounds())
            csv_started = time.perf_counter()
            with browser.stream("GET", "/dashboard/segments/high.*/members.csv") as response:
                rows = sum(chunk.count("\n") for chunk in response.iter_text()) - 1
            csv_seconds = time.perf_counter() - csv_started

    print(
        f"\nfirst = the page's first view in a new service process (everything computed"
        f" while it waits); median of {args.rounds} rounds: after write = the first view"
        " after a classification was written, warm = the view after that; plain SQL ="
        " the page's data read by asyncpg, nothing kept, in the same round\n"
    )
    print(
        f"{'page':<36} {'first ms':>9} {'after write ms':>15} {'warm ms':>8} {'max ms':>7}"
        f" {'plain SQL ms':>13} {'after write/SQL':>16}"
    )
    for name in cold:
        c, w, p = (statistics.median(v) for v in (cold[name], warm[name], plain[name]))
        print(
            f"{name:<36} {first[name] * 1000:>9.0f} {c * 1000:>15.0f} {w * 1000:>8.0f}"
            f" {max(cold[name] + warm[name]) * 1000:>7.0f} {p * 1000:>13.0f} {c / p:>16.2f}"
        )
    print(
        f"\nCSV high.* ({rows:,} rows, streamed): {csv_seconds:.1f} s,"
        f" {rows / max(csv_seconds, 1e-9):,.0f} rows/s"
    )


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is None:
        with fresh_database() as fresh:
            yield fresh
    else:
        upgrade(url)
        yield url


async def _is_empty(url: str) -> bool:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return not await conn.fetchval("SELECT EXISTS (SELECT FROM customers)")
    finally:
        await conn.close()


async def _first(url: str) -> str:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return str(await conn.fetchval("SELECT external_id FROM customers ORDER BY id LIMIT 1"))
    finally:
        await conn.close()


def _load(url: str, *, sample: int, copies: int, seed: int) -> None:
    started = time.perf_counter()
    data = generate(sample, seed=seed)
    print(f"sample: generated {summary(data)} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    asyncio.run(copy_into(url, data))
    print(f"sample COPY in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    for days in RECOMPUTE_DAYS:
        _recompute(url, (data.end - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    print(
        f"sample classified at {len(RECOMPUTE_DAYS)} dates (python -m app recompute)"
        f" in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    asyncio.run(_replicate(url, copies))
    print(f"{copies} copies + VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


async def _describe(url: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM customers) AS customers,"
            " (SELECT count(*) FROM classifications) AS classified,"
            " (SELECT count(*) FROM classification_changes) AS changes,"
            " (SELECT count(*) FROM events) AS events,"
            " (SELECT max(as_of) FROM classifications) AS as_of"
        )
        assert row is not None
        stamp: datetime = row["as_of"]
        print(
            f"{row['customers']:,} customers, {row['classified']:,} stored classifications"
            f" (as of {stamp:%Y-%m-%d}), {row['changes']:,} changes, {row['events']:,} events"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
