"""Seeded BG/NBD + Gamma-Gamma purchase histories with a known truth, for the engine's
tests and the backtest in bench/: simulate, summarise as of T, compare with what
happened after T.

Customers arrive uniformly over `acquisition_days` with a first purchase; while
active they buy at Poisson rate lambda ~ Gamma(r, alpha) per day and drop out after
each repeat purchase with probability p ~ Beta(a, b) (Fader, Hardie & Lee 2005, sec. 2).
Each purchase's amount is Gamma(p, nu) with nu ~ Gamma(q, gamma) per customer (Fader,
Hardie & Lee 2005, "RFM and CLV", sec. 4; Colombo & Jiang 1999).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.types import INT_FIELDS, FloatArray, Histories, Outcomes

# Purchases per customer kept; a customer past it (only with absurd parameters) stops.
MAX_PURCHASES = 5000


@dataclass(frozen=True, slots=True)
class Simulation:
    times: FloatArray  # customers x purchases, days since the start, increasing; NaN-padded
    spends: FloatArray  # the same shape: each purchase's amount (0 where no purchase)

    def histories(self, cutoff: float) -> Histories:
        """Every customer acquired by `cutoff`, summarised as of it."""
        seen = self.times[:, 0] <= cutoff if self.times.size else np.zeros(0, dtype=bool)
        if not bool(seen.any()):
            return empty_histories()
        times = np.where(self.times[seen] <= cutoff, self.times[seen], np.nan)
        present = ~np.isnan(times)
        spends = np.where(present, self.spends[seen], 0.0)
        orders = present.sum(axis=1).astype(np.int64)
        # Times increase along a row, so a day differs from the previous one exactly
        # when a new order day starts.
        days = np.floor(times)
        step = np.diff(days, axis=1)
        new_day = np.nan_to_num(step, nan=0.0) > 0
        order_days = (1 + new_day.sum(axis=1)).astype(np.int64)
        gaps = np.where(new_day, step, 0.0)
        many = order_days > 1
        rows = np.arange(times.shape[0])
        if gaps.shape[1]:
            # The last new day's gap: the rightmost positive step of the row.
            last_index = gaps.shape[1] - 1 - np.argmax(new_day[:, ::-1], axis=1)
            max_gap = np.where(many, gaps.max(axis=1), np.nan)
            last_gap = np.where(many, gaps[rows, last_index], np.nan)
        else:
            max_gap = last_gap = np.full(rows.size, np.nan)
        first = times[:, 0]
        last = times[rows, orders - 1]
        n = orders.size
        zeros = np.zeros(n, dtype=np.int64)
        nan = np.full(n, np.nan)
        return Histories(
            orders=orders,
            order_days=order_days,
            first_order_age=cutoff - first,
            last_order_age=cutoff - last,
            revenue=spends.sum(axis=1),
            refunds=np.zeros(n),
            refund_count=zeros,
            margin=nan,
            max_gap=max_gap,
            last_gap=last_gap,
            inquiries=zeros,
            interactions=zeros,
            recent_contacts=zeros,
            feedback_count=zeros,
            rating_mean=nan,
            negative_feedback=zeros,
            last_activity_age=cutoff - last,
            tenure=cutoff - first,
        )

    def outcomes(self, start: float, end: float) -> Outcomes:
        """What the customers acquired by `start` did in (start, end]."""
        if not self.times.size:
            return Outcomes(orders=np.zeros(0, dtype=np.int64), revenue=np.zeros(0))
        seen = self.times[:, 0] <= start
        times = self.times[seen]
        window = (times > start) & (times <= end)
        return Outcomes(
            orders=window.sum(axis=1).astype(np.int64),
            revenue=np.where(window, self.spends[seen], 0.0).sum(axis=1),
        )


@dataclass(frozen=True, slots=True)
class Backtest:
    """What fit_model and classify see as of `cutoff`, and what happened next."""

    train: Histories  # the population as of cutoff - horizon
    outcomes: Outcomes  # what it did in (cutoff - horizon, cutoff]
    current: Histories  # the population as of cutoff
    future: Outcomes  # what that did in (cutoff, cutoff + horizon]


def backtest(simulation: Simulation, *, cutoff: float, horizon: float) -> Backtest:
    """The inputs of a fit as of `cutoff` and the truth to score it against."""
    start = cutoff - horizon
    return Backtest(
        train=simulation.histories(start),
        outcomes=simulation.outcomes(start, cutoff),
        current=simulation.histories(cutoff),
        future=simulation.outcomes(cutoff, cutoff + horizon),
    )


def empty_histories() -> Histories:
    """Histories of no customers."""
    ints = np.zeros(0, dtype=np.int64)
    floats = np.zeros(0)
    return Histories(
        **{
            name: ints if name in INT_FIELDS else floats  # type: ignore[arg-type]
            for name in Histories.__dataclass_fields__
        }
    )


def simulate(
    customers: int,
    *,
    seed: int = 0,
    r: float = 0.5,
    alpha: float = 20.0,
    a: float = 0.8,
    b: float = 4.0,
    p: float = 6.0,
    q: float = 4.0,
    gamma: float = 50.0,
    acquisition_days: float = 365.0,
    end: float = 1000.0,
) -> Simulation:
    """`customers` BG/NBD histories up to day `end` (rates per day), seeded."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, acquisition_days, customers)
    rate = np.maximum(rng.gamma(r, 1.0 / alpha, customers), 1e-12)
    drop = rng.beta(a, b, customers)
    nu = rng.gamma(q, 1.0 / gamma, customers)
    columns: list[FloatArray] = [start]
    # Only the customers still active and inside the window are advanced each round.
    active = np.arange(customers)
    current = start.copy()
    while active.size and len(columns) < MAX_PURCHASES:
        current = current + rng.exponential(1.0, active.size) / rate[active]
        inside = current <= end
        active, current = active[inside], current[inside]
        if not active.size:
            break
        column = np.full(customers, np.nan)
        column[active] = current
        columns.append(column)
        # After each repeat purchase the customer drops out with probability p.
        stays = rng.uniform(size=active.size) >= drop[active]
        active, current = active[stays], current[stays]
    times = np.stack(columns, axis=1) if customers else np.zeros((0, 1))
    spends = rng.gamma(p, 1.0, times.shape) / nu[:, None] if customers else np.zeros((0, 1))
    spends = np.where(np.isnan(times), 0.0, spends)
    return Simulation(times=times, spends=spends)


