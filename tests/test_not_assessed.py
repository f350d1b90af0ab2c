"""A fourth outcome, "not assessed": an audit that ran but could not judge what it exists to
judge is never shown as a pass.

The issue's case: a wine model audited with ``--sensitive site`` where site B has 23 test rows,
fewer than fairness.min_group_size (30), so every disparity is undefined. The badge read PASS,
nothing reached "Needs a reviewer's attention" or Limitations, and ``fairness.findings = "no
error"`` passed. Now the status is "not assessed" everywhere, the summary says why and what the
audit could have detected, and it is a warning by default (configurable, and gateable).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import invoke, read_report
from scipy.optimize import brentq
from scipy.stats import norm

from auditor.ci.compare import compare_reports
from auditor.ci.gates import evaluate
from auditor.contract.result import STATUSES, AuditResult
from auditor.report import view
from auditor.run.runner import outcome, verdict
from auditor_plugins.fairness.audit import detectable_h, detectable_rates

B_ROWS = 23


def _with_site(wine, folder: Path) -> Path:
    """The wine test set (89 rows) with a 'site' column: the last 23 rows from site B."""
    frame = wine.frame.copy()
    frame["site"] = ["A"] * (len(frame) - B_ROWS) + ["B"] * B_ROWS
    frame["lab"] = [("X", "Y", "Z")[i % 3] for i in range(len(frame))]
    path = folder / "test_site.csv"
    frame.to_csv(path, index=False)
    return path


def _audit(wine, tmp_path: Path, *extra, sensitive: str = "site") -> tuple[object, Path]:
    out = tmp_path / "out"
    data = _with_site(wine, tmp_path)
    result = invoke(wine.folder / "model.pt", "--data", data, "--sensitive", sensitive, "--audits",
                    "metrics,fairness", "-o", "metrics.n_resamples=200", "-o", "fairness.n_resamples=200",
                    "--out", out, *extra)
    return result, out


@pytest.fixture(scope="module")
def site_run(wine, tmp_path_factory):
    folder = tmp_path_factory.mktemp("site_run")
    result, out = _audit(wine, folder, "--format", "json,md,html,junit")
    return result, out


def test_the_wine_model_with_a_small_site_is_not_assessed_and_says_why(site_run):
    result, out = site_run
    fairness = read_report(out)["audits"]["fairness"]
    assert fairness["status"] == "not assessed"
    summary = fairness["summary"]
    assert summary.startswith("Not assessed: no disparity could be computed: site has 1 group with at least 30 rows")
    assert f"B has {B_ROWS}" in summary and "fairness.min_group_size (30)" in summary
    assert "two-proportion z-test (alpha 0.05, power 0.8) between B (n=23) and A (n=66)" in summary
    assert any(n.startswith("Minimum data and power: site needs at least two groups") for n in fairness["notes"])


def test_not_assessed_is_a_warning_by_default(site_run):
    result, out = site_run
    report = read_report(out)
    assert result.exit_code == 0, result.output
    assert report["verdict"] == "warn" == report["outcome"]["verdict"]
    assert report["outcome"]["not_assessed"] == ["fairness"] and report["outcome"]["exit_code"] == 0
    assert "NOT ASSESSED" in result.stdout and "Verdict ! WARN" in result.stdout


def test_every_output_shows_it(site_run):
    _, out = site_run
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "❔ NOT ASSESSED" in markdown
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'class="badge status-not-assessed">? NOT ASSESSED' in html
    attention = html.split("Needs a reviewer's attention")[1].split("</ul>")[0]
    assert "Fairness: NOT ASSESSED (no disparity could be computed" in attention
    limitations = html.split('id="limitations"')[1]
    assert "Fairness ran but could not judge (not assessed)" in limitations
    case = next(c for c in ET.parse(out / "report.junit.xml").getroot().iter("testcase") if c.get("name") == "fairness")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("type") == "not-assessed"
    assert skipped.get("message").startswith("Not assessed: no disparity could be computed: site has 1 group")


def test_the_compliance_limitations_list_it(site_run):
    report = read_report(site_run[1])
    assert any(line.startswith("Fairness ran but could not judge (not assessed): no disparity could be computed")
               for line in view.limitations(report))


@pytest.mark.parametrize(("extra", "code", "verdict_"), [
    (("--fail-on", "warning"), 1, "fail"),
    (("--not-assessed", "fail"), 1, "fail"),
    (("--not-assessed", "pass"), 0, "pass"),
])
def test_the_exit_code_policy_is_configurable(wine, tmp_path, extra, code, verdict_):
    result, out = _audit(wine, tmp_path, "--format", "json", "-q", *extra)
    assert result.exit_code == code, result.output
    report = read_report(out)
    assert report["audits"]["fairness"]["status"] == "not assessed"  # shown, whatever it counts as
    assert report["verdict"] == verdict_ and report["outcome"]["exit_code"] == code


def test_a_policy_can_gate_on_it(wine, tmp_path):
    policy = tmp_path / "audit.toml"
    policy.write_text('[gates]\n"fairness.status" = \'!= "not assessed"\'\n"fairness.findings" = "no error"\n')
    result, out = _audit(wine, tmp_path, "--format", "json", "-q", "--policy", policy)
    assert result.exit_code == 1, result.output
    gates = {g["name"]: g for g in read_report(out)["gates"]["results"]}
    status_gate = next(g for name, g in gates.items() if name.startswith("fairness.status"))
    assert not status_gate["passed"] and status_gate["value"] == "not assessed"
    findings_gate = next(g for name, g in gates.items() if name.startswith("fairness.findings"))
    assert not findings_gate["passed"] and "was not assessed" in findings_gate["message"]


def test_every_column_over_the_group_limit_is_not_assessed(wine, tmp_path):
    result, out = _audit(wine, tmp_path, "--format", "json", "-q", "-o", "fairness.max_groups=2", sensitive="lab")
    assert result.exit_code == 0, result.output
    fairness = read_report(out)["audits"]["fairness"]
    assert fairness["status"] == "not assessed"
    assert "every sensitive column has more than fairness.max_groups (2)" in fairness["summary"]


def _power_by_root(n1: int, n2: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Cohen's h at which a two-sided two-proportion z-test reaches ``power``: both tails."""
    se = math.sqrt(1 / n1 + 1 / n2)
    z = norm.ppf(1 - alpha / 2)
    return brentq(lambda h: norm.cdf(h / se - z) + norm.cdf(-h / se - z) - power, 1e-9, 10)


