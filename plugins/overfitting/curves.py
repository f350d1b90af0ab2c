"""Overfitting and underfitting from a training history, and train-vs-test gaps (numpy only).

**The curves.** :func:`analyse_history` reads one monitored validation series (the
validation loss by default; any logged series may be monitored, lower- or higher-is-better)
and, where the log has them, the training and validation losses. Epochs without a value
(NaN) are left out of each series; nothing is interpolated into the statistics.

- *Best epoch*: the arg-best of the **raw** monitored series (its first occurrence).
- *Smoothing*: a centred moving average over ``smoothing`` epochs (an even window is
  widened by one, so that it is centred). At the two ends the window is truncated: the
  first and last epochs average only the epochs that exist, up to half a window on each
  side. A truncated window lags a trend, so at the end it understates a final rise; it
  never invents one.
- *Noise*: the per-epoch noise SD of a raw series, from its second differences,
  ``mean|diff(y, 2)| * sqrt(pi / 2) / sqrt(6)`` (:func:`noise_sd`): second differences cancel
  any locally linear trend; curvature (the steep first epochs) only inflates the estimate,
  which makes the rule more conservative.
- *Overfitting*: let ``k`` be the epoch where the smoothed monitored curve is best (the
  *onset*: where its sustained worsening starts). The run overfits when

  1. at least ``patience`` epochs follow ``k``;
  2. every smoothed value over the last ``patience`` epochs is worse than the smoothed best
     by more than the *rise threshold*
     ``max(min_rise * |smoothed best|, noise_z * noise * sqrt(1/w_k + 1/w_t))``, where
     ``w_k`` and ``w_t`` are the numbers of epochs averaged at the two points: the second
     term is ``noise_z`` standard errors of the difference of two smoothed values, so
     independent noise alone does not clear it (``min_rise`` relative to the best value is
     scale-free for any positive loss and for accuracy-like scores);
  3. the raw values from ``k`` to the end rise: their OLS slope has ``t`` above the
     Student-t 97.5% quantile;
  4. the smoothed training loss is lower at the end than at the onset.

  When 1-3 hold but 4 does not (the training loss rose too, or the log has none) the
  verdict is ``worsening``, not overfitting: both curves rising points at the optimisation
  (learning rate, instability), not at memorisation.
- *Underfitting*: both losses still falling at the end: over the last
  ``max(patience, ceil(n / 3))`` epochs each has an ordinary-least-squares slope that is
  significantly negative (t below the Student-t 97.5% quantile) and larger than
  ``underfit_slope`` of its mean level per epoch; or both are flat there (not falling by that
  rule) and the final training loss is still within ``underfit_progress`` (relative) of
  the first epoch's.
- Fewer than :data:`MIN_EPOCHS` epochs with a monitored value give no verdict
  (``undetermined``); the best epoch, final value and gaps are still reported.

**The gap between training and test metrics.** :func:`metric_gaps` compares the metric
values of :func:`auditor.stats.metrics.classification_metrics` or ``regression_metrics`` on the
training and the test data. Gap = how much better the model scores on the data it was
trained on: ``train - test`` for higher-is-better metrics, ``test - train`` for
lower-is-better ones, so a positive gap always points towards overfitting. The two samples
are independent, so:

- confusion-matrix metrics (accuracy, balanced accuracy, precision, recall, F1, MCC): the
  percentile interval of the difference of independent exact multinomial bootstrap
  replicates of the two confusion matrices (an exact bootstrap of the difference);
- the others: a normal interval, ``gap ± z * sqrt(se_train² + se_test²)``, each standard
  error read off its own interval as ``(high - low) / (2 z)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, Mapping

import numpy as np

from auditor.stats import bootstrap as bs
from auditor.stats.metrics import MetricValue, confusion_matrix

Mode = Literal["min", "max"]
Verdict = Literal["overfitting", "worsening", "underfitting", "healthy", "undetermined"]

#: Fewer epochs than this (with a monitored value) give no verdict.
MIN_EPOCHS = 4
#: Generator streams of the train-vs-test gap bootstrap (see :func:`auditor.stats.bootstrap.make_rng`).
_TRAIN_STREAM, _TEST_STREAM = 21, 22

#: Lower-is-better metrics of :mod:`auditor.stats.metrics` (every other one is higher-is-better).
LOWER_IS_BETTER = frozenset(
    {"log_loss", "brier", "mae", "mse", "rmse", "median_absolute_error", "max_error", "mape"}
)
#: Metrics computed from the confusion matrix alone (their gap interval is an exact bootstrap).
CONFUSION_METRICS = frozenset(
    {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc"}
    | {f"{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "weighted")}
)


def auto_mode(name: str) -> Mode:
    """``min`` for a series whose name contains "loss" or "error", else ``max``."""
    lowered = name.lower()
    return "min" if ("loss" in lowered or "error" in lowered) else "max"


def odd_window(window: int) -> int:
    """The smoothing window actually used: at least 1, and odd (an even one is widened by one)."""
    window = max(1, int(window))
    return window if window % 2 else window + 1


def moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving average and, for each point, how many values it averaged.

    ``values`` must be finite. The window (made odd by :func:`odd_window`) is truncated at
    the ends: point ``i`` averages ``values[max(0, i - h) : i + h + 1]``, ``h = window // 2``.
    """
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    h = odd_window(window) // 2
    cum = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(n)
    lo = np.maximum(idx - h, 0)
    hi = np.minimum(idx + h + 1, n)
    counts = hi - lo
    return (cum[hi] - cum[lo]) / np.maximum(counts, 1), counts


