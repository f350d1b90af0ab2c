"""report.pdf: report.html printed by headless Chromium, for a review board to file.

The page :func:`~auditor.report.html.render_html` draws is written to a private temporary
directory and printed with the browser's own print-to-PDF, so the template's print
stylesheet decides the layout (page margins, page numbers, tables that do not split a row).
The temporary directory (the page, a fresh browser profile and the PDF) is removed
afterwards, whatever happens.

The printed page and the browser are both kept offline and quiet. The page gets a
Content-Security-Policy (:data:`PAGE_POLICY`) that runs no script and loads nothing from
anywhere: the report needs neither, so a future template or escaping bug cannot make the
printer run script or fetch a URL. Every host name resolves to nothing
(``--host-resolver-rules``), so neither the page nor the browser's own background services
reach the network (Chromium asks Google for the signed-in accounts, the network time and
more on start-up, whatever the profile and the flags below); background networking, sync,
extensions, component updates, crash reports and first-run screens are off, and its log is
kept to fatal errors. As root Chromium refuses to start with its sandbox, so there (and
where the sandbox cannot start) it runs without it: the page it prints is our own, escaped
HTML that may not run script.

The PDF's creation and modification dates are the run's start (``run.started``) rather than
the moment it was printed, so printing the same report.json again on the same machine gives
the same bytes, as the other formats do.

The browser is ``$AUDITOR_CHROMIUM`` when set (a path, or a name looked up on PATH), else the
first of :data:`BROWSER_NAMES` on PATH. A browser that is missing, fails or runs past
:data:`TIMEOUT_S` raises :class:`~auditor.contract.errors.UsageError`; since every format is rendered
before any file is written (see :mod:`auditor.report.write`), no report.pdf is then written.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.contract.errors import UsageError
from auditor.report import view
from auditor.report.html import render_html

if TYPE_CHECKING:
    from auditor.report.document import Report

#: Environment variable naming the browser to print with (a path, or a name on PATH).
BROWSER_ENV = "AUDITOR_CHROMIUM"
#: The browsers looked for on PATH, in order.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Seconds the browser may take to print one report.
TIMEOUT_S = 120.0

#: The Content-Security-Policy of the printed page: inline styles and data: images only.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

INSTALL_HINT = (
    "Install Chromium (Debian/Ubuntu: apt-get install chromium) or Google Chrome, or set "
    f"{BROWSER_ENV} to the browser's path; or write --format html and print report.html "
    "from a browser."
)

#: Background services that would call Google even with a fresh profile; the host
#: resolver rule below stops them anyway, this only spares the attempts.
_DISABLED_FEATURES = "NetworkTimeServiceQuerying,AimEnabled,MediaRouter,OptimizationHints,Translate"

_QUIET_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-quic",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    f"--disable-features={_DISABLED_FEATURES}",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--log-level=3",
)


def pdf_available() -> str | None:
    """The browser that would print report.pdf, or ``None`` when there is none.

    ``$AUDITOR_CHROMIUM`` wins when set: a path to an executable, or a name on PATH; a value
    that is neither means no browser (rather than quietly printing with another one).
    """
    configured = os.environ.get(BROWSER_ENV, "").strip()
    if configured:
        return shutil.which(configured)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_pdf() -> str:
    """The browser's path; raises :class:`UsageError` saying how to get one when there is none.

    Call it before any work starts when ``pdf`` is among the formats asked for.
    """
    browser = pdf_available()
    if browser is not None:
        return browser
    configured = os.environ.get(BROWSER_ENV, "").strip()
    if configured:
        problem = f"{BROWSER_ENV} is set to {configured!r}, which is not an executable file or a command on PATH."
    else:
        problem = f"none of {', '.join(BROWSER_NAMES)} is on PATH."
    raise UsageError(
        f"The pdf format is printed by Chromium or Google Chrome, and no browser was found: {problem}",
        hint=INSTALL_HINT,
    )


def with_policy(html: str) -> str:
    """``html`` with :data:`PAGE_POLICY` as the first element of its ``<head>``."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{PAGE_POLICY}">'
    head = re.search(r"<head(\s[^>]*)?>", html, re.IGNORECASE)
    if head is None:  # not a page render_html draws; still, no script before the policy
        return f"<!DOCTYPE html><html><head>{meta}</head>{html}"
    return html[: head.end()] + meta + html[head.end() :]


