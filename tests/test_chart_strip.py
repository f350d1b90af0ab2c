"""The ``strip`` chart: a metric across cross-validation folds, as points with the mean and spread."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from auditor.report.charts import KINDS, ChartDataError, render_chart

HOSTILE = "<script>alert(1)</script>"
SVG = "{http://www.w3.org/2000/svg}"
MARKERS = ("circle", "rect", "polyline")


def chart(**data) -> dict:
    return {"name": "c", "title": "T", "kind": "strip", "data": data}


def folds(**changes) -> dict:
    """Two repeats of 5-fold cross-validation (one value undefined), with the chart's extras."""
    data = {
        "x_label": "Fold",
        "y_label": "ROC-AUC",
        "series": [
            {"name": "repeat 1", "x": [1, 2, 3, 4, 5], "y": [0.91, 0.93, None, 0.9, 0.92]},
            {"name": "repeat 2", "x": [1, 2, 3, 4, 5], "y": [0.9, 0.94, 0.89, 0.91, 0.93]},
        ],
        "mean": 0.915,
        "band": [0.9, 0.93],
        "references": [{"y": 0.912, "label": "given model 0.912"}, {"y": 0.95, "label": "baseline"}],
    }
    return chart(**{**data, **changes})


def parse(svg: str) -> ET.Element:
    """The SVG as XML (it must be well formed to be inlined), with a namespace for ElementTree."""
    return ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def points(root: ET.Element) -> list[ET.Element]:
    """The data points: the markers with a tooltip that names a fold."""
    return [
        e for tag in MARKERS for e in root.iter(SVG + tag)
        if (title := e.find(SVG + "title")) is not None and ", Fold " in (title.text or "")
    ]


def test_strip_is_a_known_kind():
    assert "strip" in KINDS
    with pytest.raises(ChartDataError, match="the data has no 'series' entry"):
        render_chart(chart(x_label="Fold", y_label="AUC"), "x")


def test_each_defined_point_is_one_marker_with_a_tooltip():
    svg = render_chart(folds(), "cv")
    root = parse(svg)
    drawn = points(root)
    assert len(drawn) == 9  # 10 values, one None
    tooltips = sorted(e.find(SVG + "title").text for e in drawn)
    assert "repeat 1, Fold 3: 0.890" not in tooltips
    assert "repeat 2, Fold 3: 0.890" in tooltips and "repeat 1, Fold 1: 0.910" in tooltips
    # the two series differ by marker shape, not only by colour
    assert {e.tag for e in drawn} == {SVG + "circle", SVG + "rect"}
    assert len({e.get("fill") for e in drawn}) == 2


def test_mean_band_and_references_are_drawn_and_described():
    svg = render_chart(folds(), "cv")
    root = parse(svg)
    assert any(e.get("stroke-width") == "2" and e.get("stroke-dasharray") == "none"
               for e in root.iter(SVG + "line")), "the mean line"
    assert sum(1 for e in root.iter(SVG + "line") if e.get("stroke-dasharray") == "5 4") == 2
    bands = [e for e in root.iter(SVG + "rect") if e.get("fill-opacity")]
    assert len(bands) == 2  # the band and its legend sample
    assert bands[0].find(SVG + "title").text == "mean ± 1 SD: 0.900 to 0.930"
    texts = [e.text for e in root.iter(SVG + "text")]
    assert {"given model 0.912", "baseline", "mean", "mean ± 1 SD", "repeat 1", "repeat 2"} <= set(texts)
    description = root.find(SVG + "desc").text
    assert description == (
        "Dot plot of ROC-AUC by Fold: 9 points in 2 series, mean 0.915, band mean ± 1 SD, "
        "references given model 0.912, baseline."
    )


def test_the_y_domain_covers_points_mean_band_and_references():
    svg = render_chart(folds(references=[{"y": 0.5, "label": "chance"}]), "cv")
    y_ticks = [float(t) for t in re.findall(r'text-anchor="end" class="tick">([^<]+)</text>', svg)]
    assert min(y_ticks) <= 0.5 and max(y_ticks) >= 0.94


def test_no_point_sits_on_the_frame():
    root = parse(render_chart(folds(), "cv"))
    grid = [e for e in root.iter(SVG + "line") if e.get("stroke") == "#555555"]
    left = min(float(e.get("x1")) for e in grid)
    right = max(float(e.get("x2")) for e in grid)
    xs = [float(e.get("cx")) for e in points(root) if e.tag == SVG + "circle"]
    assert left + 10 < min(xs) and max(xs) < right - 10


