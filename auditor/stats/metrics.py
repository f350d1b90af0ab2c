"""Performance metrics with confidence intervals, vectorised with numpy (no scikit-learn).

Point estimates equal scikit-learn's (ties in scores included; ``zero_division=0``); the
tests hold them to it. Inputs: ``y`` int class indices ``(n,)`` and ``proba`` ``(n, K)``
(binary: K = 2, column 1 positive) for classification; ``y`` and ``pred`` floats for
regression.

Intervals (``confidence``, default 95%; seeded, reproducible):

- accuracy, balanced accuracy, precision, recall, F1, MCC: exact multinomial bootstrap of
  the confusion matrix (any n).
- ROC-AUC, average precision, log loss, Brier score: percentile row bootstrap while
  ``rows x ranked score columns <= bootstrap_max_rows`` (one column for binary, K for
  multiclass one-vs-rest) and its cost, ``rows x ranked score columns x n_resamples``, is at
  most ``bootstrap_max_work`` (the method is picked by cost: more rows never take longer),
  computed from once-sorted scores. Beyond that, analytic:
  DeLong for binary ROC-AUC; Boyd et al.'s logit interval for binary average precision;
  for the multiclass macro averages, a normal interval whose variance comes from every
  row's first-order contribution to every class's metric (DeLong placement values for
  ROC-AUC, the delta method for average precision), so cross-class covariances count;
  the CLT for the mean losses.
- regression: percentile row bootstrap while ``rows <= bootstrap_max_rows`` and ``rows x
  n_resamples <= bootstrap_max_work``; beyond, CLT
  for MAE, MSE and MAPE, the delta method for RMSE and R² (R² through its influence
  function), an order-statistic interval for the median absolute error. Max error never
  has an interval: the bootstrap of a sample maximum is inconsistent and a maximum has
  no distribution-free interval.

Row-bootstrap resamples run in seeded blocks on all CPUs (:func:`auditor.stats.bootstrap.blockwise`);
the intervals do not depend on the number of CPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from auditor.stats import bootstrap as bs

#: The row bootstrap's largest cost by default: rows x ranked columns x resamples (~0.4 s on one core).
BOOTSTRAP_MAX_WORK = 30_000_000
#: One generator stream per family of metrics (see :func:`auditor.stats.bootstrap.make_rng`).
_CONFUSION_STREAM, _SCORE_STREAM, _REGRESSION_STREAM = 1, 2, 3


@dataclass(frozen=True)
class MetricValue:
    """A point estimate, its interval and how it was obtained; ``note`` says why a value
    or an interval is missing."""

    value: float | None
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    note: str = ""


def confusion_matrix(y: np.ndarray, label: np.ndarray, n_classes: int) -> np.ndarray:
    """The ``(K, K)`` confusion matrix, rows = true class, columns = predicted class."""
    flat = np.bincount(y * n_classes + label, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class ``support``, ``predicted``, ``precision``, ``recall``, ``f1`` (zero_division=0)."""
    s = bs.class_scores(cm)
    return {k: s[k] for k in ("support", "predicted", "precision", "recall", "f1")}


def _interval(value: float | None, replicates: np.ndarray, confidence: float, method: str) -> MetricValue:
    """A bootstrap MetricValue; the note says so when too many replicates were undefined."""
    ci = bs.percentile_interval(replicates, confidence)
    note = "" if ci is not None else "too many resamples left the metric undefined for an interval"
    return MetricValue(value, ci, method if ci is not None else None, note)


def _analytic(value: float | None, ci: tuple[float, float] | None, method: str) -> MetricValue:
    """An analytic MetricValue; the note says so when the interval is undefined."""
    note = "" if ci is not None else f"no interval: the {method} is undefined at this value or sample size"
    return MetricValue(value, ci, method if ci is not None else None, note)


