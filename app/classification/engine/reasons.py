"""Reasons as sentences a salesperson understands, in English and Simplified Chinese."""

from __future__ import annotations

from app.classification.engine.types import Reason

_TEMPLATES: dict[str, dict[str, str]] = {
    "prospect_contacts": {
        "en": "No order yet; {contacts} inquiries or interactions, {recent} in the last 90 days",
        "zh-CN": "尚未下单；共有 {contacts} 次咨询或互动，其中近 90 天 {recent} 次",
    },
    "prospect_no_activity": {
        "en": "No order and no recorded activity yet",
        "zh-CN": "尚未下单，也没有任何互动记录",
    },
    "silence_vs_cadence": {
        "en": "No order for {days} days; this customer usually orders every {usual} days",
        "zh-CN": "已 {days} 天未下单；该客户通常每 {usual} 天下单一次",
    },
    "single_order_silence": {
        "en": "One order, {days} days ago; customers here typically reorder within {usual} days",
        "zh-CN": "仅下过一单，距今 {days} 天；本店客户通常在 {usual} 天内复购",
    },
    "first_order": {
        "en": "First order {days} days ago",
        "zh-CN": "首单下于 {days} 天前",
    },
    "loyal_history": {
        "en": "Ordered on {order_days} days over {months} months, about every {usual} days",
        "zh-CN": "{months} 个月内有 {order_days} 天下单，约每 {usual} 天一次",
    },
    "returning": {
        "en": "Ordered on {order_days} days; last order {days} days ago, "
        "usually every {usual} days",
        "zh-CN": "共有 {order_days} 天下单；最近一次在 {days} 天前，通常每 {usual} 天一次",
    },
    "won_back": {
        "en": "Won back: ordered again after a {gap}-day silence",
        "zh-CN": "已挽回：沉寂 {gap} 天后再次下单",
    },
    "value_percentile": {
        "en": "Value above {percent}% of customers (past and expected spend)",
        "zh-CN": "价值高于 {percent}% 的客户（含历史与预期消费）",
    },
    "dissatisfied": {
        "en": "Signs of dissatisfaction: {negative} negative feedback, {refunds} refunds",
        "zh-CN": "存在不满迹象：{negative} 条差评，{refunds} 次退款",
    },
    "churn_probability": {
        "en": "{percent}% chance of no order in the next {horizon} days",
        "zh-CN": "未来 {horizon} 天内不下单的概率为 {percent}%",
    },
    "priors": {
        "en": "Few customers with orders yet ({buyers}); estimates rely on priors",
        "zh-CN": "有订单的客户较少（{buyers} 位），预测基于先验估计",
    },
}


def render_reason(reason: Reason, lang: str) -> str:
    templates = _TEMPLATES.get(reason.code)
    if templates is None:
        return reason.code
    template = templates.get(lang) or templates["en"]
    try:
        return template.format(**reason.params)
    except (KeyError, IndexError, ValueError):
        return templates["en"].format_map({k: reason.params.get(k, "?") for k in reason.params})
