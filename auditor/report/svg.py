"""Charts drawn as inline SVG from a chart's data (the kinds of :class:`auditor.contract.result.Chart`).

Every element is built from a :class:`markupsafe.Markup` template whose arguments
``Markup.format`` escapes, so a class name or series name can never become markup. The
SVG has no scripts and no external references: it is meant to be inlined in report.html.
(The panels of a heat map are PNG images embedded in it as ``data:image/png;base64`` URIs,
encoded by :mod:`auditor.report.png`.) Colours follow the Okabe–Ito palette, and series
also differ by dash pattern (or marker shape), so they can be told apart without colour and
in a greyscale print.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, Callable

from markupsafe import Markup

from auditor.report.numbers import format_count, format_number, format_share, is_number
from auditor.report.png import encode_rgb

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
_MEAN = "#222222"
_UNGROUPED = "#999999"  # bars of a grouped bar chart that belong to no group

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
    ticks = tuple(round(i * step, 12) for i in range(first, last + 1))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
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


# ---- the kinds ----------------------------------------------------------------------------


def _markers(
    data: dict[str, Any], key: str = "markers", axis: str = "x"
) -> list[tuple[float, str]]:
    """Optional labelled lines, ``[{axis: number, "label": text}]``: the ``markers`` of a
    curve chart (``x``), the ``references`` of a strip chart (``y``)."""
    markers = data.get(key)
    if markers is None:
        return []
    if not isinstance(markers, list) or not all(isinstance(m, dict) for m in markers):
        raise ChartDataError(f"{key!r} must be null or a list of {{{axis}, label}}")
    out = []
    for m in markers:
        value = m.get(axis)
        if not is_number(value) or not math.isfinite(value):
            raise ChartDataError(f"each {key[:-1]} needs a number {axis!r}")
        out.append((float(value), str(m.get("label") or "")))
    return out


def _curve(data: dict[str, Any]) -> Drawing:
    series = _field(data, "series")
    if not isinstance(series, list) or not series or not all(isinstance(s, dict) for s in series):
        raise ChartDataError("'series' must be a non-empty list of {name, x, y}")
    y_scale = data.get("y_scale")
    if y_scale not in (None, "linear", "log"):
        raise ChartDataError(f"'y_scale' must be 'linear', 'log' or null, not {y_scale!r}")
    y_log = y_scale == "log"
    from_zero = bool(data.get("y_from_zero")) and not y_log  # magnitudes: the axis starts at 0
    markers = _markers(data)
    lines = []
    for s in series:
        xs, ys = _numbers(s, "x"), _numbers(s, "y")
        if len(xs) != len(ys):
            name = str(s.get("name"))
            raise ChartDataError(f"series {name!r} has {len(xs)} x values but {len(ys)} y values")
        if y_log:  # a log axis has no place for zero or negative values: they split the line
            ys = [v if v is not None and v > 0 else None for v in ys]
        lines.append((str(s.get("name", "")), xs, ys))
    x_label, y_label = _axis_label(data, "x_label"), _axis_label(data, "y_label")
    plot = _plot(
        [v for _, xs, _ in lines for v in _finite(xs)] + [mx for mx, _ in markers],
        [v for _, _, ys in lines for v in _finite(ys)] + ([0.0] if from_zero else []),
        x_label,
        y_label,
        y_log=y_log,
    )
    x, y, body = plot.x, plot.y, list(plot.axes)
    entries: list[tuple[str, str, str]] = []
    for i, (name, xs, ys) in enumerate(lines):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        segment: list[tuple[float, float]] = []
        for vx, vy in [*zip(xs, ys), (None, None)]:
            if vx is None or vy is None:
                if segment:
                    body.append(_polyline(segment, colour, dash))
                segment = []
            else:
                segment.append((x(vx), y(vy)))
        entries.append((name, colour, dash))
    if data.get("diagonal"):
        body.append(_reference_diagonal(x, y))
        entries.append(("y = x", _REFERENCE, "5 4"))
    top, bottom = y.end, y.start
    for i, (mx, text) in enumerate(markers):
        px = x(mx)
        body.append(_line(px, top, px, bottom, _AXIS, width=1.2, dash="4 3"))
        right = px > x.start + 0.6 * (x.end - x.start)  # near the right edge: label to the left
        room = (px - x.start if right else x.end - px) - 6
        body.append(
            _label(px - 4 if right else px + 4, top + 12 + 14 * i, text, max(room, 60.0),
                   anchor="end" if right else "start", css="legend")
        )
    legend, legend_height = _legend(entries, x.start, plot.bottom, _PLOT_WIDTH)
    names = ", ".join(name for name, _, _ in entries)
    extras = " Logarithmic y axis." if y_log else ""
    if markers:
        extras += " Marked: " + "; ".join(text or format_number(mx) for mx, text in markers) + "."
    return Drawing(
        plot.width,
        plot.bottom + legend_height + 4,
        body + legend,
        f"Line chart of {y_label} against {x_label}: {names}.{extras}",
    )


def _scatter(data: dict[str, Any]) -> Drawing:
    xs, ys = _numbers(data, "x"), _numbers(data, "y")
    if len(xs) != len(ys):
        raise ChartDataError(f"there are {len(xs)} x values but {len(ys)} y values")
    reference = data.get("reference")
    if reference not in (None, "y=0", "y=x"):
        raise ChartDataError(f"'reference' must be 'y=0', 'y=x' or null, not {reference!r}")
    points = [(vx, vy) for vx, vy in zip(xs, ys) if vx is not None and vy is not None]
    x_values, y_values = [p[0] for p in points], [p[1] for p in points]
    if reference == "y=x":  # one domain for both axes, so the reference line is at 45 degrees
        x_values = y_values = x_values + y_values
    elif reference == "y=0":
        y_values = y_values + [0.0]
    x_label, y_label = _axis_label(data, "x_label"), _axis_label(data, "y_label")
    plot = _plot(x_values, y_values, x_label, y_label)
    x, y, body = plot.x, plot.y, list(plot.axes)
    if reference == "y=x":
        body.append(_reference_diagonal(x, y))
    elif reference == "y=0":
        body.append(_line(x.start, y(0.0), x.end, y(0.0), _REFERENCE, width=1.2, dash="5 4"))
    drawn = sorted({(round(x(vx) * 2) / 2, round(y(vy) * 2) / 2) for vx, vy in points})
    body.append(Markup('<g fill="{}" fill-opacity="0.55">').format(PALETTE[0]))
    body += [Markup('<circle cx="{}" cy="{}" r="2.6"/>').format(_px(a), _px(b)) for a, b in drawn]
    body.append(Markup("</g>"))
    reference_text = f", reference line {reference}" if reference else ""
    return Drawing(
        plot.width,
        plot.bottom,
        body,
        f"Scatter plot of {y_label} against {x_label}: "
        f"{format_count(len(points))} points{reference_text}.",
    )


def _intervals(data: dict[str, Any], count: int) -> list[list[float | None] | None]:
    """The ``errors`` of a bar chart: one ``[low, high]`` or None per bar."""
    errors = data.get("errors")
    if errors is None:
        return [None] * count
    if not isinstance(errors, list) or len(errors) != count:
        raise ChartDataError(f"'errors' must be null or one [low, high] per value ({count})")
    intervals = [None if e is None else _numbers({"errors": e}, "errors") for e in errors]
    if any(i is not None and len(i) != 2 for i in intervals):
        raise ChartDataError("each entry of 'errors' must be [low, high] or null")
    return intervals


def _bar_groups(data: dict[str, Any], count: int) -> tuple[list[int | None] | None, list[str]]:
    """The optional ``groups`` of a bar chart (one index into ``legend`` or None per bar)
    and the ``legend`` naming the groups; ``(None, [])`` when the bars are not grouped."""
    legend = data.get("legend")
    if legend is not None and (
        not isinstance(legend, list) or not all(isinstance(name, str) for name in legend)
    ):
        raise ChartDataError("'legend' must be null or a list of group names")
    groups = data.get("groups")
    if groups is None:
        return None, []
    if not isinstance(groups, list) or len(groups) != count:
        raise ChartDataError(f"'groups' must be null or one group index (or null) per label ({count})")
    if legend is None:
        raise ChartDataError("'groups' needs a 'legend': a list of group names")
    for g in groups:
        if g is not None and not (isinstance(g, int) and not isinstance(g, bool) and 0 <= g < len(legend)):
            allowed = f"0 to {len(legend) - 1}" if legend else "none: the legend is empty"
            raise ChartDataError(
                f"each entry of 'groups' must be an index into 'legend' ({allowed}) or null, not {g!r}"
            )
    return groups, legend


def _group_colour(group: int | None) -> str:
    return _UNGROUPED if group is None else PALETTE[group % len(PALETTE)]


def _swatch(x: float, y: float, colour: str) -> Body:
    """A legend sample for filled marks: a small bar of ``colour``."""
    return [
        Markup('<rect x="{}" y="{}" width="26" height="12" fill="{}"/>').format(
            _px(x), _px(y - 6), colour
        )
    ]


def _bar(data: dict[str, Any]) -> Drawing:
    """Horizontal bars (category labels stay readable), with error bars when given, coloured
    by group with a legend when the data has ``groups``."""
    labels, values = _strings(data, "labels"), _numbers(data, "values")
    if len(labels) != len(values):
        raise ChartDataError(f"there are {len(labels)} labels but {len(values)} values")
    intervals = _intervals(data, len(values))
    groups, legend_names = _bar_groups(data, len(values))
    x_label, y_label = _axis_label(data, "x_label"), _axis_label(data, "y_label")
    label_width = min(max((len(label) for label in labels), default=1) * _CHAR_WIDTH, 160.0)
    row, top = 30.0, 8.0
    left = label_width + 42  # category labels, then room for the rotated category title
    bottom = top + row * max(len(labels), 1)
    bounds = _finite(values) + [b for i in intervals if i for b in _finite(i)] + [0.0]
    x = _scale(bounds, left, left + _PLOT_WIDTH)
    body: Body = []
    for tick in x.ticks:
        body.append(_line(x(tick), top, x(tick), bottom, _GRID))
        body.append(_text(x(tick), bottom + 16, x.label(tick), css="tick"))
    for i, (name, value, interval) in enumerate(zip(labels, values, intervals)):
        middle = top + row * i + row / 2
        body.append(_label(left - 8, middle + 4, name, label_width, anchor="end", css="tick"))
        if value is None:
            body.append(_text(x(0.0) + 4, middle + 4, "n/a", anchor="start", css="tick"))
            continue
        whiskers = interval if interval and None not in interval else None
        tooltip = f"{name}: {format_number(value)}"
        if whiskers:
            tooltip += f" [{format_number(whiskers[0])}, {format_number(whiskers[1])}]"
        colour = PALETTE[0]
        if groups is not None:
            group = groups[i]
            colour = _group_colour(group)
            if group is not None:
                tooltip += f" ({legend_names[group]})"
        x0, x1 = sorted((x(0.0), x(value)))
        body.append(
            Markup(
                '<rect x="{}" y="{}" width="{}" height="18" fill="{}"><title>{}</title></rect>'
            ).format(_px(x0), _px(middle - 9), _px(max(x1 - x0, 0.5)), colour, tooltip)
        )
        if whiskers:
            lo, hi = x(whiskers[0]), x(whiskers[1])
            body.append(_line(lo, middle, hi, middle, "#000000", width=1.4))
            body.append(_line(lo, middle - 6, lo, middle + 6, "#000000", width=1.4))
            body.append(_line(hi, middle - 6, hi, middle + 6, "#000000", width=1.4))
    body.append(_line(x(0.0), top, x(0.0), bottom, _AXIS))
    body.append(_line(left, bottom, x.end, bottom, _AXIS))
    body.append(_label(left + _PLOT_WIDTH / 2, bottom + 34, y_label, _PLOT_WIDTH, css="axis-title"))
    body.append(
        _label(
            left - label_width - 22, (top + bottom) / 2, x_label, bottom - top + 20,
            css="axis-title", rotate=-90,
        )
    )
    overhang = len(x.label(x.ticks[-1])) * _CHAR_WIDTH / 2
    with_errors = " with error bars" if any(intervals) else ""
    legend: Body = []
    legend_height, coloured = 0.0, ""
    if groups is not None:
        present = sorted({g for g in groups if g is not None})
        entries = [(legend_names[g], _group_colour(g), "none") for g in present]
        samples: list[Callable[[float, float], Body]] = [
            lambda lx, ly, c=colour: _swatch(lx, ly, c) for _, colour, _ in entries
        ]
        legend, legend_height = _legend(entries, left, bottom + 42, _PLOT_WIDTH, samples)
        legend_height += 4 if entries else 0.0
        if entries:
            coloured = " Colour shows the group: " + ", ".join(name for name, _, _ in entries)
            coloured += "; grey bars have no group." if None in groups else "."
    return Drawing(
        x.end + max(16.0, overhang + 6),
        bottom + 42 + legend_height,
        body + legend,
        f"Bar chart of {y_label} for {format_count(len(labels))} "
        f"{x_label or 'categories'}{with_errors}.{coloured}",
    )


def _mark(shape: str, cx: float, cy: float, colour: str, tooltip: str = "") -> Markup:
    """A filled marker of ``shape`` (one of :data:`SHAPES`) centred on ``(cx, cy)``."""
    title = Markup("<title>{}</title>").format(tooltip) if tooltip else Markup("")
    paint = Markup('fill="{}" stroke="#ffffff" stroke-width="0.8"').format(colour)
    if shape == "circle":
        return Markup('<circle cx="{}" cy="{}" r="3.8" {}>{}</circle>').format(
            _px(cx), _px(cy), paint, title
        )
    if shape in ("square", "diamond"):
        half = 3.3 if shape == "square" else 2.9
        turn = ""
        if shape == "diamond":
            turn = Markup(' transform="rotate(45 {} {})"').format(_px(cx), _px(cy))
        return Markup('<rect x="{}" y="{}" width="{}" height="{}" {}{}>{}</rect>').format(
            _px(cx - half), _px(cy - half), _px(2 * half), _px(2 * half), paint, turn, title
        )
    # a triangle as a closed, filled polyline: the report's SVG keeps to a few element kinds
    corners = [(cx, cy - 4.6), (cx + 4.2, cy + 3), (cx - 4.2, cy + 3), (cx, cy - 4.6)]
    return Markup('<polyline points="{}" {}>{}</polyline>').format(
        " ".join(f"{_px(a)},{_px(b)}" for a, b in corners), paint, title
    )


def _band_rect(x: float, y: float, width: float, height: float, tooltip: str = "") -> Markup:
    title = Markup("<title>{}</title>").format(tooltip) if tooltip else Markup("")
    return Markup(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#000000" fill-opacity="0.08">{}</rect>'
    ).format(_px(x), _px(y), _px(width), _px(max(height, 0.5)), title)


def _strip(data: dict[str, Any]) -> Drawing:
    """A dot plot of a metric across folds: one colour and marker shape per series (offset
    a little at a shared fold), with the mean, a shaded band and labelled reference lines."""
    series = _field(data, "series")
    if not isinstance(series, list) or not series or not all(isinstance(s, dict) for s in series):
        raise ChartDataError("'series' must be a non-empty list of {name, x, y}")
    groups = []
    for s in series:
        xs, ys = _numbers(s, "x"), _numbers(s, "y")
        name = str(s.get("name", ""))
        if len(xs) != len(ys):
            raise ChartDataError(f"series {name!r} has {len(xs)} x values but {len(ys)} y values")
        groups.append((name, [(a, b) for a, b in zip(xs, ys) if a is not None and b is not None]))
    mean = data.get("mean")
    if mean is not None and not (is_number(mean) and math.isfinite(mean)):
        raise ChartDataError("'mean' must be null or a number")
    band = data.get("band")
    if band is not None:
        if not isinstance(band, list) or len(band) != 2 or not all(
            is_number(b) and math.isfinite(b) for b in band
        ):
            raise ChartDataError("'band' must be null or [low, high]")
        band = sorted(band)
    band_label = str(data.get("band_label") or "mean ± 1 SD")
    references = _markers(data, "references", "y")
    x_label, y_label = _axis_label(data, "x_label"), _axis_label(data, "y_label")
    folds = sorted({vx for _, points in groups for vx, _ in points})
    step = min((b - a for a, b in zip(folds, folds[1:])), default=1.0)
    y_values = [vy for _, points in groups for _, vy in points]
    y_values += ([] if mean is None else [mean]) + (band or []) + [ry for ry, _ in references]
    pad = (max(y_values) - min(y_values)) * 0.03 if y_values else 0.0
    plot = _plot(  # padded, so that no point sits on the frame
        [folds[0] - step / 2, folds[-1] + step / 2] if folds else [],
        y_values + ([min(y_values) - pad, max(y_values) + pad] if pad else []),
        x_label,
        y_label,
    )
    x, y, body = plot.x, plot.y, list(plot.axes)
    entries: list[tuple[str, str, str]] = []
    samples: list[Callable[[float, float], Body]] = []
    if band:
        tooltip = f"{band_label}: {format_number(band[0])} to {format_number(band[1])}"
        body.append(_band_rect(x.start, y(band[1]), _PLOT_WIDTH, y(band[0]) - y(band[1]), tooltip))
    for i, (ry, text) in enumerate(references):  # labels alternate ends, so near ones both show
        py, right = y(ry), i % 2 == 0
        body.append(_line(x.start, py, x.end, py, _REFERENCE, width=1.2, dash="5 4"))
        body.append(
            _label(x.end - 4 if right else x.start + 4, py - 4 if py - y.end > 14 else py + 12,
                   text, _PLOT_WIDTH / 2 - 8, anchor="end" if right else "start", css="legend")
        )
    if mean is not None:
        body.append(_line(x.start, y(mean), x.end, y(mean), _MEAN, width=2))
    spread = min(7.0, 0.5 * (x(step) - x(0.0)) / max(len(groups) - 1, 1))
    for i, (name, points) in enumerate(groups):
        colour, shape = PALETTE[i % len(PALETTE)], SHAPES[i % len(SHAPES)]
        offset = (i - (len(groups) - 1) / 2) * spread
        for vx, vy in points:
            fold = format_number(int(vx) if float(vx).is_integer() else vx)
            tip = f"{name}, {x_label or 'x'} {fold}: {format_number(vy)}"
            body.append(_mark(shape, x(vx) + offset, y(vy), colour, tip))
        entries.append((name, colour, "none"))
        samples.append(lambda lx, ly, s=shape, c=colour: [_mark(s, lx + 13, ly, c)])
    if band:
        entries.append((band_label, "#000000", "none"))
        samples.append(lambda lx, ly: [_band_rect(lx, ly - 5, 26, 10)])
    if mean is not None:
        entries.append(("mean", _MEAN, "none"))
    legend, legend_height = _legend(entries, x.start, plot.bottom, _PLOT_WIDTH, samples)
    count = sum(len(points) for _, points in groups)
    parts = [f"{format_count(count)} point{'' if count == 1 else 's'} in {len(groups)} series"]
    if mean is not None:
        parts.append(f"mean {format_number(mean)}")
    if band:
        parts.append(f"band {band_label}")
    if references:
        names = ", ".join(text or format_number(ry) for ry, text in references)
        parts.append(f"reference{'' if len(references) == 1 else 's'} {names}")
    return Drawing(
        plot.width,
        plot.bottom + legend_height + 4,
        body + legend,
        f"Dot plot of {y_label or 'values'} by {x_label or 'x'}: {', '.join(parts)}.",
    )


def _cell_colour(share: float) -> str:
    """A single-hue blue ramp from near white (0) to dark blue (1)."""
    light, dark = (0xF2, 0xF7, 0xFC), (0x08, 0x3D, 0x77)
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(light, dark))


def _matrix_cell(x: float, y: float, cell: float, count: float | None, share: float, tooltip: str) -> Body:
    """One shaded cell; its count and row share are written when the cell is big enough."""
    body = [
        Markup(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#ffffff"><title>{}</title></rect>'
        ).format(_px(x), _px(y), _px(cell), _px(cell), _cell_colour(share), tooltip)
    ]
    css = "cell dark" if share > 0.55 else "cell"
    middle = x + cell / 2
    if cell >= 48:
        body.append(_label(middle, y + cell / 2, format_count(count), cell - 4, css=css))
        body.append(_text(middle, y + cell / 2 + 16, format_share(share), css=f"{css} small"))
    elif cell >= 26:
        body.append(_label(middle, y + cell / 2 + 4, format_count(count), cell - 4, css=css))
    return body


def _confusion_matrix(data: dict[str, Any]) -> Drawing:
    """A heat-map shaded by each true class's share, with counts written in the cells."""
    labels = _strings(data, "labels")
    matrix = _field(data, "matrix")
    n = len(labels)
    if not isinstance(matrix, list) or len(matrix) != n:
        raise ChartDataError(f"'matrix' must have one row per label ({n})")
    rows = [_numbers({"row": r}, "row") for r in matrix]
    if any(len(r) != n for r in rows):
        raise ChartDataError(f"every row of 'matrix' must have one count per label ({n})")
    cell = max(14.0, min(96.0, 440.0 / max(n, 1)))
    longest = min(max((len(label) for label in labels), default=1) * _CHAR_WIDTH, 120.0)
    rotate_columns = longest > cell - 6
    left, top = 54 + longest, 14.0
    size = cell * n
    body: Body = []
    for i, (true_label, counts) in enumerate(zip(labels, rows)):
        total = sum(_finite(counts))
        y = top + cell * i
        body.append(_label(left - 8, y + cell / 2 + 4, true_label, longest, anchor="end", css="tick"))
        for j, count in enumerate(counts):
            share = count / total if count is not None and total > 0 else 0.0
            tooltip = (
                f"True {true_label}, predicted {labels[j]}: {format_count(count)}"
                f" ({format_share(share)} of true {true_label})"
            )
            body += _matrix_cell(left + cell * j, y, cell, count, share, tooltip)
    for j, predicted in enumerate(labels):
        x = left + cell * j + cell / 2
        if rotate_columns:
            body.append(
                _label(x + 4, top + size + 12, predicted, 120, anchor="end", css="tick", rotate=-40)
            )
        else:
            body.append(_text(x, top + size + 14, predicted, css="tick"))
    bottom = top + size + (longest * 0.7 + 14 if rotate_columns else 18.0)
    body.append(_text(left + size / 2, bottom + 16, "Predicted class", css="axis-title"))
    body.append(_text(16, top + size / 2, "True class", css="axis-title", rotate=-90))
    body.append(
        _text(left + size / 2, bottom + 34, "Shading: share of the true class's rows", css="tick")
    )
    return Drawing(
        max(left + size + 16, left + size / 2 + 130),
        bottom + 44,
        body,
        f"Confusion matrix of {n} classes; rows are the true class, columns the predicted class.",
    )


