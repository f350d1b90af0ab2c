"""Run the selected audits over one context, isolating each one's failures."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .context import AuditContext
from .plugin import NEEDS
from .result import AuditResult


def missing_needs(ctx: AuditContext, needs: tuple[str, ...]) -> list[str]:
    """The needs this context cannot meet, in the audit's order."""
    available = {
        "target": ctx.has_target,
        "classification": ctx.task.is_classification,
        "regression": ctx.task.kind == "regression",
        "sensitive": bool(getattr(ctx, "sensitive", None)),
        "history": getattr(ctx, "history", None) is not None,
        "train_data": getattr(ctx, "train_data", None) is not None,
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
    on_start: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run each audit in order; one that raises becomes an ``error`` result, the rest go on."""
    outcome = RunOutcome()
    for name, audit in audits.items():
        if on_start is not None:
            on_start(name)
        missing = missing_needs(ctx, tuple(audit.needs))
        started = time.perf_counter()
        if missing:
            reason = "; ".join(NEEDS[m] for m in missing)
            result = AuditResult.skipped(name, audit.title, f"Skipped: {reason}.")
        else:
            try:
                result = audit.run(ctx, dict(options[name]))
                if not isinstance(result, AuditResult):
                    raise TypeError(f"run() returned {type(result).__name__}, not an AuditResult")
                result.options = dict(options[name])
            except Exception as exc:  # noqa: BLE001 - an audit's failure must not stop the others
                outcome.tracebacks[name] = traceback.format_exc()
                result = AuditResult.errored(name, audit.title, f"{type(exc).__name__}: {exc}")
        outcome.timings[name] = time.perf_counter() - started
        outcome.results[name] = result
    return outcome


def verdict(results: Mapping[str, AuditResult]) -> str:
    """error if any audit errored, else fail if any failed, else warn if any warned, else pass."""
    statuses = {r.status for r in results.values()}
    for status in ("error", "fail", "warn"):
        if status in statuses:
            return status
    return "pass"
