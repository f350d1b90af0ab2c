"""report.junit.xml: the gates and the audits as JUnit XML, which CI systems show natively.

Two ``<testsuite>`` elements under ``<testsuites name="auditor">``: ``auditor.ci.gates``, one
test case per gate result (left out when the run had no gates), and ``auditor.audits``, one
test case per audit. Separate suites because GitLab, Jenkins and the GitHub test-report
actions give each suite its own line of counts, so "a gate failed" (what fails the build)
is never lost among skipped or warning audits.

- a gate: ``<failure>`` carrying its message when it did not pass;
- an audit: ``<failure>`` for status fail, with its error findings in the body; ``<error>``
  for status error (and for a status the report does not define); ``<skipped>`` for skipped
  and for not assessed (``type="not-assessed"``, the message "Not assessed: " and the reason);
  passed otherwise. Warning findings are listed in ``<system-out>``.

With the run's ``outcome`` in the report, each suite starts with ``<properties>`` holding
``auditor.verdict`` and ``auditor.exit_code``: the one verdict every output shows.

Test case names are the audit's key (unique and stable across runs, so a CI's test history
follows it) and the gate's name. The tree is built with :mod:`xml.etree.ElementTree`, which
escapes text and attributes; characters XML 1.0 cannot hold at all (control characters
other than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF) and the
DEL and C1 controls it discourages are removed from every string first. No timestamp but
``run.started``, so the output is deterministic.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from auditor.report import view
from auditor.report.document import Report, as_document
from auditor.report.numbers import format_cell, is_number

# Everything but tab, newline, CR and the characters XML 1.0 allows, less DEL and the C1
# controls, which it allows but discourages (a CI log viewer would pass them to a terminal).
_NOT_XML = re.compile("[^\t\n\r\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_CLASS_GATES = "auditor.ci.gates"
_CLASS_AUDITS = "auditor.audits"
#: The child element of a test case for each outcome, and the suite attribute counting it.
_OUTCOMES = (("failure", "failures"), ("error", "errors"), ("skipped", "skipped"))


def xml_text(value: Any) -> str:
    """``value`` as text with every character XML 1.0 cannot represent removed."""
    return _NOT_XML.sub("", value if isinstance(value, str) else format_cell(value))


def _seconds(value: Any) -> str | None:
    return f"{value:.3f}" if is_number(value) and math.isfinite(value) and value >= 0 else None


def _element(
    parent: ET.Element | None, tag: str, text: str = "", **attributes: str | None
) -> ET.Element:
    """A new element (under ``parent`` when given) with cleaned text and attributes; an
    attribute given as None is left out."""
    cleaned = {k: xml_text(v) for k, v in attributes.items() if v is not None}
    element = ET.Element(tag, cleaned) if parent is None else ET.SubElement(parent, tag, cleaned)
    if text:
        element.text = xml_text(text)
    return element


def _suite(root: ET.Element, name: str, cases: list[ET.Element], **attributes: Any) -> None:
    counts = {attribute: str(sum(c.find(tag) is not None for c in cases)) for tag, attribute in _OUTCOMES}
    suite = _element(root, "testsuite", name=name, tests=str(len(cases)), **counts, **attributes)
    suite.extend(cases)


def _gate_cases(report: dict[str, Any]) -> list[ET.Element]:
    cases = []
    for gate in view.gates(report):
        case = _element(None, "testcase", classname=_CLASS_GATES, name=gate["name"])
        if not gate["passed"]:
            _element(case, "failure", gate["message"], message=gate["message"], type=gate["kind"] or "gate")
        cases.append(case)
    return cases


def _lines(findings: list[dict[str, str]]) -> str:
    return "\n".join(
        f"[{f['code']}] {f['message']}" if f["code"] else f["message"] for f in findings
    )


def _audit_cases(report: dict[str, Any]) -> list[ET.Element]:
    timings = view.section(report, "run").get("timings")
    per_audit = timings.get("audits") if isinstance(timings, dict) else None
    cases = []
    for name, audit in view.audits(report):
        seconds = per_audit.get(name) if isinstance(per_audit, dict) else None
        case = _element(None, "testcase", classname=_CLASS_AUDITS, name=name, time=_seconds(seconds))
        status = audit.get("status")
        summary = view.summary(audit)
        errors = view.findings(audit, ("error",))
        if status == "fail":
            _element(case, "failure", _lines(errors) or summary, message=summary, type="fail")
        elif status == "error":
            _element(case, "error", _lines(errors) or summary, message=summary, type="error")
        elif status == "skipped":
            _element(case, "skipped", message=summary)
        elif status == "not assessed":  # it ran but could not judge: never shown as a pass
            reason = summary if summary.lower().startswith("not assessed") else f"Not assessed: {summary}"
            _element(case, "skipped", message=reason, type="not-assessed")
        elif status not in ("pass", "warn"):
            problem = (
                f"The report gives this audit the status {format_cell(status)!r}, "
                "which is not one auditor defines."
            )
            _element(case, "error", problem, message=problem, type="unknown-status")
        out = [f"{view.audit_title(name, audit)}: {view.status_word(status)}"]
        if summary:
            out.append(summary)
        warnings = view.findings(audit, ("warning",))
        if warnings:
            out += ["Warnings:", *(f"- {line}" for line in _lines(warnings).split("\n"))]
        _element(case, "system-out", "\n".join(out))
        cases.append(case)
    return cases


def render_junit(source: Report | Mapping[str, Any]) -> str:
    """The report as JUnit XML: a gates suite (when there are gates) and an audits suite."""
    report: dict[str, Any] = as_document(source)
    run = view.section(report, "run")
    timings = run.get("timings")
    total = _seconds(timings.get("total")) if isinstance(timings, dict) else None
    started = run.get("started") if isinstance(run.get("started"), str) else None
    gate_cases, audit_cases = _gate_cases(report), _audit_cases(report)
    every = gate_cases + audit_cases
    root = ET.Element("testsuites")
    root.set("name", "auditor")
    root.set("tests", str(len(every)))
    for tag, attribute in _OUTCOMES:
        root.set(attribute, str(sum(c.find(tag) is not None for c in every)))
    if total is not None:
        root.set("time", total)
    if gate_cases:
        _suite(root, _CLASS_GATES, gate_cases, timestamp=started)
    _suite(root, _CLASS_AUDITS, audit_cases, timestamp=started)
    shown = view.outcome(report)
    if shown["exit_code"] is not None:  # the run's one verdict, as every other output shows it (none in 1.x)
        for suite in root.findall("testsuite"):
            properties = ET.Element("properties")
            _element(properties, "property", name="auditor.verdict", value=str(shown["verdict"]))
            _element(properties, "property", name="auditor.exit_code", value=str(shown["exit_code"]))
            suite.insert(0, properties)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
