"""report.pdf as a review board prints it: no table cut at the page's edge, headed by the
model's name, and a report.json beside it whatever ``--format`` asks for.

What a user saw (issue 17, item 10): the per-fold table of cross-validation stopped at "Log l…"
at the right edge of the page; the header named the file, not the model card's model; and
``--format html,pdf,md`` wrote no report.json, so the run could not be re-rendered.
"""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from cli_helpers import invoke, read_report
from pypdf import PdfReader

from auditor.report.numbers import format_cell
from auditor.report.pdf import pdf_available

CARD_NAME = "Wine cultivar classifier v2"


@pytest.fixture(scope="module")
def printed(tmp_path_factory, wine):
    """A multiclass model's cross-validation, repeated twice (15 columns per fold: the widest
    table the built-in audits write), printed to PDF with a model card, as the user asked:
    html, pdf and md."""
    if pdf_available() is None:
        pytest.fail("Chromium is needed to print report.pdf: install it with `apt-get install chromium`.")
    folder = tmp_path_factory.mktemp("printed")
    card = folder / "model-card.toml"
    card.write_text(f'[model]\nname = "{CARD_NAME}"\n', encoding="utf-8")
    out = folder / "out"
    result = invoke(
        wine.folder / "model.pt", "--data", wine.folder / "test.csv", "--audits", "metrics,crossval",
        "-o", "crossval.repeats=2", "--card", card, "--format", "html,pdf,md", "--out", out, "-q",
    )
    assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
    return out


def pages(out) -> list[str]:
    data = (out / "report.pdf").read_bytes()
    return [unicodedata.normalize("NFKC", p.extract_text()) for p in PdfReader(io.BytesIO(data), strict=True).pages]


def widest_table(report):
    tables = [t for audit in report["audits"].values() for t in audit["tables"]]
    return max(tables, key=lambda t: len(t["columns"]))


def test_report_json_is_written_whatever_the_formats(printed):
    assert sorted(p.name for p in printed.iterdir()) == ["report.html", "report.json", "report.md", "report.pdf"]
    again = printed.parent / "again"
    result = invoke("render", printed / "report.json", "--format", "md", "--out", again)
    assert result.exit_code == 0, result.stderr
    assert (again / "report.md").read_text() == (printed / "report.md").read_text()


def test_help_says_report_json_is_always_written():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert "report.json is always written" in " ".join(result.stdout.split())


def test_the_widest_table_is_printed_to_its_last_column(printed):
    table = widest_table(read_report(printed))
    assert table["name"] == "folds" and len(table["columns"]) == 15 and table["columns"][-1] == "Log loss"
    text = pages(printed)
    page = next(p for p in text if "Metrics per fold" in p)
    flat = " ".join(page.split())
    assert "Log loss" in flat and "Average precision" in flat
    tokens = page.split()
    for row in table["rows"]:  # every fold's last value, whole (not "0.02" of "0.0207")
        assert format_cell(row[-1]) in tokens, (row[-1], page)
        assert format_cell(row[-2]) in tokens  # MCC, the column before it


def test_a_table_of_many_columns_gets_a_landscape_page(printed):
    data = (printed / "report.pdf").read_bytes()
    reader = PdfReader(io.BytesIO(data), strict=True)
    shapes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    landscape = [i for i, (w, h) in enumerate(shapes) if w > h]
    assert landscape, shapes
    assert all("Metrics per fold" in reader.pages[i].extract_text() for i in landscape)
    assert shapes[0][0] < shapes[0][1]  # the rest stays portrait


def test_the_pdf_is_headed_by_the_cards_model_name(printed):
    first = " ".join(pages(printed)[0].split())
    assert f"Model {CARD_NAME} (model.pt) on data" in first
    html = (printed / "report.html").read_text(encoding="utf-8")
    assert re.search(rf"<title>Model audit: .* · {re.escape(CARD_NAME)}</title>", html)


def test_without_a_card_the_header_names_the_model_file(tmp_path, wine):
    out = tmp_path / "out"
    result = invoke(wine.folder / "model.pt", "--data", wine.folder / "test.csv", "--audits", "metrics",
                    "--format", "html", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Model <strong>model</strong> on data" in html
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