def test_series_at_the_same_fold_are_offset_apart():
    root = parse(render_chart(folds(), "cv"))
    centres: dict[str, set[float]] = {}
    for e in points(root):
        title = e.find(SVG + "title").text
        if ", Fold 1:" in title:
            if e.tag == SVG + "circle":
                cx = float(e.get("cx"))
            else:
                cx = float(e.get("x")) + float(e.get("width")) / 2
            centres.setdefault(title.split(",")[0], set()).add(round(cx, 1))
    assert set(centres) == {"repeat 1", "repeat 2"}
    assert centres["repeat 1"] != centres["repeat 2"]
    assert abs(next(iter(centres["repeat 1"])) - next(iter(centres["repeat 2"]))) >= 3


def test_many_series_cycle_through_marker_shapes():
    series = [{"name": f"seed {i}", "x": [1, 2], "y": [0.8 + i / 100, 0.82]} for i in range(5)]
    root = parse(render_chart(chart(x_label="Fold", y_label="acc", series=series), "cv"))
    drawn = points(root)
    assert len(drawn) == 10
    assert {e.tag for e in drawn} == {SVG + "circle", SVG + "rect", SVG + "polyline"}
    assert any(e.get("transform", "").startswith("rotate(45") for e in drawn)  # diamonds


def test_hostile_strings_are_escaped():
    svg = render_chart(
        chart(
            x_label=HOSTILE,
            y_label=HOSTILE,
            series=[{"name": HOSTILE, "x": [1, 2], "y": [0.5, 0.6]}],
            mean=0.55,
            band=[0.5, 0.6],
            band_label=HOSTILE,
            references=[{"y": 0.7, "label": HOSTILE}],
        ),
        "cv",
    )
    assert "<script" not in svg
    assert svg.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"series": []}, "'series' must be a non-empty list of {name, x, y}"),
        ({"series": "s"}, "'series' must be a non-empty list of {name, x, y}"),
        ({"series": [1]}, "'series' must be a non-empty list of {name, x, y}"),
        ({"series": None}, "'series' must be a non-empty list of {name, x, y}"),
        (
            {"series": [{"name": "r", "x": [1, 2, 3], "y": [0.1, 0.2]}]},
            "series 'r' has 3 x values but 2 y values",
        ),
        ({"series": [{"name": "r", "x": [1], "y": ["a"]}]}, "'y' must be a list of numbers"),
        ({"series": [{"name": "r", "y": [1]}]}, "the data has no 'x' entry"),
        ({"mean": "high"}, "'mean' must be null or a number"),
        ({"mean": float("nan")}, "'mean' must be null or a number"),
        ({"band": [0.1]}, "'band' must be null or [low, high]"),
        ({"band": 0.1}, "'band' must be null or [low, high]"),
        ({"band": [0.1, None]}, "'band' must be null or [low, high]"),
        ({"references": {"y": 1}}, "'references' must be null or a list of {y, label}"),
        ({"references": [{"label": "no y"}]}, "each reference needs a number 'y'"),
        ({"references": [{"y": "0.9", "label": "text"}]}, "each reference needs a number 'y'"),
    ],
)
def test_malformed_data_is_reported(data, problem):
    base = {"x_label": "Fold", "y_label": "AUC", "series": [{"name": "r", "x": [1], "y": [0.9]}]}
    with pytest.raises(ChartDataError, match=re.escape(problem)):
        render_chart(chart(**{**base, **data}), "x")


@pytest.mark.parametrize(
    "data",
    [
        {"series": [{"name": "r", "x": [1], "y": [0.9]}]},
        {"series": [{"name": "r", "x": [1, 2, 3], "y": [0.9, 0.9, 0.9]}], "mean": 0.9, "band": [0.9, 0.9]},
        {"series": [{"name": "r", "x": [3, 3], "y": [0, 0]}], "references": [{"y": 0, "label": "zero"}]},
        {"series": [{"name": "r", "x": [1, 2], "y": [None, None]}], "mean": None, "band": None},
        {"series": [{"name": "a", "x": [], "y": []}, {"name": "b", "x": [1.5], "y": [-2.0]}]},
    ],
)
def test_degenerate_data_still_draws(data):
    svg = render_chart(chart(x_label="Fold", y_label="AUC", **data), "x")
    root = parse(svg)
    assert root.tag == SVG + "svg"
    assert "nan" not in svg and "inf" not in svg
    expected = sum(v is not None for s in data["series"] for v in s["y"])
    assert len(points(root)) == expected


def test_no_point_sits_on_the_top_or_bottom_of_the_frame():
    root = parse(render_chart(folds(), "cv"))
    frame = [e for e in root.iter(SVG + "line") if e.get("stroke") == "#555555"]
    top = min(float(e.get("y1")) for e in frame)
    bottom = max(float(e.get("y1")) for e in frame)
    ys = [float(e.get("cy")) for e in points(root) if e.tag == SVG + "circle"]
    assert top + 3 < min(ys) and max(ys) < bottom - 3