def row_log_loss(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each row's log loss, ``-log p(true class)`` with p clipped to [eps, 1 - eps] (in place:
    one array of n, not four)."""
    eps = np.finfo(np.float64).eps
    rows = np.take_along_axis(proba, y[:, None], axis=1)[:, 0].astype(np.float64, copy=False)
    np.clip(rows, eps, 1.0 - eps, out=rows)
    np.log(rows, out=rows)
    return np.negative(rows, out=rows)


def row_brier(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each row's Brier score (binary): the squared gap between the positive class's probability and the label."""
    rows = proba[:, 1] - y
    return np.square(rows, out=rows)


def ranked_columns(y: np.ndarray, proba: np.ndarray) -> tuple[bs.RankedScores, ...]:
    """The score columns the ranking metrics read, each split by label and sorted once: the
    positive class's (binary, two columns) or every class's one-vs-rest."""
    k = proba.shape[1]
    return tuple(bs.RankedScores.build(y == c, proba[:, c]) for c in ((1,) if k == 2 else range(k)))


def _validate_classification(
    y: np.ndarray, proba: np.ndarray, label: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2 or proba.shape[0] != y.shape[0] or y.ndim != 1:
        raise ValueError(f"expected y (n,) and proba (n, K>=2); got {y.shape} and {proba.shape}")
    if y.size == 0:
        raise ValueError("cannot compute metrics on zero rows")
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba contains NaN or infinite values")
    label = np.argmax(proba, axis=1) if label is None else np.asarray(label)
    k = proba.shape[1]
    for name, arr in (("y", y), ("label", label)):
        integers = arr.shape == y.shape and np.issubdtype(arr.dtype, np.integer)
        if not integers or arr.min() < 0 or arr.max() >= k:
            raise ValueError(f"{name} must hold integer class indices in [0, {k}) for each row")
    return y.astype(np.int64, copy=False), proba, label.astype(np.int64, copy=False)


def classification_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    label: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_max_rows: int = 100_000,
    ranked: Sequence[bs.RankedScores] | None = None,
    bootstrap_max_work: int = BOOTSTRAP_MAX_WORK,
) -> dict[str, MetricValue]:
    """Every classification metric with its interval, keyed by stable snake_case names.

    ``ranked``: :func:`ranked_columns` of the same ``y`` and ``proba``, when already made
    (sorting the scores is most of the work at millions of rows).

    ``label`` defaults to ``argmax(proba)``. Keys: ``accuracy``, ``balanced_accuracy``,
    binary ``precision``/``recall``/``f1`` (class 1) or multiclass ``precision_macro``,
    ``recall_macro``, ``f1_macro``, ``precision_weighted``, ``recall_weighted``,
    ``f1_weighted``; then ``roc_auc``, ``average_precision``, ``mcc``, ``log_loss``,
    ``brier`` (binary only) and ``baseline_accuracy`` (the majority class's share).
    """
    y, proba, label = _validate_classification(y, proba, label)
    n, k = proba.shape
    binary = k == 2
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]

    cm = confusion_matrix(y, label, k)
    out = confusion_metrics(cm, seed=seed, n_resamples=n_resamples, confidence=confidence)

    log_loss_rows = row_log_loss(y, proba)
    if ranked is None:
        ranked = ranked_columns(y, proba)
    elif len(ranked) != (1 if binary else k) or any(r.cell.size != n for r in ranked):
        raise ValueError(f"ranked must hold the ranked scores of these {n} rows, one per ranked column")
    ranked = list(ranked)
    absent = [names[c] for c in range(k) if not np.any(y == c)]
    auc, ap = (float(v) for v in np.mean([bs.RankingKernel(r, 1).point() for r in ranked], axis=0))
    if binary:
        auc_note = "" if math.isfinite(auc) else "only one class is present in the target"
        ap_note = "" if math.isfinite(ap) else f"no row of the positive class '{names[1]}' in the target"
    else:
        auc_note = ap_note = (
            f"class {', '.join(repr(a) for a in absent)} has no rows in the target, so its "
            "one-vs-rest curve is undefined" if absent else ""
        )
    scores = {"log_loss": (float(log_loss_rows.mean()), log_loss_rows)}
    if binary:
        brier_rows = row_brier(y, proba)
        scores["brier"] = (float(brier_rows.mean()), brier_rows)

    notes = {"roc_auc": auc_note, "average_precision": ap_note}
    if n * len(ranked) <= bootstrap_max_rows and n * len(ranked) * n_resamples <= bootstrap_max_work:
        reps = _score_bootstrap(ranked, scores, n_resamples, seed)
        method = f"percentile bootstrap over rows, {n_resamples} resamples, seed {seed}"
        values = {"roc_auc": auc, "average_precision": ap, **{key: v for key, (v, _) in scores.items()}}
        out.update({key: _interval(value, reps[key], confidence, method) for key, value in values.items()})
    else:
        if not auc_note:
            out["roc_auc"] = _auc_analytic(ranked, auc, confidence)
        if not ap_note:
            out["average_precision"] = _ap_analytic(ranked, ap, confidence)
        for key, (value, rows) in scores.items():
            out[key] = _analytic(value, bs.mean_interval(rows, confidence), "normal (CLT) interval")
    for key, note in notes.items():
        if note:
            out[key] = MetricValue(None, note=note)
    baseline = float(cm.sum(axis=1).max() / n)
    out["baseline_accuracy"] = MetricValue(baseline, note="the majority class's share of the rows")
    return ordered(out, binary)


