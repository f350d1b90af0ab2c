"""Data-derived strings from a real run cannot break the reports: a pipe, a newline or
Markdown punctuation in a column name or a group value stays text in every Markdown table,
and HTML shows it escaped. (Script payloads in a browser: tests/test_compliance_report.py.)"""

from __future__ import annotations

import html
import re

import pandas as pd
from cli_helpers import invoke, read_report

TRICKY_GROUPS = ["a|b", "line\nbreak", "*bold* _it_ `tick` [link](x)", "# heading", "- item", "<i>x</i>"]


def table_rows_are_whole(markdown: str) -> None:
    """Every table row of a GFM table has as many cells as its header."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\|(?:-+:?\|)+", line.replace(" ", "")) or re.fullmatch(r"\|(?:---:?\|)+", line):
            width = len(re.findall(r"(?<!\\)\|", lines[i - 1])) - 1
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                cells = len(re.findall(r"(?<!\\)\|", lines[j])) - 1
                assert cells == width, (lines[i - 1], lines[j])
                j += 1


def test_pipes_newlines_and_markup_in_names_and_groups_stay_text(breast_cancer, tmp_path):
    frame = pd.read_csv(breast_cancer.folder / "test.csv")
    features = [c for c in frame.columns if c != "target"]
    frame = frame.rename(columns={features[0]: "radius | mean", features[1]: "texture *mean*"})
    frame["group | kind"] = [TRICKY_GROUPS[i % len(TRICKY_GROUPS)] for i in range(len(frame))]
    data = tmp_path / "tricky.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--sensitive", "group | kind", "--out", out,
                    "-q", "--format", "md,html,json", "--skip", "explain,crossval", "-o", "fairness.min_group_size=5")
    assert result.exit_code in (0, 1), result.output
    report = read_report(out)
    cells = {str(cell) for t in report["audits"]["fairness"]["tables"] for row in t["rows"] for cell in row}
    assert any("a|b" in cell for cell in cells)  # the raw values reached report.json
    markdown = (out / "report.md").read_text()
    table_rows_are_whole(markdown)
    assert "a\\|b" in markdown  # the pipe escaped inside its cell
    assert "\n# heading" not in markdown and "\n- item" not in markdown
    assert "<i>x</i>" not in markdown and "&lt;i&gt;x&lt;/i&gt;" in markdown
    page = (out / "report.html").read_text()
    assert "<i>x</i>" not in page and html.escape("<i>x</i>", quote=False) in page
