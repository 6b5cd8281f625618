"""The rule language of customer-defined segments, compiled to SQL with bound parameters.

A rule is a condition or a group:
    {"field": "country", "op": "in", "value": ["DE", "FR"]}
    {"all": [rule, ...]}   {"any": [rule, ...]}   {"not": rule}
Fields are a fixed vocabulary (customer columns, `attributes.<key>`, stored
classification columns, `segments.<key>`), so user input never becomes SQL text.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, not_, null, or_, true

from app.classification.models import CurrentClassification
from app.core.problems import Invalid, field_error
from app.core.types import parse_time_any, text_problem
from app.customers.models import Customer

MAX_DEPTH = 5
MAX_CONDITIONS = 50
OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_TEXT_FIELDS: dict[str, Any] = {
    "customer_id": Customer.external_id,
    "country": Customer.country,
    "customer_type": Customer.customer_type,
    "role": Customer.role,
    "industry": Customer.industry,
    "company_size": Customer.company_size,
    "tier": CurrentClassification.tier,
    "stage": CurrentClassification.stage,
    "strategy": CurrentClassification.strategy,
}
_NUMBER_FIELDS: dict[str, Any] = {
    "tier_score": CurrentClassification.tier_score,
    "churn_probability": CurrentClassification.churn_probability,
    "orders": CurrentClassification.orders,
    "revenue": CurrentClassification.revenue,
    "expected_revenue": CurrentClassification.expected_revenue,
}
_TIME_FIELDS: dict[str, Any] = {"created_at": Customer.created_at}
FIELDS = sorted(
    [*_TEXT_FIELDS, *_NUMBER_FIELDS, *_TIME_FIELDS, "attributes.<key>", "segments.<key>"]
)


class _Compiler:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.count = 0

    def fail(self, path: list[str | int], message: str) -> ColumnElement[bool]:
        self.errors.append(field_error(["rule", *path], message))
        return false()

    def node(self, rule: Any, path: list[str | int], depth: int) -> ColumnElement[bool]:
        if depth > MAX_DEPTH:
            return self.fail(path, f"rules nest at most {MAX_DEPTH} levels deep")
        if not isinstance(rule, dict):
            return self.fail(path, "must be an object")
        self.count += 1
        if self.count > MAX_CONDITIONS:
            return self.fail(path, f"a rule has at most {MAX_CONDITIONS} conditions")
        groups = [k for k in ("all", "any", "not") if k in rule]
        if groups:
            if len(rule) != 1:
                return self.fail(path, "a group has exactly one key: all, any or not")
            key = groups[0]
            if key == "not":
                negated: ColumnElement[bool] = not_(
                    self.node(rule["not"], [*path, "not"], depth + 1)
                )
                return negated
            items = rule[key]
            if not isinstance(items, list) or not items:
                return self.fail([*path, key], "must be a non-empty list of rules")
            parts = [self.node(item, [*path, key, i], depth + 1) for i, item in enumerate(items)]
            return and_(true(), *parts) if key == "all" else or_(false(), *parts)
        return self.condition(rule, path)

    def condition(self, rule: dict[str, Any], path: list[str | int]) -> ColumnElement[bool]:
        unknown = set(rule) - {"field", "op", "value"}
        if unknown:
            return self.fail(path, f"unknown keys: {', '.join(sorted(unknown))}")
        field, op, value = rule.get("field"), rule.get("op"), rule.get("value")
        if op not in OPS:
            return self.fail([*path, "op"], f"op must be one of {', '.join(OPS)}")
        column, kind = self.column(field, [*path, "field"])
        if column is None:
            return false()
        if op == "exists":
            if value not in (None, True, False):
                return self.fail([*path, "value"], "exists takes true, false or no value")
            present: ColumnElement[bool] = column.is_not(None)
            return not_(present) if value is False else present
        return self.compare(column, kind, op, value, [*path, "value"])

    def column(self, field: Any, path: list[str | int]) -> tuple[Any, str]:
        if not isinstance(field, str):
            self.fail(path, "must be a field name")
            return None, ""
        if field in _TEXT_FIELDS:
            return _TEXT_FIELDS[field], "text"
        if field in _NUMBER_FIELDS:
            return _NUMBER_FIELDS[field], "number"
        if field in _TIME_FIELDS:
            return _TIME_FIELDS[field], "time"
        prefix, _, key = field.partition(".")
        if prefix in ("attributes", "segments") and _KEY.fullmatch(key):
            document = (
                Customer.attributes if prefix == "attributes" else CurrentClassification.segments
            )
            return document[key], "json"
        self.fail(path, f"unknown field; use one of {', '.join(FIELDS)}")
        return None, ""

    def compare(
        self, column: Any, kind: str, op: str, value: Any, path: list[str | int]
    ) -> ColumnElement[bool]:
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > 1000:
                return self.fail(path, "must be a list of 1-1000 values")
            values = [self.scalar(kind, v, path) for v in value]
            if any(v is _BAD for v in values):
                return false()
            if len({_json_type(v) for v in values}) > 1:
                return self.fail(path, "values of one list must all be text, numbers or booleans")
            target = self.typed(column, kind, values[0])
            if kind == "json" and _json_type(values[0]) == "number":
                values = [float(v) for v in values]  # else the list binds as the first's type
            result: ColumnElement[bool] = target.in_(values)
            return not_(result) if op == "not_in" else result
        scalar = self.scalar(kind, value, path)
        if scalar is _BAD:
            return false()
        if op == "contains":
            if not isinstance(scalar, str):
                return self.fail(path, "contains takes text")
            text = self.typed(column, kind, "")
            found: ColumnElement[bool] = text.contains(scalar, autoescape=True)
            return found
        if op in ("gt", "gte", "lt", "lte") and kind != "time" and _json_type(scalar) != "number":
            return self.fail(path, f"{op} takes a number")
        target = self.typed(column, kind, scalar)
        # A bound parameter, never Python's True/False: `= true` is NULL for a customer
        # without the attribute, where SQLAlchemy's `IS true` would match them for `ne`.
        comparison: ColumnElement[bool] = _COMPARE[op](target, literal(scalar))
        return comparison

    @staticmethod
    def typed(column: Any, kind: str, sample: Any) -> Any:
        """The column as the sample's type. A JSON value of another type (a customer who
        holds `"yes"` where the rule compares `true`) is NULL, so it matches no comparison
        instead of failing the cast at query time."""
        if kind != "json":
            return column
        json_type = _json_type(sample)
        if json_type == "string":
            return column.as_string()
        cast = column.as_boolean() if json_type == "boolean" else column.as_float()
        return case((func.jsonb_typeof(column) == json_type, cast), else_=null())

    def scalar(self, kind: str, value: Any, path: list[str | int]) -> Any:
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            self.fail(path, "must be a number")
            return _BAD
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (not math.isfinite(value) or abs(value) >= MAX_NUMBER)
        ):
            self.fail(path, f"must be a finite number below {MAX_NUMBER:.0e} in size")
            return _BAD
        if kind in ("text", "time") and not isinstance(value, str):
            self.fail(path, "must be a string")
            return _BAD
        if kind == "json" and not isinstance(value, str | int | float | bool):
            self.fail(path, "must be a string, number or boolean")
            return _BAD
        if isinstance(value, str):
            problem = text_problem(value) or (None if len(value) <= 256 else "too long")
            if problem is not None:
                self.fail(path, f"must be at most 256 characters of text: {problem}")
                return _BAD
        if kind == "time":
            try:
                return parse_time_any(value)
            except ValueError as exc:
                self.fail(path, str(exc))
                return _BAD
        return value


_BAD = object()
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
# Every number column and jsonb number compares safely below this (int8 columns too).
MAX_NUMBER = 1e15


def _json_type(value: Any) -> str:
    """The jsonb_typeof name of a rule's scalar value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def compile_rule(rule: Any) -> ColumnElement[bool]:
    """The rule as a SQL condition; 422 naming every bad part."""
    compiler = _Compiler()
    condition = compiler.node(rule, [], 1)
    if compiler.errors:
        raise Invalid("The segment rule is not valid", errors=compiler.errors)
    return condition
