"""A ``curve`` chart's shaded ``band`` (the reliability diagram's consistency band)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from auditor.report.charts import ChartDataError, render_chart

SVG = "{http://www.w3.org/2000/svg}"


def chart(**extra) -> dict:
    data = {"x_label": "Predicted probability", "y_label": "Share of events", "diagonal": True,
            "series": [{"name": "isotonic", "x": [0.1, 0.5, 0.9], "y": [0.12, 0.45, 0.95]}], **extra}
    return {"name": "c", "title": "T", "kind": "curve", "data": data}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_a_band_is_one_shaded_region_under_the_lines_with_a_legend_entry():
    band = {"name": "consistency band <95%>", "x": [0.1, 0.5, 0.9], "low": [0.0, 0.4, 0.85], "high": [0.2, 0.6, 1.0]}
    svg = parse(render_chart(chart(band=band), "rel"))
    shaded = [e for e in svg.iter(f"{SVG}polyline") if e.get("fill-opacity") == "0.10"]
    assert len(shaded) == 1
    corners = shaded[0].get("points").split()
    assert len(corners) == 7 and corners[0] == corners[-1]  # 3 highs, 3 lows, closed
    lines = [e for e in svg.iter(f"{SVG}polyline") if e.get("fill") == "none"]
    assert list(svg.iter(f"{SVG}polyline")).index(shaded[0]) < list(svg.iter(f"{SVG}polyline")).index(lines[0])
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "consistency band <95%>" in texts  # escaped on the way in, read back as text
    assert "consistency band <95%>, isotonic, y = x" in " ".join(t.text or "" for t in svg.iter(f"{SVG}desc"))


def test_a_band_point_with_an_undefined_bound_is_dropped():
    band = {"name": "b", "x": [0.1, 0.5, 0.9], "low": [0.0, None, 0.85], "high": [0.2, 0.6, 1.0]}
    shaded = [e for e in parse(render_chart(chart(band=band), "rel")).iter(f"{SVG}polyline") if e.get("fill-opacity")]
    assert len(shaded[0].get("points").split()) == 5


@pytest.mark.parametrize("band, message", [
    ([0.1, 0.2], "'band' must be null or {name, x, low, high}"),
    ({"x": [0.1, 0.2], "low": [0.0], "high": [0.3, 0.4]}, "'band' has 2 x values, 1 low and 2 high"),
    ({"x": [0.1], "low": ["a"], "high": [0.3]}, "'low' must be a list of numbers"),
])
def test_a_malformed_band_is_a_chart_data_error(band, message):
    from auditor.report.charts.xy import draw_curve

    with pytest.raises(ChartDataError, match=message.replace("{", r"\{").replace("}", r"\}")):
        draw_curve(chart(band=band)["data"])
