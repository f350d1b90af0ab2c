"""Gates for CI: the policy's rule language, its checks before and after the run, regressions
against a baseline report, the fail_on findings rule, and the ``gates`` section's shape."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.ci.gates import evaluate, load_baseline, load_policy
from auditor.ci.policy import policy_from_tables
from auditor.cli import cli
from auditor.contract.errors import UsageError

RESULT_KEYS = {
    "name", "kind", "passed", "message", "path", "audit", "metric", "field", "rule", "value",
    "threshold", "baseline", "delta", "tolerance", "noise", "noisy", "actual", "expected",
}


# --- builders ---------------------------------------------------------------------------

def metric(value: Any, ci: list[float] | None = None, *, label: str = "", direction: str = "higher") -> dict:
    return {"value": value, "ci": ci, "ci_method": None, "label": label, "direction": direction,
            "headline": False, "description": ""}


def finding(severity: str, code: str = "code") -> dict:
    return {"severity": severity, "code": code, "message": f"a {severity} finding"}


def audit(status: str = "pass", metrics: dict | None = None, findings: list | None = None, summary: str = "") -> dict:
    return {"status": status, "summary": summary, "metrics": metrics or {}, "findings": findings or []}


def report(**audits: dict) -> dict:
    return {"schema_version": "1.0", "audits": audits}


def sample() -> dict:
    return report(
        metrics=audit(metrics={
            "roc_auc": metric(0.905, [0.899, 0.911], label="ROC-AUC"),
            "log_loss": metric(0.33, [0.32, 0.34], label="Log loss", direction="lower"),
            "baseline_accuracy": metric(0.75, label="Majority-class accuracy", direction="none"),
        }),
        fairness=audit("fail", metrics={
            "demographic_parity_ratio": metric(0.14, [0.07, 0.19], label="Demographic parity ratio (worst)"),
            "sex.demographic_parity_ratio": metric(0.35, [0.32, 0.38], label="Demographic parity ratio (sex)"),
            "sex*race.demographic_parity_ratio": metric(0.145, [0.07, 0.194], label="Demographic parity ratio (sex × race)"),
        }, findings=[finding("error", "four-fifths-rule"), finding("error", "four-fifths-rule"),
                     finding("warning", "equalized-odds-difference"), finding("info", "small-groups")]),
        overfitting=audit(metrics={"generalization_gap": metric(0.028, label="Generalisation gap", direction="lower")},
                          findings=[finding("info", "healthy-training")]),
    )


def policy(gates: dict | None = None, regression: dict | None = None):
    return policy_from_tables(gates, regression, source="audit.toml")


def run_gates(gates: dict | None = None, regression: dict | None = None, rep: dict | None = None,
              baseline: dict | None = None, fail_on: str = "never") -> list[dict]:
    rep = sample() if rep is None else rep
    section = evaluate(rep, policy(gates, regression), baseline, fail_on=fail_on, baseline_path=None)
    return section["results"]


def one(path: str, rule: str, rep: dict | None = None) -> dict:
    return run_gates({path: rule}, rep=rep)[0]


# --- rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, passed", [
    (">= 0.9", True), (">= 0.91", False), (">= 0.905", True),
    ("> 0.9", True), ("> 0.905", False),
    ("<= 0.95", True), ("<= 0.9", False),
    ("< 0.91", True), ("< 0.905", False),
    ("== 0.905", True), ("== 0.9", False),
    ("!= 0.9", True), ("!= 0.905", False),
    ("between 0.9 and 0.91", True), ("between 0.905 and 0.905", True), ("between 0.91 and 1", False),
    ("  >=0.9 ", True), ("BETWEEN 0.9 AND 1", True), (">= 9e-1", True), (">= .9", True), ("> -1", True),
])
def test_every_numeric_rule_passes_and_fails_on_the_value(rule, passed):
    result = one("metrics.roc_auc", rule)
    assert result["passed"] is passed, result["message"]
    assert result["kind"] == "gate"
    assert result["value"] == result["actual"] == 0.905


def test_threshold_messages_say_the_figure_the_bound_and_the_interval():
    assert one("metrics.roc_auc", ">= 0.91")["message"] == (
        "ROC-AUC 0.905 is below the minimum 0.91 (interval 0.899 to 0.911).")
    assert one("metrics.roc_auc", "between 0.8 and 0.9")["message"].startswith("ROC-AUC 0.905 is outside [0.8, 0.9]")


def test_a_value_that_rounds_to_the_threshold_is_shown_with_more_digits():
    rep = report(metrics=audit(metrics={"roc_auc": metric(0.8999, label="ROC-AUC")}))
    assert one("metrics.roc_auc", ">= 0.9", rep)["message"] == "ROC-AUC 0.8999 is below the minimum 0.9."


@pytest.mark.parametrize("status, rule, passed", [
    ("pass", "== pass", True), ("warn", "== pass", False),
    ("warn", "!= fail", True), ("fail", "!= fail", False),
    ("warn", "in [pass, warn]", True), ("fail", "in [pass, warn]", False),
    ("pass", "in ['pass', \"warn\"]", True), ("skipped", "in [pass, skipped]", True),
    ("pass", "== PASS", True),
])
def test_status_rules(status, rule, passed):
    result = one("metrics.status", rule, report(metrics=audit(status)))
    assert (result["passed"], result["kind"], result["field"], result["value"]) == (passed, "gate", "status", status)


@pytest.mark.parametrize("severities, rule, passed, count", [
    ([], "no error", True, 0), (["info"], "no warning", True, 0),
    (["warning"], "no error", True, 0), (["warning"], "no warning", False, 1),
    (["error", "info"], "no error", False, 1), (["error", "warning"], "no warnings", False, 2),
    (["error"], "No Errors", False, 1),
])
def test_findings_rules(severities, rule, passed, count):
    rep = report(fairness=audit(findings=[finding(s) for s in severities]))
    result = one("fairness.findings", rule, rep)
    assert (result["passed"], result["kind"], result["value"]) == (passed, "gate", count)


def test_findings_message_counts_codes():
    assert one("fairness.findings", "no error")["message"] == (
        "fairness has 2 error findings (four-fifths-rule ×2); the gate allows none.")


# --- paths --------------------------------------------------------------------------------

@pytest.mark.parametrize("path, key, field, value", [
    ("metrics.roc_auc", "roc_auc", "value", 0.905),
    ("metrics.roc_auc.value", "roc_auc", "value", 0.905),
    ("metrics.roc_auc.ci_low", "roc_auc", "ci_low", 0.899),
    ("metrics.roc_auc.ci_high", "roc_auc", "ci_high", 0.911),
    ("fairness.demographic_parity_ratio", "demographic_parity_ratio", "value", 0.14),
    ("fairness.sex.demographic_parity_ratio", "sex.demographic_parity_ratio", "value", 0.35),
    ("fairness.sex.demographic_parity_ratio.ci_low", "sex.demographic_parity_ratio", "ci_low", 0.32),
    ("fairness.sex*race.demographic_parity_ratio", "sex*race.demographic_parity_ratio", "value", 0.145),
    ("fairness.sex*race.demographic_parity_ratio.ci_high", "sex*race.demographic_parity_ratio", "ci_high", 0.194),
])
def test_every_path_form_resolves_against_the_reports_keys(path, key, field, value):
    result = one(path, "> -1")
    assert (result["audit"], result["metric"], result["field"], result["value"]) == (path.split(".")[0], key, field, value)


def test_a_key_that_itself_ends_in_a_field_name_wins_as_the_longest_match():
    rep = report(custom=audit(metrics={"a": metric(1.0, [0.0, 2.0]), "a.ci_low": metric(5.0)}))
    assert (one("custom.a.ci_low", "> -1", rep)["metric"], one("custom.a.ci_low", "> -1", rep)["value"]) == ("a.ci_low", 5.0)
    assert one("custom.a.ci_high", "> -1", rep)["value"] == 2.0


def test_unquoted_toml_keys_are_joined_back_into_paths(tmp_path):
    file = tmp_path / "audit.toml"
    file.write_text('[gates]\nmetrics.roc_auc = ">= 0.9"\nfairness.sex.demographic_parity_ratio = ">= 0.3"\n'
                    '[regression]\nbaseline = "main/report.json"\nmetrics.roc_auc = { max_drop = 0.01 }\n')
    loaded = load_policy(file, {})
    assert [g.path for g in loaded.gates] == ["metrics.roc_auc", "fairness.sex.demographic_parity_ratio"]
    assert [(r.path, r.bound, r.tolerance) for r in loaded.regressions] == [("metrics.roc_auc", "max_drop", 0.01)]
    assert loaded.baseline == tmp_path / "main" / "report.json"  # relative to the policy file
    assert loaded.source == "audit.toml"


# --- loading the policy --------------------------------------------------------------------

def test_policy_from_pyproject_settings():
    loaded = load_policy(None, {"target": "y", "gates": {"metrics.roc_auc": ">= 0.9"},
                                "regression": {"baseline": "b.json", "metrics.log_loss": {"max_rise": 0.02}}})
    assert loaded.source == "[tool.auditor]" and loaded.baseline == Path("b.json")
    assert [g.name for g in loaded.gates] == ["metrics.roc_auc >= 0.9"]
    assert load_policy(None, {"target": "y", "metrics": {"n_resamples": 10}}) is None


def test_policy_file_may_use_tool_auditor_tables(tmp_path):
    file = tmp_path / "pyproject.toml"
    file.write_text('[tool.auditor.gates]\n"metrics.status" = "== pass"\n')
    assert [g.name for g in load_policy(file, {}).gates] == ["metrics.status == pass"]


def test_policy_file_without_tables_is_a_usage_error(tmp_path):
    file = tmp_path / "audit.toml"
    file.write_text('target = "y"\n')
    with pytest.raises(UsageError, match=r"has no \[gates\] or \[regression\] table"):
        load_policy(file, {})


@pytest.mark.parametrize("path, written, fragments", [
    ("metrics.roc_auc", ">= high", ["metrics.roc_auc", "'>= high'", "'between a and b'"]),
    ("metrics.roc_auc", "=> 0.9", ["'=> 0.9'", "'>= x'"]),
    ("metrics.roc_auc", "== pass", ["'== pass'", "<audit>.status"]),
    ("metrics.roc_auc", ">= nan", ["'>= nan'"]),
    ("metrics.roc_auc", "between 1 and 0.5", ["bounds reversed", "between 0.5 and 1"]),
    ("metrics.roc_auc", 0.9, ["as a string", "0.9"]),
    ("metrics.status", "== passed", ["metrics.status", "'== passed'", "in [pass, warn]"]),
    ("metrics.status", ">= 0.9", ["an audit status", "'!= fail'"]),
    ("metrics.status", "in []", ["'in []'"]),
    ("fairness.findings", "no info", ["fairness.findings", "'no info'", "'no error' or 'no warning'"]),
    ("metrics", ">= 0.9", ['"metrics" is not a path', "<audit>.status"]),
    ("metrics..roc_auc", ">= 0.9", ["is not a path"]),
])
def test_malformed_rules_are_usage_errors_naming_path_text_and_forms(path, written, fragments):
    with pytest.raises(UsageError) as caught:
        policy({path: written})
    text = str(caught.value)
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("entry, fragment", [
    ({"max_drop": -0.1}, "non-negative number"),
    ({"max_drop": "0.01"}, "non-negative number"),
    ({"max_drop": 0.01, "max_rise": 0.01}, "one of max_drop or max_rise"),
    ({"min": 1}, "one of max_drop or max_rise"),
    (0.01, "one of max_drop or max_rise"),
])
def test_malformed_regression_entries(entry, fragment):
    with pytest.raises(UsageError, match=fragment):
        policy(regression={"metrics.roc_auc": entry})


def test_regression_on_a_status_and_a_non_string_baseline_are_usage_errors():
    with pytest.raises(UsageError, match="only metrics can regress"):
        policy(regression={"metrics.status": {"max_drop": 0}})
    with pytest.raises(UsageError, match="baseline in \\[regression\\]"):
        policy(regression={"baseline": 3})


def test_unknown_audit_is_caught_before_the_run_listing_the_installed():
    with pytest.raises(UsageError) as caught:
        policy({"fairnes.status": "== pass"}).check_syntax(["metrics", "fairness"])
    assert "fairnes.status" in str(caught.value) and "Installed audits: fairness, metrics" in str(caught.value)
    with pytest.raises(UsageError, match="'carbon', which is not installed"):
        policy(regression={"carbon.energy_kwh": {"max_rise": 1}}).check_syntax({"metrics": object()})
    policy({"metrics.anything": ">= 0"}).check_syntax(["metrics"])  # metric keys wait for the report


def test_regressions_without_a_baseline_are_a_usage_error():
    regressions = policy(regression={"metrics.roc_auc": {"max_drop": 0.01}})
    regressions.check_syntax(["metrics"])  # the CLI may still get --baseline
    with pytest.raises(UsageError, match="no baseline"):
        regressions.check_syntax(["metrics"], baseline_given=False)
    with pytest.raises(UsageError, match="no baseline"):
        evaluate(sample(), regressions, None, fail_on="error", baseline_path=None)


# --- after the run ---------------------------------------------------------------------------

def test_an_unknown_metric_after_the_run_lists_the_audits_valid_paths():
    with pytest.raises(UsageError) as caught:
        run_gates({"metrics.roc_auk": ">= 0.9", "fairness.sex.dp_ratio": ">= 0.8"})
    text = str(caught.value)
    for fragment in ['"metrics.roc_auk"', '"fairness.sex.dp_ratio"', "metrics.roc_auc", "metrics.status",
                     "metrics.findings", "fairness.sex*race.demographic_parity_ratio", ".ci_low"]:
        assert fragment in text, text
    with pytest.raises(UsageError, match="metrics.roc_auc"):
        run_gates(regression={"metrics.roc_auk": {"max_drop": 0.1}}, baseline=sample())


SKIPPED = audit("skipped", summary="Skipped: needs sensitive columns (--sensitive).")
ERRORED = audit("error", summary="The audit raised an error: ValueError: boom",
                findings=[finding("error", "audit-error")])


@pytest.mark.parametrize("path, rule", [
    ("fairness.demographic_parity_ratio", ">= 0.8"),
    ("fairness.sex.demographic_parity_ratio.ci_low", ">= 0.8"),
    ("fairness.findings", "no error"),
    ("fairness.status", "== pass"),
])
def test_a_gate_on_a_skipped_audit_fails_with_the_reason(path, rule):
    result = one(path, rule, report(metrics=sample()["audits"]["metrics"], fairness=SKIPPED))
    assert result["passed"] is False
    assert "fairness was skipped: needs sensitive columns (--sensitive)" in result["message"]


def test_a_status_gate_may_allow_skipped():
    assert one("fairness.status", "in [pass, skipped]", report(fairness=SKIPPED))["passed"] is True


def test_gates_on_an_errored_or_absent_audit_fail():
    errored = one("fairness.sex.demographic_parity_ratio", ">= 0.8", report(fairness=ERRORED))
    assert not errored["passed"] and "fairness ended in error: The audit raised an error: ValueError: boom" in errored["message"]
    absent = one("fairness.demographic_parity_ratio", ">= 0.8", report(metrics=audit()))
    assert not absent["passed"] and "fairness did not run" in absent["message"]
    regression = run_gates(regression={"fairness.demographic_parity_ratio": {"max_drop": 0.1}},
                           rep=report(fairness=SKIPPED), baseline=sample())[0]
    assert not regression["passed"] and "fairness was skipped" in regression["message"]


def test_an_undefined_metric_fails_the_gate():
    rep = report(metrics=audit(metrics={"mcc": metric(None, label="MCC"), "f1": metric(0.7, label="F1")}))
    undefined = one("metrics.mcc", ">= 0", rep)
    assert (undefined["passed"], undefined["value"]) == (False, None)
    assert undefined["message"] == "MCC is undefined in this run, so the gate cannot pass."
    no_interval = one("metrics.f1.ci_low", ">= 0", rep)
    assert not no_interval["passed"] and "F1 interval lower bound has no interval" in no_interval["message"]
    assert not one("metrics.mcc", "!= 1", rep)["passed"]


# --- regressions ---------------------------------------------------------------------------

def pair(key: str, before: float | None, after: float | None, ci_before=None, ci_after=None, *,
         label: str = "ROC-AUC", direction: str = "higher") -> tuple[dict, dict]:
    return (report(metrics=audit(metrics={key: metric(before, ci_before, label=label, direction=direction)})),
            report(metrics=audit(metrics={key: metric(after, ci_after, label=label, direction=direction)})))


@pytest.mark.parametrize("bound, before, after, cis, passed, noise, message", [
    ("max_drop", 0.905, 0.893, ([0.9, 0.91], [0.888, 0.898]), False, "beyond noise",
     "ROC-AUC fell 0.012 from 0.905 to 0.893, beyond the 0.01 tolerance; the intervals do not overlap: beyond noise."),
    ("max_drop", 0.905, 0.893, ([0.89, 0.92], [0.88, 0.905]), False, "within noise",
     "ROC-AUC fell 0.012 from 0.905 to 0.893, beyond the 0.01 tolerance; the intervals overlap: within noise."),
    ("max_drop", 0.905, 0.9, ([0.89, 0.92], [0.88, 0.91]), True, "within noise",
     "ROC-AUC fell 0.005 from 0.905 to 0.900, within the 0.01 tolerance; the intervals overlap: within noise."),
    ("max_drop", 0.905, 0.895, (None, None), True, None,
     "ROC-AUC fell 0.010 from 0.905 to 0.895, within the 0.01 tolerance."),
    ("max_drop", 0.905, 0.92, (None, [0.91, 0.93]), True, None, "ROC-AUC rose 0.015 from 0.905 to 0.920."),
    ("max_drop", 0.905, 0.905, (None, None), True, None, "ROC-AUC is unchanged at 0.905."),
    ("max_rise", 0.905, 0.93, (None, None), False, None,
     "ROC-AUC rose 0.025 from 0.905 to 0.930, beyond the 0.01 tolerance."),
    ("max_rise", 0.905, 0.91, (None, None), True, None,
     "ROC-AUC rose 0.005 from 0.905 to 0.910, within the 0.01 tolerance."),
    ("max_rise", 0.905, 0.8, (None, None), True, None, "ROC-AUC fell 0.105 from 0.905 to 0.800."),
])
def test_regressions_within_and_beyond_tolerance_and_noise(bound, before, after, cis, passed, noise, message):
    base, current = pair("roc_auc", before, after, *cis)
    result = run_gates(regression={"metrics.roc_auc": {bound: 0.01}}, rep=current, baseline=base)[0]
    assert (result["passed"], result["noise"], result["message"]) == (passed, noise, message)
    assert result["kind"] == "regression" and result["name"] == f"metrics.roc_auc vs baseline ({bound} 0.01)"
    assert result["baseline"] == result["expected"] == before and result["value"] == after and result["tolerance"] == 0.01
    assert result["delta"] == pytest.approx(after - before)
    assert result["threshold"] == pytest.approx(before - 0.01 if bound == "max_drop" else before + 0.01)


def test_a_regression_on_an_interval_bound_has_no_noise_verdict():
    base, current = pair("roc_auc", 0.9, 0.9, [0.8, 0.95], [0.85, 0.95])
    result = run_gates(regression={"metrics.roc_auc.ci_low": {"max_drop": 0.01}}, rep=current, baseline=base)[0]
    assert (result["passed"], result["field"], result["noise"]) == (True, "ci_low", None)


@pytest.mark.parametrize("baseline, fragment", [
    (report(metrics=audit(metrics={"f1": metric(0.7)})), "no such metric in its metrics audit"),
    (report(fairness=audit()), "no metrics audit"),
])
def test_a_path_missing_in_the_baseline_fails(baseline, fragment):
    result = run_gates(regression={"metrics.roc_auc": {"max_drop": 0.01}}, baseline=baseline)[0]
    assert not result["passed"]
    assert result["message"] == f'"metrics.roc_auc" is not in the baseline ({fragment}), so the regression cannot be checked.'


def test_an_undefined_baseline_value_fails():
    base, current = pair("roc_auc", None, 0.9)
    result = run_gates(regression={"metrics.roc_auc": {"max_drop": 0.01}}, rep=current, baseline=base)[0]
    assert not result["passed"] and "undefined in the baseline" in result["message"]


def test_baseline_of_an_older_schema_or_not_a_report_is_refused_clearly(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": "0.9", "audits": {}}))
    with pytest.raises(UsageError) as caught:
        load_baseline(old)
    assert "The baseline cannot be used" in str(caught.value)
    assert "schema version 0.9; this auditor reads 1.x" in str(caught.value)
    other = tmp_path / "package.json"
    other.write_text(json.dumps({"name": "left-pad"}))
    with pytest.raises(UsageError, match="is not an auditor report: expected an object with schema_version"):
        load_baseline(other)
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello")
    with pytest.raises(UsageError, match="is not JSON"):
        load_baseline(garbage)


# --- fail_on ---------------------------------------------------------------------------------

@pytest.mark.parametrize("audits, fail_on, passed", [
    ({"a": audit("pass", findings=[finding("info")])}, "error", True),
    ({"a": audit("fail", findings=[finding("error")])}, "error", False),
    ({"a": audit("fail")}, "error", False),  # status fail alone
    ({"a": audit("pass", findings=[finding("error")])}, "error", False),  # an error finding alone
    ({"a": audit("warn", findings=[finding("warning")])}, "error", True),
    ({"a": audit("warn", findings=[finding("warning")])}, "warning", False),
    ({"a": audit("warn")}, "warning", False),
    ({"a": audit("fail", findings=[finding("error")])}, "never", True),
    ({"a": ERRORED}, "error", True),  # a broken audit is the CLI's exit 3, not a gate
    ({"a": ERRORED, "b": SKIPPED}, "warning", True),
])
def test_fail_on_levels(audits, fail_on, passed):
    section = evaluate(report(**audits), None, None, fail_on=fail_on, baseline_path=None)
    [result] = section["results"]
    assert (result["kind"], result["passed"], section["passed"]) == ("findings", passed, passed)
    assert result["audit"] is None and result["rule"] == f"fail_on {fail_on}"


def test_fail_on_messages():
    results = {f: evaluate(sample(), None, None, fail_on=f, baseline_path=None)["results"][0] for f in ("error", "warning", "never")}
    assert results["error"]["name"] == "no error findings"
    assert results["error"]["message"] == "fail_on error: fairness has status fail and 2 error findings (four-fifths-rule ×2)."
    assert results["warning"]["message"] == (
        "fail_on warning: fairness has status fail and 3 warning or error findings "
        "(four-fifths-rule ×2, equalized-odds-difference).")
    assert results["never"]["passed"] and "findings do not fail the run (3 warning or error findings" in results["never"]["message"]


def test_unknown_fail_on_is_a_usage_error():
    with pytest.raises(UsageError, match="fail_on must be one of error, warning, never; got 'sometimes'"):
        evaluate(sample(), None, None, fail_on="sometimes", baseline_path=None)


# --- noisy figures and regression tolerances: declared by the metric ----------------------------

def declared(value: Any, *, noisy: bool = False, tolerance: float | None = None, headline: bool = False,
             direction: str = "higher", label: str = "") -> dict:
    """A metric as a 2.x report writes it: with its declared flags."""
    return {**metric(value, label=label, direction=direction), "headline": headline,
            "noisy": noisy, "tolerance": tolerance}


def report2(audits: dict | None = None, measurements: dict | None = None) -> dict:
    return {"schema_version": "2.0", "audits": audits or {}, "measurements": measurements or {}}


def test_noisy_is_the_metrics_declared_flag_whatever_its_audit_or_key_is_called():
    rep = report2(
        {"latency": audit(metrics={
            "p50_ms": declared(12.0, noisy=True, direction="lower", label="Median latency"),
            "energy_score": declared(0.9, label="Energy score"),  # "energy" in the key: no longer a guess
        })},
        {"meter": audit(metrics={"joules": declared(3.0, noisy=True, direction="lower", label="Joules")})},
    )
    results = run_gates({"latency.p50_ms": "<= 20", "latency.energy_score": ">= 0.5", "meter.joules": "<= 5",
                         "meter.status": "== pass", "latency.findings": "no error"}, rep=rep)
    assert [r["noisy"] for r in results[:5]] == [True, False, True, True, False]
    assert "varies from run to run" in results[0]["message"] and "varies" not in results[1]["message"]
    regression = run_gates(regression={"meter.joules": {"max_rise": 0.5}}, rep=rep, baseline=rep)[0]
    assert regression["noisy"] and regression["passed"]
    assert "varies from run to run; the tolerance has to allow for that" in regression["message"]


def test_a_baseline_alone_checks_exactly_the_metrics_that_declare_a_tolerance():
    current = report2({"mine": audit(metrics={
        "score": declared(0.80, headline=True, tolerance=0.05, label="Score"),  # fell 0.04: within 0.05
        "loss": declared(0.50, direction="lower", tolerance=0.01, label="Loss"),  # rose 0.02: beyond 0.01
        "headline_only": declared(0.10, headline=True, label="Headline"),  # fell 0.8, declares no tolerance
        "fresh": declared(1.0, tolerance=0.01, label="Fresh"),  # not in the baseline
    })})
    base = report2({"mine": audit(metrics={
        "score": declared(0.84, headline=True, tolerance=0.05), "loss": declared(0.48, direction="lower"),
        "headline_only": declared(0.90, headline=True),
    })})
    section = evaluate(current, None, base, fail_on="never", baseline_path="main.json")
    regressions = [(r["path"], r["rule"], r["passed"], r["tolerance"]) for r in section["results"]
                   if r["kind"] == "regression"]
    assert regressions == [("mine.loss", "max_rise 0.01", False, 0.01), ("mine.score", "max_drop 0.05", True, 0.05)]
    named = evaluate(current, policy(regression={"mine.headline_only": {"max_drop": 0.1}}), base,
                     fail_on="never", baseline_path="main.json")["results"]
    assert [(r["path"], r["passed"]) for r in named if r["kind"] == "regression"] == [("mine.headline_only", False)]


def test_legacy_1x_reports_without_flags_keep_their_old_reading():
    """A 1.x report has no noisy or tolerance keys: noisy is read from the measurements section
    and the key's words, and headline metrics with a direction get the old 0.01 tolerance."""
    rep = {"schema_version": "1.1",
           "audits": {"metrics": audit(metrics={
               "roc_auc": {**metric(0.90, label="ROC-AUC"), "headline": True},
               "inference_seconds": {**metric(2.0, label="Inference time", direction="lower"), "headline": True},
               "baseline_accuracy": {**metric(0.7, direction="none"), "headline": True},
           })},
           "measurements": {"carbon": audit(metrics={
               "mean_power_w": {**metric(30.0, label="Mean power", direction="lower"), "headline": True}})}}
    base = copy.deepcopy(rep)
    base["audits"]["metrics"]["metrics"]["roc_auc"]["value"] = 0.92
    section = evaluate(rep, None, base, fail_on="never", baseline_path=None)
    assert [(r["path"], r["rule"], r["passed"]) for r in section["results"] if r["kind"] == "regression"] == [
        ("metrics.roc_auc", "max_drop 0.01", False)]
    results = run_gates({"carbon.mean_power_w": "<= 50", "metrics.inference_seconds": "<= 3",
                         "metrics.roc_auc": ">= 0.5", "carbon.status": "== pass"}, rep=rep)
    assert [r["noisy"] for r in results[:4]] == [True, True, False, True]


