"""The parent side of a contained run: start the child, draw its progress, bound its time.

See :mod:`auditor.contain` for what runs where and what the child may do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Iterator, Mapping

from rich.markup import escape

from auditor.contain import landlock, seccomp, server
from auditor.contain import rules as policy
from auditor.contain.worker import MAX_MESSAGE, Job, main
from auditor.contract import errors
from auditor.contract.errors import AuditorError, ModelLoadError, UntrustedModelError
from auditor.report.numbers import one_line

#: The default of ``--inference-timeout``: generous, for a slow model on a big file.
DEFAULT_INFERENCE_TIMEOUT = 1800.0
#: How long after its ``--audit-timeout`` an audit that did not stop ends the whole run:
#: as long as the timeout itself, from 5 s to a minute.
def audit_grace(audit_timeout: float) -> float:
    return min(max(audit_timeout, 5.0), 60.0)


@dataclass(frozen=True)
class Confinement:
    """What this machine can enforce: the Landlock ABI (0: none) and whether the seccomp
    filter installs here."""

    landlock_abi: int
    seccomp: bool
    reason: str = ""

    @property
    def enforced(self) -> bool:
        return self.landlock_abi >= 1 and self.seccomp

    def statement(self) -> dict[str, Any]:
        """What the report says about it (``run.confinement``, and a sentence after the
        model's trust note)."""
        if not self.enforced:
            return {
                "enforced": False,
                "reason": self.reason,
                "summary": f"The model ran WITHOUT operating-system confinement ({self.reason}).",
            }
        network = "no sockets (seccomp)"
        if self.landlock_abi >= 4:
            network += ", no TCP (Landlock)"
        if self.landlock_abi >= 6:
            network += ", no abstract Unix sockets or signals outside the run (Landlock)"
        return {
            "enforced": True,
            "landlock_abi": self.landlock_abi,
            "seccomp": True,
            "filesystem": "reads: the named inputs, the Python installation, system libraries, "
            "hardware descriptions; writes: a private scratch folder only; executes: nothing",
            "network": network,
            "processes": "no fork or exec (seccomp); no new privileges",
            "summary": (
                f"It ran in a confined process (Landlock ABI {self.landlock_abi}: reads only the named "
                "inputs, the Python installation, system libraries and hardware descriptions, writes "
                "nothing outside a private scratch folder; "
                "seccomp: no network, no new processes)."
            ),
        }


@lru_cache(maxsize=1)
def available() -> Confinement:
    """What confinement this machine offers (checked once per process)."""
    abi = landlock.abi_version()
    filter_ok = seccomp.supported()
    reason = ""
    if abi < 1:
        reason = "the kernel offers no Landlock (Linux 5.13+ with Landlock enabled is needed)"
    elif not filter_ok:
        reason = f"no seccomp filter for this platform ({sys.platform} {seccomp.machine()})"
    return Confinement(landlock_abi=abi, seccomp=filter_ok, reason=reason)


@dataclass
class ContainedRun:
    """What came back from the child: the report document and the audits' tracebacks."""

    report: dict[str, Any]
    tracebacks: dict[str, str] = field(default_factory=dict)
    log: str = ""


class ModelTimeoutError(ModelLoadError):
    """The model ran past ``--inference-timeout`` and its process was stopped."""


class RunProcessError(AuditorError):
    """The process that ran the model died without an answer."""

    exit_code = 3


class ChildCrash(Exception):
    """An unexpected exception in the child; its class is named after the original."""

    child_traceback = ""


_ERRORS: dict[str, type[AuditorError]] = {
    name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, AuditorError)
}

_CODE_KINDS = ("torchscript", "export", "pickle")


def _refuse_unconfined(cfg: Any, confinement: Confinement) -> None:
    """Without confinement, a model that carries code runs only with ``--trust-model``."""
    if cfg.trust_model:
        return
    from auditor.loading.sniff import sniff_model_format

    kind = sniff_model_format(Path(cfg.model))
    if kind in _CODE_KINDS:
        raise UntrustedModelError(
            f"Refusing to run {Path(cfg.model).name}: it holds code ({kind}) and this system cannot "
            f"confine it: {confinement.reason}.",
            hint="Run auditor on Linux 5.13+ with Landlock enabled, or pass --trust-model to run it "
            "unconfined, only if you trust the file's author.",
        )


def _allowances(cfg: Any, installed: Mapping[str, Any], scratch: Path, handed: Path | None = None) -> policy.Allowances:
    cwd = Path.cwd().resolve()
    devices, gpu_read = policy.gpu_paths()
    return policy.Allowances(
        inputs=policy.input_paths(cfg) + policy.plugin_locations(installed.values()) + ([handed] if handed else []),
        python=policy.python_installation(cwd),
        system=[Path(p) for p in policy.SYSTEM_READ] + gpu_read,
        scratch=scratch,
        devices=devices,
    )


