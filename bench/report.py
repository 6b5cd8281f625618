"""The printed table: every figure beside its baseline, the ratio and the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure import LoadResult

NA = "n/a (endpoint missing)"


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""  # "ok", "MISS" or ""
    cpu: str = ""  # cores used by client/app/PostgreSQL/whole machine in the window


@dataclass(frozen=True)
class Section:
    title: str
    figures: list[Figure]


def check(ok: bool) -> str:
    return "ok" if ok else "MISS"


def latency(r: LoadResult) -> str:
    """req/s, p50 and p99 of one measurement."""
    return f"{r.rps:,.0f}/s p50 {r.p50:.1f} p99 {r.p99:.1f} ms"


def errors_note(r: LoadResult) -> str:
    return f" ({r.errors} errors)" if r.errors else ""


def missing(name: str) -> Figure:
    return Figure(name=name, value=NA)


HEADINGS = ("figure", "Stratum", "baseline", "ratio", "target", "", "cores client/app/pg/all")


def render(sections: Sequence[Section], headings: Sequence[str] = HEADINGS) -> str:
    rows: list[tuple[str, ...]] = [tuple(headings)]
    for section in sections:
        rows.append((section.title,))
        rows += [
            (f"  {f.name}", f.value, f.baseline, f.ratio, f.target, f.verdict, f.cpu)
            for f in section.figures
        ]
    widths = [max(len(r[i]) for r in rows if len(r) > 1) for i in range(len(HEADINGS))]
    lines = []
    for r in rows:
        if len(r) == 1:
            lines.append(r[0])
            continue
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    rule = "-" * max(len(line) for line in lines)
    out = [lines[0], rule, *lines[1:]]
    if any(f.cpu.endswith("*") for s in sections for f in s.figures):
        out.append(
            "* other work on the machine used more than half a core in that window: "
            "its absolute figures are low; compare ratios, or run again"
        )
    return "\n".join(out)
