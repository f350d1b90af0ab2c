"""What measuring energy costs: the carbon audit's overhead on a whole ``audit`` run, and the
energy meter's own costs.

1. The whole command on the bundled demo (UCI Adult, 15,060 rows, every default audit), as a
   child process, with the carbon audit (the default) and with ``--skip carbon``, in ABBA
   order so that drift hits both; medians and the difference.
2. The meter alone, in fresh child processes: how long codecarbon takes to be ready when
   nothing warmed it (its hardware detection), and after what the server contained runs are
   forked from asks first (py-cpuinfo and lscpu, ``prepare_for_confinement``); then the cost of one measured
   phase (a tracker started and stopped) once warm; and the CPU time the running trackers'
   sampling threads take over a fixed 3 s workload.

Usage (from the repository root)::

    python benchmarks/bench_carbon.py                 # 5 pairs of demo runs
    python benchmarks/bench_carbon.py --repeats 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "out"

COLD = """
import time, json
t = time.perf_counter()
from auditor.run.energy import EnergyMeter, MeterSettings
meter = EnergyMeter(MeterSettings())
meter.ready()
ready = time.perf_counter() - t
meter.stop()
print(json.dumps({"ready": ready}))
"""

WARMED = """
import time, json
from auditor.run.energy import EnergyMeter, MeterSettings, prepare_for_confinement
prepare_for_confinement()  # what the server a run is forked from does before any run
t = time.perf_counter()
meter = EnergyMeter(MeterSettings())
meter.ready()
print(json.dumps({"ready": time.perf_counter() - t}))
meter.stop()
"""

PHASES = """
import time, json, statistics
import numpy as np
from auditor.run.energy import EnergyMeter, MeterSettings
meter = EnergyMeter(MeterSettings())
meter.ready()
costs = []
for _ in range(50):
    t = time.perf_counter()
    with meter.phase("empty"):
        pass
    costs.append(time.perf_counter() - t)

def work(seconds):
    a = np.random.default_rng(0).random((300, 300))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = np.tanh(a @ a)

def cpu_of_work(measured):
    t = time.process_time()
    if measured:
        with meter.phase("work"):
            work(3.0)
    else:
        work(3.0)
    return time.process_time() - t

plain = [cpu_of_work(False) for _ in range(2)]
metered = [cpu_of_work(True) for _ in range(2)]
meter.stop()
print(json.dumps({"phase_ms": statistics.median(costs) * 1000, "phase_max_ms": max(costs) * 1000,
                  "cpu_plain": plain, "cpu_metered": metered}))
"""


def child(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def audit_command() -> list[str]:
    found = shutil.which("audit")
    return [found] if found else [sys.executable, "-m", "auditor"]


def demo_run(skip_carbon: bool, out: Path) -> float:
    from auditor.loading.bundled import demo_files

    demo = demo_files()
    args = [*audit_command(), str(demo.model), "--data", str(demo.data), "--history", str(demo.history),
            "--train-data", str(demo.train_data), "--out", str(out), "-q", "--format", "json",
            "--fail-on", "never"]
    if skip_carbon:
        args += ["--skip", "carbon"]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    with_carbon, without = [], []
    with tempfile.TemporaryDirectory() as tmp:
        demo_run(True, Path(tmp) / "warm")  # untimed: page cache, .pyc files
        for i in range(args.repeats):
            order = (True, False) if i % 2 == 0 else (False, True)
            for skip in order:
                seconds = demo_run(skip, Path(tmp) / f"{i}-{skip}")
                (without if skip else with_carbon).append(seconds)
    cold = [child(COLD)["ready"] for _ in range(3)]
    warmed = [child(WARMED)["ready"] for _ in range(3)]
    phases = child(PHASES)
    figures = {
        "cpu_count": os.cpu_count(),
        "demo_with_carbon_s": with_carbon,
        "demo_skip_carbon_s": without,
        "meter_ready_cold_s": cold,
        "meter_ready_after_warm_up_s": warmed,
        **phases,
    }
    (OUT_DIR / "bench_carbon.json").write_text(json.dumps(figures, indent=2))
    a, b = statistics.median(with_carbon), statistics.median(without)
    print(f"demo audit, median of {args.repeats}: with carbon {a:.2f} s, --skip carbon {b:.2f} s, "
          f"difference {a - b:+.2f} s ({(a / b - 1) * 100:+.0f}%)")
    print(f"meter ready, cold: median {statistics.median(cold):.2f} s; after the CLI's warm-up: "
          f"median {statistics.median(warmed) * 1000:.0f} ms")
    print(f"one measured phase (tracker start + stop), warm: median {phases['phase_ms']:.1f} ms, "
          f"max {phases['phase_max_ms']:.1f} ms")
    plain, metered = statistics.median(phases["cpu_plain"]), statistics.median(phases["cpu_metered"])
    print(f"CPU time of a 3 s workload: plain {plain:.2f} s, metered {metered:.2f} s "
          f"({(metered / plain - 1) * 100:+.1f}%)")
    print(f"raw figures: {OUT_DIR / 'bench_carbon.json'}")


if __name__ == "__main__":
    main()
