"""report.html: one self-contained page, readable offline, on screen and on paper.

No scripts, no fonts, no stylesheets or images from elsewhere: CSS is inline and charts are
inline SVG drawn by :mod:`auditor.report.charts`. The Jinja2 environment autoescapes, so every
string from the report (audit, class and column names, messages, paths) is escaped; the
SVG is built with markupsafe and escapes its text the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from auditor.report import view
from auditor.report.charts import ChartDataError, render_chart
from auditor.report.numbers import (
    MISSING,
    clean_strings,
    format_cell,
    format_ci,
    format_count,
    format_number,
    format_share,
)

if TYPE_CHECKING:
    from auditor.report.document import Report

_ENVIRONMENT = Environment(
    loader=PackageLoader("auditor.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters.update(cell=format_cell, count=format_count, share=format_share)

_DIRECTION_TEXT = {"higher": "Higher is better.", "lower": "Lower is better."}


def _chart(chart: dict[str, Any], chart_id: str) -> dict[str, Any]:
    try:
        svg: Markup | None = render_chart(chart, chart_id)
        problem = ""
    except ChartDataError as exc:
        svg, problem = None, str(exc)
    return {
        "title": format_cell(chart.get("title") or chart.get("name") or "Chart"),
        "caption": format_cell(chart.get("caption") or ""),
        "svg": svg,
        "problem": problem,
    }


def _audit(index: int, name: str, audit: dict[str, Any]) -> dict[str, Any]:
    """What the template shows for one audit, numbers already formatted."""
    anchor = f"audit-{index}"
    methods = view.ci_methods(audit)
    metric_rows = [
        {
            "label": label,
            "value": format_number(metric.get("value")),
            "ci": format_ci(metric.get("ci")),
            "method": str(metric.get("ci_method") or MISSING) if metric.get("ci") else MISSING,
            "description": " ".join(
                part
                for part in (
                    str(metric.get("description") or ""),
                    _DIRECTION_TEXT.get(str(metric.get("direction")), ""),
                )
                if part
            ),
        }
        for label, metric in view.metrics(audit)
    ]
    return {
        "anchor": anchor,
        "name": name,
        "title": view.audit_title(name, audit),
        "status_class": view.status_class(audit.get("status")),
        "status_label": view.status_label(audit.get("status")),
        "summary": view.summary(audit),
        "headlines": [
            (label, format_number(m.get("value")), format_ci(m.get("ci")).replace(MISSING, ""))
            for label, m in view.headline_metrics(audit)
        ],
        "metrics": metric_rows,
        "ci_methods": methods,
        "findings": view.findings(audit),
        "tables": view.tables(audit),
        "charts": [_chart(c, f"{anchor}-chart-{i}") for i, c in enumerate(view.charts(audit), 1)],
        "notes": view.notes(audit),
        "options": view.options(audit),
    }


def _gates(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each gate result with the badge it is shown with."""
    return [
        {
            **gate,
            "status_class": "pass" if gate["passed"] else "fail",
            "status_label": view.status_label("pass" if gate["passed"] else "fail"),
        }
        for gate in view.gates(report)
    ]


def _card_model_name(report: dict[str, Any]) -> str | None:
    """The model's name as the model card gives it (section "model", field "name"), or None
    without a card or that field: the page is headed by it, the file name follows."""
    card = report.get("card")
    if not isinstance(card, dict):
        return None
    for section in card.get("sections") or []:
        if isinstance(section, dict) and section.get("key") == "model":
            for field in section.get("fields") or []:
                if isinstance(field, dict) and field.get("key") == "name":
                    value = field.get("value")
                    return value.strip() or None if isinstance(value, str) else None
    return None


def prepare() -> None:
    """Compile the page's template now (about 0.15 s; jinja2 keeps it): the command line
    does it on a thread while the run goes, rather than after it."""
    _ENVIRONMENT.get_template("report.html.j2")


