"""report.pdf: the report as a review board files it, printed by headless Chromium.

``--format pdf`` (in ``audit`` and in ``audit render``) writes report.pdf: report.html,
printed with the browser's own print-to-PDF, so it holds the same text as the page, on more
than one page, with bookmarks to every section. Printing runs no script and reaches no
network, whatever the report holds: a hostile report's payloads come out as literal text,
and the PDF holds no JavaScript and no action that launches or opens anything. The same
report prints to the same bytes. Without a browser, or with one that fails or hangs, the
error says how to get one and no report.pdf is written.

Chromium is required: these tests fail, rather than skip, when it is missing. The ones about
a browser that fails, hangs or lacks its sandbox use a fake browser (a small script).
"""

from __future__ import annotations

import html
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_clean_input_error, invoke
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, RectangleObject, TextStringObject
from report_fixtures import PAYLOAD, PWNED, hostile_report, sample_report

from auditor.contract.errors import UsageError
from auditor.report import view
from auditor.report.html import render_html
from auditor.report.pdf import (
    BROWSER_ENV,
    chromium_command,
    pdf_available,
    render_pdf,
    require_pdf,
    with_policy,
)
from auditor.report.write import write_reports

#: PDF names that run script, start a program, open a URL or a file, or act on opening.
ACTIVE_NAMES = {
    "/JavaScript", "/JS", "/Launch", "/URI", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
    "/OpenAction", "/AA", "/RichMedia", "/EmbeddedFile", "/EmbeddedFiles",
}  # fmt: skip


@pytest.fixture(scope="module")
def chromium() -> str:
    found = pdf_available()
    if found is None:
        pytest.fail(
            "Chromium is needed to print report.pdf and was not found on PATH: "
            "install it with `apt-get install chromium`."
        )
    return found


@pytest.fixture(scope="module")
def sample_pdf(chromium) -> bytes:
    return render_pdf(sample_report())


@pytest.fixture(scope="module")
def hostile_pdf(chromium) -> bytes:
    return render_pdf(hostile_report())


def reader(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data), strict=True)


def text_of(data: bytes) -> str:
    """The PDF's text, ligatures undone and all whitespace dropped: table cells break
    words across lines, so text is compared with its whitespace dropped as well."""
    text = "".join(page.extract_text() for page in reader(data).pages)
    return "".join(unicodedata.normalize("NFKC", text).split())


def squeezed(text: str) -> str:
    return "".join(text.split())


def page_title(report: dict[str, Any]) -> str:
    """The page's title as the browser shows it (whitespace collapsed)."""
    found = re.search(r"<title>(.*?)</title>", render_html(report), re.DOTALL)
    assert found is not None
    return " ".join(html.unescape(found[1]).split())


def outline_titles(data: bytes) -> list[str]:
    titles: list[str] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            walk(item) if isinstance(item, list) else titles.append(item.title)

    walk(reader(data).outline)
    return titles


def names_in(data: bytes) -> set[str]:
    """Every name used anywhere in the PDF, as a key or a value, in every object it holds
    (including objects nothing refers to and objects inside object streams)."""
    pdf = reader(data)
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, DictionaryObject):
            for key, item in value.items():
                found.add(str(key))
                walk(item)
        elif isinstance(value, ArrayObject):
            for item in value:
                walk(item)
        elif isinstance(value, NameObject):
            found.add(str(value))

    walk(pdf.trailer)
    for number in range(1, int(pdf.trailer["/Size"])):
        walk(pdf.get_object(number))
    return found


# --- the sample report ------------------------------------------------------------------


def test_sample_report_prints_to_a_multi_page_pdf(sample_pdf):
    assert sample_pdf.startswith(b"%PDF-")
    assert len(reader(sample_pdf).pages) > 1


def test_pdf_holds_the_report_title_every_audit_and_every_section(sample_pdf):
    report = sample_report()
    text = text_of(sample_pdf)
    assert reader(sample_pdf).metadata.title == page_title(report)
    assert "Modelauditreport" in text
    for name, audit in view.audits(report):
        assert squeezed(view.audit_title(name, audit)) in text, name
    for section in ("Summary", "Model", "Data", "Run"):
        assert section in text


def test_pdf_bookmarks_lead_to_every_section_and_audit(sample_pdf):
    report = sample_report()
    titles = outline_titles(sample_pdf)
    assert {"Summary", "Model", "Data", "Run"} <= set(titles)
    assert {view.audit_title(name, audit) for name, audit in view.audits(report)} <= set(titles)


def test_same_report_prints_to_the_same_bytes_dated_when_the_run_started(sample_pdf):
    assert render_pdf(sample_report()) == sample_pdf
    started = reader(sample_pdf).metadata.creation_date
    assert started.isoformat() == sample_report()["run"]["started"]


# --- the hostile report -----------------------------------------------------------------


