"""Gates for CI: evaluate a policy (thresholds, regressions against a baseline report) and the
``fail_on`` findings rule over a finished report, into the report's ``gates`` section.

The policy and its rule language are parsed in :mod:`auditor.ci.policy`. Nothing here knows
an audit by name: what a gate needs to know about a metric, the metric declares
(:class:`auditor.contract.result.Metric`):

- ``noisy``: the figure varies between identical runs (timings, energy). A threshold gate on
  it notes that a fixed threshold can flip between identical runs, a regression on it that
  its tolerance has to allow for the noise, and its result says ``"noisy": true``. A status
  or findings gate is noisy when its audit reports in the ``measurements`` section (it
  measures the run itself).
- ``tolerance``: which metrics are checked for regression. With a baseline and a
  ``[regression]`` table, exactly the metrics the table names, with its tolerances. With a
  baseline and no table, every metric of the current report that declares a ``tolerance``
  (and a direction: ``higher`` gives ``max_drop``, ``lower`` ``max_rise``) and is in the
  baseline, with that tolerance (:func:`default_regressions`). No metric is gated for
  regression just for being a headline.

Legacy: a metric in a report written before the flags existed (schema 1.x, no ``noisy`` or
``tolerance`` key) is read as :func:`auditor.contract.result.legacy_flags` says: noisy when
its audit is in ``measurements`` or its key names a timing or energy figure
(:data:`NOISY_WORDS`), and a tolerance of 0.01 on a headline metric with a direction that is
not noisy, as 1.x gated them.

``evaluate`` returns::

    {
      "policy":   str | None,     # the policy file's name, "[tool.auditor]", or None without a policy
      "baseline": str | None,     # the baseline report.json path, or None
      "fail_on":  "error" | "warning" | "never",
      "not_assessed": "warn" | "fail" | "pass",  # what a not-assessed audit counts as
      "passed":   bool,           # every result passed
      "results": [                # gates in policy order, then regressions, then findings
        {
          "name":      str,       # "metrics.roc_auc >= 0.9", "metrics.roc_auc vs baseline (max_drop 0.01)",
                                  # "no error findings" / "no warning or error findings" / "findings never fail"
          "kind":      "gate" | "regression" | "findings",   # [gates] entry, [regression] entry, fail_on
          "passed":    bool,
          "message":   str,       # one sentence or two, says the figures and why
          "path":      str | None,       # the policy path as written (None for the fail_on result)
          "audit":     str | None,
          "metric":    str | None,       # the metric key it resolved to (dots kept)
          "field":     "value" | "ci_low" | "ci_high" | "status" | "findings" | None,
          "rule":      str | None,       # normalised: ">= 0.9", "between 0.8 and 1.25", "in [pass, warn]",
                                         # "no error", "max_drop 0.01", "fail_on error"
          "value":     number | str | None,   # the figure (a status word for status gates, the
                                              # count of matching findings for findings rules)
          "threshold": number | [number, number] | [str] | str | None,
                                  # the bound; for a regression the limit (baseline -/+ tolerance)
          "baseline":  number | None,    # regression: the baseline's figure
          "delta":     number | None,    # regression: value - baseline
          "tolerance": number | None,    # regression: max_drop or max_rise
          "noise":     "beyond noise" | "within noise" | None,
                                  # regression on a value whose two intervals are known: do they overlap?
          "noisy":     bool,      # the figure varies run to run: the metric's declared flag (see above)
          "actual":    = value,   # the names auditor.run.assemble's docstring uses
          "expected":  = baseline for a regression, else threshold
        }
      ]
    }
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Mapping

from auditor.ci.policy import Gate, Policy, Regression, load_policy, missing_baseline  # noqa: F401 - re-exported
from auditor.ci.policy import number_text as written
from auditor.contract.errors import UsageError
from auditor.contract.result import NOISY_WORDS, legacy_flags
from auditor.report.json_report import all_audits, load_report

__all__ = ["FAIL_ON", "NOISY_WORDS", "Policy", "default_regressions", "evaluate", "fmt", "is_noisy",
           "load_baseline", "load_policy", "resolve", "tolerance_of"]

FAIL_ON = ("error", "warning", "never")
#: What an audit that is not assessed counts as (``--not-assessed``); see :mod:`auditor.run.runner`.
NOT_ASSESSED = ("warn", "fail", "pass")
FIELDS = ("value", "ci_low", "ci_high")
_RAN = ("pass", "warn", "fail")
_NOISY_NOTE = (
    " This figure varies from run to run (timings, energy): a fixed threshold can flip between "
    "identical runs; a [regression] tolerance is steadier."
)


def load_baseline(path: Path | str, *, allow_symlinks: bool = False) -> dict[str, Any]:
    """The baseline report, read with :func:`load_report` (which checks its schema version,
    and reads within the memory budget); the path is checked first with
    :func:`auditor.loading.inputs.check_input` (no FIFO, device or link out of its folder)."""
    from auditor.loading.inputs import check_input

    check_input(path, "The baseline", allow_symlinks=allow_symlinks)
    try:
        return load_report(path)
    except UsageError as exc:
        raise UsageError(f"The baseline cannot be used: {exc.message}", hint=exc.hint) from None


def fmt(x: Any, *others: Any) -> str:
    """A number to 3 decimals (3 significant digits outside 0.001..10000), more when needed to
    tell it apart from ``others`` (differences in float noise, under 1e-12, do not count)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    def text(v: float, digits: int) -> str:
        return f"{v:.{digits}f}" if 1e-3 <= abs(v) < 1e4 else f"{v:.{digits}g}"

    for digits in range(3, 18):
        if all(text(x, digits) != text(o, digits) for o in others if _is_number(o) and abs(o - x) > 1e-12 * max(1.0, abs(x))):
            return text(x, digits)
    return repr(x)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _measured(report: Mapping[str, Any], audit: str) -> bool:
    """Whether ``audit``'s result sits in the report's ``measurements`` section (it needs
    ``energy``: it measures the run, not the model)."""
    section = report.get("measurements")
    return isinstance(section, Mapping) and audit in section


