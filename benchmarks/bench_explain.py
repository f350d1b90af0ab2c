"""Time the explain audit's attributions against the floor of the passes they need (not a test).

Integrated Gradients with 50 steps needs one forward and one backward pass over 50 x rows
*points* (each explained row's path from the baseline). No tool can explain those rows faster
than plain torch runs those passes: that is the floor. Two models, built here from data that
ships with scikit-learn, trained for a few seconds and saved as TorchScript (as users hand
them to the audit) to a temporary folder:

- **mlp**: breast cancer (569 rows x 30 features), a 30 -> 64 -> 64 -> 1 ReLU MLP with the
  standardisation inside, one logit. The data file holds the 569 rows twice (1,138 rows), so
  the audit's stratified sample has exactly ``--samples`` rows (default 1,000).
- **cnn**: digits (1,797 images of 8x8) upsampled to 28x28 (``np.kron`` to 32x32, then
  area-averaged: 784 features); Conv(1,16,3,pad 1)+ReLU+MaxPool(2)+Conv(16,32,3,pad 1)+ReLU+
  MaxPool(2)+Linear(1568,10), pixels divided by 16 inside; audited from flat rows with input
  shape 1,28,28. ``--image-samples`` rows (default 200: its passes cost ~100x the MLP's). The
  convolutions are padded: unpadded, the right and bottom two pixel rows and columns never
  reach the output, and the audit then explains the model by Feature Ablation instead.

The rows explained are the audit's own: ``stratified_sample`` of the data file by class, seed
0, toward the audit's target (the positive class; the CNN's predicted class), from its default
baseline (the feature means; zeros for the images). Measurements, each on its own loaded copy
of the model (TorchScript specialises per copy):

1. **floor**: plain torch over the same points in the attribution's passes
   (``batch_rows(n_features, device) // 50`` rows per pass): for each pass
   ``x.requires_grad_(True)``, ``out = model(x reshaped)``, ``torch.autograd.grad(out[:,
   target].sum(), x)``. The points (captum's Gauss-Legendre nodes) are built before the clock
   starts. Run with TorchScript's optimising executor and without
   (``torch.jit.optimized_execution(False)``: operators one by one, as eager torch), once
   each after warm-up; the faster is the floor (both times are printed).
2. **floor, one pass**: every point in one pass, when the estimated memory (every layer's
   output, three copies) fits in half the free memory; else the largest passes that do.
3. **floor, fastest pass size**: the fastest of passes of 2^16 .. 2^20 input values (one
   timed call each after warm-up; all printed), around the attribution's 2^18 on CPU.
4. **attribute**: ``auditor_plugins.explain.attribution.attribute`` with ``Settings(method=
   "integrated_gradients", n_steps=50, max_steps=50)`` (no re-integration), everything the
   audit's attribution step does, including the forward passes over the rows and baseline for
   the completeness check; and again with ``batch_size`` = the fastest floor's pass size.
5. **captum, per row**: captum's ``IntegratedGradients`` the way its documentation shows, a
   forward function returning each row's class probabilities, ``target=`` per row,
   ``internal_batch_size`` = the attribution's points per pass: captum then differentiates one
   scalar per point, where ``attribute`` differentiates their sum.
6. **explain audit**: the whole audit through ``auditor.run.pipeline.execute`` (model and CSV
   loading, the inference pass, the repeatability check, the gradient probe, the attributions
   with re-integration up to 400 steps, permutation importance for the MLP, tables and
   charts), default options (``explain.samples`` = the rows above), and for the MLP also
   ``-o explain.permutation=false`` (images are never permuted). The time is the audit's own
   (``timings.audits.explain``); the whole ``execute`` call is in the notes.

Every measurement is warmed up (twice; the audits once), calls shorter than 0.25 s are timed
in loops (their mean), then ``--repeats`` rounds run every measurement, the order reversed
every other round so that drift hits all alike; the figures are medians. Rows/s is explained
rows per second; "× floor" and "× fastest floor" divide by measurements 1 and the fastest of
1-3. The target: ``attribute`` within 1.5× of the floor. Raw figures go to
``benchmarks/out/bench_explain.json`` (``--json`` for another path).

Usage (from the repository root)::

    python benchmarks/bench_explain.py                      # both models, median of 5, ~3 min on 2 cores
    python benchmarks/bench_explain.py --models mlp --repeats 3 --no-captum
    python benchmarks/bench_explain.py --threads 1          # one torch thread
    python benchmarks/bench_explain.py --device cuda        # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from sklearn import datasets
from torch import nn

from auditor.contract.context import Task
from auditor.run.inference import resolve_device
from auditor_plugins.explain import attribution
from auditor_plugins.explain.attribution import Settings, batch_rows
from auditor_plugins.explain.sample import stratified_sample

warnings.filterwarnings("ignore", module="captum")

OUT_DIR = Path(__file__).resolve().parent / "out"
SEED = 0
N_STEPS = 50
TARGET = 1.5
MIN_TIMED_S = 0.25  # shorter calls are timed in loops (their mean)
DEFAULT_SAMPLES = 1000  # the explain audit's default explain.samples
TEXT_COLUMNS = ("model", "measurement", "notes")


# ---- models ---------------------------------------------------------------------------------


class MLP(nn.Module):
    """30 features, standardised inside -> 64 -> 64 -> one logit."""

    def __init__(self, X: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(X.mean(axis=0), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(X.std(axis=0) + 1e-6, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class CNN(nn.Module):
    """1x28x28 images (pixels 0-16) -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x / 16.0).flatten(1))


