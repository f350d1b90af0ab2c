"""Metrics of every fold at once: one pass over the rows, no Python loop of metric calls.

A fold is a set of rows, so a fold's confusion matrix and its sums of errors are
``np.bincount`` over ``fold * size + code``, and its (label, score) cell counts a bincount of
its rows' cells (in blocks of folds that fit a few megabytes: many partitions of small data at
once, one fold at a time at 10^7 rows);
the batched kernels of :mod:`auditor.stats.bootstrap` then turn the counts into metrics exactly
as they turn bootstrap resamples into replicates. The values equal scikit-learn's on each fold's
rows (the tests compute those independently), with the conventions of :mod:`auditor.stats.metrics`:
``zero_division=0``; NaN where a metric is undefined on a fold (ROC-AUC when a class is
absent from it, R² on a constant target, MAPE when the target has a zero).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from auditor.stats import bootstrap as bs
from auditor.stats.metrics import row_brier, row_log_loss


def _check(folds: np.ndarray, n_rows: int, n_folds: int) -> np.ndarray:
    folds = np.asarray(folds)
    if folds.shape != (n_rows,) or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"expected one integer fold number per row ({n_rows}); got {folds.shape} {folds.dtype}")
    if n_rows and (folds.min() < 0 or folds.max() >= n_folds):
        raise ValueError(f"fold numbers must lie in [0, {n_folds})")
    if np.any(np.bincount(folds, minlength=n_folds) == 0):
        raise ValueError("every fold needs at least one row")
    return folds.astype(np.int64, copy=False)


def class_counts(y: np.ndarray, folds: np.ndarray, n_folds: int, n_classes: int) -> np.ndarray:
    """Rows of each class in each fold, ``(n_folds, n_classes)``."""
    return np.bincount(folds * n_classes + y, minlength=n_folds * n_classes).reshape(n_folds, n_classes)


def _fold_means(values: np.ndarray, folds: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return np.bincount(folds, weights=values, minlength=sizes.size) / sizes


def _and_total(counts: np.ndarray, total: bool) -> np.ndarray:
    """Per-fold counts, with the all-rows counts (their sum) appended when ``total``."""
    return np.concatenate([counts, counts.sum(axis=0, keepdims=True)]) if total else counts


def classification(
    y: np.ndarray,
    proba: np.ndarray,
    label: np.ndarray,
    folds: np.ndarray,
    n_folds: int,
    *,
    total: bool = False,
    ranked: Sequence[bs.RankedScores] | None = None,
) -> dict[str, np.ndarray]:
    """Every point metric of :func:`auditor.stats.metrics.classification_metrics` (but the majority
    baseline) for each fold: ``{key: (n_folds,)}``; with ``total``, ``(n_folds + 1,)``, the
    last entry the metric on all rows (from the summed counts, at no extra pass). ``ranked``:
    :func:`auditor.stats.metrics.ranked_columns` of the same rows, when already made."""
    folds = _check(folds, np.asarray(label).size, n_folds)
    values = _classification(y, proba, label, folds[None, :], n_folds, total, ranked)
    return {key: value[0] for key, value in values.items()}


def classification_partitions(
    y: np.ndarray,
    proba: np.ndarray,
    label: np.ndarray,
    partitions: np.ndarray,
    n_folds: int,
    *,
    ranked: Sequence[bs.RankedScores] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`classification` of many partitions of the same rows at once: ``partitions`` is
    ``(b, n)``, one fold number per row in each of its ``b`` rows; the result is ``{key: (b,
    n_folds)}``, row ``i`` equal to ``classification(..., partitions[i], n_folds)``. The rows'
    log losses, Brier scores and ranked scores are made once for all partitions."""
    partitions = np.asarray(partitions)
    n = np.asarray(label).size
    if partitions.ndim != 2 or partitions.shape[1] != n:
        raise ValueError(f"expected partitions of shape (b, {n}); got {partitions.shape}")
    for row in partitions:
        _check(row, n, n_folds)
    return _classification(y, proba, label, partitions.astype(np.int64, copy=False), n_folds, False, ranked)


#: The most (fold, cell) counts a batch of partitions holds at once (32 MiB of int64).
MAX_CELL_COUNTS = 1 << 22


