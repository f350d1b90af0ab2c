"""Run the selected audits over one context, isolating each one's failures.

An audit that raises, returns something other than a well-formed :class:`AuditResult`
(one whose ``to_dict`` fails, whose content JSON cannot hold, such as NaN outside the
metrics, or whose status or finding severity is not an allowed one), or runs past the
timeout becomes an ``error`` result naming the reason; the others still run.

The timeout (``audit_timeout``, seconds) is enforced with ``signal.setitimer(ITIMER_REAL)``
and a SIGALRM handler that raises :class:`AuditTimeout` inside the audit. That needs POSIX
and the main thread; elsewhere (Windows, a run started from another thread, or while
another SIGALRM timer is pending) audits run without a timeout and each result says so in
a note. Python delivers the signal between bytecodes: an audit inside one long native call
(a big matrix product, a C extension loop) is stopped only when that call returns.
:class:`AuditTimeout` derives from ``BaseException`` so that an audit's own ``except
Exception`` does not swallow it; an audit that swallows it anyway is still reported as
timed out when it returns.

Before any audit runs, each one that defines ``check_context(ctx, options)`` is asked whether
it can work on this context as configured (see :func:`_check_contexts`); the
:class:`~auditor.contract.errors.AuditorError` one raises there (a class count whose arrays would not
fit in the memory budget) ends the run with exit 2, like bad input found while loading.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping

from auditor.contract.context import AuditContext
from auditor.contract.errors import AuditorError
from auditor.contract.plugin import NEEDS
from auditor.contract.result import NOT_ASSESSED, SEVERITIES, STATUSES, AuditResult, Finding
from auditor.run import heap
from auditor.run.sampled import is_sampled, on_kept_rows, on_sample_only, say_sampled


class AuditTimeout(BaseException):
    """Raised inside an audit (by SIGALRM) when it runs past the timeout."""


class MalformedResult(ValueError):
    """An audit's run() returned something the report cannot hold."""


def missing_needs(ctx: AuditContext, needs: tuple[str, ...]) -> list[str]:
    """The needs this context cannot meet, in the audit's order."""
    available = {
        "target": ctx.has_target,
        "classification": ctx.task.is_classification,
        "regression": ctx.task.kind == "regression",
        "sensitive": bool(ctx.sensitive),
        "history": ctx.history is not None,
        "train_data": ctx.train is not None,
        "model": ctx.infer is not None,
        "energy": ctx.energy is not None,
        "features": True,  # every row's, or a sample's (auditor.run.sampled)
    }
    return [need for need in needs if not available.get(need, False)]


@dataclass
class AuditRuns:
    """What running the audits gave: each audit's result, its time in seconds and, for an
    audit that raised, its traceback (shown with --debug). Not the run's outcome: that is
    :func:`outcome` here, and :class:`auditor.api.Outcome` for callers."""

    results: dict[str, AuditResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)


def run_audits(
    ctx: AuditContext,
    audits: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    *,
    step: Callable[[str], ContextManager[Any]] | None = None,
    timeout: float | None = None,
) -> AuditRuns:
    """Run each audit in order; one that raises, returns a malformed result or runs past
    ``timeout`` seconds becomes an ``error`` result, the rest go on.

    ``step(name)``, when given, wraps each audit (the CLI draws a progress line with it).
    """
    runs = AuditRuns()
    broken = _check_contexts(ctx, audits, options, runs.tracebacks)
    for name, audit in audits.items():
        if name in broken:
            runs.results[name], runs.timings[name] = broken[name], 0.0
            continue
        with step(name) if step is not None else nullcontext():
            started = time.perf_counter()
            runs.results[name] = _run_one(ctx, name, audit, options[name], runs.tracebacks, timeout)
            runs.timings[name] = time.perf_counter() - started
        heap.trim()  # what the audit freed goes back: the next one starts from what the run holds
    return runs


def _check_contexts(
    ctx: AuditContext,
    audits: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    tracebacks: dict[str, str],
) -> dict[str, AuditResult]:
    """Call every audit's optional ``check_context(ctx, options)`` before any audit runs: an
    audit that cannot work on this run's data as asked (its arrays would not fit in memory)
    raises an :class:`~auditor.contract.errors.AuditorError` there, and the run stops with its exit
    code (2) and one line, nothing written, instead of ending in an ``error`` result or an
    out-of-memory kill. Audits whose needs the context does not meet are not asked. A check
    that raises anything else is the audit's bug: its ``error`` result, returned by name."""
    broken: dict[str, AuditResult] = {}
    for name, audit in audits.items():
        check = getattr(audit, "check_context", None)
        if not callable(check) or missing_needs(ctx, tuple(audit.needs)):
            continue
        try:
            check(ctx, dict(options[name]))
        except AuditorError:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - isolated like a failing run()
            tracebacks[name] = traceback.format_exc()
            broken[name] = AuditResult.errored(name, audit.title, f"{type(exc).__name__}: {exc}")
    return broken