def noise_sd(values: np.ndarray) -> float:
    """Per-point noise SD from second differences (NaN with fewer than 5 values):
    ``mean|diff(y, 2)| * sqrt(pi / 2) / sqrt(6)``, exact in expectation for independent normal
    noise around any locally linear curve. Curvature (the steep first epochs) only inflates
    it, which makes the rule that uses it more conservative."""
    y = np.asarray(values, dtype=np.float64)
    if y.size < 5:
        return math.nan
    return float(np.mean(np.abs(np.diff(y, 2)))) * math.sqrt(math.pi / 2.0) / math.sqrt(6.0)


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher
    expansion around the normal quantile (Abramowitz & Stegun 26.7.5; error < 0.01 from 3)."""
    if df <= 0:
        return math.nan
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Trend:
    """An ordinary-least-squares line through ``(x, y)``: ``slope`` per unit of x, its
    standard error, ``t = slope / se`` and the number of points."""

    slope: float
    se: float
    t: float
    n: int

    @property
    def df(self) -> int:
        return self.n - 2


def trend(x: np.ndarray, y: np.ndarray) -> Trend:
    """The OLS slope of ``y`` on ``x`` (NaN slope with fewer than 2 points; NaN se below 3).
    A perfect fit has se 0 and an infinite t of the slope's sign."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 2:
        return Trend(math.nan, math.nan, math.nan, n)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if sxx == 0:
        return Trend(math.nan, math.nan, math.nan, n)
    slope = float(xc @ (y - y.mean())) / sxx
    if n < 3:
        return Trend(slope, math.nan, math.nan, n)
    resid = y - y.mean() - slope * xc
    scale = max(float(np.max(np.abs(y))), 1e-300)
    sse = float(resid @ resid)
    if sse <= (1e-12 * scale) ** 2 * n:  # an exact line up to rounding
        se = 0.0
    else:
        se = math.sqrt(sse / (n - 2) / sxx)
    t = slope / se if se > 0 else (math.copysign(math.inf, slope) if slope != 0 else 0.0)
    return Trend(slope, se, t, n)


