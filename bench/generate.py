"""Seeded customers and purchase histories, written with COPY or as API-shaped files.

Purchases follow a repeat-purchase process with heterogeneous rates, spend and dropout
(Pareto/NBD-like: Gamma-distributed rates, exponential lifetimes, Gamma-Gamma spend),
with yearly seasonality, plus inquiries, feedback, interactions and refunds.

    python -m bench.generate --customers 10000 --seed 1 --out bench/data
    python -m bench.generate --customers 100000 --copy-to postgresql://...
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from app.policies.default import default_document

COUNTRIES = ["CN", "US", "DE", "GB", "FR", "JP", "BR", "IN", "AU", "CA", "NL", "SG", "MX", "ES"]
COUNTRY_WEIGHTS = np.array([25, 18, 9, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2], dtype=float)
CURRENCY = {
    "CN": "CNY",
    "US": "USD",
    "DE": "EUR",
    "GB": "GBP",
    "FR": "EUR",
    "JP": "JPY",
    "BR": "BRL",
    "IN": "INR",
    "AU": "AUD",
    "CA": "CAD",
    "NL": "EUR",
    "SG": "SGD",
    "MX": "MXN",
    "ES": "EUR",
}
INDUSTRIES = ["retail", "machinery", "textiles", "electronics", "food", "chemicals", "logistics"]
SIZES = ["micro", "small", "medium", "large", "enterprise"]
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
# The columns event_records() fills, in its order.
EVENT_COLUMNS = [
    "event_id",
    "customer_id",
    "type",
    "occurred_at",
    "amount",
    "currency",
    "amount_base",
    "rating",
]
SPAN_DAYS = 1400.0


@dataclass
class Dataset:
    customers: list[tuple[Any, ...]]  # external_id, country, type, role, industry, size
    events: list[
        tuple[Any, ...]
    ]  # event_id, customer index, type, occurred_at, amount, currency, rating


def generate(customers: int, *, seed: int = 1, end: datetime | None = None) -> Dataset:
    """About ten events per customer, all at or before `end` (default: EPOCH + span)."""
    rng = np.random.default_rng(seed)
    end = end or EPOCH + timedelta(days=SPAN_DAYS)
    span = (end - EPOCH).total_seconds() / 86400
    country = rng.choice(len(COUNTRIES), customers, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    business = rng.random(customers) < 0.45
    rows = [
        (
            f"c-{i:07d}",
            COUNTRIES[country[i]],
            "business" if business[i] else "individual",
            "distributor" if business[i] and rng.random() < 0.3 else "end_customer",
            INDUSTRIES[int(rng.integers(len(INDUSTRIES)))] if business[i] else None,
            SIZES[int(rng.integers(len(SIZES)))] if business[i] else None,
        )
        for i in range(customers)
    ]
    start = rng.uniform(0, span * 0.9, customers)
    rate = rng.gamma(0.7, 1 / 25.0, customers)  # orders per day, mean ~ one a month
    lifetime = rng.exponential(500.0, customers)
    spend_scale = rng.gamma(3.0, 40.0, customers) * np.where(business, 4.0, 1.0)
    stop = np.minimum(start + lifetime, span)
    expected = np.maximum(rate * (stop - start), 0) + 1
    n_orders = np.minimum(rng.poisson(expected * 0.5) + 1, 400)

    owner = np.repeat(np.arange(customers), n_orders)
    first = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    is_first = np.zeros(owner.size, dtype=bool)
    is_first[first] = True
    offsets = rng.uniform(0, 1, owner.size) * (stop - start)[owner]
    # Seasonality: pull some orders towards November/December.
    offsets = np.where(rng.random(owner.size) < 0.15, np.floor(offsets / 365) * 365 + 320, offsets)
    times = start[owner] + np.where(is_first, 0.0, np.minimum(offsets, (stop - start)[owner]))
    amounts = np.round(rng.gamma(4.0, 1.0, owner.size) * spend_scale[owner] / 4.0, 2) + 1

    events: list[tuple[Any, ...]] = []
    kinds = rng.random(owner.size)
    for k in range(owner.size):
        c = int(owner[k])
        at = EPOCH + timedelta(days=float(times[k]))
        currency = CURRENCY[rows[c][1]]
        events.append((f"o-{k:08d}", c, "order", at, Decimal(f"{amounts[k]:.2f}"), currency, None))
        if kinds[k] < 0.03:  # refund a few days later
            refund_at = min(at + timedelta(days=5), end)
            events.append(
                (f"r-{k:08d}", c, "refund", refund_at, Decimal(f"{amounts[k]:.2f}"), currency, None)
            )
        elif kinds[k] < 0.25:
            events.append(
                (
                    f"f-{k:08d}",
                    c,
                    "feedback",
                    at + timedelta(days=3) if at + timedelta(days=3) <= end else at,
                    None,
                    None,
                    int(rng.integers(0, 11)),
                )
            )
        elif kinds[k] < 0.45:
            events.append((f"i-{k:08d}", c, "inquiry", at - timedelta(days=2), None, None, None))
        elif kinds[k] < 0.6:
            events.append(
                (f"x-{k:08d}", c, "interaction", at - timedelta(hours=5), None, None, None)
            )
    # Prospects: a few customers with inquiries and no orders.
    for c in rng.choice(customers, customers // 20, replace=False):
        events.append(
            (
                f"p-{int(c):07d}",
                int(c),
                "inquiry",
                end - timedelta(days=float(rng.uniform(1, 60))),
                None,
                None,
                None,
            )
        )
    return Dataset(customers=rows, events=events)


def heavy_customer(
    external_id: str, events: int, *, seed: int = 7, end: datetime | None = None
) -> Dataset:
    """One customer with `events` orders spread over the whole span."""
    rng = np.random.default_rng(seed)
    end = end or EPOCH + timedelta(days=SPAN_DAYS)
    span = (end - EPOCH).total_seconds() / 86400
    times = np.sort(rng.uniform(0, span, events))
    return Dataset(
        customers=[(external_id, "US", "business", "distributor", "retail", "large")],
        events=[
            (
                f"{external_id}-{k:06d}",
                0,
                "order",
                EPOCH + timedelta(days=float(t)),
                Decimal("99.50"),
                "USD",
                None,
            )
            for k, t in enumerate(times)
        ],
    )


def _rates() -> dict[str, Decimal]:
    document = default_document()
    rates = {code: Decimal(rate) for code, rate in document["exchange_rates"].items()}
    rates[document["base_currency"]] = Decimal(1)
    return rates


async def copy_into(url: str, data: Dataset) -> None:
    """COPY the dataset into an already migrated database (the fast set-up)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "customers",
                records=data.customers,
                columns=[
                    "external_id",
                    "country",
                    "customer_type",
                    "role",
                    "industry",
                    "company_size",
                ],
            )
            ids = dict(
                await conn.fetch(
                    "SELECT external_id, id FROM customers WHERE external_id = ANY($1::text[])",
                    [c[0] for c in data.customers],
                )
            )
            await conn.copy_records_to_table(
                "events",
                records=event_records(data, ids),
                columns=EVENT_COLUMNS,
            )
        await conn.execute("ANALYZE customers; ANALYZE events")
    finally:
        await conn.close()


