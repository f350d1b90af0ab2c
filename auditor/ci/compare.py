"""Compare two reports metric by metric: pure data, rendered elsewhere (a table, Markdown).

:func:`compare_reports` returns one row per audit status and per metric present in either
report, sorted by audit, then the status row, then metric key::

    {
      "kind":      "status" | "metric",
      "audit":     str,
      "metric":    str | None,         # the metric key (dots kept); None on a status row
      "label":     str,                # the metric's label (b's, else a's); "Status" on a status row
      "direction": "higher" | "lower" | "none" | None,   # None on a status row
      "a":         number | str | None,   # the value in a (a status word on a status row);
      "b":         number | str | None,   # None when missing or undefined
      "delta":     number | None,      # b - a, when both are numbers
      "a_ci":      [low, high] | None,
      "b_ci":      [low, high] | None,
      "change":    "better" | "worse" | "same" | "changed" | "added" | "removed" | None,
      "beyond_noise": bool | None,     # the two intervals do not overlap; None without both
      "measured":  bool,               # the audit measures the run (report.json's measurements:
                                       # energy), so its figures differ on every run anyway
    }

``change``: "same" when the values are equal; otherwise "better"/"worse" by the metric's
direction (statuses rank pass > warn = not assessed > fail), "changed" when there is no direction
(or a status is skipped/error, or moves between warn and not assessed), "added"/"removed" when the metric or audit is in only b/only a,
None when a value is undefined on either side.

:func:`select` then leaves rows out (``--ignore`` patterns, ``--changed-only``) and sets the
measured figures (energy and time, different on every run) apart, to be shown last;
:func:`compare_table` (terminal) and :func:`compare_markdown` render that selection under a
heading that names both reports (:func:`report_label`) and a line that says what moved.

Either report may be a :class:`~auditor.report.document.Report` or its dict, of schema 2.x or
1.x (``audit compare`` reads both; a 1.x report's audits are where 2.x keeps them).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from auditor.report.document import Report
from auditor.report.json_report import all_audits

#: A status's rank (lower is better); "not assessed" (ran, could not judge) ranks with warn,
#: so pass -> not assessed is worse and not assessed <-> warn "changed".
_STATUS_RANK = {"pass": 0, "warn": 1, "not assessed": 1, "fail": 2}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _ci(metric: Mapping[str, Any] | None) -> list[float] | None:
    ci = None if metric is None else metric.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_number, ci)):
        return [ci[0], ci[1]]
    return None


def _change(a: Any, b: Any, direction: str | None, *, in_a: bool, in_b: bool) -> str | None:
    if not in_a:
        return "added"
    if not in_b:
        return "removed"
    if a is None or b is None:
        return None
    if a == b:
        return "same"
    if direction == "higher":
        return "better" if b > a else "worse"
    if direction == "lower":
        return "better" if b < a else "worse"
    return "changed"


def _audits(report: Report | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(report, Report):  # a typed report: its dict, as report.json holds it
        report = report.to_dict()
    return all_audits(report)


def compare_reports(a: Report | Mapping[str, Any], b: Report | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows comparing report ``a`` (before) with report ``b`` (after); see the module docstring."""
    a, b = (r.to_dict() if isinstance(r, Report) else r for r in (a, b))
    rows: list[dict[str, Any]] = []
    audits_a, audits_b = _audits(a), _audits(b)
    measured = {str(n) for r in (a, b) if isinstance(r.get("measurements"), Mapping) for n in r["measurements"]}
    for audit in sorted(set(audits_a) | set(audits_b)):
        ra, rb = audits_a.get(audit), audits_b.get(audit)
        sa = ra.get("status") if isinstance(ra, Mapping) else None
        sb = rb.get("status") if isinstance(rb, Mapping) else None
        if sa in _STATUS_RANK and sb in _STATUS_RANK and _STATUS_RANK[sa] != _STATUS_RANK[sb]:
            change: str | None = "better" if _STATUS_RANK[sb] < _STATUS_RANK[sa] else "worse"
        else:
            change = _change(sa, sb, None, in_a=ra is not None, in_b=rb is not None)
        rows.append({
            "kind": "status", "audit": audit, "metric": None, "label": "Status", "direction": None,
            "a": sa, "b": sb, "delta": None, "a_ci": None, "b_ci": None,
            "change": change, "beyond_noise": None, "measured": audit in measured,
        })
        ma = (ra.get("metrics") if isinstance(ra, Mapping) else None) or {}
        mb = (rb.get("metrics") if isinstance(rb, Mapping) else None) or {}
        for key in sorted(set(ma) | set(mb)):
            xa, xb = ma.get(key), mb.get(key)
            va = xa.get("value") if isinstance(xa, Mapping) and _number(xa.get("value")) else None
            vb = xb.get("value") if isinstance(xb, Mapping) and _number(xb.get("value")) else None
            meta = xb if isinstance(xb, Mapping) else xa if isinstance(xa, Mapping) else {}
            direction = meta.get("direction")
            ca, cb = _ci(xa), _ci(xb)
            rows.append({
                "kind": "metric", "audit": audit, "metric": key, "label": meta.get("label") or key,
                "direction": direction, "a": va, "b": vb,
                "delta": vb - va if va is not None and vb is not None else None,
                "a_ci": ca, "b_ci": cb,
                "change": _change(va, vb, direction, in_a=xa is not None, in_b=xb is not None),
                "beyond_noise": None if ca is None or cb is None else not (ca[0] <= cb[1] and cb[0] <= ca[1]),
                "measured": audit in measured,
            })
    return rows


