"""A chart as an ``<svg>`` element: the built-in kinds by name, and plugin kinds by entry point.

A plugin adds a chart kind without editing this package: an entry point in the group
:data:`CHART_GROUP` (``auditor.charts``) whose name is the kind and whose value is a callable
``draw(chart: Chart) -> str`` returning SVG markup. Plugins are trusted code, like audits, so
their markup is inlined as it is; the title and description this module adds around it are
escaped. A built-in kind cannot be replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from markupsafe import Markup

from auditor.contract.result import Chart
from auditor.report.charts.bars import draw_bar
from auditor.report.charts.base import ChartDataError, Drawing, _px
from auditor.report.charts.heatmaps import draw_confusion_matrix, draw_heatmap
from auditor.report.charts.tokens import draw_tokens
from auditor.report.charts.xy import draw_curve, draw_scatter, draw_strip

_KINDS: dict[str, Callable[[dict[str, Any]], Drawing]] = {
    "confusion_matrix": draw_confusion_matrix,
    "curve": draw_curve,
    "scatter": draw_scatter,
    "bar": draw_bar,
    "strip": draw_strip,
    "heatmap": draw_heatmap,
    "tokens": draw_tokens,
}

#: The chart kinds drawn without a plugin.
KINDS: tuple[str, ...] = tuple(_KINDS)

#: The entry-point group through which a plugin adds a chart kind (name = kind).
CHART_GROUP = "auditor.charts"

#: What a plugin's chart kind provides: SVG markup for a chart.
ChartDrawer = Callable[[Chart], str]


def plugin_chart(kind: str) -> ChartDrawer | None:
    """The ``draw`` function a plugin registers for ``kind`` in :data:`CHART_GROUP`, or None.

    Looked up each time (rarely: only for a kind that is not built in), so a plugin
    installed during a session is found."""
    for point in entry_points(group=CHART_GROUP, name=kind):
        try:
            draw = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin: the chart says why, the report is still written
            raise ChartDataError(f"the plugin chart kind {kind!r} ({point.value}) failed to load: "
                                 f"{type(exc).__name__}: {exc}") from None
        if not callable(draw):
            raise ChartDataError(f"the plugin chart kind {kind!r} ({point.value}) is not a callable")
        return draw  # type: ignore[no-any-return]
    return None


def _plugin_chart(draw: ChartDrawer, chart: dict[str, Any], chart_id: str, kind: str) -> Markup:
    """A plugin's drawing of ``chart`` in a titled wrapper (the title escaped, the SVG as given)."""
    try:
        svg = draw(Chart.from_dict(chart))
    except ChartDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's failure is the chart's problem, not the report's
        raise ChartDataError(f"the plugin chart kind {kind!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(svg, str):
        raise ChartDataError(f"the plugin chart kind {kind!r} returned {type(svg).__name__}, not SVG text")
    title = str(chart.get("title") or chart.get("name") or kind)
    return Markup('<div class="chart plugin-chart" id="{id}" role="img" aria-label="{title}">{svg}</div>').format(
        id=chart_id, title=title, svg=Markup(svg)
    )


def render_chart(chart: dict[str, Any], chart_id: str) -> Markup:
    """The chart as an ``<svg>`` element titled for assistive technology.

    ``chart_id`` must be unique in the page: it prefixes the ids of the title and
    description that ``aria-labelledby`` points to. A kind that is not built in is drawn
    by the plugin that registers it (:func:`plugin_chart`). Raises :class:`ChartDataError` when the
    kind is unknown or the data does not fit it.
    """
    kind = chart.get("kind")
    draw = _KINDS.get(kind) if isinstance(kind, str) else None
    if draw is None:
        plugin = plugin_chart(kind) if isinstance(kind, str) and kind else None
        if plugin is not None:
            return _plugin_chart(plugin, chart, chart_id, str(kind))
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
