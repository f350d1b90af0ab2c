"""Rendering an audit report from the report document alone.

The report is a :class:`~auditor.report.document.Report` (typed; ``to_dict()`` is what
report.json holds, schema in ``report.schema.json``, checked by
:func:`auditor.report.schema.validate`). Every renderer reads one input, that Report or its
dict, so ``audit render report.json`` rebuilds every format without the model or the data.
The formats written to files are registered in :data:`RENDERERS` and :data:`FILE_NAMES`
(see :mod:`auditor.report.renderers`); the terminal summary is printed, not written.

**A report section is an audit's result, rendered generically.** There is no per-audit
renderer and no renderer names a built-in audit: every format shows each
:class:`~auditor.contract.result.AuditResult` the same way (status, summary, metrics with
their intervals, findings, tables, charts, notes, options), in the order the audits ran, and
the summary shows every audit's headline metrics (``Metric.headline``). So a third-party
audit gets its own section by returning a result, without touching core.

**Charts are data the renderers draw.** ``Chart.kind`` names how: the kinds
:mod:`auditor.report.charts` knows (its docstring and :class:`~auditor.contract.result.Chart`'s
list them), and any kind a plugin adds through the entry-point group ``auditor.charts``
(name = the kind, value = a callable ``draw(chart: Chart) -> str`` returning SVG markup;
trusted code, like an audit). Markdown and the terminal never draw charts: they name them
and point to report.html (a kind they do not know: its caption and ``(chart: <kind>, see
report.html)``).

The optional ``gates`` section's schema is in :func:`auditor.ci.gates.evaluate`'s module docstring.

The names below are imported on first use, so importing :mod:`auditor.report.document` (as
the run does to build its Report) does not load every renderer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.report.document import Report, ReportError
    from auditor.report.html import render_html
    from auditor.report.json_report import load_report, read_report, render_json
    from auditor.report.junit import render_junit
    from auditor.report.markdown import render_markdown
    from auditor.report.pdf import render_pdf
    from auditor.report.renderers import FILE_NAMES, RENDERERS
    from auditor.report.terminal import render_terminal
    from auditor.report.write import write_atomic, write_reports

_HOMES: dict[str, str] = {
    "FILE_NAMES": "renderers",
    "RENDERERS": "renderers",
    "Report": "document",
    "ReportError": "document",
    "load_report": "json_report",
    "read_report": "json_report",
    "render_html": "html",
    "render_json": "json_report",
    "render_junit": "junit",
    "render_markdown": "markdown",
    "render_pdf": "pdf",
    "render_terminal": "terminal",
    "write_atomic": "write",
    "write_reports": "write",
}

__all__ = [
    "FILE_NAMES",
    "RENDERERS",
    "Report",
    "ReportError",
    "load_report",
    "read_report",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_pdf",
    "render_terminal",
    "write_atomic",
    "write_reports",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
