"""The typed report: Report.to_dict is report.json, from_dict reads 2.x and migrates 1.x,
1.x reports render and compare like 2.0 ones, and a Report shows itself in a notebook and saves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from report_fixtures import PAYLOAD, compliance_report, hostile_report, sample_report

from auditor.ci.compare import compare_reports
from auditor.contract.errors import UsageError
from auditor.contract.result import AuditResult, Metric
from auditor.report import read_report, render_json, render_markdown
from auditor.report.document import (
    SCHEMA_VERSION,
    Report,
    ReportError,
    ReportOutcome,
    Tool,
)
from auditor.report.schema import validate
from auditor.report.write import canonical


@pytest.fixture
def demo(demo_report):
    """The demo's report.json (the session's, a real process's; tests here must not change it)."""
    return json.loads(json.dumps(demo_report))


def as_1_0(report: dict) -> dict:
    """A report as auditor 1.0 wrote it: no measurements, train_data, card, code, history,
    gates or outcome, no data.sensitive and no run.plugins (see git history of the assembler)."""
    old = {k: v for k, v in report.items()
           if k not in ("measurements", "train_data", "card", "code", "history", "gates", "outcome")}
    old["schema_version"] = "1.0"
    old["data"] = {k: v for k, v in report["data"].items() if k != "sensitive"}
    old["run"] = {k: v for k, v in report["run"].items() if k != "plugins"}
    return old


def test_the_demo_report_is_schema_2_0_and_round_trips_exactly(demo):
    assert demo["schema_version"] == SCHEMA_VERSION == "2.0"
    assert Report.from_dict(demo).to_dict() == demo
    validate(demo)


def test_the_demo_report_has_every_section_it_had_in_1_x(demo):
    assert set(demo) == {"schema_version", "tool", "verdict", "outcome", "model", "data", "train_data", "card",
                         "code", "history", "audits", "measurements", "run"}  # no policy: no gates section
    assert demo["outcome"]["verdict"] == demo["verdict"]
    assert set(demo["measurements"]) == {"carbon"}


def test_a_report_built_from_typed_parts_is_plain_json():
    result = AuditResult("m", "M", "pass", "All good.", metrics={"acc": Metric(0.9, "Accuracy", (0.8, 0.95))})
    report = Report(tool=Tool("auditor", "9.9"), verdict="pass", model={"path": "m.pt", "format": "torchscript"},
                    data={"path": "d.csv", "rows": 3}, audits={"m": result}, run={"started": "2026-01-01T00:00:00"},
                    outcome=ReportOutcome("pass", 0))
    document = report.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["audits"]["m"]["metrics"]["acc"]["ci"] == [0.8, 0.95]
    assert document["outcome"]["exit_code"] == 0 and "gates" not in document
    assert document["measurements"] == {} and document["code"] == [] and document["card"] is None
    assert Report.from_dict(document) == report


@pytest.mark.parametrize("build", [sample_report, compliance_report])
def test_a_1_x_report_is_migrated_to_2_0(build):
    old = as_1_0(build())
    report = Report.from_dict(old)
    assert report.schema_version == "2.0"
    assert report.measurements == {} and report.code == [] and report.train_data is None
    assert report.data["sensitive"] == [] and report.run["plugins"] == {}
    assert report.outcome == ReportOutcome(verdict=old["verdict"], exit_code=None)
    assert report.audits["metrics"].to_dict() == old["audits"]["metrics"]
    validate(old)
    validate(report.to_dict())


def test_a_1_1_report_keeps_its_gates_and_outcome_is_rebuilt_from_them():
    old = sample_report()  # 1.0 with the gates of a policy, as 1.1 wrote them
    old["schema_version"] = "1.1"
    outcome = Report.from_dict(old).outcome
    assert outcome is not None and outcome.exit_code is None
    assert outcome.failed_gates == [g["name"] for g in old["gates"]["results"] if not g["passed"]]
    assert outcome.fail_on == "error"


BROKEN = {
    "a future major version": ({"schema_version": "3.0", "audits": {}}, "schema_version '3.0'"),
    "no audits": ({"schema_version": "2.0"}, "has no audits object"),
    "an audit with a status no one defines": (
        {"schema_version": "1.0", "audits": {"x": {"audit": "x", "title": "X", "status": "great", "summary": ""}}},
        "audits.x is not an audit result"),
    "a list": ([], "must be a JSON object"),
}


