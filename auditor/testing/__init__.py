"""A kit for writing and testing audit plugins, like scikit-learn's ``check_estimator``.

- :func:`make_context` builds a real :class:`~auditor.contract.context.AuditContext` from
  arrays (the target, the predictions, features, sensitive groups, an optional model), with
  no files, checked the way the loader checks a file;
- :func:`check_audit` runs an audit on a context and asserts the plugin contract (no model
  calls unless it declares ``model``, deterministic, JSON-safe, renders in every format);
- :mod:`auditor.testing.pytest_plugin` (installed with auditor, loaded by pytest through the
  ``pytest11`` entry point) gives the fixtures ``audit_context``, ``binary_context`` and
  ``check_audit``.

A plugin author's test::

    from auditor.testing import check_audit, make_context

    def test_my_audit():
        ctx = make_context(y=[0, 1, 1, 0], proba=[0.2, 0.9, 0.4, 0.1], groups={"sex": ["f", "m", "f", "m"]})
        result = check_audit(MyAudit(), ctx)
        assert result.metrics["my_metric"].value == 0.5

Importing this package does not import torch: a context with a model imports it when built.
"""

from __future__ import annotations

from auditor.testing.check import FORMATS, check_audit, check_rendering
from auditor.testing.context import make_context

__all__ = ["FORMATS", "check_audit", "check_rendering", "make_context"]
