"""The report formats: the renderer of each, and the file it is written to.

Every renderer takes the report document (the dict that report.json holds) and returns
text. To add a format, add its renderer to :data:`RENDERERS` and its file name to
:data:`FILE_NAMES`; :func:`auditor.report.write.write_reports` then writes it like the others.
"""

from __future__ import annotations

from typing import Any, Callable

from .html import render_html
from .json_report import render_json
from .junit import render_junit
from .markdown import render_markdown

#: Format name (as given to ``--format``) -> function rendering the report document.
RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "json": render_json,
    "html": render_html,
    "md": render_markdown,
    "junit": render_junit,
}

#: Format name -> the file it is written to, inside the output directory.
FILE_NAMES: dict[str, str] = {
    "json": "report.json",
    "html": "report.html",
    "md": "report.md",
    "junit": "report.junit.xml",
}
