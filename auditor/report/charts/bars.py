"""Bar charts (``bar``): horizontal bars with optional error bars, coloured by group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from auditor.report.charts.base import (
    _AXIS,
    _CHAR_WIDTH,
    _GRID,
    _PLOT_WIDTH,
    PALETTE,
    Body,
    ChartDataError,
    Drawing,
    _axis_label,
    _finite,
    _label,
    _legend,
    _line,
    _numbers,
    _px,
    _scale,
    _strings,
    _text,
)
from auditor.report.numbers import format_count, format_number

_UNGROUPED = "#999999"  # bars of a grouped bar chart that belong to no group


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


def _swatch_sample(colour: str) -> Callable[[float, float], Body]:
    """The legend sample function of a group: a :func:`_swatch` of its colour."""
    return lambda x, y: _swatch(x, y, colour)


def draw_bar(data: dict[str, Any]) -> Drawing:
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
        low, high = interval if interval else (None, None)
        whiskers = (low, high) if low is not None and high is not None else None
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
        samples = [_swatch_sample(colour) for _, colour, _ in entries]
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