def simulate_pareto_nbd(
    customers: int,
    *,
    seed: int = 0,
    r: float = 0.55,
    alpha: float = 75.0,
    s: float = 0.6,
    beta: float = 80.0,
    p: float = 6.0,
    q: float = 4.0,
    gamma: float = 50.0,
    acquisition_days: float = 365.0,
    end: float = 1000.0,
) -> Simulation:
    """`customers` Pareto/NBD histories up to day `end` (rates per day), seeded: Poisson
    purchases at rate lambda ~ Gamma(r, alpha) over an exponential lifetime with rate
    mu ~ Gamma(s, beta) (Schmittlein, Morrison & Colombo 1987), Gamma-Gamma amounts."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, acquisition_days, customers)
    rate = rng.gamma(r, 1.0 / alpha, customers)
    death = rng.gamma(s, 1.0 / beta, customers)
    nu = rng.gamma(q, 1.0 / gamma, customers)
    lifetime = rng.exponential(1.0, customers) / np.maximum(death, 1e-300)
    span = np.maximum(np.minimum(start + lifetime, end) - start, 0.0)
    counts = np.minimum(rng.poisson(np.minimum(rate * span, 1e6)), MAX_PURCHASES - 1)
    width = int(counts.max()) if customers else 0
    # Given their number, a Poisson process's purchase times are uniform over the span.
    offsets = rng.uniform(size=(customers, width))
    offsets = np.where(np.arange(width)[None, :] < counts[:, None], offsets, np.nan)
    repeats = start[:, None] + np.sort(offsets, axis=1) * span[:, None]
    times = np.concatenate([start[:, None], repeats], axis=1)
    spends = rng.gamma(p, 1.0, times.shape) / nu[:, None]
    spends = np.where(np.isnan(times), 0.0, spends)
    return Simulation(times=times, spends=spends)
