"""report.html in a real browser: headless Chromium loads it from disk, runs whatever scripts
it would run, and shows, screenshots and prints it.

The hostile payload (see ``report_fixtures``) would set ``document.title`` to ``PWNED`` or
create an element with id ``injected`` if any of it were parsed as markup; a control page
with the same payload left unescaped checks that this browser would indeed show it.
Chromium is required: the test fails, rather than skips, when it is missing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import INJECTED_ID, PAYLOAD, PWNED, hostile_report, sample_report

from auditor.report.html import render_html

WINDOW = (1280, 2400)


class Dom(HTMLParser):
    """The title and the elements of a page as the browser left it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title" and not self.title

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def injected(self) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.elements if t in ("script", "img") or a.get("id") == INJECTED_ID]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is needed to check report.html in a real browser and was not found on PATH: "
            "install it with `apt-get install chromium`."
        )
    return found


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    contents = {
        "sample": render_html(sample_report()),
        "hostile": render_html(hostile_report()),
        "control": f"<!DOCTYPE html><html><head><title>control</title></head><body>{PAYLOAD}</body></html>",
    }
    paths = {}
    for name, html in contents.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(html, encoding="utf-8")
    return paths


@pytest.fixture()
def browse(chromium, tmp_path):
    """Run headless Chromium on a page with extra arguments; returns its standard output."""

    def run(page: Path, *arguments: str) -> str:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", *arguments, page.as_uri(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
        return done.stdout

    return run


def test_the_browser_would_show_an_injection(browse, pages):
    dom = Dom(browse(pages["control"], "--dump-dom"))
    assert dom.title == PWNED
    assert any(a.get("id") == INJECTED_ID for _, a in dom.elements)


def test_hostile_report_runs_nothing_and_creates_no_element(browse, pages):
    dom = Dom(browse(pages["hostile"], "--dump-dom"))
    assert dom.title.startswith("Model audit: ! WARN · income<script>")
    assert dom.injected() == []
    tags = [tag for tag, _ in dom.elements]
    assert tags.count("svg") == 9 and "footer" in tags  # the whole page was loaded


def test_screenshot_shows_a_full_page(browse, pages, tmp_path):
    shot = tmp_path / "report.png"
    browse(pages["sample"], f"--screenshot={shot}", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 100_000  # a blank or unstyled page compresses to far less


def test_report_prints_to_a_multi_page_pdf(browse, pages, tmp_path):
    pdf = tmp_path / "report.pdf"
    browse(pages["sample"], f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) > 1
