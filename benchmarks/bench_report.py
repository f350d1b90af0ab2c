"""What writing the compliance report costs: each format rendered from the demo's report.json
(with a model card), and the privacy scan at 1M rows.

1. ``audit demo`` with a model card writes report.json once (untimed); then each renderer
   (json, md, html, pdf) renders it ``--repeats`` times in this process; medians.
2. The privacy audit on the 1M-row benchmark file of ``bench_audit.py`` (generated there and
   cached under ``benchmarks/out/``): ``audit MODEL --data CSV --audits privacy`` as a child
   process, and the audit's own time from ``run.timings``; medians.

Usage (from the repository root)::

    python benchmarks/bench_report.py
    python benchmarks/bench_report.py --repeats 9
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "out"


def audit_command() -> list[str]:
    found = shutil.which("audit")
    return [found] if found else [sys.executable, "-m", "auditor"]


def run(args: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from auditor.loading.bundled import demo_files
    from auditor.report import RENDERERS
    from auditor.report.json_report import load_report

    OUT_DIR.mkdir(exist_ok=True)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run([*audit_command(), "card", "init", str(folder / "model-card.toml")])
        demo = demo_files()
        run([*audit_command(), str(demo.model), "--data", str(demo.data), "--history", str(demo.history),
             "--sensitive", "sex,race", "--card", str(folder / "model-card.toml"), "--out", str(folder / "out"),
             "--format", "json", "-q"])
        report = load_report(folder / "out" / "report.json")
        for name in ("json", "md", "html", "pdf"):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                RENDERERS[name](report)
                times.append(time.perf_counter() - started)
            figures[f"render_{name}_s"] = times
            print(f"render {name:4}: median {statistics.median(times):.3f} s (min {min(times):.3f})")
        big = OUT_DIR / "synthetic_v2_1000000.csv"
        model = OUT_DIR / "model_v2.pt"
        if big.is_file() and model.is_file():
            walls, own = [], []
            for i in range(args.repeats):
                out = folder / f"privacy{i}"
                walls.append(run([*audit_command(), str(model), "--data", str(big), "--audits", "privacy",
                                  "--out", str(out), "--format", "json", "-q"]))
                own.append(json.loads((out / "report.json").read_text())["run"]["timings"]["audits"]["privacy"])
            figures["privacy_1m_process_s"], figures["privacy_1m_audit_s"] = walls, own
            print(f"privacy audit at 1M rows: {statistics.median(own):.3f} s in the audit "
                  f"(whole process {statistics.median(walls):.2f} s, reading the data included)")
        else:
            print("privacy at 1M rows: run benchmarks/bench_audit.py --sizes 1000000 once to generate the data")
    (OUT_DIR / "bench_report.json").write_text(json.dumps(figures, indent=2))
    print(f"raw figures: {OUT_DIR / 'bench_report.json'}")


if __name__ == "__main__":
    main()