def test_hostile_payloads_are_printed_as_literal_text(hostile_pdf):
    text = text_of(hostile_pdf)
    assert f'<script>document.title="{PWNED}"</script>' in text
    assert squeezed('"><img id="injected" src=x onerror=') in text
    assert "&amp;a|b`tick`]]></style>" in text
    # A script run while printing would have set the title (PDF's /Title) to PWNED.
    assert reader(hostile_pdf).metadata.title == page_title(hostile_report())
    assert reader(hostile_pdf).metadata.title.endswith("[bold]rich markup[/] ␛[31mred␀␇")


def test_hostile_pdf_holds_no_script_and_no_action_that_opens_anything(hostile_pdf):
    names = names_in(hostile_pdf)
    assert {"/Catalog", "/Page", "/Font"} <= names  # the check did read the PDF's objects
    assert names & ACTIVE_NAMES == set()


def test_the_action_check_sees_what_it_looks_for():
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    script = {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}
    link = {
        NameObject("/Type"): NameObject("/Annot"),
        NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): RectangleObject([0, 0, 10, 10]),
        NameObject("/A"): DictionaryObject(script),
    }
    writer.add_annotation(0, DictionaryObject(link))
    writer.add_uri(0, "https://example.org/", RectangleObject([20, 20, 30, 30]))
    written = io.BytesIO()
    writer.write(written)
    assert {"/JavaScript", "/JS", "/URI"} <= names_in(written.getvalue())


def test_printing_runs_no_script_even_if_the_page_had_one(chromium, monkeypatch):
    unescaped = f"<!DOCTYPE html><html><head><title>control</title></head><body>{PAYLOAD}</body></html>"
    monkeypatch.setattr("auditor.report.pdf.render_html", lambda report: unescaped)
    assert reader(render_pdf(sample_report())).metadata.title == "control"


