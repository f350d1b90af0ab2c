"""Cross-validation folds: one fold number per row and repeat, the same folds scikit-learn draws.

A split is an int64 array ``(repeats, rows)``: ``folds[r, i]`` is the test fold of row ``i``
in repeat ``r``. Every row is in exactly one test fold per repeat, so an audit that has
predictions for every row evaluates a fold by indexing them: no new forward passes.

The splits equal scikit-learn's, row for row, given the same seed (the tests hold them to it),
so anyone can rebuild a reported fold:

- ``stratified``: ``StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)``; repeats as
  ``RepeatedStratifiedKFold(n_splits=k, n_repeats=r, random_state=seed)``.
- ``plain``: ``KFold(n_splits=k, shuffle=True, random_state=seed)``; repeats as ``RepeatedKFold``.
- ``grouped``: ``GroupKFold(n_splits=k, shuffle=True, random_state=seed)``: rows that share a
  group value are always in the same fold; repeats draw from one ``RandomState(seed)`` as the
  repeated splitters do.

scikit-learn itself is not imported: importing its model selection costs more than a second,
and these are a few lines of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Strategy = Literal["stratified", "plain", "grouped"]

#: How each strategy is described in reports.
DESCRIPTIONS: dict[str, str] = {
    "stratified": "stratified k-fold (scikit-learn's StratifiedKFold, shuffled)",
    "plain": "k-fold (scikit-learn's KFold, shuffled)",
    "grouped": "grouped k-fold (scikit-learn's GroupKFold, shuffled groups)",
}


class FoldError(ValueError):
    """The data cannot be split as asked (fewer rows or groups than folds...)."""


@dataclass(frozen=True)
class Split:
    """``folds`` ``(repeats, rows)`` fold numbers, and how they were drawn."""

    folds: np.ndarray
    n_splits: int
    strategy: Strategy
    seed: int

    @property
    def n_repeats(self) -> int:
        return int(self.folds.shape[0])

    def test_rows(self, repeat: int, fold: int) -> np.ndarray:
        """The row indices of one test fold, ascending."""
        return np.flatnonzero(self.folds[repeat] == fold)


#: Up to this many classes, class indices are counted and located by bincount and one scan a
#: class; beyond, by np.unique (a sort of every row).
_FEW_CLASSES = 64


def _by_first_appearance(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class renumbered in order of first appearance (StratifiedKFold's order) and
    each renumbered class's row count. Small class indices (the audit's targets) need no sort."""
    if np.issubdtype(y.dtype, np.integer) and y.size and 0 <= y.min() and y.max() < _FEW_CLASSES:
        counts = np.bincount(y)
        present = np.flatnonzero(counts)
        first = np.array([np.argmax(y == c) for c in present])
        order = np.argsort(first, kind="stable")
        renumber = np.zeros(counts.size, dtype=np.int64)
        renumber[present[order]] = np.arange(present.size)
        return renumber[y], counts[present[order]]
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    _, class_perm = np.unique(first, return_inverse=True)
    encoded = class_perm[inverse.ravel()]
    return encoded, np.bincount(encoded, minlength=first.size)


def _class_counts(y: np.ndarray) -> np.ndarray:
    """Rows of each class present (in no particular order)."""
    if np.issubdtype(y.dtype, np.integer) and y.size and 0 <= y.min() and y.max() < _FEW_CLASSES:
        counts = np.bincount(y)
        return counts[counts > 0]
    return np.unique(y, return_counts=True)[1]


def _stratified(y: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """StratifiedKFold._make_test_folds with shuffle: classes in order of first appearance,
    each class's rows dealt round-robin over the folds, then the fold labels shuffled."""
    encoded, class_counts = _by_first_appearance(y)
    n_classes = class_counts.size
    # sklearn deals np.sort(encoded) round-robin: position j goes to fold j % k. Class c holds
    # positions [start_c, end_c) of it, so fold i gets the count of j = i (mod k) in that range.
    ends = np.cumsum(class_counts)
    starts = ends - class_counts
    allocation = np.asarray([(ends - i + k - 1) // k - (starts - i + k - 1) // k for i in range(k)])
    folds = np.empty(y.size, dtype=np.int64)
    for c in range(n_classes):
        for_class = np.arange(k).repeat(allocation[:, c])
        rng.shuffle(for_class)
        folds[encoded == c] = for_class
    return folds


def _plain(n: int, k: int, rng: np.random.RandomState) -> np.ndarray:
    """KFold with shuffle: a permutation cut into k runs, the first ``n % k`` one row longer."""
    order = np.arange(n)
    rng.shuffle(order)
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.repeat(np.arange(k), sizes)
    return folds


def _grouped(group_index: np.ndarray, n_groups: int, k: int, rng: np.random.RandomState) -> np.ndarray:
    """GroupKFold with shuffle: the sorted distinct groups permuted and cut into k runs
    (``np.array_split``), each row following its group."""
    order = rng.permutation(n_groups)
    sizes = np.full(k, n_groups // k, dtype=np.int64)
    sizes[: n_groups % k] += 1
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order] = np.repeat(np.arange(k), sizes)
    return fold_of_group[group_index]


def make_split(
    n_rows: int,
    n_splits: int,
    *,
    n_repeats: int = 1,
    seed: int = 0,
    y: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Split:
    """Draw the folds: grouped when ``groups`` is given, else stratified when ``y`` (class
    indices) is given, else plain. Raises :class:`FoldError` when the data is too small."""
    if n_splits < 2:
        raise FoldError(f"cross-validation needs at least 2 folds; got {n_splits}")
    if n_rows < n_splits:
        raise FoldError(f"{n_rows} rows cannot make {n_splits} folds")
    rng = np.random.RandomState(seed)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n_rows,):
            raise FoldError(f"expected one group value per row ({n_rows}); got shape {groups.shape}")
        _, group_index = np.unique(groups, return_inverse=True)
        group_index = group_index.ravel()
        n_groups = int(group_index.max()) + 1
        if n_groups < n_splits:
            raise FoldError(f"{n_groups} distinct groups cannot make {n_splits} folds")
        folds = [_grouped(group_index, n_groups, n_splits, rng) for _ in range(n_repeats)]
        strategy: Strategy = "grouped"
    elif y is not None:
        y = np.asarray(y)
        if y.shape != (n_rows,):
            raise FoldError(f"expected one target value per row ({n_rows}); got shape {y.shape}")
        counts = _class_counts(y)
        if np.all(counts < n_splits):
            raise FoldError(
                f"every class has fewer rows than the {n_splits} folds (largest: {int(counts.max())})"
            )
        folds = [_stratified(y, n_splits, rng) for _ in range(n_repeats)]
        strategy = "stratified"
    else:
        folds = [_plain(n_rows, n_splits, rng) for _ in range(n_repeats)]
        strategy = "plain"
    return Split(folds[0][None, :] if len(folds) == 1 else np.stack(folds), n_splits, strategy, seed)