def confusion_metrics(cm: np.ndarray, *, seed: int, n_resamples: int, confidence: float) -> dict[str, MetricValue]:
    """The metrics of a ``(K, K)`` confusion matrix (accuracy, balanced accuracy, precision,
    recall, F1, MCC), each with the exact multinomial bootstrap interval: the same from the
    rows or from counts merged chunk by chunk."""
    binary = cm.shape[0] == 2
    point = bs.confusion_kernel(cm, binary)
    draws = bs.confusion_resamples(cm, n_resamples, bs.make_rng(seed, _CONFUSION_STREAM))
    replicates = bs.confusion_kernel(draws, binary)
    method = f"exact multinomial bootstrap of the confusion matrix, {n_resamples} resamples, seed {seed}"
    return {key: _interval(float(point[key]), replicates[key], confidence, method) for key in point}


def ordered(out: dict[str, MetricValue], binary: bool) -> dict[str, MetricValue]:
    """The classification metrics in report order."""
    averaged = ("precision", "recall", "f1") if binary else (
        *(f"{m}_macro" for m in ("precision", "recall", "f1")),
        *(f"{m}_weighted" for m in ("precision", "recall", "f1")),
    )
    order = ("accuracy", "balanced_accuracy", *averaged, "roc_auc", "average_precision", "mcc", "log_loss")
    order += ("brier", "baseline_accuracy")
    return {key: out[key] for key in order if key in out}


