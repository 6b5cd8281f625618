"""Pick the recommended strategy: the first catalogue rule that matches."""

from __future__ import annotations

from collections.abc import Mapping

from app.classification.engine.types import EnginePolicy

_DEFAULT_PRIORITY = {
    "at_risk": 2,
    "churned": 3,
    "new": 3,
    "prospect": 4,
    "returning": 3,
    "loyal": 2,
}


def pick_strategy(
    policy: EnginePolicy, *, tier: str, stage: str, segments: Mapping[str, object]
) -> tuple[str, int, int]:
    """(code, priority, cadence_days) of the first matching rule."""
    values = {v for v in segments.values() if isinstance(v, str)}
    for rule in policy.strategies:
        if rule.tier not in (None, tier) or rule.stage not in (None, stage):
            continue
        if rule.segment is not None and rule.segment not in values:
            continue
        return rule.code, rule.priority, rule.cadence_days
    return f"{tier}_{stage}", _DEFAULT_PRIORITY.get(stage, 3), 30