@pytest.mark.parametrize(("n1", "n2"), [(23, 66), (30, 30), (100, 4000), (12, 12)])
def test_the_detectable_effect_matches_the_power_equation(n1, n2):
    assert detectable_h(n1, n2) == pytest.approx(_power_by_root(n1, n2), rel=1e-4)


def test_the_detectable_effect_matches_statsmodels_where_installed():
    power = pytest.importorskip("statsmodels.stats.power")
    h = power.NormalIndPower().solve_power(nobs1=23, ratio=66 / 23, alpha=0.05, power=0.8)
    assert detectable_h(23, 66) == pytest.approx(h, rel=1e-4)


def test_detectable_rates_are_h_apart_on_the_arcsine_scale():
    low, high = detectable_rates(0.5, 0.4)
    assert 2 * math.asin(math.sqrt(high)) - 2 * math.asin(math.sqrt(low)) == pytest.approx(0.5)
    assert low < 0.4 < high
    low, high = detectable_rates(0.5, 0.01)  # at the edge, the gap opens upwards
    assert low == 0.0 and 2 * math.asin(math.sqrt(high)) == pytest.approx(0.5)


def test_the_status_is_one_of_the_statuses_and_round_trips():
    assert "not assessed" in STATUSES
    result = AuditResult.not_assessed("x", "X", "Not assessed: too few rows.")
    assert AuditResult.from_dict(result.to_dict()).status == "not assessed"
    assert verdict({"x": result}) == "warn"
    assert verdict({"x": result}, not_assessed="pass") == "pass"
    assert verdict({"x": result}, not_assessed="fail") == "fail"


