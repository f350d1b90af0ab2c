"""report.json: the report document itself, and reading it back for ``audit render``.

The JSON is the source every other format is rebuilt from, so it is written stably
(sorted keys, fixed indentation, no NaN) and read back with its schema version checked:
this auditor writes 2.0 and reads 2.x and 1.x (:func:`load_report` gives the file's dict as
it is, :func:`read_report` the typed :class:`~auditor.report.document.Report`, a 1.x report
migrated).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.contract.errors import UsageError
from auditor.report.document import (
    READABLE_MAJORS,
    SCHEMA_VERSION,
    Report,
    ReportError,
    as_document,
    major_version,
)

#: The major schema version this auditor writes (``schema_version`` "2.x"); it reads
#: :data:`~auditor.report.document.READABLE_MAJORS` (1.x and 2.x). Minor versions only add fields.
SUPPORTED_MAJOR = major_version(SCHEMA_VERSION)


def all_audits(report: Mapping[str, Any]) -> dict[str, Any]:
    """Every audit's result in a report document, by name: ``audits`` then ``measurements``."""
    found: dict[str, Any] = {}
    for key in ("audits", "measurements"):
        section = report.get(key)
        if isinstance(section, Mapping):
            found.update(section)
    return found


def render_json(report: Report | Mapping[str, Any]) -> str:
    """The report as JSON: sorted keys, two-space indent, a trailing newline.

    Raises ``ValueError`` on a non-finite float: values are cleaned to None before this point.
    """
    return json.dumps(as_document(report), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def load_report(path: Path | str) -> dict[str, Any]:
    """Read a report.json written by auditor (schema 1.x or 2.x) as the dict it holds, or raise
    :class:`UsageError` saying why not."""
    from auditor.loading.inputs import loads_json, read_bytes, read_limit

    fix = "Pass a report.json written by `audit`."
    try:  # a FIFO or a device is refused, not waited on; the size is bound by the memory budget
        text = read_bytes(path, "The report", limit=read_limit(), error=UsageError).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot read the report {path}: {exc.strerror or exc}.", hint=fix) from None
    except UnicodeDecodeError:
        raise UsageError(f"The report {path} is not JSON: it is not UTF-8 text.", hint=fix) from None
    try:
        report = loads_json(text, f"The report {Path(path).name}", UsageError)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"The report {path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            hint=fix,
        ) from None
    if not isinstance(report, dict) or "schema_version" not in report:
        got = "an object without it" if isinstance(report, dict) else f"a JSON {type(report).__name__}"
        raise UsageError(
            f"The file {path} is not an auditor report: expected an object with schema_version; got {got}.",
            hint=fix,
        )
    version = report["schema_version"]
    major = major_version(version)
    if major is None:
        raise UsageError(
            f"The report {path} has schema_version {version!r}; expected one like '{SCHEMA_VERSION}'.",
            hint=fix,
        )
    if major not in READABLE_MAJORS:
        readable = " and ".join(f"{m}.x" for m in READABLE_MAJORS)
        raise UsageError(
            f"The report {path} has schema version {version}; this auditor reads {readable}.",
            hint="Render it with the auditor version that wrote it (see tool.version in the file), "
            "or upgrade auditor.",
        )
    if not isinstance(report.get("audits"), dict):
        raise UsageError(
            f"The report {path} has no audits object (schema_version {version}).",
            hint=fix,
        )
    return report


def read_report(path: Path | str) -> Report:
    """Read a report.json as a :class:`~auditor.report.document.Report` (a 1.x report
    migrated to 2.0), or raise :class:`UsageError` saying why not."""
    try:
        return Report.from_dict(load_report(path))
    except ReportError as exc:
        raise ReportError(f"The report {path}: {exc.message}", hint=exc.hint) from None
