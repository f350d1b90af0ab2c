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
direction (statuses rank pass > warn > fail), "changed" when there is no direction (or a
status is skipped/error), "added"/"removed" when the metric or audit is in only b/only a,
None when a value is undefined on either side.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .report.json_report import all_audits

_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}


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


def _audits(report: Mapping[str, Any]) -> Mapping[str, Any]:
    return all_audits(report)


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows comparing report ``a`` (before) with report ``b`` (after); see the module docstring."""
    rows: list[dict[str, Any]] = []
    audits_a, audits_b = _audits(a), _audits(b)
    measured = {str(n) for r in (a, b) if isinstance(r.get("measurements"), Mapping) for n in r["measurements"]}
    for audit in sorted(set(audits_a) | set(audits_b)):
        ra, rb = audits_a.get(audit), audits_b.get(audit)
        sa = ra.get("status") if isinstance(ra, Mapping) else None
        sb = rb.get("status") if isinstance(rb, Mapping) else None
        if sa in _STATUS_RANK and sb in _STATUS_RANK and sa != sb:
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


def compare_markdown(rows: list[dict[str, Any]], before: str, after: str) -> str:
    """The comparison as a Markdown table for a PR comment."""
    from .report.format import clean_text
    from .report.markdown import escape

    def text(value: str) -> str:
        return escape(clean_text(value))

    lines = [f"**{text(before)} → {text(after)}**", "",
             "| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(text(cell) for cell in row_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def compare_table(rows: list[dict[str, Any]], before: str, after: str) -> Any:
    """The comparison as a rich Table (every cell plain text, never markup, on one line with
    its control characters made visible: :func:`auditor.report.format.log_safe`)."""
    from rich.table import Table
    from rich.text import Text

    from .report.format import log_safe

    table = Table(title=Text(log_safe(f"{before} → {after}")))
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("Before", "After", "Delta") else "left")
    for row in rows:
        table.add_row(*(Text(log_safe(cell)) for cell in row_cells(row)))
    return table
