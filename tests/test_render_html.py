"""report.html: one self-contained, well-formed page in which data can never become markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_fixtures import INJECTED_ID, hostile_report, odd_report, sample_report

from auditor.report.charts import ChartDataError, render_chart
from auditor.report.html import render_html

VOID_ELEMENTS = {"meta", "br", "col", "img", "input", "link", "hr"}

#: Every element the report itself writes; anything else would have come from data.
OWN_ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "main", "div", "header", "nav", "section",
    "footer", "h1", "h2", "h3", "p", "a", "span", "strong", "code", "ul", "li", "table", "caption",
    "colgroup", "col", "thead", "tbody", "tr", "th", "td", "figure", "figcaption",
    "svg", "desc", "g", "line", "polyline", "circle", "rect", "text", "image",
}


class Page(HTMLParser):
    """The elements, attributes and nesting problems of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)
        self.close()
        self.problems += [f"<{tag}> never closed" for tag in self.open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.problems.append(f"</{tag}> closes <{self.open[-1] if self.open else 'nothing'}>")


@pytest.fixture(scope="module")
def sample_html() -> str:
    return render_html(sample_report())


@pytest.fixture(scope="module")
def hostile_html() -> str:
    return render_html(hostile_report())


# ---- escaping -----------------------------------------------------------------------------


def test_hostile_strings_create_no_element_or_attribute(hostile_html):
    page = Page(hostile_html)
    assert {tag for tag, _ in page.elements} <= OWN_ELEMENTS
    assert not [a for _, attrs in page.elements for a in attrs if a.startswith("on")]
    assert not [attrs for _, attrs in page.elements if attrs.get("id") == INJECTED_ID]
    assert "<script" not in hostile_html.lower()
    assert "<img" not in hostile_html.lower()


def test_hostile_strings_appear_escaped_everywhere_they_are_shown(hostile_html):
    escaped = "&lt;script&gt;document.title=&#34;PWNED&#34;&lt;/script&gt;&#34;&gt;&lt;img id=&#34;injected&#34;"
    assert hostile_html.count(escaped) > 100
    assert "&amp;amp; a|b `tick` ]]&gt; &lt;/style&gt;" in hostile_html


def test_hostile_strings_are_escaped_inside_charts(hostile_html):
    svgs = re.findall(r"<svg .*?</svg>", hostile_html, re.S)
    assert len(svgs) == 9
    for svg in svgs:
        assert "&lt;script&gt;" in svg
        assert "<script" not in svg


def test_control_characters_are_made_visible(hostile_html):
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", hostile_html)
    assert "␛[31mred␀␇" in hostile_html


def test_every_attribute_value_is_quoted(hostile_html):
    for tag in re.findall(r"<[a-zA-Z][^<>]*>", hostile_html):
        assert not re.search(r"=(?!\")", re.sub(r'="[^"]*"', '=""', tag)), tag


def test_an_unknown_status_gets_a_neutral_badge_class(hostile_html):
    classes = {attrs.get("class") for _, attrs in Page(hostile_html).elements if "badge" in (attrs.get("class") or "")}
    assert classes == {"badge big status-warn", "badge status-warn", "badge status-skipped", "badge status-error",
                       "badge status-unknown", "badge status-pass", "badge status-fail"}


# ---- self-contained and well-formed ---------------------------------------------------------


@pytest.mark.parametrize("build", [sample_report, hostile_report])
def test_page_is_self_contained(build):
    html = render_html(build())
    # the one URL allowed: a heat-map panel's PNG, embedded in the page itself
    embedded = re.findall(r'href="data:image/png;base64,[A-Za-z0-9+/]+=*"', html)
    assert len(embedded) == 3  # two panels and the signed panel's colour legend
    for uri in embedded:
        html = html.replace(uri, 'href=""')
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:|//)""", html, re.I)
    for forbidden in ("<link", "<script", "@import", "url(", "<iframe", "<object", "<embed"):
        assert forbidden not in html.lower()


@pytest.mark.parametrize("build", [sample_report, hostile_report])
def test_page_is_well_formed(build):
    html = render_html(build())
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert Page(html).problems == []


def test_rendering_is_deterministic(sample_html):
    assert render_html(sample_report()) == sample_html


# ---- content ----------------------------------------------------------------------------------


def test_header_shows_the_verdict_in_words(sample_html):
    assert '<span class="badge big status-warn">! WARN</span>' in sample_html
    assert "<title>Model audit: ! WARN · income</title>" in sample_html


def test_summary_table_lists_every_audit_with_status_and_headline(sample_html):
    summary = sample_html.split('id="summary-title"')[1].split("</section>")[0]
    for title in ("Classification metrics", "Fairness", "Permutation importance", "Income regression (plugin)"):
        assert f">{title}</a>" in summary
    for label in ("! WARN", "– SKIPPED", "‼ ERROR"):
        assert label in summary
    assert '<span class="name">Accuracy</span> <span class="nowrap">0.853 <span class="ci">[0.847, 0.859]</span>' in summary


def test_gates_follow_the_summary_with_results_in_words_and_the_count_in_the_header(sample_html):
    assert sample_html.index('id="summary-title"') < sample_html.index('id="gates-title"') < sample_html.index(
        'id="audit-1-title"'
    )
    header = sample_html.split('<div class="verdict">')[1].split("</div>")[0]
    assert '<a class="gate-count failed" href="#gates">2 of 5 gates passed</a>' in header
    gates = sample_html.split('id="gates-title"')[1].split("</section>")[0]
    assert "Policy <span class=\"mono\">audit.toml</span>" in gates
    assert '<th scope="col">Noise</th>' in gates
    assert (
        '<tr class="gate-fail">\n  <td class="mono">metrics.f1 vs baseline (max_drop 0.01)</td>\n'
        '  <td><span class="badge status-fail">✗ FAIL</span></td>\n'
        "  <td>F1 (&gt;50K) is 0.673 against 0.701 on the baseline, a drop of 0.028 (at most 0.01 allowed); "
        "the intervals do not overlap: beyond noise</td>\n"
        '<td>beyond noise</td>'
    ) in gates
    assert gates.count("✓ PASS") == 2 and gates.count("✗ FAIL") == 3
    assert '<td class="mono">metrics.accuracy &gt;= 0.8</td>' in gates


def test_the_noise_column_is_shown_only_when_a_regression_has_noise():
    report = sample_report()
    for result in report["gates"]["results"]:
        result["noise"] = None
    assert "Noise</th>" not in render_html(report)
    report["gates"]["results"][2]["noisy"] = True
    assert "<td>varies run to run</td>" in render_html(report)


@pytest.mark.parametrize("gates", [None, "absent"])
def test_without_gates_there_is_no_gates_section(gates):
    report = sample_report()
    if gates == "absent":
        del report["gates"]
    else:
        report["gates"] = gates
    html = render_html(report)
    assert 'id="gates"' not in html and 'class="gate-count' not in html and 'href="#gates"' not in html


def test_hostile_gates_are_escaped_and_a_non_boolean_passed_is_a_failure(hostile_html):
    gates = hostile_html.split('id="gates-title"')[1].split("</section>")[0]
    assert gates.count("&lt;script&gt;document.title=&#34;PWNED&#34;&lt;/script&gt;") == 14
    assert '<a class="gate-count failed" href="#gates">2 of 6 gates passed</a>' in hostile_html
    tampered = gates.split("tampered gate")[1].split("</tr>")[0]
    assert "✗ FAIL" in tampered


def test_metrics_show_values_intervals_and_methods(sample_html):
    assert "<th scope=\"col\">CI method</th>" in sample_html  # two methods: a column
    assert "95% confidence intervals by bootstrap" in sample_html  # one method: said once
    assert '<td class="num">0.0213</td>' in sample_html
    assert '<td class="num">—</td>' in sample_html  # an undefined metric
    assert "Undefined: some targets are zero. Lower is better." in sample_html


def test_findings_tables_notes_and_options_are_shown(sample_html):
    assert '<span class="sev">warning</span><span class="message">Recall of &gt;50K is 0.617' in sample_html
    assert '<td class="num">11,360</td>' in sample_html
    assert "Thresholded at 0.5 on the probability of &gt;50K." in sample_html
    assert "<code>threshold=0.5</code>" in sample_html


def test_model_data_and_run_are_described(sample_html):
    for section in ("model", "data", "run"):
        assert f'<section class="card" id="{section}"' in sample_html
    assert '<td class="mono">net.4</td><td>Linear</td><td class="num">65</td>' in sample_html
    assert "<td>75.4%</td>" not in sample_html and "75.4%</td>" in sample_html
    assert "<th scope=\"row\">Audit: metrics</th><td>853 ms</td>" in sample_html
    assert "audit models/income.pt --data data/adult_test.csv --target income" in sample_html


def test_layer_output_shapes_are_a_column_only_when_known(sample_html):
    assert "<th scope=\"col\">Output shape</th>" in sample_html
    report = sample_report()
    for layer in report["model"]["layers"]:
        del layer["output_shape"]
    assert "Output shape" not in render_html(report)


def test_every_chart_has_an_accessible_title_and_description(sample_html):
    svgs = re.findall(r"<svg [^>]*>.*?</svg>", sample_html, re.S)
    titles = []
    for svg in svgs:
        labelled = re.match(r'<svg [^>]*role="img" aria-labelledby="([^" ]+) ([^" ]+)"', svg)
        assert labelled, svg[:200]
        assert f'<title id="{labelled[1]}">' in svg and f'<desc id="{labelled[2]}">' in svg
        titles.append(re.search(r"<title id=[^>]*>([^<]*)</title>", svg)[1])
    assert titles == [
        "Confusion matrix", "ROC curve", "Precision-recall curve", "Recall by class", "ROC-AUC across folds",
        "Predicted vs actual", "Residuals", "Permutation importance", "Attribution map of one example",
    ]


def test_a_chart_that_cannot_be_drawn_says_why(hostile_html):
    assert "This chart could not be drawn: the chart kind &#39;pie&lt;script&gt;" in hostile_html


def test_print_stylesheet_keeps_tables_and_charts_readable_on_paper(sample_html):
    print_css = sample_html.split("@media print {")[1].split("\n}\n")[0]
    assert "thead { display: table-header-group; }" in print_css
    assert "break-inside: avoid" in print_css
    assert "background: none" in print_css


# ---- charts -----------------------------------------------------------------------------------


def chart(kind: str, **data) -> dict:
    return {"name": "c", "title": "T", "kind": kind, "data": data}


@pytest.mark.parametrize(
    "bad, problem",
    [
        (chart("pie"), "the chart kind 'pie' is not one of"),
        ({"name": "c", "title": "T", "kind": "bar", "data": [1]}, "must be an object"),
        (chart("confusion_matrix", labels=["a", "b"], matrix=[[1, 2]]), "one row per label"),
        (chart("confusion_matrix", labels=["a", "b"], matrix=[[1, 2], [3]]), "one count per label"),
        (chart("confusion_matrix", labels=["a"], matrix=[["x"]]), "must be a list of numbers"),
        (chart("curve", series=[]), "non-empty list"),
        (chart("curve", series=[{"name": "s", "x": [0, 1], "y": [0]}]), "2 x values but 1 y values"),
        (chart("scatter", x=[1], y=[1], reference="y=2x"), "'reference' must be"),
        (chart("scatter", x=[1]), "no 'y' entry"),
        (chart("bar", labels=["a"], values=[1, 2]), "1 labels but 2 values"),
        (chart("bar", labels=["a"], values=[1], errors=[[0, 1, 2]]), "[low, high] or null"),
        (chart("bar", labels=["a"], values=[1], errors=[]), "one [low, high] per value"),
    ],
)
def test_malformed_chart_data_is_reported_not_drawn(bad, problem):
    with pytest.raises(ChartDataError, match=re.escape(problem)):
        render_chart(bad, "x")


def test_gaps_in_a_curve_split_the_line():
    svg = render_chart(chart("curve", series=[{"name": "s", "x": [0, 1, 2, 3, 4], "y": [0, 1, None, 3, 4]}]), "x")
    assert svg.count("<polyline") == 2


def test_scatter_points_on_the_same_pixel_are_drawn_once():
    svg = render_chart(chart("scatter", x=[0.0] * 500 + [1.0], y=[0.0] * 500 + [1.0]), "x")
    assert svg.count("<circle") == 2


def test_undefined_values_are_skipped_or_marked():
    bar = render_chart(chart("bar", labels=["a", "b"], values=[None, 0.5], errors=[None, [0.4, None]]), "x")
    assert ">n/a</text>" in bar
    matrix = render_chart(chart("confusion_matrix", labels=["a", "b"], matrix=[[None, 1], [0, 0]]), "x")
    assert ">—</text>" in matrix


def test_axis_ticks_are_round_numbers():
    svg = render_chart(chart("curve", series=[{"name": "s", "x": [0, 0.93], "y": [0.013, 1]}]), "x")
    ticks = re.findall(r'class="tick">([^<]+)</text>', svg)
    assert ticks == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"] * 2


def test_long_labels_are_shortened_with_the_full_text_as_a_tooltip():
    label = "a very long class name that cannot fit"
    svg = render_chart(chart("bar", labels=[label], values=[1]), "x")
    assert "…<title>" + label + "</title></text>" in svg


def test_large_confusion_matrices_leave_out_cell_text():
    labels = [f"class {i}" for i in range(40)]
    svg = render_chart(chart("confusion_matrix", labels=labels, matrix=[[1] * 40 for _ in labels]), "x")
    assert svg.count("<rect") == 1600
    assert 'class="cell' not in svg


def test_a_report_with_missing_parts_and_wrong_types_still_renders():
    html = render_html(odd_report())
    assert Page(html).problems == []
    assert html.count("This chart could not be drawn") == 2
