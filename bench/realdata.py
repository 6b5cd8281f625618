"""Backtest on real purchase histories, beside what a data scientist would fit themselves.

    python -m bench.realdata                         # all three datasets
    python -m bench.realdata --dataset grocery
    python -m bench.realdata --more-splits           # and each cut at two more times

The datasets: the two in ../shared/data (`<data>/<name>/events.csv`, split at the
calibration end its README gives), and CDNOW, the purchases of the 23,570 customers whose
first was in the first quarter of 1997 until June 1998, as lifetimes ships them
(`CDNOW_master.txt`), split as Fader, Hardie & Lee (2005) do: 39 weeks of calibration,
39 of holdout. For each: a fresh database and a running service; the calibration
events posted through `POST /v1/events` (and `customers.csv`, where there is one,
through `PUT /v1/customers`); the policy's horizon set to the holdout's length
(`PUT /v1/policy`); every customer with an order in the calibration period classified
as of the cut-off
(`POST /v1/classifications/batch`); then the holdout posted and everyone asked again as of
the same cut-off: the answers must be byte-identical (nothing after the cut-off leaks).

`--more-splits` adds each history cut at two other times with other horizons
(`MORE_SPLITS`): the same method on a younger or older installation and a shorter or
longer horizon, so that a figure ahead on the published split alone is seen as such.

Scored against what each customer did in the holdout, beside baselines fitted in the same
run on the calibration events only: BG/NBD and Pareto/NBD with Gamma-Gamma (lifetimes),
RFM quintiles, and gradient boosting (scikit-learn) trained on inner cut-offs inside the
calibration period. Needs the `bench` extra: `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import orjson
import pandas as pd

from bench.scores import (
    EPS,
    auc,
    brier,
    calibration_bins,
    calibration_error,
    capture,
    chance_calibration_error,
    log_loss,
    spearman,
    stage_targets,
)
from bench.server import fresh_database, plain_url, running

# ../shared/data beside the repository (or beside the folder of its worktrees).
_ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (
        p / "shared" / "data"
        for p in (_ROOT.parent, _ROOT.parent.parent)
        if (p / "shared" / "data").is_dir()
    ),
    _ROOT.parent / "shared" / "data",
)
BATCH = 1000


@dataclass(frozen=True)
class Split:
    """The calibration end (last calibration day) and holdout length a dataset's README gives."""

    calibration_end: str
    holdout_days: int
    amounts: bool
    # Where the events come from, when not `<data>/<history>/events.csv`.
    reader: Callable[[], pd.DataFrame] | None = None
    # The folder of the history this split cuts, when not the split's own name.
    history: str | None = None


def cdnow_events() -> pd.DataFrame:
    """CDNOW's purchases as `customer_id, occurred_at, amount`: the file gives days, not
    times (midnight UTC here), and 2,068 of its 69,659 rows share a customer's day."""
    from lifetimes.datasets import load_dataset

    raw = load_dataset("CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": str, "date": str})
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "occurred_at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "amount": raw["dollar_value"].astype(float),
        }
    )


SPLITS = {
    "completejourney": Split("2021-07-10", 92, amounts=True),
    "grocery": Split("2006-12-31", 364, amounts=False),
    "cdnow": Split("1997-09-30", 273, amounts=True, reader=cdnow_events),
}
# The same histories cut at other times, with other horizons.
MORE_SPLITS = {
    "completejourney-may": Split("2021-05-31", 60, amounts=True, history="completejourney"),
    "completejourney-aug": Split("2021-08-31", 30, amounts=True, history="completejourney"),
    "grocery-jun": Split("2006-06-30", 182, amounts=False, history="grocery"),
    "grocery-sep": Split("2006-09-30", 90, amounts=False, history="grocery"),
    "cdnow-jun": Split("1997-06-30", 182, amounts=True, reader=cdnow_events),
    "cdnow-dec": Split("1997-12-31", 180, amounts=True, reader=cdnow_events),
}


