"""Run the selected audits over one context, isolating each one's failures."""

from __future__ import annotations

import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping

from .context import AuditContext
from .plugin import NEEDS
from .result import AuditResult


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
    }
    return [need for need in needs if not available.get(need, False)]


@dataclass
class RunOutcome:
    results: dict[str, AuditResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)


def run_audits(
    ctx: AuditContext,
    audits: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    *,
    step: Callable[[str], ContextManager[Any]] | None = None,
) -> RunOutcome:
    """Run each audit in order; one that raises becomes an ``error`` result, the rest go on.

    ``step(name)``, when given, wraps each audit (the CLI draws a progress line with it).
    """
    outcome = RunOutcome()
    for name, audit in audits.items():
        with step(name) if step is not None else nullcontext():
            started = time.perf_counter()
            outcome.results[name] = _run_one(ctx, name, audit, options[name], outcome.tracebacks)
            outcome.timings[name] = time.perf_counter() - started
    return outcome


def _run_one(
    ctx: AuditContext, name: str, audit: Any, options: Mapping[str, Any], tracebacks: dict[str, str]
) -> AuditResult:
    missing = missing_needs(ctx, tuple(audit.needs))
    if missing:
        reason = "; ".join(NEEDS[m] for m in missing)
        return AuditResult.skipped(name, audit.title, f"Skipped: {reason}.")
    try:
        result = audit.run(ctx, dict(options))
        if not isinstance(result, AuditResult):
            raise TypeError(f"run() returned {type(result).__name__}, not an AuditResult")
    except Exception as exc:  # noqa: BLE001 - an audit's failure must not stop the others
        tracebacks[name] = traceback.format_exc()
        return AuditResult.errored(name, audit.title, f"{type(exc).__name__}: {exc}")
    result.options = dict(options)
    return result


def verdict(results: Mapping[str, AuditResult]) -> str:
    """error if any audit errored, else fail if any failed, else warn if any warned, else pass."""
    statuses = {r.status for r in results.values()}
    for status in ("error", "fail", "warn"):
        if status in statuses:
            return status
    return "pass"
