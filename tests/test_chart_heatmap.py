"""The ``heatmap`` chart: panels of small images (attribution maps, inputs, time x feature
maps), each an embedded PNG with one pixel per cell, checked here pixel by pixel."""

from __future__ import annotations

import base64
import io
import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest

from auditor.report.charts import KINDS, ChartDataError, render_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ("<script>alert(1)</script>", '" onload="x')
WHITE, GREY, MISSING = (255, 255, 255), (128, 128, 128), (221, 221, 221)
BLUE, VERMILLION = (0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)
PNG_URI = "data:image/png;base64,"


def chart(**data) -> dict:
    return {"name": "h", "title": "Attribution maps", "kind": "heatmap", "data": data}


def panel(values, scale="signed", title="p") -> dict:
    return {"title": title, "values": values, "scale": scale}


def parse(svg: str) -> ET.Element:
    """The SVG as XML (it must be well formed to be inlined), with a namespace for ElementTree."""
    return ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def decode_png(data: bytes) -> list[list[tuple[int, int, int]]]:
    """The pixels of an 8-bit RGB PNG as rows of (r, g, b), checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, kind
        chunks.append((kind, payload))
        position += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    rows = []
    for r in range(height):
        line = raw[r * stride : (r + 1) * stride]
        assert line[0] == 0  # filter type 0
        rows.append([tuple(line[1 + 3 * c : 4 + 3 * c]) for c in range(width)])
    return rows


def png_bytes(image: ET.Element) -> bytes:
    href = image.get("href")
    assert href.startswith(PNG_URI)
    return base64.b64decode(href[len(PNG_URI) :])


def images(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(SVG + "image"))


def panels_of(root: ET.Element) -> list[ET.Element]:
    """The panel images (the colour legends are the 8 px high strips)."""
    return [e for e in images(root) if e.find(SVG + "title") is not None]


def strips_of(root: ET.Element) -> list[ET.Element]:
    return [e for e in images(root) if e.find(SVG + "title") is None]


def pixels(image: ET.Element) -> list[list[tuple[int, int, int]]]:
    return decode_png(png_bytes(image))


def texts(root: ET.Element) -> list[str]:
    return [e.text for e in root.iter(SVG + "text")]


def full_texts(root: ET.Element) -> list[str]:
    """Each text element's whole text: its tooltip where the shown text was shortened."""
    out = []
    for e in root.iter(SVG + "text"):
        title = e.find(SVG + "title")
        out.append(title.text if title is not None else e.text)
    return out


def box(e: ET.Element) -> tuple[float, float, float, float]:
    return float(e.get("x")), float(e.get("y")), float(e.get("width")), float(e.get("height"))


# ---- colours --------------------------------------------------------------------------------


def test_heatmap_is_a_known_kind():
    assert "heatmap" in KINDS
    with pytest.raises(ChartDataError, match="the data has no 'panels' entry"):
        render_chart(chart(x_label="x"), "h")


def test_a_signed_panel_is_blue_white_vermillion_around_zero():
    values = [[1.0, -0.5, 0.0], [None, -1.0, 0.25]]
    root = parse(render_chart(chart(panels=[panel(values)]), "h"))
    (image,) = panels_of(root)
    got = pixels(image)
    assert got[0][0] == VERMILLION  # the most positive cell
    assert got[1][1] == BLUE  # the most negative cell
    assert got[0][2] == WHITE  # zero
    assert got[1][0] == MISSING  # None
    half_blue = tuple(round(255 + (b - 255) * 0.5) for b in BLUE)
    assert got[0][1] == half_blue
    r, g, b = got[1][2]
    assert r > g > b and (r, g, b) == tuple(round(255 + (v - 255) * 0.25) for v in VERMILLION)  # light orange


