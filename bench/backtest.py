"""Backtest: classify as of T through the API, compare with what happened after T.

Histories come from bench.generate (a Pareto/NBD-like process with seasonality, refunds
and feedback, not the engine's own model). All events, including those after T, are
loaded; the service must ignore the future. Printed: churn AUC, Brier score, calibration
by decile, and the share of next-period revenue captured by the top 20% of tier.score,
next to a plain RFM-quintile baseline computed in the same run.

    python -m bench.backtest --customers 5000
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np

from bench.generate import EPOCH, SPAN_DAYS, _rates, copy_into, generate
from bench.server import fresh_database, running

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class Truth:
    ids: list[str]
    recency: FloatArray  # days since last order at the cut-off
    frequency: FloatArray  # orders up to the cut-off
    monetary: FloatArray  # value up to the cut-off
    silent: FloatArray  # 1.0: no order in the horizon after the cut-off
    next_revenue: FloatArray  # value ordered in the horizon


def summarise(data: Any, cutoff: datetime, horizon: timedelta) -> Truth:
    """Per customer with an order by `cutoff`: RFM as of it, and what followed."""
    rates = _rates()
    past: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    future_orders: dict[int, int] = defaultdict(int)
    future_value: dict[int, float] = defaultdict(float)
    for _, c, kind, at, amount, currency, _ in data.events:
        if kind != "order":
            continue
        value = float(Decimal(amount) * rates[currency])
        if at <= cutoff:
            past[c].append((at, value))
        elif at <= cutoff + horizon:
            future_orders[c] += 1
            future_value[c] += value
    customers = sorted(past)
    return Truth(
        ids=[data.customers[c][0] for c in customers],
        recency=np.array([(cutoff - max(t for t, _ in past[c])).days for c in customers], float),
        frequency=np.array([len(past[c]) for c in customers], float),
        monetary=np.array([sum(v for _, v in past[c]) for c in customers], float),
        silent=np.array([0.0 if future_orders[c] else 1.0 for c in customers]),
        next_revenue=np.array([future_value[c] for c in customers]),
    )


def auc(score: FloatArray, label: FloatArray) -> float:
    """Mann-Whitney U / (n1 n0), ties counted half (average ranks)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = label == 1
    n1, n0 = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def deciles(predicted: FloatArray, observed: FloatArray) -> list[tuple[float, float, int]]:
    order = np.argsort(predicted, kind="mergesort")
    return [
        (float(predicted[chunk].mean()), float(observed[chunk].mean()), len(chunk))
        for chunk in np.array_split(order, 10)
        if len(chunk)
    ]


def capture(score: FloatArray, next_revenue: FloatArray) -> float:
    top = np.argsort(-score, kind="mergesort")[: max(1, len(score) // 5)]
    total = next_revenue.sum()
    return float(next_revenue[top].sum() / total) if total else 0.0


def rfm_score(t: Truth, reference: Truth) -> FloatArray:
    """R, F, M quintile scores (1-5, edges from `reference`) summed: 3..15."""

    def quintile(values: FloatArray, ref: FloatArray, *, lower_is_better: bool) -> FloatArray:
        edges = np.quantile(ref, [0.2, 0.4, 0.6, 0.8])
        rank = np.searchsorted(edges, values, side="right") + 1
        return (6 - rank if lower_is_better else rank).astype(float)

    return (
        quintile(t.recency, reference.recency, lower_is_better=True)
        + quintile(t.frequency, reference.frequency, lower_is_better=False)
        + quintile(t.monetary, reference.monetary, lower_is_better=False)
    )


def rfm_baseline(now: Truth, before: Truth) -> FloatArray:
    """Churn probability per RFM score: the no-order rate of that score one horizon earlier."""
    earlier = rfm_score(before, before)
    current = rfm_score(now, before)
    overall = float(before.silent.mean())
    rate = {s: float(before.silent[earlier == s].mean()) for s in np.unique(earlier)}
    return np.array([rate.get(s, overall) for s in current])


async def classify_all(
    base_url: str, key: str, ids: list[str], as_of: datetime, horizon: int
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300
    ) as client:
        for i in range(0, len(ids), 1000):
            response = await client.post(
                "/v1/classifications/batch",
                json={
                    "customer_ids": ids[i : i + 1000],
                    "as_of": as_of.isoformat(),
                    "horizon_days": horizon,
                },
            )
            response.raise_for_status()
            items += response.json()["items"]
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--horizon", type=int, default=180)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    horizon = timedelta(days=args.horizon)
    cutoff = EPOCH + timedelta(days=SPAN_DAYS) - horizon
    data = generate(args.customers, seed=args.seed)
    now = summarise(data, cutoff, horizon)
    before = summarise(data, cutoff - horizon, horizon)
    with fresh_database() as url:
        asyncio.run(copy_into(url, data))
        with running(url, workers=2) as server:
            items = asyncio.run(
                classify_all(server.base_url, server.key, now.ids, cutoff, args.horizon)
            )
    churn = np.array([i["metrics"]["churn_probability"] for i in items])
    score = np.array([i["tier"]["score"] for i in items])
    baseline = rfm_baseline(now, before)
    rfm = rfm_score(now, now) + now.monetary / (now.monetary.max() + 1)  # M breaks ties

    print(
        f"Backtest: {len(now.ids)} customers with orders at T = {cutoff:%Y-%m-%d}, "
        f"horizon {args.horizon} days, {now.silent.mean():.0%} placed no order after T; "
        f"model source: {items[0]['model']['source']}"
    )
    print(f"{'figure':42} {'Stratum':>10} {'RFM quintiles':>14}")
    print(
        f"{'churn AUC (higher is better)':42} {auc(churn, now.silent):>10.3f} {auc(baseline, now.silent):>14.3f}"
    )
    print(
        f"{'Brier score (lower is better)':42} {np.mean((churn - now.silent) ** 2):>10.4f} {np.mean((baseline - now.silent) ** 2):>14.4f}"
    )
    print(
        f"{'next-period revenue in top 20% by score':42} {capture(score, now.next_revenue):>10.1%} {capture(rfm, now.next_revenue):>14.1%}"
    )
    print("calibration by decile (predicted -> observed share with no order):")
    for (p1, o1, n), (p2, o2, _) in zip(
        deciles(churn, now.silent), deciles(baseline, now.silent), strict=True
    ):
        print(f"  n={n:5d}   Stratum {p1:5.2f} -> {o1:5.2f}    RFM {p2:5.2f} -> {o2:5.2f}")


if __name__ == "__main__":
    main()
