from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.dashboard import charts
from app.dashboard.i18n import Translator, choose_language
from app.dashboard.service import size_history, walk_back

TODAY = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _midnight(days_ago: int) -> datetime:
    return TODAY.replace(hour=0) - days_ago * DAY


def test_heat_steps_keep_small_cells_visible() -> None:
    assert charts.heat(0, 100) == 0
    assert charts.heat(1, 100) == 1
    assert charts.heat(100, 100) == charts.HEAT_STEPS - 1
    assert charts.heat(5, 0) == 0


def test_histogram_bars_scale_to_the_largest_bin() -> None:
    h = charts.histogram([0, 5, 10, 5], width=400, height=100)
    assert [b.value for b in h.bars] == [0, 5, 10, 5]
    assert [b.height for b in h.bars] == [0, 50, 100, 50]
    assert h.bars[2].y == 0 and h.bars[0].y == 100
    assert h.bars[1].x == 101 and h.bars[1].label == "0.25–0.50"
    assert charts.histogram([0, 0]).largest == 0  # nothing to draw, no division by zero


def test_stacked_rows_split_each_destination_by_origin() -> None:
    flows = {("", "new"): 3, ("new", "returning"): 2, ("loyal", "returning"): 2}
    rows = charts.stacked_rows(flows, categories=["new", "returning", "loyal"], width=100)
    by_category = {r.category: r for r in rows}
    assert by_category["returning"].total == 4 and by_category["loyal"].total == 0
    pieces = by_category["returning"].pieces
    assert [(p.source, p.value, p.width) for p in pieces] == [("new", 2, 50), ("loyal", 2, 50)]
    assert pieces[1].x == 50
    # Colour 0 is "first classified", then each category in order.
    assert by_category["new"].pieces[0].colour == 0 and pieces[1].colour == 3


def test_sparkline_puts_the_low_at_the_bottom() -> None:
    line = charts.sparkline([1, 3, 2], width=100, height=24)
    assert line.points == "0.0,22.0 50.0,2.0 100.0,12.0"
    assert (line.low, line.high, line.first, line.last) == (1, 3, 1, 2)
    flat = charts.sparkline([7], width=10, height=10)
    assert flat.points == "0.0,5.0 10.0,5.0"


def test_walk_back_reconstructs_earlier_sizes_from_net_changes() -> None:
    # 10 today; 3 joined today, 1 left yesterday, 2 joined four days ago.
    net = {_midnight(0): 3, _midnight(1): -1, _midnight(4): 2}
    sizes = walk_back(10, net, today=TODAY, days=6)
    assert sizes == [6, 8, 8, 8, 7, 10]
    assert walk_back(4, {}, today=TODAY, days=3) == [4, 4, 4]


def test_size_history_counts_entries_and_exits_per_cell() -> None:
    flows = [
        (_midnight(0), "mid", "loyal", "high", "loyal", 2),  # two moved up today
        (_midnight(2), None, None, "mid", "loyal", 5),  # five first classified
    ]
    history = size_history({("high", "loyal"): 2, ("mid", "loyal"): 3}, flows, today=TODAY, days=4)
    assert history[("high", "loyal")] == [0, 0, 0, 2]
    assert history[("mid", "loyal")] == [0, 5, 5, 3]
    assert history[("low", "new")] == [0, 0, 0, 0]


def test_language_choice_order() -> None:
    assert choose_language(None, None, "zh-CN,zh;q=0.9,en;q=0.5") == "zh-CN"
    assert choose_language(None, None, "en-GB") == "en"
    assert choose_language(None, "zh-CN", "en") == "zh-CN"  # the remembered switch wins
    assert choose_language("en", "zh-CN", "zh") == "en"  # and an explicit choice over it
    assert choose_language("fr", None, None) == "en"


def test_translator_uses_the_classification_labels() -> None:
    zh = Translator("zh-CN")
    assert zh.tier("high") == "高价值客户" and zh.stage("at_risk") == "流失预警客户"
    assert zh("last_days", days=7) == "最近 7 天"
    assert Translator("en")("no-such-key") == "no-such-key"