@dataclass
class Dataset:
    name: str
    split: Split
    events: pd.DataFrame  # customer_id, at (UTC), amount
    customers: pd.DataFrame | None
    as_of: datetime  # the last instant of the calibration period
    calibration: pd.DataFrame = field(init=False)
    holdout: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        at = self.events["at"]
        end = self.as_of + timedelta(days=self.split.holdout_days)
        self.calibration = self.events[at <= self.as_of]
        self.holdout = self.events[(at > self.as_of) & (at <= end)]


def load(name: str, data: Path) -> Dataset:
    split = SPLITS.get(name) or MORE_SPLITS[name]
    folder = data / (split.history or name)
    raw = (
        split.reader()
        if split.reader is not None
        else pd.read_csv(folder / "events.csv", dtype={"customer_id": str, "currency": str})
    )
    events = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "at": pd.to_datetime(raw["occurred_at"], utc=True),
            # No amounts (grocery): a nominal 1 per order, so revenue figures count orders.
            "amount": raw["amount"].fillna(1.0) if split.amounts else 1.0,
        }
    )
    events = events.sort_values(["at", "customer_id"], kind="stable").reset_index(drop=True)
    customers_file = folder / "customers.csv"
    customers = (
        pd.read_csv(customers_file, dtype={"customer_id": str}) if customers_file.exists() else None
    )
    end = datetime.fromisoformat(split.calibration_end).replace(tzinfo=UTC)
    as_of = end + timedelta(days=1) - timedelta(seconds=1)
    return Dataset(name=name, split=split, events=events, customers=customers, as_of=as_of)


# --- the service -------------------------------------------------------------------


