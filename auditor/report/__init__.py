"""Rendering an audit report from the report document alone.

Every renderer reads one input, the dict that report.json holds, so ``audit render
report.json`` rebuilds every format without the model or the data. The formats written to
files are registered in :data:`RENDERERS` and :data:`FILE_NAMES` (see
:mod:`auditor.report.renderers`); the terminal summary is printed, not written.

The optional ``gates`` section's schema is in :func:`auditor.ci.gates.evaluate`'s module docstring.
"""

from __future__ import annotations

from auditor.report.html import render_html
from auditor.report.json_report import load_report, render_json
from auditor.report.junit import render_junit
from auditor.report.markdown import render_markdown
from auditor.report.pdf import render_pdf
from auditor.report.renderers import FILE_NAMES, RENDERERS
from auditor.report.terminal import render_terminal
from auditor.report.write import write_atomic, write_reports

__all__ = [
    "FILE_NAMES",
    "RENDERERS",
    "load_report",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_pdf",
    "render_terminal",
    "write_atomic",
    "write_reports",
]
