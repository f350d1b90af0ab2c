"""Benchmark the whole ``audit`` process against "the floor".

The product target: ``audit MODEL --data CSV`` with its default audits takes at most 2x the
wall-clock time and 1.5x the peak memory of the floor, at 1M rows x 30 features with a binary
MLP on a 2-core machine.

The floor is the least any tool must do to score the data once: a separate Python process that
imports torch, loads the model, reads the CSV with ``pyarrow.csv.read_csv``, converts the
features to one float32 tensor and makes one forward pass (``FLOOR_SOURCE`` below, in full).
It fills a features x rows buffer column by column and hands the model its transpose (a view):
the fastest and leanest conversion we found, so that a slow floor cannot flatter the
audit's ratios.

For each size the script generates (once, cached under ``benchmarks/out/``) a synthetic data set
and a small trained model, runs one untimed floor to warm the page cache, then ``--repeats``
pairs of floor and audit runs in ABBA order (floor first in even repeats, audit first in odd
ones) so that drift hits both. Each run is a child process timed by wall clock from spawn to
exit; its peak memory is ``ru_maxrss`` from ``os.wait4`` (for ``audit``, plus the peak of the
process that ran the model, from report.json: it is a child of auditor's forkserver, which
``wait4`` does not see; the sum is an upper bound). Medians and the audit/floor ratios
go to stdout, every raw figure to ``benchmarks/out/bench_audit.json``.

Usage (from the repository root)::

    python benchmarks/bench_audit.py                       # 100k and 1M rows, 3 repeats
    python benchmarks/bench_audit.py --floor-only          # the floor alone
    python benchmarks/bench_audit.py --device cuda --cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import torch
from torch import nn

OUT_DIR = Path(__file__).resolve().parent / "out"
DATA_VERSION = "v2"  # bump when the generator or the model changes, to invalidate the cache
SEED = 1234
N_FEATURES = 30
N_FACTORS = 5
CHUNK_ROWS = 100_000
TRAIN_ROWS = 20_000
TRAIN_STEPS = 400
TRAIN_BATCH = 256
FEATURE_KINDS = ("gauss", "amount", "count", "ratio", "flag")
TIME_TARGET = 2.0
MEMORY_TARGET = 1.5

FLOOR_SOURCE = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import pyarrow.csv
import torch

model_path, csv_path, device, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra_files = {"auditor.json": ""}
model = torch.jit.load(model_path, map_location=device, _extra_files=extra_files).eval()
feature_names = json.loads(extra_files["auditor.json"])["feature_names"]
loaded = time.perf_counter()
table = pyarrow.csv.read_csv(csv_path)
read = time.perf_counter()
columns = np.empty((len(feature_names), table.num_rows), dtype=np.float32)
for j, name in enumerate(feature_names):
    columns[j] = table.column(name).to_numpy()
features = torch.from_numpy(columns).T  # rows x features, no copy
converted = time.perf_counter()
with torch.inference_mode():
    if batch_size:
        out = torch.cat([model(batch.to(device)).cpu() for batch in features.split(batch_size)])
    else:
        out = model(features.to(device)).cpu()
scored = time.perf_counter()
print(json.dumps({
    "rows": int(out.shape[0]),
    "imports_and_model_s": loaded - started,
    "read_csv_s": read - loaded,
    "to_tensor_s": converted - read,
    "forward_s": scored - converted,
}))
"""


