"""Geometry for the dashboard's SVG charts: plain numbers in, shapes out (no HTML here).

Templates draw the shapes; every value they print is escaped there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEAT_STEPS = 6


def heat(value: float, largest: float) -> int:
    """A colour step 0..HEAT_STEPS-1; 0 only for nothing, so a small cell still shows."""
    if value <= 0 or largest <= 0:
        return 0
    return 1 + min(int((value / largest) * (HEAT_STEPS - 1)), HEAT_STEPS - 2)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Histogram:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    largest: int


def histogram(counts: Sequence[int], *, width: int = 900, height: int = 160) -> Histogram:
    """Equal-width bins of [0, 1]: counts[i] customers with probability in bin i."""
    n = max(len(counts), 1)
    largest = max(counts, default=0)
    step = width / n
    bars = []
    for i, count in enumerate(counts):
        h = 0.0 if largest == 0 else height * count / largest
        lo, hi = i / n, (i + 1) / n
        bars.append(
            Bar(
                x=round(i * step + 1, 2),
                y=round(height - h, 2),
                width=round(step - 2, 2),
                height=round(h, 2),
                value=count,
                label=f"{lo:.2f}–{hi:.2f}",
            )
        )
    ticks = [(round(width * t, 2), f"{t:.2g}") for t in (0, 0.25, 0.5, 0.75, 1)]
    return Histogram(width=width, height=height, bars=bars, ticks=ticks, largest=largest)


@dataclass(frozen=True, slots=True)
class Piece:
    x: float
    width: float
    value: int
    source: str  # what the piece stands for (a code, or "" for first classifications)
    colour: int  # index into the palette of the chart's categories


@dataclass(frozen=True, slots=True)
class StackedRow:
    category: str
    total: int
    pieces: list[Piece]


def stacked_rows(
    flows: dict[tuple[str, str], int],
    *,
    categories: Sequence[str],
    width: float = 100.0,
) -> list[StackedRow]:
    """One horizontal bar per destination, split by origin, scaled to the largest total.

    `flows` maps (origin, destination) to a count; origin "" is a first classification.
    Widths are percentages of the chart width, so the SVG scales with the page.
    """
    origins = ["", *categories]
    totals = {dest: sum(n for (_, d), n in flows.items() if d == dest) for dest in categories}
    largest = max(totals.values(), default=0)
    rows = []
    for dest in categories:
        x = 0.0
        pieces = []
        for colour, origin in enumerate(origins):
            value = flows.get((origin, dest), 0)
            if value <= 0 or largest <= 0:
                continue
            w = width * value / largest
            pieces.append(
                Piece(x=round(x, 3), width=round(w, 3), value=value, source=origin, colour=colour)
            )
            x += w
        rows.append(StackedRow(category=dest, total=totals[dest], pieces=pieces))
    return rows


@dataclass(frozen=True, slots=True)
class Sparkline:
    width: int
    height: int
    points: str
    first: int
    last: int
    low: int
    high: int
    days: int


def sparkline(values: Sequence[int], *, width: int = 160, height: int = 36) -> Sparkline:
    """A polyline through the values, low at the bottom; a flat line when they never move."""
    if not values:
        values = [0]
    low, high = min(values), max(values)
    span = high - low
    n = len(values)
    coordinates = []
    for i, v in enumerate(values):
        x = 0.0 if n == 1 else width * i / (n - 1)
        y = height / 2 if span == 0 else height - 2 - (height - 4) * (v - low) / span
        coordinates.append(f"{x:.1f},{y:.1f}")
    if n == 1:
        coordinates.append(f"{width:.1f},{height / 2:.1f}")
    return Sparkline(
        width=width,
        height=height,
        points=" ".join(coordinates),
        first=values[0],
        last=values[-1],
        low=low,
        high=high,
        days=n,
    )
