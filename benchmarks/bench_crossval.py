"""Time the crossval audit's pieces against scikit-learn on synthetic predictions (not a test).

Three parts, each at every ``--sizes`` row count, ``--folds`` folds (default 5), medians of
``--repeats`` timed runs after one untimed warm-up:

1. **Folds.** :func:`auditor_plugins.crossval.splits.make_split` against scikit-learn's splitter with the same
   seed, its ``split`` materialised into one fold number per row: ``StratifiedKFold(k,
   shuffle=True, random_state=0)`` on the binary target, and ``KFold`` for unstratified
   folds. The two fold arrays must be equal (the script stops if not).
2. **Fold metrics.** :mod:`auditor.stats.fold_metrics` (every fold at once: bincounts and batched
   kernels) against the honest alternative, a Python loop over the folds calling
   scikit-learn's metric functions on each fold's rows, computing the same set: binary
   (accuracy, balanced accuracy, precision, recall, F1, ROC-AUC, average precision, MCC, log
   loss, Brier), 5-class (the same with macro and weighted precision/recall/F1, one-vs-rest
   macro ROC-AUC and macro average precision, no Brier) and regression (MAE, MSE, RMSE, R²,
   median absolute error, max error, MAPE). Every value must agree within 1e-9 (the script
   stops if not); the largest difference is printed.
3. **The audit.** ``CrossValidationAudit().run(ctx, CrossValidationAudit.defaults())`` on a
   binary context built by hand from arrays (no model, no file): splitting, every fold's
   metrics, the whole-data metrics, the spread summaries, tables and charts.

The data: a binary target ~ Bernoulli(0.25) with scores from a logistic model of it, rounded
to 4 decimals (ties, as a float32 model output has); a 5-class target of unequal class
sizes with softmax scores of noisy logits rounded to 1 decimal; a positive regression target
(gamma) with noisy predictions rounded to 2 decimals. Seeded, so every run sees the same data.

Usage (from the repository root)::

    python benchmarks/bench_crossval.py                        # 100k and 1M rows, median of 5
    python benchmarks/bench_crossval.py --sizes 10000,100000 --repeats 3 --folds 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
from sklearn import metrics as skm
from sklearn.model_selection import KFold, StratifiedKFold

from auditor.contract.context import AuditContext, Dataset, Predictions, Task
from auditor.stats import fold_metrics as fold_stats
from auditor_plugins.crossval.audit import CrossValidationAudit
from auditor_plugins.crossval.splits import make_split

SEED = 0
TOLERANCE = 1e-9
N_CLASSES = 5
CLASS_SHARES = (0.35, 0.25, 0.20, 0.12, 0.08)
TEXT_COLUMNS = ("folds", "task", "status", "equal")


# ---- synthetic data -------------------------------------------------------------------------


def binary_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y ~ Bernoulli(0.25); P(y=1) from a logistic model (ROC-AUC about 0.85), 4 decimals."""
    rng = np.random.default_rng([SEED, 1, n])
    y = (rng.random(n) < 0.25).astype(np.int64)
    logits = rng.normal(size=n) * 1.2 + 2.0 * y - 1.8
    p1 = np.clip(np.round(1.0 / (1.0 + np.exp(-logits)), 4), 1e-4, 1.0 - 1e-4)
    proba = np.column_stack([1.0 - p1, p1])
    return y, proba, proba.argmax(axis=1)


def multiclass_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5 classes of unequal size; softmax of logits (true class +1.5) rounded to 1 decimal."""
    rng = np.random.default_rng([SEED, 2, n])
    y = rng.choice(N_CLASSES, size=n, p=CLASS_SHARES).astype(np.int64)
    logits = np.round(rng.normal(size=(n, N_CLASSES)) + 1.5 * np.eye(N_CLASSES)[y], 1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba = e / e.sum(axis=1, keepdims=True)
    return y, proba, proba.argmax(axis=1)


def regression_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A positive target (gamma, mean 4) and predictions off by N(0, 1), to 2 decimals."""
    rng = np.random.default_rng([SEED, 3, n])
    y = np.round(rng.gamma(4.0, 1.0, size=n), 2) + 0.01  # never 0, so MAPE is defined
    pred = np.round(0.9 * y + 0.4 + rng.normal(size=n), 2)
    return y, pred