# ---- heat maps -----------------------------------------------------------------------------

Rgb = tuple[int, int, int]

#: The colour scales of a heat-map panel.
HEATMAP_SCALES: tuple[str, ...] = ("signed", "magnitude", "grey", "rgb")
_HEAT_MAX_CELLS = 256  # per side: larger maps must be downsampled by whoever makes the chart
_HEAT_SIDE = 140.0  # the longer side of a drawn panel, in px
_HEAT_MIN_SIDE = 48.0  # the shorter side of a drawn panel, in px, at least
_HEAT_MIN_WIDTH = 120.0  # room for a panel's title and colour legend
_UPRIGHT_TICK = 84.0  # the longest x tick label turned upright, in px (longer ones are cut)
_HEAT_TICKS = 12  # at most this many tick labels per side of a panel
_WHITE: Rgb = (0xFF, 0xFF, 0xFF)
_BLACK: Rgb = (0x00, 0x00, 0x00)
_NEGATIVE: Rgb = (0x00, 0x72, 0xB2)  # Okabe-Ito blue
_POSITIVE: Rgb = (0xD5, 0x5E, 0x00)  # Okabe-Ito vermillion
_DARK: Rgb = (0x08, 0x1D, 0x58)  # the largest magnitude
_MISSING_CELL: Rgb = (0xDD, 0xDD, 0xDD)
_MID_GREY: Rgb = (0x80, 0x80, 0x80)  # a constant grey or rgb panel: no contrast to show
_SCALE_WORDS = {
    "signed": "signed: blue negative, white zero, orange positive",
    "magnitude": "magnitude: white zero to dark blue the largest",
    "grey": "greyscale: black lowest, white highest",
    "rgb": "colour images",
}

