"""Classify customers as of a time: read histories, get the population model, run the engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import population, repository
from app.classification.engine import PopulationModel, classify, render_reason
from app.classification.engine.types import (
    Classification,
    EnginePolicy,
    StageRules,
    StrategyRule,
    TierRules,
)
from app.classification.labels import STAGE_LABELS, TIER_LABELS
from app.classification.repository import CustomerHistory
from app.classification.schemas import (
    ClassificationOut,
    MetricsOut,
    StageOut,
    StrategyOut,
    TierOut,
)
from app.core.db import PRIMARY, guarded, is_replica, is_unavailable
from app.core.observability import CLASSIFICATIONS
from app.core.problems import Invalid, NotFound, field_error
from app.policies.schemas import PolicyDocument, Strategy
from app.policies.service import ActivePolicy, current_policy

CENTS = Decimal("0.01")


_engine_policies: dict[int, EnginePolicy] = {}

# The population model in use per (policy version, cut-off day, horizon). Whether the
# stored fit changed is asked again after MODEL_TTL seconds, as the policy version is:
# the hot path skips that query, and a re-fit elsewhere is seen within the second.
MODEL_TTL = 1.0
# A model fitted on a replica while the primary is down is not stored; keep it longer.
READ_ONLY_MODEL_TTL = 60.0
_models: dict[tuple[int, datetime, int], tuple[float, PopulationModel]] = {}
_refreshing: dict[tuple[int, datetime, int], asyncio.Lock] = {}


def forget() -> None:
    """Drop the models and engine policies this process remembers."""
    _models.clear()
    _engine_policies.clear()


def engine_policy(active: ActivePolicy) -> EnginePolicy:
    """The engine's view of a policy version (versions never change, so cache by number)."""
    cached = _engine_policies.get(active.version)
    if cached is None:
        cached = to_engine_policy(active.document)
        if len(_engine_policies) > 32:
            _engine_policies.clear()
        _engine_policies[active.version] = cached
    return cached


def to_engine_policy(document: PolicyDocument) -> EnginePolicy:
    tiers, stages = document.tiers, document.stages
    return EnginePolicy(
        home_country=document.home_country,
        tier=TierRules(
            method=tiers.method,
            high=float(tiers.high),
            mid=float(tiers.mid),
            margin_weight=tiers.margin_weight,
            future_weight=tiers.future_weight,
        ),
        stage=StageRules(**stages.model_dump()),
        strategies=tuple(
            StrategyRule(
                code=s.code,
                priority=s.priority,
                cadence_days=s.cadence_days,
                tier=s.match.tier,
                stage=s.match.stage,
                segment=s.match.segment,
            )
            for s in document.strategies
        ),
        min_population=document.min_population,
    )


def _money(value: Decimal | float) -> str:
    amount = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return str(amount.quantize(CENTS, rounding=ROUND_HALF_EVEN))


