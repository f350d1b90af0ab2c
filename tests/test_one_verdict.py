"""One verdict, computed once (audits + gates + regressions) and shown the same by every output.

What the issue saw: a gate failed and the exit code was 1, while the terminal, report.json and
``$GITHUB_STEP_SUMMARY`` said "⚠ WARN" (the audits' own verdict), and the job summary received
the whole report. Here the audits only warn (the wine model's fairness is not assessed: site B
has 23 rows) and a policy gate on accuracy fails.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from cli_helpers import invoke, read_report
from sklearn.metrics import accuracy_score

from auditor.report import render_html, render_markdown
from auditor.report.junit import render_junit

B_ROWS = 23


@pytest.fixture(scope="module")
def gated(wine, tmp_path_factory):
    """The audit of the wine model with a gate it fails, under GitHub Actions."""
    folder = tmp_path_factory.mktemp("gated")
    frame = wine.frame.copy()
    frame["site"] = ["A"] * (len(frame) - B_ROWS) + ["B"] * B_ROWS
    frame.to_csv(folder / "test.csv", index=False)
    predicted = wine.eager_outputs().argmax(axis=1)
    names = ["barolo", "grignolino", "barbera"]
    accuracy = accuracy_score([names.index(v) for v in frame["cultivar"]], predicted)
    assert accuracy < 0.99  # the gate below fails on an independent count
    policy = folder / "audit.toml"
    policy.write_text('[gates]\n"metrics.accuracy" = ">= 0.99"\n')
    summary = folder / "summary.md"
    summary.write_text("")
    out = folder / "out"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GITHUB_STEP_SUMMARY", str(summary))
        env.setenv("GITHUB_ACTIONS", "true")
        result = invoke(wine.folder / "model.pt", "--data", folder / "test.csv", "--sensitive", "site",
                        "--audits", "metrics,fairness", "-o", "metrics.n_resamples=200",
                        "-o", "fairness.n_resamples=200", "--policy", policy, "--out", out,
                        "--format", "json,md,html,junit")
    return result, out, summary


def test_the_audits_only_warn_but_the_gate_fails(gated):
    result, out, _ = gated
    report = read_report(out)
    statuses = {a["status"] for a in report["audits"].values()}
    assert "fail" not in statuses and "error" not in statuses and "not assessed" in statuses
    assert result.exit_code == 1, result.output
    assert report["outcome"]["exit_code"] == 1
    assert report["outcome"]["failed_gates"] == ["metrics.accuracy >= 0.99"]


def test_report_json_holds_the_one_verdict(gated):
    report = read_report(gated[1])
    assert report["verdict"] == "fail" == report["outcome"]["verdict"]
    assert any(r.startswith("Gate failed: metrics.accuracy >= 0.99") for r in report["outcome"]["reasons"])
    assert "Audits not assessed: fairness." in report["outcome"]["reasons"]


def test_the_terminal_shows_it(gated):
    result = gated[0]
    first = next(line for line in result.stdout.splitlines() if line.startswith("Verdict"))
    assert first.startswith("Verdict ✗ FAIL") and "WARN" not in first


def test_markdown_html_and_junit_show_it(gated):
    out = gated[1]
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Model audit: ❌ FAIL")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<span class="badge big status-fail">✗ FAIL</span>' in html and "exit code 1" in html
    root = ET.parse(out / "report.junit.xml").getroot()
    for suite in root.findall("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props == {"auditor.verdict": "fail", "auditor.exit_code": "1"}


def test_rendering_report_json_again_shows_the_same_verdict(gated):
    report = read_report(gated[1])
    assert render_markdown(report).startswith("# Model audit: ❌ FAIL")
    assert "status-fail" in render_html(report) and 'name="auditor.verdict" value="fail"' in render_junit(report)
    result = invoke("render", gated[1] / "report.json", "--format", "md", "--out", gated[1].parent / "again")
    if result.exit_code == 0:  # the render command's options belong to another part of the CLI
        assert (gated[1].parent / "again" / "report.md").read_text(encoding="utf-8").startswith("# Model audit: ❌ FAIL")


def test_the_step_summary_is_short_and_says_the_same(gated):
    _, out, summary = gated
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Model audit: ❌ FAIL · exit code 1")
    assert "WARN" not in text.splitlines()[0]
    assert "### Failures" in text and "- Gate failed: metrics.accuracy &gt;= 0.99" in text
    assert "### Not assessed (ran, but could not judge)" in text and "Fairness: Not assessed" in text
    assert "Full report: `" in text and "report.html`" in text
    assert "## Provenance" not in text and "**Findings**" not in text
    assert len(text.splitlines()) < 40
    assert len(text) < len((out / "report.md").read_text(encoding="utf-8")) / 2


def test_annotations_name_the_failed_gate(gated):
    result = gated[0]
    assert any(line.startswith("::error title=auditor gate failed%3A metrics.accuracy >= 0.99")
               for line in result.stdout.splitlines())


def test_a_clean_run_passes_everywhere(breast_cancer, tmp_path):
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--target", "target", "--audits", "metrics", "-o", "metrics.n_resamples=200",
                    "--out", out, "--format", "json,md", "-q")
    report = read_report(out)
    assert result.exit_code == report["outcome"]["exit_code"]
    assert report["verdict"] == report["outcome"]["verdict"]
    assert (out / "report.md").read_text(encoding="utf-8").startswith(
        "# Model audit: " + {"pass": "✅ PASS", "warn": "⚠️ WARN", "fail": "❌ FAIL"}[report["verdict"]])
    json.dumps(report["outcome"])