def _finite(epochs: np.ndarray, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if values is None:
        return np.empty(0, np.int64), np.empty(0)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    return np.asarray(epochs)[keep], values[keep]


@dataclass(frozen=True)
class EndSlope:
    """How a loss ends: its OLS trend over the last ``window`` epochs, the slope relative to
    the mean level there, and whether it is still falling (significantly and materially)."""

    trend: Trend
    relative: float
    falling: bool
    window: int


def end_slope(epochs: np.ndarray, values: np.ndarray, window: int, threshold: float) -> EndSlope:
    """Trend over the last ``window`` points; *falling* when ``t`` is below minus the
    Student-t 97.5% quantile and the slope is below ``-threshold`` times the mean level."""
    e, y = epochs[-window:], values[-window:]
    tr = trend(e, y)
    level = float(np.mean(np.abs(y))) if y.size else math.nan
    relative = tr.slope / level if level > 0 else math.nan
    falling = bool(
        tr.df >= 1
        and math.isfinite(relative)
        and relative < -threshold
        and tr.t < -t_quantile(0.975, tr.df)
    )
    return EndSlope(tr, relative, falling, int(e.size))


def early_stopping(epochs: np.ndarray, oriented: np.ndarray, patience: int) -> tuple[int, int]:
    """Replay patience-based early stopping (Keras' and Lightning's rule with ``min_delta`` 0)
    on a lower-is-better series: stop once ``patience`` epochs have passed without a new
    best. Returns the epoch it stops at and the best epoch it keeps (with the best weights
    restored); without a stop, the last epoch and the overall best."""
    best_i = 0
    for i in range(1, oriented.size):
        if oriented[i] < oriented[best_i]:
            best_i = i
        elif epochs[i] - epochs[best_i] >= patience:
            return int(epochs[i]), int(epochs[best_i])
    return int(epochs[-1]), int(epochs[best_i])


@dataclass(frozen=True)
class HistoryAnalysis:
    """Everything :func:`analyse_history` finds. Values are in the monitored series' own
    units; ``rise``/``degradation`` are relative to the best value and positive when worse."""

    monitor: str
    mode: Mode
    epochs: np.ndarray  # epochs with a monitored value
    values: np.ndarray  # the raw monitored values at those epochs
    smoothed: np.ndarray  # the smoothed monitored values (same units, same epochs)
    window: int
    last_epoch: int
    best_epoch: int
    best_value: float
    final_epoch: int
    final_value: float
    epochs_past_best: int
    degradation: float | None
    verdict: Verdict
    onset_epoch: int | None = None
    smoothed_best_epoch: int | None = None
    rise: float | None = None  # smoothed end vs smoothed best, relative to |smoothed best|
    rise_threshold: float | None = None  # the threshold actually applied, relative
    noise: float | None = None  # per-epoch noise SD of the monitored series
    sustained: bool = False  # conditions 1-3 of the overfitting rule (a sustained, significant rise)
    train_change: float | None = None  # smoothed training loss, end minus onset (relative)
    train_falling: bool | None = None
    gap_final: float | None = None
    gap_final_epoch: int | None = None
    gap_at_best: float | None = None
    gap_trend: float | None = None
    gap_trend_epochs: int = 0
    train_end: EndSlope | None = None
    val_end: EndSlope | None = None
    train_progress: float | None = None  # (first - final) / |first| of the training loss
    underfit_reason: str | None = None  # "still-falling" or "flat-and-high"
    stop_epoch: int | None = None  # where patience-based early stopping would have stopped
    stop_kept_epoch: int | None = None  # and the epoch whose weights it would have kept
    reasons: list[str] = field(default_factory=list)


def _value_at(epochs: np.ndarray, values: np.ndarray, epoch: int) -> float | None:
    hit = np.flatnonzero(epochs == epoch)
    return float(values[hit[0]]) if hit.size else None


def analyse_history(
    epochs: np.ndarray,
    monitored: np.ndarray,
    *,
    monitor: str = "val_loss",
    mode: Mode = "min",
    train_loss: np.ndarray | None = None,
    val_loss: np.ndarray | None = None,
    patience: int = 5,
    smoothing: int = 5,
    min_rise: float = 0.02,
    noise_z: float = 3.0,
    underfit_slope: float = 0.01,
    underfit_progress: float = 0.05,
) -> HistoryAnalysis:
    """Apply the rules of this module's docstring to one history.

    ``epochs`` (ascending) index every series; ``monitored`` is the series judged (its best
    epoch, its rise); ``train_loss`` and ``val_loss`` (either may be None) give the gap, the
    "training keeps falling" condition and the underfitting rule. Raises ValueError when the
    monitored series has no finite value.
    """
    all_epochs = np.asarray(epochs)
    if all_epochs.ndim != 1 or np.asarray(monitored).shape != all_epochs.shape:
        raise ValueError("epochs and the monitored series must be 1-D arrays of one length")
    e, y = _finite(all_epochs, monitored)
    if y.size == 0:
        raise ValueError(f"the monitored series {monitor!r} has no finite value")
    sign = 1.0 if mode == "min" else -1.0
    oriented = sign * y
    best = int(np.argmin(oriented))
    best_value, final_value = float(y[best]), float(y[-1])
    worse = float(oriented[-1] - oriented[best])
    degradation = worse / abs(best_value) if best_value != 0 else (0.0 if worse == 0 else None)
    smoothed, counts = moving_average(oriented, smoothing)
    last_epoch = int(all_epochs[-1])
    fields: dict[str, Any] = dict(
        monitor=monitor, mode=mode, epochs=e, values=y, smoothed=sign * smoothed,
        window=odd_window(smoothing), last_epoch=last_epoch,
        best_epoch=int(e[best]), best_value=best_value, final_epoch=int(e[-1]), final_value=final_value,
        epochs_past_best=last_epoch - int(e[best]), degradation=degradation,
    )
    fields["stop_epoch"], fields["stop_kept_epoch"] = early_stopping(e, oriented, max(1, patience))

    te, ty = _finite(all_epochs, train_loss)
    ve, vy = _finite(all_epochs, val_loss)
    # The generalisation gap, on the epochs where both losses have a value.
    common, ti, vi = np.intersect1d(te, ve, return_indices=True)
    if common.size:
        gap = vy[vi] - ty[ti]
        fields.update(gap_final=float(gap[-1]), gap_final_epoch=int(common[-1]))
        fields["gap_at_best"] = _value_at(common, gap, int(e[best]))
        tail = max(3, math.ceil(common.size / 3))
        if common.size >= 3:
            gt = trend(common[-tail:], gap[-tail:])
            fields.update(gap_trend=gt.slope, gap_trend_epochs=int(min(tail, common.size)))

    if y.size < MIN_EPOCHS:
        return HistoryAnalysis(**fields, verdict="undetermined", reasons=[
            f"only {y.size} epoch{'s' if y.size != 1 else ''} with a value of {monitor}; "
            f"at least {MIN_EPOCHS} are needed for a verdict"
        ])

    # Overfitting: a sustained worsening of the smoothed monitored curve.
    k = int(np.argmin(smoothed))
    noise = noise_sd(oriented)
    scale = abs(float(smoothed[k]))
    fields.update(onset_epoch=None, smoothed_best_epoch=int(e[k]), noise=noise if math.isfinite(noise) else None)
    tail_idx = np.flatnonzero(e >= e[-1] - patience + 1) if patience > 0 else np.array([y.size - 1])
    tail_idx = tail_idx[tail_idx > k]
    sustained = False
    if e[-1] - e[k] >= patience and tail_idx.size and scale > 0:
        noise_term = 0.0
        if math.isfinite(noise):
            se = noise * np.sqrt(1.0 / counts[k] + 1.0 / counts[tail_idx])
            noise_term = float(noise_z * se.max())
        threshold = max(min_rise * scale, noise_term)
        above = smoothed[tail_idx] - smoothed[k]
        stretch = trend(e[k:], oriented[k:])
        rising = stretch.df >= 1 and stretch.t > t_quantile(0.975, stretch.df)
        sustained = bool(np.all(above > threshold)) and rising
        fields.update(
            rise=float(smoothed[-1] - smoothed[k]) / scale,
            rise_threshold=threshold / scale,
        )
    elif scale > 0:
        fields["rise"] = float(smoothed[-1] - smoothed[k]) / scale
    fields["sustained"] = sustained

    train_falling = None
    if ty.size >= 2:
        ts, _ = moving_average(ty, smoothing)
        at_onset = float(np.interp(e[k], te, ts))
        at_end = float(ts[-1])
        fields["train_change"] = (at_end - at_onset) / abs(at_onset) if at_onset != 0 else None
        train_falling = at_end < at_onset
    fields["train_falling"] = train_falling
    if sustained:
        fields["onset_epoch"] = int(e[k])
        return HistoryAnalysis(**fields, verdict="overfitting" if train_falling else "worsening")

    # Underfitting: both losses still falling at the end, or both flat and training barely moved.
    if ty.size >= MIN_EPOCHS and vy.size >= MIN_EPOCHS:
        window = max(patience, math.ceil(min(ty.size, vy.size) / 3), 3)
        t_end = end_slope(te, ty, min(window, ty.size), underfit_slope)
        v_end = end_slope(ve, vy, min(window, vy.size), underfit_slope)
        progress = (ty[0] - ty[-1]) / abs(ty[0]) if ty[0] != 0 else math.nan
        fields.update(train_end=t_end, val_end=v_end, train_progress=float(progress))
        if t_end.falling and v_end.falling:
            return HistoryAnalysis(**fields, verdict="underfitting", underfit_reason="still-falling")
        flat = not t_end.falling and not v_end.falling
        if flat and math.isfinite(progress) and abs(progress) <= underfit_progress:
            return HistoryAnalysis(**fields, verdict="underfitting", underfit_reason="flat-and-high")
    return HistoryAnalysis(**fields, verdict="healthy")


# ---- train vs test ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """One metric on the training and the test data and the gap between them (positive =
    better on the training data), with the gap's interval and how it was obtained."""

    train: float | None
    test: float | None
    value: float | None
    ci: tuple[float, float] | None
    ci_method: str | None