def event_records(data: Dataset, ids: dict[str, int]) -> list[tuple[Any, ...]]:
    rates = _rates()
    return [
        (
            event_id,
            ids[data.customers[c][0]],
            kind,
            at,
            amount,
            currency,
            None if amount is None else amount * rates[currency],
            rating,
        )
        for event_id, c, kind, at, amount, currency, rating in data.events
    ]


def api_event(data: Dataset, e: tuple[Any, ...]) -> dict[str, Any]:
    """One event in the shape POST /v1/events takes."""
    event_id, c, kind, at, amount, currency, rating = e
    body: dict[str, Any] = {
        "event_id": event_id,
        "customer_id": data.customers[c][0],
        "type": kind,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
    }
    if amount is not None:
        body["amount"] = str(amount)
        body["currency"] = currency
    if rating is not None:
        body["rating"] = rating
    return body


def write_files(data: Dataset, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "customers.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["customer_id", "country", "customer_type", "role", "industry", "company_size"]
        )
        writer.writerows([[v if v is not None else "" for v in row] for row in data.customers])
    with open(out / "events.jsonl", "w") as f:
        for e in data.events:
            f.write(json.dumps(api_event(data, e)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--copy-to")
    args = parser.parse_args()
    data = generate(args.customers, seed=args.seed)
    print(f"{len(data.customers)} customers, {len(data.events)} events")
    if args.out:
        write_files(data, args.out)
    if args.copy_to:
        asyncio.run(copy_into(args.copy_to, data))


if __name__ == "__main__":
    main()