def test_printing_sends_nothing_over_the_network(chromium, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(with_policy(render_html(sample_report())), encoding="utf-8")
    assert network_traffic(chromium, page, tmp_path) == set()


def test_the_traffic_check_sees_a_request_to_a_local_server(chromium, tmp_path):
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            requested.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = tmp_path / "control.html"
        image = f"http://127.0.0.1:{server.server_address[1]}/x.png"
        page.write_text(f'<!DOCTYPE html><title>network</title><img src="{image}">', encoding="utf-8")
        # The same command, but with this one address left to resolve.
        traffic = network_traffic(
            chromium, page, tmp_path, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
        )
    finally:
        server.shutdown()
    assert requested == ["/x.png"]
    assert {"TCP_CONNECT", "SOCKET_BYTES_SENT"} <= traffic


def network_traffic(chromium: str, page: Path, folder: Path, *extra: str) -> set[str]:
    """The kinds of net log event that show traffic (a DNS query, a TCP connection, bytes
    sent) while ``page`` is printed with render_pdf's command line."""
    net_log = folder / "net.json"
    command = chromium_command(
        chromium, page, folder / "report.pdf", folder / "profile",
        sandbox=os.geteuid() != 0, extra=(f"--log-net-log={net_log}", *extra),
    )  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF-")
    log = json.loads(net_log.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    kinds = {names.get(event["type"], "") for event in log["events"]}
    assert "URL_REQUEST_START_JOB" in kinds or "HOST_RESOLVER_MANAGER_REQUEST" in kinds  # it logged
    return {k for k in kinds if k.startswith("DNS_TRANSACTION") or k.endswith("BYTES_SENT") or k == "TCP_CONNECT"}


# --- through the command line -------------------------------------------------------------


def test_audit_render_writes_report_pdf(chromium, tmp_path):
    write_reports(sample_report(), tmp_path, ["json"])
    result = invoke("render", tmp_path / "report.json", "--format", "pdf")
    assert result.exit_code == 0, result.output
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(reader(pdf).pages) > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.pdf"]


def test_audit_render_without_a_browser_says_how_to_get_one_and_writes_nothing(tmp_path, monkeypatch):
    write_reports(sample_report(), tmp_path, ["json"])
    monkeypatch.setenv(BROWSER_ENV, str(tmp_path / "no-such-browser"))
    monkeypatch.setenv("PATH", "")
    result = invoke("render", tmp_path / "report.json", "--format", "md,pdf")
    assert_clean_input_error(result, "apt-get install chromium", "--format html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


# --- finding the browser --------------------------------------------------------------------


@pytest.mark.parametrize("configured", [True, False], ids=["AUDITOR_CHROMIUM missing", "none on PATH"])
def test_require_pdf_without_a_browser_says_how_to_install_one(tmp_path, monkeypatch, configured):
    if configured:
        monkeypatch.setenv(BROWSER_ENV, str(tmp_path / "no-such-browser"))
    else:
        monkeypatch.delenv(BROWSER_ENV, raising=False)
    monkeypatch.setenv("PATH", "")
    assert pdf_available() is None
    with pytest.raises(UsageError) as raised:
        require_pdf()
    message = str(raised.value)
    assert "\n" not in message
    assert "apt-get install chromium" in message and "--format html" in message
    assert ("no-such-browser" in message) is configured


def test_auditor_chromium_names_the_browser(tmp_path, monkeypatch):
    browser = fake_browser(tmp_path)
    monkeypatch.setenv(BROWSER_ENV, str(browser))
    monkeypatch.setenv("PATH", "")
    assert pdf_available() == require_pdf() == str(browser)


# --- a browser that misbehaves (a fake one) ---------------------------------------------------

FAKE_BROWSER = r'''
import json, os, stat, subprocess, sys, time
from pathlib import Path
from urllib.parse import unquote, urlparse

args = sys.argv[1:]
flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
page = Path(unquote(urlparse(args[-1]).path))
record = {
    "args": args, "page": str(page), "html": page.read_text(encoding="utf-8"), "pid": os.getpid(),
    "folder_mode": stat.S_IMODE(page.parent.stat().st_mode), "profile": flags["user-data-dir"],
}
mode = os.environ.get("FAKE_BROWSER_MODE", "ok")
if mode == "hang":
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    record["helper"] = helper.pid
with open(os.environ["FAKE_BROWSER_RECORD"], "a", encoding="utf-8") as handle:
    handle.write(json.dumps(record) + "\n")
output = Path(flags["print-to-pdf"])
if mode == "crash":
    sys.stderr.write("some noise\n[1:1:FATAL:renderer.cc(1)] Aw, snap\n")
    sys.exit(5)
if mode == "hang":
    time.sleep(120)
if mode == "half":
    output.write_bytes(b"%PDF-1.7\n1 0 obj\n<</Type /Catalog")
    sys.exit(0)
if mode == "sandbox" and "--no-sandbox" not in args:
    sys.stderr.write("[1:1:FATAL:zygote_host_impl_linux.cc(1)] No usable sandbox!\n")
    sys.exit(1)
Path(flags["user-data-dir"]).mkdir(parents=True, exist_ok=True)
output.write_bytes(b"%PDF-1.4\n% fake\ntrailer\n%%EOF\n")
'''


def fake_browser(folder: Path) -> Path:
    path = folder / "fake-chromium"
    path.write_text(f"#!{sys.executable}\n{FAKE_BROWSER}", encoding="utf-8")
    path.chmod(0o755)
    return path


class FakeBrowser:
    """The fake browser, set as $AUDITOR_CHROMIUM; :meth:`runs` is what it recorded of each run."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.record = folder / "record.jsonl"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv(BROWSER_ENV, str(fake_browser(folder)))
        monkeypatch.setenv("FAKE_BROWSER_RECORD", str(self.record))

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_BROWSER_MODE", mode)

    def runs(self) -> list[dict[str, Any]]:
        lines = self.record.read_text(encoding="utf-8").splitlines() if self.record.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture()
def fake(tmp_path, monkeypatch) -> FakeBrowser:
    return FakeBrowser(tmp_path, monkeypatch)


def test_the_page_and_the_profile_are_private_and_removed_afterwards(fake):
    fake.mode("ok")
    assert render_pdf(sample_report()).startswith(b"%PDF-")
    [run] = fake.runs()
    assert run["folder_mode"] == 0o700
    assert not Path(run["page"]).exists() and not Path(run["profile"]).exists()
    assert not Path(run["page"]).parent.exists()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'' in run["html"]
    for flag in ("--headless", "--no-pdf-header-footer", "--host-resolver-rules=MAP * ~NOTFOUND"):
        assert flag in run["args"]


def test_a_browser_that_fails_is_a_clear_error_and_leaves_the_reports_as_they_were(fake, tmp_path):
    fake.mode("crash")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.pdf").write_bytes(b"previous")
    with pytest.raises(UsageError, match=r"could not print the report to PDF: it exited with code 5 \(.*Aw, snap\)"):
        write_reports(sample_report(), out, ["json", "pdf"])
    assert sorted(p.name for p in out.iterdir()) == ["report.pdf"]
    assert (out / "report.pdf").read_bytes() == b"previous"


def test_a_half_written_pdf_is_refused(fake):
    fake.mode("half")
    with pytest.raises(UsageError, match="wrote no complete PDF"):
        render_pdf(sample_report())


def test_a_browser_that_hangs_is_stopped_with_its_helpers(fake):
    fake.mode("hang")
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"did not finish printing the report to PDF within 2 s"):
        render_pdf(sample_report(), timeout=2)
    assert time.monotonic() - started < 30
    [run] = fake.runs()
    for pid in (run["pid"], run["helper"]):
        assert not running(pid), pid


def test_without_its_sandbox_only_where_the_sandbox_cannot_start(fake, monkeypatch):
    monkeypatch.setattr("auditor.report.pdf._is_root", lambda: False)
    fake.mode("ok")
    render_pdf(sample_report())
    fake.mode("sandbox")
    assert render_pdf(sample_report()).startswith(b"%PDF-")
    assert ["--no-sandbox" in run["args"] for run in fake.runs()] == [False, False, True]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, killed and not yet reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
