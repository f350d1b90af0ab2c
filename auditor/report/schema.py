"""Checking a report document against report.json's JSON Schema (``report.schema.json``).

The schema (draft 2020-12) ships in this package. :func:`validate` checks a report dict
with the ``jsonschema`` library when it is installed (a test dependency: the test suite
checks every report.json it writes) and raises :class:`ReportSchemaError` naming the path
of the first problem (``audits.metrics.findings[0].severity``). Without ``jsonschema`` it
checks only what needs no library: an object, a readable ``schema_version`` and the
top-level keys (none unknown; for 2.x, none missing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from auditor.report.document import READABLE_MAJORS, ReportError, major_version

#: The schema's file, beside this module.
SCHEMA_FILE = "report.schema.json"

_FIX = "Pass a report.json written by `audit`, or fix the value named."


class ReportSchemaError(ReportError):
    """A report document does not follow report.json's schema; ``path`` is where (dotted)."""

    def __init__(self, message: str, *, path: str, hint: str | None = _FIX) -> None:
        super().__init__(message, hint=hint)
        self.path = path


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema of report.json, as a dict."""
    text = resources.files("auditor.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def format_path(parts: Iterable[Any]) -> str:
    """A JSON path as text: keys joined by dots, list indices in brackets (``audits.x.findings[0]``);
    ``(top level)`` for the document itself."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate(report: Any) -> None:
    """Check ``report`` (a report dict) against report.json's schema; raise
    :class:`ReportSchemaError` naming the first problem's path, or return None."""
    _validate_top_level(report)
    try:
        import jsonschema  # type: ignore[import-untyped, unused-ignore]
    except ImportError:  # only the checks above without the library
        return
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(report), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        first = jsonschema.exceptions.best_match(errors) or errors[0]
        path = format_path(first.absolute_path)
        raise ReportSchemaError(f"The report does not follow the schema at {path}: {_short(first.message)}.",
                                path=path)


def _short(message: str, limit: int = 300) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _validate_top_level(report: Any) -> None:
    if not isinstance(report, dict):
        raise ReportSchemaError(f"The report must be a JSON object; got a JSON {type(report).__name__}.",
                                path="(top level)")
    version = report.get("schema_version")
    if major_version(version) not in READABLE_MAJORS:
        raise ReportSchemaError(
            f"The report does not follow the schema at schema_version: {version!r} is not a version "
            f"this auditor reads ({' or '.join(f'{m}.x' for m in READABLE_MAJORS)}).",
            path="schema_version",
        )
    schema = load_schema()
    unknown = sorted(set(report) - set(schema["properties"]))
    if unknown:
        raise ReportSchemaError(
            f"The report does not follow the schema at {unknown[0]}: the key is not one of report.json's "
            f"({', '.join(sorted(schema['properties']))}).",
            path=unknown[0],
        )
    required = schema["then"]["required"] if major_version(version) == 2 else schema["required"]
    missing = [key for key in required if key not in report]
    if missing:
        raise ReportSchemaError(
            f"The report does not follow the schema at {missing[0]}: schema_version {version} requires it.",
            path=missing[0],
        )