def test_a_signed_panel_is_symmetric_around_zero_with_its_own_limit():
    """The limit is max |v| of each panel, so a panel of small values still uses full colour,
    and -v gets the same strength of blue as v of vermillion."""
    root = parse(render_chart(chart(panels=[panel([[0.002, -0.001]]), panel([[40.0, -40.0]])]), "h"))
    small, large = (pixels(i) for i in panels_of(root))
    assert small[0][0] == VERMILLION and small[0][1] == tuple(round(255 + (b - 255) * 0.5) for b in BLUE)
    assert large[0] == [VERMILLION, BLUE]


def test_signed_and_magnitude_panels_get_a_labelled_colour_legend():
    root = parse(render_chart(chart(panels=[panel([[0.12, -0.05]]), panel([[0.5, 2.0, -1.0]], "magnitude")]), "h"))
    strips = strips_of(root)
    assert len(strips) == 2
    signed, magnitude = (pixels(s) for s in strips)
    assert len(signed) == 1 and len(signed[0]) >= 20
    assert signed[0][0] == BLUE and signed[0][-1] == VERMILLION
    assert magnitude[0][0] == WHITE and sum(magnitude[0][-1]) < 150  # white to dark
    labels = texts(root)
    assert {"−0.120", "0", "+0.120"} <= set(labels)
    assert {"0", "2.000"} <= set(labels)
    for strip in strips:
        assert float(strip.get("height")) <= 12


