"""Backtest: classify as of a past time T through the API and score the predictions
against what the customers then did, beside a plain RFM-quintile baseline, in one run.

    python -m bench.backtest --customers 5000 --process simulate
    python -m bench.backtest --customers 5000 --process generate

Histories come from a known process: `simulate` is the engine's own seeded BG/NBD +
Gamma-Gamma simulator (app/classification/engine/simulate.py); `generate` is the bench
generator (bench/generate.py: seasonal, B2B and consumers, refunds, feedback), which is
not the engine's model. Only events at or before T are loaded (COPY into a fresh
database); events in (T, T + horizon] are kept aside as the truth. Every customer with an
order by T is classified with POST /v1/classifications/batch (as_of=T,
horizon_days=horizon).

Printed, for Stratum and the baseline: churn AUC and Brier score for "no order in the
horizon", calibration by decile of the predicted probability, and the share of the
horizon's revenue that the top 20% by `tier.score` (baseline: RFM score) brought in.
The baseline scores R, F and M in quintiles (1-5 each, summed) and predicts churn as the
no-order rate of the customer's RFM score one horizon earlier (scores as of T - horizon,
outcomes in (T - horizon, T]): everything it learns is at or before T too.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np

from bench.generate import (
    DAY,
    ORDER,
    Customers,
    Dataset,
    Events,
    FloatArray,
    base_values,
    copy_into,
    default_end,
    generate,
)
from bench.measure import missing_endpoints
from bench.report import Figure, Section, check, missing
from bench.scores import auc, brier
from bench.server import fresh_database, running

BATCH = ("POST", "/v1/classifications/batch")
SIMULATED_DAYS = 1000.0


def simulated(customers: int, *, seed: int, end: datetime) -> Dataset:
    """The engine's BG/NBD simulator as a dataset of orders in US dollars ending at `end`."""
    from app.classification.engine.simulate import simulate

    sim = simulate(customers, seed=seed, end=SIMULATED_DAYS)
    present = ~np.isnan(sim.times)
    owner, _ = np.nonzero(present)
    start_s = int(end.timestamp()) - int(SIMULATED_DAYS * DAY)
    at = start_s + np.round(sim.times[present] * DAY).astype(np.int64)
    order = np.argsort(at, kind="stable")
    n, size = customers, int(owner.size)
    none = np.full(size, -1, dtype=np.int8)
    width = max(6, len(str(n)))
    return Dataset(
        customers=Customers(
            ids=[f"s-{i + 1:0{width}d}" for i in range(n)],
            country=np.full(n, 1),  # US
            business=np.zeros(n, dtype=bool),
            distributor=np.zeros(n, dtype=bool),
            industry=np.full(n, -1),
            size=np.full(n, -1),
            currency=np.zeros(n, dtype=np.int64),  # USD
            acquisition=np.zeros(n, dtype=np.int64),
            has_email=np.ones(n, dtype=bool),
            created_at=start_s + np.round(np.nanmin(sim.times, axis=1) * DAY).astype(np.int64),
        ),
        events=Events(
            seq=np.arange(size, dtype=np.int64),
            customer=owner[order].astype(np.int32),
            kind=np.zeros(size, dtype=np.int8),
            at=at[order],
            amount=np.maximum(np.round(sim.spends[present][order] * 100), 1).astype(np.int64),
            currency=np.zeros(size, dtype=np.int8),
            margin=np.zeros(size, dtype=np.int64),
            has_margin=np.zeros(size, dtype=bool),
            rating=none,
            channel=none,
            items=np.full(size, -1, dtype=np.int16),
        ),
        end=end,
        event_prefix="so-",
    )


@dataclass
class Truth:
    """Per customer with an order by the cut-off: RFM as of it, and what followed."""

    index: np.ndarray[Any, np.dtype[np.int64]]  # customer indexes
    recency: FloatArray  # days since the last order
    frequency: FloatArray  # orders
    monetary: FloatArray  # order value in the base currency
    silent: FloatArray  # 1.0: no order in the horizon after the cut-off
    next_orders: FloatArray
    next_revenue: FloatArray


def truth(data: Dataset, cutoff: datetime, horizon: timedelta) -> Truth:
    e = data.events
    n = len(data.customers)
    t = int(cutoff.timestamp())
    stop = int((cutoff + horizon).timestamp())
    value = base_values(e)
    orders = e.kind == ORDER
    past = orders & (e.at <= t)
    future = orders & (e.at > t) & (e.at <= stop)
    frequency = np.bincount(e.customer[past], minlength=n).astype(float)
    monetary = np.bincount(e.customer[past], weights=value[past], minlength=n).astype(np.float64)
    last = np.full(n, -np.inf)
    np.maximum.at(last, e.customer[past], e.at[past].astype(float))
    next_orders = np.bincount(e.customer[future], minlength=n).astype(float)
    next_revenue = np.bincount(e.customer[future], weights=value[future], minlength=n).astype(
        np.float64
    )
    index = np.flatnonzero(frequency > 0)
    return Truth(
        index=index,
        recency=(t - last[index]) / DAY,
        frequency=frequency[index],
        monetary=monetary[index],
        silent=(next_orders[index] == 0).astype(float),
        next_orders=next_orders[index],
        next_revenue=next_revenue[index],
    )