def _error_from(message: Mapping[str, Any]) -> AuditorError:
    cls = _ERRORS.get(str(message.get("type")), AuditorError)
    hint = message.get("hint")
    exc = cls(str(message.get("message", "")), hint=str(hint) if hint else None)
    code = message.get("exit_code")
    if isinstance(code, int) and code in (2, 3) and code != exc.exit_code:
        exc.exit_code = code
    return exc


def _crash_from(message: Mapping[str, Any]) -> ChildCrash:
    name = str(message.get("type") or "Error")
    if not name.isidentifier():
        name = "Error"
    cls = type(name, (ChildCrash,), {})
    exc = cls(str(message.get("message", "")))
    exc.child_traceback = str(message.get("traceback", ""))
    return exc


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


class _Steps:
    """The child's progress steps, drawn by the parent's progress; the step marked
    ``guard: model`` (loading, inference passes) is timed against the limit."""

    def __init__(self, progress: Any, timeout: float | None, audit_timeout: float | None = None) -> None:
        self._progress = progress
        self._timeout = timeout
        # an audit is stopped inside the run at --audit-timeout; one stuck in native code
        # (a model looping in C++) cannot be, so the parent stops the run a minute later
        self._audit_timeout = None if audit_timeout is None else audit_timeout + audit_grace(audit_timeout)
        self.kind = ""
        self._open: dict[int, tuple[Any, Any, str, bool]] = {}
        self.deadline: float | None = None
        self.guarded: str = ""

    def handle(self, message: Mapping[str, Any]) -> None:
        kind = message.get("kind")
        ident = message.get("id")
        if not isinstance(ident, int):
            return
        if kind == "step" and ident not in self._open and len(self._open) < 64:
            total = message.get("total")
            total = total if isinstance(total, int) and total >= 0 else None
            description = escape(one_line(str(message.get("description", ""))[:200]))
            guard = message.get("guard")
            manager = self._progress.step(description, total=total, guard=guard if guard in ("model", "audit") else None)
            advance = manager.__enter__()
            limit = {"model": self._timeout, "audit": self._audit_timeout}.get(str(guard))
            guarded = bool(limit)
            self._open[ident] = (manager, advance, description, guarded)
            if limit:
                self.deadline = time.monotonic() + limit
                self.guarded = description
                self.kind = str(guard)
        elif kind == "advance" and ident in self._open:
            by = message.get("by")
            if isinstance(by, int) and by >= 0:
                self._open[ident][1](by)
        elif kind == "end" and ident in self._open:
            manager, _, _, guarded = self._open.pop(ident)
            manager.__exit__(None, None, None)
            if guarded:
                self.deadline = None

    def close(self) -> None:
        for manager, *_ in reversed(list(self._open.values())):
            try:
                manager.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - drawing progress must never hide the outcome
                pass
        self._open.clear()