def _days(as_of: datetime, moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return round(max((as_of - moment).total_seconds(), 0.0) / 86400.0, 1)


def _strategy(document: PolicyDocument, result: Classification, lang: str) -> StrategyOut:
    entry: Strategy | None = next(
        (s for s in document.strategies if s.code == result.strategy), None
    )
    if entry is None:
        # Unreachable with a validated policy (every tier/stage is covered); kept honest.
        return StrategyOut(
            code=result.strategy,
            label=result.strategy,
            actions=[],
            priority=result.priority,
            cadence_days=result.cadence_days,
        )
    return StrategyOut(
        code=entry.code,
        label=entry.label.get(lang) or entry.label["en"],  # type: ignore[call-overload]
        actions=list(entry.actions.get(lang) or entry.actions["en"]),  # type: ignore[call-overload]
        priority=entry.priority,
        cadence_days=entry.cadence_days,
    )


def _render(
    customer: CustomerHistory,
    result: Classification,
    *,
    active: ActivePolicy,
    model: dict[str, Any],
    as_of: datetime,
    horizon_days: int,
    lang: str,
) -> ClassificationOut:
    document = active.document
    net = customer.revenue - customer.refunds
    return ClassificationOut(
        customer_id=customer.external_id,
        as_of=as_of,
        tier=TierOut(
            code=result.tier, label=TIER_LABELS[lang][result.tier], score=result.tier_score
        ),
        stage=StageOut(code=result.stage, label=STAGE_LABELS[lang][result.stage]),
        segments=dict(result.segments),
        strategy=_strategy(document, result, lang),
        metrics=MetricsOut(
            orders=customer.orders,
            revenue=_money(customer.revenue),
            refunds=_money(customer.refunds),
            net_revenue=_money(net),
            margin=None if customer.margin is None else _money(customer.margin),
            currency=document.base_currency,
            first_order_at=customer.first_order_at,
            last_order_at=customer.last_order_at,
            recency_days=_days(as_of, customer.last_order_at),
            tenure_days=_days(as_of, customer.first_seen_at),
            churn_probability=result.churn_probability,
            expected_orders=result.expected_orders,
            expected_revenue=_money(result.expected_revenue),
            horizon_days=horizon_days,
        ),
        reasons=[render_reason(r, lang) for r in result.reasons],
        policy_version=active.version,
        model=model,
    )


def _model_out(model: PopulationModel, as_of: datetime) -> dict[str, Any]:
    """Which model answered for customers with an order, and how it validated."""
    checked = model.validated
    return {
        "source": model.source,
        "cutoff": population.cutoff_for(as_of).isoformat().replace("+00:00", "Z"),
        "name": model.answer,
        "version": model.format,
        "trained_on": model.trained_on,
        "validation": None
        if checked is None
        else {
            "window_days": checked.window_days,
            "customers": checked.customers,
            "auc": checked.auc,
            "brier": checked.brier,
            "log_loss": checked.log_loss,
            "silent_share": checked.silent_share,
            "candidates": {v.model: v.log_loss for v in model.validation},
            # The map applied last to the answering model's probabilities ("none" when
            # no map validated better than leaving them), and each map's log-loss.
            "final_map": model.final_map.kind if model.final_map is not None else "none",
            "maps": {v.model: v.log_loss for v in model.map_validation},
        },
    }


async def classify_customers(
    session: AsyncSession,
    *,
    customer_ids: Sequence[str],
    as_of: datetime | None,
    horizon_days: int | None,
    lang: str,
    single: bool = False,
    reuse_fit_for: float = 0.0,
) -> list[ClassificationOut]:
    """Classifications in the order asked; every id must name a known customer.

    An unknown id is a 404 for the single-customer endpoint, a 422 naming it in a batch.
    `reuse_fit_for`: see `population.model_for` (background work only).
    """
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    active = await current_policy(session)
    horizon = horizon_days or active.document.horizon_days
    rows = await repository.histories_for(
        session, external_ids=list(dict.fromkeys(customer_ids)), as_of=as_of
    )
    unknown = [i for i, cid in enumerate(customer_ids) if cid not in rows]
    if unknown:
        if single:
            raise NotFound(f"No customer '{customer_ids[0]}'")
        raise Invalid(
            f"{len(unknown)} unknown customer id(s)",
            errors=[
                field_error(["customer_ids", i], f"no customer '{customer_ids[i]}'", index=i)
                for i in unknown
            ],
        )
    policy = engine_policy(active)
    model = await _population_model(
        session,
        version=active.version,
        policy=policy,
        as_of=as_of,
        horizon_days=horizon,
        reuse_fit_for=reuse_fit_for,
    )
    ordered = list(rows.values())
    batch = repository.to_batch([r for r, _ in ordered], as_of=as_of)
    results = classify(batch.histories, [c.profile for c in batch.customers], model, policy)
    described = _model_out(model, as_of)
    by_id = {
        c.external_id: _render(
            c, res, active=active, model=described, as_of=as_of, horizon_days=horizon, lang=lang
        )
        for c, res in zip(batch.customers, results, strict=True)
    }
    if session.info.pop("commit_needed", False):
        await session.commit()
    CLASSIFICATIONS.labels("single" if single else "batch").inc(len(customer_ids))
    return [by_id[cid] for cid in customer_ids]


async def _population_model(
    session: AsyncSession,
    *,
    version: int,
    policy: EnginePolicy,
    as_of: datetime,
    horizon_days: int,
    reuse_fit_for: float = 0.0,
) -> PopulationModel:
    key = (version, population.cutoff_for(as_of), horizon_days)
    cached = _models.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    lock = _refreshing.setdefault(key, asyncio.Lock())
    if cached is not None and lock.locked():
        return cached[1]  # another request is refreshing it; this one needs no wait
    async with lock:
        cached = _models.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        model, ttl = await _look_up_model(
            session,
            version=version,
            policy=policy,
            as_of=as_of,
            horizon_days=horizon_days,
            reuse_fit_for=reuse_fit_for,
        )
        if len(_models) > 64:
            _models.clear()
        _models[key] = (time.monotonic() + ttl, model)
        return model


async def _look_up_model(
    session: AsyncSession,
    *,
    version: int,
    policy: EnginePolicy,
    as_of: datetime,
    horizon_days: int,
    reuse_fit_for: float = 0.0,
) -> tuple[PopulationModel, float]:
    """The stored (or newly fitted and stored) model, and how long to trust it.

    A read session has no transaction of its own, so a fit (which takes a lock and
    stores its result) runs in one on the primary; with the primary down, a replica
    serves the stored fit, or one fitted here and kept in memory only.
    """
    writes: async_sessionmaker[AsyncSession] | None = session.info.get(PRIMARY)
    if writes is None:
        model = await population.model_for(
            session,
            version=version,
            policy=policy,
            as_of=as_of,
            horizon_days=horizon_days,
            reuse_fit_for=reuse_fit_for,
        )
        return model, MODEL_TTL
    try:
        async with guarded(writes) as fit_session:
            model = await population.model_for(
                fit_session,
                version=version,
                policy=policy,
                as_of=as_of,
                horizon_days=horizon_days,
                reuse_fit_for=reuse_fit_for,
            )
            await fit_session.commit()
            return model, MODEL_TTL
    except Exception as exc:
        if not (is_replica(session) and is_unavailable(exc)):
            raise
    cutoff = population.cutoff_for(as_of)
    stored = await repository.load_fit(
        session, version=version, cutoff=cutoff, horizon_days=horizon_days
    )
    if stored is not None:
        return PopulationModel.from_json(orjson.loads(stored[0])), READ_ONLY_MODEL_TTL
    fitted = await population.fit(session, policy=policy, cutoff=cutoff, horizon_days=horizon_days)
    return fitted, READ_ONLY_MODEL_TTL