def render_html(source: Report | Mapping[str, Any]) -> str:
    """The report (a :class:`~auditor.report.document.Report` or its dict) as one self-contained HTML page."""
    from auditor.report.document import as_document

    report: dict[str, Any] = clean_strings(as_document(source))
    layers = view.layers(report)
    gates = _gates(report)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        verdict_class=view.status_class(report.get("verdict")),
        verdict_label=view.status_label(report.get("verdict")),
        verdict_exit=view.outcome(report)["exit_code"],
        status_counts=view.status_counts(report),
        tool=view.tool_name(report),
        schema_version=format_cell(report.get("schema_version") or MISSING),
        model_name=_card_model_name(report) or view.model_name(report),
        model_file=format_cell(view.section(report, "model").get("path") or "") if _card_model_name(report) else "",
        data_path=view.data_path(report),
        started=format_cell(view.section(report, "run").get("started") or MISSING),
        gates=gates,
        gate_count=view.gate_count(report),
        gates_failed=not all(g["passed"] for g in gates),
        gate_noise=any(g["noise"] for g in gates),
        gate_sources=view.gate_sources(report),
        audits=[_audit(i, name, audit) for i, (name, audit) in enumerate(view.audits(report), 1)],
        model_facts=view.model_facts(report),
        layers=layers,
        layer_shapes=any(layer["output_shape"] != MISSING for layer in layers),
        data_facts=view.data_facts(report),
        class_balance=view.class_balance(report),
        run_facts=view.run_facts(report),
        plugin_versions=view.plugin_versions(report),
        input_files=view.input_files(report),
        card=view.card(report),
        attention=view.attention(report),
        limitations=view.limitations(report),
        signoff=view.signoff(report),
        timings=view.timings(report),
    )


#: The class of the element that holds the report inside another page (a notebook's output).
SCOPE = "auditor-report"

_PAGE_PARTS = re.compile(r"<style>(?P<style>.*?)</style>.*?<body>(?P<body>.*)</body>", re.DOTALL)


def _scoped_selector(selector: str) -> str:
    """``selector`` limited to the report's element: the page's root (``:root``, ``html``,
    ``body``) becomes that element, anything else a descendant of it."""
    selector = selector.strip()
    for root in (":root", "html", "body"):
        if selector == root:
            return f".{SCOPE}"
        if selector.startswith(root + " "):
            return f".{SCOPE}{selector[len(root):]}"
    return f".{SCOPE} {selector}"


def _css_blocks(css: str) -> list[tuple[str, str]]:
    """Top-level CSS rules as ``(prelude, body)``, braces matched (the template's CSS holds no
    braces inside strings or comments)."""
    blocks, depth, start, prelude = [], 0, 0, ""
    for i, char in enumerate(css):
        if char == "{":
            if depth == 0:
                prelude, start = css[start:i].strip(), i + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                blocks.append((prelude, css[start:i]))
                start = i + 1
    return blocks


def scope_css(css: str) -> str:
    """The page's stylesheet rewritten to style only the element of class :data:`SCOPE`:
    every selector prefixed, rules inside ``@media`` too; ``@page`` rules (print page setup,
    meaningless inside another page) are dropped."""
    out = []
    for prelude, body in _css_blocks(css):
        if prelude.startswith("@page"):
            continue
        if prelude.startswith("@media"):
            out.append(f"{prelude} {{\n{scope_css(body)}}}")
        else:
            out.append(f"{', '.join(_scoped_selector(s) for s in prelude.split(','))} {{{body}}}")
    return "\n".join(out) + "\n"


def render_html_fragment(report: Report | Mapping[str, Any]) -> str:
    """The HTML report as a fragment to embed in another page (Jupyter's ``_repr_html_``): one
    ``<div class="auditor-report">`` holding the page's body and its stylesheet scoped to that
    div, so it neither needs ``<html>``/``<body>`` nor restyles the page around it. Like the
    page, it has no script and loads nothing."""
    page = render_html(report)
    parts = _PAGE_PARTS.search(page)
    if parts is None:  # the template always has both; this guards a future template change
        raise ValueError("the HTML report template has no <style> or no <body>")
    return (f'<div class="{SCOPE}">\n<style>\n{scope_css(parts["style"])}</style>\n'
            f'{parts["body"].strip()}\n</div>\n')
