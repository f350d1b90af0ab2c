"""What a run tells GitHub Actions: the step summary and annotations for failed gates.

Both are plain text conventions of GitHub's runner: the Markdown summary is appended to the
file named by ``$GITHUB_STEP_SUMMARY``; an annotation is a ``::error ...::message`` line on
standard output while ``$GITHUB_ACTIONS`` is ``true``. Text from the report in an annotation
is one line, control characters made visible (:func:`auditor.report.numbers.one_line`), so a
name cannot end the annotation and start a command of its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from auditor.report.numbers import one_line


def _escape_data(text: str) -> str:
    """GitHub's escaping for a workflow command's message, after the control characters of
    the data in it (newlines included) are made visible: one annotation, one line."""
    return one_line(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotations(gates: Mapping[str, Any] | None) -> list[str]:
    """One ``::error`` line per failed gate, regression or findings rule."""
    if not gates:
        return []
    lines = []
    for result in gates.get("results", []):
        if not result.get("passed"):
            title = _escape_property(f"auditor {result.get('kind', 'gate')} failed: {result.get('name', '')}")
            lines.append(f"::error title={title}::{_escape_data(str(result.get('message', '')))}")
    return lines


def publish(
    document: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    *,
    written: Sequence[str] = (),
) -> list[str]:
    """Append a short Markdown summary of the report ``document`` to $GITHUB_STEP_SUMMARY when
    set (the verdict, the audits, the failures and where the full report is: ``written``, the
    report files as the command wrote them, see
    :func:`auditor.report.markdown.render_step_summary`); return the annotation lines to print
    when running under GitHub Actions (else none)."""
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from auditor.report.markdown import render_step_summary

        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(render_step_summary(dict(document), list(written)).rstrip("\n") + "\n\n")
    return error_annotations(document.get("gates")) if environ.get("GITHUB_ACTIONS") == "true" else []