def is_noisy(report: Mapping[str, Any], audit: str, key: str | None) -> bool:
    """Whether a gate on ``audit``'s metric ``key`` (None: its status or findings) reads a
    figure that varies between identical runs: the metric's declared ``noisy`` flag (legacy
    rules for a 1.x metric without it); for a status, findings or a metric the audit does not
    report, whether the audit is in ``measurements``."""
    measured = _measured(report, audit)
    found = all_audits(report).get(audit)
    metrics = found.get("metrics") if isinstance(found, Mapping) else None
    if key is None or not isinstance(metrics, Mapping) or not isinstance(metrics.get(key), Mapping):
        return measured
    return legacy_flags(metrics[key], key, measured=measured)[0]


def tolerance_of(report: Mapping[str, Any], audit: str, key: str) -> float | None:
    """The regression tolerance ``audit``'s metric ``key`` declares (legacy rules for a 1.x
    metric without one), or None."""
    found = all_audits(report).get(audit)
    metric = (found.get("metrics") or {}).get(key) if isinstance(found, Mapping) else None
    if not isinstance(metric, Mapping):
        return None
    return legacy_flags(metric, key, measured=_measured(report, audit))[1]


def _result(name: str, kind: str, passed: bool, message: str, **fields: Any) -> dict[str, Any]:
    row = {
        "name": name, "kind": kind, "passed": bool(passed), "message": message,
        "path": None, "audit": None, "metric": None, "field": None, "rule": None, "value": None,
        "threshold": None, "baseline": None, "delta": None, "tolerance": None, "noise": None, "noisy": False,
    }
    row.update(fields)
    row["actual"] = row["value"]
    row["expected"] = row["baseline"] if kind == "regression" else row["threshold"]
    return row


def resolve(metrics: Mapping[str, Any], rest: str) -> tuple[str, str] | None:
    """(metric key, field) for the part of a path after the audit: the whole of it when it is
    a key (the longest match), else a key followed by .value, .ci_low or .ci_high."""
    if rest in metrics:
        return rest, "value"
    for field in FIELDS:
        key = rest[: -len(field) - 1]
        if rest.endswith("." + field) and key in metrics:
            return key, field
    return None