Cell = float | tuple[float, float, float] | None


@dataclass(frozen=True)
class _HeatPanel:
    """One panel of a heat-map chart: its cells (None where undefined) and colour scale."""

    title: str
    scale: str
    cells: list[list[Cell]]

    @property
    def rows(self) -> int:
        return len(self.cells)

    @property
    def columns(self) -> int:
        return len(self.cells[0])


def _heat_cell(value: Any, rgb: bool, where: str) -> Cell:
    """A cell as a number, an (r, g, b) triple, or None when undefined or not finite."""
    if value is None:
        return None
    if rgb:
        if not isinstance(value, list) or len(value) != 3 or not all(
            c is None or is_number(c) for c in value
        ):
            raise ChartDataError(f"{where}: each cell of an 'rgb' panel must be [r, g, b] numbers or null")
        if any(c is None or not math.isfinite(c) for c in value):
            return None
        return (float(value[0]), float(value[1]), float(value[2]))
    if not is_number(value):
        raise ChartDataError(f"{where}: each cell of 'values' must be a number or null")
    return value if math.isfinite(value) else None


def _heat_panel(panel: Any, number: int) -> _HeatPanel:
    if not isinstance(panel, dict):
        raise ChartDataError(f"panel {number} must be an object {{title, values, scale}}")
    title = str(panel.get("title") or "")
    where = f"panel {number} ({title!r})" if title else f"panel {number}"
    scale = panel.get("scale")
    if scale not in HEATMAP_SCALES:
        raise ChartDataError(
            f"{where}: 'scale' must be 'signed', 'magnitude', 'grey' or 'rgb', not {scale!r}"
        )
    values = panel.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(r, list) for r in values):
        raise ChartDataError(f"{where}: 'values' must be a non-empty list of rows (lists of cells)")
    width = len(values[0])
    if width == 0:
        raise ChartDataError(f"{where}: the rows of 'values' must have at least one cell")
    for i, row in enumerate(values):
        if len(row) != width:
            raise ChartDataError(
                f"{where}: 'values' must be rectangular: row 1 has {width} cells but row {i + 1} "
                f"has {len(row)}"
            )
    if len(values) > _HEAT_MAX_CELLS or width > _HEAT_MAX_CELLS:
        raise ChartDataError(
            f"{where} has {len(values)} by {width} cells, more than {_HEAT_MAX_CELLS} by "
            f"{_HEAT_MAX_CELLS}: downsample before charting"
        )
    rgb = scale == "rgb"
    cells = [[_heat_cell(v, rgb, where) for v in row] for row in values]
    return _HeatPanel(title, scale, cells)


