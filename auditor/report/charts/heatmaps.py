"""Charts of cells: the confusion matrix (``confusion_matrix``) and heat maps (``heatmap``).

The panels of a heat map are PNG images embedded in the SVG as ``data:image/png;base64``
URIs, encoded by :mod:`auditor.report.png`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from markupsafe import Markup

from auditor.report.charts.base import (
    _CHAR_WIDTH,
    Body,
    ChartDataError,
    Drawing,
    _axis_label,
    _field,
    _finite,
    _label,
    _numbers,
    _px,
    _strings,
    _text,
)
from auditor.report.numbers import format_count, format_number, format_share, is_number
from auditor.report.png import encode_rgb


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


def draw_confusion_matrix(data: dict[str, Any]) -> Drawing:
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
        triples = cast(list[tuple[float, float, float]], defined)
        channels = [c for v in triples for c in v]
        lo, hi = (min(channels), max(channels)) if channels else (0.0, 1.0)
        if lo == hi:
            return _Colouring(lambda v: _MID_GREY, "", "", None)
        return _Colouring(lambda v: (_channel(v[0], lo, hi), _channel(v[1], lo, hi),
                                     _channel(v[2], lo, hi)), "", "", None)
    numbers = cast(list[float], defined)
    if panel.scale == "grey":
        lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
        if lo == hi:
            return _Colouring(lambda v: _MID_GREY, "", "", None)
        return _Colouring(lambda v: (_channel(v, lo, hi),) * 3, "", "", None)
    if panel.scale == "magnitude":
        top = max(numbers, default=0)
        top = max(0, top)
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


def draw_heatmap(data: dict[str, Any]) -> Drawing:
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