def read_field(metric: Mapping[str, Any], field: str) -> Any:
    if field == "value":
        return metric.get("value")
    ci = metric.get("ci")
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return None
    return ci[0] if field == "ci_low" else ci[1]


def _describe(metric: Mapping[str, Any], key: str, field: str) -> str:
    label = metric.get("label") or key
    return {"value": label, "ci_low": f"{label} interval lower bound", "ci_high": f"{label} interval upper bound"}[field]


def _why_not(audit: str, report: Mapping[str, Any]) -> str | None:
    """Why the audit has no figures (did not run, skipped, errored), or None when it ran."""
    found = all_audits(report).get(audit)
    if not isinstance(found, Mapping):
        return f"{audit} did not run (not selected, or left out with --skip)"
    status = found.get("status")
    if status in _RAN:
        return None
    summary = str(found.get("summary") or "").strip().rstrip(".")
    if status == "skipped":
        reason = summary[len("Skipped:"):].strip() if summary.lower().startswith("skipped:") else summary
        return f"{audit} was skipped: {reason}" if reason else f"{audit} was skipped"
    if status == "not assessed":
        return f"{audit} was not assessed: {summary}" if summary else f"{audit} was not assessed"
    return f"{audit} ended in {status}: {summary}" if summary else f"{audit} ended in {status}"


def _unknown(report: Mapping[str, Any], audit: str, rest: str) -> bool:
    found = all_audits(report).get(audit)
    return _why_not(audit, report) is None and resolve((found or {}).get("metrics") or {}, rest) is None


def _check_paths(policy: Policy, report: Mapping[str, Any]) -> None:
    """A metric path whose audit ran but has no such metric is a mistake in the policy."""
    bad: dict[str, list[str]] = {}
    entries = [g for g in policy.gates if g.kind == "metric"] + list(policy.regressions)
    for entry in entries:
        rest = entry.path.split(".", 1)[1]
        if _unknown(report, entry.audit, rest):
            bad.setdefault(entry.audit, []).append(entry.path)
    if not bad:
        return
    named = ", ".join(f'"{p}"' for paths in bad.values() for p in paths)
    valid = "; ".join(
        f"{audit}: " + ", ".join(
            [f"{audit}.status", f"{audit}.findings"]
            + [f"{audit}.{key}" for key in sorted(all_audits(report)[audit].get("metrics") or {})]
        )
        for audit in bad
    )
    raise UsageError(
        f"The policy names metrics that the audits do not report: {named}.",
        hint=f"Valid paths: {valid} (a metric also takes .ci_low or .ci_high).",
    )


_VERBS = {
    ">=": ("is at least", "is below the minimum"),
    ">": ("is above", "is not above"),
    "<=": ("is at most", "is above the maximum"),
    "<": ("is below", "is not below"),
    "==": ("equals", "does not equal"),
    "!=": ("differs from", "equals, against the gate,"),
}


def _threshold(gate: Gate, report: Mapping[str, Any]) -> dict[str, Any]:
    audit, rest = gate.path.split(".", 1)
    rule = gate.rule
    threshold = list(rule.operand) if rule.op == "between" else rule.operand
    common = {"path": gate.path, "audit": audit, "rule": rule.text, "threshold": threshold}
    why = _why_not(audit, report)
    if why is not None:
        noisy = is_noisy(report, audit, None)
        return _result(gate.name, "gate", False, f"{why}, so the gate cannot pass.", noisy=noisy, **common)
    metric_key, field = resolve(all_audits(report)[audit]["metrics"], rest)  # type: ignore[misc]
    metric = all_audits(report)[audit]["metrics"][metric_key]
    noisy = is_noisy(report, audit, metric_key)
    what = _describe(metric, metric_key, field)
    value = read_field(metric, field)
    common.update(metric=metric_key, field=field, noisy=noisy)
    note = _NOISY_NOTE if noisy else ""
    if not _is_number(value):
        missing = "has no interval" if field != "value" and metric.get("ci") is None else "is undefined"
        return _result(gate.name, "gate", False, f"{what} {missing} in this run, so the gate cannot pass.{note}",
                       value=None, **common)
    if rule.op == "between":
        low, high = rule.operand
        passed = low <= value <= high
        verb = "is within" if passed else "is outside"
        text = f"{what} {fmt(value, low, high)} {verb} [{written(low)}, {written(high)}]."
    else:
        x = rule.operand
        passed = {">=": value >= x, ">": value > x, "<=": value <= x, "<": value < x,
                  "==": value == x, "!=": value != x}[rule.op]
        verb = _VERBS[rule.op][0 if passed else 1]
        text = f"{what} {fmt(value, x)} {verb} {written(x)}."
    ci = metric.get("ci")
    if field == "value" and isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_is_number, ci)):
        text = text[:-1] + f" (interval {fmt(ci[0])} to {fmt(ci[1])})."
    return _result(gate.name, "gate", passed, text + note, value=value, **common)