def _classification(
    y: np.ndarray,
    proba: np.ndarray,
    label: np.ndarray,
    partitions: np.ndarray,
    n_folds: int,
    total: bool,
    ranked: Sequence[bs.RankedScores] | None,
) -> dict[str, np.ndarray]:
    """The metrics of every fold of every partition ``(b, n)``: ``{key: (b, n_folds [+ 1])}``."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    label = np.asarray(label, dtype=np.int64)
    n, k = proba.shape
    b = partitions.shape[0]
    binary = k == 2
    # Each row's (partition, fold): one flat cell number, so that a single bincount counts all.
    flat = partitions if b == 1 else partitions + (np.arange(b, dtype=np.int64) * n_folds)[:, None]

    def per_fold(counts: np.ndarray) -> np.ndarray:
        """``(b * n_folds, ...)`` counts -> ``(b, width, ...)``, the all-rows sum appended when ``total``."""
        counts = counts.reshape(b, n_folds, *counts.shape[1:])
        return np.concatenate([counts, counts.sum(axis=1, keepdims=True)], axis=1) if total else counts

    sizes = per_fold(np.bincount(flat.ravel(), minlength=b * n_folds).astype(np.float64))
    code = flat * k  # (partition, fold, true, predicted) cell of each row, built in place
    code += y
    code *= k
    code += label
    cm = per_fold(np.bincount(code.ravel(), minlength=b * n_folds * k * k).reshape(b * n_folds, k, k))
    del code
    out = dict(bs.confusion_kernel(cm, binary))

    aucs, aps = [], []
    if ranked is not None and (len(ranked) != (1 if binary else k) or any(r.cell.size != n for r in ranked)):
        raise ValueError(f"ranked must hold the ranked scores of these {n} rows, one per ranked column")
    for i, c in enumerate((1,) if binary else range(k)):
        column = ranked[i] if ranked is not None else bs.RankedScores.build(y == c, proba[:, c])
        split = column.neg.size
        pairs = []
        for counts in _cell_counts(column, partitions, n_folds):
            kernel = bs.RankingKernel(column, counts.shape[0])
            pairs.append(kernel(counts[:, split:], counts[:, :split]))
        auc = per_fold(np.concatenate([auc for auc, _ in pairs]))
        ap = per_fold(np.concatenate([ap for _, ap in pairs]))
        if total:  # the sum of the folds' counts is every row's: its metrics are the data's own
            auc[:, -1], ap[:, -1] = bs.RankingKernel(column, 1).point()
        aucs.append(auc)
        aps.append(ap)
    out["roc_auc"] = np.mean(aucs, axis=0)  # NaN on a fold where any class is absent
    out["average_precision"] = np.mean(aps, axis=0)

    def means(values: np.ndarray) -> np.ndarray:
        weights = np.broadcast_to(values, (b, n)).ravel()
        return per_fold(np.bincount(flat.ravel(), weights=weights, minlength=b * n_folds)) / sizes

    out["log_loss"] = means(row_log_loss(y, proba))
    if binary:
        out["brier"] = means(row_brier(y, proba))
    averaged = ("precision", "recall", "f1") if binary else (
        *(f"{m}_macro" for m in ("precision", "recall", "f1")),
        *(f"{m}_weighted" for m in ("precision", "recall", "f1")),
    )
    order = ("accuracy", "balanced_accuracy", *averaged, "roc_auc", "average_precision", "mcc", "log_loss", "brier")
    return {key: np.asarray(out[key], dtype=np.float64) for key in order if key in out}


def _cell_counts(column: bs.RankedScores, partitions: np.ndarray, n_folds: int) -> Iterator[np.ndarray]:
    """Each (partition, fold)'s counts of the column's (label, score) cells, in that order, as
    ``(rows, n_cells)`` blocks of at most :data:`MAX_CELL_COUNTS` counts where a partition's
    folds fit (many partitions of small data at once); one fold at a time where they do not
    (all folds of 10^7 rows at once would take gigabytes)."""
    b, n_cells = partitions.shape[0], column.n_cells
    per_block = MAX_CELL_COUNTS // (n_folds * n_cells)
    if per_block == 0:
        for folds in partitions:
            for f in range(n_folds):
                yield np.bincount(column.cell[folds == f], minlength=n_cells)[None, :]
        return
    for start in range(0, b, per_block):
        block = partitions[start:start + per_block]
        rows = block.shape[0] * n_folds
        code = block + (np.arange(block.shape[0], dtype=np.int64) * n_folds)[:, None]
        code *= n_cells
        code += column.cell
        yield np.bincount(code.ravel(), minlength=rows * n_cells).reshape(rows, n_cells)


def regression(y: np.ndarray, pred: np.ndarray, folds: np.ndarray, n_folds: int) -> dict[str, np.ndarray]:
    """Every metric of :func:`auditor.stats.metrics.regression_metrics` for each fold: ``{key: (n_folds,)}``."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    n = y.size
    folds = _check(folds, n, n_folds)
    sizes = np.bincount(folds, minlength=n_folds)
    abs_err = np.abs(y - pred)
    sse = np.bincount(folds, weights=abs_err * abs_err, minlength=n_folds)
    centred = y - (np.bincount(folds, weights=y, minlength=n_folds) / sizes)[folds]
    sst = np.bincount(folds, weights=centred * centred, minlength=n_folds)
    mse = sse / sizes

    # Rows grouped by fold (a stable radix sort of small integers, O(n)); each fold's
    # maximum is one reduceat, its median a partition of its own run (O(n) in all).
    keys = folds.astype(np.int16) if n_folds < 2**15 else folds
    grouped = abs_err[np.argsort(keys, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    median = np.array([np.median(grouped[a:a + c]) for a, c in zip(starts, sizes)])

    ape = abs_err / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    zeros = np.bincount(folds, weights=(y == 0).astype(np.float64), minlength=n_folds)
    mape = np.where(zeros > 0, np.nan, _fold_means(ape, folds, sizes.astype(np.float64)))
    return {
        "mae": _fold_means(abs_err, folds, sizes.astype(np.float64)),
        "mse": mse,
        "rmse": np.sqrt(mse),
        "r2": 1.0 - bs.ratio(sse, sst, empty=np.nan),
        "median_absolute_error": median,
        "max_error": np.maximum.reduceat(grouped, starts),
        "mape": mape,
    }
