"""Permutation importance: how much a metric drops when one feature's values are shuffled.

The permutations are scikit-learn's (``sklearn.inspection.permutation_importance`` with the
same ``random_state``): one seed drawn from the given one, then for every feature the same
sequence of in-place shuffles, each repeat shuffling the already shuffled column again. So
for a column of features the importances equal scikit-learn's on the same model and rows
(the tests check it). A *group* of columns (a sequence feature across its time steps) is
shuffled together, rows kept whole, which scikit-learn does not offer.

Every permuted copy of the rows is built at once and run through the caller's batched
inference (``predict``: rows -> predictions), and the metric of every copy comes from one
call of the fold kernels of :mod:`auditor.stats.fold_metrics`, each copy a "fold" (ROC-AUC from rank
sums per copy, which is faster on many distinct scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from auditor.contract.context import Predictions, Task
from auditor.stats import fold_metrics as fold_stats

#: Input values built per inference call: bounds the memory of the permuted copies.
CHUNK_VALUES = 2**23


@dataclass(frozen=True)
class PermutationImportance:
    """``scores`` (groups x repeats): the metric with each group shuffled; ``importances``
    the drop from ``baseline`` (for a lower-is-better metric, the rise), as scikit-learn
    reports them."""

    metric: str
    baseline: float
    scores: np.ndarray
    importances: np.ndarray
    rows_predicted: int

    @property
    def mean(self) -> np.ndarray:
        return self.importances.mean(axis=1)

    @property
    def sd(self) -> np.ndarray:
        """The standard deviation over repeats, with scikit-learn's ``ddof=0``."""
        return self.importances.std(axis=1)


def orders(n_rows: int, n_repeats: int, seed: int) -> np.ndarray:
    """The row order of a shuffled column after each repeat, ``(repeats, rows)``: exactly
    the column ``sklearn.inspection.permutation_importance(random_state=seed)`` scores."""
    seed_for_columns = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    generator = np.random.RandomState(seed_for_columns)
    shuffling = np.arange(n_rows)
    current = np.arange(n_rows)
    out = np.empty((n_repeats, n_rows), dtype=np.int64)
    for r in range(n_repeats):
        generator.shuffle(shuffling)
        current = current[shuffling]
        out[r] = current
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 along each row of ``values`` (blocks x rows), ties sharing their mean rank."""
    n_blocks, n = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    index = np.broadcast_to(np.arange(n), (n_blocks, n))
    starts = np.ones((n_blocks, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((n_blocks, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, index, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n_blocks, n), dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def block_roc_auc(y: np.ndarray, proba: np.ndarray, n_blocks: int) -> np.ndarray:
    """ROC-AUC of each block of rows (blocks of equal size, one after another) from the
    Mann-Whitney rank sum: binary from column 1, multiclass the mean of one-vs-rest AUCs;
    NaN in a block where a class is absent. The same values as :mod:`auditor.stats.fold_metrics`,
    without its cell counts over every distinct score (150 permuted copies of 1,000 rows have
    150,000 of them)."""
    n = y.size // n_blocks
    k = proba.shape[1]
    aucs = []
    for c in (1,) if k == 2 else range(k):
        positive = (y == c).reshape(n_blocks, n)
        ranks = average_ranks(proba[:, c].reshape(n_blocks, n))
        pos = positive.sum(axis=1).astype(np.float64)
        neg = n - pos
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append(((ranks * positive).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg))
    return np.mean(aucs, axis=0)


def score(task: Task, y: np.ndarray, predictions: Predictions, n_blocks: int, metric: str) -> np.ndarray:
    """The metric of each block of rows (``n_blocks`` blocks of equal size, one after another)."""
    blocks = np.repeat(np.arange(n_blocks, dtype=np.int64), y.size // n_blocks)
    if task.is_classification:
        assert predictions.proba is not None and predictions.label is not None
        if metric == "roc_auc":
            return block_roc_auc(y, predictions.proba, n_blocks)
        values = fold_stats.classification(y, predictions.proba, predictions.label, blocks, n_blocks)
    else:
        assert predictions.value is not None
        values = fold_stats.regression(y, predictions.value, blocks, n_blocks)
    if metric not in values:
        raise KeyError(metric)
    return values[metric]


def permutation_importance(
    predict: Callable[[np.ndarray], Predictions],
    X: np.ndarray,
    y: np.ndarray,
    predictions: Predictions,
    *,
    task: Task,
    metric: str,
    higher_is_better: bool,
    groups: Sequence[Sequence[int]],
    n_repeats: int,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> PermutationImportance:
    """Shuffle each group of columns of ``X`` ``n_repeats`` times and score ``metric``
    against ``y``; ``predictions`` are the model's on the unshuffled rows (the baseline)."""
    n, n_features = X.shape
    row_orders = orders(n, n_repeats, seed)
    n_groups = len(groups)
    baseline = float(score(task, y, predictions, 1, metric)[0])
    scores = np.empty(n_groups * n_repeats, dtype=np.float64)
    per_call = max(1, CHUNK_VALUES // max(n * n_features, 1))
    jobs = [(g, r) for g in range(n_groups) for r in range(n_repeats)]
    for start in range(0, len(jobs), per_call):
        part = jobs[start : start + per_call]
        copies = np.broadcast_to(X, (len(part), n, n_features)).copy()
        for i, (g, r) in enumerate(part):
            columns = np.asarray(groups[g], dtype=np.int64)
            copies[i][:, columns] = X[row_orders[r][:, None], columns]
        predicted = predict(copies.reshape(len(part) * n, n_features))
        scores[start : start + len(part)] = score(task, np.tile(y, len(part)), predicted, len(part), metric)
        if on_progress is not None:
            on_progress(len(part))
    by_group = scores.reshape(n_groups, n_repeats)
    importances = baseline - by_group if higher_is_better else by_group - baseline
    return PermutationImportance(metric, baseline, by_group, importances, rows_predicted=len(jobs) * n)