def _read_log(path: Path, limit: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def execute_contained(
    cfg: Any,
    installed: Mapping[str, Any],
    progress: Any,
    *,
    inference_timeout: float | None = DEFAULT_INFERENCE_TIMEOUT,
) -> ContainedRun:
    """Run :func:`auditor.run.pipeline.execute` for ``cfg`` in a confined child process and
    return its report. Raises the child's :class:`AuditorError` as its own (same message,
    same exit code), :class:`ModelTimeoutError` when a model step runs past
    ``inference_timeout`` seconds, :class:`RunProcessError` when the child dies."""
    if progress is None:
        from auditor.run.runconfig import Progress

        progress = Progress()
    confinement = available()
    if not confinement.enforced:
        _refuse_unconfined(cfg, confinement)
    scratch = Path(tempfile.mkdtemp(prefix="auditor-run-"))
    try:
        work = scratch / "tmp"
        work.mkdir(mode=0o700)
        handed = scratch / "pass"  # what the Ray driver writes for the run: the run may only read it
        handed.mkdir(mode=0o700)
        env = dict(os.environ)
        env.update(TMPDIR=str(work), MPLCONFIGDIR=str(work))
        job = Job(
            cfg=cfg,
            env=env,
            allowances=_allowances(cfg, installed, work, handed if getattr(cfg, "engine", "stream") == "ray" else None),
            confine=confinement.enforced,
            log_path=str(scratch / "run.log"),
            umask=_umask(),
            statement=confinement.statement(),
        )
        return _supervise(job, progress, inference_timeout, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_START_LOCK = threading.Lock()


@contextmanager
def _main_module_left_alone() -> Iterator[None]:
    """multiprocessing re-runs the parent's ``__main__`` script in a child it starts (for
    pickled functions defined there): a user's training script that calls auditor would
    train again. The child needs nothing from ``__main__``, so it is not told about it."""
    from multiprocessing import spawn

    original = spawn.get_preparation_data

    def without_main(name: str) -> dict[str, Any]:
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _START_LOCK:
        spawn.get_preparation_data = without_main
        try:
            yield
        finally:
            spawn.get_preparation_data = original


def _ray_pass(job: Job, message: Mapping[str, Any], progress: Any, timeout: float | None, folder: Path,
              back: Any) -> None:
    """Run the pass the run asked for on Ray (this process is the driver), write it into
    ``folder`` and tell the run; the request is checked, and a second one refused."""
    from auditor.run.ray_engine import PassRequest, run_ray_pass

    if getattr(job.cfg, "engine", "stream") != "ray" or any(folder.iterdir()):
        raise RunProcessError("The process that ran the model asked for a pass it may not ask for.")
    try:
        request = PassRequest.of(message)
    except (ValueError, TypeError, KeyError):
        raise RunProcessError("The process that ran the model asked for the Ray pass in a malformed message.") from None
    run_ray_pass(job.cfg, request, folder=folder, progress=progress, seed=int(job.cfg.seed), timeout=timeout)
    back.send_bytes(json.dumps({"ok": True, "folder": str(folder)}).encode("utf-8"))


def _supervise(job: Job, progress: Any, timeout: float | None, scratch: Path) -> ContainedRun:
    audit_timeout = getattr(job.cfg, "audit_timeout", None)
    server.start()
    ctx = server.context()
    reader, writer = ctx.Pipe(duplex=False)
    back_reader, back_writer = ctx.Pipe(duplex=False)  # the parent's answers (the Ray pass's)
    process = ctx.Process(target=main, args=(job, writer, back_reader), name="auditor-run", daemon=True)
    steps = _Steps(progress, timeout, audit_timeout)
    answer: dict[str, Any] | None = None
    try:
        with _main_module_left_alone():
            process.start()
        writer.close()
        back_reader.close()
        while answer is None:
            ready = wait([reader, process.sentinel], timeout=0.25)  # wakes at once on a message or an exit
            if reader in ready or reader.poll(0):
                try:
                    raw = reader.recv_bytes(MAX_MESSAGE)
                except EOFError:
                    break
                except OSError:
                    raise RunProcessError(
                        "The process that ran the model sent a message larger than "
                        f"{MAX_MESSAGE // 2**20} MiB; it was stopped."
                    ) from None
                try:
                    message = json.loads(raw)
                except (ValueError, RecursionError):
                    raise RunProcessError("The process that ran the model sent a message that is not JSON.") from None
                if not isinstance(message, dict):
                    continue
                if message.get("kind") in ("done", "error", "crash"):
                    answer = message
                elif message.get("kind") == "ray-pass":
                    _ray_pass(job, message, progress, timeout, scratch / "pass", back_writer)
                else:
                    steps.handle(message)
            elif not process.is_alive() and not reader.poll(0):
                break
            if steps.deadline is not None and time.monotonic() > steps.deadline:
                process.kill()
                if steps.kind == "audit" and audit_timeout is not None:
                    raise RunProcessError(
                        f"'{steps.guarded}' did not stop at its --audit-timeout ({audit_timeout:g} s) "
                        f"nor {audit_grace(audit_timeout):g} s later (it is stuck in native code, probably in the model), "
                        "so the run was stopped. Nothing was written.",
                        hint="Leave that audit out with --skip, or ask the model's author why it never returns.",
                    )
                raise ModelTimeoutError(
                    f"The model did not finish '{steps.guarded}' within {timeout:g} s "
                    "(--inference-timeout) and was stopped; it may never end. Nothing was written.",
                    hint="If the model is only slow, raise --inference-timeout "
                    "(or inference_timeout in [tool.auditor]).",
                )
    finally:
        steps.close()
        if process.is_alive():
            process.kill()
        if process.pid is not None:
            process.join(10)
        reader.close()
        back_writer.close()
    log = _read_log(scratch / "run.log")
    if answer is None:
        code = process.exitcode
        if code is not None and code < 0:
            name = _signal_name(-code)
            hint = ("It may have run out of memory; AUDITOR_MEMORY_BUDGET sets the budget auditor plans for."
                    if -code == signal.SIGKILL else "Run with --debug to see its log.")
            raise RunProcessError(f"The process that ran the model was killed by {name} before it answered.", hint=hint)
        raise RunProcessError(f"The process that ran the model exited ({code}) before it answered.",
                              hint="Run with --debug to see its log.")
    kind = answer.get("kind")
    if kind == "error":
        exc: BaseException = _error_from(answer)
        # What --debug prints: the child's traceback and log, carried on the error.
        setattr(exc, "child_traceback", str(answer.get("traceback", "")))  # noqa: B010
        setattr(exc, "child_log", log)  # noqa: B010
        raise exc
    if kind == "crash":
        crash = _crash_from(answer)
        setattr(crash, "child_log", log)  # noqa: B010
        raise crash
    report = answer.get("report")
    if not isinstance(report, dict) or "schema_version" not in report:
        raise RunProcessError("The process that ran the model sent no report.")
    tracebacks = answer.get("tracebacks")
    tracebacks = {str(k): str(v) for k, v in tracebacks.items()} if isinstance(tracebacks, dict) else {}
    return ContainedRun(report=report, tracebacks=tracebacks, log=log)
