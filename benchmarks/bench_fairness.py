"""Time the "fairness" audit's ``run`` on synthetic binary predictions (not a test).

Two sensitive columns, ``sex`` (2 groups) and ``group`` (5 groups, the smallest 3% of the
rows), audited alone and intersected (10 groups); the predictions select some groups more
than others. Default options: 1,000 resamples of the exact stratified bootstrap.

Usage (from the repository root)::

    python benchmarks/bench_fairness.py                        # 1M rows, median of 3
    python benchmarks/bench_fairness.py --sizes 100000 1000000 --repeats 5
    python benchmarks/bench_fairness.py --fairlearn            # also time fairlearn's point estimates
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from auditor.contract.context import AuditContext, Dataset, Groups, Predictions, Task
from auditor_plugins.fairness.audit import FairnessAudit


def synthetic_context(n: int, seed: int = 0) -> AuditContext:
    """A binary context with two sensitive columns; no model (the audit never calls it)."""
    rng = np.random.default_rng(seed)
    sex = (rng.random(n) < 0.48).astype(np.int64)
    group = rng.choice(5, size=n, p=[0.45, 0.25, 0.17, 0.10, 0.03]).astype(np.int64)
    y = (rng.random(n) < 0.3 + 0.05 * group).astype(np.int64)
    p1 = np.clip(0.15 + 0.5 * y + 0.04 * group + 0.03 * sex + rng.normal(0, 0.2, n), 0.001, 0.999)
    proba = np.stack([1.0 - p1, p1], axis=1)
    data = Dataset(path="synthetic.csv", sha256="0" * 64, n_rows=n, columns=["target", "sex", "group"],
                   feature_names=[], X=np.zeros((n, 0), np.float32), target_name="target", y=y)
    task = Task(kind="binary", class_names=("negative", "positive"), output="probabilities", n_outputs=2)
    predictions = Predictions(raw=proba.astype(np.float32), proba=proba, label=(p1 >= 0.5).astype(np.int64))
    sensitive = {
        "sex": Groups("sex", sex, ("female", "male")),
        "group": Groups("group", group, ("A", "B", "C", "D", "E")),
    }
    return AuditContext(model=None, data=data, task=task, predictions=predictions, seed=0, sensitive=sensitive)


def time_fairlearn(ctx: AuditContext) -> float:
    """Seconds fairlearn takes for the point estimates alone (no intervals) on the same data."""
    import fairlearn.metrics as fm

    y, label = ctx.data.y, ctx.predictions.label
    features = {name: g.codes for name, g in ctx.sensitive.items()}
    start = time.perf_counter()
    for sensitive in (*features.values(), np.stack(list(features.values()), axis=1)):
        _ = fm.MetricFrame(  # the by-group table is what is timed
            metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                     "fpr": fm.false_positive_rate, "fnr": fm.false_negative_rate},
            y_true=y, y_pred=label, sensitive_features=sensitive,
        ).by_group
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fairlearn", action="store_true", help="also time fairlearn's MetricFrame once per size")
    args = parser.parse_args()

    audit = FairnessAudit()
    options = FairnessAudit.defaults()
    print(f"fairness audit run(), binary, sex (2) x group (5) + intersection (10), "
          f"{options['n_resamples']} resamples, {os.cpu_count()} CPUs")
    print(f"{'rows':>10}  {'median s':>9}  {'min s':>7}  {'max s':>7}  {'verdict':>7}  "
          f"{'dp ratio (worst)':>16}{'  fairlearn s' if args.fairlearn else ''}")
    for n in args.sizes:
        ctx = synthetic_context(n)
        audit.run(ctx, options)  # warm-up: first-touch allocations
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = audit.run(ctx, options)
            times.append(time.perf_counter() - start)
        worst = result.metrics["demographic_parity_ratio"].value
        line = (f"{n:>10,}  {statistics.median(times):>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}  "
                f"{result.status:>7}  {worst:>16.3f}")
        if args.fairlearn:
            line += f"  {time_fairlearn(ctx):>11.2f}"
        print(line)


if __name__ == "__main__":
    main()
