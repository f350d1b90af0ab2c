"""The primitives every built-in chart kind draws with: palette, scales, axes, text and lines.

Every element is built from a :class:`markupsafe.Markup` template whose arguments
``Markup.format`` escapes, so a class name or series name can never become markup. Colours
follow the Okabe–Ito palette, and series also differ by dash pattern (or marker shape), so
they can be told apart without colour and in a greyscale print.

The names with a leading underscore are the toolkit of the :mod:`auditor.report.charts`
package: its kind modules (:mod:`.xy`, :mod:`.bars`, :mod:`.heatmaps`) import them; nothing
outside the package should.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from auditor.report.numbers import is_number

#: Okabe–Ito colours, most distinguishable first (yellow left out: unreadable on white).
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
)
#: Dash patterns paired with the colours, so series differ without colour too.
DASHES: tuple[str, ...] = ("none", "7 3", "2 2", "9 3 2 3", "4 4", "12 4", "1 3")
#: Marker shapes paired with the colours of a dot plot, for the same reason.
SHAPES: tuple[str, ...] = ("circle", "square", "diamond", "triangle")

_CHAR_WIDTH = 6.6  # average width in px of an 11 px sans-serif character
_GRID = "#e3e3e3"
_AXIS = "#555555"
_REFERENCE = "#777777"

Body = list[Markup]


class ChartDataError(ValueError):
    """A chart's data does not have the shape its kind needs; the message says what is off."""


@dataclass(frozen=True)
class Drawing:
    """An SVG body with its size and a one-line description for assistive technology."""

    width: float
    height: float
    body: Body
    description: str


@dataclass(frozen=True)
class _Scale:
    """A linear map from a data domain onto a pixel range, with nice tick values."""

    lo: float
    hi: float
    start: float
    end: float
    ticks: tuple[float, ...]
    decimals: int

    def __call__(self, value: float) -> float:
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)

    def label(self, value: float) -> str:
        return f"{value:,.{self.decimals}f}"


