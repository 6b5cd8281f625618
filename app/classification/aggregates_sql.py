"""SQL shared by the readers of customer histories: one customer's event aggregates as
of T, and a moment's age in days. `$1` is T in both."""

from __future__ import annotations


def event_aggregates(where: str) -> str:
    """Per customer, the aggregates of their events at or before T that `where` picks.

    The event types are compared once per event, not once per aggregate. Sums over no
    matching event are NULL; callers coalesce.
    """
    return f"""
    SELECT customer_id,
           count(*) FILTER (WHERE is_order) AS orders,
           min(occurred_at) FILTER (WHERE is_order) AS first_order_at,
           max(occurred_at) FILTER (WHERE is_order) AS last_order_at,
           sum(amount_base) FILTER (WHERE is_order) AS revenue,
           sum(amount_base) FILTER (WHERE is_refund) AS refunds,
           count(*) FILTER (WHERE is_refund) AS refund_count,
           sum(margin_base) FILTER (WHERE is_order) AS margin,
           count(*) FILTER (WHERE is_inquiry) AS inquiries,
           count(*) FILTER (WHERE is_interaction) AS interactions,
           count(*) FILTER (
               WHERE (is_inquiry OR is_interaction)
                 AND occurred_at > $1::timestamptz - interval '90 days'
           ) AS recent_contacts,
           count(rating) FILTER (WHERE is_feedback) AS feedback_count,
           avg(rating) FILTER (WHERE is_feedback)::float8 AS rating_mean,
           count(*) FILTER (WHERE is_feedback AND rating <= 4) AS negative_feedback,
           min(occurred_at) AS first_event_at,
           max(occurred_at) AS last_event_at
      FROM (
        SELECT customer_id, occurred_at, amount_base, margin_base, rating,
               type = 'order' AS is_order, type = 'refund' AS is_refund,
               type = 'inquiry' AS is_inquiry, type = 'interaction' AS is_interaction,
               type = 'feedback' AS is_feedback
          FROM events
         WHERE {where} AND occurred_at <= $1::timestamptz
      ) e
     GROUP BY customer_id"""  # noqa: S608


def age_days(moment: str) -> str:
    """T minus `moment` in days, as Python's max((T - t).total_seconds(), 0) / 86400:
    exact seconds, one rounding to float; NaN for a NULL moment."""
    return (
        f"CASE WHEN {moment} IS NULL THEN 'NaN'::float8 ELSE greatest(("
        f"extract(epoch FROM $1::timestamptz) - extract(epoch FROM {moment}))::float8, 0)"
        " / 86400 END"
    )