def chromium_command(
    browser: str, page: Path, output: Path, profile: Path, *, sandbox: bool = True, extra: Sequence[str] = ()
) -> list[str]:
    """The command line that prints ``page`` to ``output`` with a fresh profile in ``profile``."""
    return [
        browser,
        *_QUIET_FLAGS,
        *(() if sandbox else ("--no-sandbox",)),
        f"--user-data-dir={profile}",
        f"--print-to-pdf={output}",
        "--no-pdf-header-footer",
        "--print-to-pdf-no-header",  # the same, for Chromium before 111
        "--export-tagged-pdf",  # headings, tables and reading order, for screen readers
        "--generate-pdf-document-outline",  # bookmarks from the headings
        *extra,
        page.as_uri(),
    ]


def render_pdf(source: Report | Mapping[str, Any], *, timeout: float = TIMEOUT_S) -> bytes:
    """The report as a PDF: report.html printed by headless Chromium."""
    from auditor.report.document import as_document

    report: dict[str, Any] = as_document(source)
    browser = require_pdf()
    html = with_policy(render_html(report))
    with tempfile.TemporaryDirectory(prefix="auditor-pdf-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)  # mode 0700: only this user can read the page or the profile
        page = work / "report.html"
        page.write_text(html, encoding="utf-8")
        output = work / "report.pdf"
        sandbox = not _is_root()
        done = _print(browser, page, output, work, sandbox, timeout)
        if done.returncode != 0 and sandbox and "sandbox" in done.stderr.lower():
            done = _print(browser, page, output, work, False, timeout)
        data = output.read_bytes() if output.is_file() else b""
    if done.returncode != 0 or not (data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]):
        what = f"exited with code {done.returncode}" if done.returncode != 0 else "wrote no complete PDF"
        raise UsageError(
            f"Chromium ({browser}) could not print the report to PDF: it {what}{_last_words(done.stderr)}.",
            hint=(
                f"Check that `{browser} --version` runs, or set {BROWSER_ENV} to another browser; "
                "or write --format html and print report.html from a browser."
            ),
        )
    return _dated(data, view.section(report, "run").get("started"))


def _pdf_date(started: Any) -> bytes | None:
    """``started`` (an ISO 8601 time with its offset) as a PDF date in UTC, else ``None``."""
    if not isinstance(started, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(started)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(_dt.timezone.utc).strftime("D:%Y%m%d%H%M%S+00'00'").encode("ascii")


def _dated(data: bytes, started: Any) -> bytes:
    """The PDF with its creation and modification dates set to ``started``.

    Chromium writes both, uncompressed, in the document information dictionary, in the same
    23-character form as :func:`_pdf_date`; each is replaced only where it has exactly that
    length, so no byte offset in the file moves. Anything else is left as Chromium wrote it.
    """
    date = _pdf_date(started)
    if date is None:
        return data

    def replace(match: re.Match[bytes]) -> bytes:
        return match[1] + date + b")" if len(match[2]) == len(date) else match[0]

    return re.sub(rb"(/(?:CreationDate|ModDate) ?\()(D:[0-9]{14}[-+Z][0-9']{0,6}'?)\)", replace, data, count=2)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _print(
    browser: str, page: Path, output: Path, work: Path, sandbox: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run the browser once, in a session of its own, so it and its helpers end with it."""
    output.unlink(missing_ok=True)
    profile = work / ("profile" if sandbox else "profile-no-sandbox")
    command = chromium_command(browser, page, output, profile, sandbox=sandbox)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise UsageError(
            f"Chromium ({browser}) could not be started to print the report: {exc.strerror or exc}.",
            hint=INSTALL_HINT,
        ) from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(process)
        raise UsageError(
            f"Chromium ({browser}) did not finish printing the report to PDF within {timeout:g} s.",
            hint="Run it again; if it keeps hanging, write --format html and print report.html from a browser.",
        ) from None
    except BaseException:
        _end(process)
        raise
    _end(process)  # any helper that outlived the browser
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _end(process: subprocess.Popen[str]) -> None:
    """Kill what is left of the browser's session (it and every helper it started) and reap it."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # a helper that left the session still holds a pipe
        pass


def _last_words(stderr: str) -> str:
    """The browser's last error (else last) log line, shortened, as ``" (...)"``, or nothing."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if re.search(r"fatal|error", line, re.IGNORECASE)]
    line = (fatal or lines or [""])[-1]
    if len(line) > 240:
        line = line[:237] + "..."
    return f" ({line})" if line else ""
