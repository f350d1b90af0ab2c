"""The report formats: the renderer of each, and the file it is written to.

Every renderer takes the report document (the dict that report.json holds) and returns
text, or bytes for a binary format (pdf). To add a format, add its renderer to
:data:`RENDERERS` and its file name to :data:`FILE_NAMES`;
:func:`auditor.report.write.write_reports` then writes it like the others.

pdf needs a browser (see :mod:`auditor.report.pdf`): call
:func:`~auditor.report.pdf.require_pdf` before any work when it is among the formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from auditor.contract.errors import UsageError
from auditor.report.html import render_html
from auditor.report.json_report import render_json
from auditor.report.junit import render_junit
from auditor.report.markdown import render_markdown
from auditor.report.pdf import render_pdf

#: A function rendering the report document (its dict, as report.json holds it): text (written as UTF-8) or bytes.
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


def check_formats(formats: Iterable[str]) -> list[str]:
    """``formats`` as a list, or :class:`UsageError` naming every one that is not a format of
    :data:`RENDERERS` (the one check ``--format``, ``audit render`` and ``Report.save`` share)."""
    wanted = list(formats)
    unknown = [f for f in wanted if f not in RENDERERS]
    if unknown:
        raise UsageError(
            f"Unknown report format(s): {', '.join(unknown)}; expected one of {', '.join(RENDERERS)}.",
            hint=f"Choose from them, e.g. --format {','.join(f for f in RENDERERS if f != 'pdf')}.",
        )
    return wanted
