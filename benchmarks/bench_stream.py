"""Benchmark the streaming pass on Parquet files larger than one chunk: time and peak memory.

The issue's targets: the default audit's peak memory stays flat (at most 2 GiB) from 10^7 to
10^8 rows x 30 features, and its wall time is at most 1.5x a streaming floor at 10^7 rows.

The streaming floor (``FLOOR_SOURCE``, in full) is the least any tool must do to score a
Parquet file that does not fit in memory at once: a separate Python process that imports
torch, loads the model, reads the file one row group at a time, converts the features to a
float32 matrix and runs one forward pass per row group, keeping the outputs.

The data come from ``bench_audit.py``'s generating process (30 features of mixed marginals,
two sensitive text columns, a binary target), written once per size as Parquet in row groups
of 1M rows under ``benchmarks/out/``, generated in chunks so that writing them never holds
the whole file. Each size: one untimed floor (page cache), then ``--repeats`` floor/audit
pairs in ABBA order; wall clock from spawn to exit; peak memory as ``bench_audit.py`` takes it
(the command's own ``ru_maxrss`` plus the peak of the process that ran the model, from
report.json: an upper bound). The audit is ``audit MODEL --data FILE.parquet --sensitive
group_a,group_b`` with the default audits and the default budget (the memory available).

Usage (from the repository root)::

    python benchmarks/bench_stream.py --sizes 1000000,10000000 --repeats 3 --cpus 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_audit import (  # noqa: E402 - the benchmarks folder is not a package
    CHUNK_ROWS,
    DATA_VERSION,
    OUT_DIR,
    Process,
    Run,
    _run_process_peak_mib,
    audit_command,
    ensure_model,
    machine,
    run_child,
)

ROW_GROUP = 1_000_000
TIME_TARGET = 1.5
MEMORY_TARGET_MIB = 2048

FLOOR_SOURCE = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import pyarrow.parquet as pq
import torch

model_path, parquet_path = sys.argv[1], sys.argv[2]
extra_files = {"auditor.json": ""}
model = torch.jit.load(model_path, _extra_files=extra_files).eval()
names = json.loads(extra_files["auditor.json"])["feature_names"]
handle = pq.ParquetFile(parquet_path)
outputs = []
with torch.inference_mode():
    for g in range(handle.num_row_groups):
        table = handle.read_row_group(g, columns=names)
        columns = np.empty((len(names), table.num_rows), dtype=np.float32)
        for j, name in enumerate(names):
            columns[j] = table.column(name).to_numpy()
        del table
        outputs.append(model(torch.from_numpy(columns).T).numpy())
rows = sum(len(o) for o in outputs)
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
"""


def ensure_parquet(process: Process, n_rows: int) -> Path:
    """Write (once) ``n_rows`` rows as Parquet, in row groups of :data:`ROW_GROUP`."""
    path = OUT_DIR / f"synthetic_{DATA_VERSION}_{n_rows}.parquet"
    if path.exists():
        return path
    print(f"generating {path.name} ...", flush=True)
    started = time.perf_counter()
    partial = path.with_suffix(".parquet.partial")
    writer: pq.ParquetWriter | None = None
    import pyarrow as pa

    pending: list[pa.Table] = []
    for stream, start in enumerate(range(0, n_rows, CHUNK_ROWS)):
        pending.append(process.sample(min(CHUNK_ROWS, n_rows - start), stream))
        if sum(t.num_rows for t in pending) >= ROW_GROUP or start + CHUNK_ROWS >= n_rows:
            group = pa.concat_tables(pending)
            pending = []
            if writer is None:
                writer = pq.ParquetWriter(str(partial), group.schema)
            writer.write_table(group, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    partial.rename(path)
    print(f"  {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=0, help="pin the children to the first N cores")
    parser.add_argument("--audit-args", default="", help="more arguments for audit, e.g. '--memory-budget 4GiB'")
    args = parser.parse_args()
    import os

    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    info = machine("cpu")
    print(" | ".join(f"{key}: {value}" for key, value in info.items()))
    process = Process.make()
    model = ensure_model(process)
    audit = audit_command()
    results = []
    for n_rows in (int(s) for s in args.sizes.split(",")):
        data = ensure_parquet(process, n_rows)
        floor_argv = [sys.executable, "-c", FLOOR_SOURCE, str(model), str(data)]
        floor: list[Run] = []
        audited: list[Run] = []
        engine: dict = {}
        with tempfile.TemporaryDirectory(prefix="bench_stream_") as scratch:
            scratch_dir = Path(scratch)
            run_child(floor_argv, scratch_dir)
            for repeat in range(args.repeats):
                for which in (["floor", "audit"] if repeat % 2 == 0 else ["audit", "floor"]):
                    if which == "floor":
                        floor.append(run_child(floor_argv, scratch_dir))
                        continue
                    out = scratch_dir / f"report_{repeat}"
                    argv = audit + [str(model), "--data", str(data), "--out", str(out), "--quiet",
                                    "--format", "json", "--sensitive", "group_a,group_b", *args.audit_args.split()]
                    run = run_child(argv, scratch_dir)
                    run_peak = _run_process_peak_mib(out)
                    run.max_rss_mib += run_peak
                    report = json.loads((out / "report.json").read_text())
                    engine = report["run"]["engine"]
                    run.phases = {k: v for k, v in report["run"]["timings"].items() if isinstance(v, (int, float))}
                    run.phases["run_process_peak_mib"] = run_peak  # the model's process alone
                    audited.append(run)
                    shutil.rmtree(out, ignore_errors=True)
                print(f"  {n_rows:,} rows, repeat {repeat + 1}/{args.repeats} done", flush=True)
        row = {
            "rows": n_rows,
            "floor_s": statistics.median(r.seconds for r in floor),
            "audit_s": statistics.median(r.seconds for r in audited),
            "floor_peak_mib": statistics.median(r.max_rss_mib for r in floor),
            "audit_peak_mib": statistics.median(r.max_rss_mib for r in audited),
            "engine": engine,
            "audit_phases": [r.phases for r in audited],
        }
        row["time_ratio"] = row["audit_s"] / row["floor_s"]
        peaks = [r.phases["run_process_peak_mib"] for r in audited]
        results.append(row)
        print(f"{n_rows:>12,} rows: floor {row['floor_s']:.1f} s, {row['floor_peak_mib']:.0f} MiB; audit "
              f"{row['audit_s']:.1f} s ({row['time_ratio']:.2f}x, target {TIME_TARGET}x), "
              f"{row['audit_peak_mib']:.0f} MiB (target {MEMORY_TARGET_MIB} MiB; the model's process "
              f"{min(peaks):.0f}-{max(peaks):.0f} MiB); "
              f"{engine.get('data', {}).get('chunks')} chunks", flush=True)
    (OUT_DIR / "bench_stream.json").write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
