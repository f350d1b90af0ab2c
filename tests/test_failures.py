"""Failures mid-run and misbehaving plugins: whatever breaks, the run says so and goes on.

Each test injects one failure: a third-party plugin that fails to import, raises, returns
a malformed result or runs too long; Ctrl-C or SIGTERM in the middle of an audit (real
signals to a real ``audit`` process); a crash or an interrupt while the reports are being
written; CUDA running out of memory during inference. Plugins are installed the way pip
would, into a temporary site folder with a dist-info and an entry point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import install_plugin, invoke, read_report

from auditor.report import write as report_write
from auditor.run import runner
from auditor.run.inference import run_inference
from auditor.testing import make_context

REPORT_FILES = ["report.html", "report.json", "report.md"]

PLUGINS = {
    "broken_import": ("BrokenImport", '''
        raise ImportError("the plugin needs a library that is not installed")
    '''),
    "exits_on_import": ("ExitsOnImport", '''
        import sys
        sys.exit("this plugin only works on its author's machine")
    '''),
    "broken_init": ("BrokenInit", '''
        from auditor.contract.plugin import Audit

        class BrokenInit(Audit):
            name = "broken_init"
            title = "Raises when created"
            description = "Its constructor raises."

            def __init__(self):
                raise RuntimeError("no licence key found")

            def run(self, ctx, options):
                raise AssertionError("never created, never run")
    '''),
    "raises": ("Raises", '''
        from auditor.contract.plugin import Audit

        class Raises(Audit):
            name = "raises"
            title = "Raises in run"
            description = "An audit with a bug."

            def run(self, ctx, options):
                return {}["missing key"]
    '''),
    "exits": ("Exits", '''
        import sys
        from auditor.contract.plugin import Audit

        class Exits(Audit):
            name = "exits"
            title = "Calls sys.exit in run"
            description = "An audit that ends the process (it must not)."

            def run(self, ctx, options):
                sys.exit(0)
    '''),
    "malformed": ("Malformed", '''
        import os
        from auditor.contract.plugin import Audit
        from auditor.contract.result import AuditResult, Finding

        class Malformed(Audit):
            name = "malformed"
            title = "Returns a malformed result"
            description = "What it returns depends on AUDITOR_TEST_MALFORMED."

            def run(self, ctx, options):
                kind = os.environ["AUDITOR_TEST_MALFORMED"]
                if kind == "none":
                    return None
                if kind == "dict":
                    return {"status": "pass"}
                result = AuditResult(audit=self.name, title=self.title, status="pass", summary="Fine.")
                if kind == "bad_metric":
                    result.metrics["accuracy"] = 0.5  # a float, not a Metric: to_dict fails
                elif kind == "nan_note":
                    result.notes.append(float("nan"))  # JSON has no NaN
                elif kind == "bad_status":
                    result.status = "great"
                elif kind == "bad_severity":
                    result.findings.append(Finding("error", "x", "y"))
                    object.__setattr__(result.findings[0], "severity", "catastrophic")
                elif kind == "object_in_table":
                    from auditor.contract.result import Table
                    result.tables.append(Table("t", "T", ["a"], [[object()]]))
                return result
    '''),
    "sleepy": ("Sleepy", '''
        import time
        from auditor.contract.plugin import Audit

        class Sleepy(Audit):
            name = "sleepy"
            title = "Sleeps for a minute"
            description = "Takes too long."

            def run(self, ctx, options):
                time.sleep(60)
                raise AssertionError("the timeout did not stop the audit")
    '''),
    "spinning": ("Spinning", '''
        import time
        from auditor.contract.plugin import Audit

        class Spinning(Audit):
            name = "spinning"
            title = "Loops in Python, swallowing exceptions"
            description = "Takes too long and catches Exception."

            def run(self, ctx, options):
                end = time.monotonic() + 60
                total = 0
                while time.monotonic() < end:
                    try:
                        total += sum(range(1000))
                    except Exception:
                        pass
                raise AssertionError("the timeout did not stop the audit")
    '''),
    "slow": ("Slow", '''
        import tempfile
        import time
        from pathlib import Path
        from auditor.contract.plugin import Audit

        class Slow(Audit):
            name = "slow"
            title = "Slow"
            description = "Says it started, then takes two minutes."

            def run(self, ctx, options):
                # the run is confined: its private scratch folder (TMPDIR) is all it may write
                Path(tempfile.gettempdir(), "started").write_text("started")
                time.sleep(120)
                raise AssertionError("the run was not interrupted")
    '''),
}


def install(site: Path, name: str) -> None:
    cls, source = PLUGINS[name]
    install_plugin(site, name, cls, source)


@pytest.fixture
def audit_run(tmp_path, breast_cancer, monkeypatch):
    """Run ``audit`` in-process on the breast-cancer model with the metrics audit and the
    plugins installed for the test (AUDITOR_PLUGINS keeps the other built-ins out)."""
    monkeypatch.setenv("COLUMNS", "250")  # the terminal summary on one line per row

    def run(*plugins: str, args: tuple = ()) -> tuple:
        monkeypatch.setenv("AUDITOR_PLUGINS", ",".join(["metrics", *plugins]))
        out = tmp_path / "out"
        result = invoke(
            breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, *args
        )
        return result, out

    return run


def one_line(text: str) -> str:
    return " ".join(text.split())


def assert_isolated(result, out, name: str, summary: str) -> dict:
    """Exit 3, the report names the broken audit with the reason, the built-in still ran, and
    the terminal summary shows it."""
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    report = read_report(out)
    broken = report["audits"][name]
    assert broken["status"] == "error"
    assert summary in broken["summary"], broken["summary"]
    assert [f["severity"] for f in broken["findings"]] == ["error"]
    assert report["audits"]["metrics"]["status"] in ("pass", "warn")
    assert report["verdict"] == "error"
    screen = one_line(result.stdout)
    assert "ERROR" in screen
    assert broken["title"] in screen  # a plugin that failed to load: its entry-point name
    assert one_line(summary) in screen
    return report


# --- 1. plugins that fail to load ---------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "summary"),
    [
        ("broken_import", "The plugin failed to load: ImportError: the plugin needs a library that is not installed"),
        ("exits_on_import", "The plugin failed to load: SystemExit: this plugin only works on its author's machine"),
        ("broken_init", "The plugin failed to load: RuntimeError: no licence key found"),
    ],
)
def test_a_plugin_that_fails_to_load_is_an_error_result_under_its_entry_point_name(site, audit_run, plugin, summary):
    install(site, plugin)
    result, out = audit_run(plugin)
    report = assert_isolated(result, out, plugin, summary)
    assert report["run"]["plugins"][plugin] == f"{plugin} 0.1"  # provenance names it too


def test_a_broken_plugin_named_in_audits_is_still_an_error_result(site, audit_run):
    """Asking for a broken plugin by name is not a usage error: the run says what is wrong."""
    install(site, "broken_import")
    result, out = audit_run("broken_import", args=("--audits", "metrics,broken_import", "-q"))
    assert result.exit_code == 3
    assert read_report(out)["audits"]["broken_import"]["status"] == "error"


def test_a_broken_plugin_left_out_by_audits_or_skip_does_not_fail_the_run(site, audit_run, tmp_path):
    install(site, "broken_import")
    for args in (("--audits", "metrics"), ("--skip", "broken_import")):
        result, out = audit_run("broken_import", args=(*args, "-q"))
        assert result.exit_code == 0, (args, result.stderr)
        assert "broken_import" not in read_report(out)["audits"]


def test_audit_plugins_lists_a_broken_plugin_with_the_reason_and_exits_3(site, monkeypatch):
    install(site, "broken_import")
    install(site, "broken_init")
    monkeypatch.setenv("AUDITOR_PLUGINS", "metrics,broken_import,broken_init")
    monkeypatch.setenv("COLUMNS", "250")

    listed = invoke("plugins", "--json")
    assert listed.exit_code == 3
    listing = {item["name"]: item for item in json.loads(listed.stdout)}
    assert listing["metrics"]["error"] is None
    assert listing["broken_import"]["error"] == (
        "The plugin failed to load: ImportError: the plugin needs a library that is not installed"
    )
    assert listing["broken_init"]["error"] == "The plugin failed to load: RuntimeError: no licence key found"
    assert listing["broken_import"]["module"] == "broken_import"
    assert "broken_import, broken_init" in listed.stderr or "broken_init, broken_import" in listed.stderr

    table = invoke("plugins")
    assert table.exit_code == 3
    screen = one_line(table.stdout)
    assert "metrics" in screen and "BROKEN" in screen
    assert "ImportError: the plugin needs a library" in screen


# --- 1. plugins that raise or return a malformed result ---------------------------------------


def test_a_plugin_that_raises_in_run_is_an_error_result(site, audit_run):
    install(site, "raises")
    result, out = audit_run("raises")
    assert_isolated(result, out, "raises", "The audit raised an error: KeyError: 'missing key'")


def test_a_plugin_that_calls_sys_exit_in_run_does_not_end_the_run(site, audit_run):
    install(site, "exits")
    result, out = audit_run("exits")
    assert_isolated(result, out, "exits", "The audit raised an error: SystemExit: 0")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("none", "run() returned NoneType, not an AuditResult"),
        ("dict", "run() returned dict, not an AuditResult"),
        ("bad_metric", "to_dict() failed: AttributeError"),
        ("nan_note", "JSON cannot hold it: Out of range float values are not JSON compliant"),
        ("bad_status", "its status is 'great'; allowed: pass, warn, fail, not assessed, skipped, error"),
        ("bad_severity", "a finding has severity 'catastrophic'"),
        ("object_in_table", "JSON cannot hold it: Object of type object is not JSON serializable"),
    ],
)
def test_a_plugin_returning_a_malformed_result_is_an_error_result(site, audit_run, monkeypatch, kind, reason):
    install(site, "malformed")
    monkeypatch.setenv("AUDITOR_TEST_MALFORMED", kind)
    result, out = audit_run("malformed")
    assert_isolated(result, out, "malformed", f"The audit returned a malformed result: {reason}")


# --- 2. the per-audit timeout ---------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["sleepy", "spinning"])
def test_an_audit_past_the_timeout_is_stopped_and_the_others_still_run(site, audit_run, plugin):
    install(site, plugin)
    started = time.monotonic()
    result, out = audit_run(plugin, args=("--audit-timeout", "1.5"))
    assert time.monotonic() - started < 30
    assert_isolated(result, out, plugin, "The audit did not finish within 1.5 s and was stopped.")
    report = read_report(out)
    assert report["audits"][plugin]["findings"][0]["code"] == "audit-timeout"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_the_timeout_can_be_set_in_pyproject(site, audit_run, tmp_path, monkeypatch):
    install(site, "sleepy")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.auditor]\naudit_timeout = 1\n")
    monkeypatch.chdir(project)
    result, out = audit_run("sleepy", args=("-q",))
    assert result.exit_code == 3
    assert read_report(out)["audits"]["sleepy"]["summary"] == "The audit did not finish within 1 s and was stopped."


def test_a_fast_audit_is_untouched_by_the_timeout(audit_run):
    result, out = audit_run(args=("--audit-timeout", "600", "-q"))
    assert result.exit_code == 0, result.stderr
    assert read_report(out)["audits"]["metrics"]["status"] in ("pass", "warn")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("setting", ["0", "-5", '"soon"', "true", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(audit_run, tmp_path, monkeypatch, setting):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(f"[tool.auditor]\naudit_timeout = {setting}\n")
    monkeypatch.chdir(project)
    result, out = audit_run(args=("-q",))
    assert result.exit_code == 2, (setting, result.stderr)
    assert "audit_timeout" in result.stderr
    assert not out.exists()


def test_the_timeout_option_rejects_zero():
    result = invoke("run", "model.pt", "--data", "x.csv", "--audit-timeout", "0")
    assert result.exit_code == 2


def test_outside_the_main_thread_the_timeout_is_not_enforced_and_the_result_says_so():
    class Quick:
        name, title, description, needs, options = "quick", "Quick", "Returns at once.", (), ()

        def run(self, ctx, options):
            from auditor.contract.result import AuditResult

            return AuditResult(audit="quick", title="Quick", status="pass", summary="Done.")

    ctx = make_context(y=[0, 1], proba=[0.2, 0.7])
    seen = {}
    worker = threading.Thread(
        target=lambda: seen.update(runner.run_audits(ctx, {"quick": Quick()}, {"quick": {}}, timeout=5).results)
    )
    worker.start()
    worker.join()
    assert seen["quick"].status == "pass"
    assert seen["quick"].notes == [
        "audit_timeout (5 s) was not enforced: the audits run outside the main thread."
    ]


# --- 3. Ctrl-C and SIGTERM, in a real process -------------------------------------------------


def _start_slow_run(tmp_path: Path, site: Path, breast_cancer) -> tuple[subprocess.Popen, Path, Path | None]:
    install(site, "slow")
    out = tmp_path / "out"
    out.mkdir()
    # A deep TMPDIR, as CI runners and cluster jobs have: too long for a Unix socket under
    # it, so the run must make the model server's socket elsewhere.
    scratch = tmp_path / ("deep-" * 16) / "tmp"
    scratch.mkdir(parents=True)
    assert len(str(scratch)) + 36 > 107
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["AUDITOR_PLUGINS"] = "metrics,slow"
    env["TMPDIR"] = str(scratch)  # the run's scratch folder is made in it
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", str(breast_cancer.folder / "model.pt"),
         "--data", str(breast_cancer.folder / "test.csv"), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell without job control starts background jobs with SIGINT ignored, and
        # Python keeps it ignored: give the process the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    def started() -> Path | None:
        return next(iter(scratch.glob("auditor-run-*/tmp/started")), None)

    while started() is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"the slow audit never started (exit {proc.returncode}): {stderr}")
        time.sleep(0.05)
    return proc, out, started()


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_an_audit_ends_the_run_with_one_line_and_no_report(
    tmp_path, site, breast_cancer, sent, code
):
    proc, out, _ = _start_slow_run(tmp_path, site, breast_cancer)
    proc.send_signal(sent)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == code, stderr
    assert "Traceback" not in stdout + stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["Interrupted: no report written."]
    assert list(out.iterdir()) == []  # no report, no temporary file


# --- 3. crashes and interrupts while the reports are written ---------------------------------


def test_a_renderer_that_crashes_leaves_no_file(audit_run, monkeypatch):
    from auditor.report import renderers as registry

    def broken_markdown(document):
        raise RuntimeError("the Markdown renderer has a bug")

    monkeypatch.setitem(registry.RENDERERS, "md", broken_markdown)
    result, out = audit_run(args=("-q",))
    assert result.exit_code == 3
    assert "Internal error: RuntimeError: the Markdown renderer has a bug" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_a_disk_error_on_the_last_file_leaves_the_previous_reports_as_they_were(audit_run, monkeypatch, tmp_path):
    result, out = audit_run(args=("-q",))
    assert result.exit_code == 0, result.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == REPORT_FILES

    real_fsync, calls = os.fsync, []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(report_write.os, "fsync", failing_fsync)
    result, out = audit_run(args=("-q", "--seed", "1"))
    assert result.exit_code == 3
    assert "No space left on device" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file either


def test_ctrl_c_while_the_reports_are_written_waits_until_they_are_whole(audit_run, monkeypatch):
    real, calls = report_write._write_temporary, []

    def interrupted(target, data):
        calls.append(target)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, half-way through
            time.sleep(0.2)
        return real(target, data)

    monkeypatch.setattr(report_write, "_write_temporary", interrupted)
    result, out = audit_run(args=("-q",))
    assert result.exit_code == 130
    assert "Interrupted: the reports had been written to" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    json.loads((out / "report.json").read_text())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    """write_reports itself: whatever stops it, the folder holds no temporary file."""
    real, calls = report_write._write_temporary, []

    def interrupted(target, data):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(target, data)

    monkeypatch.setattr(report_write, "_write_temporary", interrupted)
    report = {"schema_version": "1.0", "audits": {}, "verdict": "pass"}
    out = tmp_path / "new-folder"
    with pytest.raises(KeyboardInterrupt):
        report_write.write_reports(report, out, ["json", "md"])
    assert not out.exists()


# --- 4. CUDA out of memory --------------------------------------------------------------------


class RunsOutOfMemory(torch.nn.Module):
    """A real model that raises torch's CUDA out-of-memory error on batches over ``limit`` rows."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(5, 3)
        self.limit = limit
        self.tried: list[int] = []
        self.succeeded: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.tried.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate a batch of {x.shape[0]} rows"
            )
        self.succeeded.append(x.shape[0])
        return self.linear(x)


def test_out_of_memory_halves_the_batch_until_it_fits_and_the_outputs_are_unchanged():
    X = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    model = RunsOutOfMemory(limit=24)
    outputs = run_inference(model, X, device=torch.device("cpu"), batch_size=128)
    with torch.no_grad():
        expected = model.linear(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)
    assert model.tried[:3] == [128, 64, 32]
    assert max(model.succeeded) <= 24
    assert sum(model.succeeded) == 200


def test_out_of_memory_on_a_single_row_is_not_retried_forever():
    X = np.zeros((3, 5), dtype=np.float32)
    model = RunsOutOfMemory(limit=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_inference(model, X, device=torch.device("cpu"), batch_size=4)
    assert model.tried == [3, 2, 1]
