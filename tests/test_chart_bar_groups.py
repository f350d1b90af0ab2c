"""The ``bar`` chart's optional groups: each bar coloured by its group, with a legend of the
groups that occur and the group's name in each bar's tooltip."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from auditor.report.charts import PALETTE, ChartDataError, render_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ("<script>alert(1)</script>", '" onload="x')
GREY = "#999999"
LOWER, RAISE, MIXED = "higher values lower the output", "higher values raise the output", "mixed"


def chart(**data) -> dict:
    return {"name": "importance", "title": "Permutation importance", "kind": "bar", "data": data}


def importance(**changes) -> dict:
    """A ranked feature-importance chart, bars coloured by the sign of the feature's effect."""
    data = {
        "x_label": "Feature",
        "y_label": "Drop in ROC-AUC",
        "labels": ["age", "hours_per_week", "education_num", "capital_gain", "workclass"],
        "values": [0.12, 0.08, 0.05, 0.02, None],
        "groups": [1, 0, None, 1, 0],
        "legend": [LOWER, RAISE, MIXED],
    }
    return chart(**{**data, **changes})


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def bars(root: ET.Element) -> dict[str, ET.Element]:
    """The bars by tooltip: every rect with a title."""
    return {e.find(SVG + "title").text: e for e in root.iter(SVG + "rect") if e.find(SVG + "title") is not None}


def legend(root: ET.Element) -> list[tuple[str, str]]:
    """(name, swatch colour) of each legend entry, in order."""
    swatches = [e for e in root.iter(SVG + "rect") if e.find(SVG + "title") is None]
    names = [e for e in root.iter(SVG + "text") if e.get("class") == "legend"]
    assert len(swatches) == len(names)
    full = [(n.find(SVG + "title").text if n.find(SVG + "title") is not None else n.text) for n in names]
    return [(name, s.get("fill")) for name, s in zip(full, swatches)]


def test_each_bar_takes_its_groups_colour_and_names_the_group_in_its_tooltip():
    root = parse(render_chart(importance(), "b"))
    drawn = bars(root)
    assert list(drawn) == [
        f"age: 0.120 ({RAISE})",
        f"hours_per_week: 0.08 ({LOWER})",
        "education_num: 0.05",
        f"capital_gain: 0.02 ({RAISE})",
    ]
    assert drawn[f"age: 0.120 ({RAISE})"].get("fill") == PALETTE[1] == "#D55E00"
    assert drawn[f"capital_gain: 0.02 ({RAISE})"].get("fill") == PALETTE[1]
    assert drawn[f"hours_per_week: 0.08 ({LOWER})"].get("fill") == PALETTE[0] == "#0072B2"
    assert drawn["education_num: 0.05"].get("fill") == GREY  # no group: neutral grey
    assert ">n/a</text>" in render_chart(importance(), "b")  # the undefined value is still marked


def test_the_legend_lists_only_the_groups_that_occur_in_legend_order():
    root = parse(render_chart(importance(), "b"))
    assert legend(root) == [(LOWER, PALETTE[0]), (RAISE, PALETTE[1])]  # "mixed" is not used
    root = parse(render_chart(importance(groups=[2, 2, 2, 2, 2]), "b"))
    assert legend(root) == [(MIXED, PALETTE[2])]
    assert {e.get("fill") for e in bars(root).values()} == {PALETTE[2]}


def test_the_legend_sits_below_the_plot_inside_the_drawing():
    plain = parse(render_chart(importance(groups=None, legend=None), "b"))
    grouped = parse(render_chart(importance(), "b"))
    assert float(grouped.get("height")) > float(plain.get("height"))
    assert grouped.get("width") == plain.get("width")
    lowest_bar = max(float(e.get("y")) for e in bars(grouped).values())
    height = float(grouped.get("height"))
    for e in grouped.iter(SVG + "text"):
        if e.get("class") == "legend":
            assert lowest_bar < float(e.get("y")) <= height - 4


def test_all_bars_ungrouped_draw_grey_with_no_legend():
    root = parse(render_chart(importance(groups=[None] * 5), "b"))
    assert {e.get("fill") for e in bars(root).values()} == {GREY}
    assert legend(root) == []
    assert all("(" not in tooltip for tooltip in bars(root))


def test_groups_beyond_the_palette_reuse_its_colours():
    names = [f"g{i}" for i in range(9)]
    root = parse(render_chart(chart(labels=["a", "b"], values=[1, 2], groups=[8, 0], legend=names), "b"))
    drawn = bars(root)
    assert drawn["a: 1 (g8)"].get("fill") == PALETTE[8 % len(PALETTE)]
    assert legend(root) == [("g0", PALETTE[0]), ("g8", PALETTE[8 % len(PALETTE)])]


