"""Performance metrics from tallies: the mergeable state a pass keeps past the memory budget.

The same keys and definitions as :mod:`auditor.stats.metrics`, from
:class:`auditor.contract.context.Tallies` instead of every row's predictions:

- **exact** (the same numbers as from the rows): accuracy, balanced accuracy, precision,
  recall, F1, MCC and the majority-class baseline, with the same exact multinomial
  bootstrap of the confusion matrix (:func:`auditor.stats.metrics.confusion_metrics`);
  log loss and Brier score (sums; normal CLT intervals from the sums of squares); regression
  MAE, MSE, RMSE, R², max error and MAPE with the analytic intervals the row path uses past
  its bootstrap limit (the target's moments are taken about a shift, so R²'s influence
  function is exact algebra on the sums).
- **binned**: ROC-AUC and average precision (:mod:`auditor.stats.binned`), each with the
  bound within which the exact value lies, reported beside them (``*_binning_bound``).
- **not computed**: the median absolute error (a median needs every row's error).

Values agree with the rows' up to floating-point summation order (~1e-12 relative).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from auditor.contract.context import Tallies
from auditor.stats import binned
from auditor.stats import bootstrap as bs
from auditor.stats.metrics import MetricValue, confusion_metrics, ordered

CLT = "normal (CLT) interval"


def _mean_interval(total: float, squares: float, n: int, confidence: float) -> bs.Interval | None:
    """The CLT interval of a mean from its sum and sum of squares."""
    if n < 2:
        return None
    mean = total / n
    variance = max(squares - total * mean, 0.0) / (n - 1)
    return bs.normal_interval(mean, variance / n, confidence)


def _widened(ci: bs.Interval | None, below: float, above: float) -> bs.Interval | None:
    if ci is None:
        return None
    return max(0.0, ci[0] - below), min(1.0, ci[1] + above)


def _ranking(values: Sequence[binned.BinnedValue | None], names: list[str], positive: bool,
             kind: str, confidence: float, n_pos: Sequence[int]) -> tuple[MetricValue, float | None]:
    """A ranking metric (``auc`` or ``ap``) averaged over the ranked columns, and its binning bound."""
    missing = [names[c] for c, v in enumerate(values) if v is None]
    if missing:
        if positive:
            note = ("only one class is present in the target" if kind == "auc"
                    else f"no row of the positive class '{names[0]}' in the target")
        else:
            note = (f"class {', '.join(repr(a) for a in missing)} has no rows in the target, so its one-vs-rest "
                    "curve is undefined")
        return MetricValue(None, note=note), None
    present = [v for v in values if v is not None]
    value = float(np.mean([v.value for v in present]))
    below = float(np.mean([v.value - v.lower for v in present]))
    above = float(np.mean([v.upper - v.value for v in present]))
    bound = max(below, above)
    if kind == "auc":
        # one column: DeLong's variance of the binned scores; several: the sd of a mean is at most
        # the mean of the sds (Cauchy-Schwarz), whatever the classes' covariances
        sds = [math.sqrt(v.variance) if v.variance is not None and math.isfinite(v.variance) else math.nan
               for v in present]
        sd = float(np.mean(sds))
        ci = _widened(bs.normal_interval(value, sd * sd, confidence, (0.0, 1.0)), below, above)
        method = ("DeLong normal interval of the binned scores" if len(present) == 1 else
                  "normal interval, its sd the mean of each class's DeLong sd of the binned scores (an upper "
                  "bound whatever the classes' covariances)")
    else:
        if len(present) == 1:
            ci = bs.logit_interval(value, n_pos[0], confidence)
            method = "Boyd et al. (2013) logit interval of the binned value"
        else:
            sds = [math.sqrt(v.value * (1.0 - v.value) / max(p, 1)) for v, p in zip(present, n_pos)]
            sd = float(np.mean(sds))
            ci = bs.normal_interval(value, sd * sd, confidence, (0.0, 1.0))
            method = "normal interval, its sd the mean of each class's binomial sd (an upper bound)"
        ci = _widened(ci, below, above)
    method += f", widened on each side by what binning the scores can change (at most {bound:.2g})"
    return MetricValue(value, ci, method), bound


def classification_metrics(
    tallies: Tallies, class_names: Sequence[str], *, seed: int = 0, n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[dict[str, MetricValue], dict[str, float]]:
    """The classification metrics of every row, and the binning bound of each binned one
    (``roc_auc``, ``average_precision``), from ``tallies``."""
    assert tallies.confusion is not None
    cm = tallies.confusion.sum(axis=0)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("cannot compute metrics on zero rows")
    k = cm.shape[0]
    binary = k == 2
    names = list(class_names)
    out = confusion_metrics(cm, seed=seed, n_resamples=n_resamples, confidence=confidence)
    columns = [1] if binary else list(range(k))
    shown = [names[c] for c in columns]
    n_pos = [tallies.scores[i].n_pos for i in range(len(columns))]
    bounds: dict[str, float] = {}
    for key, kind, compute in (("roc_auc", "auc", binned.auc), ("average_precision", "ap", binned.average_precision)):
        value, bound = _ranking([compute(s) for s in tallies.scores], shown, binary, kind, confidence, n_pos)
        out[key] = value
        if bound is not None:
            bounds[key] = bound
    for key in ("log_loss", "brier"):
        if key in tallies.sums:
            total, squares = tallies.sums[key], tallies.sums[f"{key}_sq"]
            out[key] = MetricValue(total / n, _mean_interval(total, squares, n, confidence), CLT)
    out["baseline_accuracy"] = MetricValue(float(cm.sum(axis=1).max() / n), note="the majority class's share of the rows")
    return ordered(out, binary), bounds


def regression_metrics(tallies: Tallies, *, confidence: float = 0.95) -> dict[str, MetricValue]:
    """The regression metrics of every row from ``tallies`` (the median absolute error is not kept)."""
    s = tallies.sums
    n = int(round(float(tallies.by_cell["n"].sum())))
    if n == 0 or "sq_error" not in s:
        raise ValueError("cannot compute metrics on zero rows")
    mae, mse = s["abs_error"] / n, s["sq_error"] / n
    m = s["target_d1"] / n  # the target's mean, about the shift
    sst = s["target_d2"] - s["target_d1"] * m
    out: dict[str, MetricValue] = {
        "mae": MetricValue(mae, _mean_interval(s["abs_error"], s["sq_error"], n, confidence), CLT),
        "mse": MetricValue(mse, _mean_interval(s["sq_error"], s["sq_error_sq"], n, confidence), CLT),
    }
    variance = max(s["sq_error_sq"] - s["sq_error"] * mse, 0.0) / (n - 1) if n > 1 else math.nan
    rmse_var = variance / n / (4.0 * mse) if mse > 0 else math.nan
    out["rmse"] = MetricValue(math.sqrt(mse), bs.normal_interval(math.sqrt(mse), rmse_var, confidence, (0.0, math.inf)),
                              "delta-method normal interval")
    if sst > 0:
        r2 = 1.0 - s["sq_error"] / sst
        var_y = sst / n
        ratio = 1.0 - r2
        # sums of e^2 u^2 and u^4, u = y - mean, from the moments about the shift (u = d - m)
        e2u2 = s["sq_error_d2"] - 2 * m * s["sq_error_d1"] + m * m * s["sq_error"]
        u4 = s["target_d4"] - 4 * m * s["target_d3"] + 6 * m * m * s["target_d2"] - 4 * m ** 3 * s["target_d1"] + n * m ** 4
        infl = (s["sq_error_sq"] - 2 * ratio * e2u2 + ratio * ratio * u4) / (var_y * var_y)
        ci = bs.normal_interval(r2, max(infl, 0.0) / (n - 1) / n, confidence, (-math.inf, 1.0)) if n > 1 else None
        out["r2"] = MetricValue(r2, ci, "delta-method (influence function) normal interval")
    else:
        out["r2"] = MetricValue(None, note="the target is constant, so R² is undefined")
    out["median_absolute_error"] = MetricValue(
        None, note="not computed: a median needs every row's error, and this run kept tallies instead (every row's "
        "outputs exceed the memory budget); raise --memory-budget to compute it")
    out["max_error"] = MetricValue(s["max_error"], note="no interval: the bootstrap of a sample maximum is inconsistent, "
                                   "and a maximum has no distribution-free interval")
    if s.get("target_zeros", 0.0) > 0:
        out["mape"] = MetricValue(None, note="the target contains zeros, so percentage errors are undefined")
    else:
        out["mape"] = MetricValue(s["ape"] / n, _mean_interval(s["ape"], s["ape_sq"], n, confidence), CLT)
    order = ("mae", "mse", "rmse", "r2", "median_absolute_error", "max_error", "mape")
    return {key: out[key] for key in order}
