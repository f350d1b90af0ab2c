"""Charts drawn as inline SVG from a chart's data (the kinds of :class:`auditor.contract.result.Chart`).

Every element is built from a :class:`markupsafe.Markup` template whose arguments
``Markup.format`` escapes, so a class name or series name can never become markup. The
SVG has no scripts and no external references: it is meant to be inlined in report.html.
(The panels of a heat map are PNG images embedded in it as ``data:image/png;base64`` URIs,
encoded by :mod:`auditor.report.png`.) Colours follow the Okabe–Ito palette, and series
also differ by dash pattern (or marker shape), so they can be told apart without colour and
in a greyscale print.

A plugin adds a chart kind without editing this package: an entry point in the group
:data:`CHART_GROUP` (``auditor.charts``) whose name is the kind and whose value is a callable
``draw(chart: Chart) -> str`` returning SVG markup (see :mod:`.render`).

The package's modules, one concept each:

- :mod:`.base`: the primitives (palette, scales, axes, legends, text and lines, reading data);
- :mod:`.xy`: charts on x-y axes (``curve``, ``scatter``, ``strip``);
- :mod:`.bars`: bar charts (``bar``);
- :mod:`.heatmaps`: charts of cells (``confusion_matrix``, ``heatmap``);
- :mod:`.render`: a chart dict to an ``<svg>`` element, by kind, built-in or from a plugin.
"""

from __future__ import annotations

from auditor.report.charts.base import DASHES, PALETTE, SHAPES, Body, ChartDataError, Drawing
from auditor.report.charts.heatmaps import HEATMAP_SCALES, Cell, Rgb
from auditor.report.charts.render import CHART_GROUP, KINDS, ChartDrawer, plugin_chart, render_chart

__all__ = [
    "CHART_GROUP",
    "DASHES",
    "HEATMAP_SCALES",
    "KINDS",
    "PALETTE",
    "SHAPES",
    "Body",
    "Cell",
    "ChartDataError",
    "ChartDrawer",
    "Drawing",
    "Rgb",
    "plugin_chart",
    "render_chart",
]
