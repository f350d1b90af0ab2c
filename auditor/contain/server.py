"""The preloaded server that contained runs are forked from.

A contained run needs a process of its own (confinement cannot be lifted, and a model
stuck in native code can only be stopped from outside), and a fresh Python would pay for
importing torch on every run. So runs are forked from multiprocessing's *forkserver*: a
clean process, started once per parent, that imports torch, NumPy, pyarrow, codecarbon and
auditor's own modules, and then only forks (what only audits need is imported by each run,
alongside its pass: :func:`import_later`). Forking it is safe where forking the parent
would not be: it never ran a tensor operation (GNU OpenMP's thread pool does not survive a
fork: a child of a parent that used it hangs in its first parallel region) and it has no
threads when it forks.

The server also asks what codecarbon would otherwise learn by starting programs, which a
confined run may not do (the CPU's model from py-cpuinfo, the socket count from lscpu):
see :func:`auditor.run.energy.prepare_for_confinement`.

The parent sends the server only what multiprocessing sends (the pickled job, parent to
child); the child answers on a pipe with JSON, never a pickle.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import multiprocessing
import os
import shutil
import tempfile
import threading
import warnings
from typing import Any

#: Imported once by the server: importing it preloads everything (see :func:`preload`).
PRELOAD = ["auditor.contain.preload"]

_started = False


#: Libraries a run imports (most of them lazily) before or during its pass, each a second or
#: more in a fresh child: the server imports them once.
HEAVY = [
    "torch", "numpy", "pyarrow", "pyarrow.csv", "pyarrow.parquet",
    "jinja2", "rich.console", "rich.table", "codecarbon",
    "codecarbon.core.emissions", "codecarbon.core.resource_tracker", "codecarbon.input",
    "codecarbon.emissions_tracker", "encodings.utf_16", "encodings.utf_32", "encodings.latin_1",
]
#: Libraries only one audit imports, after the pass (captum: ~0.3 s without the matplotlib and
#: IPython its plotting helpers import, see :mod:`auditor_plugins.explain.captum_attr`). Preloading them would make every run wait for them before it starts;
#: a run that selects the audit imports them on a thread of its own instead
#: (:func:`import_later`), while its model loads and its data streams (work that mostly runs
#: outside the GIL). pandas is imported by no default audit: only where used.
LATER = {"explain": ["auditor_plugins.explain.captum_attr"]}


def _own_modules() -> list[str]:
    """Every module of auditor and of its built-in audits (imported lazily by the run)."""
    import pkgutil

    names: list[str] = []

    def walk(path: list[str], prefix: str) -> None:
        # pkgutil.walk_packages would import every package to look inside, the plugin
        # author's kit (auditor.testing, which imports pytest) too: no run needs that.
        for info in pkgutil.iter_modules(path, prefix):
            if info.name in SKIPPED or info.name.endswith(("__main__", ".preload", ".cli")):
                continue
            names.append(info.name)
            if info.ispkg:
                spec = importlib.util.find_spec(info.name)
                if spec is not None and spec.submodule_search_locations:
                    walk(list(spec.submodule_search_locations), f"{info.name}.")

    for package in ("auditor", "auditor_plugins"):
        try:
            root = importlib.import_module(package)
        except Exception:  # noqa: BLE001 - reported by the run
            continue
        walk(list(root.__path__), f"{package}.")
    return names


#: Modules the server does not import: the plugin author's kit (no run imports it; it imports
#: pytest, ~0.2 s) and the import of captum (only a run that explains needs it: :data:`LATER`).
SKIPPED = frozenset({"auditor.testing", *(m for modules in LATER.values() for m in modules)})


def preload() -> None:
    """Import what every run needs; detect the CPU model for codecarbon meanwhile."""

    def cpu_model() -> None:
        try:
            from auditor.run.energy import prepare_for_confinement

            prepare_for_confinement()
        except Exception:  # noqa: BLE001 - the meter reports what it could not detect
            pass

    detector = threading.Thread(target=cpu_model, name="auditor-cpu-model", daemon=True)
    detector.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in HEAVY + _own_modules():
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the run imports it again and reports the failure
                pass
        try:
            from auditor.run.registry import discover_plugins

            discover_plugins()
        except Exception:  # noqa: BLE001 - same
            pass
    detector.join()  # no thread may be alive when the server forks
    _exit_without_teardown()


def import_later(audits: list[str] | None, skip: list[str]) -> None:
    """Start importing what :data:`LATER` lists for the selected audits (``--audits``, None:
    all; ``--skip``) on a daemon thread (in a run's process, never the server's, which must
    have no thread when it forks). The audit that needs a module waits for it on the import
    lock; a failure is left for that audit to meet and report."""
    modules = [m for name, names in LATER.items() if name not in skip and (audits is None or name in audits)
               for m in names]
    if not modules:
        return

    def run() -> None:
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the audit imports it again and reports the failure
                pass

    threading.Thread(target=run, name="auditor-import-later", daemon=True).start()


def _exit_without_teardown() -> None:
    """When the ``audit`` process ends, the server ends too (multiprocessing closes its pipe).
    Tearing down an interpreter that holds torch, captum and matplotlib takes about a second,
    during which the server still holds the terminal's (or a pipeline's, or a test's)
    stdout and stderr open: whoever reads them to the end would wait. The server has nothing
    to flush or clean up, so it leaves at once. Runs are forked from it, but a run ends by
    ``os._exit`` (multiprocessing's way) and never reaches this; the pid check keeps it so."""
    server = os.getpid()

    def leave() -> None:
        if os.getpid() == server:
            os._exit(0)

    atexit.register(leave)  # registered last, so it runs first


def context() -> Any:
    """The multiprocessing context runs are started from (the server starts on first use)."""
    return multiprocessing.get_context("forkserver")


#: The longest path a Unix socket may have (``sun_path`` is 108 bytes on Linux, 104 on macOS), and
#: what multiprocessing adds to the temporary folder for the server's: ``/pymp-XXXXXXXX/listener-XXXXXXXX``.
_SOCKET_PATH_MAX = 103
_SOCKET_SUFFIX = 36


def _socket_parent() -> str | None:
    """Where multiprocessing may make the server's socket folder: the temporary folder, unless
    its path is too long for a Unix socket (a deep ``TMPDIR``), then the first short system one
    that is writable. None keeps Python's choice."""
    default = tempfile.gettempdir()
    if len(os.fsencode(default)) + _SOCKET_SUFFIX <= _SOCKET_PATH_MAX:
        return None
    for candidate in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def start() -> None:
    """Start the server now, in the background, so that its imports overlap the parent's
    own work (reading settings, the policy, the baseline). Safe to call more than once."""
    global _started
    if _started:
        return
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(PRELOAD)
    # matplotlib (imported by captum) writes its caches on import: into a private folder,
    # not the user's home (the server takes the environment it is started with).
    config = tempfile.mkdtemp(prefix="auditor-server-")
    atexit.register(shutil.rmtree, config, True)
    previous = os.environ.get("MPLCONFIGDIR")
    os.environ["MPLCONFIGDIR"] = config
    cached_tmp = tempfile.tempdir
    tempfile.tempdir = _socket_parent()
    try:
        forkserver.ensure_running()
    finally:
        tempfile.tempdir = cached_tmp
        if previous is None:
            os.environ.pop("MPLCONFIGDIR", None)
        else:
            os.environ["MPLCONFIGDIR"] = previous
    _started = True
