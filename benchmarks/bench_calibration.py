"""The calibration audit: its debiased ECE's bias and interval coverage by simulation, and its
time at 10^6 rows (not a test).

1. **Coverage study.** Probabilities ``p ~ Beta(2, 3)`` and events drawn with a known
   probability ``q(p)``: ``p ** d`` (d = 1 is calibrated; larger d, events rarer than said),
   and an over-confident model, ``q = sigmoid(logit(p) / 2)`` (its probabilities twice as far
   from 1/2, in logits, as they should be). The truth is the binned ECE of the population: over
   the 15 equal-mass bins at Beta(2, 3)'s quantiles, ``Σ_b |∫_b (q − p) f|``, by numerical
   integration (SciPy's ``quad``). For every scenario, ``--runs`` seeded samples of ``--rows``
   rows: the plug-in and debiased ECE (:mod:`auditor.stats.calibration`) and the audit's
   intervals (:mod:`auditor_plugins.calibration.intervals`, ``--resamples`` resamples, 95%)
   with the calibration test's widening (``reaching_zero``). Printed: the truth, both
   estimates' bias (mean − truth) and SD, the calibration test's rejection rate at 5%, and the
   share of runs whose interval covers the truth: the debiased ECE's interval, and for
   comparison the plug-in's percentile interval.
2. **Speed.** ``CalibrationAudit().run`` on a synthetic binary context (float32 sigmoid
   scores, 30% positives) of ``--sizes`` rows, no groups, median of ``--repeats`` after a
   warm-up.

Usage (from the repository root)::

    python benchmarks/bench_calibration.py                       # 500 runs of 1,000 rows, then 10^6 rows
    python benchmarks/bench_calibration.py --runs 100 --rows 300 --skip-speed
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
from bench_stats import synthetic_context  # the same scores as the metrics audit's benchmark

from auditor.stats import calibration as cal
from auditor_plugins.calibration.audit import CalibrationAudit
from auditor_plugins.calibration.intervals import intervals, reaching_zero


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def scenarios() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    curves: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        f"p^{d:g}": (lambda p, d=d: p ** d) for d in (1.0, 1.05, 1.1, 1.15, 1.3, 1.6)
    }
    curves["over-confident"] = lambda p: _sigmoid(np.log(p / (1 - p)) / 2)
    return curves


def truth(curve: Callable[[np.ndarray], np.ndarray]) -> float:
    from scipy import integrate, stats

    beta = stats.beta(2, 3)
    edges = beta.ppf(np.linspace(0, 1, cal.N_BINS + 1))
    return float(sum(abs(integrate.quad(lambda t: (curve(np.float64(t)) - t) * beta.pdf(t), a, b)[0])
                     for a, b in zip(edges[:-1], edges[1:])))


def coverage(runs: int, rows: int, resamples: int) -> None:
    print(f"Coverage study: {runs} runs of {rows:,} rows, {resamples} resamples, 95% intervals, "
          f"{cal.N_BINS} equal-mass bins")
    print(f"{'events drawn with':>18}  {'truth':>7}  {'plug-in bias':>12}  {'debiased bias':>13}  {'debiased SD':>11}  "
          f"{'test rejects':>12}  {'covered (debiased)':>18}  {'covered (plug-in)':>17}")
    for name, curve in scenarios().items():
        true = truth(curve)
        plug, deb, rejected, covered, covered_plug = [], [], 0, 0, 0
        for run in range(runs):
            rng = np.random.default_rng(10_000 + run)
            p = rng.beta(2, 3, rows)
            y = (rng.random(rows) < curve(p)).astype(np.float64)
            ranked, bounds = cal.rank(p, y), cal.mass_bounds(rows)
            mass = ranked.runs(bounds)
            plug.append(cal.ece(mass))
            deb.append(cal.debiased_ece(mass))
            found = intervals(ranked, bounds, np.random.default_rng(run), resamples, 0.95)
            test = cal.ranked_test(ranked, bounds)
            rejected += test.p_value <= 0.05
            low, high = reaching_zero(found.ece_debiased, test, 0.95)
            covered += low <= true <= high
            covered_plug += found.ece_equal_mass[0] <= true <= found.ece_equal_mass[1]
        print(f"{name:>18}  {true:>7.4f}  {np.mean(plug) - true:>+12.4f}  {np.mean(deb) - true:>+13.4f}  "
              f"{np.std(deb):>11.4f}  {rejected / runs:>12.1%}  {covered / runs:>18.1%}  {covered_plug / runs:>17.1%}")


def speed(sizes: list[int], repeats: int) -> None:
    audit, options = CalibrationAudit(), CalibrationAudit.defaults()
    print(f"\nCalibrationAudit().run, binary, no groups, {options['n_resamples']} resamples, {os.cpu_count()} CPUs")
    print(f"{'rows':>10}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    for n in sizes:
        ctx = synthetic_context(n)
        audit.run(ctx, options)  # warm-up: imports, first-touch allocations
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            audit.run(ctx, options)
            times.append(time.perf_counter() - start)
        print(f"{n:>10,}  {statistics.median(times):>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-coverage", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_coverage:
        coverage(args.runs, args.rows, args.resamples)
    if not args.skip_speed:
        speed(args.sizes, args.repeats)


if __name__ == "__main__":
    main()