def timeout_unavailable() -> str | None:
    """Why a timeout cannot be enforced here, or None when it can."""
    if not hasattr(signal, "setitimer") or not hasattr(signal, "SIGALRM"):
        return "this platform has no SIGALRM timer"
    if threading.current_thread() is not threading.main_thread():
        return "the audits run outside the main thread"
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        return "another SIGALRM timer is pending"
    return None


class _Deadline:
    """A one-shot SIGALRM timer that raises :class:`AuditTimeout` in the main thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = False
        self.expired = False
        self._previous: Any = None

    def _fire(self, signum: int, frame: Any) -> None:
        if self.active:
            self.active = False
            self.expired = True
            raise AuditTimeout()

    def __enter__(self) -> _Deadline:
        self._previous = signal.signal(signal.SIGALRM, self._fire)
        self.active = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def disarm(self) -> None:
        """Stop the timer and put the previous handler back (safe to call twice)."""
        was_armed = self._previous is not None
        self.active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if was_armed:
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None

    def __exit__(self, *exc: Any) -> None:
        self.disarm()


def _seconds(value: float) -> str:
    return f"{value:g}"


def _failed(name: str, title: str, code: str, message: str, notes: list[str] | None = None) -> AuditResult:
    """An ``error`` result whose one finding says what went wrong."""
    return AuditResult(audit=name, title=title, status="error", summary=message,
                       findings=[Finding("error", code, message)], notes=notes or [])


def timed_out(name: str, title: str, seconds: float) -> AuditResult:
    return _failed(name, title, "audit-timeout",
                   f"The audit did not finish within {_seconds(seconds)} s and was stopped.",
                   ["Raise audit_timeout (--audit-timeout) if the audit needs longer."])


def check_result(result: Any) -> None:
    """Raise :class:`MalformedResult` when ``result`` is not an AuditResult the report can hold."""
    if not isinstance(result, AuditResult):
        raise MalformedResult(f"run() returned {type(result).__name__}, not an AuditResult")
    if result.status not in STATUSES:
        raise MalformedResult(f"its status is {result.status!r}; allowed: {', '.join(STATUSES)}")
    for finding in result.findings:
        severity = getattr(finding, "severity", None)
        if severity not in SEVERITIES:
            raise MalformedResult(f"a finding has severity {severity!r}; allowed: {', '.join(SEVERITIES)}")
    for attr in ("title", "summary"):
        if not isinstance(getattr(result, attr), str):
            raise MalformedResult(f"its {attr} is {type(getattr(result, attr)).__name__}, not str")
    if not isinstance(result.notes, list):
        raise MalformedResult(f"its notes are {type(result.notes).__name__}, not a list")
    try:
        data = result.to_dict()
    except Exception as exc:  # noqa: BLE001 - whatever to_dict raises, the result is unusable
        raise MalformedResult(f"to_dict() failed: {type(exc).__name__}: {exc}") from exc
    try:
        json.dumps(data, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MalformedResult(f"JSON cannot hold it: {exc}") from exc


def malformed(name: str, title: str, problem: str) -> AuditResult:
    return _failed(name, title, "audit-malformed-result", f"The audit returned a malformed result: {problem}.")


def _run_one(
    ctx: AuditContext,
    name: str,
    audit: Any,
    options: Mapping[str, Any],
    tracebacks: dict[str, str],
    timeout: float | None = None,
) -> AuditResult:
    missing = missing_needs(ctx, tuple(audit.needs))
    if missing:
        reason = "; ".join(NEEDS[m] for m in missing)
        return AuditResult.skipped(name, audit.title, f"Skipped: {reason}.")
    unavailable = timeout_unavailable() if timeout is not None else None
    deadline = _Deadline(timeout) if timeout is not None and unavailable is None else None
    whole = ctx
    sampled = is_sampled(ctx, tuple(audit.needs))
    if sampled:
        ctx = on_kept_rows(ctx)
    sampled = sampled or on_sample_only(ctx, audit)
    try:
        try:
            with deadline if deadline is not None else nullcontext():
                result = audit.run(ctx, dict(options))
        finally:
            if deadline is not None:
                deadline.disarm()
        if deadline is not None and deadline.expired:
            raise AuditTimeout()
        check_result(result)
        if sampled and result.status not in ("skipped", "error"):
            result = say_sampled(result, whole, train="train_data" in tuple(audit.needs))
    except AuditTimeout:
        if deadline is not None:
            deadline.disarm()
        tracebacks[name] = traceback.format_exc()
        assert timeout is not None
        return timed_out(name, audit.title, timeout)
    except MalformedResult as exc:
        tracebacks[name] = traceback.format_exc()
        return malformed(name, audit.title, str(exc))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - an audit's failure must not stop the others
        tracebacks[name] = traceback.format_exc()
        from auditor.loading.sniff import TORCHSCRIPT_TRACEBACK, meaningful_line

        # A TorchScript error's message is a traceback of compiled code: its summary is the
        # real error at its end (the full text stays in the run's traceback, --debug).
        message = meaningful_line(exc) if TORCHSCRIPT_TRACEBACK in str(exc) else f"{type(exc).__name__}: {exc}"
        return AuditResult.errored(name, audit.title, message)
    result.options = dict(options)
    if unavailable is not None:
        result.notes.append(f"audit_timeout ({_seconds(timeout or 0)} s) was not enforced: {unavailable}.")
    return result


#: What an audit that is ``not assessed`` counts as, in the verdict and the exit code
#: (``--not-assessed``, setting ``not_assessed``): a warning by default (exit 0, and exit 1
#: under ``--fail-on warning``), a failure, or a pass (it still shows in every report).
NOT_ASSESSED_AS: tuple[str, ...] = ("warn", "fail", "pass")

#: The exit code of each verdict (see :mod:`auditor.cli`).
EXIT_CODES: dict[str, int] = {"pass": 0, "warn": 0, "fail": 1, "error": 3}


def _as(status: str, not_assessed: str) -> str:
    return not_assessed if status == NOT_ASSESSED else status


def verdict(results: Mapping[str, Any], not_assessed: str = "warn") -> str:
    """The audits' own verdict, before any gate: error if any audit errored, else fail if any
    failed, else warn if any warned (or was not assessed, counted as ``not_assessed`` says),
    else pass. ``results`` maps names to :class:`AuditResult` or to their dicts."""
    statuses = {
        _as(str(r.status if isinstance(r, AuditResult) else r.get("status")), not_assessed)
        for r in results.values()
    }
    for status in ("error", "fail", "warn"):
        if status in statuses:
            return status
    return "pass"


def outcome(
    audits: Mapping[str, Mapping[str, Any]],
    gates: Mapping[str, Any],
    *,
    not_assessed: str = "warn",
) -> dict[str, Any]:
    """THE verdict of a run, computed once from the audits (``name -> result dict``) and the
    gate results of :func:`auditor.ci.gates.evaluate` (thresholds, regressions, the fail_on
    rule), and stored as the report's ``outcome``; ``report["verdict"]`` is its ``verdict``
    and every renderer shows that, so no output can contradict the exit code::

        {"verdict": "pass" | "warn" | "fail" | "error",
         "exit_code": 0 | 1 | 3,
         "reasons": [str],          # one sentence each, most serious first; empty for a clean pass
         "failed_gates": [str],     # names of the gates, regressions and rules that failed
         "not_assessed": [str],     # audits that ran but could not judge
         "not_assessed_as": "warn" | "fail" | "pass",
         "fail_on": "error" | "warning" | "never"}

    error (exit 3) when an audit broke; else fail (exit 1) when a gate, a regression or the
    fail_on rule failed; else warn (exit 0) when an audit warned, failed without failing the
    run (``--fail-on never``) or was not assessed (unless counted as a pass); else pass."""
    if not_assessed not in NOT_ASSESSED_AS:
        raise ValueError(f"not_assessed must be one of {NOT_ASSESSED_AS}, got {not_assessed!r}")
    by_status: dict[str, list[str]] = {}
    for name, result in audits.items():
        status = result.get("status") if isinstance(result, Mapping) else None
        by_status.setdefault(str(status), []).append(str(name))
    failed = [g for g in gates.get("results", []) if not g.get("passed")]
    reasons: list[str] = []
    if by_status.get("error"):
        reasons.append(f"Audits that broke: {', '.join(by_status['error'])}.")
    reasons += [f"{g.get('kind', 'gate').capitalize()} failed: {g.get('name')}: {g.get('message')}" for g in failed]
    for status, word in (("fail", "failed"), ("warn", "warned"), (NOT_ASSESSED, "not assessed")):
        if by_status.get(status):
            reasons.append(f"Audits {word}: {', '.join(by_status[status])}.")
    if by_status.get("error"):
        final = "error"
    elif failed:
        final = "fail"
    elif by_status.get("fail") or by_status.get("warn") or (by_status.get(NOT_ASSESSED) and not_assessed != "pass"):
        final = "warn"
    else:
        final = "pass"
    return {
        "verdict": final,
        "exit_code": EXIT_CODES[final],
        "reasons": reasons,
        "failed_gates": [str(g.get("name")) for g in failed],
        "not_assessed": list(by_status.get(NOT_ASSESSED, [])),
        "not_assessed_as": not_assessed,
        "fail_on": gates.get("fail_on"),
    }