def test_the_legend_strip_runs_through_white_at_zero():
    root = parse(render_chart(chart(panels=[panel([[1.0, -1.0]])]), "h"))
    (strip,) = strips_of(root)
    row = pixels(strip)[0]
    middle = row[len(row) // 2 - 1 : len(row) // 2 + 1]
    assert all(min(p) >= 250 for p in middle)


def test_a_magnitude_panel_runs_from_white_to_dark_and_clips_negatives():
    root = parse(render_chart(chart(panels=[panel([[0.0, 1.0, 4.0, -3.0, None]], "magnitude")]), "h"))
    row = pixels(panels_of(root)[0])[0]
    assert row[0] == WHITE and row[3] == WHITE  # zero, and a negative clipped to zero
    assert row[4] == MISSING
    assert sum(row[2]) < 150 and row[2][2] >= row[2][0]  # the largest: dark blue
    assert sum(row[0]) > sum(row[1]) > sum(row[2])  # darker as the value grows
    assert "4.000" in texts(parse(render_chart(chart(panels=[panel([[4.0]], "magnitude")]), "h")))


def test_a_grey_panel_maps_its_minimum_to_black_and_maximum_to_white():
    values = [[2.0, 4.0], [6.0, None]]
    root = parse(render_chart(chart(panels=[panel(values, "grey")]), "h"))
    got = pixels(panels_of(root)[0])
    assert got == [[(0, 0, 0), (128, 128, 128)], [WHITE, MISSING]]
    assert not strips_of(root)  # a photo-like panel needs no colour legend


def test_an_rgb_panel_scales_all_channels_by_the_panel_range():
    values = [[[0, 0, 0], [1, 0, 0]], [[0, 1, 0], [0, 0, 1]], [[1, 1, 1], None]]
    got = pixels(panels_of(parse(render_chart(chart(panels=[panel(values, "rgb")]), "h")))[0])
    assert got == [[(0, 0, 0), (255, 0, 0)], [(0, 255, 0), (0, 0, 255)], [WHITE, MISSING]]
    bytes_like = [[[0, 51, 255], [255, 204, 0]]]  # already 0..255: unchanged
    got = pixels(panels_of(parse(render_chart(chart(panels=[panel(bytes_like, "rgb")]), "h")))[0])
    assert got == [[(0, 51, 255), (255, 204, 0)]]
    shifted = [[[-1.0, 0.0, 1.0]]]
    got = pixels(panels_of(parse(render_chart(chart(panels=[panel(shifted, "rgb")]), "h")))[0])
    assert got == [[(0, 128, 255)]]


def test_non_finite_cells_are_missing_and_do_not_set_the_limits():
    values = [[float("nan"), 1.0, float("inf"), -1.0]]
    svg = render_chart(chart(panels=[panel(values)]), "h")
    assert pixels(panels_of(parse(svg))[0]) == [[MISSING, VERMILLION, MISSING, BLUE]]
    assert "nan" not in svg and "inf" not in svg.replace("information", "")


@pytest.mark.parametrize(
    "values, scale, expected",
    [
        ([[0.7]], "signed", VERMILLION),
        ([[-0.7]], "signed", BLUE),
        ([[0.7]], "grey", GREY),
        ([[0.7]], "magnitude", None),
        ([[[3, 3, 3]]], "rgb", GREY),
        ([[0, 0], [0, 0]], "signed", WHITE),
        ([[0, 0], [0, 0]], "magnitude", WHITE),
        ([[5, 5], [5, 5]], "grey", GREY),
        ([[None, None]], "signed", MISSING),
        ([[None, None]], "grey", MISSING),
        ([[None]], "rgb", MISSING),
    ],
)
def test_one_cell_and_constant_panels_render(values, scale, expected):
    svg = render_chart(chart(panels=[panel(values, scale)]), "h")
    root = parse(svg)
    got = pixels(panels_of(root)[0])
    assert len(got) == len(values) and len(got[0]) == len(values[0])
    if expected is not None:
        assert {p for row in got for p in row} == {expected}
    else:
        assert sum(got[0][0]) < 150
    assert "nan" not in svg and "inf" not in svg


def test_matplotlib_reads_the_same_pixels():
    """An independent PNG decoder (Pillow, through matplotlib) agrees with ours."""
    image_module = pytest.importorskip("matplotlib.image")
    values = [[1.0, -1.0, 0.0, None], [0.5, -0.5, 0.25, -0.25]]
    image = panels_of(parse(render_chart(chart(panels=[panel(values)]), "h")))[0]
    array = image_module.imread(io.BytesIO(png_bytes(image)), format="png")
    assert array.shape[:2] == (2, 4)
    ours = pixels(image)
    for r in range(2):
        for c in range(4):
            assert tuple(round(float(v) * 255) for v in array[r, c, :3]) == ours[r][c]


# ---- determinism, size and layout -----------------------------------------------------------


def test_rendering_and_png_bytes_are_deterministic():
    values = [[(r * 7 + c * 3) % 11 - 5 for c in range(9)] for r in range(6)]
    one = render_chart(chart(panels=[panel(values), panel(values, "grey")]), "h")
    two = render_chart(chart(panels=[panel(values), panel(values, "grey")]), "h")
    assert one == two
    first = [png_bytes(i) for i in images(parse(one))]
    assert first == [png_bytes(i) for i in images(parse(two))]
    changed = [row[:] for row in values]
    changed[0][0] = 4
    other = render_chart(chart(panels=[panel(changed)]), "h")
    assert png_bytes(panels_of(parse(other))[0]) != first[0]


@pytest.mark.parametrize(
    "rows, columns",
    [(1, 1), (8, 8), (28, 28), (4, 8), (8, 3), (100, 100), (256, 256), (200, 70), (3, 1), (2, 2)],
)
def test_a_panel_is_scaled_up_with_its_aspect_ratio_and_one_png_pixel_per_cell(rows, columns):
    values = [[(r + c) % 5 for c in range(columns)] for r in range(rows)]
    root = parse(render_chart(chart(panels=[panel(values, "grey")]), "h"))
    image = panels_of(root)[0]
    got = pixels(image)
    assert (len(got), len(got[0])) == (rows, columns)
    _, _, width, height = box(image)
    assert 120 <= max(width, height) <= 160
    assert width / height == pytest.approx(columns / rows, rel=0.02)
    assert image.get("style") == "image-rendering:pixelated"
    assert image.get("preserveAspectRatio") == "none"


@pytest.mark.parametrize("rows, columns, short", [(1, 256, 16), (2, 200, 32), (10, 100, 48), (120, 4, 48)])
def test_a_very_narrow_map_is_stretched_across_rather_than_drawn_as_a_sliver(rows, columns, short):
    values = [[(r + c) % 5 for c in range(columns)] for r in range(rows)]
    image = panels_of(parse(render_chart(chart(panels=[panel(values, "grey")]), "h")))[0]
    _, _, width, height = box(image)
    assert 120 <= max(width, height) <= 160
    assert min(width, height) == pytest.approx(short, abs=0.1)
    assert (width > height) == (columns > rows)


def test_small_maps_get_whole_pixels_per_cell():
    root = parse(render_chart(chart(panels=[panel([[0] * 8] * 8, "grey")]), "h"))
    _, _, width, height = box(panels_of(root)[0])
    assert width == height == 144  # 18 px per cell


def test_panels_form_a_grid_of_up_to_four_per_row_by_default():
    six = [panel([[i, -i], [1, 0]], title=f"example {i}") for i in range(6)]
    root = parse(render_chart(chart(panels=six), "h"))
    boxes = [box(i) for i in panels_of(root)]
    assert len({x for x, *_ in boxes}) == 4 and len({y for _, y, *_ in boxes}) == 2
    root = parse(render_chart(chart(panels=six, columns=3), "h"))
    boxes = [box(i) for i in panels_of(root)]
    assert len({x for x, *_ in boxes}) == 3 and len({y for _, y, *_ in boxes}) == 2
    assert boxes[0][0] < boxes[1][0] < boxes[2][0] and boxes[3][0] == boxes[0][0]
    svg = parse(render_chart(chart(panels=six[:2], columns=10), "h"))  # never wider than needed
    assert float(svg.get("width")) < 500
    width, height = float(root.get("width")), float(root.get("height"))
    for x, y, w, h in boxes:
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
    assert [t for t in texts(root) if t.startswith("example")] == [f"example {i}" for i in range(6)]


def test_the_description_says_how_many_panels_of_what_size_and_scale():
    six = [panel([[0.1] * 8] * 8) for _ in range(6)]
    root = parse(render_chart(chart(panels=six), "h"))
    assert root.find(SVG + "desc").text == (
        "Heatmaps: 6 panels of 8 by 8 cells (signed: blue negative, white zero, orange positive)."
    )
    mixed = [panel([[1, 2, 3]] * 2, "grey"), panel([[1, 2, 3]] * 2)]
    root = parse(render_chart(chart(panels=mixed, x_label="time", y_label="feature"), "h"))
    assert root.find(SVG + "desc").text == (
        "Heatmaps: 2 panels of 2 rows by 3 columns (greyscale: black lowest, white highest; signed: "
        "blue negative, white zero, orange positive). Rows: feature; columns: time."
    )
    one = parse(render_chart(chart(panels=[panel([[1]], "magnitude"), panel([[1, 2]], "rgb")][:1]), "h"))
    assert one.find(SVG + "desc").text.startswith("Heatmap: 1 panel of 1 by 1 cells (magnitude")


def test_x_and_y_ticks_label_the_columns_and_rows_of_every_panel():
    x_ticks, y_ticks = [f"t{i}" for i in range(6)], ["a", "b", "c"]
    values = [[c - r for c in range(6)] for r in range(3)]
    root = parse(render_chart(
        chart(panels=[panel(values), panel(values, "grey")], x_ticks=x_ticks, y_ticks=y_ticks,
              x_label="time step", y_label="feature"),
        "h",
    ))
    labels = texts(root)
    for tick in x_ticks + y_ticks:
        assert labels.count(tick) == 2  # under / beside each panel
    assert "time step" in labels and "feature" in labels
    for image in panels_of(root):
        x, y, width, height = box(image)
        under = [e for e in root.iter(SVG + "text") if e.text in x_ticks and x <= float(e.get("x")) <= x + width]
        assert len(under) == 6 and all(float(e.get("y")) > y + height for e in under)
        xs = [float(e.get("x")) for e in under]
        assert xs == sorted(xs) and xs[0] == pytest.approx(x + width / 12)  # centred under the columns
        beside = [e for e in root.iter(SVG + "text") if e.text in y_ticks
                  and y <= float(e.get("y")) <= y + height and x - 40 <= float(e.get("x")) <= x]
        assert len(beside) == 3 and all(e.get("text-anchor") == "end" for e in beside)
        assert [e.text for e in sorted(beside, key=lambda e: float(e.get("y")))] == y_ticks


def test_many_ticks_are_thinned_to_at_most_twelve():
    values = [[(r * c) % 7 for c in range(100)] for r in range(40)]
    x_ticks, y_ticks = [f"{i}" for i in range(100)], [f"feature_{i}" for i in range(40)]
    root = parse(render_chart(chart(panels=[panel(values, "grey")], x_ticks=x_ticks, y_ticks=y_ticks), "h"))
    labels = full_texts(root)
    shown_x = [t for t in labels if t in x_ticks]
    shown_y = [t for t in labels if t in y_ticks]
    assert 5 <= len(shown_x) <= 12 and 3 <= len(shown_y) <= 12
    assert shown_x[0] == "0" and shown_y[0] == "feature_0"
    steps = {int(b) - int(a) for a, b in zip(shown_x, shown_x[1:])}
    assert len(steps) == 1  # evenly spaced


def test_ticks_too_wide_for_their_columns_are_turned_upright():
    x_ticks = [f"2024-01-{d:02d}" for d in range(1, 11)]
    root = parse(render_chart(chart(panels=[panel([[1] * 10] * 4)], x_ticks=x_ticks), "h"))
    ticks = [e for e in root.iter(SVG + "text") if e.text in x_ticks]
    assert len(ticks) == 10 and all(e.get("transform", "").startswith("rotate(-90") for e in ticks)
    height = float(root.get("height"))
    assert all(float(e.get("y")) + len(e.text) * 6.6 <= height for e in ticks)
    short = parse(render_chart(chart(panels=[panel([[1] * 4] * 4)], x_ticks=list("abcd")), "h"))
    assert not [e for e in short.iter(SVG + "text") if e.get("transform")]


def test_long_titles_are_shortened_with_the_full_title_as_a_tooltip():
    title = "attribution of example 12 (predicted: seven, true: one)"
    root = parse(render_chart(chart(panels=[panel([[1, 2]], title=title)]), "h"))
    shortened = [e for e in root.iter(SVG + "text") if e.find(SVG + "title") is not None]
    assert len(shortened) == 1 and shortened[0].text.endswith("…")
    assert shortened[0].find(SVG + "title").text == title
    assert panels_of(root)[0].find(SVG + "title").text.startswith(title)


# ---- safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_titles_labels_and_ticks_are_escaped(payload):
    svg = render_chart(
        chart(
            panels=[panel([[1, -1], [0, None]], title=payload), panel([[1, 2], [3, 4]], "grey", title=payload)],
            x_ticks=[payload, "b"],
            y_ticks=[payload, "d"],
            x_label=payload,
            y_label=payload,
        ),
        "h",
    )
    assert "<script" not in svg and 'onload="' not in svg
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert not [a for e in root.iter() for a in e.attrib if a.startswith("on")]
    assert full_texts(root).count(payload) == 8  # 2 titles, 2 x ticks, 2 y ticks, 2 axis titles
    assert all(payload in e.find(SVG + "title").text for e in panels_of(root))


def test_every_image_is_an_embedded_png_and_nothing_else_is_referenced():
    svg = render_chart(chart(panels=[panel([[1, -1]]), panel([[1, 2]], "magnitude")]), "h")
    hrefs = re.findall(r'href="([^"]*)"', svg)
    assert len(hrefs) == 4 and all(h.startswith(PNG_URI) for h in hrefs)
    assert "<script" not in svg and "url(" not in svg and "xlink" not in svg


# ---- malformed data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"panels": []}, "'panels' must be a non-empty list of {title, values, scale}"),
        ({"panels": "p"}, "'panels' must be a non-empty list of {title, values, scale}"),
        ({"panels": None}, "'panels' must be a non-empty list of {title, values, scale}"),
        ({"panels": [3]}, "panel 1 must be an object {title, values, scale}"),
        ({"panels": [{"title": "a", "values": [[1]], "scale": "log"}]},
         "panel 1 ('a'): 'scale' must be 'signed', 'magnitude', 'grey' or 'rgb', not 'log'"),
        ({"panels": [{"values": [[1]]}]},
         "panel 1: 'scale' must be 'signed', 'magnitude', 'grey' or 'rgb', not None"),
        ({"panels": [panel([[1]]), panel([], title="b")]},
         "panel 2 ('b'): 'values' must be a non-empty list of rows (lists of cells)"),
        ({"panels": [panel([1, 2])]}, "panel 1 ('p'): 'values' must be a non-empty list of rows"),
        ({"panels": [panel(None)]}, "panel 1 ('p'): 'values' must be a non-empty list of rows"),
        ({"panels": [panel([[]])]}, "panel 1 ('p'): the rows of 'values' must have at least one cell"),
        ({"panels": [panel([[1, 2], [3]])]},
         "panel 1 ('p'): 'values' must be rectangular: row 1 has 2 cells but row 2 has 1"),
        ({"panels": [panel([[1, "2"]])]}, "panel 1 ('p'): each cell of 'values' must be a number or null"),
        ({"panels": [panel([[1, True]])]}, "panel 1 ('p'): each cell of 'values' must be a number or null"),
        ({"panels": [panel([[[1, 2, 3]]])]}, "panel 1 ('p'): each cell of 'values' must be a number or null"),
        ({"panels": [panel([[1]], "rgb")]},
         "panel 1 ('p'): each cell of an 'rgb' panel must be [r, g, b] numbers or null"),
        ({"panels": [panel([[[1, 2]]], "rgb")]},
         "panel 1 ('p'): each cell of an 'rgb' panel must be [r, g, b] numbers or null"),
        ({"panels": [panel([[[1, 2, "x"]]], "rgb")]},
         "panel 1 ('p'): each cell of an 'rgb' panel must be [r, g, b] numbers or null"),
        ({"panels": [panel([[0] * 257])]},
         "panel 1 ('p') has 1 by 257 cells, more than 256 by 256: downsample before charting"),
        ({"panels": [panel([[0]] * 300)]},
         "panel 1 ('p') has 300 by 1 cells, more than 256 by 256: downsample before charting"),
        ({"columns": 0}, "'columns' must be null or a whole number of at least 1, not 0"),
        ({"columns": 2.0}, "'columns' must be null or a whole number of at least 1, not 2.0"),
        ({"columns": True}, "'columns' must be null or a whole number of at least 1, not True"),
        ({"x_ticks": "abc"}, "'x_ticks' must be null or a list of labels"),
        ({"x_ticks": ["a", "b"]}, "'x_ticks' has 2 labels but panel 1 has 3 columns: one label per column"),
        ({"y_ticks": ["a", "b", "c"]}, "'y_ticks' has 3 labels but panel 1 has 2 rows: one label per row"),
        ({"panels": [panel([[1, 2, 3]] * 2), panel([[1, 2]] * 2)], "x_ticks": ["a", "b", "c"]},
         "'x_ticks' has 3 labels but panel 2 has 2 columns: one label per column"),
    ],
)
def test_malformed_data_is_reported(data, problem):
    base = {"panels": [panel([[1, 2, 3], [4, 5, 6]])]}
    with pytest.raises(ChartDataError, match=re.escape(problem)):
        render_chart(chart(**{**base, **data}), "h")