def _score_bootstrap(
    ranked: list[bs.RankedScores],
    scores: dict[str, tuple[float, np.ndarray]],
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of ROC-AUC, average precision (macro one-vs-rest when several
    columns are ranked) and the mean losses in ``scores``, all on the same resamples."""
    n = ranked[0].cell.size
    batch = bs.chunk_size(n)
    binary = len(ranked) == 1
    if binary:
        # The binary losses depend on the (label, score) cell only: cell counts suffice.
        tables = np.stack([ranked[0].cell_means(rows) for _, rows in scores.values()], axis=1)
    else:
        losses = np.stack([rows for _, rows in scores.values()])

    def work(size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        resamplers = [bs.CellResampler(r.cell, r.n_cells, batch) for r in ranked]
        kernels = [bs.RankingKernel(r, batch) for r in ranked]
        weights = np.empty((batch, ranked[0].n_cells)) if binary else np.empty((len(scores), batch, n))
        parts: dict[str, list[np.ndarray]] = {key: [] for key in ("roc_auc", "average_precision", *scores)}
        for idx in bs.index_chunks(n, size, rng):
            b = idx.shape[0]
            results = []
            for r, resample, kernel in zip(ranked, resamplers, kernels):
                counts = resample(idx)
                results.append(kernel(counts[:, r.neg.size :], counts[:, : r.neg.size]))
            auc, ap = np.mean(results, axis=0)
            parts["roc_auc"].append(auc)
            parts["average_precision"].append(ap)
            if binary:
                np.copyto(weights[:b], counts)
                means = weights[:b] @ tables / n
            else:
                np.take(losses, idx, axis=1, out=weights[:, :b], mode="clip")
                means = weights[:, :b].mean(axis=2).T
            for j, key in enumerate(scores):
                parts[key].append(means[:, j])
        return {key: np.concatenate(chunks) for key, chunks in parts.items()}

    return bs.blockwise(work, n_resamples, seed, _SCORE_STREAM)


def _macro_interval(
    deviations: list[np.ndarray], estimate: float, confidence: float, method: str
) -> MetricValue:
    """Normal interval for a mean of per-class metrics from the rows' first-order
    contributions to each, averaged per row so that cross-class covariances count."""
    contrib = np.mean(deviations, axis=0)
    n = contrib.size
    variance = float(np.dot(contrib, contrib)) * n / (n - 1)
    return _analytic(estimate, bs.normal_interval(estimate, variance, confidence, (0.0, 1.0)), method)


def _auc_analytic(ranked: list[bs.RankedScores], auc: float, confidence: float) -> MetricValue:
    if len(ranked) == 1:
        ci = bs.normal_interval(auc, bs.delong_variance(ranked[0]), confidence, (0.0, 1.0))
        return _analytic(auc, ci, "DeLong (fast midrank) normal interval")
    return _macro_interval(
        [bs.placement_deviations(r) for r in ranked], auc, confidence,
        "normal interval from DeLong placement values of every class (cross-class covariances included)",
    )


def _ap_analytic(ranked: list[bs.RankedScores], ap: float, confidence: float) -> MetricValue:
    if len(ranked) == 1:
        ci = bs.logit_interval(ap, ranked[0].n_pos, confidence)
        return _analytic(ap, ci, "Boyd et al. (2013) logit interval")
    return _macro_interval(
        [bs.ap_deviations(r) for r in ranked], ap, confidence,
        "delta-method normal interval from every class's influence function "
        "(cross-class covariances included)",
    )


def regression_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    *,
    seed: int = 0,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_max_rows: int = 100_000,
    bootstrap_max_work: int = BOOTSTRAP_MAX_WORK,
) -> dict[str, MetricValue]:
    """Regression metrics with intervals: ``mae``, ``mse``, ``rmse``, ``r2``,
    ``median_absolute_error``, ``max_error``, ``mape`` (None when the target has a zero;
    a fraction, as scikit-learn, not a percentage). ``r2`` is None on a constant target
    (scikit-learn would report 1.0 or 0.0 there by convention)."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if y.ndim != 1 or y.shape != pred.shape or y.size == 0:
        raise ValueError(f"expected y and pred of one shape (n,), n >= 1; got {y.shape} and {pred.shape}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(pred))):
        raise ValueError("y or pred contains NaN or infinite values")
    n = y.size
    err = y - pred
    abs_err = np.abs(err)
    sq_err = err * err
    y_centered = y - y.mean()
    sst = float(np.dot(y_centered, y_centered))
    has_zero = bool(np.any(y == 0))
    ape = abs_err / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    mse = float(sq_err.mean())
    values: dict[str, float | None] = {
        "mae": float(abs_err.mean()),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": 1.0 - float(sq_err.sum()) / sst if sst > 0 else None,
        "median_absolute_error": float(np.median(abs_err)),
        "max_error": float(abs_err.max()),
        "mape": None if has_zero else float(ape.mean()),
    }
    notes = {
        "r2": "the target is constant, so R² is undefined",
        "mape": "the target contains zeros, so percentage errors are undefined",
        "max_error": "no interval: the bootstrap of a sample maximum is inconsistent, and a "
        "maximum has no distribution-free interval",
    }
    if n <= bootstrap_max_rows and n * n_resamples <= bootstrap_max_work:
        method = f"percentile bootstrap over rows, {n_resamples} resamples, seed {seed}"
        reps = _regression_bootstrap(abs_err, sq_err, y_centered, ape, n_resamples, seed)
        defined = [key for key in reps if values[key] is not None]
        out = {key: _interval(values[key], reps[key], confidence, method) for key in defined}
    else:
        clt = "normal (CLT) interval"
        # Delta method: Var(sqrt(MSE)) ~ Var(MSE) / (4 MSE).
        rmse_var = float(sq_err.var(ddof=1)) / n / (4.0 * mse) if mse > 0 else math.nan
        out = {
            "mae": _analytic(values["mae"], bs.mean_interval(abs_err, confidence), clt),
            "mse": _analytic(mse, bs.mean_interval(sq_err, confidence), clt),
            "rmse": _analytic(
                values["rmse"],
                bs.normal_interval(math.sqrt(mse), rmse_var, confidence, (0.0, math.inf)),
                "delta-method normal interval",
            ),
            "median_absolute_error": _analytic(
                values["median_absolute_error"],
                bs.median_interval(abs_err, confidence),
                "distribution-free order-statistic (binomial) interval",
            ),
        }
        if values["r2"] is not None:
            # Influence function of 1 - MSE / Var(y): the delta method for a ratio of means.
            var_y = sst / n
            infl = -((sq_err - mse) - (1.0 - values["r2"]) * (y_centered**2 - var_y)) / var_y
            ci = bs.normal_interval(values["r2"], float(infl.var(ddof=1)) / n, confidence, (-math.inf, 1.0))
            out["r2"] = _analytic(values["r2"], ci, "delta-method (influence function) normal interval")
        if values["mape"] is not None:
            out["mape"] = _analytic(values["mape"], bs.mean_interval(ape, confidence), clt)
    for key in values:
        if key not in out:
            out[key] = MetricValue(values[key], note=notes[key])
    return {key: out[key] for key in values}


def _regression_bootstrap(
    abs_err: np.ndarray,
    sq_err: np.ndarray,
    y_centered: np.ndarray,
    ape: np.ndarray,
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Replicates from per-row resample counts. Rows are sorted once by absolute error and
    resamples are drawn as positions in that order (the same distribution as drawing rows),
    so a resample's median is read off its cumulative counts and every mean is one matrix
    product."""
    n = abs_err.size
    batch = bs.chunk_size(n)
    order = np.argsort(abs_err, kind="stable")
    sorted_abs = abs_err[order]
    columns = np.stack([abs_err, sq_err, y_centered, y_centered**2, ape], axis=1)[order]
    rows = np.arange(batch, dtype=np.int64)[:, None]
    # Each resample's cumulative counts, shifted by (n + 1) per resample so that the whole
    # chunk is one sorted array and both middle order statistics come from one searchsorted.
    shift = rows * (n + 1)
    middle = np.array([(n - 1) // 2, n // 2])

    def work(size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        weights = np.empty((batch, n))
        keys = ("mae", "mse", "rmse", "r2", "median_absolute_error", "mape")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for idx in bs.index_chunks(n, size, rng):
            b = idx.shape[0]
            idx += rows[:b] * n
            counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
            np.copyto(weights[:b], counts)
            sums = weights[:b] @ columns
            np.cumsum(counts, axis=1, out=counts)
            counts += shift[:b]
            found = np.searchsorted(counts.ravel(), (shift[:b] + middle).ravel(), side="right")
            positions = found.reshape(b, 2) - rows[:b] * n
            mse = sums[:, 1] / n
            sst = sums[:, 3] - sums[:, 2] ** 2 / n
            parts["mae"].append(sums[:, 0] / n)
            parts["mse"].append(mse)
            parts["rmse"].append(np.sqrt(mse))
            parts["r2"].append(1.0 - bs.ratio(sums[:, 1], sst, empty=math.nan))
            parts["median_absolute_error"].append(sorted_abs[positions].mean(axis=1))
            parts["mape"].append(sums[:, 4] / n)
        return {key: np.concatenate(chunks) for key, chunks in parts.items()}

    return bs.blockwise(work, n_resamples, seed, _REGRESSION_STREAM)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points evenly spaced along the curve's L1 length, endpoints kept."""
    if x.size > max_points:
        length = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(x)) + np.abs(np.diff(y)))])
        keep = np.unique(np.searchsorted(length, np.linspace(0.0, length[-1], max_points)))
        keep[-1] = x.size - 1
        x, y = x[keep], y[keep]
    return x.tolist(), y.tolist()


