"""``check_audit``: the conformance check a plugin author runs, like scikit-learn's ``check_estimator``.

It runs the audit twice on a context and asserts the contract: the audit registers, builds
with its declared defaults, returns an :class:`~auditor.contract.result.AuditResult` under its
own name, never runs the model unless it declares the need ``model`` (calls through
``ctx.infer`` and through ``ctx.model.module`` are both counted), gives identical results under
one seed, round-trips through strict JSON, and renders in every report format (html, md, json,
junit and the terminal summary; pdf when a browser is installed) inside a minimal report, with
its title and summary in each. A failure is an ``AssertionError`` whose message says what to fix.
"""

from __future__ import annotations

import html
import importlib
import io
import json
import platform
import re
import sys
from typing import Any, Callable, Mapping, Sequence

from auditor.contract.context import AuditContext
from auditor.contract.result import AuditResult
from auditor.run.registry import validate_audit
from auditor.run.runner import missing_needs, verdict

#: The formats check_audit renders by default ("terminal" is the printed summary); "pdf" is
#: added when a browser to print it is installed.
FORMATS: tuple[str, ...] = ("json", "html", "md", "junit", "terminal")
#: The schema version of the minimal report: today's report.json shape, which readers of a
#: newer schema migrate.
_MINIMAL_SCHEMA = "1.1"
_ZERO_WIDTH = str.maketrans("", "", "\u200b\u200c\u200d\ufeff\\")
_WORD = re.compile(r"\w+")


class _CountingModel:
    """Stands in for ``ctx.model.module`` during a check and counts calls."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _CountingInfer:
    """Stands in for ``ctx.infer`` during a check and counts calls; with nothing to call (a
    context without a model) it raises, saying what the audit should declare."""

    def __init__(self, infer: Callable[..., Any] | None, audit: str) -> None:
        self._infer = infer
        self._audit = audit
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self._infer is None:
            raise AssertionError(_undeclared(self._audit, self.calls))
        return self._infer(*args, **kwargs)


def _undeclared(audit: str, calls: int) -> str:
    return (
        f"{audit} called ctx.infer {calls} time(s) without declaring the need 'model': add \"model\" to its "
        "needs (needs = (..., \"model\")) so that the runner gives it a model to run, and skips it when there "
        "is none; or read the predictions the run computed once, ctx.predictions"
    )


def _words(text: str) -> str:
    """``text`` as its words only, space-separated and padded: escapes, markup and line breaks
    differ between formats, the words do not."""
    return " " + " ".join(_WORD.findall(html.unescape(text).translate(_ZERO_WIDTH))) + " "


def _model_facts(model: Any) -> dict[str, Any]:
    """What the report says about the model; a stand-in model (an object with a ``module``
    only, as older tests build) gets placeholders."""
    path = getattr(model, "path", None)
    return {"path": getattr(path, "name", "model"), "name": getattr(model, "name", "model"),
            "format": getattr(model, "format", "unknown"), "sha256": getattr(model, "sha256", None),
            "size_bytes": getattr(model, "size_bytes", None), "trust": getattr(model, "trust", ""),
            "metadata": dict(getattr(model, "metadata", {}) or {})}


def _minimal_report(audit: Any, result: AuditResult, ctx: AuditContext) -> dict[str, Any]:
    """A report document holding only this audit's result, with the context's facts: what
    ``audit`` writes, less everything that needs files (hashes of inputs, their sizes)."""
    from auditor import __version__

    measured = "energy" in tuple(audit.needs)
    part = result.to_dict()
    names = list(ctx.task.class_names)
    balance = []
    if ctx.data.y is not None and names:
        import numpy as np

        counts = np.bincount(ctx.data.y.astype(np.int64), minlength=len(names))
        balance = [{"class": c, "count": int(k), "share": float(k) / max(int(counts.sum()), 1)}
                   for c, k in zip(names, counts)]
    return {
        "schema_version": _MINIMAL_SCHEMA,
        "tool": {"name": "auditor", "version": __version__},
        "verdict": verdict({audit.name: result}),
        "model": _model_facts(ctx.model),
        "data": {"path": str(ctx.data.path), "sha256": ctx.data.sha256, "size_bytes": None, "rows": ctx.data.n_rows,
                 "columns": len(ctx.data.columns), "features": list(ctx.data.feature_names),
                 "target": ctx.data.target_name, "task": ctx.task.kind, "output": ctx.task.output,
                 "class_names": names, "class_balance": balance,
                 "sensitive": [{"column": g.column, "groups": len(g.labels), "binned": g.binned,
                                "fed_to_model": g.fed_to_model} for g in ctx.sensitive.values()]},
        "train_data": None,
        "card": None,
        "code": [],
        "history": None,
        "audits": {} if measured else {audit.name: part},
        "measurements": {audit.name: part} if measured else {},
        "run": {"command": f"check_audit({audit.name})", "started": "2000-01-01T00:00:00+00:00", "seed": ctx.seed,
                "device": ctx.device, "forward_passes": ctx.forward_passes,
                "versions": {"auditor": __version__, "python": platform.python_version()},
                "plugins": {}, "platform": platform.platform(), "argv": list(sys.argv),
                "timings": {"audits": {audit.name: 0.0}}},
    }


def _typed(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the typed report reads and writes it, where that exists (it fills and
    migrates sections), validated against report.json's schema where that exists."""
    try:
        document = importlib.import_module("auditor.report.document")
    except ImportError:
        return report
    typed = document.Report.from_dict(report).to_dict()
    try:
        schema = importlib.import_module("auditor.report.schema")
    except ImportError:
        return typed
    schema.validate(typed)
    return typed


