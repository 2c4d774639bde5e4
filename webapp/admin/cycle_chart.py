"""Geometry of the "responses over time" chart; the template draws it as inline SVG.

Plain numbers in, plain numbers out (no Flask), so the drawing is testable and the
template stays a template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from surveys.status import DailyResponses

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 36


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: str
    cumulative: int


@dataclass(frozen=True)
class ResponseChart:
    width: int
    height: int
    #: Plot area: left, top, right, bottom.
    box: tuple[float, float, float, float]
    points: tuple[Point, ...]
    #: (y, label) for the horizontal grid lines.
    y_ticks: tuple[tuple[float, str], ...]
    #: (x, label, text-anchor) under the axis; the end labels align inwards.
    x_ticks: tuple[tuple[float, str, str], ...]
    summary: str

    @property
    def line(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def area(self) -> str:
        if not self.points:
            return ""
        base = self.box[3]
        first, last = self.points[0], self.points[-1]
        return f"{first.x:.1f},{base:.1f} {self.line} {last.x:.1f},{base:.1f}"


def _day(d: DailyResponses) -> str:
    return d.day.isoformat()


def _anchor(i: int, n: int) -> str:
    if n == 1:
        return "middle"
    return "start" if i == 0 else "end" if i == n - 1 else "middle"


def response_chart(series: Sequence[DailyResponses], invited: int) -> ResponseChart:
    """Cumulative responses per day, scaled so the top of the chart is everyone invited."""
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    top_value = max(invited, series[-1].cumulative if series else 0, 1)
    span = max(len(series) - 1, 1)

    def x(i: int) -> float:
        return left + (right - left) * (i / span if len(series) > 1 else 0.5)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / top_value

    points = tuple(
        Point(x(i), y(d.cumulative), _day(d), d.cumulative) for i, d in enumerate(series)
    )
    # Percentages of everyone invited: the chart is about the rate, and counts are in the table.
    y_ticks = tuple((y(top_value * share), f"{share:.0%}") for share in (0, 0.25, 0.5, 0.75, 1))
    picks = sorted({0, len(series) // 2, len(series) - 1}) if series else []
    x_ticks = tuple((x(i), series[i].day.strftime("%d %b"), _anchor(i, len(series))) for i in picks)
    if series:
        last = series[-1]
        rate = f" ({last.cumulative / invited:.0%} of {invited} invited)" if invited else ""
        summary = (
            f"From {_day(series[0])} to {_day(last)}, responses grew to {last.cumulative}{rate}."
        )
    else:
        summary = "No responses yet."
    return ResponseChart(
        WIDTH, HEIGHT, (left, top, right, bottom), points, y_ticks, x_ticks, summary
    )
