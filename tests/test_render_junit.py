"""report.junit.xml: JUnit XML that CI systems read, one test case per gate and per audit,
well-formed whatever the strings in the report hold."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest
from report_fixtures import PAYLOAD, hostile_report, odd_report, sample_report

from auditor.report import FILE_NAMES, RENDERERS, write_reports
from auditor.report.junit import render_junit, xml_text

#: What XML 1.0 cannot hold, and what it can but a terminal or a page must not be sent raw.
NOT_XML = "\x00\x01\x08\x0b\x0c\x1b\x7f\x85\x9b\ud800\udfff\ufffe\uffff"
OUTCOMES = ("failure", "error", "skipped")


def parse(xml: str) -> ET.Element:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(xml.encode("utf-8"))


def cases(root: ET.Element, classname: str) -> list[ET.Element]:
    return [c for c in root.iter("testcase") if c.get("classname") == classname]


def outcome(case: ET.Element) -> str:
    found = [child.tag for child in case if child.tag in OUTCOMES]
    assert len(found) <= 1, found
    return found[0] if found else "passed"


def assert_junit_essentials(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert suites
    for suite in suites:
        assert suite.get("name")
        members = suite.findall("testcase")
        assert suite.get("tests") == str(len(members))
        for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert suite.get(attribute) == str(sum(outcome(c) == tag for c in members)), (suite.get("name"), tag)
        for case in members:
            assert case.get("classname") and case.get("name")
            for child in case:
                if child.tag in OUTCOMES:
                    assert child.get("message") is not None, (case.get("name"), child.tag)
    every = list(root.iter("testcase"))
    assert root.get("tests") == str(len(every))
    for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert root.get(attribute) == str(sum(outcome(c) == tag for c in every))


def failing_report() -> dict:
    """The sample with its metrics audit failed on an error finding."""
    report = copy.deepcopy(sample_report())
    metrics = report["audits"]["metrics"]
    metrics["status"] = "fail"
    metrics["findings"].append({"severity": "error", "code": "low-accuracy", "message": "Accuracy is below 0.9."})
    return report


@pytest.mark.parametrize("build", [sample_report, hostile_report, odd_report, failing_report])
def test_junit_has_the_essentials_ci_systems_read(build):
    assert_junit_essentials(parse(render_junit(build())))


def test_one_suite_for_gates_and_one_for_audits():
    root = parse(render_junit(sample_report()))
    assert root.get("name") == "auditor"
    assert [s.get("name") for s in root.findall("testsuite")] == ["auditor.ci.gates", "auditor.audits"]
    assert all(c.get("classname") == s.get("name") for s in root.findall("testsuite") for c in s.iter("testcase"))


def test_one_test_case_per_gate_failed_with_its_message():
    report = sample_report()
    gates = cases(parse(render_junit(report)), "auditor.ci.gates")
    results = report["gates"]["results"]
    assert [c.get("name") for c in gates] == [r["name"] for r in results]
    for case, result in zip(gates, results):
        if result["passed"]:
            assert outcome(case) == "passed"
        else:
            failure = case.find("failure")
            assert failure is not None and failure.get("message") == failure.text == result["message"]
            assert failure.get("type") == result["kind"]


def test_one_test_case_per_audit_with_its_outcome():
    root = parse(render_junit(failing_report()))
    audits = {c.get("name"): c for c in cases(root, "auditor.audits")}
    assert list(audits) == ["metrics", "fairness", "explain", "income_regression"]
    assert {name: outcome(c) for name, c in audits.items()} == {
        "metrics": "failure",
        "fairness": "skipped",
        "explain": "error",
        "income_regression": "passed",
    }
    failure = audits["metrics"].find("failure")
    assert "[low-accuracy] Accuracy is below 0.9." in failure.text
    assert "low-recall" not in failure.text  # warnings are not the reason it failed
    assert audits["fairness"].find("skipped").get("message") == "needs sensitive columns (--sensitive)"
    assert audits["explain"].find("error").get("message").startswith("The audit raised an error: RuntimeError")
    assert audits["metrics"].get("time") == "0.853"


def test_warnings_are_listed_in_system_out():
    root = parse(render_junit(sample_report()))
    out = {c.get("name"): c.findtext("system-out") for c in cases(root, "auditor.audits")}
    assert "- [low-recall] Recall of >50K is 0.617, below the 0.70 threshold." in out["metrics"]
    assert "calibration-ok" not in out["metrics"]
    assert "- [heteroscedastic] Residuals grow" in out["income_regression"]


@pytest.mark.parametrize("gates", [None, "absent"])
def test_a_report_without_gates_has_one_test_case_per_audit(gates):
    report = sample_report()
    if gates == "absent":
        del report["gates"]
    else:
        report["gates"] = gates
    root = parse(render_junit(report))
    assert_junit_essentials(root)
    assert [s.get("name") for s in root.findall("testsuite")] == ["auditor.audits"]
    assert [c.get("name") for c in root.iter("testcase")] == list(report["audits"])


def test_an_unknown_audit_status_or_gate_outcome_is_never_a_pass():
    root = parse(render_junit(hostile_report()))
    tampered = [c for c in cases(root, "auditor.audits") if c.get("name").startswith("tampered")]
    assert [outcome(c) for c in tampered] == ["error"]
    gate = [c for c in cases(root, "auditor.ci.gates") if c.get("name").startswith("tampered gate")]
    assert [outcome(c) for c in gate] == ["failure"]


def test_hostile_strings_give_well_formed_xml_and_come_back_intact():
    report = hostile_report()
    hostile = '<a href="x">&amp; \'quoted\' "double"</a>]]>' + NOT_XML + "\t\n\r end"
    report["gates"]["results"][0]["name"] = hostile
    report["gates"]["results"][1]["message"] = hostile
    report["audits"]["metrics"]["findings"].append({"severity": "warning", "code": hostile, "message": hostile})
    report["audits"][hostile] = {"status": "fail", "summary": hostile, "findings": [
        {"severity": "error", "code": "e", "message": hostile}]}
    xml = render_junit(report)
    xml.encode("utf-8")  # no lone surrogate left to fail the write
    assert not set(NOT_XML) & set(xml)
    root = parse(xml)
    assert_junit_essentials(root)
    expected = xml_text(hostile)
    assert expected == '<a href="x">&amp; \'quoted\' "double"</a>]]>\t\n\r end'
    assert cases(root, "auditor.ci.gates")[0].get("name") == expected
    assert cases(root, "auditor.ci.gates")[1].find("failure").get("message") == expected
    assert expected in [c.get("name") for c in cases(root, "auditor.audits")]
    assert xml_text(PAYLOAD) in cases(root, "auditor.ci.gates")[2].get("name")


def test_rendering_is_deterministic():
    assert render_junit(sample_report()) == render_junit(sample_report())


def test_junit_is_a_registered_format_written_like_the_others(tmp_path):
    assert RENDERERS["junit"] is render_junit
    assert FILE_NAMES["junit"] == "report.junit.xml"
    [path] = write_reports(hostile_report(), tmp_path, ["junit"])
    assert path == tmp_path / "report.junit.xml"
    assert_junit_essentials(ET.parse(path).getroot())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.junit.xml"]