def _render(report: dict[str, Any], fmt: str) -> str | bytes:
    from auditor.report import RENDERERS

    if fmt == "terminal":
        from rich.console import Console

        from auditor.report import render_terminal

        width = 8 * len(json.dumps(report.get("audits") or report.get("measurements"))) + 400
        console = Console(file=io.StringIO(), width=min(width, 200_000), color_system=None, record=True)
        render_terminal(report, console)
        return console.export_text()
    if fmt not in RENDERERS:
        raise AssertionError(f"check_audit: unknown format {fmt!r}; expected one of {', '.join((*RENDERERS, 'terminal'))}")
    return RENDERERS[fmt](report)


def _default_formats() -> list[str]:
    from auditor.report.pdf import pdf_available

    return [*FORMATS, *(["pdf"] if pdf_available() else [])]


def check_rendering(audit: Any, result: AuditResult, ctx: AuditContext,
                    formats: Sequence[str] | None = None) -> dict[str, str | bytes]:
    """Render ``result`` in a minimal report in each of ``formats`` (default: every format,
    pdf when a browser is installed) and assert that each renders and shows the audit's title
    and summary. Returns the rendered outputs by format."""
    from auditor.report.write import canonical

    report = canonical(_typed(_minimal_report(audit, result, ctx)))
    rendered: dict[str, str | bytes] = {}
    for fmt in formats if formats is not None else _default_formats():
        try:
            output = _render(report, fmt)
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(
                f"{audit.name}'s result does not render as {fmt}: {type(exc).__name__}: {exc} (a result holds plain "
                "data only: numbers, strings, lists and dicts of them, in the parts AuditResult defines)"
            ) from exc
        rendered[fmt] = output
        if isinstance(output, bytes):
            assert output.startswith(b"%PDF"), f"{fmt} rendered {len(output)} bytes that are not a PDF"
            continue
        words = _words(output)
        for part, text in (("title", result.title), ("summary", result.summary)):
            if _words(text).strip():
                assert _words(text) in words, f"{audit.name}'s {part} {text!r} is missing from its {fmt} rendering"
    return rendered


def check_audit(
    audit: Any,
    ctx: AuditContext,
    options: Mapping[str, Any] | None = None,
    *,
    formats: Sequence[str] | None = None,
) -> AuditResult:
    """Assert that ``audit`` follows the contract on ``ctx``; return its result.

    Checks: it validates at registration; it builds with its declared defaults (updated by
    ``options``); it returns an AuditResult named after the audit; it does not run the model,
    through ``ctx.infer`` or ``ctx.model.module``, unless it declares the need ``model`` (an
    audit that perturbs inputs); its result round-trips through strict JSON; two runs under
    the same seed give identical results; the result renders in every report format of
    ``formats`` (default: json, html, md, junit, terminal, and pdf when a browser is
    installed) with its title and summary shown.

    Build ``ctx`` with :func:`auditor.testing.make_context` (arrays, no files) or take it from
    a real run (``auditor.run.pipeline.execute(...).context``).
    """
    validate_audit(audit, repr(type(audit).__name__))
    assert "energy" not in missing_needs(ctx, tuple(audit.needs)), (
        f"{audit.name} needs energy, which this context lacks: build it with "
        f"execute(config, {{{audit.name!r}: audit}}), which measures the run"
    )
    values = {o.name: o.default for o in audit.options}
    values.update(options or {})
    declares_model = "model" in tuple(audit.needs)
    counter = _CountingModel(ctx.model.module)
    original, original_infer = ctx.model.module, ctx.infer
    infer_counter = _CountingInfer(original_infer, audit.name)
    ctx.model.module = counter
    if original_infer is not None or not declares_model:
        ctx.infer = infer_counter
    try:
        first = audit.run(ctx, dict(values))
        second = audit.run(ctx, dict(values))
    finally:
        ctx.model.module = original
        ctx.infer = original_infer
    if not declares_model:
        assert infer_counter.calls == 0, _undeclared(audit.name, infer_counter.calls)
    assert isinstance(first, AuditResult), f"run() returned {type(first).__name__}, not AuditResult"
    assert first.audit == audit.name, f"result.audit is {first.audit!r}, expected {audit.name!r}"
    if not declares_model:
        assert counter.calls == 0, (
            f"{audit.name} called the model {counter.calls} time(s); read ctx.predictions "
            "(or declare the need 'model' if it must evaluate perturbed inputs)"
        )
    text = json.dumps(first.to_dict(), allow_nan=False, sort_keys=True)
    again = AuditResult.from_dict(json.loads(text)).to_dict()
    assert json.dumps(again, sort_keys=True) == text, "the result does not round-trip through JSON"
    assert json.dumps(second.to_dict(), sort_keys=True) == text, "two runs under one seed differ"
    check_rendering(audit, first, ctx, formats)
    return first