def _status(gate: Gate, report: Mapping[str, Any]) -> dict[str, Any]:
    audit = gate.audit
    rule = gate.rule
    found = all_audits(report).get(audit)
    common = {"path": gate.path, "audit": audit, "field": "status", "rule": rule.text,
              "threshold": list(rule.operand), "noisy": is_noisy(report, audit, None)}
    if not isinstance(found, Mapping):
        return _result(gate.name, "gate", False, f"{_why_not(audit, report)}, so the gate cannot pass.", **common)
    status = found.get("status")
    allowed = rule.operand
    passed = status not in allowed if rule.op == "!=" else status in allowed
    need = allowed[0] if len(allowed) == 1 else ", ".join(allowed[:-1]) + " or " + allowed[-1]
    if rule.op == "!=":
        text = f"{audit} status is {status}" + (f", not {need}, as required." if passed else ", which the gate forbids.")
    else:
        text = f"{audit} status is {status}" + (", as required." if passed else f"; the gate requires {need}.")
    why = _why_not(audit, report)
    if why is not None and not passed:
        text = text[:-1] + f" ({why})."
    return _result(gate.name, "gate", passed, text, value=status, **common)


def _counts(findings: list[Mapping[str, Any]]) -> str:
    counts = Counter(str(f.get("code", "?")) for f in findings)
    return ", ".join(code if n == 1 else f"{code} ×{n}" for code, n in counts.items())


def _severities(level: str) -> tuple[str, ...]:
    return ("error",) if level == "error" else ("warning", "error")


def _findings_gate(gate: Gate, report: Mapping[str, Any]) -> dict[str, Any]:
    audit = gate.audit
    level = gate.rule.operand
    common = {"path": gate.path, "audit": audit, "field": "findings", "rule": gate.rule.text,
              "threshold": level, "noisy": is_noisy(report, audit, None)}
    why = _why_not(audit, report)
    if why is not None:
        return _result(gate.name, "gate", False, f"{why}, so the gate cannot pass.", **common)
    findings = [f for f in all_audits(report)[audit].get("findings") or [] if f.get("severity") in _severities(level)]
    kinds = "error" if level == "error" else "warning or error"
    if not findings:
        return _result(gate.name, "gate", True, f"{audit} has no {kinds} finding.", value=0, **common)
    text = f"{audit} has {len(findings)} {kinds} finding{'s' if len(findings) != 1 else ''} ({_counts(findings)}); the gate allows none."
    return _result(gate.name, "gate", False, text, value=len(findings), **common)


def _metric_in(report: Mapping[str, Any], path: str) -> tuple[str, str, Mapping[str, Any]] | None:
    audit, rest = path.split(".", 1)
    found = all_audits(report).get(audit)
    if not isinstance(found, Mapping):
        return None
    metrics = found.get("metrics") or {}
    hit = resolve(metrics, rest)
    return None if hit is None else (hit[0], hit[1], metrics[hit[0]])


def _overlap(a: Any, b: Any) -> bool | None:
    ok = all(isinstance(c, (list, tuple)) and len(c) == 2 and all(map(_is_number, c)) for c in (a, b))
    return None if not ok else a[0] <= b[1] and b[0] <= a[1]


