"""Tier and stage labels, and the caller's language from Accept-Language."""

from __future__ import annotations

LANGUAGES = ("en", "zh-CN")

TIER_LABELS = {
    "en": {"high": "High value", "mid": "Mid value", "low": "Low value"},
    "zh-CN": {"high": "高价值客户", "mid": "中价值客户", "low": "低价值客户"},
}

STAGE_LABELS = {
    "en": {
        "prospect": "Prospect",
        "new": "New",
        "returning": "Returning",
        "loyal": "Loyal",
        "at_risk": "At risk",
        "churned": "Churned",
    },
    "zh-CN": {
        "prospect": "潜在客户",
        "new": "新客户",
        "returning": "回头客",
        "loyal": "忠实客户",
        "at_risk": "流失预警客户",
        "churned": "流失客户",
    },
}


def language(accept_language: str | None) -> str:
    """The best supported language for an Accept-Language header (RFC 9110 q-values)."""
    if not accept_language:
        return "en"
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        tag = tag.strip().lower()
        # Simplified is the only Chinese served; a Traditional reader still reads it.
        if tag == "zh" or tag.startswith("zh-"):
            choices.append((quality, -position, "zh-CN"))
        elif tag.startswith("en") or tag == "*":
            choices.append((quality, -position, "en"))
    choices = [c for c in choices if c[0] > 0]
    return max(choices)[2] if choices else "en"
