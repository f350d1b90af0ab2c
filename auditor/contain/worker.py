"""The child side of a contained run: confine this process, then run the audit.

Runs in a process forked from the preloaded server (see :mod:`auditor.contain.server`):
it takes the parent's environment, confines itself while it still has one thread (so
every thread and process it could start inherits the rules), then calls
:func:`auditor.run.pipeline.execute` and sends the report back as JSON. Nothing it sends is
trusted by the parent: model code ran here.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from auditor.contain.rules import Allowances
from auditor.run.runconfig import Progress

#: Largest message the parent accepts from the child (a report is far smaller).
MAX_MESSAGE = 256 * 1024 * 1024
#: Largest file the run may write (its log, scratch files).
MAX_FILE = 1024 * 1024 * 1024


@dataclass
class Job:
    """Everything the child needs, sent from the parent (pickled in that direction only)."""

    cfg: Any
    env: dict[str, str]
    allowances: Allowances
    confine: bool
    log_path: str
    debug: bool = False
    umask: int = 0o022
    statement: dict[str, Any] = field(default_factory=dict)


class _Channel:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def send(self, message: dict[str, Any]) -> None:
        self._conn.send_bytes(json.dumps(message, allow_nan=True, default=_plain).encode("utf-8"))


def _plain(value: Any) -> Any:
    """JSON for the few non-JSON values a report may hold (paths, NumPy scalars)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class ChildProgress(Progress):
    """The pipeline's progress, sent to the parent, which draws it."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._next = 0

    @contextmanager
    def step(self, description: str, total: int | None = None, guard: str | None = None) -> Iterator[Callable[[int], None]]:
        self._next += 1
        ident = self._next
        self._channel.send({"kind": "step", "id": ident, "description": description, "total": total, "guard": guard})
        try:
            yield lambda advance: self._channel.send({"kind": "advance", "id": ident, "by": int(advance)})
        finally:
            self._channel.send({"kind": "end", "id": ident})


def _redirect_output(path: str) -> None:
    """fds 1 and 2 (and Python's streams) to the run's log: a model's ``print`` and
    torch's C++ warnings must not reach the terminal or a CI log."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)


def _close_inherited(keep: int, also: int = -1) -> None:
    """Close every descriptor the child inherited but the pipe to the parent and 0-2:
    multiprocessing leaves the server's pipes and its resource tracker's pipe open in the
    child (a message there makes the unconfined tracker unlink shared memory by name)."""
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker  # noqa: SLF001 - forget its pipe too
        tracker._fd = None  # type: ignore[attr-defined]  # noqa: SLF001
        tracker._pid = None  # type: ignore[attr-defined]  # noqa: SLF001
    except (ImportError, AttributeError):
        pass
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in open_fds:
        if fd > 2 and fd not in (keep, also):
            try:
                os.close(fd)
            except OSError:
                pass


def _confine(job: Job) -> None:
    from auditor.contain import landlock, seccomp

    job.allowances.ruleset(os.getpid()).restrict_self(landlock.abi_version())
    seccomp.install()
    from auditor.run.energy import confined

    confined()


def main(job: Job, conn: Any, back: Any = None) -> None:
    """The child's entry point (the target of the multiprocessing Process); ``back``: the
    parent's answers (to a request for the Ray pass)."""
    channel = _Channel(conn)
    try:
        _redirect_output(job.log_path)
        os.environ.clear()
        os.environ.update(job.env)
        import tempfile

        tempfile.tempdir = None  # the server's was cached: read TMPDIR (the run's scratch) again
        os.umask(job.umask)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file, anywhere
            # no file (the log of what the model prints, a scratch file) past 1 GiB: writes
            # beyond fail instead of filling the disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE, MAX_FILE))
        except (ImportError, ValueError, OSError):
            pass
        _close_inherited(conn.fileno(), back.fileno() if back is not None else -1)
        from auditor.run import heap

        heap.one_arena()  # a run's process: what threads free is shared, before any thread starts
        heap.small_pages()
        if job.confine:
            _confine(job)
        from auditor.contain.server import import_later

        import_later(job.cfg.audits, list(job.cfg.skip))  # while the model loads and the data stream
        _run(job, channel, back)
    except KeyboardInterrupt:
        pass  # the parent was interrupted too, and ends the run
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        try:
            if job.confine and _forbidden(exc):
                channel.send({"kind": "error", "type": "UntrustedModelError", "exit_code": 2,
                              "message": "The model (or code it imported) tried something its confinement "
                              f"forbids, and was stopped: {_first_line(exc)}",
                              "hint": "A model file must not read, write or run anything outside its inputs: "
                              "ask its author what it does. Nothing was written.",
                              "traceback": traceback.format_exc()[-20000:]})
                return
            channel.send({"kind": "crash", "type": type(exc).__name__, "message": str(exc)[:2000],
                          "traceback": traceback.format_exc()[-20000:]})
        except Exception:  # noqa: BLE001 - the parent sees the exit code instead
            pass
    finally:
        try:
            conn.close()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


#: What the kernel answers when confinement stops a file access, a socket or a process.
_DENIED = ("Permission denied", "Operation not permitted", "[Errno 13]", "[Errno 1]")


def _forbidden(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is confinement saying no."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, PermissionError) or any(t in str(current) for t in _DENIED):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {(lines or [''])[0][:300]}"


class RemotePass:
    """The pass under ``--engine ray``: asked of the parent (the Ray driver), read from the
    files it writes (see :mod:`auditor.run.handoff`)."""

    def __init__(self, channel: _Channel, back: Any) -> None:
        self._channel = channel
        self._back = back

    def __call__(self, plan: Any, **request: Any) -> Any:
        from pathlib import Path

        from auditor.run.handoff import read_pass
        from auditor.run.ray_engine import PassRequest

        asked = PassRequest(target=plan.target_name, features=list(plan.feature_names), sensitive=list(plan.sensitive),
                            named=dict(plan.named), **request)
        self._channel.send(asked.message())
        reply = json.loads(self._back.recv_bytes(1 << 16))  # the parent ends the run on any failure
        return read_pass(Path(reply["folder"]), plan)


def _run(job: Job, channel: _Channel, back: Any = None) -> None:
    from auditor.contract.errors import AuditorError
    from auditor.run.pipeline import execute
    from auditor.run.registry import discover_plugins

    try:
        discovery = discover_plugins()
        remote = RemotePass(channel, back) if back is not None else None
        execution = execute(job.cfg, discovery.audits, ChildProgress(channel), discovery.broken, remote_pass=remote)
    except AuditorError as exc:
        if job.confine and _forbidden(exc):
            raise  # reported by main() as confinement stopping the model
        channel.send({"kind": "error", "type": type(exc).__name__, "exit_code": exc.exit_code,
                      "message": exc.message, "hint": exc.hint, "traceback": traceback.format_exc()[-20000:]})
        return
    report = execution.report
    report.setdefault("run", {})["confinement"] = job.statement
    from auditor.run.stream import peak_rss  # the run process's own: the parent's figure does not include it

    report["run"]["peak_rss_bytes"] = peak_rss()
    model = report.get("model")
    if isinstance(model, dict) and job.statement.get("summary"):
        model["trust"] = f"{model.get('trust', '')} {job.statement['summary']}".strip()
    channel.send({"kind": "done", "report": report, "tracebacks": dict(execution.runs.tracebacks)})
