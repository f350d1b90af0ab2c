"""The model runs in a process the operating system confines (auditor.contain).

Every hostile model here is given ``--trust-model`` (or is pure TorchScript), so that no
check of the file stops it: what must stop it is Landlock and seccomp around the process
that runs it. Each test names the effect that must not happen and looks for it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import payloads
import pytest
import torch
from cli_helpers import invoke, read_report

from auditor.contain import available

confined = pytest.mark.skipif(not available().enforced, reason="needs Landlock and seccomp (Linux)")


def _pickled(module: torch.nn.Module, folder: Path) -> Path:
    path = folder / "model.pt"
    torch.save(module, path)
    return path


def _audit(model: Path, data: Path, *args: object):
    return invoke(model, "--data", data, "--audits", "metrics", "--out", model.parent / "out", "-q", *args)


def _assert_stopped(result, out: Path) -> None:
    """Exit 2, one line that says the confinement stopped the model, nothing written."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "confinement forbids" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()


@confined
@pytest.mark.parametrize("payload", [payloads.WritesFile, payloads.RunsProgram, payloads.Forks])
def test_a_trusted_pickle_cannot_write_files_or_start_processes(payload, breast_cancer, tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("PAYLOAD_TARGET", str(marker))
    model = _pickled(payload(), tmp_path)
    result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    _assert_stopped(result, tmp_path / "out")
    assert not marker.exists()


@confined
def test_a_model_that_writes_while_loading_is_stopped_before_it_writes(breast_cancer, tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("PAYLOAD_TARGET", str(marker))
    model = _pickled(payloads.WritesOnLoad(), tmp_path)
    result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    assert result.exit_code == 2, result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@confined
@pytest.mark.parametrize("payload", [payloads.ReadsSecret, payloads.ReadsEnviron])
def test_a_model_reads_nothing_the_command_did_not_name(payload, breast_cancer, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2-the-secret")
    monkeypatch.setenv("PAYLOAD_TARGET", str(secret))
    monkeypatch.setenv("CI_TOKEN", "token-that-must-stay-home")
    model = _pickled(payload(), tmp_path)
    result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    _assert_stopped(result, tmp_path / "out")
    assert "hunter2" not in result.stdout + result.stderr
    assert "token-that-must-stay-home" not in result.stdout + result.stderr


@confined
def test_a_model_cannot_reach_the_network(breast_cancer, tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    connected: list[bytes] = []

    def accept() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not connected:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            connected.append(conn.recv(100) or b"(connected)")
            conn.close()

    watcher = threading.Thread(target=accept, daemon=True)
    watcher.start()
    monkeypatch.setenv("PAYLOAD_PORT", str(listener.getsockname()[1]))
    model = _pickled(payloads.Connects(), tmp_path)
    try:
        result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    finally:
        time.sleep(0.3)
        listener.close()
    _assert_stopped(result, tmp_path / "out")
    assert connected == []


def _scripted_saver(target: str) -> torch.jit.ScriptModule:
    class Saves(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(30, 1)
            self.target = target

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.save(x, self.target)
            return self.net(x)

    return torch.jit.script(Saves())


@confined
def test_torchscript_that_calls_torch_save_cannot_write_even_when_trusted(breast_cancer, tmp_path):
    marker = tmp_path / "written-by-torchscript.pt"
    model = tmp_path / "model.pt"
    torch.jit.save(_scripted_saver(str(marker)), str(model))
    result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    # TorchScript's save ignores a file it could not open (the kernel said no): the run
    # may finish, but nothing was written outside the report.
    assert not marker.exists(), result.stderr
    assert result.exit_code in (0, 2), result.stderr


@confined
def test_what_a_model_prints_never_reaches_the_terminal(breast_cancer, tmp_path):
    model = _pickled(payloads.Chatty(), tmp_path)
    result = _audit(model, breast_cancer.folder / "test.csv", "--trust-model")
    assert "injected by the model" not in result.stdout + result.stderr
    debug = _audit(model, breast_cancer.folder / "test.csv", "--trust-model", "--debug")
    assert "injected by the model" in debug.stderr  # --debug shows the run's log, for the author


@confined
def test_the_report_says_which_confinement_was_in_force(breast_cancer, tmp_path):
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--audits", "metrics", "--out", out, "-q", "--format", "json,md")
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    confinement = report["run"]["confinement"]
    assert confinement["enforced"] is True
    assert confinement["landlock_abi"] == available().landlock_abi
    assert "confined process" in report["model"]["trust"]
    assert "confined process" in (out / "report.md").read_text()


def _looping_script(tmp_path: Path) -> Path:
    class Loops(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(30, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.net(x)
            while bool(y.sum() == y.sum()):  # always true: never returns
                y = y + 0.0
            return y

    path = tmp_path / "loops.pt"
    torch.jit.save(torch.jit.script(Loops()), str(path))
    return path


@confined
def test_a_model_that_never_returns_is_stopped_by_the_inference_timeout(breast_cancer, tmp_path):
    model = _looping_script(tmp_path)
    started = time.monotonic()
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--audits", "metrics",
                    "--out", tmp_path / "out", "-q", "--inference-timeout", "2")
    assert time.monotonic() - started < 60
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--inference-timeout" in lines[0] and "Predicting" in lines[0], lines
    assert not (tmp_path / "out").exists()


@confined
def test_inference_timeout_is_checked_in_settings(breast_cancer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.auditor]\ninference_timeout = -1\n")
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv")
    assert result.exit_code == 2
    assert "inference_timeout must be a positive number" in result.stderr


@confined
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_looping_model_is_ended_by_ctrl_c_and_sigterm(signum, code, breast_cancer, tmp_path):
    model = _looping_script(tmp_path)
    out = tmp_path / "out"
    audit = Path(sys.executable).with_name("audit")
    command = [str(audit)] if audit.exists() else [sys.executable, "-m", "auditor"]
    process = subprocess.Popen(
        [*command, str(model), "--data", str(breast_cancer.folder / "test.csv"), "--audits", "metrics",
         "--out", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        time.sleep(8)  # the server has started and the child is looping in forward
        assert process.poll() is None, process.communicate()
        sent = time.monotonic()
        os.killpg(process.pid, signum)  # as a terminal's Ctrl-C reaches the whole group
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - sent < 20
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code, stderr
    assert "Interrupted: no report written." in stderr
    assert not out.exists()
    # and no process of the run is left behind
    for _ in range(50):  # the server and multiprocessing's tracker leave once the parent is gone
        leftovers = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout.split()
        if not leftovers:
            break
        time.sleep(0.1)
    assert leftovers == []


@confined
def test_the_run_leaves_no_scratch_behind(breast_cancer, tmp_path, monkeypatch):
    from auditor.contain import server

    server.start()  # the model server's own folders live as long as this process, not a run's
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch_root))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--audits", "metrics", "--out", tmp_path / "out", "-q", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert list(scratch_root.iterdir()) == []
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["confinement"]["enforced"] is True


def test_without_landlock_a_model_that_holds_code_needs_trust(breast_cancer, tmp_path, monkeypatch):
    from auditor.contain import supervisor

    monkeypatch.setattr(supervisor, "available", lambda: supervisor.Confinement(
        landlock_abi=0, seccomp=True, reason="the kernel offers no Landlock"))
    model, data = breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv"
    refused = invoke(model, "--data", data, "--audits", "metrics", "--out", tmp_path / "a", "-q")
    assert refused.exit_code == 2
    assert "cannot confine it: the kernel offers no Landlock" in refused.stderr
    assert not (tmp_path / "a").exists()
    trusted = invoke(model, "--data", data, "--audits", "metrics", "--out", tmp_path / "b", "-q",
                     "--format", "json", "--trust-model")
    assert trusted.exit_code == 0, trusted.stderr
    report = read_report(tmp_path / "b")
    assert report["run"]["confinement"]["enforced"] is False
    assert "WITHOUT operating-system confinement" in report["model"]["trust"]


@confined
def test_an_audit_stuck_in_the_model_ends_the_run_after_its_audit_timeout(breast_cancer, tmp_path):
    """The inference pass returns; the model loops forever on any other batch (the explain
    audit's). SIGALRM cannot stop TorchScript's interpreter, so the parent stops the run."""
    rows = len(breast_cancer.frame)

    class LoopsOnOtherBatches(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(30, 1)
            self.rows = rows

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.net(x)
            if x.shape[0] != self.rows:
                while bool(y.sum() == y.sum()):
                    y = y + 0.0
            return y

    model = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(LoopsOnOtherBatches()), str(model))
    started = time.monotonic()
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--audits", "metrics,explain",
                    "--out", tmp_path / "out", "-q", "--audit-timeout", "2")
    assert time.monotonic() - started < 60
    assert result.exit_code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Audit: explain" in lines[0] and "--audit-timeout" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_nothing_holds_the_commands_output_open_once_it_has_exited(breast_cancer, tmp_path):
    """The model server inherits stdout and stderr; it must leave with the command, or a pipeline
    (`audit ... | tee log`) and every caller that reads the output to its end wait for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", str(breast_cancer.folder / "model.pt"), "--data",
         str(breast_cancer.folder / "test.csv"), "--audits", "metrics", "--out", str(tmp_path / "out"),
         "-q", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.wait(timeout=120) == 0
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + 0.5  # the server's interpreter teardown took ~1.1 s here
    while time.monotonic() < deadline:
        try:
            if proc.stdout.read() == b"":  # end of file: no process holds the pipe any more
                break
        except BlockingIOError:
            pass
        time.sleep(0.01)
    else:
        pytest.fail("a process still held the command's stdout open 0.5 s after it exited")
    proc.stdout.close()
    proc.stderr.close()
