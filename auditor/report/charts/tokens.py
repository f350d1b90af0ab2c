"""Highlighted text (``tokens``): each example's tokens in reading order, every token's box
shaded by its value on one signed scale for the whole chart (blue negative, white 0,
vermillion positive, as the signed heat maps), its value in a tooltip.

Tokens are set in a monospace face so that their width is known without a font: a token
longer than :data:`MAX_TOKEN_CHARS` characters is shortened with an ellipsis (its tooltip
holds it whole), and lines wrap at the chart's width.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from auditor.report.charts.base import Body, ChartDataError, Drawing, _label, _px, _text
from auditor.report.charts.heatmaps import _NEGATIVE, _POSITIVE, _WHITE, Rgb, _image, _mix, _png_uri
from auditor.report.numbers import format_number, is_number

WIDTH = 760.0
MAX_TOKEN_CHARS = 24
MAX_EXAMPLES = 40
MAX_TOKENS = 2048  # per example
_CHAR = 7.2  # px: a 12 px monospace character
_LINE = 22.0
_PAD = 3.0
_GAP = 3.0
_LEGEND = 120


def _examples(data: dict[str, Any]) -> list[tuple[str, str, list[str], list[float | None]]]:
    examples = data.get("examples")
    if not isinstance(examples, list) or not examples:
        raise ChartDataError("'examples' must be a non-empty list of {title, tokens, values}")
    if len(examples) > MAX_EXAMPLES:
        raise ChartDataError(f"'examples' holds {len(examples)} examples; at most {MAX_EXAMPLES}")
    out = []
    for number, example in enumerate(examples, start=1):
        if not isinstance(example, dict):
            raise ChartDataError(f"example {number} must be an object")
        tokens, values = example.get("tokens"), example.get("values")
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            raise ChartDataError(f"example {number} needs 'tokens' and 'values' lists of the same length")
        if len(tokens) > MAX_TOKENS:
            raise ChartDataError(f"example {number} has {len(tokens)} tokens; at most {MAX_TOKENS}")
        if not all(v is None or (is_number(v) and math.isfinite(v)) for v in values):
            raise ChartDataError(f"example {number}'s 'values' must be numbers or None")
        out.append((str(example.get("title") or f"Example {number}"), str(example.get("subtitle") or ""),
                    [str(t) for t in tokens], values))
    return out


def _fill(value: float | None, limit: float) -> str:
    if value is None or limit == 0:
        colour: Rgb = _WHITE
    elif value >= 0:
        colour = _mix(_WHITE, _POSITIVE, value / limit)
    else:
        colour = _mix(_WHITE, _NEGATIVE, -value / limit)
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _shown(token: str) -> str:
    token = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in token) or "\N{OPEN BOX}"
    return token if len(token) <= MAX_TOKEN_CHARS else token[: MAX_TOKEN_CHARS - 1] + "…"


def draw_tokens(data: dict[str, Any]) -> Drawing:
    """``{"examples": [{"title", "subtitle", "tokens": [str], "values": [number|None]}],
    "value_label": str}``."""
    examples = _examples(data)
    limit = max((abs(v) for *_, values in examples for v in values if v is not None), default=0.0)
    body: Body = []
    y = 4.0
    right = WIDTH - 8
    for title, subtitle, tokens, values in examples:
        body.append(_label(8, y + 14, title, WIDTH - 16, anchor="start", css="legend"))
        y += 20
        if subtitle:
            body.append(_label(8, y + 12, subtitle, WIDTH - 16, anchor="start", css="tick"))
            y += 18
        x = 8.0
        y += 2
        for token, value in zip(tokens, values):
            shown = _shown(token)
            width = len(shown) * _CHAR + 2 * _PAD
            if x + width > right and x > 8:
                x, y = 8.0, y + _LINE
            tip = f"{token}: {'no value' if value is None else format_number(value)}"
            body.append(Markup(
                '<g><title>{}</title><rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}" '
                'stroke="#d0d4da" stroke-width="0.5"/>{}</g>'
            ).format(tip, _px(x), _px(y), _px(width), _px(_LINE - 4), _fill(value, limit),
                     _text(x + _PAD, y + _LINE - 9, shown, anchor="start", css="token")))
            x += width + _GAP
        y += _LINE + 10
    label = str(data.get("value_label") or "value")
    strip = [_mix(_WHITE, _NEGATIVE, 1 - 2 * k / (_LEGEND - 1)) if k < _LEGEND / 2
             else _mix(_WHITE, _POSITIVE, 2 * k / (_LEGEND - 1) - 1) for k in range(_LEGEND)]
    sx = 8.0
    body.append(_image(sx, y, _LEGEND, 8, _png_uri(_LEGEND, 1, strip)))
    low, high = (f"−{format_number(limit)}", f"+{format_number(limit)}") if limit else ("0", "0")
    body.append(_text(sx, y + 20, low, anchor="start", css="tick"))
    body.append(_text(sx + _LEGEND / 2, y + 20, "0", css="tick"))
    body.append(_text(sx + _LEGEND, y + 20, high, anchor="end", css="tick"))
    body.append(_label(sx + _LEGEND + 12, y + 8, label, WIDTH - _LEGEND - 28, anchor="start", css="tick"))
    n_tokens = sum(len(tokens) for _, _, tokens, _ in examples)
    description = (f"{len(examples)} text example{'s' * (len(examples) != 1)}, {n_tokens} tokens shaded by "
                   f"{label} from {low} (blue) to {high} (vermillion)")
    return Drawing(WIDTH, y + 30, body, description)
