"""Same inputs, options and seed: byte-identical report.json apart from the run and
measurements sections (timings, energy), across repeated runs and across CPU thread counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from auditor.loading.bundled import demo_files


def audit_json(out: Path, threads: int) -> str:
    demo = demo_files()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    audit = shutil.which("audit") or str(Path(sys.executable).with_name("audit"))
    proc = subprocess.run(
        [audit, str(demo.model), "--data", str(demo.data), "--history", str(demo.history),
         "--train-data", str(demo.train_data), "--out", str(out), "--format", "json", "-q", "--seed", "3",
         "--fail-on", "never"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    report.pop("run")
    report.pop("measurements")
    return json.dumps(report, sort_keys=True)


def test_report_json_is_identical_across_runs_and_thread_counts(tmp_path):
    first = audit_json(tmp_path / "a", threads=1)
    assert audit_json(tmp_path / "b", threads=1) == first
    assert audit_json(tmp_path / "c", threads=2) == first
