"""Which wall keeps CUDA out of the confined run? Fork, confine one way, try CUDA.

On an H200 (Linux 6.18, Landlock ABI 7, seccomp) torch saw the GPU in the parent and not in
the confined child: ``audit model.pt --device cuda`` exited 2. This probe forks children from
a process that imported torch without initialising CUDA (as the fork server does), confines
each one differently (none, seccomp only, Landlock only with the run's own allowances, then
Landlock with wider reads: /proc, /sys, /dev/shm, /, all of /dev) and tries a CUDA tensor, so
one GPU session can see which rule to widen. Usage, on a GPU machine, from the repo root:

    python benchmarks/gpu_confinement_probe.py auditor/demo
"""
import os
import sys
import tempfile
from pathlib import Path

import torch  # imported, CUDA not initialised (like the fork server)

from auditor.contain import landlock, rules, seccomp
from auditor.contain.supervisor import _allowances
from auditor.run.registry import discover
from auditor.run.runconfig import RunConfig

demo = Path(sys.argv[1])
cfg = RunConfig(model=demo / "model.pt", data=demo / "test.csv.gz")
scratch = Path(tempfile.mkdtemp(prefix="auditor-probe-"))
base = _allowances(cfg, discover(), scratch)
print("gpu paths:", rules.gpu_paths())
print("nvidia devs:", sorted(os.listdir("/dev")), flush=True)

def attempt(name, landlock_extra=None, use_landlock=True, use_seccomp=True):
    pid = os.fork()
    if pid == 0:
        try:
            if use_landlock:
                rs = base.ruleset(os.getpid())
                if landlock_extra:
                    rs = landlock.Ruleset(read=[*rs.read, *landlock_extra.get("read", [])],
                                          write=[*rs.write, *landlock_extra.get("write", [])],
                                          devices=[*rs.devices, *landlock_extra.get("devices", [])])
                rs.restrict_self(landlock.abi_version())
            if use_seccomp:
                seccomp.install()
            n = torch.cuda.device_count()
            x = torch.ones(4, device="cuda") * 2
            print(f"{name:40s} OK  devices={n} sum={float(x.sum())}", flush=True)
        except BaseException as exc:
            print(f"{name:40s} FAIL {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        os._exit(0)
    os.waitpid(pid, 0)

P = Path
attempt("none", use_landlock=False, use_seccomp=False)
attempt("seccomp only", use_landlock=False)
attempt("landlock only", use_seccomp=False)
attempt("both (the run)")
attempt("landlock + read /proc", {"read": [P("/proc")]}, use_seccomp=False)
attempt("landlock + read /sys", {"read": [P("/sys")]}, use_seccomp=False)
attempt("landlock + rw /dev/shm", {"write": [P("/dev/shm")]}, use_seccomp=False)
attempt("landlock + read /", {"read": [P("/")]}, use_seccomp=False)
attempt("landlock + devices /dev", {"devices": [P("/dev")]}, use_seccomp=False)
attempt("landlock + read / + devices /dev", {"read": [P("/")], "devices": [P("/dev")]}, use_seccomp=False)
attempt("landlock + read /proc,/sys + devices /dev", {"read": [P("/proc"), P("/sys")], "devices": [P("/dev")]}, use_seccomp=False)
attempt("landlock + read /proc + write /dev/shm", {"read": [P("/proc")], "write": [P("/dev/shm")]}, use_seccomp=False)
attempt("landlock + read /proc,/sys, rw /dev/shm", {"read": [P("/proc"), P("/sys")], "write": [P("/dev/shm")]}, use_seccomp=False)