def test_outcome_counts_it_as_configured():
    audits = {"fairness": {"status": "not assessed"}, "metrics": {"status": "pass"}}
    for level, (final, code) in {"warn": ("warn", 0), "pass": ("pass", 0)}.items():
        gates = evaluate({"audits": audits}, None, None, fail_on="error", baseline_path=None, not_assessed=level)
        assert gates["passed"]
        found = outcome(audits, gates, not_assessed=level)
        assert (found["verdict"], found["exit_code"]) == (final, code)
    gates = evaluate({"audits": audits}, None, None, fail_on="error", baseline_path=None, not_assessed="fail")
    assert not gates["passed"]
    found = outcome(audits, gates, not_assessed="fail")
    assert (found["verdict"], found["exit_code"]) == ("fail", 1)
    assert "fairness" in found["failed_gates"][0] or "no error findings" in found["failed_gates"][0]


def test_compare_calls_pass_to_not_assessed_worse():
    before = {"audits": {"fairness": {"status": "pass", "metrics": {}}}}
    after = {"audits": {"fairness": {"status": "not assessed", "metrics": {}}}}
    row = next(r for r in compare_reports(before, after) if r["kind"] == "status")
    assert (row["a"], row["b"], row["change"]) == ("pass", "not assessed", "worse")
    row = next(r for r in compare_reports(after, before) if r["kind"] == "status")
    assert row["change"] == "better"


def test_groups_too_small_in_the_fairness_audit_itself():
    """The same rule straight from the audit, with groups of 20 and 24 rows (fewer than 30)."""
    from test_fairness_audit import AUDIT, DEFAULTS, two_groups

    result = AUDIT.run(two_groups((20, 0.5, 0.5), (24, 0.5, 0.5)), DEFAULTS)
    assert result.status == "not assessed"
    assert "a disparity needs two groups of at least fairness.min_group_size (30) rows" in result.summary
    h = _power_by_root(20, 24)
    low, high = detectable_rates(h, 0.5)
    assert f"would detect only a selection-rate difference of {high - low:.2f} or more" in result.summary


def test_a_history_too_short_for_a_verdict_is_not_assessed():
    """Two epochs cannot show overfitting (the audit needs 4): not assessed, and it says why."""
    from test_overfitting_audit import AUDIT as OVERFITTING
    from test_overfitting_audit import DEFAULTS as OVERFITTING_DEFAULTS
    from test_overfitting_audit import context, history

    result = OVERFITTING.run(context(history=history([0.7, 0.5], [0.69, 0.45])), OVERFITTING_DEFAULTS)
    assert result.status == "not assessed"
    assert result.summary.startswith("Not assessed: history too short for a verdict")
    assert "A verdict needs at least 4 epochs with a monitored value" in result.summary
    assert result.metrics["best_epoch"].value == 2  # what it could measure is still reported


def test_a_short_history_with_training_data_is_still_judged_on_the_data():
    """The train-vs-test gap judges something, so the audit is assessed."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from test_overfitting_audit import AUDIT as OVERFITTING
    from test_overfitting_audit import DEFAULTS as OVERFITTING_DEFAULTS
    from test_overfitting_audit import context, history

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=0.5, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    ctx = context((model, X_test, y_test), (model, X_train, y_train), history=history([0.7, 0.5], [0.69, 0.45]))
    result = OVERFITTING.run(ctx, {**OVERFITTING_DEFAULTS, "n_resamples": 200})
    assert result.status != "not assessed"
