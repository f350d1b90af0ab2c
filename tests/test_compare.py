"""compare_reports: one row per audit status and per metric of either report, pure data."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from auditor.ci.compare import compare_reports, row_cells
from auditor.cli import cli
from auditor.loading.bundled import demo_files
from auditor.report import load_report
from auditor.report.json_report import all_audits

ROW_KEYS = {"kind", "audit", "metric", "label", "direction", "a", "b", "delta", "a_ci", "b_ci", "change", "beyond_noise",
            "measured"}


def metric(value, ci=None, *, direction="higher", label=""):
    return {"value": value, "ci": ci, "direction": direction, "label": label}


def report(**audits):
    return {"schema_version": "1.0", "audits": audits}


def audit(status="pass", **metrics):
    return {"status": status, "metrics": metrics, "findings": []}


def row(rows, audit_name, key):
    [found] = [r for r in rows if r["audit"] == audit_name and r["metric"] == key]
    return found


@pytest.mark.parametrize("a, b, direction, change", [
    (0.8, 0.9, "higher", "better"), (0.9, 0.8, "higher", "worse"),
    (0.3, 0.2, "lower", "better"), (0.2, 0.3, "lower", "worse"),
    (0.5, 0.5, "higher", "same"), (0.5, 0.5, "none", "same"),
    (10, 12, "none", "changed"), (0.5, None, "higher", None), (None, None, "lower", None),
])
def test_change_follows_the_direction(a, b, direction, change):
    rows = compare_reports(report(m=audit(x=metric(a, direction=direction))),
                           report(m=audit(x=metric(b, direction=direction))))
    found = row(rows, "m", "x")
    assert (found["change"], found["direction"]) == (change, direction)
    assert found["delta"] == (None if a is None or b is None else pytest.approx(b - a))


@pytest.mark.parametrize("ci_a, ci_b, beyond", [
    ([0.7, 0.8], [0.85, 0.95], True), ([0.7, 0.9], [0.85, 0.95], False),
    ([0.7, 0.85], [0.85, 0.95], False),  # touching intervals overlap
    (None, [0.85, 0.95], None), ([0.7, None], [0.85, 0.95], None),
])
def test_beyond_noise_is_whether_the_intervals_overlap(ci_a, ci_b, beyond):
    rows = compare_reports(report(m=audit(x=metric(0.75, ci_a))), report(m=audit(x=metric(0.9, ci_b))))
    assert row(rows, "m", "x")["beyond_noise"] is beyond


def test_metrics_and_audits_in_only_one_report_are_added_or_removed():
    a = report(m=audit(old=metric(1.0), both=metric(2.0)), gone=audit("warn", x=metric(1.0)))
    b = report(m=audit(new=metric(3.0, label="New"), both=metric(2.0)), fresh=audit("pass"))
    rows = compare_reports(a, b)
    assert [(r["audit"], r["metric"], r["change"]) for r in rows] == [
        ("fresh", None, "added"),
        ("gone", None, "removed"), ("gone", "x", "removed"),
        ("m", None, "same"), ("m", "both", "same"), ("m", "new", "added"), ("m", "old", "removed"),
    ]
    assert row(rows, "m", "new")["label"] == "New" and row(rows, "m", "new")["a"] is None
    assert all(set(r) == ROW_KEYS for r in rows)


@pytest.mark.parametrize("a, b, change", [
    ("pass", "fail", "worse"), ("fail", "warn", "better"), ("warn", "warn", "same"),
    ("pass", "skipped", "changed"), ("error", "pass", "changed"),
])
def test_status_changes_per_audit(a, b, change):
    status = row(compare_reports(report(m=audit(a)), report(m=audit(b))), "m", None)
    assert (status["kind"], status["label"], status["a"], status["b"], status["change"]) == ("status", "Status", a, b, change)


def test_dotted_metric_keys_are_kept_whole_and_sorted():
    rows = compare_reports(report(f=audit(**{"sex*race.dpr": metric(0.1), "sex.dpr": metric(0.3), "dpr": metric(0.1)})),
                           report(f=audit(**{"sex.dpr": metric(0.4)})))
    assert [r["metric"] for r in rows] == [None, "dpr", "sex*race.dpr", "sex.dpr"]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    demo = demo_files()
    runner = CliRunner()
    out0, out1 = tmp_path_factory.mktemp("seed0"), tmp_path_factory.mktemp("seed1")
    first = runner.invoke(cli, ["demo", "-q", "--format", "json", "--out", str(out0)])
    second = runner.invoke(cli, [str(demo.model), "--data", str(demo.data), "--history", str(demo.history),
                                 "--train-data", str(demo.train_data), "--seed", "1", "-q", "--format", "json",
                                 "--out", str(out1)])
    assert first.exit_code == 0, first.output
    assert second.exit_code in (0, 1), second.output  # 1: the demo model fails its fairness findings
    return load_report(out0 / "report.json"), load_report(out1 / "report.json")


def test_two_demo_runs_with_different_seeds(two_seeds):
    a, b = two_seeds
    assert a["run"]["seed"] == 0 and b["run"]["seed"] == 1
    rows = compare_reports(a, b)
    metrics = [r for r in rows if r["kind"] == "metric"]
    assert len(metrics) == sum(len(x["metrics"]) for x in all_audits(a).values())
    assert [r["audit"] for r in rows if r["kind"] == "status"] == sorted(all_audits(a))
    assert [(r["audit"], r["metric"] or "") for r in rows] == sorted((r["audit"], r["metric"] or "") for r in rows)
    # Same model, same data: the same values, but where the seed draws the folds or the
    # sample of rows explained, and the energy, which is measured.
    drawn = ("crossval", "explain", "carbon")
    assert {r["change"] for r in rows if r["audit"] not in drawn} == {"same"}
    assert all(r["delta"] == 0 for r in metrics if r["a"] is not None and r["audit"] not in drawn)
    assert any(r["delta"] != 0 for r in metrics if r["audit"] == "crossval")
    assert any(r["delta"] != 0 for r in metrics if r["audit"] == "explain")
    # Energy is measured: its rows say so instead of judging noise from intervals.
    assert {r["measured"] for r in rows} == {True, False}
    assert all(r["measured"] == (r["audit"] == "carbon") for r in rows)
    assert all(row_cells(r)[-1] == "varies run to run" for r in metrics if r["audit"] == "carbon")
    with_ci = [r for r in metrics if r["a_ci"] is not None]
    assert with_ci and any(r["a_ci"] != r["b_ci"] for r in with_ci)  # the bootstrap seed moves the intervals
    assert all(r["beyond_noise"] is False for r in with_ci)
    assert all(r["beyond_noise"] is None for r in metrics if r["a_ci"] is None)
    roc = row(rows, "metrics", "roc_auc")
    assert (roc["label"], roc["direction"]) == ("ROC-AUC", "higher")
