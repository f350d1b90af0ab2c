"""What a confined run may read and write: the inputs the command named, the Python
installation, a few kernel files that report the hardware, and a private scratch folder.

Everything here is computed in the parent, before the child that runs model code starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from auditor.contain import landlock

#: System folders of shared libraries, time zones and the like: no user data lives there.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
               "/etc/localtime", "/etc/timezone")
#: Kernel files that describe the hardware (torch's cpuinfo, OpenMP, psutil, codecarbon's
#: RAPL counters). Files, not /proc as a whole: /proc/<pid>/environ would hold secrets.
KERNEL_READ = ("/proc/cpuinfo", "/proc/stat", "/proc/meminfo", "/proc/loadavg",
               "/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/class/powercap",
               "/sys/fs/cgroup")
#: Per-process files psutil and codecarbon read about the process itself.
SELF_READ = ("stat", "statm", "status", "io", "cgroup", "limits")
#: Devices the run may open: the null device; a CUDA GPU's nodes when there is one.
DEVICES = ("/dev/null",)
RANDOM = ("/dev/urandom", "/dev/random")
NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
NVIDIA_READ = ("/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices")


@dataclass
class Allowances:
    """The paths of one confined run (see :class:`landlock.Ruleset`)."""

    inputs: list[Path] = field(default_factory=list)
    python: list[Path] = field(default_factory=list)
    system: list[Path] = field(default_factory=list)
    scratch: Path | None = None
    devices: list[Path] = field(default_factory=list)

    def ruleset(self, pid: int) -> landlock.Ruleset:
        kernel = [Path(p) for p in KERNEL_READ] + [Path(f"/proc/{pid}/{name}") for name in SELF_READ]
        return landlock.Ruleset(
            read=[*self.inputs, *self.python, *self.system, *kernel, *(Path(p) for p in RANDOM)],
            write=[self.scratch] if self.scratch else [],
            devices=[*(Path(p) for p in DEVICES), *self.devices],
        )


def python_installation(cwd: Path) -> list[Path]:
    """Where Python and the installed packages live: the prefixes, every ``sys.path`` entry
    but the working folder (``python -m`` puts it there: it holds the user's files), the
    root and the home folder (a ``PYTHONPATH`` naming them would open everything), and
    the folders of packages an import hook maps from elsewhere (editable installs)."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    too_wide = {cwd, Path("/"), Path.home().resolve()}  # a PYTHONPATH of ~ would open the home folder
    for entry in sys.path:
        if not entry:
            continue
        path = Path(entry).resolve()
        if path not in too_wide:
            paths.add(path)
    for name in ("auditor", "auditor_plugins"):
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if location:
            paths.add(Path(location).resolve().parent)
    return sorted(paths)


def plugin_locations(installed: Iterable[Any]) -> list[Path]:
    """The package folder of each installed audit's module (a plugin may live outside
    ``sys.path`` through an import hook)."""
    folders: set[Path] = set()
    for audit in installed:
        module = sys.modules.get(type(audit).__module__.split(".")[0])
        location = getattr(module, "__file__", None)
        if location:
            folders.add(Path(location).resolve().parent)
    return sorted(folders)


def input_paths(cfg: Any) -> list[Path]:
    """Every file or folder the run reads that the command named: the model (and its
    sidecar metadata), the data, the training data, the history, the card, and the folder
    ``--model-class``/``--trainer`` import from."""
    named: list[Path] = []
    for value in (cfg.model, cfg.data, cfg.train_data, cfg.history, cfg.card, getattr(cfg, "labels", None),
                  getattr(cfg, "tokenizer", None)):
        if value is not None:
            named.append(Path(value))
    if cfg.model is not None:
        model = Path(cfg.model)
        named.append(model.with_name(model.stem + ".auditor.json"))
    if cfg.model_path:
        named.append(Path(cfg.model_path))
    return [Path(os.path.abspath(p)) for p in named]


def gpu_paths() -> tuple[list[Path], list[Path]]:
    """The device nodes and driver files of NVIDIA GPUs on this machine (none: empty)."""
    if not os.path.exists("/dev/nvidiactl"):
        return [], []
    devices = [Path(p) for p in NVIDIA_DEVICES]
    devices += sorted(Path("/dev").glob("nvidia[0-9]*"))
    caps = Path("/dev/nvidia-caps")
    if caps.is_dir():
        devices.append(caps)
    return devices, [Path(p) for p in NVIDIA_READ]
