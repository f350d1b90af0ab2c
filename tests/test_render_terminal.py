"""The terminal summary: one table of every audit, then the findings that need action.

The golden files under tests/golden/ are rewritten with ``AUDITOR_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import io

import pytest
from report_fixtures import assert_matches_golden, hostile_report, odd_report, sample_report
from rich.console import Console

from auditor.report.terminal import render_terminal


def rendered(report: dict, color_system: str | None = None) -> str:
    """What a 100-column terminal shows (with ANSI styling when ``color_system`` is set)."""
    console = Console(
        width=100, record=True, color_system=color_system, file=io.StringIO(), force_terminal=bool(color_system)
    )
    render_terminal(report, console)
    if color_system:
        return console.file.getvalue()
    return console.export_text()


@pytest.mark.parametrize("name, build", [("sample", sample_report), ("hostile", hostile_report)])
def test_terminal_output_matches_the_golden_file(name, build):
    # Trailing spaces pad rich's table cells; editors strip them, so they are not compared.
    text = "".join(line.rstrip() + "\n" for line in rendered(build()).splitlines())
    assert_matches_golden(f"{name}.terminal.txt", text)


def test_every_audit_is_a_row_with_its_status_in_words():
    text = rendered(sample_report())
    for title, status in [
        ("Classification", "! WARN"),
        ("Fairness", "– SKIPPED"),
        ("Permutation", "‼ ERROR"),
        ("Income regression", "! WARN"),
    ]:
        assert any(line.startswith(title) and status in line for line in text.splitlines()), title


def test_headlines_show_values_with_their_intervals():
    text = rendered(sample_report())
    assert "Accuracy 0.853 [0.847, 0.859]" in text
    assert "MAE 4,313 [4,101, 4,534]" in text


def test_warnings_and_errors_are_listed_but_not_info():
    text = rendered(sample_report())
    assert "WARNING Classification metrics: Recall of >50K is 0.617" in text
    assert "ERROR   Permutation importance: RuntimeError" in text
    assert "well calibrated" not in text


def test_gates_follow_the_audits_with_failures_in_bold_red():
    text = rendered(sample_report())
    assert text.index("Income regression") < text.index("2 of 5 gates passed") < text.index("Findings")
    assert any(line.startswith("metrics.recall >= 0.7 ") and "✗ FAIL" in line for line in text.splitlines())
    styled = rendered(sample_report(), color_system="standard")
    assert "\x1b[1;31mmetrics.recall >= 0.7" in styled
    assert "\x1b[1;31m✗ FAIL" in styled
    report = sample_report()
    del report["gates"]
    assert "gates passed" not in rendered(report)


def test_rich_markup_in_data_prints_literally():
    assert "[bold]rich markup[/]" in rendered(hostile_report())


def test_control_sequences_in_data_never_reach_the_terminal():
    styled = rendered(hostile_report(), color_system="truecolor")
    assert "\x1b[31mred" not in styled
    assert "\x00" not in styled and "\x07" not in styled
    assert "␛[31mred␀␇" in styled


def test_status_is_coloured_as_well_as_written():
    styled = rendered(sample_report(), color_system="standard")
    assert "\x1b[1;33m! WARN" in styled
    assert "\x1b[1;35m‼ ERROR" in styled


def test_a_report_with_missing_parts_and_wrong_types_still_renders():
    text = rendered(odd_report())
    assert "Verdict None  — on —" in text
    assert "odd" in text