#: The changes that make a row "changed" (``--changed-only``).
CHANGED = ("worse", "better", "changed", "added", "removed")


def is_changed(row: Mapping[str, Any]) -> bool:
    """Whether the row moved: its change is one of :data:`CHANGED`, or a value became (or
    stopped being) undefined."""
    change = row.get("change")
    if change in CHANGED:
        return True
    return change is None and (row.get("a") is None) != (row.get("b") is None)


def ignored(row: Mapping[str, Any], patterns: Sequence[str]) -> bool:
    """Whether a ``--ignore`` pattern matches the row: a shell-style pattern (``*``, ``?``,
    ``[...]``), case-sensitive, matched against the audit's name, the metric's key, its label,
    and each part of the key (split at ``.`` and ``*``): ``sex`` drops ``fairness.sex.*`` and
    ``sex*race.*``, ``carbon`` the carbon measurement, ``gap_*`` every train-test gap."""
    key = str(row.get("metric") or "")
    names = {str(row.get("audit") or ""), key, str(row.get("label") or "")}
    names.update(part for part in re.split(r"[.*]", key) if part)
    names.discard("")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


@dataclass
class Selection:
    """The rows to show, audits first and measured figures apart, with what was left out."""

    audits: list[dict[str, Any]]
    measured: list[dict[str, Any]]
    total: int  # rows compared
    unchanged_hidden: int  # rows left out by changed_only
    ignored: int  # rows left out by an ignore pattern
    counts: dict[str, int] = field(default_factory=dict)  # change -> rows (shown or not, ignored excluded)


def select(rows: list[dict[str, Any]], *, changed_only: bool = False, ignore: Sequence[str] = ()) -> Selection:
    """Split ``rows`` into the audits' rows and the measured ones (energy and time, which vary
    from run to run whatever changed: they come last), leaving out rows an ``ignore`` pattern
    matches and, with ``changed_only``, rows that did not move."""
    kept = [r for r in rows if not ignored(r, ignore)]
    counts: dict[str, int] = {}
    for r in kept:
        name = str(r.get("change")) if r.get("change") is not None else ("changed" if is_changed(r) else "undefined")
        counts[name] = counts.get(name, 0) + 1
    shown = [r for r in kept if is_changed(r)] if changed_only else kept
    return Selection(
        audits=[r for r in shown if not r.get("measured")],
        measured=[r for r in shown if r.get("measured")],
        total=len(rows), unchanged_hidden=len(kept) - len(shown), ignored=len(rows) - len(kept), counts=counts,
    )


