"""Ranking metrics from binned scores, with rigorous bounds on what the binning can change.

When the per-row predictions of a file exceed the memory budget, the pass keeps, for each
ranked score column, a :class:`ScoreBins`: how many positive and negative rows fell in each
of :data:`BINS` bins of the score, and the lowest and highest score in each bin. It merges
by addition (chunk by chunk, machine by machine), in a few hundred kilobytes whatever the
number of rows.

Bins are equal steps of the score's logit over ``[-LOGIT_RANGE, LOGIT_RANGE]`` (a step of
~0.002 in logit), the two end bins taking everything beyond: fine where a confident model's
probabilities crowd near 0 and 1. Within a bin the order of the rows is unknown, so:

- **ROC-AUC** is computed with each bin's positives and negatives counted as ties (half a
  pair each), the AUC of the scores rounded to their bin. The exact AUC differs by at most
  ``sum over bins of pos_b * neg_b / (2 * P * N)``: within a bin the exact count of
  correctly ordered pairs lies between 0 and ``pos_b * neg_b``. A bin whose lowest and
  highest score are equal holds true ties, which the exact AUC counts as half too: it adds
  nothing to the bound.
- **Average precision** (scikit-learn's step-wise definition) is computed with each bin as
  one threshold. The exact value lies in ``[lower, upper]``: at best a bin's positives come
  first, tied (each at precision ``(tp + pos_b) / (seen + pos_b)``); at worst its negatives
  come first and its positives one by one after them (the j-th at ``(tp + j) / (seen + neg_b
  + j)``, summed in closed form with the digamma function). Both are proved in the tests'
  docstrings and checked against the exact value on real data.
- The **interval** of the AUC is DeLong's for the binned scores (placement values from the
  bin counts), widened on each side by the binning bound; the average precision's is Boyd
  et al.'s logit interval around the binned value, widened to cover ``[lower, upper]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Bins per score column, and the logit range they cover evenly (the end bins take the rest).
BINS = 1 << 14
LOGIT_RANGE = 16.0


def bin_of(score: np.ndarray, n_bins: int = BINS) -> np.ndarray:
    """Each score's bin: equal steps of its logit (scores are probabilities in [0, 1])."""
    with np.errstate(divide="ignore"):
        z = np.log(score)
        z -= np.log1p(-score)
    np.clip(z, -LOGIT_RANGE, LOGIT_RANGE, out=z)
    z += LOGIT_RANGE
    z *= n_bins / (2 * LOGIT_RANGE)
    index = z.astype(np.int64)
    np.minimum(index, n_bins - 1, out=index)
    return index


@dataclass
class ScoreBins:
    """Positive and negative row counts per score bin, with each bin's lowest and highest score."""

    pos: np.ndarray
    neg: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, n_bins: int = BINS) -> ScoreBins:
        return cls(np.zeros(n_bins, dtype=np.int64), np.zeros(n_bins, dtype=np.int64),
                   np.full(n_bins, np.inf), np.full(n_bins, -np.inf))

    @property
    def n_bins(self) -> int:
        return self.pos.size

    def add(self, positive: np.ndarray, score: np.ndarray) -> None:
        """Count rows: ``positive`` (bool) and ``score`` (float64 probabilities), one per row."""
        n_bins = self.n_bins
        index = bin_of(score, n_bins)
        counts = np.bincount(index + n_bins * positive.astype(np.int64), minlength=2 * n_bins)
        self.neg += counts[:n_bins]
        self.pos += counts[n_bins:]
        np.minimum.at(self.low, index, score)
        np.maximum.at(self.high, index, score)

    def merge(self, other: ScoreBins) -> None:
        self.pos += other.pos
        self.neg += other.neg
        np.minimum(self.low, other.low, out=self.low)
        np.maximum(self.high, other.high, out=self.high)

    @property
    def n_pos(self) -> int:
        return int(self.pos.sum())

    @property
    def n_neg(self) -> int:
        return int(self.neg.sum())

    def varied(self) -> np.ndarray:
        """Bins holding rows of different scores (the others hold exact ties)."""
        return self.high > self.low