@dataclass(frozen=True)
class Process:
    """The synthetic data-generating process: correlated latent normals, mixed marginals."""

    loadings: np.ndarray  # (N_FEATURES, N_FACTORS)
    noise_sd: np.ndarray  # (N_FEATURES,)
    weights: np.ndarray  # (N_FEATURES,) logistic weights on the latent normals
    intercept: float

    @staticmethod
    def make() -> Process:
        rng = np.random.default_rng([SEED, 0])
        loadings = rng.normal(size=(N_FEATURES, N_FACTORS))
        share = rng.uniform(0.2, 0.8, size=N_FEATURES)  # variance explained by the factors
        loadings *= np.sqrt(share / (loadings**2).sum(axis=1))[:, None]
        weights = rng.normal(scale=0.6, size=N_FEATURES) * (rng.uniform(size=N_FEATURES) < 0.5)
        return Process(loadings, np.sqrt(1.0 - share), weights, intercept=-1.0)

    @property
    def feature_names(self) -> list[str]:
        return [f"{FEATURE_KINDS[j % len(FEATURE_KINDS)]}_{j:02d}" for j in range(N_FEATURES)]

    def sample(self, n: int, stream: int) -> pa.Table:
        """``n`` rows from random stream ``stream``: the features, two sensitive text
        columns (``group_a``, ``group_b``), then ``target`` (0/1)."""
        rng = np.random.default_rng([SEED, 1, stream])
        factors = rng.normal(size=(n, N_FACTORS))
        z = factors @ self.loadings.T + rng.normal(size=(n, N_FEATURES)) * self.noise_sd
        logit = z @ self.weights + 0.5 * z[:, 0] * z[:, 1] + self.intercept
        target = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        columns: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.feature_names):
            columns[name] = _marginal(FEATURE_KINDS[j % len(FEATURE_KINDS)], z[:, j])
        # Two sensitive attributes the model never sees, tied to the latent factors so that
        # the groups really differ: 2 groups, and 5 groups of unequal size.
        columns["group_a"] = np.where(factors[:, 0] + rng.normal(size=n) > 0, "A", "B")
        columns["group_b"] = np.array(["g1", "g2", "g3", "g4", "g5"])[
            np.searchsorted([-1.0, -0.3, 0.4, 1.2], factors[:, 1] + 0.5 * rng.normal(size=n))
        ]
        columns["target"] = target
        return pa.table(columns)


def _marginal(kind: str, z: np.ndarray) -> np.ndarray:
    """Map a standard normal column to a realistic-looking marginal of the given kind."""
    if kind == "gauss":  # e.g. an age or a temperature
        return np.round(45.0 + 12.0 * z, 1)
    if kind == "amount":  # heavy-tailed money
        return np.round(np.exp(4.0 + 1.1 * z), 2)
    if kind == "count":  # small non-negative integers
        return np.floor(np.exp(1.0 + 0.6 * z)).astype(np.int64)
    if kind == "ratio":  # a share in (0, 1)
        return np.round(1.0 / (1.0 + np.exp(-z)), 4)
    if kind == "flag":  # a 0/1 indicator
        return (z > 0.8).astype(np.int64)
    raise ValueError(kind)


def ensure_data(process: Process, n_rows: int) -> Path:
    """Write (once) ``n_rows`` rows as CSV; a smaller size is a prefix of a larger one."""
    path = OUT_DIR / f"synthetic_{DATA_VERSION}_{n_rows}.csv"
    if path.exists():
        return path
    print(f"generating {path.name} ...", flush=True)
    started = time.perf_counter()
    partial = path.with_suffix(".csv.partial")
    writer: pacsv.CSVWriter | None = None
    for stream, start in enumerate(range(0, n_rows, CHUNK_ROWS)):
        chunk = process.sample(min(CHUNK_ROWS, n_rows - start), stream)
        if writer is None:
            writer = pacsv.CSVWriter(str(partial), chunk.schema)
        writer.write_table(chunk)
    assert writer is not None
    writer.close()
    partial.rename(path)
    size_mib = path.stat().st_size / 2**20
    print(f"  {size_mib:.0f} MiB in {time.perf_counter() - started:.1f} s", flush=True)
    return path