def _regression(entry: Regression, report: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    audit, rest = entry.path.split(".", 1)
    common: dict[str, Any] = {"path": entry.path, "audit": audit, "rule": f"{entry.bound} {written(entry.tolerance)}",
                              "tolerance": entry.tolerance, "noisy": is_noisy(report, audit, None)}
    why = _why_not(audit, report)
    if why is not None:
        return _result(entry.name, "regression", False, f"{why}, so the regression cannot be checked.", **common)
    key, field, metric = _metric_in(report, entry.path)  # type: ignore[misc]
    noisy = is_noisy(report, audit, key)
    note = " This figure varies from run to run; the tolerance has to allow for that." if noisy else ""
    common.update(metric=key, field=field, noisy=noisy)
    what = _describe(metric, key, field)
    current = read_field(metric, field)
    old = _metric_in(baseline, entry.path)
    if old is None:
        base_audit = all_audits(baseline).get(audit)
        where = "no such metric in its " + audit + " audit" if isinstance(base_audit, Mapping) else f"no {audit} audit"
        return _result(entry.name, "regression", False,
                       f'"{entry.path}" is not in the baseline ({where}), so the regression cannot be checked.{note}',
                       value=current if _is_number(current) else None, **common)
    previous = read_field(old[2], field)
    if not _is_number(current) or not _is_number(previous):
        side = "this run" if not _is_number(current) else "the baseline"
        return _result(entry.name, "regression", False,
                       f"{what} is undefined in {side}, so the regression cannot be checked.{note}",
                       value=current if _is_number(current) else None,
                       baseline=previous if _is_number(previous) else None, **common)
    delta = current - previous
    tol = entry.tolerance
    higher = entry.bound == "max_drop"
    worse = -delta if higher else delta
    passed = worse <= tol + 1e-12
    limit = previous - tol if higher else previous + tol
    if delta == 0:
        text = f"{what} is unchanged at {fmt(current)}"
    else:
        moved = "fell" if delta < 0 else "rose"
        text = f"{what} {moved} {fmt(abs(delta), tol)} from {fmt(previous, current)} to {fmt(current, previous)}"
        if worse > 0:
            text += f", {'within' if passed else 'beyond'} the {written(tol)} tolerance"
    noise = None
    overlap = _overlap(metric.get("ci"), old[2].get("ci")) if field == "value" else None
    if overlap is not None:
        noise = "within noise" if overlap else "beyond noise"
        text += f"; the intervals {'overlap' if overlap else 'do not overlap'}: {noise}"
    return _result(entry.name, "regression", passed, text + "." + note, value=current, threshold=limit,
                   baseline=previous, delta=delta, noise=noise, **common)


def _fail_on(report: Mapping[str, Any], fail_on: str, not_assessed: str = "warn") -> dict[str, Any]:
    """The findings rule: no finding (and no audit status) of the ``fail_on`` severity. An
    audit that is not assessed counts as ``not_assessed`` says: as a warning (fails under
    fail_on warning), as a failure (fails whatever fail_on says, even never) or as a pass."""
    severities = _severities(fail_on if fail_on != "never" else "warning")
    bad_status: tuple[str, ...] = ("fail",) if fail_on == "error" else ("fail", "warn")
    if not_assessed == "fail" or (not_assessed == "warn" and fail_on == "warning"):
        bad_status += ("not assessed",)
    name = {"error": "no error findings", "warning": "no warning or error findings", "never": "findings never fail"}[fail_on]
    common = {"rule": f"fail_on {fail_on}", "threshold": fail_on}
    kinds = "error" if fail_on == "error" else "warning or error"
    problems, unjudged, total = [], [], 0
    for audit, found in all_audits(report).items():
        if not isinstance(found, Mapping) or found.get("status") == "error":
            continue  # an audit that broke is not a gate matter: the command line exits 3 for it
        hits = [f for f in found.get("findings") or [] if f.get("severity") in severities]
        status = found.get("status")
        total += len(hits)
        if status == "not assessed" and status in bad_status:
            unjudged.append(audit)
        if fail_on != "never" and (hits or status in bad_status):
            parts = [f"status {status}"] if status in bad_status else []
            if hits:
                parts.append(f"{len(hits)} {kinds} finding{'s' if len(hits) != 1 else ''} ({_counts(hits)})")
            problems.append(f"{audit} has {' and '.join(parts)}")
    why = " (--not-assessed fail)" if not_assessed == "fail" else ""
    if fail_on == "never":
        text = (f"fail_on never: findings do not fail the run ({total} warning or error "
                f"finding{'s' if total != 1 else ''} across the audits).")
        if unjudged:
            return _result(name, "findings", False, text[:-1] + f"; but {', '.join(unjudged)} "
                           f"{'was' if len(unjudged) == 1 else 'were'} not assessed{why}.", value=total, **common)
        return _result(name, "findings", True, text, value=total, **common)
    if not problems:
        statuses = "fail" if fail_on == "error" else "warn or fail"
        article = "an" if kinds[0] in "aeiou" else "a"
        return _result(name, "findings", True, f"No audit has {article} {kinds} finding or status {statuses}.",
                       value=0, **common)
    return _result(name, "findings", False, f"fail_on {fail_on}{why}: " + "; ".join(problems) + ".", value=total, **common)


def default_regressions(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> tuple[Regression, ...]:
    """The regressions checked when a baseline is given without a [regression] table: every
    metric of ``report`` that declares a ``tolerance`` (:func:`tolerance_of`) and a direction
    and that the baseline's same audit also reports, in audit then key order."""
    entries = []
    for audit, result in sorted(all_audits(report).items()):
        before = all_audits(baseline).get(audit)
        before_metrics = before.get("metrics") or {} if isinstance(before, Mapping) else {}
        for key, metric in sorted((result.get("metrics") or {}).items()):
            direction = metric.get("direction") if isinstance(metric, Mapping) else None
            tolerance = tolerance_of(report, audit, key)
            if tolerance is None or key not in before_metrics or direction not in ("higher", "lower"):
                continue
            bound: Literal["max_drop", "max_rise"] = "max_drop" if direction == "higher" else "max_rise"
            entries.append(Regression(path=f"{audit}.{key}", bound=bound, tolerance=tolerance))
    return tuple(entries)


def evaluate(
    report: dict[str, Any],
    policy: Policy | None,
    baseline: dict[str, Any] | None,
    *,
    fail_on: str,
    baseline_path: str | None,
    not_assessed: str = "warn",
) -> dict[str, Any]:
    """The report's ``gates`` section (see the module docstring for its schema).

    Raises :class:`UsageError` for a metric path whose audit ran without such a metric (the
    message lists that audit's valid paths), for [regression] tolerances without a baseline,
    and for an unknown ``fail_on`` or ``not_assessed``. ``not_assessed`` (warn, fail or pass)
    is what an audit that is not assessed counts as in the fail_on rule."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"fail_on must be one of {', '.join(FAIL_ON)}; got {fail_on!r}.",
                         hint="Use --fail-on error, warning or never.")
    if not_assessed not in NOT_ASSESSED:
        raise UsageError(f"not_assessed must be one of {', '.join(NOT_ASSESSED)}; got {not_assessed!r}.",
                         hint="Use --not-assessed warn, fail or pass.")
    results: list[dict[str, Any]] = []
    if policy is not None:
        if policy.regressions and baseline is None:
            raise missing_baseline()
        _check_paths(policy, report)
        for gate in policy.gates:
            results.append({"metric": _threshold, "status": _status, "findings": _findings_gate}[gate.kind](gate, report))
    regressions = policy.regressions if policy is not None and policy.regressions else ()
    if baseline is not None and not regressions:
        regressions = default_regressions(report, baseline)
    for entry in regressions:
        results.append(_regression(entry, report, baseline or {}))
    results.append(_fail_on(report, fail_on, not_assessed))
    return {
        "policy": None if policy is None else policy.source,
        "baseline": baseline_path,
        "fail_on": fail_on,
        "not_assessed": not_assessed,
        "passed": all(r["passed"] for r in results),
        "results": results,
    }