def fit(module: nn.Module, X: np.ndarray, y: np.ndarray, loss_fn: Callable[..., torch.Tensor], *,
        steps: int, batch: int) -> float:
    """A few Adam steps on mini-batches; returns the training accuracy."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(steps):
        rows = torch.from_numpy(rng.choice(len(X), min(batch, len(X)), replace=False))
        opt.zero_grad()
        loss_fn(module(Xt[rows]), yt[rows]).backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        out = module(Xt)
    label = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(dim=1)
    return float((label == yt.reshape(-1).long()).float().mean())


@dataclass
class Case:
    """A trained model saved as TorchScript with its data file, and the rows to explain."""

    name: str
    title: str
    eager: nn.Module
    model_path: Path
    csv_path: Path
    X: np.ndarray  # the data file's features (float32)
    task: Task
    input_shape: list[int] | None
    accuracy: float
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    baseline: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32))


def write(folder: Path, name: str, module: nn.Module, X: np.ndarray, y: np.ndarray, columns: list[str]) -> tuple[Path, Path]:
    model_path, csv_path = folder / f"{name}.pt", folder / f"{name}.csv"
    torch.jit.save(torch.jit.script(module), str(model_path))
    frame = pd.DataFrame(X, columns=columns)
    frame["target"] = y
    frame.to_csv(csv_path, index=False)
    return model_path, csv_path


def mlp_case(folder: Path, samples: int) -> Case:
    data = datasets.load_breast_cancer()
    X = data.data.astype(np.float32)
    y = data.target.astype(np.int64)
    torch.manual_seed(SEED)
    module = MLP(X)
    accuracy = fit(module, X, y[:, None].astype(np.float32), nn.functional.binary_cross_entropy_with_logits,
                   steps=200, batch=256)
    copies = -(-samples // len(X))  # the rows repeated, so that the sample has exactly `samples` rows
    X_file, y_file = np.tile(X, (copies, 1)), np.tile(y, copies)
    columns = [c.replace(" ", "_") for c in data.feature_names]
    model_path, csv_path = write(folder, "mlp", module, X_file, y_file, columns)
    case = Case("mlp", "MLP 30-64-64-1 (breast cancer)", module, model_path, csv_path, X_file,
                Task("binary", ("0", "1"), "logits", 1), None, accuracy)
    case.rows = stratified_sample(y_file, samples, SEED)
    case.targets = np.ones(case.rows.size, dtype=np.int64)
    case.baseline = X_file.mean(axis=0, dtype=np.float64).astype(np.float32)[None, :]
    return case


def cnn_case(folder: Path, samples: int) -> Case:
    data = datasets.load_digits()
    images = np.kron(data.images, np.ones((4, 4)))  # 32x32 ...
    images = torch.nn.functional.interpolate(  # ... then area-averaged to 28x28
        torch.from_numpy(images[:, None].astype(np.float32)), size=(28, 28), mode="area"
    ).numpy()
    X = images.reshape(len(images), -1).astype(np.float32)
    y = data.target.astype(np.int64)
    torch.manual_seed(SEED)
    module = CNN()
    accuracy = fit(module, X.reshape(-1, 1, 28, 28), y, nn.functional.cross_entropy, steps=150, batch=128)
    columns = [f"pixel_{i}_{j}" for i in range(28) for j in range(28)]
    model_path, csv_path = write(folder, "cnn", module, X, y, columns)
    case = Case("cnn", "CNN 2 conv + linear (digits, 1x28x28)", module, model_path, csv_path, X,
                Task("multiclass", tuple(str(c) for c in range(10)), "logits", 10), [1, 28, 28], accuracy)
    case.rows = stratified_sample(y, samples, SEED)
    with torch.no_grad():
        case.targets = module(torch.from_numpy(X[case.rows]).reshape(-1, 1, 28, 28)).argmax(dim=1).numpy()
    case.baseline = np.zeros((1, X.shape[1]), dtype=np.float32)
    return case


# ---- the floor ------------------------------------------------------------------------------


def path_points(x: np.ndarray, baseline: np.ndarray, n_steps: int) -> np.ndarray:
    """Every point on the rows' paths from the baseline, step-major as captum lays them out,
    at the Gauss-Legendre nodes captum's default method uses."""
    nodes, _ = np.polynomial.legendre.leggauss(n_steps)
    alphas = (nodes + 1.0) / 2.0
    return np.concatenate([baseline + a * (x - baseline) for a in alphas]).astype(np.float32)


