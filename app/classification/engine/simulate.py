"""Seeded BG/NBD + Gamma-Gamma purchase histories with known truth (for tests and the
backtest): simulate, classify as of T, compare with what happened after T."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.types import INT_FIELDS, FloatArray, Histories, Outcomes


@dataclass(frozen=True, slots=True)
class Simulation:
    times: FloatArray  # customers x purchases, days since the start; NaN-padded
    spends: FloatArray  # the same shape: each purchase's amount

    def histories(self, cutoff: float) -> Histories:
        """Every customer acquired by `cutoff`, summarised as of it."""
        seen = self.times[:, 0] <= cutoff
        if not seen.any():
            return _no_histories()
        times = np.where(self.times[seen] <= cutoff, self.times[seen], np.nan)
        spends = np.where(np.isnan(times), 0.0, self.spends[seen])
        orders = np.sum(~np.isnan(times), axis=1).astype(np.int64)
        days = np.floor(times)
        order_days = np.array([np.unique(row[~np.isnan(row)]).size for row in days], dtype=np.int64)
        first = np.nanmin(times, axis=1)
        last = np.nanmax(times, axis=1)
        gaps = np.diff(days, axis=1)
        gaps = np.where(gaps > 0, gaps, np.nan)
        with np.errstate(all="ignore"):
            max_gap = np.where(
                order_days > 1, np.nanmax(np.nan_to_num(gaps, nan=-1.0), axis=1), np.nan
            )
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
            last_gap=nan,
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
        seen = self.times[:, 0] <= start
        window = (self.times[seen] > start) & (self.times[seen] <= end)
        return Outcomes(
            orders=window.sum(axis=1).astype(np.int64),
            revenue=np.where(window, self.spends[seen], 0.0).sum(axis=1),
        )


def _no_histories() -> Histories:
    ints = np.zeros(0, dtype=np.int64)
    floats = np.zeros(0)
    names = Histories.__dataclass_fields__
    return Histories(
        **{name: ints if name in INT_FIELDS else floats for name in names}  # type: ignore[arg-type]
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
    """Customers arrive uniformly over `acquisition_days`, buy at Poisson rate
    lambda ~ Gamma(r, alpha) per day and drop out after each purchase with p ~ Beta(a, b)
    (Fader, Hardie & Lee 2005); spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, acquisition_days, customers)
    rate = rng.gamma(r, 1.0 / alpha, customers)
    drop = rng.beta(a, b, customers)
    nu = rng.gamma(q, 1.0 / gamma, customers)
    columns = [start]
    alive = np.ones(customers, dtype=bool)
    current = start.copy()
    while True:
        current = current + rng.exponential(1.0, customers) / np.maximum(rate, 1e-12)
        alive &= current <= end
        if not alive.any() or len(columns) > 2000:
            break
        columns.append(np.where(alive, current, np.nan))
        # BG/NBD: a customer may drop out after any repeat purchase.
        alive &= rng.uniform(size=customers) >= drop
    times = np.stack(columns, axis=1)
    spends = rng.gamma(p, 1.0, times.shape) / nu[:, None]
    spends = np.where(np.isnan(times), 0.0, spends)
    return Simulation(times=times, spends=spends)
