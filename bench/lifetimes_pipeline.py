"""The outside baseline for `recompute`: what an analyst runs with pandas and lifetimes.

    python -m bench.lifetimes_pipeline events.jsonl --as-of 2026-12-01T00:00:00Z

One process, everything included: read the JSON Lines export, convert order amounts to
the base currency, build the RFM summary, fit BG/NBD and Gamma-Gamma, and predict the
purchases, the probability of being alive and the value over the horizon for every
customer with an order. Prints one JSON line with the customer count and the seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args()
    started = time.perf_counter()

    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from app.policies.default import default_document

    document = default_document()
    rates = {k: float(v) for k, v in document["exchange_rates"].items()}
    rates[document["base_currency"]] = 1.0

    events = pd.read_json(args.events, lines=True, dtype={"amount": str})
    orders = events[events["type"] == "order"].copy()
    orders["occurred_at"] = pd.to_datetime(orders["occurred_at"], utc=True)
    currency = orders["currency"].fillna(document["base_currency"])
    orders["value"] = orders["amount"].astype(float) * currency.map(rates)
    end = pd.Timestamp(args.as_of)
    orders = orders[orders["occurred_at"] <= end]
    orders["occurred_at"] = orders["occurred_at"].dt.tz_localize(None)
    summary = summary_data_from_transaction_data(
        orders,
        "customer_id",
        "occurred_at",
        monetary_value_col="value",
        observation_period_end=end.tz_localize(None),
        freq="D",
    )
    bgf = BetaGeoFitter(penalizer_coef=0.001)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.001)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    horizon = float(args.horizon_days)
    summary["p_alive"] = bgf.conditional_probability_alive(
        summary["frequency"], summary["recency"], summary["T"]
    )
    summary["expected_orders"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"]
    )
    summary["expected_value"] = summary[
        "expected_orders"
    ] * ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
    seconds = time.perf_counter() - started
    sys.stdout.write(orjson.dumps({"customers": len(summary), "seconds": seconds}).decode() + "\n")


if __name__ == "__main__":
    main()
