"""Column helpers: first-match selection, and grouping rows by several small-integer
columns at once, in NumPy.

Many customers share the same segments, strategy and reasons; grouping them first lets
the engine build each distinct result object once instead of once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from app.classification.engine.types import IntArray

BoolArray = NDArray[np.bool_]

# Keep the mixed-radix key well inside int64.
_KEY_LIMIT = 2**52
# Below this many rows grouping costs more than it saves.
SMALL = 32

T = TypeVar("T")


def group(columns: Sequence[IntArray], size: int) -> tuple[IntArray, IntArray]:
    """(group id of every row, first row of every group): rows with equal values in all
    `columns` share a group id in 0..groups-1, numbered in order of their keys. In a
    small batch every row is its own group: grouping would cost more than it saves."""
    if size <= SMALL:
        rows = np.arange(size, dtype=np.int64)
        return rows, rows
    key = np.zeros(size, dtype=np.int64)
    for column in columns:
        values = np.asarray(column, dtype=np.int64)
        if not values.size:
            continue
        low = int(values.min())
        radix = int(values.max()) - low + 1
        if (int(key.max()) + 1) * radix >= _KEY_LIMIT:
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * radix + (values - low)
    _, first, ids = np.unique(key, return_index=True, return_inverse=True)
    return ids.astype(np.int64).reshape(size), first.astype(np.int64)


def codes_of(values: Sequence[object]) -> tuple[IntArray, list[object]]:
    """Small-integer codes for arbitrary hashable values, and the values in code order
    (order of first appearance, so the coding is deterministic)."""
    index: dict[object, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    return codes, list(index)


def spread(objects: Sequence[T], ids: IntArray) -> list[T]:
    """objects[ids[i]] for every row, done in C."""
    table = np.empty(len(objects), dtype=object)
    # One by one: a slice assignment would unpack tuples into a second dimension.
    for i, item in enumerate(objects):
        table[i] = item
    result: list[T] = table[ids].tolist()
    return result


def select(conditions: Sequence[BoolArray], choices: Sequence[int], default: int) -> IntArray:
    """The choice of the first true condition per row, else `default` (np.select's
    meaning, at a fraction of its fixed cost on the tiny arrays of a single request)."""
    result = np.full(conditions[0].shape, default, dtype=np.int64)
    for condition, choice in zip(reversed(conditions), reversed(choices), strict=True):
        result = np.where(condition, choice, result)
    return result
