"""What confinement costs: running the model in a confined child process.

1. The whole command on the bundled demo (UCI Adult, 15,060 rows, every default audit):
   ``audit demo`` (contained: the parent forks the run from a preloaded server, the child
   confines itself with Landlock and seccomp) against the same run done the old way, in
   one process (``pipeline.execute`` and the report writers called directly), in ABBA order
   so drift hits both; medians and the difference.
2. Installing the confinement in a fresh process (Landlock ruleset + seccomp filter), ms.
3. Per batch: the demo MLP's inference pass over 1M rows in one process, before and after
   that process confines itself (the seccomp filter runs on every system call).
4. Per run, with the server already warm (a notebook, a test suite, a long-lived parent):
   ``execute_contained`` against ``execute`` in the same process, ``--audits metrics``.

Usage (from the repository root)::

    python benchmarks/bench_contain.py               # 5 pairs of demo runs
    python benchmarks/bench_contain.py --repeats 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IN_PROCESS = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from auditor.loading.bundled import demo_files
from auditor.run.pipeline import RunConfig, execute
from auditor.run.registry import discover_plugins
from auditor.report import write_reports
demo = demo_files()
discovery = discover_plugins()
cfg = RunConfig(model=demo.model, data=demo.data, history=demo.history, train_data=demo.train_data,
                command="audit demo")
execution = execute(cfg, discovery.audits, None, discovery.broken)
write_reports(execution.report, Path(sys.argv[1]), ["html", "md", "json"])
"""

CONFINE = """
import json, os, sys, time
from pathlib import Path
import torch
from auditor.contain import landlock, seccomp
from auditor.contain.rules import Allowances, python_installation
t = time.perf_counter()
allow = Allowances(python=python_installation(Path.cwd()), system=[Path("/usr"), Path("/lib")])
allow.ruleset(os.getpid()).restrict_self(landlock.abi_version())
seccomp.install()
print(json.dumps({"confine_ms": (time.perf_counter() - t) * 1000}))
"""

PER_BATCH = """
import json, os, statistics, time
from pathlib import Path
import torch
from auditor.loading.bundled import demo_files
from auditor.contain import landlock, seccomp
from auditor.contain.rules import Allowances, python_installation
from auditor.run.inference import run_inference
module = torch.jit.load(str(demo_files().model))
X = torch.randn(1_000_000, 40).numpy()

def timed():
    times = []
    for _ in range(7):
        t = time.perf_counter()
        run_inference(module, X, device=torch.device("cpu"))
        times.append(time.perf_counter() - t)
    return statistics.median(times)

run_inference(module, X[:100_000], device=torch.device("cpu"))  # warm
free = timed()
allow = Allowances(python=python_installation(Path.cwd()), system=[Path("/usr"), Path("/lib")])
allow.ruleset(os.getpid()).restrict_self(landlock.abi_version())
seccomp.install()
confined = timed()
print(json.dumps({"free_s": free, "confined_s": confined}))
"""

WARM = """
import json, statistics, sys, time
from auditor.loading.bundled import demo_files
from auditor.contain import execute_contained
from auditor.run.pipeline import RunConfig, execute
from auditor.run.registry import discover_plugins
demo = demo_files()
discovery = discover_plugins()
cfg = RunConfig(model=demo.model, data=demo.data, audits=["metrics"], command="audit")
execute_contained(cfg, discovery.audits, None)  # starts the server
execute(cfg, discovery.audits, None, discovery.broken)  # warms this process
contained, inline = [], []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter(); execute_contained(cfg, discovery.audits, None); contained.append(time.perf_counter() - t)
    t = time.perf_counter(); execute(cfg, discovery.audits, None, discovery.broken); inline.append(time.perf_counter() - t)
print(json.dumps({"contained": statistics.median(contained), "in_process": statistics.median(inline)}))
"""


def _last_json(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _wall(command: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    audit = str(Path(sys.executable).with_name("audit"))
    with tempfile.TemporaryDirectory() as folder:
        contained, inline = [], []
        for i in range(args.repeats):
            order = [("c", "i"), ("i", "c")][i % 2]
            for kind in order:
                if kind == "c":
                    contained.append(_wall([audit, "demo", "-q", "--out", f"{folder}/c"]))
                else:
                    inline.append(_wall([sys.executable, "-c", IN_PROCESS, f"{folder}/i"]))
    c, i = statistics.median(contained), statistics.median(inline)
    print(f"1. audit demo, whole command: contained {c:.2f} s, in one process {i:.2f} s "
          f"(+{c - i:.2f} s, {c / i:.2f}x), medians of {args.repeats}")
    confine = statistics.median(_last_json(CONFINE)["confine_ms"] for _ in range(5))
    print(f"2. installing Landlock + seccomp in a process: {confine:.2f} ms (median of 5)")
    batch = _last_json(PER_BATCH)
    print(f"3. inference, 1M rows x 40 (demo MLP): {batch['free_s']:.3f} s free, {batch['confined_s']:.3f} s "
          f"confined ({batch['confined_s'] / batch['free_s']:.3f}x), medians of 7")
    warm = _last_json(WARM, str(args.repeats))
    print(f"4. per run with a warm server (--audits metrics on the demo): contained {warm['contained']:.2f} s, "
          f"in process {warm['in_process']:.2f} s (+{warm['contained'] - warm['in_process']:.2f} s)")


if __name__ == "__main__":
    main()
