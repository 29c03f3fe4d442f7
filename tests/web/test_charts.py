"""The console's bar charts (web/charts.py): round axes, bars proportional to
their values, stacked segments that meet, labels that do not crowd."""

from __future__ import annotations

import pytest

from shared_gov.web import charts


@pytest.mark.parametrize(
    ("peak", "top", "step"),
    [(0, 1, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (10, 10, 5), (17, 20, 5), (101, 150, 50)],
)
def test_the_axis_is_round_and_holds_the_peak(peak: int, top: int, step: int) -> None:
    assert charts.scale(peak) == (top, step)
    assert top >= peak
    assert top % step == 0


def test_columns_are_proportional_and_stacked() -> None:
    chart = charts.columns([("a", (6, 2)), ("b", (3, 0)), ("c", (0, 0))], ("allowed", "refused"))
    a, b, c = chart.bars
    plot = chart.bottom - chart.top
    top_value = charts.scale(8)[0]
    (allowed, refused) = a.segments
    assert allowed.height == pytest.approx(plot * 6 / top_value)
    assert refused.height == pytest.approx(plot * 2 / top_value)
    # The refused part sits on the allowed part, which sits on the axis.
    assert allowed.y + allowed.height == pytest.approx(chart.bottom)
    assert refused.y + refused.height == pytest.approx(allowed.y)
    assert [s.series for s in b.segments] == ["allowed"]
    assert c.segments == ()
    assert c.total == 0
    assert chart.peak is a
    assert chart.total == 11
    # Bars do not overlap and stay inside the plot.
    assert a.segments[0].x + a.segments[0].width < b.segments[0].x
    assert b.segments[0].x + b.segments[0].width <= chart.right


def test_many_columns_label_every_kth() -> None:
    chart = charts.columns([(str(i), (1, 0)) for i in range(366)], ("allowed", "refused"))
    shown = [b for b in chart.bars if b.show_label]
    assert len(shown) <= charts.MAX_LABELS
    assert chart.bars[0].show_label


def test_rows_grow_with_their_items_and_an_empty_chart_has_no_peak() -> None:
    chart = charts.rows([("zeimu", (6, 0)), ("kaigo", (0, 5))], ("allowed", "refused"))
    assert chart.kind == "rows"
    zeimu, kaigo = chart.bars
    assert zeimu.segments[0].width > kaigo.segments[0].width
    assert kaigo.segments[0].series == "refused"
    assert zeimu.segments[0].x == chart.left
    empty = charts.rows([], ("allowed", "refused"))
    assert empty.peak is None
    assert charts.columns([("x", (0, 0))], ("allowed", "refused")).peak is None
