"""A plugin adds a chart kind through the entry-point group auditor.charts, without editing core:
a real distribution (dist-info with entry_points.txt) put on sys.path."""

from __future__ import annotations

import textwrap

import pytest
from report_fixtures import PAYLOAD, sample_report

from auditor.contract.result import Chart
from auditor.report.charts import CHART_GROUP, ChartDataError, render_chart
from auditor.report.document import Report
from auditor.report.html import render_html
from auditor.report.markdown import render_markdown

DRAWN = '<svg class="radar" viewBox="0 0 10 10"><circle cx="5" cy="5" r="{n}"/></svg>'


@pytest.fixture
def radar_plugin(tmp_path, monkeypatch):
    """Install a distribution `radar-charts` that draws the kinds "radar" and "broken"."""
    site = tmp_path / "site"
    (site / "radar_charts").mkdir(parents=True)
    (site / "radar_charts" / "__init__.py").write_text(textwrap.dedent(f'''
        from auditor.contract.result import Chart

        def draw(chart: Chart) -> str:
            assert isinstance(chart, Chart)
            return {DRAWN!r}.format(n=len(chart.data["axes"]))

        def broken(chart):
            raise RuntimeError("cannot draw")
        '''), encoding="utf-8")
    info = site / "radar_charts-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: radar-charts\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[{CHART_GROUP}]\nradar = radar_charts:draw\nbroken = radar_charts:broken\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    return site


def _chart(kind: str, title: str = "Skill radar") -> dict:
    return Chart(name="radar", title=title, kind=kind, data={"axes": ["a", "b", "c"]},
                 caption="Each axis is one skill.").to_dict()


def _report_with(chart: dict) -> dict:
    report = Report.from_dict(sample_report()).to_dict()
    report["audits"]["metrics"]["charts"].append(chart)
    return report


def test_a_kind_no_plugin_draws_is_refused(radar_plugin):
    with pytest.raises(ChartDataError, match="'polar' is not one of"):
        render_chart(_chart("polar"), "c1")


def test_a_plugin_kind_is_drawn_by_the_plugin_with_an_escaped_title(radar_plugin):
    svg = str(render_chart(_chart("radar", title="Radar" + PAYLOAD), "c1"))
    assert DRAWN.format(n=3) in svg
    assert "<script>" not in svg.replace(DRAWN.format(n=3), "") and "&lt;script&gt;" in svg


def test_the_html_report_inlines_the_plugin_chart_and_markdown_points_to_it(radar_plugin):
    report = _report_with(_chart("radar"))
    assert DRAWN.format(n=3) in render_html(report)
    markdown = render_markdown(report)
    assert "Each axis is one skill. (chart: radar, see report.html)" in markdown


def test_a_plugin_that_fails_makes_its_chart_say_so_not_the_report(radar_plugin):
    html = render_html(_report_with(_chart("broken")))
    assert "This chart could not be drawn" in html and "RuntimeError: cannot draw" in html


def test_without_the_plugin_the_kind_is_unknown():
    html = render_html(_report_with(_chart("radar")))
    assert "This chart could not be drawn" in html and "&#39;radar&#39; is not one of" in html
