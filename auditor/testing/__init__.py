"""Conformance checks for audit plugins, like scikit-learn's ``check_estimator``.

A plugin author calls :func:`check_audit` in their own tests with a context built from a
real model::

    from auditor.run.pipeline import RunConfig, execute
    from auditor.testing import check_audit

    ctx = execute(RunConfig(model=path, data=csv), {"mine": MyAudit()}).context
    check_audit(MyAudit(), ctx)
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from auditor.contract.context import AuditContext
from auditor.run.registry import validate_audit
from auditor.contract.result import AuditResult
from auditor.run.runner import missing_needs


class _CountingModel:
    """Stands in for the model during a check and counts calls: audits must not make any."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def check_audit(audit: Any, ctx: AuditContext, options: Mapping[str, Any] | None = None) -> AuditResult:
    """Assert that ``audit`` follows the contract on ``ctx``; return its result.

    Checks: it validates at registration; it builds with its declared defaults; it returns
    an AuditResult; it does not call the model unless it declares the need ``model`` (an
    audit that perturbs inputs); its result round-trips through strict JSON; two runs under the same seed
    give identical results.
    """
    validate_audit(audit, repr(type(audit).__name__))
    assert "energy" not in missing_needs(ctx, tuple(audit.needs)), (
        f"{audit.name} needs energy, which this context lacks: build it with "
        f"execute(config, {{{audit.name!r}: audit}}), which measures the run"
    )
    values = {o.name: o.default for o in audit.options}
    values.update(options or {})
    counter = _CountingModel(ctx.model.module)
    original = ctx.model.module
    ctx.model.module = counter
    try:
        first = audit.run(ctx, dict(values))
        second = audit.run(ctx, dict(values))
    finally:
        ctx.model.module = original
    assert isinstance(first, AuditResult), f"run() returned {type(first).__name__}, not AuditResult"
    assert first.audit == audit.name, f"result.audit is {first.audit!r}, expected {audit.name!r}"
    if "model" not in tuple(audit.needs):
        assert counter.calls == 0, (
            f"{audit.name} called the model {counter.calls} time(s); read ctx.predictions "
            "(or declare the need 'model' if it must evaluate perturbed inputs)"
        )
    text = json.dumps(first.to_dict(), allow_nan=False, sort_keys=True)
    again = AuditResult.from_dict(json.loads(text)).to_dict()
    assert json.dumps(again, sort_keys=True) == text, "the result does not round-trip through JSON"
    assert json.dumps(second.to_dict(), sort_keys=True) == text, "two runs under one seed differ"
    return first
