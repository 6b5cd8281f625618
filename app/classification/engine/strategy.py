"""The recommended strategy: the first rule of the policy's catalogue that matches."""

from __future__ import annotations

from collections.abc import Iterable

from app.classification.engine.types import EnginePolicy

# Without a matching rule: urgency by stage, lowered one step per tier below high
# (1 = most urgent). A valuable customer slipping away comes first, a low-value
# returning one last.
_STAGE_URGENCY = {"at_risk": 1, "churned": 2, "new": 2, "loyal": 2, "returning": 3, "prospect": 3}
_TIER_OFFSET = {"high": 0, "mid": 1, "low": 2}
DEFAULT_CADENCE_DAYS = 30
LEAST_URGENT = 5


def pick_strategy(
    policy: EnginePolicy, *, tier: str, stage: str, segment_values: Iterable[object]
) -> tuple[str, int, int]:
    """(code, priority, cadence_days) of the first rule whose tier, stage and segment all
    match; a rule's segment matches when it equals any of the customer's segment values."""
    values = {v for v in segment_values if isinstance(v, str)}
    for rule in policy.strategies:
        if rule.tier is not None and rule.tier != tier:
            continue
        if rule.stage is not None and rule.stage != stage:
            continue
        if rule.segment is not None and rule.segment not in values:
            continue
        return rule.code, rule.priority, rule.cadence_days
    priority = min(_STAGE_URGENCY.get(stage, 3) + _TIER_OFFSET.get(tier, 2), LEAST_URGENT)
    return f"{tier}_{stage}", priority, DEFAULT_CADENCE_DAYS