def _heat_ticks(data: dict[str, Any], key: str, panels: list[_HeatPanel]) -> list[str] | None:
    """The optional ``x_ticks`` (one per column) or ``y_ticks`` (one per row) of every panel."""
    ticks = data.get(key)
    if ticks is None:
        return None
    if not isinstance(ticks, list):
        raise ChartDataError(f"{key!r} must be null or a list of labels")
    columns = key == "x_ticks"
    for number, panel in enumerate(panels, 1):
        size = panel.columns if columns else panel.rows
        if size != len(ticks):
            what = "columns" if columns else "rows"
            raise ChartDataError(
                f"{key!r} has {len(ticks)} labels but panel {number} has {size} {what}: "
                f"one label per {what[:-1]}"
            )
    return [str(t) for t in ticks]


def _mix(a: Rgb, b: Rgb, share: float) -> Rgb:
    share = min(max(share, 0.0), 1.0)
    return (
        round(a[0] + (b[0] - a[0]) * share),
        round(a[1] + (b[1] - a[1]) * share),
        round(a[2] + (b[2] - a[2]) * share),
    )


def _channel(value: float, lo: float, hi: float) -> int:
    return min(max(round((value - lo) / (hi - lo) * 255), 0), 255)


@dataclass(frozen=True)
class _Colouring:
    """How a panel's values become colours, and the end labels of its colour legend."""

    colour: Callable[[Any], Rgb]
    low: str
    high: str
    gradient: Callable[[float], Rgb] | None  # 0..1 along the legend strip; None: no legend