def floor_batches(case: Case, rows_per_pass: int, n_steps: int, device: torch.device
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    batches = []
    X = case.X[case.rows]
    for start in range(0, X.shape[0], rows_per_pass):
        x = path_points(X[start : start + rows_per_pass], case.baseline, n_steps)
        t = np.tile(case.targets[start : start + rows_per_pass], n_steps)
        batches.append((torch.from_numpy(x).to(device).requires_grad_(True),
                        torch.from_numpy(t).to(device).reshape(-1, 1)))
    return batches


def floor(model: Any, batches: list[tuple[torch.Tensor, torch.Tensor]], shape: list[int] | None,
          device: torch.device, optimize: bool) -> None:
    """Forward and backward over every batch; ``optimize``: TorchScript's optimising executor."""
    with torch.jit.optimized_execution(optimize):
        for x, t in batches:
            out = model(x.reshape(x.shape[0], *shape) if shape else x)
            chosen = out[:, 0] if out.shape[1] == 1 else out.gather(1, t)
            torch.autograd.grad(chosen.sum(), x)
        sync(device)


def activation_bytes(module: nn.Module, shape: list[int] | None, n_features: int) -> int:
    """Bytes of every leaf module's output for one row (what a backward pass keeps)."""
    total = [n_features]
    hooks = [m.register_forward_hook(lambda _m, _i, out: total.append(out[0].numel()))
             for m in module.modules() if not list(m.children())]
    with torch.no_grad():
        x = torch.zeros(1, n_features)
        module(x.reshape(1, *shape) if shape else x)
    for hook in hooks:
        hook.remove()
    return 4 * sum(total)


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


# ---- captum, the documented way -------------------------------------------------------------


class PerRow(nn.Module):
    """Each row's class probabilities (rows x 2 for one logit), as a captum user writes it."""

    def __init__(self, model: Any, shape: list[int] | None) -> None:
        super().__init__()
        self.model = model
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x.reshape(x.shape[0], *self.shape) if self.shape else x)
        if z.shape[1] == 1:
            p = torch.sigmoid(z)
            return torch.cat([1.0 - p, p], dim=1)
        return torch.softmax(z, dim=1)


