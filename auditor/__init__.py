"""auditor: audit a trained PyTorch model for performance, fairness, explainability and cost.

From Python: ``auditor.audit(model, data, **options) -> Outcome`` (see :mod:`auditor.api`);
``Outcome.report`` is a :class:`~auditor.report.document.Report`. Those names are loaded on
first use, so ``import auditor`` stays cheap (no torch, no pandas) for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from auditor.api import Outcome, audit
    from auditor.report.document import Report

__all__ = ["Outcome", "Report", "__version__", "audit"]

_LAZY = {"audit": "auditor.api", "Outcome": "auditor.api", "Report": "auditor.report.document"}


def __getattr__(name: str) -> Any:
    """``auditor.audit``, ``auditor.Outcome`` and ``auditor.Report``, imported when first used."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'auditor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