def _iso(moment: Any) -> str:
    return pd.Timestamp(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def post_events(client: httpx.Client, frame: pd.DataFrame, prefix: str) -> None:
    ids = frame["customer_id"].tolist()
    ats = [_iso(t) for t in frame["at"]]
    amounts = [f"{a:.2f}" for a in frame["amount"].astype(float)]
    rows = frame.index.tolist()
    for start in range(0, len(rows), BATCH):
        body = {
            "events": [
                {
                    "event_id": f"{prefix}-{rows[i]}",
                    "customer_id": ids[i],
                    "type": "order",
                    "occurred_at": ats[i],
                    "amount": amounts[i],
                    "currency": "USD",
                }
                for i in range(start, min(start + BATCH, len(rows)))
            ]
        }
        response = client.post("/v1/events", content=orjson.dumps(body))
        response.raise_for_status()


def put_customers(client: httpx.Client, customers: pd.DataFrame) -> None:
    for row in customers.to_dict("records"):
        cid = str(row.pop("customer_id"))
        attributes = {k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
        body = {"customer_type": "individual", "attributes": attributes}
        client.put(f"/v1/customers/{cid}", content=orjson.dumps(body)).raise_for_status()


def set_horizon(client: httpx.Client, days: int) -> None:
    policy = client.get("/v1/policy").json()
    policy["horizon_days"] = days
    client.put("/v1/policy", content=orjson.dumps(policy)).raise_for_status()


def classify(client: httpx.Client, ids: list[str], as_of: datetime, horizon: int) -> list[bytes]:
    """The raw answers, one per batch of ids."""
    answers = []
    for start in range(0, len(ids), BATCH):
        body = {"customer_ids": ids[start : start + BATCH], "as_of": _iso(as_of)}
        body["horizon_days"] = horizon  # type: ignore[assignment]
        response = client.post("/v1/classifications/batch", content=orjson.dumps(body))
        response.raise_for_status()
        answers.append(response.content)
    return answers


@dataclass
class ServiceRun:
    items: list[dict[str, Any]]
    identical: bool
    seconds: float
    fit: dict[str, Any]


def run_service(d: Dataset, ids: list[str], workers: int) -> ServiceRun:
    started = time.monotonic()
    with fresh_database() as url, running(url, workers=workers) as server:
        headers = {**server.auth, "Content-Type": "application/json"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client:
            set_horizon(client, d.split.holdout_days)
            if d.customers is not None:
                put_customers(client, d.customers)
            post_events(client, d.calibration, d.name)
            before = classify(client, ids, d.as_of, d.split.holdout_days)
            post_events(client, d.holdout, d.name)
            after = classify(client, ids, d.as_of, d.split.holdout_days)
        fit = asyncio.run(_stored_fit(url, d.as_of, d.split.holdout_days))
    items = [item for answer in before for item in orjson.loads(answer)["items"]]
    return ServiceRun(
        items=items, identical=before == after, seconds=time.monotonic() - started, fit=fit
    )


async def _stored_fit(url: str, as_of: datetime, horizon: int) -> dict[str, Any]:
    """What the population fit the answers came from says about itself (source, sizes,
    validation): the newest cut-off at or before `as_of` for the horizon, not a fit the
    worker made meanwhile for today."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        text = await conn.fetchval(
            "SELECT model::text FROM population_fits WHERE horizon_days = $1 AND cutoff <= $2"
            " ORDER BY cutoff DESC, created_at DESC LIMIT 1",
            horizon,
            as_of,
        )
    finally:
        await conn.close()
    model: dict[str, Any] = orjson.loads(text) if text else {}
    keep = (
        "format",
        "version",
        "source",
        "answer",
        "customers",
        "buyers",
        "repeaters",
        "trained_on",
        "window_days",
        "validation",
        "map_validation",
        "notes",
    )
    result = {k: model[k] for k in keep if k in model}
    if model.get("final_map"):
        result["final_map"] = model["final_map"]["kind"]
    return result


# --- the outcome and the baselines ----------------------------------------------------


def rfm_frame(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """lifetimes' summary (frequency = repeat order days, recency, T in days) plus the
    order count and spend, for customers with an order at or before `cutoff`."""
    from lifetimes.utils import summary_data_from_transaction_data

    seen = events[events["at"] <= cutoff]
    days = seen.assign(day=seen["at"].dt.floor("D").dt.tz_localize(None))
    per_day = days.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    summary = summary_data_from_transaction_data(
        per_day,
        "customer_id",
        "day",
        monetary_value_col="amount",
        observation_period_end=cutoff.tz_localize(None).floor("D"),
        freq="D",
    )
    totals = seen.groupby("customer_id")["amount"].agg(["count", "sum"])
    summary["orders"] = totals["count"]
    summary["spend"] = totals["sum"]
    summary["silence"] = summary["T"] - summary["recency"]
    return summary


def outcome(events: pd.DataFrame, ids: pd.Index, start: pd.Timestamp, days: float) -> pd.DataFrame:
    window = events[(events["at"] > start) & (events["at"] <= start + pd.Timedelta(days=days))]
    grouped = window.groupby("customer_id")["amount"].agg(["count", "sum"])
    out = pd.DataFrame(index=ids)
    out["orders"] = grouped["count"].reindex(ids).fillna(0.0)
    out["spend"] = grouped["sum"].reindex(ids).fillna(0.0)
    return out


@dataclass
class Prediction:
    churn: np.ndarray  # P(no order in the horizon)
    value: np.ndarray  # the ranking of next-period revenue (expected revenue or a score)
    orders: np.ndarray | None = None


def btyd(kind: str, s: pd.DataFrame, horizon: float, *, amounts: bool) -> Prediction:
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    f, r, T = s["frequency"], s["recency"], s["T"]
    if kind == "bgnbd":
        model = BetaGeoFitter(penalizer_coef=0.0)
        model.fit(f, r, T)
        p = model.params_
        alive = model.conditional_probability_alive(f, r, T)
        silent = ((p["alpha"] + T) / (p["alpha"] + T + horizon)) ** (p["r"] + f)
        churn = 1.0 - alive * (1.0 - silent)
    else:
        model = ParetoNBDFitter(penalizer_coef=0.0)
        # lifetimes starts each Nelder-Mead run from random parameters (NumPy's global
        # generator), and single runs end in different places: seeded, and the best of
        # four starts, as a careful analyst would.
        np.random.seed(0)
        model.fit(f, r, T, iterative_fitting=4)
        churn = model.conditional_probability_of_n_purchases_up_to_time(0, horizon, f, r, T)
    expected = model.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T)
    repeat = (f > 0) & (s["monetary_value"] > 0)
    spend = np.full(len(s), float(s["spend"].sum() / s["orders"].sum()))
    try:
        if not amounts:  # one nominal amount: Gamma-Gamma has nothing to fit
            raise ValueError("no amounts")
        gg = GammaGammaFitter(penalizer_coef=0.0)
        gg.fit(f[repeat], s["monetary_value"][repeat])
        mean_day = s["spend"] / (f + 1.0)
        spend = np.asarray(gg.conditional_expected_average_profit(f + 1.0, mean_day))
    except Exception:  # a degenerate spend distribution keeps the mean
        pass
    per_day = (s["orders"] / (f + 1.0)).to_numpy()
    orders = np.asarray(expected) * per_day
    return Prediction(
        churn=np.clip(_filled(np.asarray(churn, dtype=float)), EPS, 1 - EPS),
        value=_filled(orders * np.asarray(spend) / per_day),
        orders=_filled(orders),
    )


def _filled(values: np.ndarray) -> np.ndarray:
    """lifetimes' series overflow for a few extreme customers: those get the median."""
    ok = np.isfinite(values)
    return np.where(ok, values, np.median(values[ok]) if ok.any() else 0.0)


def quintile(values: pd.Series) -> np.ndarray:
    ranks = values.rank(method="average", pct=True).to_numpy()
    return np.ceil(np.clip(ranks, EPS, 1.0) * 5.0)


def rfm_score(s: pd.DataFrame) -> np.ndarray:
    return quintile(-s["silence"]) + quintile(s["frequency"]) + quintile(s["spend"])


def windows(
    start: pd.Timestamp, cutoff: pd.Timestamp, horizon: float
) -> list[tuple[pd.Timestamp, float]]:
    """Inner (cut-off, window) pairs with the window ending at or before `cutoff`: windows
    of the horizon's length where the history allows, shorter ones where it does not,
    each cut-off with at least a quarter of the window's history before it."""
    span = (cutoff - start).total_seconds() / 86400.0
    pairs = []
    for fraction in (1.0, 0.5, 0.25):
        w = horizon * fraction
        for k in range(3):
            c = cutoff - pd.Timedelta(days=w * (1 + k * 0.5))
            if (c - start).total_seconds() / 86400.0 >= max(0.25 * horizon, 0.15 * span):
                pairs.append((c, w))
    return pairs


def rfm_baseline(d: Dataset, s: pd.DataFrame, cutoff: pd.Timestamp) -> Prediction:
    """Churn = the no-order rate of the customer's RFM score in the newest inner window
    (its length the horizon's, or as long as the history allows)."""
    start = d.calibration["at"].min()
    c, w = windows(start, cutoff, d.split.holdout_days)[0]
    inner = rfm_frame(d.calibration, c)
    silent = outcome(d.calibration, inner.index, c, w)["orders"].to_numpy() == 0
    score_then = rfm_score(inner)
    rate = {
        v: (silent[score_then == v].sum() + 1) / ((score_then == v).sum() + 2)
        for v in np.unique(score_then)
    }
    score = rfm_score(s)
    fallback = float(silent.mean())
    churn = np.array([rate.get(v, fallback) for v in score])
    return Prediction(churn=churn, value=score)


def features(s: pd.DataFrame, window: float) -> np.ndarray:
    return np.column_stack(
        [
            s["frequency"],
            s["recency"],
            s["T"],
            s["silence"],
            s["orders"],
            s["spend"],
            s["spend"] / s["orders"].clip(lower=1),
            np.full(len(s), window),
        ]
    )


def boosting(d: Dataset, s: pd.DataFrame, cutoff: pd.Timestamp) -> Prediction:
    """HistGradientBoosting on stacked inner cut-offs (features as of c, outcomes in
    (c, c + w], c + w at or before the cut-off; w a feature), then asked with w = H."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    start = d.calibration["at"].min()
    xs, silent, spend = [], [], []
    for c, w in windows(start, cutoff, d.split.holdout_days):
        inner = rfm_frame(d.calibration, c)
        truth = outcome(d.calibration, inner.index, c, w)
        xs.append(features(inner, w))
        silent.append((truth["orders"] == 0).to_numpy())
        spend.append(truth["spend"].to_numpy())
    x, y, v = np.vstack(xs), np.concatenate(silent), np.concatenate(spend)
    classifier = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    classifier.fit(x, y)
    regressor = HistGradientBoostingRegressor(
        loss="poisson", max_iter=200, learning_rate=0.05, random_state=0
    )
    regressor.fit(x, v)
    now = features(s, d.split.holdout_days)
    return Prediction(
        churn=np.clip(classifier.predict_proba(now)[:, 1], EPS, 1 - EPS),
        value=regressor.predict(now),
    )


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    better: str  # "high" or "low"
    of: Callable[[Prediction, np.ndarray, np.ndarray], float]


METRICS = (
    Metric("churn AUC", "high", lambda p, silent, _: auc(p.churn, silent)),
    Metric("Brier of P(no order)", "low", lambda p, silent, _: brier(p.churn, silent)),
    Metric("log-loss", "low", lambda p, silent, _: log_loss(p.churn, silent)),
    Metric(
        "calibration error (10 bins)",
        "low",
        lambda p, silent, _: calibration_error(p.churn, silent),
    ),
    Metric("top-20% next-period revenue", "high", lambda p, _, spend: capture(p.value, spend)),
    Metric("Spearman(value, next spend)", "high", lambda p, _, spend: spearman(p.value, spend)),
)


def _orders_line(
    items: list[dict[str, Any]], baselines: dict[str, Prediction], observed: np.ndarray
) -> str:
    """Expected orders in the horizon per customer, on average, beside the holdout's."""
    actual = float(observed.mean())
    means = {"Stratum": float(np.mean([i["metrics"]["expected_orders"] for i in items]))}
    means.update({n: float(p.orders.mean()) for n, p in baselines.items() if p.orders is not None})
    shown = ", ".join(f"{n} {v:.3f} ({v / actual - 1:+.1%})" for n, v in means.items())
    return f"expected orders per customer in the horizon: observed {actual:.3f}; {shown}"


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.0f}"


def report(
    d: Dataset,
    run: ServiceRun,
    ids: list[str],
    baselines: dict[str, Prediction],
    truth: pd.DataFrame,
) -> Iterator[str]:
    silent = (truth["orders"].to_numpy() == 0).astype(float)
    spend = truth["spend"].to_numpy()
    items = run.items
    churn = np.array([i["metrics"]["churn_probability"] for i in items])
    score = np.array([i["tier"]["score"] for i in items])
    revenue = np.array([float(i["metrics"]["expected_revenue"]) for i in items])
    stratum = Prediction(churn=churn, value=score)
    money = "revenue" if d.split.amounts else "orders (nominal amount 1)"
    yield (
        f"{d.name}: {len(ids):,} customers with an order by {d.as_of:%Y-%m-%d} "
        f"(calibration {d.calibration['at'].min():%Y-%m-%d}..), horizon {d.split.holdout_days} d, "
        f"{silent.mean():.1%} silent in the holdout; next-period {money}"
    )
    names = list(baselines)
    header = ["figure", "Stratum", *names, "best baseline", ""]
    rows = [header]
    behind = []
    for m in METRICS:
        ours = m.of(stratum, silent, spend)
        theirs = {n: m.of(p, silent, spend) for n, p in baselines.items()}
        pick = max if m.better == "high" else min
        best = pick(theirs, key=lambda n: theirs[n])
        ahead = ours > theirs[best] if m.better == "high" else ours < theirs[best]
        if not ahead:
            behind.append(m.name)
        rows.append(
            [m.name, _fmt(ours), *(_fmt(theirs[n]) for n in names), best, "ok" if ahead else "MISS"]
        )
        if m.name.startswith("Spearman"):
            alt = spearman(revenue, spend)
            rows.append(
                [
                    "Spearman(expected_revenue, next spend)",
                    _fmt(alt),
                    *(["" for _ in names]),
                    best,
                    "ok" if alt > theirs[best] else "MISS",
                ]
            )
        if m.name.startswith("top-20%"):
            alt = capture(revenue, spend)
            rows.append(
                [
                    "top-20% by expected_revenue",
                    _fmt(alt),
                    *(["" for _ in names]),
                    best,
                    "ok" if alt > theirs[best] else "MISS",
                ]
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        yield "  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    low, mid, high = chance_calibration_error(churn)
    yield (
        f"  calibration error of an exactly right forecaster with Stratum's probabilities "
        f"(outcomes drawn from them, 1,000 seeded draws): median {mid:.4f}, 90% {low:.4f}..{high:.4f}"
    )
    bins = ", ".join(f"{m:.3f}->{o:.3f}" for m, o in calibration_bins(churn, silent))
    yield f"  Stratum's ten bins, mean predicted -> observed: {bins}"
    yield "  " + _orders_line(items, baselines, truth["orders"].to_numpy())
    stages = pd.Series([i["stage"]["code"] for i in items])
    yield "  holdout inactivity by stage (target: loyal <= 25% < returning < at_risk < churned >= 70%):"
    for code in ("new", "loyal", "returning", "at_risk", "churned"):
        mask = (stages == code).to_numpy()
        if mask.any():
            yield f"    {code:<10} {mask.sum():>6,} customers  {silent[mask].mean():6.1%} inactive  (mean predicted {churn[mask].mean():.3f})"
    yield "  stage targets: " + stage_targets(stages.to_numpy(), silent)
    tiers = pd.Series([i["tier"]["code"] for i in items])
    total = spend.sum()
    shares = ", ".join(
        f"{code} {(tiers == code).mean():.0%} of customers -> {spend[(tiers == code).to_numpy()].sum() / total:.1%}"
        for code in ("high", "mid", "low")
    )
    yield f"  next-period {money} by tier: {shares}"
    model = items[0].get("model", {}) if items else {}
    yield f"  answer's model: {orjson.dumps(model).decode()}"
    yield f"  stored fit: {orjson.dumps(run.fit).decode()}"
    yield f"  leak check (same answers after the holdout was posted): {'identical' if run.identical else 'DIFFERENT'}; service run {run.seconds:.0f} s"
    calibration = calibration_error(churn, silent)
    yield (
        f"  verdict: ahead on {len(METRICS) - len(behind)} of {len(METRICS)} figures"
        + (f" (behind on {', '.join(behind)})" if behind else "")
        + f"; calibration error {calibration:.4f} ({'ok' if calibration <= 0.03 else 'MISS'}"
        f" against 0.03); stages: {stage_targets(stages.to_numpy(), silent)}"
    )


def run_dataset(name: str, data: Path, workers: int) -> list[str]:
    d = load(name, data)
    cutoff = pd.Timestamp(d.as_of)
    s = rfm_frame(d.calibration, cutoff)
    ids = sorted(s.index.tolist())
    s = s.loc[ids]
    truth = outcome(d.events, s.index, cutoff, d.split.holdout_days)
    run = run_service(d, ids, workers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baselines = {
            "BG/NBD+GG": btyd("bgnbd", s, d.split.holdout_days, amounts=d.split.amounts),
            "Pareto/NBD+GG": btyd("pareto", s, d.split.holdout_days, amounts=d.split.amounts),
            "RFM quintiles": rfm_baseline(d, s, cutoff),
            "boosting": boosting(d, s, cutoff),
        }
    return list(report(d, run, ids, baselines, truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted([*SPLITS, *MORE_SPLITS]), action="append")
    parser.add_argument(
        "--more-splits", action="store_true", help="also each history cut at two other times"
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    print(
        f"Stratum real-data backtest, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: python -m bench.realdata"
    )
    names = args.dataset or [*sorted(SPLITS), *(sorted(MORE_SPLITS) if args.more_splits else [])]
    verdicts = []
    for name in names:
        print()
        for line in run_dataset(name, args.data, args.workers):
            print(line, flush=True)
            if line.startswith("  verdict: "):
                verdicts.append(f"  {name}: {line.removeprefix('  verdict: ')}")
    if len(verdicts) > 1:
        print("\nverdicts:", *verdicts, sep="\n")
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