def gap_sign(metric: str) -> float:
    """+1 when the gap is ``train - test`` (higher is better), -1 when ``test - train``."""
    return -1.0 if metric in LOWER_IS_BETTER else 1.0


def _se(v: MetricValue, z: float) -> float | None:
    if v.ci is None or v.ci[0] is None or v.ci[1] is None:
        return None
    return (float(v.ci[1]) - float(v.ci[0])) / (2.0 * z)


def metric_gaps(
    train: Mapping[str, MetricValue],
    test: Mapping[str, MetricValue],
    *,
    confusion: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> dict[str, Gap]:
    """The gap of every metric present in both ``train`` and ``test``.

    ``confusion``: the ``(K, K)`` confusion matrices of the training and the test data, for
    the exact bootstrap of the confusion-matrix metrics' gaps (omit for regression).
    """
    z = bs.z_value(confidence)
    keys = [k for k in train if k in test and k != "baseline_accuracy"]
    replicates: dict[str, np.ndarray] = {}
    boot_method = ""
    if confusion is not None:
        cm_train, cm_test = confusion
        binary = cm_train.shape[0] == 2
        reps = [
            bs.confusion_kernel(bs.confusion_resamples(cm, n_resamples, bs.make_rng(seed, stream)), binary)
            for cm, stream in ((cm_train, _TRAIN_STREAM), (cm_test, _TEST_STREAM))
        ]
        replicates = {k: reps[0][k] - reps[1][k] for k in reps[0]}
        boot_method = (
            "percentile interval of independent exact multinomial bootstrap replicates of the "
            f"training and test confusion matrices, {n_resamples} resamples each, seed {seed}"
        )
    normal_method = "normal interval, standard errors of the two intervals combined (independent samples)"
    out: dict[str, Gap] = {}
    for key in keys:
        a, b = train[key].value, test[key].value
        sign = gap_sign(key)
        value = sign * (a - b) if a is not None and b is not None else None
        ci, method = None, None
        if value is not None and key in replicates and key in CONFUSION_METRICS:
            ci = bs.percentile_interval(sign * replicates[key], confidence)
            method = boot_method if ci is not None else None
        elif value is not None:
            se_a, se_b = _se(train[key], z), _se(test[key], z)
            if se_a is not None and se_b is not None:
                ci = bs.normal_interval(value, se_a**2 + se_b**2, confidence)
                method = normal_method if ci is not None else None
        out[key] = Gap(a, b, value, ci, method)
    return out


def confusion_of(y: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    """The confusion matrix (rows = true class), for :func:`metric_gaps`."""
    return confusion_matrix(np.asarray(y, np.int64), np.asarray(label, np.int64), k)