# --- the section --------------------------------------------------------------------------------

FULL_GATES = {
    "metrics.roc_auc": ">= 0.90",
    "metrics.roc_auc.ci_low": ">= 0.85",
    "fairness.demographic_parity_ratio": ">= 0.8",
    "fairness.sex.demographic_parity_ratio": "between 0.8 and 1.25",
    "overfitting.generalization_gap": "<= 0.05",
    "metrics.status": "== pass",
    "fairness.status": "in [pass, warn]",
    "fairness.findings": "no error",
}
FULL_REGRESSION = {"metrics.roc_auc": {"max_drop": 0.01}, "metrics.log_loss": {"max_rise": 0.02}}


def test_section_shape_order_and_determinism():
    rep = sample()
    before = copy.deepcopy(rep)
    first = evaluate(rep, policy(FULL_GATES, FULL_REGRESSION), sample(), fail_on="error", baseline_path="main.json")
    second = evaluate(rep, policy(FULL_GATES, FULL_REGRESSION), sample(), fail_on="error", baseline_path="main.json")
    assert rep == before  # the report is read, never changed
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert set(first) == {"policy", "baseline", "fail_on", "not_assessed", "passed", "results"}
    assert (first["policy"], first["baseline"], first["fail_on"], first["passed"]) == ("audit.toml", "main.json", "error", False)
    assert all(set(r) == RESULT_KEYS for r in first["results"])
    assert [r["path"] for r in first["results"]] == [*FULL_GATES, *FULL_REGRESSION, None]
    assert [r["kind"] for r in first["results"]][-3:] == ["regression", "regression", "findings"]
    json.dumps(first, allow_nan=False)


