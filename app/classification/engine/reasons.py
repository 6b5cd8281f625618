"""Reasons as sentences a salesperson understands, in English and Simplified Chinese.

A Reason is a code and its numbers (rounded for display when made, see explain.py), so
the rendered text and the stored params agree.
"""

from __future__ import annotations

import re

from app.classification.engine.types import Reason

LANGUAGES = ("en", "zh-CN")

TEMPLATES: dict[str, dict[str, str]] = {
    "prospect_contacts": {
        "en": "No order yet; {contacts} contacts (inquiries or interactions), "
        "{recent} in the last 90 days",
        "zh-CN": "尚未下单；共有 {contacts} 次咨询或互动，其中近 90 天 {recent} 次",
    },
    "prospect_no_activity": {
        "en": "No order and no recorded contact yet",
        "zh-CN": "尚未下单，也没有任何咨询或互动记录",
    },
    "first_order": {
        "en": "First order {days} days ago",
        "zh-CN": "首单下于 {days} 天前",
    },
    "returning": {
        "en": "Ordered on {order_days} days; last order {days} days ago, "
        "usually every {usual} days",
        "zh-CN": "共有 {order_days} 天下单；最近一次在 {days} 天前，通常每 {usual} 天下单一次",
    },
    "loyal_history": {
        "en": "Ordered on {order_days} days over {months} months, about every {usual} days",
        "zh-CN": "{months} 个月内有 {order_days} 天下单，约每 {usual} 天一次",
    },
    "silence_vs_cadence": {
        "en": "No order for {days} days; this customer usually orders every {usual} days",
        "zh-CN": "已 {days} 天未下单；该客户通常每 {usual} 天下单一次",
    },
    "single_order_silence": {
        "en": "One order, {days} days ago; customers here typically reorder every {usual} days",
        "zh-CN": "仅下过一单，距今 {days} 天；客户通常每 {usual} 天复购一次",
    },
    "won_back": {
        "en": "Won back: ordered again after a {gap}-day silence",
        "zh-CN": "已挽回：沉寂 {gap} 天后再次下单",
    },
    "value_percentile": {
        "en": "Value (past and expected) above {percent}% of customers with orders",
        "zh-CN": "价值（历史与预期）高于 {percent}% 的有订单客户",
    },
    "dissatisfied": {
        "en": "Signs of dissatisfaction: {negative} negative feedback, "
        "{refund_percent}% of spend refunded",
        "zh-CN": "存在不满迹象：{negative} 条差评，{refund_percent}% 的消费金额已退款",
    },
    "churn_probability": {
        "en": "{percent}% chance of no order in the next {horizon} days",
        "zh-CN": "未来 {horizon} 天内不下单的概率为 {percent}%",
    },
    "model_validated": {
        "en": "Estimated by {model}, validated on {customers} customers over the last "
        "{days} days (AUC {auc}, Brier {brier})",
        "zh-CN": "由 {model} 估计，已在 {customers} 位客户最近 {days} 天的实际表现上验证"
        "（AUC {auc}，Brier {brier}）",
    },
    "model_unvalidated": {
        "en": "Estimated by {model}; the history is too short to validate it yet",
        "zh-CN": "由 {model} 估计；历史数据尚不足以验证",
    },
    "priors": {
        "en": "Population too small ({buyers} customers with orders); estimates use priors",
        "zh-CN": "客户群体过小（{buyers} 位有订单客户），预测基于先验估计",
    },
}

# How each answering model is named in reasons (a technical name, the same in every language).
MODEL_NAMES = {
    "prior": "priors",
    "bgnbd": "BG/NBD",
    "bgnbd_platt": "BG/NBD with Platt scaling",
    "calibrated": "BG/NBD with a calibration layer",
    "pareto_nbd": "Pareto/NBD",
}
# How the final map on top of it is named.
MAP_NAMES = {
    "platt": "Platt-recalibrated",
    "beta": "beta-recalibrated",
}

# English singulars after a literal 1 ("1 days" -> "1 day").
_SINGULAR = re.compile(r"(?<![\d.])1 (day|month|contact)s\b")


def language(lang: str) -> str:
    """The supported language closest to an Accept-Language style tag (English default)."""
    return "zh-CN" if lang.strip().lower().startswith("zh") else "en"


def render(reason: Reason, lang: str) -> str:
    """The reason as a sentence in `lang`; an unknown code renders as itself."""
    templates = TEMPLATES.get(reason.code)
    if templates is None:
        return reason.code
    lang = language(lang)
    try:
        text = templates[lang].format_map(reason.params)
    except (KeyError, IndexError, ValueError):
        return reason.code
    return _SINGULAR.sub(r"1 \1", text) if lang == "en" else text
