"""Time the "metrics" audit's ``run`` on synthetic binary predictions (not a test).

The scores look like a real model's: a float32 sigmoid of logits that separate a 30%
positive class (ROC-AUC about 0.86), so float32 rounding makes ties, as in production.
The row bootstrap of ROC-AUC, average precision, log loss and Brier score runs while its cost
(rows x ranked columns x resamples) is at most ``bootstrap_max_work`` (30M: 30,000 rows at
1,000 resamples), the analytic intervals beyond; the confusion-matrix metrics use the
multinomial bootstrap at every size. ``--sizes 30000 31000 100000 1000000`` shows the switch.

Usage (from the repository root)::

    python benchmarks/bench_stats.py                          # 100k and 1M rows, median of 3
    python benchmarks/bench_stats.py --sizes 50000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from auditor.contract.context import AuditContext, Dataset, Predictions, Task
from auditor_plugins.metrics.audit import MetricsAudit


def synthetic_context(n: int, seed: int = 0) -> AuditContext:
    """A binary context with realistic float32 scores; no model (the audit never calls it)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    logits = (rng.normal(size=n) * 1.3 + 2.2 * y - 1.5).astype(np.float32)
    p1 = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    raw = np.stack([1.0 - p1, p1], axis=1).astype(np.float32)
    proba = raw.astype(np.float64)
    data = Dataset(path="synthetic.csv", sha256="0" * 64, n_rows=n, columns=["target"], feature_names=[],
                   X=np.zeros((n, 0), np.float32), target_name="target", y=y)
    task = Task(kind="binary", class_names=("negative", "positive"), output="probabilities", n_outputs=2)
    predictions = Predictions(raw=raw, proba=proba, label=proba.argmax(axis=1))
    return AuditContext(model=None, data=data, task=task, predictions=predictions, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    audit = MetricsAudit()
    options = MetricsAudit.defaults()
    print(f"metrics audit run(), binary, {options['n_resamples']} resamples, "
          f"bootstrap_max_rows={options['bootstrap_max_rows']:,}, bootstrap_max_work={options['bootstrap_max_work']:,}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'rows':>10}  {'median s':>9}  {'min s':>7}  {'max s':>7}  ROC-AUC interval")
    for n in args.sizes:
        ctx = synthetic_context(n)
        audit.run(ctx, options)  # warm-up: imports, first-touch allocations
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = audit.run(ctx, options)
            times.append(time.perf_counter() - start)
        method = result.metrics["roc_auc"].ci_method
        print(f"{n:>10,}  {statistics.median(times):>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}  {method}")


if __name__ == "__main__":
    main()