def deciles(predicted: FloatArray, observed: FloatArray) -> list[tuple[float, float, int]]:
    """(mean predicted, observed share, customers) per tenth by predicted probability."""
    order = np.argsort(predicted, kind="stable")
    return [
        (float(predicted[c].mean()), float(observed[c].mean()), int(c.size))
        for c in np.array_split(order, 10)
        if c.size
    ]


def capture(score: FloatArray, revenue: FloatArray, share: float = 0.2) -> float:
    """The share of `revenue` brought by the top `share` of customers by `score`."""
    top = np.argsort(-score, kind="stable")[: max(1, int(len(score) * share))]
    total = float(revenue.sum())
    return float(revenue[top].sum() / total) if total else float("nan")


def rfm_score(t: Truth) -> FloatArray:
    """R, F and M quintile scores (1-5, edges from the same population) summed: 3-15."""

    def quintile(values: FloatArray, *, higher_is_better: bool) -> FloatArray:
        edges = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
        rank = np.searchsorted(edges, values, side="right") + 1
        return (rank if higher_is_better else 6 - rank).astype(float)

    return (
        quintile(t.recency, higher_is_better=False)
        + quintile(t.frequency, higher_is_better=True)
        + quintile(t.monetary, higher_is_better=True)
    )


def rfm_churn(now: Truth, before: Truth) -> FloatArray:
    """Churn probability per RFM score: the no-order rate of that score one horizon earlier."""
    earlier = rfm_score(before)
    overall = float(before.silent.mean())
    rate = {s: float(before.silent[earlier == s].mean()) for s in np.unique(earlier)}
    return np.array([rate.get(s, overall) for s in rfm_score(now)])


@dataclass
class Scores:
    auc: float
    brier: float
    capture: float
    deciles: list[tuple[float, float, int]]


@dataclass
class BacktestResult:
    process: str
    customers: int
    evaluated: int = 0
    cutoff: datetime | None = None
    horizon_days: int = 0
    silent_share: float = 0.0
    stratum: Scores | None = None  # None: the batch endpoint is missing
    rfm: Scores | None = None
    expected_orders: float = 0.0
    observed_orders: float = 0.0
    expected_revenue: float = 0.0
    observed_revenue: float = 0.0
    model_source: str = ""
    notes: list[str] = field(default_factory=list)


