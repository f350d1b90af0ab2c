"""Every registered audit, built-in or not, passes the plugin conformance checks."""

from __future__ import annotations

import pytest

from auditor.pipeline import RunConfig, execute
from auditor.registry import discover
from auditor.testing import check_audit

INSTALLED = discover()


@pytest.fixture(scope="module")
def contexts(breast_cancer, wine, diabetes):
    made = {}
    for name, trained in (("binary", breast_cancer), ("multiclass", wine), ("regression", diabetes)):
        cfg = RunConfig(model=trained.folder / "model.pt", data=trained.folder / "test.csv")
        made[name] = execute(cfg, {}).context
    return made


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_registered_audit_conforms(name, task, contexts):
    check_audit(INSTALLED[name], contexts[task])


def test_context_fields_match_their_documentation():
    import dataclasses

    from auditor import context

    doc = context.__doc__
    for cls in (context.AuditContext, context.Dataset, context.Task, context.Predictions):
        for field in dataclasses.fields(cls):
            assert f"``{field.name}``" in doc, f"{cls.__name__}.{field.name} is not documented"