#: Cumulative true and false positives at each distinct threshold, from the highest down.
Counts = tuple[np.ndarray, np.ndarray] | None


def descending_counts(ranked: bs.RankedScores) -> Counts:
    """Cumulative true and false positives at each distinct score from the highest down
    (scikit-learn's thresholds), from the once-sorted scores: the two sorted sides are merged
    (a stable sort of two sorted runs is a linear merge); None without a positive row."""
    if ranked.pos.size == 0:
        return None
    # in place where it can be: at 10^7 rows each of these arrays is 80 MB
    values = np.concatenate([ranked.neg_values, ranked.pos_values])
    order = np.argsort(values, kind="stable")[::-1]
    ranked_score = values[order]
    del values
    same = ranked_score[1:] == ranked_score[:-1]
    del ranked_score
    last = np.append(np.flatnonzero(~same), same.size)  # each distinct score's end
    del same
    counts = np.concatenate([ranked.neg, ranked.pos])[order]
    positives = np.where(order >= ranked.neg_values.size, counts, 0)
    del order
    tp = np.cumsum(positives, out=positives)[last].astype(np.float64)
    del positives
    return tp, np.cumsum(counts, out=counts)[last] - tp


def roc_points(
    ranked: bs.RankedScores, max_points: int = 200, counts: Counts = None
) -> tuple[list[float], list[float]] | None:
    """ROC curve ``(fpr, tpr)`` from (0, 0) to (1, 1), one point per distinct threshold,
    downsampled to ``max_points``; None when the target lacks either class. ``counts``: the
    column's :func:`descending_counts`, when already made."""
    counts = descending_counts(ranked) if counts is None else counts
    if counts is None or counts[1][-1] == 0:
        return None
    tp, fp = counts
    return downsample(np.concatenate([[0.0], fp / fp[-1]]), np.concatenate([[0.0], tp / tp[-1]]), max_points)


def pr_points(
    ranked: bs.RankedScores, max_points: int = 200, counts: Counts = None
) -> tuple[list[float], list[float]] | None:
    """Precision-recall curve ``(recall, precision)`` from scikit-learn's (0, 1) start to
    full recall, one point per distinct threshold, downsampled to ``max_points``; None
    without a positive row. ``counts`` as for :func:`roc_points`."""
    counts = descending_counts(ranked) if counts is None else counts
    if counts is None:
        return None
    tp, fp = counts
    recall = np.concatenate([[0.0], tp / tp[-1]])
    return downsample(recall, np.concatenate([[1.0], tp / (tp + fp)]), max_points)


def roc_curve_points(
    positive: np.ndarray, score: np.ndarray, max_points: int = 200
) -> tuple[list[float], list[float]] | None:
    """:func:`roc_points` of one score column and its labels."""
    return roc_points(bs.RankedScores.build(positive, score), max_points)


def pr_curve_points(
    positive: np.ndarray, score: np.ndarray, max_points: int = 200
) -> tuple[list[float], list[float]] | None:
    """:func:`pr_points` of one score column and its labels."""
    return pr_points(bs.RankedScores.build(positive, score), max_points)