@pytest.mark.parametrize("data, expected", BROKEN.values(), ids=list(BROKEN))
def test_from_dict_refuses_what_is_not_a_report_on_one_line(data, expected):
    with pytest.raises(ReportError) as caught:
        Report.from_dict(data)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, UsageError)  # exit 2, like any bad input


# --- 1.x reports through `audit render` and `audit compare` ---------------------------------


def _audit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "auditor", *args], check=False, capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_audit_render_reads_a_1_x_report_and_renders_every_format_like_its_2_0_form(tmp_path):
    old = as_1_0(compliance_report())
    new = Report.from_dict(old).to_dict()
    for name, document in (("old", old), ("new", new)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(render_json(document), encoding="utf-8")
    formats = "html,md,junit,json" + (",pdf" if shutil.which("chromium") else "")
    for name in ("old", "new"):
        done = _audit("render", f"{name}/report.json", "--format", formats, "--out", f"{name}/out", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    old_out, new_out = tmp_path / "old" / "out", tmp_path / "new" / "out"
    assert sorted(p.name for p in old_out.iterdir()) == sorted(p.name for p in new_out.iterdir())
    # Markdown and JUnit say nothing of the schema version: the same text from either form.
    for name in ("report.md", "report.junit.xml"):
        assert (old_out / name).read_text() == (new_out / name).read_text(), name
    # The HTML footer names the schema version of the file it was rendered from, and nothing else differs.
    def without_version(text: str) -> str:
        return re.sub(r"schema[^<]{0,40}(1\.0|2\.0)", "schema", text)
    old_html, new_html = (old_out / "report.html").read_text(), (new_out / "report.html").read_text()
    assert without_version(old_html) == without_version(new_html)
    assert read_report(old_out / "report.json") == read_report(new_out / "report.json")


def test_audit_compare_reads_a_1_x_report_against_a_2_0_one(tmp_path):
    old = as_1_0(sample_report())
    changed = Report.from_dict(old)
    changed.audits["metrics"].metrics["accuracy"] = Metric(0.9, "Accuracy", (0.89, 0.91), "Wilson score",
                                                           headline=True)
    (tmp_path / "old.json").write_text(render_json(old), encoding="utf-8")
    (tmp_path / "new.json").write_text(render_json(changed), encoding="utf-8")
    rows = {(r["audit"], r["metric"]): r for r in compare_reports(old, changed)}
    assert rows[("metrics", "accuracy")]["change"] == "better"
    assert rows[("metrics", "roc_auc")]["change"] == "same"
    done = _audit("compare", "old.json", "new.json", "--markdown", "--changed-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Accuracy" in done.stdout and "ROC AUC" not in done.stdout


# --- in a notebook, and saved ----------------------------------------------------------------


def _safe_hostile() -> Report:
    """The hostile report without its tampered audit and gate (those are not valid reports)."""
    document = hostile_report()
    document["audits"] = {k: v for k, v in document["audits"].items() if v.get("audit") != "tampered"}
    document["gates"]["results"] = [g for g in document["gates"]["results"] if isinstance(g.get("passed"), bool)]
    return Report.from_dict(document)


def test_repr_html_is_a_self_contained_fragment_with_scoped_styles():
    html = Report.from_dict(sample_report())._repr_html_()
    assert html.startswith('<div class="auditor-report">') and html.rstrip().endswith("</div>")
    for tag in ("<html", "<body", "<head>", "<script", "<link", "@import", "http://", "https://"):
        assert tag not in html, tag
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", style) for s in block.split(",")]
    assert selectors and all(s.startswith(".auditor-report") for s in selectors if not s.startswith("@")), selectors
    assert "Classification metrics" in html and "<svg" in html


def test_repr_html_escapes_hostile_strings():
    html = _safe_hostile()._repr_html_()
    assert 'id="injected"' not in html and "<script>" not in html
    assert "&lt;script&gt;" in html


def test_save_writes_every_format_atomically_and_returns_the_paths(tmp_path):
    report = Report.from_dict(sample_report())
    paths = report.save(tmp_path / "out")
    assert [p.name for p in paths] == ["report.html", "report.md", "report.json"]
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report.to_dict()
    assert (tmp_path / "out" / "report.md").read_text() == render_markdown(canonical(report))  # keys sorted
    with pytest.raises(UsageError, match="Unknown report format"):
        report.save(tmp_path / "other", formats=("html", "docx"))
    assert not (tmp_path / "other").exists()
    assert PAYLOAD not in (tmp_path / "out" / "report.md").read_text()