def _descending(bins: ScoreBins) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative counts from the highest bin to the lowest, occupied bins only."""
    occupied = np.flatnonzero((bins.pos + bins.neg) > 0)[::-1]
    return bins.pos[occupied].astype(np.float64), bins.neg[occupied].astype(np.float64)


@dataclass(frozen=True)
class BinnedValue:
    """A metric from binned scores: its value, the most the binning can have moved it
    (``bound``: the exact value is within ``value ± bound``; ``lower``/``upper`` where the
    bounds are not symmetric) and the variance of its binned estimate, when one is known."""

    value: float
    bound: float
    lower: float
    upper: float
    variance: float | None = None


def auc(bins: ScoreBins) -> BinnedValue | None:
    """Binned ROC-AUC, its bound and DeLong variance; None without both classes."""
    P, N = bins.n_pos, bins.n_neg
    if P == 0 or N == 0:
        return None
    pos, neg = bins.pos.astype(np.float64), bins.neg.astype(np.float64)
    below = np.cumsum(neg) - neg  # negatives in lower bins
    above = (np.cumsum(pos[::-1]) - pos[::-1])[::-1]  # positives in higher bins
    v10 = (below + 0.5 * neg) / N  # placement of a positive in each bin
    v01 = (above + 0.5 * pos) / P  # of a negative
    value = float(np.dot(pos, v10) / P)
    varied = bins.varied()
    bound = float(np.dot(pos[varied], neg[varied]) / (2.0 * P * N))
    var10 = float(np.dot(pos, (v10 - value) ** 2) / (P - 1)) if P > 1 else math.nan
    var01 = float(np.dot(neg, (v01 - value) ** 2) / (N - 1)) if N > 1 else math.nan
    return BinnedValue(value, bound, max(0.0, value - bound), min(1.0, value + bound), var10 / P + var01 / N)


def _rising_sum(a: np.ndarray, c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``sum_{j=1..p} (a + j) / (c + j)`` element-wise, in closed form:
    ``p - (c - a) * (digamma(c + p + 1) - digamma(c + 1))``."""
    from scipy.special import digamma

    return p - (c - a) * (digamma(c + p + 1.0) - digamma(c + 1.0))


def average_precision(bins: ScoreBins) -> BinnedValue | None:
    """Binned average precision (each bin one threshold) and the bounds of the exact value; None without positives."""
    P = bins.n_pos
    if P == 0:
        return None
    pos, neg = _descending(bins)
    order = np.flatnonzero((bins.pos + bins.neg) > 0)[::-1]
    varied = bins.varied()[order]
    tp_before = np.cumsum(pos) - pos
    seen_before = np.cumsum(pos + neg) - (pos + neg)
    with np.errstate(invalid="ignore", divide="ignore"):
        tied = np.where(pos > 0, pos * (tp_before + pos) / (seen_before + pos + neg), 0.0)
        best = np.where(pos > 0, pos * (tp_before + pos) / (seen_before + pos), 0.0)
        worst = np.where(pos > 0, _rising_sum(tp_before, seen_before + neg, pos), 0.0)
    value = float(tied.sum() / P)
    upper = float(np.where(varied, best, tied).sum() / P)
    lower = float(np.where(varied, worst, tied).sum() / P)
    return BinnedValue(value, max(upper - value, value - lower), min(lower, value), max(upper, value))


def roc_points(bins: ScoreBins) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each bin's threshold, from (0, 0) to (1, 1)."""
    pos, neg = _descending(bins)
    tpr = np.concatenate([[0.0], np.cumsum(pos) / max(pos.sum(), 1.0)])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / max(neg.sum(), 1.0)])
    return fpr, tpr


def pr_points(bins: ScoreBins) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each bin's threshold, highest threshold first."""
    pos, neg = _descending(bins)
    tp = np.cumsum(pos)
    recall = tp / max(pos.sum(), 1.0)
    precision = tp / np.maximum(np.cumsum(pos + neg), 1.0)
    return recall, precision