def _colouring(panel: _HeatPanel) -> _Colouring:
    """The panel's colour scale, its limits taken from the panel's own defined cells."""
    defined = [v for row in panel.cells for v in row if v is not None]
    if panel.scale == "rgb":
        channels = [c for v in defined for c in v]
        lo, hi = (min(channels), max(channels)) if channels else (0.0, 1.0)
        if lo == hi:
            return _Colouring(lambda v: _MID_GREY, "", "", None)
        return _Colouring(lambda v: (_channel(v[0], lo, hi), _channel(v[1], lo, hi),
                                     _channel(v[2], lo, hi)), "", "", None)
    numbers: list[float] = defined
    if panel.scale == "grey":
        lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
        if lo == hi:
            return _Colouring(lambda v: _MID_GREY, "", "", None)
        return _Colouring(lambda v: (_channel(v, lo, hi),) * 3, "", "", None)
    if panel.scale == "magnitude":
        top = max(numbers, default=0)
        top = top if top > 0 else 0
        if top == 0:
            return _Colouring(lambda v: _WHITE, "0", format_number(top), lambda t: _mix(_WHITE, _DARK, t))
        return _Colouring(
            lambda v: _mix(_WHITE, _DARK, v / top), "0", format_number(top),
            lambda t: _mix(_WHITE, _DARK, t),
        )
    limit = max((abs(v) for v in numbers), default=0)

    def signed(t: float) -> Rgb:  # -1 .. 1
        return _mix(_WHITE, _POSITIVE, t) if t >= 0 else _mix(_WHITE, _NEGATIVE, -t)

    if limit == 0:
        zero = format_number(limit)
        return _Colouring(lambda v: _WHITE, zero, zero, lambda t: signed(2 * t - 1))
    return _Colouring(
        lambda v: signed(v / limit), f"−{format_number(limit)}", f"+{format_number(limit)}",
        lambda t: signed(2 * t - 1),
    )


