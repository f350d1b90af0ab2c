"""The worked CI example in examples/ci/, run end to end on the bundled demo model.

A gate that passes, a gate that fails, and a regression caught against a baseline; JUnit
output for the CI's test view, the GitHub step summary and annotations.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import invoke, read_report

from auditor.loading.bundled import demo_files

EXAMPLE = Path(__file__).parent.parent / "examples" / "ci"


def audit_candidate(model: Path, out: Path, *extra: object) -> object:
    demo = demo_files()
    return invoke(model, "--data", demo.data, "--history", demo.history, "--train-data", demo.train_data,
                  "--out", out, "-q", *extra)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline")
    assert invoke("demo", "-q", "--format", "json", "--out", out).exit_code == 0
    return out / "report.json"


@pytest.fixture(scope="module")
def weaker_model(tmp_path_factory) -> Path:
    """A real but weaker candidate: logistic regression on three of the demo's features."""
    demo = demo_files()
    train = pd.read_csv(demo.train_data)
    features = ["age", "education-num", "hours-per-week"]
    X = torch.tensor(train[features].to_numpy(np.float32))
    y = torch.tensor((train["income"] == ">50K").to_numpy(np.float32))[:, None]
    mean, std = X.mean(0), X.std(0)
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 1)
    optimiser = torch.optim.Adam(linear.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(linear((X - mean) / std), y).backward()
        optimiser.step()

    class Weaker(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.linear = linear

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear((x - self.mean) / self.std)

    path = tmp_path_factory.mktemp("weaker") / "weaker.pt"
    meta = {"feature_names": features, "class_names": ["<=50K", ">50K"], "target": "income", "task": "binary"}
    torch.jit.save(torch.jit.script(Weaker().eval()), str(path), _extra_files={"auditor.json": json.dumps(meta)})
    return path


def results_by_name(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["gates"]["results"]}


def test_the_demo_model_passes_the_team_policy(tmp_path, baseline):
    out = tmp_path / "out"
    result = audit_candidate(demo_files().model, out, "--policy", EXAMPLE / "audit.toml", "--baseline", baseline,
                             "--fail-on", "never", "--format", "json,junit")
    assert result.exit_code == 0, result.stderr + result.stdout
    gates = read_report(out)["gates"]
    assert gates["passed"] and all(r["passed"] for r in gates["results"])
    assert {r["kind"] for r in gates["results"]} == {"gate", "regression", "findings"}


def test_the_four_fifths_gate_fails_for_the_demo_model(tmp_path):
    out = tmp_path / "out"
    result = audit_candidate(demo_files().model, out, "--policy", EXAMPLE / "fairness.toml", "--format", "json,junit")
    assert result.exit_code == 1
    failed = [r for r in read_report(out)["gates"]["results"] if not r["passed"]]
    assert any(r["path"] == "fairness.sex.demographic_parity_ratio" for r in failed)
    suite = ET.parse(out / "report.junit.xml").getroot()
    failures = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert any("fairness.sex.demographic_parity_ratio" in name for name in failures)


def test_a_weaker_model_is_caught_as_a_regression(tmp_path, baseline, weaker_model, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = tmp_path / "out"
    result = audit_candidate(weaker_model, out, "--policy", EXAMPLE / "audit.toml", "--baseline", baseline,
                             "--fail-on", "never", "--format", "json")
    assert result.exit_code == 1, result.stderr
    regression = next(r for r in read_report(out)["gates"]["results"]
                      if r["kind"] == "regression" and r["path"] == "metrics.roc_auc")
    assert not regression["passed"] and regression["noise"] == "beyond noise"
    assert "::error title=" in result.stdout and "metrics.roc_auc" in result.stdout
    assert "**Gates**" in summary.read_text() and "metrics.roc\\_auc" in summary.read_text()


def test_compare_shows_what_moved(tmp_path, baseline, weaker_model):
    out = tmp_path / "out"
    audit_candidate(weaker_model, out, "--format", "json", "--fail-on", "never")
    result = invoke("compare", baseline, out / "report.json", "--markdown")
    assert result.exit_code == 0, result.stderr
    assert "ROC-AUC" in result.stdout and "worse" in result.stdout


def test_a_baseline_alone_checks_every_headline_metric(tmp_path, baseline, weaker_model):
    """Without a [regression] table, headline metrics may worsen by at most 0.01."""
    out = tmp_path / "out"
    result = audit_candidate(weaker_model, out, "--baseline", baseline, "--fail-on", "never", "--format", "json")
    assert result.exit_code == 1, result.stderr
    regressions = {r["path"]: r for r in read_report(out)["gates"]["results"] if r["kind"] == "regression"}
    assert not regressions["metrics.roc_auc"]["passed"]
    assert regressions["metrics.roc_auc"]["rule"] == "max_drop 0.01"


def test_compare_in_the_terminal_lists_status_and_metric_changes(tmp_path, baseline, weaker_model):
    out = tmp_path / "out"
    audit_candidate(weaker_model, out, "--format", "json", "--fail-on", "never")
    result = invoke("compare", baseline, out / "report.json")
    assert result.exit_code == 0, result.stderr
    assert "status" in result.stdout and "ROC-AUC" in result.stdout