def captum_plain(model: Any, case: Case, n_steps: int, internal_batch: int, device: torch.device) -> np.ndarray:
    from captum.attr import IntegratedGradients

    x = torch.from_numpy(case.X[case.rows]).to(device)
    b = torch.from_numpy(case.baseline).to(device)
    t = torch.from_numpy(case.targets).to(device)
    got = IntegratedGradients(PerRow(model, case.input_shape)).attribute(
        x, baselines=b, target=t, n_steps=n_steps, internal_batch_size=internal_batch
    )
    return got.detach().double().cpu().numpy()


# ---- timing ---------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` as a measurement: one call, its wall-clock seconds."""

    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


@dataclass
class Measurement:
    label: str
    run: Callable[[], float]  # one call; returns the seconds it measured
    points_per_pass: int | None = None
    passes: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    warmups: int = 2  # TorchScript's profiling executor optimises the graph on the second call
    loops: int = 0  # calls per timing (their mean); 0: enough for about MIN_TIMED_S, from the warm-up
    seconds: list[float] = field(default_factory=list)
    warmed: bool = False

    def warm_up(self) -> None:
        for _ in range(self.warmups):
            took = self.run()
        self.warmed = True
        if self.loops == 0:
            self.loops = max(1, min(20, math.ceil(MIN_TIMED_S / max(took, 1e-6))))

    def time(self) -> None:
        self.seconds.append(sum(self.run() for _ in range(self.loops)) / self.loops)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run_audit(case: Case, device: torch.device, samples: int, permutation: bool) -> tuple[float, float, str]:
    """The explain audit through ``execute``: (its own seconds, execute's seconds, status)."""
    from auditor.run.pipeline import RunConfig, execute
    from auditor_plugins.explain.audit import ExplainAudit

    overrides: dict[str, str] = {}
    if samples != DEFAULT_SAMPLES:
        overrides["samples"] = str(samples)
    if not permutation:
        overrides["permutation"] = "false"
    config = RunConfig(model=case.model_path, data=case.csv_path, audits=["explain"], device=str(device),
                       input_shape=case.input_shape, seed=SEED, overrides={"explain": overrides} if overrides else {})
    start = time.perf_counter()
    execution = execute(config, {"explain": ExplainAudit()})
    whole = time.perf_counter() - start
    result = execution.runs.results["explain"]
    if result.status == "error":
        raise SystemExit(f"{case.name}: the explain audit failed:\n{execution.runs.tracebacks.get('explain', '')}")
    said = result.status
    codes = sorted({finding.code for finding in result.findings})
    if codes:
        said += f" ({', '.join(codes)})"
    method = result.notes[0].split(":")[0] if result.notes else "?"
    said += f"; {method}"
    completeness = next((t for t in result.tables if t.name == "completeness"), None)
    if completeness is not None:
        steps = [(row[0].split()[-2], row[1]) for row in completeness.rows if str(row[0]).startswith("Rows integrated")]
        said += ", rows x steps " + " + ".join(f"{count:,} x {n}" for n, count in steps)
    return float(execution.runs.timings["explain"]), whole, said