def _png_uri(width: int, height: int, pixels: list[Rgb]) -> str:
    data = encode_rgb(width, height, bytes(c for pixel in pixels for c in pixel))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _image(x: float, y: float, width: float, height: float, uri: str, tooltip: str = "") -> Markup:
    """An embedded PNG stretched over ``width`` x ``height`` px, its pixels kept square-edged."""
    title = Markup("<title>{}</title>").format(tooltip) if tooltip else Markup("")
    return Markup(
        '<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none" '
        'style="image-rendering:pixelated" href="{}">{}</image>'
    ).format(_px(x), _px(y), _px(width), _px(height), uri, title)


def _heat_cell_size(panel: _HeatPanel) -> tuple[float, float]:
    """The width and height in px of a cell: square cells that make the panel's longer side
    about :data:`_HEAT_SIDE` (a whole number of px where that keeps the side between 120 and
    160 px, so pixels stay even), stretched across where the shorter side would be under
    :data:`_HEAT_MIN_SIDE` px, or 16 px a cell for maps 1 or 2 cells across (a map of 2 rows
    and 200 columns would otherwise be a sliver)."""
    longer = max(panel.rows, panel.columns)
    whole = round(_HEAT_SIDE / longer)
    cell = float(whole) if whole >= 1 and 120 <= whole * longer <= 160 else _HEAT_SIDE / longer
    shorter = min(panel.rows, panel.columns)
    across = max(cell, min(_HEAT_MIN_SIDE, 16.0 * shorter) / shorter)
    return (cell, across) if panel.columns >= panel.rows else (across, cell)


