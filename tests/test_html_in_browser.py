"""report.html in a real browser: headless Chromium loads it from disk, runs whatever scripts
it would run, and shows, screenshots and prints it.

The hostile payload (see ``report_fixtures``) would set ``document.title`` to ``PWNED`` or
create an element with id ``injected`` if any of it were parsed as markup; a control page
with the same payload left unescaped checks that this browser would indeed show it.

The page logs nothing to the console (Chromium's log on stderr) and asks the network for
nothing (Chromium's net log); each check is first shown to catch a control page that does.
Every host name resolves to nothing here (``--host-resolver-rules``), so the browser's own
start-up requests (Chromium asks Google for the signed-in accounts and more) stay on this
machine; the net log still records every request asked for, and tells the page's from those.
Chromium is required: the test fails, rather than skips, when it is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import INJECTED_ID, PAYLOAD, PWNED, hostile_report, sample_report

from auditor.report.html import render_html

WINDOW = (1280, 2400)

#: URL schemes that never leave the machine.
LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:")


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
        "control-console": "<!DOCTYPE html><html><head><title>console</title></head>"
        "<body><script>console.error('x')</script></body></html>",
        # 127.0.0.1 port 9 is loopback, and nothing listens there.
        "control-network": "<!DOCTYPE html><html><head><title>network</title></head>"
        '<body><img src="http://127.0.0.1:9/x.png"></body></html>',
    }
    paths = {}
    for name, html in contents.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(html, encoding="utf-8")
    return paths


@pytest.fixture()
def browse(chromium, tmp_path):
    """Run headless Chromium on a page with extra arguments; returns what it printed."""

    def run(page: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", *arguments, page.as_uri(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
        return done

    return run


def console_messages(stderr: str) -> list[str]:
    """The lines of Chromium's log (``--enable-logging=stderr``) that a page's console wrote.

    Chromium logs every console message, whatever its level, as ``...:CONSOLE:<line>] "text",
    source: <url>`` (``CONSOLE(<line>)`` before Chromium 120), and an uncaught exception as
    ``Uncaught ...``; a report page has no script, so any of them is an error.
    """
    return [line for line in stderr.splitlines() if re.search(r"CONSOLE[(:]|Uncaught", line)]


def read_net_log(path: Path) -> list[dict[str, Any]]:
    """The events of a net log (``--log-net-log``), each with its type's name under "kind"."""
    text = path.read_text(encoding="utf-8")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a browser that stops abruptly leaves the events list open
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    return [{**event, "kind": names.get(event["type"], "")} for event in log["events"]]


def page_requests(net_log: Path) -> list[str]:
    """What the page asked the network for: URLs it requested and hosts it looked up.

    Chromium also sends requests of its own on start-up, whatever the page (the time, the
    Google accounts signed in, ...): those have no initiator and are keyed to a site that
    is not the page's (file://). Every other URL request is the page's (its resources and
    any navigation it starts, whose initiator is the page), and so is every host name
    looked up for the page's site (a preconnect or DNS prefetch requests no URL).
    """
    found = []
    for event in read_net_log(net_log):
        params = event.get("params") or {}
        if event["kind"] == "URL_REQUEST_START_JOB" and "url" in params:
            own = params.get("initiator") == "not an origin" and not str(
                params.get("network_isolation_key", "")
            ).startswith("file://")
            if not own and not params["url"].startswith(LOCAL_SCHEMES):
                found.append(params["url"])
        elif event["kind"] == "HOST_RESOLVER_MANAGER_REQUEST" and "host" in params:
            if str(params.get("network_anonymization_key", "")).startswith("file://"):
                found.append(params["host"])
    return found


def test_the_browser_would_show_an_injection(browse, pages):
    dom = Dom(browse(pages["control"], "--dump-dom").stdout)
    assert dom.title == PWNED
    assert any(a.get("id") == INJECTED_ID for _, a in dom.elements)


def test_hostile_report_runs_nothing_and_creates_no_element(browse, pages):
    dom = Dom(browse(pages["hostile"], "--dump-dom").stdout)
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


LOGGING = ("--enable-logging=stderr", "--v=0")


def test_the_console_check_sees_a_console_error(browse, pages):
    messages = console_messages(browse(pages["control-console"], *LOGGING, "--dump-dom").stderr)
    assert any('"x"' in line for line in messages), messages


@pytest.mark.parametrize("name", ["sample", "hostile"])
def test_report_logs_nothing_to_the_console(browse, pages, name):
    done = browse(pages[name], *LOGGING, "--dump-dom")
    assert "</footer>" in done.stdout  # the whole page was loaded
    assert console_messages(done.stderr) == []


def test_the_network_check_sees_a_request(browse, pages, tmp_path):
    net_log = tmp_path / "net.json"
    browse(pages["control-network"], f"--log-net-log={net_log}", "--dump-dom")
    assert "http://127.0.0.1:9/x.png" in page_requests(net_log)


@pytest.mark.parametrize("name", ["sample", "hostile"])
def test_report_requests_nothing_from_the_network(browse, pages, tmp_path, name):
    net_log = tmp_path / "net.json"
    browse(pages[name], f"--log-net-log={net_log}", "--dump-dom")
    assert read_net_log(net_log)  # the log was written
    assert page_requests(net_log) == []