def classify_all(
    base_url: str, headers: dict[str, str], ids: list[str], as_of: datetime, horizon: int
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        for i in range(0, len(ids), 1000):
            response = client.post(
                BATCH[1],
                json={
                    "customer_ids": ids[i : i + 1000],
                    "as_of": as_of.isoformat().replace("+00:00", "Z"),
                    "horizon_days": horizon,
                },
            )
            if response.status_code != 200:
                raise RuntimeError(f"batch failed: {response.status_code} {response.text[:500]}")
            items += response.json()["items"]
    return items


def run_backtest(
    *,
    customers: int = 5000,
    horizon_days: int = 180,
    seed: int = 2,
    process: str = "simulate",
    workers: int = 2,
) -> BacktestResult:
    end = default_end() - timedelta(days=1)
    horizon = timedelta(days=horizon_days)
    cutoff = end - horizon
    if process == "simulate":
        data = simulated(customers, seed=seed, end=end)
    else:
        data = generate(customers, seed=seed, end=end, customer_prefix="g-", event_prefix="ge-")
    result = BacktestResult(
        process=process, customers=customers, cutoff=cutoff, horizon_days=horizon_days
    )
    now = truth(data, cutoff, horizon)
    before = truth(data, cutoff - horizon, horizon)
    ids = [data.customers.ids[i] for i in now.index]
    with fresh_database() as url:
        asyncio.run(copy_into(url, data.until(cutoff)))
        with running(url, workers=workers) as server:
            if missing_endpoints(server, [BATCH]):
                return result
            items = classify_all(server.base_url, server.auth, ids, cutoff, horizon_days)
    churn = np.array([float(i["metrics"]["churn_probability"]) for i in items])
    score = np.array([float(i["tier"]["score"]) for i in items])
    baseline = rfm_churn(now, before)
    # The RFM ranking for revenue: the summed score, ties broken by monetary value.
    rfm_rank = rfm_score(now) + now.monetary / (now.monetary.max() + 1.0)
    result.evaluated = len(ids)
    result.silent_share = float(now.silent.mean())
    result.stratum = Scores(
        auc=auc(churn, now.silent),
        brier=brier(churn, now.silent),
        capture=capture(score, now.next_revenue),
        deciles=deciles(churn, now.silent),
    )
    result.rfm = Scores(
        auc=auc(baseline, now.silent),
        brier=brier(baseline, now.silent),
        capture=capture(rfm_rank, now.next_revenue),
        deciles=deciles(baseline, now.silent),
    )
    result.expected_orders = sum(float(i["metrics"]["expected_orders"]) for i in items)
    result.observed_orders = float(now.next_orders.sum())
    result.expected_revenue = sum(float(i["metrics"]["expected_revenue"]) for i in items)
    result.observed_revenue = float(now.next_revenue.sum())
    model = items[0].get("model") if items else None
    if isinstance(model, dict):
        checked = model.get("validation") or {}
        result.model_source = f"{model.get('source', '')}, answered by {model.get('name', '?')}" + (
            f", validated on {checked.get('customers')} customers over {checked.get('window_days')} days"
            if checked
            else ""
        )
    return result


def section(r: BacktestResult) -> Section:
    where = "engine's BG/NBD simulator" if r.process == "simulate" else "bench generator"
    cutoff = f"{r.cutoff:%Y-%m-%d}" if r.cutoff else "?"
    title = (
        f"backtest ({where}): {r.evaluated:,} customers with orders at T={cutoff}, "
        f"horizon {r.horizon_days} d, {r.silent_share:.0%} silent after T"
    )
    if r.stratum is None or r.rfm is None:
        return Section(title=title, figures=[missing("churn AUC, Brier, revenue capture")])
    s, b = r.stratum, r.rfm
    return Section(
        title=title,
        figures=[
            Figure(
                name="churn AUC (higher is better)",
                value=f"{s.auc:.3f}",
                baseline=f"RFM quintiles {b.auc:.3f}",
                ratio=f"{s.auc / b.auc:.2f}x",
                target="> baseline",
                verdict=check(s.auc > b.auc),
            ),
            Figure(
                name="churn Brier score (lower is better)",
                value=f"{s.brier:.4f}",
                baseline=f"RFM quintiles {b.brier:.4f}",
                ratio=f"{s.brier / b.brier:.2f}x",
                target="< baseline",
                verdict=check(s.brier < b.brier),
            ),
            Figure(
                name="next-period revenue from top 20% by score",
                value=f"{s.capture:.1%}",
                baseline=f"RFM quintiles {b.capture:.1%}",
                ratio=f"{s.capture / b.capture:.2f}x",
                target="> baseline",
                verdict=check(s.capture > b.capture),
            ),
            Figure(
                name="expected orders in horizon / observed",
                value=f"{r.expected_orders:,.0f} / {r.observed_orders:,.0f}",
                ratio=f"{r.expected_orders / max(r.observed_orders, 1):.2f}x",
                target="~1x",
            ),
            Figure(
                name="expected revenue in horizon / observed",
                value=f"{r.expected_revenue:,.0f} / {r.observed_revenue:,.0f}",
                ratio=f"{r.expected_revenue / max(r.observed_revenue, 1):.2f}x",
                target="~1x",
            ),
        ],
    )


def calibration(r: BacktestResult) -> str:
    """Predicted against observed no-order share, by decile of each model's prediction."""
    if r.stratum is None or r.rfm is None:
        return ""
    lines = [
        f"calibration by decile, {r.process} (mean predicted -> observed share with no order):"
    ]
    for (p1, o1, n), (p2, o2, _) in zip(r.stratum.deciles, r.rfm.deciles, strict=True):
        lines.append(
            f"  n={n:6,d}   Stratum {p1:5.2f} -> {o1:5.2f}   RFM quintiles {p2:5.2f} -> {o2:5.2f}"
        )
    if r.model_source:
        lines.append(f"  (Stratum's population model: {r.model_source})")
    return "\n".join(lines)


def main() -> None:
    from bench.report import render

    parser = argparse.ArgumentParser(description="Backtest classification against RFM.")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--horizon", type=int, default=180, help="days")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--process", choices=["simulate", "generate"], default="simulate")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = run_backtest(
        customers=args.customers,
        horizon_days=args.horizon,
        seed=args.seed,
        process=args.process,
        workers=args.workers,
    )
    print(render([section(result)]))
    print(calibration(result))


if __name__ == "__main__":
    main()
