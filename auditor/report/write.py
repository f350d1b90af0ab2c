"""Writing reports to disk: every format rendered first, then each file replaced atomically.

A renderer that fails therefore leaves no report written at all, and a reader never sees a
half-written file: each one is written under a temporary name in the same directory and
moved into place with :func:`os.replace`. :func:`write_reports` writes every temporary file
before it moves any into place, so a failure while writing (a full disk) or an interrupt
leaves the folder as it was, with no temporary file behind. A renderer returns text, written as UTF-8, or
bytes (report.pdf), written as they are.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.contract.errors import UsageError
from auditor.report.document import Report
from auditor.report.json_report import render_json
from auditor.report.renderers import FILE_NAMES, RENDERERS, check_formats


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def _write_temporary(target: Path, data: bytes) -> Path:
    """Write ``data`` whole to a new temporary file next to ``target`` and return its path
    (removed again when writing fails)."""
    temporary = _temporary(target)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def write_atomic(path: Path | str, content: str | bytes) -> None:
    """Write ``content`` (text is encoded as UTF-8) to ``path`` atomically.

    The file is created with the usual permissions (0666 less the umask), like ``open``.
    """
    target = Path(path)
    temporary = _write_temporary(target, _encoded(content))
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _encoded(content: str | bytes) -> bytes:
    """A renderer's output as the bytes to write: text as UTF-8, bytes (pdf) as they are."""
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def canonical(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The report (a :class:`Report` or its dict) exactly as report.json holds it (keys sorted, values cleaned).

    Every format is rendered from this, so a live run and ``audit render report.json``
    produce the same bytes.
    """
    return json.loads(render_json(report))


def write_reports(report: Report | Mapping[str, Any], out_dir: Path | str, formats: list[str]) -> list[Path]:
    """Render ``report`` (a :class:`Report` or its dict) in each of ``formats`` and write the files into ``out_dir``.

    Returns the paths written, in the order of ``formats`` (repeats written once). Raises
    :class:`UsageError` for an unknown format or an output directory that cannot be made.
    """
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    wanted = list(dict.fromkeys(formats))
    document = canonical(report)
    rendered = {f: _encoded(RENDERERS[f](document)) for f in wanted}
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"Cannot create the report directory {out_dir}: {exc.strerror or exc}.",
            hint="Choose a directory you can write to.",
        ) from None
    staged: list[tuple[Path, Path]] = []
    try:
        for name, content in rendered.items():
            path = out_dir / FILE_NAMES[name]
            staged.append((_write_temporary(path, content), path))
        for temporary, path in staged:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        if created:
            try:
                out_dir.rmdir()  # only when empty: the folder this call made
            except OSError:
                pass
        raise
    return [path for _, path in staged]