def _tick_step(count: int, cell: float) -> int:
    """Label every step-th row or column: at most :data:`_HEAT_TICKS`, at least 12 px apart."""
    return max(math.ceil(count / _HEAT_TICKS), math.ceil(12 / cell - 1e-9), 1)


@dataclass(frozen=True)
class _XTicks:
    step: int
    rotated: bool
    height: float


def _x_tick_layout(ticks: list[str], cell: float) -> _XTicks:
    """Labels under the columns: level when each fits its space, otherwise turned upright."""
    step = _tick_step(len(ticks), cell)
    longest = max(len(t) for t in ticks[::step]) * _CHAR_WIDTH
    if longest <= cell * step - 3:
        return _XTicks(step, False, 16.0)
    return _XTicks(step, True, min(longest, _UPRIGHT_TICK) + 10)


_LEGEND_STRIP = 120  # px wide, one PNG pixel per px


def _heatmap(data: dict[str, Any]) -> Drawing:
    """Panels of small images (attribution maps, inputs, time x feature importances), each an
    embedded PNG with one pixel per cell, in a grid; signed and magnitude panels get a colour
    legend with their end values."""
    panels_data = _field(data, "panels")
    if not isinstance(panels_data, list) or not panels_data:
        raise ChartDataError("'panels' must be a non-empty list of {title, values, scale}")
    panels = [_heat_panel(p, i) for i, p in enumerate(panels_data, 1)]
    per_row = data.get("columns")
    if per_row is None:
        per_row = min(4, len(panels))
    elif not isinstance(per_row, int) or isinstance(per_row, bool) or per_row < 1:
        raise ChartDataError(f"'columns' must be null or a whole number of at least 1, not {per_row!r}")
    per_row = min(per_row, len(panels))
    x_ticks, y_ticks = _heat_ticks(data, "x_ticks", panels), _heat_ticks(data, "y_ticks", panels)
    x_label, y_label = _axis_label(data, "x_label"), _axis_label(data, "y_label")

    cells = [_heat_cell_size(p) for p in panels]
    sizes = [(p.columns * w, p.rows * h) for p, (w, h) in zip(panels, cells)]
    content = max(_HEAT_MIN_WIDTH, *(w for w, _ in sizes))
    image_height = max(h for _, h in sizes)
    x_layouts = [_x_tick_layout(x_ticks, w) for w, _ in cells] if x_ticks else []
    x_tick_height = max((t.height for t in x_layouts), default=0.0)
    y_tick_width = min(max(len(t) for t in y_ticks) * _CHAR_WIDTH, 90.0) if y_ticks else 0.0
    gutter = y_tick_width + 8 if y_ticks else 0.0
    colourings = [_colouring(p) for p in panels]
    legend_height = 30.0 if any(c.gradient for c in colourings) else 0.0
    slot_width = gutter + content + 16
    slot_height = 18 + image_height + x_tick_height + legend_height + 12
    left, top = (24.0 if y_label else 4.0), 4.0
    grid_rows = math.ceil(len(panels) / per_row)

    body: Body = []
    for i, (panel, (cell_width, cell_height), (width, height), colouring) in enumerate(
        zip(panels, cells, sizes, colourings)
    ):
        ox = left + (i % per_row) * slot_width + gutter
        oy = top + (i // per_row) * slot_height
        middle = ox + content / 2
        ix, iy = middle - width / 2, oy + 18
        body.append(_label(middle, oy + 12, panel.title, content, css="legend"))
        pixels = [_MISSING_CELL if v is None else colouring.colour(v) for row in panel.cells for v in row]
        uri = _png_uri(panel.columns, panel.rows, pixels)
        scale_text = _SCALE_WORDS[panel.scale].split(":")[0]
        if colouring.gradient:
            scale_text += f" {colouring.low} to {colouring.high}"
        tooltip = f"{panel.title}: {scale_text}" if panel.title else scale_text
        body.append(_image(ix, iy, width, height, uri, tooltip))
        bottom = iy + height
        if y_ticks:
            for r in range(0, panel.rows, _tick_step(panel.rows, cell_height)):
                body.append(_label(ix - 4, iy + (r + 0.5) * cell_height + 4, y_ticks[r], y_tick_width,
                                   anchor="end", css="tick"))
        if x_ticks:
            layout = x_layouts[i]
            for c in range(0, panel.columns, layout.step):
                cx = ix + (c + 0.5) * cell_width
                if layout.rotated:
                    body.append(_label(cx + 4, bottom + 4, x_ticks[c], _UPRIGHT_TICK, anchor="end",
                                       css="tick", rotate=-90))
                else:
                    body.append(_text(cx, bottom + 13, x_ticks[c], css="tick"))
            bottom += x_tick_height
        if colouring.gradient:
            gradient = colouring.gradient
            strip = [gradient(k / (_LEGEND_STRIP - 1)) for k in range(_LEGEND_STRIP)]
            sx, sy = middle - _LEGEND_STRIP / 2, bottom + 6
            body.append(_image(sx, sy, _LEGEND_STRIP, 8, _png_uri(_LEGEND_STRIP, 1, strip)))
            body.append(_text(sx, sy + 20, colouring.low, anchor="start", css="tick"))
            body.append(_text(sx + _LEGEND_STRIP, sy + 20, colouring.high, anchor="end", css="tick"))
            if panel.scale == "signed" and colouring.low != colouring.high:
                body.append(_text(middle, sy + 20, "0", css="tick"))
    grid_width = per_row * slot_width
    grid_bottom = top + grid_rows * slot_height
    if y_label:
        body.append(_label(14, top + (grid_bottom - top) / 2, y_label, grid_bottom - top,
                           css="axis-title", rotate=-90))
    if x_label:
        body.append(_label(left + grid_width / 2, grid_bottom + 8, x_label, grid_width, css="axis-title"))

    shapes = {(p.rows, p.columns) for p in panels}
    if len(shapes) == 1:
        rows, columns = next(iter(shapes))
        shape = f"{rows} by {columns} cells" if rows == columns else f"{rows} rows by {columns} columns"
    else:
        shape = "different sizes"
    scales = "; ".join(dict.fromkeys(_SCALE_WORDS[p.scale] for p in panels))
    count = len(panels)
    axes = ""
    if y_label or x_label:
        axes = f" Rows: {y_label or 'unlabelled'}; columns: {x_label or 'unlabelled'}."
    return Drawing(
        left + grid_width,
        grid_bottom + (24.0 if x_label else 0.0),
        body,
        f"Heatmap{'' if count == 1 else 's'}: {count} panel{'' if count == 1 else 's'} of {shape} "
        f"({scales}).{axes}",
    )


_KINDS: dict[str, Callable[[dict[str, Any]], Drawing]] = {
    "confusion_matrix": _confusion_matrix,
    "curve": _curve,
    "scatter": _scatter,
    "bar": _bar,
    "strip": _strip,
    "heatmap": _heatmap,
}

#: The chart kinds this module draws.
KINDS: tuple[str, ...] = tuple(_KINDS)


def render_chart(chart: dict[str, Any], chart_id: str) -> Markup:
    """The chart as an ``<svg>`` element titled for assistive technology.

    ``chart_id`` must be unique in the page: it prefixes the ids of the title and
    description that ``aria-labelledby`` points to. Raises :class:`ChartDataError` when the
    kind is unknown or the data does not fit it.
    """
    kind = chart.get("kind")
    draw = _KINDS.get(kind) if isinstance(kind, str) else None
    if draw is None:
        raise ChartDataError(f"the chart kind {kind!r} is not one of {', '.join(KINDS)}")
    data = chart.get("data")
    if not isinstance(data, dict):
        raise ChartDataError("the chart's data must be an object")
    drawing = draw(data)
    title = str(chart.get("title") or chart.get("name") or kind)
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{title}</title>'
        '<desc id="{id}-desc">{desc}</desc>{body}</svg>'
    ).format(
        w=_px(drawing.width),
        h=_px(drawing.height),
        id=chart_id,
        title=title,
        desc=drawing.description,
        body=Markup("").join(drawing.body),
    )
