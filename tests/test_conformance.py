"""Every registered audit, built-in or not, passes the plugin conformance checks."""

from __future__ import annotations

import pytest

from auditor.loading.bundled import demo_files
from auditor.run.pipeline import RunConfig, execute
from auditor.run.registry import discover
from auditor.testing import FORMATS, check_audit

INSTALLED = discover()


@pytest.fixture(scope="module")
def contexts(compas, wine, diabetes):
    """Real models with real sensitive columns, measured with codecarbon, so that every audit
    runs rather than skips:
    COMPAS by race and sex; wine by alcohol (cut at quartiles); diabetes by sex, which that
    model also takes as a feature, so its features are listed (sensitive columns are otherwise
    never fed to a model). Every context also has a training history and training data."""
    cases = {
        "binary": (compas.folder / "rule.pt", compas.folder / "compas.csv", ["race", "sex"], None),
        "multiclass": (wine.folder / "model.pt", wine.folder / "test.csv", ["alcohol"], None),
        "regression": (diabetes.folder / "model.pt", diabetes.folder / "test.csv", ["sex"], diabetes.features),
    }
    history = demo_files().history  # a real recorded training history
    measuring = {n: a for n, a in INSTALLED.items() if "energy" in a.needs}  # so the run is measured
    return {
        name: execute(
            RunConfig(model=model, data=data, sensitive=sensitive, features=features, history=history, train_data=data),
            measuring,
        ).context
        for name, (model, data, sensitive, features) in cases.items()
    }


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_registered_audit_conforms(name, task, contexts):
    # Every format; the PDF (report.html printed by Chromium, ~1 s each) for binary tasks only.
    formats = None if task == "binary" else list(FORMATS)
    result = check_audit(INSTALLED[name], contexts[task], formats=formats)
    assert result.status != "skipped", result.summary


def test_context_fields_match_their_documentation():
    import dataclasses

    from auditor.contract import context

    doc = context.__doc__
    for cls in (context.AuditContext, context.Dataset, context.Task, context.Predictions):
        for field in dataclasses.fields(cls):
            assert f"``{field.name}``" in doc, f"{cls.__name__}.{field.name} is not documented"
