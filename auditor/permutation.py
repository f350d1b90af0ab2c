"""Permutation importance: how much a metric drops when one feature's values are shuffled.

The permutations are scikit-learn's (``sklearn.inspection.permutation_importance`` with the
same ``random_state``): one seed drawn from the given one, then for every feature the same
sequence of in-place shuffles, each repeat shuffling the already shuffled column again. So
for a column of features the importances equal scikit-learn's on the same model and rows
(the tests check it). A *group* of columns (a sequence feature across its time steps) is
shuffled together, rows kept whole, which scikit-learn does not offer.

Every permuted copy of the rows is built at once and run through the caller's batched
inference (``predict``: rows -> predictions), and the metric of every copy comes from one
call of the fold kernels of :mod:`auditor.fold_stats`, each copy a "fold".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import fold_stats
from .context import Predictions, Task

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


def score(task: Task, y: np.ndarray, predictions: Predictions, blocks: np.ndarray, n_blocks: int, metric: str) -> np.ndarray:
    """The metric of each block of rows."""
    if task.is_classification:
        assert predictions.proba is not None and predictions.label is not None
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
    baseline = float(score(task, y, predictions, np.zeros(n, dtype=np.int64), 1, metric)[0])
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
        blocks = np.repeat(np.arange(len(part), dtype=np.int64), n)
        scores[start : start + len(part)] = score(task, np.tile(y, len(part)), predicted, blocks, len(part), metric)
        if on_progress is not None:
            on_progress(len(part))
    scores = scores.reshape(n_groups, n_repeats)
    importances = baseline - scores if higher_is_better else scores - baseline
    return PermutationImportance(metric, baseline, scores, importances, rows_predicted=len(jobs) * n)