def rows_for(budget: int, n_features: int, n: int) -> int:
    """Sample rows per pass when a pass may hold ``budget`` input values (``attribute``'s sizing)."""
    return min(n, max(1, (budget // n_features) // N_STEPS))


def bench_case(case: Case, repeats: int, device: torch.device, *, captum: bool, audit: bool) -> dict[str, Any]:
    n, n_features = case.rows.size, case.X.shape[1]

    def load() -> Any:  # each measurement its own instance: TorchScript specialises per instance
        return torch.jit.load(str(case.model_path), map_location=device).eval()

    def floor_measurement(label: str, rows_per_pass: int, optimise: bool) -> Measurement:
        batches, model = floor_batches(case, rows_per_pass, N_STEPS, device), load()
        return Measurement(label, wall(lambda: floor(model, batches, case.input_shape, device, optimise)),
                           rows_per_pass * N_STEPS, len(batches))

    rows_per_pass = min(n, max(1, batch_rows(n_features, device) // N_STEPS))  # as attribute() batches (1 baseline)
    measurements: list[Measurement] = []

    # 1. the floor, in the attribution's batches, with TorchScript's optimising executor or without,
    # whichever is faster (without it, a scripted model runs its operators one by one, as eager torch)
    executors: dict[str, float] = {}
    candidates = {}
    for mode in (True, False):
        candidate = floor_measurement("floor", rows_per_pass, mode)
        candidate.warm_up()
        candidate.time()
        executors["optimised" if mode else "not optimised"] = candidate.seconds.pop()
        candidates[mode] = candidate
    optimise = executors["optimised"] <= executors["not optimised"]
    measurements.append(candidates[optimise])
    print(f"  {case.name}: floor s with TorchScript's executor "
          + ", ".join(f"{k} {v:.3f}" for k, v in executors.items()), flush=True)

    # 2. the floor in one pass, or in the largest passes that fit in half the free memory
    per_point = 3 * activation_bytes(case.eager, case.input_shape, n_features)
    big_rows = min(n, max(1, int(free_bytes(device) * 0.5) // (per_point * N_STEPS)))
    if big_rows > rows_per_pass:
        measurements.append(floor_measurement("floor, one pass" if big_rows == n else "floor, largest passes",
                                              big_rows, optimise))

    # 3. the floor in the fastest pass size of a sweep of smaller ones (2^16 to 2^20 input values)
    swept: dict[int, float] = {}
    best: Measurement | None = None
    for budget in (2**16, 2**17, 2**18, 2**19, 2**20):
        rows = rows_for(budget, n_features, n)
        if rows >= rows_per_pass or rows * N_STEPS in swept:
            continue
        candidate = floor_measurement("floor, fastest pass size", rows, optimise)
        candidate.warm_up()
        candidate.time()
        swept[rows * N_STEPS] = candidate.seconds.pop()
        if best is None or swept[rows * N_STEPS] < swept[best.points_per_pass or 0]:
            best = candidate
    if best is not None:
        print(f"  {case.name}: floor s by points per pass "
              + ", ".join(f"{p:,}: {t:.3f}" for p, t in sorted(swept.items())), flush=True)
        measurements.append(best)

    # 4. attribution.attribute, Integrated Gradients without re-integration, and with the best pass size
    X = np.ascontiguousarray(case.X[case.rows])
    found: dict[str, attribution.Attributions] = {}

    def attribute_measurement(label: str, batch_size: int) -> Measurement:
        settings = Settings(method="integrated_gradients", n_steps=N_STEPS, max_steps=N_STEPS, batch_size=batch_size)
        model = load()

        def attribute() -> None:
            found[label] = attribution.attribute(model, X, case.targets, case.baseline, task=case.task,
                                                 input_shape=case.input_shape, device=device, settings=settings)

        per_pass = min(n, max(1, batch_rows(n_features, device, batch_size) // N_STEPS))
        return Measurement(label, wall(attribute), per_pass * N_STEPS, -(-n // per_pass),
                           {"batch_size": batch_size})

    measurements.append(attribute_measurement("attribute", 0))
    if best is not None:
        assert best.points_per_pass is not None
        measurements.append(attribute_measurement(f"attribute, batch_size={best.points_per_pass}", best.points_per_pass))

    # 5. captum the documented way: per-row outputs and targets
    if captum:
        theirs: list[np.ndarray] = []
        points = rows_per_pass * N_STEPS
        steps_per_pass = max(1, points // n)  # captum slices the steps: internal_batch_size // rows per pass
        model = load()
        measurements.append(Measurement(
            "captum, per row",
            wall(lambda: theirs.__setitem__(slice(None), [captum_plain(model, case, N_STEPS, points, device)])),
            steps_per_pass * n, -(-N_STEPS // steps_per_pass),
        ))

    # 6. the whole audit
    if audit:
        variants = [True, False] if case.input_shape is None else [True]  # images: never permuted
        for permutation in variants:
            totals: list[float] = []
            status: list[str] = []

            def one(permutation: bool = permutation, totals: list[float] = totals, status: list[str] = status) -> float:
                own, whole, said = run_audit(case, device, n, permutation)
                totals.append(whole)
                status[:] = [said]
                return own

            label = "explain audit" if permutation else "explain audit, permutation=false"
            measurements.append(Measurement(label, one, info={"execute_s": totals, "status": status},
                                            warmups=1, loops=1))

    # untimed warm-ups of each, then `repeats` rounds, the order reversed every other round
    for m in measurements:
        if not m.warmed:
            m.warm_up()
        if "execute_s" in m.info:
            m.info["execute_s"].clear()
    print(f"  {case.name}: warmed up; {repeats} timed rounds", flush=True)
    load_before = os.getloadavg()
    for r in range(repeats):
        for m in measurements if r % 2 == 0 else measurements[::-1]:
            m.time()
    load_after = os.getloadavg()

    plain = found["attribute"]
    delta = np.abs(plain.delta) if plain.delta is not None else np.zeros(1)
    by = {m.label: m for m in measurements}
    by["attribute"].info.update(rows_through_model=plain.passes, completeness_error_p95=float(np.quantile(delta, 0.95)))
    for label, other in found.items():
        if label != "attribute":
            by[label].info["max_abs_diff"] = float(np.max(np.abs(other.values - plain.values)))
    if captum:
        by["captum, per row"].info["max_abs_diff"] = float(np.max(np.abs(theirs[0] - plain.values)))
    floor_s = by["floor"].median
    best_s = min(m.median for m in measurements if m.label.startswith("floor"))
    out = {
        "model": case.name, "title": case.title, "rows": n, "features": n_features,
        "training_accuracy": case.accuracy, "load_average_before": load_before, "load_average_after": load_after,
        "floor_s_by_executor": executors, "floor_executor_optimised": optimise,
        "floor_s_by_points_per_pass": {str(k): v for k, v in sorted(swept.items())},
        "measurements": [],
    }
    for m in measurements:
        info = dict(m.info)
        if "execute_s" in info:
            info["execute_median_s"] = statistics.median(info["execute_s"])
            info["status"] = info["status"][0]
        out["measurements"].append({
            "measurement": m.label, "seconds": m.seconds, "median_s": m.median, "rows_per_s": n / m.median,
            "vs_floor": m.median / floor_s, "vs_fastest_floor": m.median / best_s,
            "points_per_pass": m.points_per_pass, "passes": m.passes, "calls_per_timing": m.loops, **info,
        })
        print(f"  {case.name} {m.label}: median {m.median:.3f} s", flush=True)
    return out


# ---- report ---------------------------------------------------------------------------------


def machine(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
    }
    try:
        import captum

        info["captum"] = captum.__version__
    except ImportError:  # pragma: no cover - captum is a dependency of the explain audit
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(":---" if name in TEXT_COLUMNS else "---:" for name in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def notes(m: dict[str, Any]) -> str:
    if "execute_median_s" in m:
        return f"whole execute() {m['execute_median_s']:.2f} s; {m['status']}"
    if "max_abs_diff" in m:
        return f"max abs diff from attribute {m['max_abs_diff']:.1e}"
    if "completeness_error_p95" in m:
        return f"completeness error p95 {m['completeness_error_p95']:.4f}"
    return ""


def print_tables(results: list[dict[str, Any]], repeats: int, info: dict[str, object]) -> None:
    rows = []
    for case in results:
        for m in case["measurements"]:
            per_pass = f"{m['points_per_pass']:,}" if m["points_per_pass"] else ""
            count = f"{m['passes']:,}" if m["passes"] else ""
            rows.append([case["model"], f"{case['rows']:,}", m["measurement"], per_pass, count, f"{m['median_s']:.3f}",
                         f"{m['rows_per_s']:,.0f}", f"{m['vs_floor']:.2f}×", f"{m['vs_fastest_floor']:.2f}×", notes(m)])
    table(f"Integrated Gradients, {N_STEPS} steps ({info['cpus']} CPUs, {info['torch_threads']} torch threads, "
          f"device {info['device']}; median s of {repeats})",
          ["model", "rows", "measurement", "points per pass", "passes", "median s", "rows/s", "× floor",
           "× fastest floor", "notes"], rows)
    print()
    for case in results:
        by = {m["measurement"]: m for m in case["measurements"]}
        plain = by["attribute"]
        tuned = next((m for m in case["measurements"] if m["measurement"].startswith("attribute, batch_size=")), None)
        load = ", ".join(f"{v:.1f}" for v in case["load_average_before"])
        line = (f"{case['model']}: attribute = {plain['vs_floor']:.2f}× the floor in its own passes, "
                f"{plain['vs_fastest_floor']:.2f}× the fastest floor ({'within' if plain['vs_fastest_floor'] <= TARGET else 'OVER'} "
                f"the {TARGET}× target)")
        if tuned is not None:
            line += f"; {tuned['measurement']}: {tuned['vs_fastest_floor']:.2f}×"
        print(line + f"; load average before the timed rounds {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="rows explained for the MLP")
    parser.add_argument("--image-samples", type=int, default=200, help="rows explained for the CNN")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each measurement")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-captum", action="store_true", help="skip captum's per-row Integrated Gradients")
    parser.add_argument("--no-audit", action="store_true", help="skip the whole explain audit through execute")
    parser.add_argument("--json", type=Path, default=OUT_DIR / "bench_explain.json", help="where the raw figures go")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.samples < 10 or args.image_samples < 10:
        parser.error("--samples and --image-samples must be at least 10 (the audit's minimum)")
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names or any(name not in ("mlp", "cnn") for name in names):
        parser.error("--models takes mlp, cnn or both")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    info = machine(device)
    print(f"bench_explain: Integrated Gradients, {N_STEPS} steps, medians of {args.repeats} (after warm-up), "
          f"{info['cpus']} CPUs, {info['torch_threads']} torch threads, torch {info['torch']}, device {device}")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_explain_") as tmp:
        for name in names:
            t = time.perf_counter()
            case = mlp_case(Path(tmp), args.samples) if name == "mlp" else cnn_case(Path(tmp), args.image_samples)
            print(f"  {case.name}: trained in {time.perf_counter() - t:.1f} s (training accuracy {case.accuracy:.3f}); "
                  f"{case.rows.size:,} rows x {case.X.shape[1]} features", flush=True)
            results.append(bench_case(case, args.repeats, device, captum=not args.no_captum, audit=not args.no_audit))
    print_tables(results, args.repeats, info)
    report = {"script": "benchmarks/bench_explain.py", "machine": info, "n_steps": N_STEPS,
              "repeats": args.repeats, "target": TARGET, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nraw figures: {args.json}")


if __name__ == "__main__":
    main()
