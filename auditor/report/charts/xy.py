"""Charts on x-y axes: line charts (``curve``), scatter plots (``scatter``) and dot plots
across folds (``strip``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from auditor.report.charts.base import (
    _AXIS,
    _PLOT_WIDTH,
    _REFERENCE,
    DASHES,
    PALETTE,
    SHAPES,
    Body,
    ChartDataError,
    Drawing,
    _axis_label,
    _field,
    _finite,
    _label,
    _legend,
    _line,
    _numbers,
    _plot,
    _polyline,
    _px,
    _reference_diagonal,
)
from auditor.report.numbers import format_count, format_number, is_number

_MEAN = "#222222"


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


def _curve_band(data: dict[str, Any]) -> tuple[str, list[tuple[float, float, float]]] | None:
    """A curve chart's optional shaded ``band``: ``{"name", "x": [...], "low": [...],
    "high": [...]}`` (points where any of the three is undefined are dropped)."""
    band = data.get("band")
    if band is None:
        return None
    if not isinstance(band, dict):
        raise ChartDataError("'band' must be null or {name, x, low, high}")
    xs, lows, highs = _numbers(band, "x"), _numbers(band, "low"), _numbers(band, "high")
    if not len(xs) == len(lows) == len(highs):
        raise ChartDataError(f"'band' has {len(xs)} x values, {len(lows)} low and {len(highs)} high")
    points = sorted((a, min(b, c), max(b, c)) for a, b, c in zip(xs, lows, highs)
                    if a is not None and b is not None and c is not None)
    return str(band.get("name") or "band"), points


def _band_polygon(points: list[tuple[float, float]], tooltip: str) -> Markup:
    """A shaded region: a closed, filled polyline (the report's SVG keeps to a few element kinds)."""
    title = Markup("<title>{}</title>").format(tooltip) if tooltip else Markup("")
    return Markup('<polyline points="{}" fill="#000000" fill-opacity="0.10" stroke="none">{}</polyline>').format(
        " ".join(f"{_px(a)},{_px(b)}" for a, b in [*points, points[0]]), title
    )


def draw_curve(data: dict[str, Any]) -> Drawing:
    """Lines through each series' points (a gap where a value is undefined), on a linear or
    log y axis, with an optional y = x diagonal, labelled vertical markers and a shaded band."""
    series = _field(data, "series")
    if not isinstance(series, list) or not series or not all(isinstance(s, dict) for s in series):
        raise ChartDataError("'series' must be a non-empty list of {name, x, y}")
    y_scale = data.get("y_scale")
    if y_scale not in (None, "linear", "log"):
        raise ChartDataError(f"'y_scale' must be 'linear', 'log' or null, not {y_scale!r}")
    y_log = y_scale == "log"
    from_zero = bool(data.get("y_from_zero")) and not y_log  # magnitudes: the axis starts at 0
    markers = _markers(data)
    band = _curve_band(data)
    if band is not None and y_log:
        raise ChartDataError("'band' is drawn on a linear y axis only")
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
    shaded = band[1] if band is not None else []
    plot = _plot(
        [v for _, xs, _ in lines for v in _finite(xs)] + [mx for mx, _ in markers] + [a for a, _, _ in shaded],
        [v for _, _, ys in lines for v in _finite(ys)] + ([0.0] if from_zero else [])
        + [v for _, low, high in shaded for v in (low, high)],
        x_label,
        y_label,
        y_log=y_log,
    )
    x, y, body = plot.x, plot.y, list(plot.axes)
    entries: list[tuple[str, str, str]] = []
    samples: list[Callable[[float, float], Body]] = []
    if band is not None and len(shaded) >= 2:
        outline = [(x(a), y(high)) for a, _, high in shaded] + [(x(a), y(low)) for a, low, _ in reversed(shaded)]
        body.append(_band_polygon(outline, band[0]))
        entries.append((band[0], "#000000", "none"))
        samples.append(lambda lx, ly: [_band_rect(lx, ly - 5, 26, 10)])
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
    legend, legend_height = _legend(entries, x.start, plot.bottom, _PLOT_WIDTH, samples)
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


def draw_scatter(data: dict[str, Any]) -> Drawing:
    """Translucent dots (one per drawn position: overlapping points are drawn once), with an
    optional reference line y = 0 or y = x."""
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


def _marker_sample(shape: str, colour: str) -> Callable[[float, float], Body]:
    """The legend sample function of a dot-plot series: its marker in the sample's middle."""
    return lambda x, y: [_mark(shape, x + 13, y, colour)]


def draw_strip(data: dict[str, Any]) -> Drawing:
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
        samples.append(_marker_sample(shape, colour))
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