class Standardize(nn.Module):
    """Subtract per-feature means and divide by standard deviations (buffers, so exported)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def ensure_model(process: Process) -> Path:
    """Train (once) a 30 -> 64 -> 32 -> 1 MLP briefly and save it as TorchScript."""
    path = OUT_DIR / f"model_{DATA_VERSION}.pt"
    if path.exists():
        return path
    torch.manual_seed(SEED)
    table = process.sample(2 * TRAIN_ROWS, stream=10_000)  # a stream no data file uses
    names = process.feature_names
    x = torch.tensor(np.column_stack([table[n].to_numpy() for n in names]), dtype=torch.float32)
    y = torch.tensor(table["target"].to_numpy(), dtype=torch.float32)
    x_train, y_train, x_test, y_test = x[:TRAIN_ROWS], y[:TRAIN_ROWS], x[TRAIN_ROWS:], y[TRAIN_ROWS:]
    model = nn.Sequential(
        Standardize(x_train.mean(dim=0), x_train.std(dim=0)),
        nn.Linear(N_FEATURES, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 1),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(TRAIN_STEPS):
        batch = torch.randint(0, TRAIN_ROWS, (TRAIN_BATCH,))
        optimizer.zero_grad()
        loss_fn(model(x_train[batch]).squeeze(1), y_train[batch]).backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode():
        accuracy = float(((model(x_test).squeeze(1) > 0).float() == y_test).float().mean())
    print(f"model: held-out accuracy {accuracy:.3f} (positive rate {float(y_test.mean()):.3f})")
    meta = {"feature_names": names, "class_names": ["0", "1"], "target": "target", "task": "binary"}
    torch.jit.save(
        torch.jit.script(model), str(path), _extra_files={"auditor.json": json.dumps(meta)}
    )
    return path


@dataclass
class Run:
    seconds: float
    max_rss_mib: float
    phases: dict[str, float] = field(default_factory=dict)  # the floor's own timings


@dataclass
class Series:
    """The timed runs of one command at one size."""

    runs: list[Run] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def median_max_rss_mib(self) -> float:
        return statistics.median(run.max_rss_mib for run in self.runs)

    def summary(self) -> dict[str, object]:
        return {
            "median_seconds": self.median_seconds,
            "median_max_rss_mib": self.median_max_rss_mib,
            "runs": [asdict(run) for run in self.runs],
        }


def run_child(argv: list[str], log_dir: Path) -> Run:
    """Spawn ``argv``, wait for it, and return its wall time and peak resident memory."""
    stdout_path, stderr_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, str(stdout_path), flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr_path), flags, 0o644),
    ]
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1 is a verdict (an audit failed), not a broken run
        stderr_tail = stderr_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"command failed with exit status {code}: {' '.join(argv)}\n{stderr_tail}")
    return Run(seconds, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def _run_process_peak_mib(report_dir: Path) -> float:
    """The peak memory of the process that ran the model, as its report.json records it."""
    try:
        run = json.loads((report_dir / "report.json").read_text())["run"]
        return float(run.get("peak_rss_bytes") or 0) / 2**20
    except (OSError, ValueError, KeyError):
        return 0.0


def audit_command() -> list[str]:
    """The installed ``audit`` entry point, or ``python -m auditor`` when it is not on PATH."""
    found = shutil.which("audit")
    return [found] if found else [sys.executable, "-m", "auditor"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: str) -> dict[str, object]:
    info: dict[str, object] = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyarrow": pa.__version__,
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


@dataclass
class SizeResult:
    """Floor and audit runs at one data size."""

    rows: int
    csv: Path
    floor: Series = field(default_factory=Series)
    audit: Series = field(default_factory=Series)

    @property
    def time_ratio(self) -> float | None:
        if not self.audit.runs:
            return None
        return self.audit.median_seconds / self.floor.median_seconds

    @property
    def memory_ratio(self) -> float | None:
        if not self.audit.runs:
            return None
        return self.audit.median_max_rss_mib / self.floor.median_max_rss_mib

    def to_json(self) -> dict[str, object]:
        time_ratio, memory_ratio = self.time_ratio, self.memory_ratio
        return {
            "rows": self.rows,
            "csv": str(self.csv),
            "csv_bytes": self.csv.stat().st_size,
            "floor": self.floor.summary(),
            "audit": self.audit.summary() if self.audit.runs else None,
            "time_ratio": time_ratio,
            "memory_ratio": memory_ratio,
            "meets_target": None
            if time_ratio is None or memory_ratio is None
            else time_ratio <= TIME_TARGET and memory_ratio <= MEMORY_TARGET,
        }


def print_table(results: list[SizeResult]) -> None:
    header = (
        f"{'rows':>9}  {'floor s':>8}  {'audit s':>8}  {'time x':>6}  "
        f"{'floor MiB':>9}  {'audit MiB':>9}  {'mem x':>6}"
    )
    print(header)
    print("-" * len(header))

    def cell(value: float | None, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    for result in results:
        floor, audit = result.floor, result.audit
        print(
            f"{result.rows:>9,}  {cell(floor.median_seconds, 8, 2)}  "
            f"{cell(audit.median_seconds if audit.runs else None, 8, 2)}  "
            f"{cell(result.time_ratio, 6, 2)}  {cell(floor.median_max_rss_mib, 9, 0)}  "
            f"{cell(audit.median_max_rss_mib if audit.runs else None, 9, 0)}  "
            f"{cell(result.memory_ratio, 6, 2)}"
        )
    print(f"targets: time x <= {TIME_TARGET}, mem x <= {MEMORY_TARGET} (medians, audit / floor)")


def bench_size(
    csv_path: Path, n_rows: int, model_path: Path, args: argparse.Namespace, audit: list[str]
) -> SizeResult:
    """One untimed floor, then ``args.repeats`` floor/audit pairs in ABBA order."""
    result = SizeResult(rows=n_rows, csv=csv_path)
    floor_argv = [
        sys.executable, "-c", FLOOR_SOURCE,
        str(model_path), str(csv_path), args.device, str(args.floor_batch_size),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_audit_") as scratch:
        scratch_dir = Path(scratch)
        run_child(floor_argv, scratch_dir)  # warm-up: page cache, .pyc files
        for repeat in range(args.repeats):
            order = ["floor", "audit"] if repeat % 2 == 0 else ["audit", "floor"]
            for which in order:
                if which == "audit" and args.floor_only:
                    continue
                if which == "floor":
                    run = run_child(floor_argv, scratch_dir)
                    run.phases = json.loads((scratch_dir / "stdout.txt").read_text())
                    result.floor.runs.append(run)
                else:
                    report_dir = scratch_dir / f"report_{repeat}"
                    audit_argv = audit + [
                        str(model_path), "--data", str(csv_path), "--out", str(report_dir),
                        "--quiet", "--device", args.device,
                        *(["--sensitive", "group_a,group_b"] if args.with_fairness else []),
                    ]  # fmt: skip
                    run = run_child(audit_argv, scratch_dir)
                    # the model runs in a child of auditor's forkserver, which wait4 does not
                    # see: add its peak (from report.json) to the command's own, an upper bound
                    run.max_rss_mib += _run_process_peak_mib(report_dir)
                    result.audit.runs.append(run)
                    shutil.rmtree(report_dir, ignore_errors=True)
                print(f"  {n_rows:,} rows, repeat {repeat + 1}/{args.repeats}: {which} done")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (given to both commands)")
    parser.add_argument("--floor-only", action="store_true", help="time the floor alone")
    parser.add_argument(
        "--with-fairness",
        action="store_true",
        help="also name group_a and group_b as sensitive (fairness audit with their intersection)",
    )
    parser.add_argument(
        "--floor-batch-size",
        type=int,
        default=0,
        help="rows per forward pass in the floor; 0 (default) scores all rows in one pass",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        default=0,
        help="pin the children to the first N usable cores (e.g. 2 to mimic the target machine)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA GPU")

    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    info = machine(args.device)
    print(" | ".join(f"{key}: {value}" for key, value in info.items()))

    process = Process.make()
    model_path = ensure_model(process)
    audit = audit_command()
    print("audit command:", "(skipped: --floor-only)" if args.floor_only else " ".join(audit))

    results = [
        bench_size(ensure_data(process, n_rows), n_rows, model_path, args, audit)
        for n_rows in sizes
    ]
    print()
    print_table(results)
    report = {
        "machine": info,
        "config": {
            "sizes": sizes,
            "repeats": args.repeats,
            "device": args.device,
            "floor_only": args.floor_only,
            "with_fairness": args.with_fairness,
            "floor_batch_size": args.floor_batch_size,
            "cpus": args.cpus or None,
            "audit_command": None if args.floor_only else audit,
            "model": str(model_path),
            "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET},
        },
        "results": [result.to_json() for result in results],
    }
    json_path = OUT_DIR / "bench_audit.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"raw figures: {json_path}")


if __name__ == "__main__":
    main()