def test_no_policy_gives_only_the_findings_result():
    section = evaluate(sample(), None, None, fail_on="never", baseline_path=None)
    assert section["policy"] is None and [r["kind"] for r in section["results"]] == ["findings"] and section["passed"]


# --- the real demo report ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", "-q", "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return load_baseline(out / "report.json")


def test_the_policy_on_the_real_demo_report(demo_report):
    section = evaluate(demo_report, policy({**FULL_GATES, "fairness.sex*race.demographic_parity_ratio.ci_high": "< 0.5"},
                                           FULL_REGRESSION),
                       demo_report, fail_on="error", baseline_path="report.json")
    verdicts = {r["name"]: r["passed"] for r in section["results"]}
    assert verdicts == {
        "metrics.roc_auc >= 0.9": True,
        "metrics.roc_auc.ci_low >= 0.85": True,
        "fairness.demographic_parity_ratio >= 0.8": False,
        "fairness.sex.demographic_parity_ratio between 0.8 and 1.25": False,
        "overfitting.generalization_gap <= 0.05": True,
        "metrics.status == pass": True,
        "fairness.status in [pass, warn]": False,
        "fairness.findings no error": False,
        "fairness.sex*race.demographic_parity_ratio.ci_high < 0.5": True,
        "metrics.roc_auc vs baseline (max_drop 0.01)": True,
        "metrics.log_loss vs baseline (max_rise 0.02)": True,
        "no error findings": False,
    }
    assert section["results"][-2]["noise"] == "within noise"
    with pytest.raises(UsageError) as caught:
        evaluate(demo_report, policy({"fairness.sex.dp_ratio": ">= 0.8"}), None, fail_on="error", baseline_path=None)
    assert "fairness.sex*race.demographic_parity_ratio" in str(caught.value)
