"""Same inputs, options and seed: byte-identical report.json apart from the run and
measurements sections (timings, energy), across repeated runs and across CPU thread counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def audit_json(out: Path, threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    audit = shutil.which("audit") or str(Path(sys.executable).with_name("audit"))
    proc = subprocess.run(
        [audit, "demo", "--out", str(out), "--format", "json", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    report.pop("run")
    report.pop("measurements")
    return json.dumps(report, sort_keys=True)


def test_report_json_is_identical_across_runs_and_thread_counts(tmp_path, demo_report):
    """The session's demo report (another process, the machine's default threads) equals a
    fresh run of one thread: same bytes across runs and across thread counts."""
    report = json.loads(json.dumps(demo_report))
    report.pop("run")
    report.pop("measurements")
    assert audit_json(tmp_path / "a", threads=1) == json.dumps(report, sort_keys=True)
