"""Decision thresholds of a binary model: every rate at every threshold from one sort.

A row is predicted positive when its probability is at least the threshold ``t``. The
candidate thresholds are the distinct probabilities, highest first (each gives a different
confusion matrix), with +inf first (nothing predicted positive). ``tp``/``fp`` count the
positive/negative rows at or above each; the rates follow, as scikit-learn defines them
(precision 0 when nothing is predicted positive, ``zero_division=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Sweep:
    thresholds: np.ndarray  # descending, +inf first
    tp: np.ndarray
    fp: np.ndarray
    positives: int
    negatives: int

    @property
    def n(self) -> int:
        return self.positives + self.negatives

    @cached_property
    def _float_counts(self) -> tuple[np.ndarray, np.ndarray]:
        return self.tp.astype(np.float64), self.fp.astype(np.float64)

    def _counts(self, at: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        tp, fp = self._float_counts
        return (tp, fp) if at is None else (tp[at], fp[at])

    def precision(self, at: np.ndarray | None = None) -> np.ndarray:
        tp, fp = self._counts(at)
        return np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)

    def recall(self, at: np.ndarray | None = None) -> np.ndarray:
        tp, _ = self._counts(at)
        return tp / self.positives if self.positives else np.full_like(tp, np.nan)

    def fpr(self, at: np.ndarray | None = None) -> np.ndarray:
        _, fp = self._counts(at)
        return fp / self.negatives if self.negatives else np.full_like(fp, np.nan)

    def f1(self, at: np.ndarray | None = None) -> np.ndarray:
        tp, fp = self._counts(at)
        fn = self.positives - tp
        return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)

    def rates(self, at: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every rate at every threshold, or at the sweep's indices ``at`` only."""
        tp, fp = self._counts(at)
        recall = self.recall(at)
        return {"precision": self.precision(at), "recall": recall, "f1": self.f1(at), "tpr": recall,
                "fpr": self.fpr(at), "selection_rate": (tp + fp) / self.n}


def sweep(p: np.ndarray, y: np.ndarray, descending: np.ndarray | None = None) -> Sweep:
    """``descending``: the rows in decreasing order of ``p`` when already sorted (ties in any order)."""
    order = np.argsort(-p, kind="stable") if descending is None else descending
    scores, labels = p[order], y[order].astype(np.int64)
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # the last row of each distinct score
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    positives = int(labels.sum())
    return Sweep(thresholds=np.r_[np.inf, scores[last]], tp=np.r_[0, tp], fp=np.r_[0, fp],
                 positives=positives, negatives=int(scores.size - positives))


def from_distinct(values: np.ndarray, rows_above: np.ndarray, events_above: np.ndarray) -> Sweep:
    """The sweep from each distinct probability (ascending) with the rows and the events at or
    above it: what :class:`auditor.stats.calibration.Ranked`'s prefix sums give without a pass."""
    if values.size == 0:
        return Sweep(thresholds=np.r_[np.inf], tp=np.zeros(1, np.int64), fp=np.zeros(1, np.int64), positives=0,
                     negatives=0)
    tp = np.rint(events_above[::-1]).astype(np.int64)
    fp = rows_above[::-1].astype(np.int64) - tp
    return Sweep(thresholds=np.r_[np.inf, values[::-1]], tp=np.r_[0, tp], fp=np.r_[0, fp],
                 positives=int(tp[-1]), negatives=int(fp[-1]))


def at(s: Sweep, threshold: float) -> int:
    """The index of the sweep's confusion matrix for ``threshold`` (rows with p >= threshold)."""
    return int(np.searchsorted(-s.thresholds, -threshold, side="right") - 1)


def best(values: np.ndarray) -> int:
    """The first (highest threshold) index of the largest value, NaN ignored."""
    return int(np.nanargmax(values))


def reaching(values: np.ndarray, target: float, highest: bool) -> int | None:
    """The index whose value first reaches ``target``: the highest threshold that does
    (``highest``: for recall, which only grows as the threshold falls), or the lowest
    threshold that does (for precision: the most rows predicted positive at that precision)."""
    hits = np.flatnonzero(values >= target)
    if hits.size == 0:
        return None
    return int(hits[0] if highest else hits[-1])