def report_label(path: str | PurePath, report: Mapping[str, Any]) -> str:
    """A report named for a reader: its folder (a report.json is named by the folder holding
    it), then the model, the seed and when it ran, as report.json says them."""
    path = PurePath(path)
    where = str(path.parent) if path.name == "report.json" and str(path.parent) not in ("", ".") else str(path)
    found_model, found_run = report.get("model"), report.get("run")
    model: Mapping[str, Any] = found_model if isinstance(found_model, Mapping) else {}
    run: Mapping[str, Any] = found_run if isinstance(found_run, Mapping) else {}
    about = []
    if model.get("name"):
        about.append(str(model["name"]))
    if isinstance(run.get("seed"), int) and not isinstance(run.get("seed"), bool):
        about.append(f"seed {run['seed']}")
    if isinstance(run.get("started"), str) and run["started"]:
        about.append(run["started"][:16].replace("T", " "))
    return f"{where} ({', '.join(about)})" if about else where


def summary_line(selection: Selection) -> str:
    """What moved, in one line: ``97 rows compared: 2 worse, 1 better, 94 same; ...``."""
    order = ("worse", "better", "changed", "added", "removed", "same", "undefined")
    parts = [f"{selection.counts[k]} {k}" for k in order if selection.counts.get(k)]
    text = f"{selection.total} rows compared: " + (", ".join(parts) or "none")
    if selection.ignored:
        text += f"; {selection.ignored} ignored (--ignore)"
    if selection.unchanged_hidden:
        text += f"; {selection.unchanged_hidden} unchanged not shown (--changed-only)"
    return text + "."


#: The heading of the measured rows, in every rendering.
MEASURED_TITLE = "Measured on each run (energy and time): these vary from run to run, whatever changed"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def row_cells(row: Mapping[str, Any]) -> list[str]:
    """A row as display text: audit, metric, before, after, delta, change, noise."""
    beyond = row.get("beyond_noise")
    noise = "" if beyond is None else ("beyond noise" if beyond else "within noise")
    if row.get("measured") and row.get("kind") == "metric":
        noise = "varies run to run"
    metric = "status" if row.get("kind") == "status" else str(row.get("label") or row.get("metric"))
    return [str(row["audit"]), metric, _cell(row.get("a")), _cell(row.get("b")), _cell(row.get("delta")),
            str(row.get("change") or ""), noise]


COLUMNS = ("Audit", "Metric", "Before", "After", "Delta", "Change", "Noise")


def compare_markdown(selection: Selection, before: str, after: str) -> str:
    """The comparison as Markdown for a PR comment: a heading naming the two reports, what
    moved in one line, the audits' table, then the measured figures under their own heading."""
    from auditor.report.markdown import escape
    from auditor.report.numbers import clean_text

    def text(value: str) -> str:
        return escape(clean_text(value))

    def table(rows: list[dict[str, Any]]) -> list[str]:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---:|---:|---|---|"]
        return lines + ["| " + " | ".join(text(cell) for cell in row_cells(row)) + " |" for row in rows]

    lines = [f"**{text(before)} → {text(after)}**", "", text(summary_line(selection)), ""]
    lines += table(selection.audits) if selection.audits else ["No audit row to show."]
    if selection.measured:
        lines += ["", f"**{text(MEASURED_TITLE)}**", ""] + table(selection.measured)
    return "\n".join(lines)


def compare_table(selection: Selection, before: str, after: str) -> Any:
    """The comparison for the terminal: the heading and what moved, the audits' table, then
    the measured figures' table (every cell plain text, never markup, on one line with its
    control characters made visible: :func:`auditor.report.numbers.log_safe`)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from auditor.report.numbers import log_safe

    def table(rows: list[dict[str, Any]], title: str) -> Table:
        found = Table(title=Text(log_safe(title)), title_justify="left")
        for column in COLUMNS:
            found.add_column(column, justify="right" if column in ("Before", "After", "Delta") else "left")
        for row in rows:
            found.add_row(*(Text(log_safe(cell)) for cell in row_cells(row)))
        return found

    parts: list[Any] = [Text(log_safe(f"{before} → {after}"), style="bold"), Text(log_safe(summary_line(selection)))]
    if selection.audits:
        parts.append(table(selection.audits, "Audits"))
    else:
        parts.append(Text("No audit row to show."))
    if selection.measured:
        parts.append(table(selection.measured, MEASURED_TITLE))
    return Group(*parts)