def _scale(values: list[float], start: float, end: float) -> _Scale:
    """A scale covering ``values``, widened to round tick values (steps of 1, 2 or 5 x 10^k)."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if lo == hi:
        pad = abs(lo) * 0.5 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    # rounded to the step's own digits and three more (a fixed 12 decimals made every tick of
    # a domain like [0, 1e-15] zero, and the scale a division by zero)
    ticks = tuple(round(i * step, decimals + 3) for i in range(first, last + 1))
    return _Scale(ticks[0], ticks[-1], start, end, ticks, decimals)


@dataclass(frozen=True)
class _LogScale:
    """A base-10 logarithmic map from a positive data domain onto a pixel range; the domain
    is widened to whole decades, ticked at each decade (and at 2 and 5 times it when the
    domain spans at most two decades)."""

    lo: float
    hi: float
    start: float
    end: float
    ticks: tuple[float, ...]

    def __call__(self, value: float) -> float:
        span = math.log10(self.hi) - math.log10(self.lo)
        return self.start + (math.log10(value) - math.log10(self.lo)) / span * (self.end - self.start)

    def label(self, value: float) -> str:
        if 1e-4 <= value < 1e6:
            return f"{value:,.{max(0, -math.floor(math.log10(value) + 1e-9))}f}"
        return f"{value:.0e}"


def _log_scale(values: list[float], start: float, end: float) -> _LogScale:
    """A log scale covering the positive ``values`` (1 to 10 when there is none)."""
    positive = [v for v in values if v > 0]
    lo, hi = (min(positive), max(positive)) if positive else (1.0, 10.0)
    first = math.floor(math.log10(lo) + 1e-9)
    last = max(math.ceil(math.log10(hi) - 1e-9), first + 1)
    decades = last - first
    if decades <= 2:
        ticks = [m * 10.0**k for k in range(first, last) for m in (1, 2, 5)] + [10.0**last]
    else:
        every = math.ceil(decades / 6)
        ticks = [10.0**k for k in range(first, last + 1) if (k - first) % every == 0]
    return _LogScale(10.0**first, 10.0**last, start, end, tuple(ticks))


def _px(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _fit(text: str, width_px: float) -> str:
    """``text`` shortened with an ellipsis to fit about ``width_px`` pixels."""
    chars = max(int(width_px / _CHAR_WIDTH + 1e-9), 2)  # 6 chars x width / width can be 5.999...
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _text(
    x: float, y: float, text: str, *, anchor: str = "middle", css: str = "", rotate: float = 0
) -> Markup:
    """A text element at ``(x, y)``, optionally rotated about that point."""
    transform = ""
    if rotate:
        transform = Markup(' transform="rotate({} {} {})"').format(_px(rotate), _px(x), _px(y))
    return Markup('<text x="{}" y="{}" text-anchor="{}" class="{}"{}>{}</text>').format(
        _px(x), _px(y), anchor, css, transform, text
    )


def _label(x: float, y: float, text: str, width_px: float, **kwargs: Any) -> Markup:
    """A text element shortened to ``width_px``, with the full text as a tooltip if cut."""
    shown = _fit(text, width_px)
    element = _text(x, y, shown, **kwargs)
    if shown == text:
        return element
    tooltip = Markup("<title>{}</title></text>").format(text)
    return Markup(element.replace(Markup("</text>"), tooltip, 1))


def _line(
    x1: float, y1: float, x2: float, y2: float, colour: str, *, width: float = 1, dash: str = "none"
) -> Markup:
    return Markup(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}" '
        'stroke-dasharray="{}"/>'
    ).format(_px(x1), _px(y1), _px(x2), _px(y2), colour, _px(width), dash)


# ---- reading chart data -------------------------------------------------------------------


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise ChartDataError(f"the data has no {key!r} entry")
    return data[key]


def _numbers(data: dict[str, Any], key: str) -> list[float | None]:
    """A list of numbers (None allowed for undefined values)."""
    values = _field(data, key)
    if not isinstance(values, list) or not all(
        v is None or (is_number(v) and math.isfinite(v)) for v in values
    ):
        raise ChartDataError(f"{key!r} must be a list of numbers")
    return values


def _strings(data: dict[str, Any], key: str) -> list[str]:
    values = _field(data, key)
    if not isinstance(values, list):
        raise ChartDataError(f"{key!r} must be a list of labels")
    return [str(v) for v in values]


def _axis_label(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


# ---- shared parts -------------------------------------------------------------------------

_PLOT_TOP, _PLOT_WIDTH, _PLOT_HEIGHT = 14.0, 400.0, 260.0


@dataclass(frozen=True)
class _Plot:
    """An x-y plot area: its scales, its axes drawn, and the room they take."""

    x: _Scale
    y: _Scale | _LogScale
    axes: Body
    width: float
    bottom: float


def _plot(
    x_values: list[float], y_values: list[float], x_label: str, y_label: str, *, y_log: bool = False
) -> _Plot:
    """Scales and axes (grid, ticks, tick labels, titles) sized so that no label is cut."""
    y: _Scale | _LogScale = (
        _log_scale(y_values, _PLOT_TOP + _PLOT_HEIGHT, _PLOT_TOP)
        if y_log
        else _scale(y_values, _PLOT_TOP + _PLOT_HEIGHT, _PLOT_TOP)
    )
    tick_width = max(len(y.label(t)) for t in y.ticks) * _CHAR_WIDTH
    left = tick_width + 34  # tick labels, then room for the rotated y title
    x = _scale(x_values, left, left + _PLOT_WIDTH)
    overhang = len(x.label(x.ticks[-1])) * _CHAR_WIDTH / 2
    top, bottom = y.end, y.start
    axes: Body = []
    for tick in y.ticks:
        axes.append(_line(left, y(tick), x.end, y(tick), _GRID))
        axes.append(_text(left - 6, y(tick) + 4, y.label(tick), anchor="end", css="tick"))
    for tick in x.ticks:
        axes.append(_line(x(tick), top, x(tick), bottom, _GRID))
        axes.append(_text(x(tick), bottom + 16, x.label(tick), css="tick"))
    axes.append(_line(left, bottom, x.end, bottom, _AXIS))
    axes.append(_line(left, top, left, bottom, _AXIS))
    axes.append(_label(left + _PLOT_WIDTH / 2, bottom + 34, x_label, _PLOT_WIDTH, css="axis-title"))
    axes.append(
        _label(
            left - tick_width - 14, (top + bottom) / 2, y_label, _PLOT_HEIGHT, css="axis-title", rotate=-90
        )
    )
    return _Plot(x, y, axes, x.end + max(16.0, overhang + 6), bottom + 42)


def _legend(
    entries: list[tuple[str, str, str]],
    left: float,
    top: float,
    width: float,
    samples: list[Callable[[float, float], Body]] | None = None,
) -> tuple[Body, float]:
    """Legend entries ``(name, colour, dash)`` laid out in rows; returns the body and its height.

    Each entry's sample is a line, or for the first ``len(samples)`` entries what its sample
    function draws, given the left end and the middle of the 26 px wide sample."""
    body: Body = []
    x, y = left, top + 8
    for i, (name, colour, dash) in enumerate(entries):
        shown = _fit(name, width - 34)
        entry_width = 34 + len(shown) * _CHAR_WIDTH + 16
        if x > left and x + entry_width > left + width:
            x, y = left, y + 18
        if samples and i < len(samples):
            body += samples[i](x, y)
        else:
            body.append(_line(x, y, x + 26, y, colour, width=2.5, dash=dash))
        body.append(_label(x + 32, y + 4, name, width - 34, anchor="start", css="legend"))
        x += entry_width
    return body, (y - top + 14) if entries else 0.0


def _polyline(points: list[tuple[float, float]], colour: str, dash: str) -> Markup:
    """A polyline through ``points``, dropping points that round onto the previous one."""
    coords: list[str] = []
    for px, py in points:
        coord = f"{_px(px)},{_px(py)}"
        if not coords or coords[-1] != coord:
            coords.append(coord)
    return Markup(
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}" '
        'stroke-linejoin="round"/>'
    ).format(" ".join(coords), colour, dash)


def _reference_diagonal(x: _Scale, y: _Scale | _LogScale) -> Markup:
    lo, hi = max(x.lo, y.lo), min(x.hi, y.hi)
    return _line(x(lo), y(lo), x(hi), y(hi), _REFERENCE, width=1.2, dash="5 4")
