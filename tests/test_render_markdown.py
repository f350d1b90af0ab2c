"""report.md: a GitHub-flavoured summary that hostile names cannot break or inject into.

The golden files under tests/golden/ are rewritten with ``AUDITOR_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt
from report_fixtures import assert_matches_golden, hostile_report, odd_report, sample_report

from auditor.report.markdown import escape, render_markdown

#: The only HTML the Markdown report itself writes.
OWN_TAGS = {"<br>", "<details>", "</details>", "<summary>", "</summary>"}

#: The elements the Markdown report becomes once rendered.
RENDERED_TAGS = {
    "h1", "h2", "p", "strong", "em", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
    "br", "details", "summary",
}


def to_html(markdown: str) -> str:
    """The HTML a CommonMark renderer with GFM tables makes of ``markdown``, raw HTML allowed
    through as GitHub would (markdown-it-py is installed with rich)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)



@pytest.mark.parametrize("name, build", [("sample", sample_report), ("hostile", hostile_report)])
def test_markdown_matches_the_golden_file(name, build):
    assert_matches_golden(f"{name}.md", render_markdown(build()))


def test_markdown_has_the_verdict_a_summary_table_and_a_section_per_audit():
    text = render_markdown(sample_report())
    assert text.startswith("# Model audit: ⚠️ WARN\n")
    assert "| Audit | Status | Headline (95% CI) | Summary |" in text
    for title in ("Classification metrics", "Fairness", "Permutation importance", "Income regression (plugin)"):
        assert f"\n## {title} — " in text


def test_markdown_has_a_gates_table_right_after_the_summary():
    text = render_markdown(sample_report())
    summary_end = text.index("| Income regression (plugin) |")
    gates = text.index("**Gates** · 2 of 5 gates passed · Policy audit.toml · Baseline reports/main/report.json")
    assert summary_end < gates < text.index("\n## Classification metrics")
    assert "| metrics.f1 vs baseline (max\\_drop 0.01) | ❌ FAIL | F1 (&gt;50K) is 0.673 against 0.701 on the " \
        "baseline, a drop of 0.028 (at most 0.01 allowed); the intervals do not overlap: beyond noise | beyond noise |" in text
    assert "| metrics.accuracy &gt;= 0.8 | ✅ PASS | Accuracy is 0.853, at least 0.8. | — |" in text
    report = sample_report()
    report["gates"] = None
    assert "Gates" not in render_markdown(report)


def test_markdown_shows_intervals_and_undefined_values_as_a_dash():
    text = render_markdown(sample_report())
    assert "| Accuracy | 0.853 | [0.847, 0.859] | Wilson score |" in text
    assert "| MAPE | — | — |" in text
    assert "95% confidence intervals by bootstrap." in text


def test_markdown_points_to_the_html_report_for_charts():
    assert "_5 charts (Confusion matrix, ROC curve, Precision-recall curve, Recall by class, ROC-AUC across folds) in report.html._" in (
        render_markdown(sample_report())
    )


def test_hostile_strings_cannot_add_html():
    text = render_markdown(hostile_report())
    assert set(re.findall(r"<[^<>]*>", text)) <= OWN_TAGS
    assert "&lt;script&gt;document.title=" in text
    assert "&amp;amp;" in text


def test_rendered_hostile_markdown_has_only_the_report_s_own_elements():
    tags = set(re.findall(r"<([a-z0-9]+)", to_html(render_markdown(hostile_report()))))
    assert tags <= RENDERED_TAGS


def test_rendered_hostile_markdown_shows_each_payload_as_literal_text():
    html = to_html(render_markdown(hostile_report()))
    literal = "&lt;script&gt;document.title=&quot;PWNED&quot;&lt;/script&gt;&quot;&gt;&lt;img id=&quot;injected&quot;"
    assert html.count(literal) > 50
    assert html.count("&amp;amp; a|b `tick` ]]&gt; &lt;/style&gt; [bold]rich markup[/] ␛[31mred␀␇") > 50


def test_hostile_strings_cannot_break_a_table():
    markdown = render_markdown(hostile_report())
    tables = re.findall(r"<table>.*?</table>", to_html(markdown), re.S)
    assert len(tables) == markdown.count("\n|---") == 11
    for table in tables:
        cells_per_row = {len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)}
        assert len(cells_per_row) == 1, table


def test_hostile_strings_cannot_open_code_spans_emphasis_or_links():
    text = render_markdown(hostile_report())
    assert "\\`tick\\`" in text
    assert "\\[bold\\]rich markup\\[/\\]" in text
    assert not re.search(r"(?<!\\)`", text)


def test_newlines_in_data_never_start_a_new_line():
    # The payload has a newline before "[bold]": it must stay inside its line, where it
    # cannot end a table row or a list item, or start a heading.
    lines = render_markdown(hostile_report()).splitlines()
    assert sum("rich markup" in line for line in lines) > 50
    assert not [line for line in lines if "rich markup" in line and line.startswith(("[", "\\["))]


def test_control_characters_are_made_visible():
    text = render_markdown(hostile_report())
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    assert "␛\\[31mred␀␇" in text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain words", "plain words"),
        ("a|b", "a\\|b"),
        ("<b>&amp;</b>", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
        ("`code` *em* _em_ [link](x) ~~del~~", "\\`code\\` \\*em\\* \\_em\\_ \\[link\\](x) \\~\\~del\\~\\~"),
        ("two\nlines\r\n  here", "two lines here"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("1. item", "1\\. item"),
        ("0.853", "0.853"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_makes_text_literal_inline_markdown(text, expected):
    assert escape(text) == expected


def test_a_report_with_missing_parts_and_wrong_types_still_renders():
    text = render_markdown(odd_report())
    assert "## odd — \\['not', 'a', 'status'\\]" in text
    assert "| m | — | — |" in text
