"""Bar charts drawn on the server, as inline SVG (no script, no inline style).

The Content Security Policy allows no inline script or style, and a chart
library would bring both. A chart here is geometry computed in Python —
:func:`columns` (vertical bars: per day, per hour) and :func:`rows`
(horizontal bars: per department) — which ``templates/charts.html`` draws
as ``<rect>`` and ``<text>`` elements with classes that ``console.css``
colours. Each bar is stacked from the series given (allowed, refused).

A chart is a picture for sighted readers; its ``summary`` is the SVG's
accessible name and every value is in a table beside it (the template).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

WIDTH: Final = 720
"""The viewBox width; the SVG scales to the page (``width: 100%`` in the CSS)."""
COLUMN_HEIGHT: Final = 240
ROW_HEIGHT: Final = 24
MARGIN_LEFT: Final = 48
MARGIN_RIGHT: Final = 16
MARGIN_TOP: Final = 12
MARGIN_BOTTOM: Final = 36
ROW_LABEL_WIDTH: Final = 160
MAX_LABELS: Final = 12
"""At most this many category labels under the columns (every k-th)."""


@dataclass(frozen=True, slots=True)
class Segment:
    series: str
    """CSS class suffix: ``chart-<series>``."""
    x: float
    y: float
    width: float
    height: float
    value: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    values: tuple[int, ...]
    segments: tuple[Segment, ...]
    label_x: float
    label_y: float
    show_label: bool

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    position: float
    """y of the grid line (columns) or x (rows)."""


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str
    """``columns`` or ``rows``."""
    width: int
    height: int
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    left: float
    top: float
    right: float
    bottom: float

    @property
    def total(self) -> int:
        return sum(b.total for b in self.bars)

    @property
    def peak(self) -> Bar | None:
        """The highest bar (the first of equals), None when every bar is zero."""
        best = max(self.bars, key=lambda b: b.total, default=None)
        return best if best is not None and best.total > 0 else None


def scale(peak: int, steps: int = 4) -> tuple[int, int]:
    """A round axis maximum at least ``peak`` and its step (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return 1, 1
    raw = peak / steps
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        step = max(1, factor * power)
        if step * steps >= peak:
            return step * math.ceil(peak / step), step
    return peak, peak  # pragma: no cover - the loop always returns


def _ticks(top_value: int, step: int) -> list[int]:
    return list(range(0, top_value + 1, step))


def columns(items: Sequence[tuple[str, Sequence[int]]], series: Sequence[str]) -> Chart:
    """Vertical stacked bars, one per item (label, one value per series)."""
    n = max(1, len(items))
    left, top = float(MARGIN_LEFT), float(MARGIN_TOP)
    right, bottom = float(WIDTH - MARGIN_RIGHT), float(COLUMN_HEIGHT - MARGIN_BOTTOM)
    peak = max((sum(v) for _, v in items), default=0)
    axis_max, step = scale(peak)
    slot = (right - left) / n
    gap = min(slot * 0.2, 4.0)
    every = max(1, math.ceil(len(items) / MAX_LABELS))
    bars = []
    for i, (label, values) in enumerate(items):
        x = left + i * slot + gap / 2
        y = bottom
        segments = []
        for name, value in zip(series, values, strict=True):
            h = (bottom - top) * value / axis_max
            y -= h
            if value:
                segments.append(Segment(name, x, y, slot - gap, h, value))
        bars.append(
            Bar(
                label,
                tuple(values),
                tuple(segments),
                label_x=x + (slot - gap) / 2,
                label_y=bottom + 16,
                show_label=i % every == 0,
            )
        )
    ticks = tuple(Tick(v, bottom - (bottom - top) * v / axis_max) for v in _ticks(axis_max, step))
    return Chart(
        "columns", WIDTH, COLUMN_HEIGHT, tuple(series), tuple(bars), ticks, left, top, right, bottom
    )


def rows(items: Sequence[tuple[str, Sequence[int]]], series: Sequence[str]) -> Chart:
    """Horizontal stacked bars, one per item, labels on the left."""
    n = max(1, len(items))
    height = MARGIN_TOP + n * ROW_HEIGHT + MARGIN_BOTTOM
    left, top = float(ROW_LABEL_WIDTH), float(MARGIN_TOP)
    right, bottom = float(WIDTH - MARGIN_RIGHT - 32), float(MARGIN_TOP + n * ROW_HEIGHT)
    peak = max((sum(v) for _, v in items), default=0)
    axis_max, step = scale(peak)
    bars = []
    for i, (label, values) in enumerate(items):
        y = top + i * ROW_HEIGHT + 4
        x = left
        segments = []
        for name, value in zip(series, values, strict=True):
            w = (right - left) * value / axis_max
            if value:
                segments.append(Segment(name, x, y, w, ROW_HEIGHT - 8, value))
            x += w
        bars.append(
            Bar(
                label,
                tuple(values),
                tuple(segments),
                label_x=left - 8,
                label_y=y + (ROW_HEIGHT - 8) / 2 + 4,
                show_label=True,
            )
        )
    ticks = tuple(Tick(v, left + (right - left) * v / axis_max) for v in _ticks(axis_max, step))
    return Chart("rows", WIDTH, height, tuple(series), tuple(bars), ticks, left, top, right, bottom)