def test_error_bars_and_groups_together():
    root = parse(render_chart(
        chart(labels=["a"], values=[1.0], errors=[[0.5, 1.5]], groups=[0], legend=["raises"]), "b"
    ))
    assert list(bars(root)) == ["a: 1.000 [0.500, 1.500] (raises)"]
    assert root.find(SVG + "desc").text == (
        "Bar chart of  for 1 categories with error bars. Colour shows the group: raises."
    )


def test_the_description_names_the_groups():
    root = parse(render_chart(importance(), "b"))
    assert root.find(SVG + "desc").text == (
        f"Bar chart of Drop in ROC-AUC for 5 Feature. Colour shows the group: {LOWER}, {RAISE}; "
        "grey bars have no group."
    )


@pytest.mark.parametrize(
    "extra",
    [{"groups": None}, {"groups": None, "legend": None}, {"legend": [LOWER, RAISE]}, {"legend": None}],
)
def test_without_groups_the_chart_is_drawn_exactly_as_before(extra):
    base = {
        "x_label": "Class", "y_label": "Recall", "labels": ["<=50K", ">50K"], "values": [0.93108, 0.61703],
        "errors": [[0.92641, 0.93562], [0.60118, 0.63297]],
    }
    plain = render_chart(chart(**base), "b")
    assert render_chart(chart(**base, **extra), "b") == plain
    assert plain.count('fill="#0072B2"') == 2 and "legend" not in plain


def test_group_zero_everywhere_keeps_the_bars_but_adds_the_legend():
    base = {"labels": ["a", "b"], "values": [1.0, 2.0]}
    plain = parse(render_chart(chart(**base), "b"))
    grouped = parse(render_chart(chart(**base, groups=[0, 0], legend=["all"]), "b"))
    assert [e.get("fill") for e in bars(plain).values()] == [e.get("fill") for e in bars(grouped).values()]
    assert legend(grouped) == [("all", PALETTE[0])]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_group_names_are_escaped(payload):
    svg = render_chart(chart(labels=[payload, "b"], values=[1, 2], groups=[0, 1], legend=[payload, "ok"]), "b")
    assert "<script" not in svg and 'onload="' not in svg
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert not [a for e in root.iter() for a in e.attrib if a.startswith("on")]
    assert f"{payload}: 1 ({payload})" in bars(root)
    assert legend(root)[0] == (payload, PALETTE[0])


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"groups": [0]}, "'groups' must be null or one group index (or null) per label (2)"),
        ({"groups": [0, 1, 0]}, "'groups' must be null or one group index (or null) per label (2)"),
        ({"groups": "01"}, "'groups' must be null or one group index (or null) per label (2)"),
        ({"groups": [0, 2]}, "each entry of 'groups' must be an index into 'legend' (0 to 1) or null, not 2"),
        ({"groups": [-1, 0]}, "each entry of 'groups' must be an index into 'legend' (0 to 1) or null, not -1"),
        ({"groups": [1.0, 0]}, "each entry of 'groups' must be an index into 'legend' (0 to 1) or null, not 1.0"),
        ({"groups": [True, 0]}, "each entry of 'groups' must be an index into 'legend' (0 to 1) or null, not True"),
        ({"groups": ["0", 0]}, "each entry of 'groups' must be an index into 'legend' (0 to 1) or null, not '0'"),
        ({"groups": [0, None], "legend": []},
         "each entry of 'groups' must be an index into 'legend' (none: the legend is empty) or null, not 0"),
        ({"groups": [0, 1], "legend": None}, "'groups' needs a 'legend': a list of group names"),
        ({"legend": "raise"}, "'legend' must be null or a list of group names"),
        ({"legend": ["raise", 3]}, "'legend' must be null or a list of group names"),
        ({"groups": [0, 1], "legend": [None, "b"]}, "'legend' must be null or a list of group names"),
    ],
)
def test_malformed_groups_are_reported(data, problem):
    base = {"labels": ["a", "b"], "values": [1, 2], "groups": [0, 1], "legend": ["raise", "lower"]}
    with pytest.raises(ChartDataError, match=re.escape(problem)):
        render_chart(chart(**{**base, **data}), "b")


@pytest.mark.parametrize("values", [[0.0, 1e-15], [1e-300, 3e-300, 0.0], [-2e-17, 1e-17]])
def test_bars_of_tiny_values_draw_on_a_scale_of_their_own(values):
    # a degenerate model's importances can be ~1e-15: every tick rounded to 12 decimals was
    # 0, and drawing the axis divided by zero (an internal error writing report.html)
    root = parse(render_chart(importance(labels=[f"f{i}" for i in range(len(values))], values=values,
                                         groups=None, legend=None), "c"))
    widths = [float(bar.get("width")) for bar in bars(root).values()]
    assert len(widths) == len(values) and max(widths) > 0
    ticks = [e.text for e in root.iter(SVG + "text") if e.get("class") == "tick"]
    assert len(set(ticks)) == len(ticks) >= 2  # distinct, readable tick labels
