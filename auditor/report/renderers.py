"""The report formats: the renderer of each, and the file it is written to.

Every renderer takes the report document (the dict that report.json holds) and returns
text, or bytes for a binary format (pdf). To add a format, add its renderer to
:data:`RENDERERS` and its file name to :data:`FILE_NAMES`;
:func:`auditor.report.write.write_reports` then writes it like the others.

pdf needs a browser (see :mod:`auditor.report.pdf`): call
:func:`~auditor.report.pdf.require_pdf` before any work when it is among the formats.
"""

from __future__ import annotations

from typing import Any, Callable

from auditor.report.html import render_html
from auditor.report.json_report import render_json
from auditor.report.junit import render_junit
from auditor.report.markdown import render_markdown
from auditor.report.pdf import render_pdf

#: A function rendering the report document: text (written as UTF-8) or bytes.
Renderer = Callable[[dict[str, Any]], str | bytes]

#: Format name (as given to ``--format``) -> function rendering the report document.
RENDERERS: dict[str, Renderer] = {
    "json": render_json,
    "html": render_html,
    "md": render_markdown,
    "junit": render_junit,
    "pdf": render_pdf,
}

#: Format name -> the file it is written to, inside the output directory.
FILE_NAMES: dict[str, str] = {
    "json": "report.json",
    "html": "report.html",
    "md": "report.md",
    "junit": "report.junit.xml",
    "pdf": "report.pdf",
}
