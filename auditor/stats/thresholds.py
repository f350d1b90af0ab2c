"""Decision thresholds of a binary model: every rate at every threshold from one sort.

A row is predicted positive when its probability is at least the threshold ``t``. The
candidate thresholds are the distinct probabilities, highest first (each gives a different
confusion matrix), with +inf first (nothing predicted positive). ``tp``/``fp`` count the
positive/negative rows at or above each; the rates follow, as scikit-learn defines them
(precision 0 when nothing is predicted positive, ``zero_division=0``).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def rates(self) -> dict[str, np.ndarray]:
        tp, fp = self.tp.astype(np.float64), self.fp.astype(np.float64)
        fn = self.positives - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            recall = tp / self.positives if self.positives else np.full_like(tp, np.nan)
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
            fpr = fp / self.negatives if self.negatives else np.full_like(fp, np.nan)
        return {"precision": precision, "recall": recall, "f1": f1, "tpr": recall, "fpr": fpr,
                "selection_rate": (tp + fp) / self.n}


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


def from_distinct(values: np.ndarray, count: np.ndarray, events: np.ndarray) -> Sweep:
    """The sweep from each distinct probability (ascending) with its rows and events: what
    :class:`auditor.stats.calibration.Ranked` gives after its one sort."""
    tp = np.cumsum(events[::-1]).astype(np.int64) if values.size else np.zeros(0, np.int64)
    fp = np.cumsum(count[::-1]).astype(np.int64) - tp if values.size else tp
    positives = int(tp[-1]) if tp.size else 0
    negatives = int(fp[-1]) if fp.size else 0
    return Sweep(thresholds=np.r_[np.inf, values[::-1]], tp=np.r_[0, tp], fp=np.r_[0, fp],
                 positives=positives, negatives=negatives)


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