# ---- scikit-learn references ----------------------------------------------------------------


def sklearn_folds(splitter, n: int, y: np.ndarray | None) -> np.ndarray:
    """scikit-learn's test folds as one fold number per row."""
    X = np.empty((n, 0))
    folds = np.full(n, -1, dtype=np.int64)
    for i, (_, test) in enumerate(splitter.split(X, y)):
        folds[test] = i
    return folds


def sklearn_classification(y: np.ndarray, proba: np.ndarray, label: np.ndarray) -> dict[str, float]:
    k = proba.shape[1]
    out = {
        "accuracy": skm.accuracy_score(y, label),
        "balanced_accuracy": skm.balanced_accuracy_score(y, label),
    }
    if k == 2:
        out["precision"] = skm.precision_score(y, label, zero_division=0)
        out["recall"] = skm.recall_score(y, label, zero_division=0)
        out["f1"] = skm.f1_score(y, label, zero_division=0)
        out["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
        out["average_precision"] = skm.average_precision_score(y, proba[:, 1])
    else:
        for avg in ("macro", "weighted"):
            out[f"precision_{avg}"] = skm.precision_score(y, label, average=avg, zero_division=0)
            out[f"recall_{avg}"] = skm.recall_score(y, label, average=avg, zero_division=0)
            out[f"f1_{avg}"] = skm.f1_score(y, label, average=avg, zero_division=0)
        out["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        out["average_precision"] = skm.average_precision_score(y, proba, average="macro")
    out["mcc"] = skm.matthews_corrcoef(y, label)
    out["log_loss"] = skm.log_loss(y, proba, labels=list(range(k)))
    if k == 2:
        out["brier"] = skm.brier_score_loss(y, proba[:, 1])
    return out


def sklearn_regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "median_absolute_error": skm.median_absolute_error(y, pred),
        "max_error": skm.max_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }


def sklearn_loop(metric: Callable[..., dict[str, float]], folds: np.ndarray, k: int, *arrays: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """The loop a user would write: select each fold's rows, call scikit-learn on them."""
    per_fold = []
    for f in range(k):
        rows = folds == f
        per_fold.append(metric(*(a[rows] for a in arrays)))
    return {key: np.array([p[key] for p in per_fold]) for key in per_fold[0]}


def max_abs_diff(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> float:
    if set(ours) != set(theirs):
        raise SystemExit(f"metric sets differ: {sorted(set(ours) ^ set(theirs))}")
    return max(float(np.max(np.abs(ours[key] - theirs[key]))) for key in ours)


# ---- timing ---------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """One untimed warm-up call, then the median wall time of ``repeats`` calls, and a result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def binary_context(n: int) -> AuditContext:
    """A binary context from arrays; no model (the evaluation spread never calls it)."""
    y, proba, label = binary_data(n)
    data = Dataset(path="synthetic.csv", sha256="0" * 64, n_rows=n, columns=["target"], feature_names=[],
                   X=np.zeros((n, 0), np.float32), target_name="target", y=y)
    task = Task(kind="binary", class_names=("negative", "positive"), output="probabilities", n_outputs=2)
    predictions = Predictions(raw=proba.astype(np.float32), proba=proba, label=label)
    return AuditContext(model=None, data=data, task=task, predictions=predictions, seed=SEED)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(":---" if name in TEXT_COLUMNS else "---:" for name in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each measurement")
    parser.add_argument("--folds", type=int, default=5, help="number of folds k")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    k = args.folds
    cpus = os.cpu_count()
    print(f"bench_crossval: k={k} folds, medians of {args.repeats} (after one warm-up), {cpus} CPUs, seed {SEED}")

    # 1. folds
    split_rows = []
    for n in sizes:
        y, _, _ = binary_data(n)
        for name, splitter, target in (
            ("stratified (binary y)", StratifiedKFold(k, shuffle=True, random_state=SEED), y),
            ("plain", KFold(k, shuffle=True, random_state=SEED), None),
        ):
            t_sk, theirs = timed(lambda: sklearn_folds(splitter, n, target), args.repeats)  # noqa: B023 - called at once
            t_ours, ours = timed(lambda: make_split(n, k, seed=SEED, y=target).folds[0], args.repeats)  # noqa: B023
            if not np.array_equal(ours, theirs):
                raise SystemExit(f"{n:,} rows, {name}: make_split differs from scikit-learn's folds")
            split_rows.append([f"{n:,}", name, f"{t_sk:.3f}", f"{t_ours:.3f}", f"{t_sk / t_ours:.1f}×", "yes"])
            print(f"  folds {n:,} {name}: scikit-learn {t_sk:.3f} s, make_split {t_ours:.3f} s", flush=True)

    # 2. fold metrics
    metric_rows = []
    for n in sizes:
        cases = []
        y, proba, label = binary_data(n)
        folds = make_split(n, k, seed=SEED, y=y).folds[0]
        cases.append(("binary", lambda f=folds, a=(y, proba, label): sklearn_loop(sklearn_classification, f, k, *a),
                      lambda f=folds, a=(y, proba, label): fold_stats.classification(*a, f, k)))
        y5, proba5, label5 = multiclass_data(n)
        folds5 = make_split(n, k, seed=SEED, y=y5).folds[0]
        cases.append((f"{N_CLASSES}-class", lambda f=folds5, a=(y5, proba5, label5): sklearn_loop(sklearn_classification, f, k, *a),
                      lambda f=folds5, a=(y5, proba5, label5): fold_stats.classification(*a, f, k)))
        yr, pred = regression_data(n)
        foldsr = make_split(n, k, seed=SEED).folds[0]
        cases.append(("regression", lambda f=foldsr, yr=yr, pred=pred: sklearn_loop(sklearn_regression, f, k, yr, pred),
                      lambda f=foldsr, yr=yr, pred=pred: fold_stats.regression(yr, pred, f, k)))
        for name, loop, batched in cases:
            t_sk, theirs = timed(loop, args.repeats)
            t_ours, ours = timed(batched, args.repeats)
            diff = max_abs_diff(ours, theirs)  # type: ignore[arg-type]
            if not diff < TOLERANCE:
                raise SystemExit(f"{n:,} rows, {name}: fold_stats differs from scikit-learn by {diff:.2e}")
            metric_rows.append([f"{n:,}", name, str(len(ours)), f"{t_sk:.3f}", f"{t_ours:.3f}",  # type: ignore[arg-type]
                                f"{t_sk / t_ours:.1f}×", f"{diff:.1e}"])
            print(f"  metrics {n:,} {name}: scikit-learn loop {t_sk:.3f} s, fold_stats {t_ours:.3f} s", flush=True)

    # 3. the audit
    audit = CrossValidationAudit()
    options = CrossValidationAudit.defaults()
    audit_rows = []
    for n in sizes:
        ctx = binary_context(n)
        audit.run(ctx, options)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = audit.run(ctx, options)
            times.append(time.perf_counter() - start)
        sd = result.metrics[next(key for key in result.metrics if key.endswith("_sd"))].value
        audit_rows.append([f"{n:,}", f"{statistics.median(times):.3f}", f"{min(times):.3f}", f"{max(times):.3f}",
                           result.status, f"{sd:.4f}"])
        print(f"  audit {n:,}: {statistics.median(times):.3f} s", flush=True)

    table(f"Part 1: folds, k={k} ({cpus} CPUs, median s of {args.repeats})",
          ["rows", "folds", "scikit-learn s", "make_split s", "speed-up", "equal"], split_rows)
    table(f"Part 2: metrics of every fold, k={k} ({cpus} CPUs, median s of {args.repeats})",
          ["rows", "task", "metrics", "scikit-learn loop s", "fold_stats s", "speed-up", "max abs diff"], metric_rows)
    headline = next(key for key in result.metrics if key.endswith("_sd"))
    table(f"Part 3: CrossValidationAudit.run, binary, defaults (k={options['folds']}, "
          f"{options['repeats']} repeat) ({cpus} CPUs, s over {args.repeats} runs)",
          ["rows", "median s", "min s", "max s", "status", headline], audit_rows)


if __name__ == "__main__":
    main()
