"""Batched metric kernels and confidence intervals behind :mod:`auditor.stats.metrics`.

The kernels take counts with a leading batch axis, so one code path computes a point
estimate (a batch of one) and every bootstrap replicate at once:

- :func:`confusion_kernel` turns ``(..., K, K)`` confusion matrices (rows = true class) into
  accuracy, balanced accuracy, precision, recall, F1 and MCC, with scikit-learn's
  conventions (``zero_division=0``; macro averages over the classes present in the target
  or the predictions; balanced accuracy over the classes present in the target).
- :class:`RankedScores` sorts one score column once, per label, grouping ties into cells;
  :class:`RankingKernel` turns per-cell counts into ROC-AUC and average precision with
  cumulative sums. A bootstrap resample changes those counts only (:class:`CellResampler`),
  so it never needs a sort.

The intervals:

- :func:`confusion_resamples`: a row bootstrap changes only the confusion-cell counts, and
  those are exactly Multinomial(n, observed cell shares); drawing them is an exact
  bootstrap at any n, in ``K * K`` numbers per resample.
- :func:`index_chunks`: row-bootstrap index matrices in chunks that keep every array under
  :data:`CHUNK_BYTES`; :func:`blockwise` spreads independently seeded blocks of resamples
  over the CPUs without making the result depend on how many there are.
- :func:`delong_variance` and :func:`placement_deviations`: DeLong's variance in the fast
  midrank form of Sun & Xu (2014), written with tie groups: a row's placement value is its
  share of the other class below it, ties counting one half.
- :func:`ap_deviations`: the delta method for average precision.
- normal, logit (Boyd et al. 2013), percentile and order-statistic intervals.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Iterator

import numpy as np

#: The largest array (in bytes) a bootstrap chunk allocates. Small on purpose: chunks of a
#: few MB stay in cache and let the allocator reuse memory from one chunk to the next;
#: chunks of hundreds of MB spend more time faulting fresh pages in than computing.
CHUNK_BYTES = 2_000_000

#: Row-bootstrap resamples are drawn in this many independently seeded blocks.
BLOCKS = 8

Interval = tuple[float, float]


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile for ``confidence`` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def make_rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one ``stream`` of ``seed`` (NumPy's SeedSequence spawn
    keys): each family of metrics, and each block of resamples, draws from its own stream,
    so that computing one never shifts the numbers of another."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=stream))


def blockwise(
    work: Callable[[int, np.random.Generator], dict[str, np.ndarray]],
    n_resamples: int,
    seed: int,
    stream: int,
) -> dict[str, np.ndarray]:
    """Run ``work(size, rng)`` over :data:`BLOCKS` blocks of the resamples, each block with
    its own stream, on as many threads as there are CPUs (NumPy releases the GIL in the
    heavy loops), and join the replicates in block order: the result does not depend on
    the number of threads."""
    sizes = [n_resamples // BLOCKS + (i < n_resamples % BLOCKS) for i in range(BLOCKS)]
    jobs = [(size, make_rng(seed, stream, i)) for i, size in enumerate(sizes) if size > 0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(len(jobs), cpus)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda job: work(*job), jobs))
    else:
        parts = [work(*job) for job in jobs]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """``num / den`` elementwise, ``empty`` where ``den == 0`` (scikit-learn's zero_division)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(num.shape, empty)
    np.divide(num, den, out=out, where=den != 0)
    return out


def class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class support, predicted count, precision, recall and F1 of ``(..., K, K)`` matrices."""
    c = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)
    predicted = c.sum(axis=-2)
    return {
        "tp": tp,
        "support": support,
        "predicted": predicted,
        "precision": ratio(tp, predicted),
        "recall": ratio(tp, support),
        "f1": ratio(2.0 * tp, support + predicted),
    }


def confusion_kernel(cm: np.ndarray, binary: bool) -> dict[str, np.ndarray]:
    """Confusion-matrix metrics of ``(..., K, K)`` matrices; each value has shape ``(...)``.

    Binary (K = 2, class 1 positive): ``precision``, ``recall``, ``f1`` of the positive class.
    Multiclass: ``*_macro`` (over the classes present in the target or the predictions, as
    scikit-learn's default labels) and ``*_weighted`` (weights = support).
    """
    s = class_scores(cm)
    support, predicted = s["support"], s["predicted"]
    n = support.sum(axis=-1)
    correct = s["tp"].sum(axis=-1)
    in_target = support > 0
    out = {
        "accuracy": correct / n,
        "balanced_accuracy": (s["recall"] * in_target).sum(axis=-1) / in_target.sum(axis=-1),
    }
    cov_tp = correct * n - (support * predicted).sum(axis=-1)
    cov_pp = n * n - (predicted * predicted).sum(axis=-1)
    cov_tt = n * n - (support * support).sum(axis=-1)
    out["mcc"] = ratio(cov_tp, np.sqrt(cov_tt * cov_pp))
    if binary:
        for name in ("precision", "recall", "f1"):
            out[name] = s[name][..., 1]
        return out
    present = in_target | (predicted > 0)
    for name in ("precision", "recall", "f1"):
        out[f"{name}_macro"] = (s[name] * present).sum(axis=-1) / present.sum(axis=-1)
        out[f"{name}_weighted"] = (s[name] * support).sum(axis=-1) / n
    return out


def confusion_resamples(cm: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` bootstrap confusion matrices: Multinomial(n, observed cell shares)."""
    k = cm.shape[0]
    n = int(cm.sum())
    draws = rng.multinomial(n, cm.ravel() / n, size=n_resamples)
    return draws.reshape(n_resamples, k, k)


#: From this many rows, the two sides of a score column are sorted on two threads.
_PARALLEL_SORT_ROWS = 200_000


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values ascending, each value's index into them, and their counts: what
    ``np.unique(values, return_inverse=True, return_counts=True)`` gives, holding three arrays
    of n at most instead of five (at 10^7 rows each is 80 MB)."""
    order = np.argsort(values)
    ordered = values[order]
    if ordered.size and ordered.dtype.kind == "f" and np.isnan(ordered[-1]):  # NaN sorts last: unique's rules
        return np.unique(values, return_inverse=True, return_counts=True)
    starts = np.empty(ordered.size, dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    distinct = ordered[starts]
    del ordered
    group = np.cumsum(starts, dtype=np.int64)
    group -= 1
    inverse = np.empty(values.size, dtype=np.int64)
    inverse[order] = group
    del order, group
    counts = np.diff(np.flatnonzero(np.append(starts, True)))
    return distinct, inverse, counts


@dataclass(frozen=True)
class RankedScores:
    """One score column split by label, each side's scores sorted once with ties grouped.

    ``neg_values``/``pos_values``: the distinct scores of negative/positive rows, ascending;
    ``neg``/``pos``: how many rows score each. ``below``/``below_hi``: for each positive
    score, how many negative scores are ``<`` / ``<=`` it. ``cell``: each row's (label,
    score) cell, negatives ``0..Gn-1`` then positives ``Gn..Gn+Gp-1``.
    """

    neg_values: np.ndarray
    pos_values: np.ndarray
    neg: np.ndarray
    pos: np.ndarray
    below: np.ndarray
    below_hi: np.ndarray
    cell: np.ndarray

    @classmethod
    def build(cls, positive: np.ndarray, score: np.ndarray) -> RankedScores:
        positive = np.asarray(positive, dtype=bool)
        negative = ~positive
        sides = (score[negative], score[positive])
        if positive.size >= _PARALLEL_SORT_ROWS:  # numpy sorts without the GIL: one side a core
            with ThreadPoolExecutor(max_workers=2) as pool:
                (neg_values, neg_group, neg), (pos_values, pos_group, pos) = pool.map(_distinct, sides)
        else:
            (neg_values, neg_group, neg), (pos_values, pos_group, pos) = map(_distinct, sides)
        del sides
        cell = np.empty(positive.size, dtype=np.int64)
        cell[negative] = neg_group.ravel()
        del neg_group
        pos_group += neg_values.size
        cell[positive] = pos_group.ravel()
        del pos_group
        return cls(
            neg_values=neg_values,
            pos_values=pos_values,
            neg=neg,
            pos=pos,
            below=np.searchsorted(neg_values, pos_values, side="left"),
            below_hi=np.searchsorted(neg_values, pos_values, side="right"),
            cell=cell,
        )

    @property
    def n_pos(self) -> int:
        return int(self.pos.sum())

    @property
    def n_neg(self) -> int:
        return int(self.neg.sum())

    @property
    def n_cells(self) -> int:
        return self.neg.size + self.pos.size

    def cell_means(self, per_row: np.ndarray) -> np.ndarray:
        """The mean of ``per_row`` over each cell, shape ``(n_cells,)``."""
        sums = np.bincount(self.cell, weights=per_row, minlength=self.n_cells)
        return sums / np.concatenate([self.neg, self.pos])


class RankingKernel:
    """ROC-AUC and average precision of a batch of resampled cell counts of one
    :class:`RankedScores`, from cumulative sums; work buffers are allocated once.

    ROC-AUC is the Mann-Whitney share of (positive, negative) pairs ranked correctly, ties
    counting one half: exactly the trapezoidal area under the ROC curve. Average precision
    is scikit-learn's step sum over thresholds from the highest score down,
    ``sum_k (R_k - R_{k-1}) P_k``: the mean over positive rows of the precision at their
    score. Counts stay integers until the last division.
    """

    def __init__(self, ranked: RankedScores, batch: int) -> None:
        self.ranked = ranked
        self._neg_cum = np.zeros((batch, ranked.neg.size + 1), dtype=np.int64)
        self._a = np.empty((batch, ranked.pos.size), dtype=np.int64)
        self._b = np.empty((batch, ranked.pos.size), dtype=np.int64)
        self._f = np.empty((batch, ranked.pos.size), dtype=np.float64)

    def point(self) -> tuple[float, float]:
        """ROC-AUC and average precision of the data itself (NaN where undefined)."""
        auc, ap = self(self.ranked.pos[None, :], self.ranked.neg[None, :])
        return float(auc[0]), float(ap[0])

    def __call__(self, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``pos`` ``(b, Gp)`` and ``neg`` ``(b, Gn)`` counts -> ROC-AUC and AP, each ``(b,)``."""
        b = pos.shape[0]
        neg_cum, strict, work, frac = self._neg_cum[:b], self._a[:b], self._b[:b], self._f[:b]
        np.cumsum(neg, axis=1, out=neg_cum[:, 1:])
        np.take(neg_cum, self.ranked.below, axis=1, out=strict, mode="clip")  # negatives < score
        np.take(neg_cum, self.ranked.below_hi, axis=1, out=work, mode="clip")  # negatives <= score
        work += strict
        n_pos = pos.sum(axis=1)
        n_neg = neg_cum[:, -1]
        auc = ratio(np.einsum("ij,ij->i", pos, work), 2 * n_pos * n_neg, empty=math.nan)
        # precision at a positive score: positives at or above it / rows at or above it
        np.cumsum(pos, axis=1, out=work)
        work -= pos
        np.subtract(n_pos[:, None], work, out=work)
        np.subtract(n_neg[:, None], strict, out=strict)
        strict += work
        np.maximum(strict, 1, out=strict)
        np.divide(work, strict, out=frac)
        return auc, ratio(np.einsum("ij,ij->i", pos, frac), n_pos, empty=math.nan)


class CellResampler:
    """Turns bootstrap index matrices into per-cell counts ``(b, n_cells)``, reusing buffers."""

    def __init__(self, cell: np.ndarray, n_cells: int, batch: int) -> None:
        self.cell = cell
        self.n_cells = n_cells
        self._codes = np.empty((batch, cell.size), dtype=np.int64)
        self._offsets = (np.arange(batch, dtype=np.int64) * n_cells)[:, None]

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        b = idx.shape[0]
        codes = self._codes[:b]
        np.take(self.cell, idx, out=codes, mode="clip")
        codes += self._offsets[:b]
        return np.bincount(codes.ravel(), minlength=b * self.n_cells).reshape(b, self.n_cells)


def _placements(ranked: RankedScores) -> tuple[np.ndarray, np.ndarray, float]:
    """Placement values per distinct score: V10 (share of negatives below each positive
    score, ties one half) and V01 (share of positives above each negative score), and the AUC."""
    neg_cum = np.concatenate([[0], np.cumsum(ranked.neg)])
    pos_cum = np.concatenate([[0], np.cumsum(ranked.pos)])
    v10 = (neg_cum[ranked.below] + neg_cum[ranked.below_hi]) / (2.0 * ranked.n_neg)
    lo = np.searchsorted(ranked.pos_values, ranked.neg_values, side="left")
    hi = np.searchsorted(ranked.pos_values, ranked.neg_values, side="right")
    v01 = 1.0 - (pos_cum[lo] + pos_cum[hi]) / (2.0 * ranked.n_pos)
    return v10, v01, float((ranked.pos * v10).sum() / ranked.n_pos)


def delong_variance(ranked: RankedScores) -> float:
    """DeLong's variance of the ROC-AUC, ``S10 / m + S01 / n`` (NaN with < 2 of a class)."""
    if ranked.n_pos < 2 or ranked.n_neg < 2:
        return math.nan
    v10, v01, auc = _placements(ranked)
    s10 = float((ranked.pos * (v10 - auc) ** 2).sum()) / (ranked.n_pos - 1)
    s01 = float((ranked.neg * (v01 - auc) ** 2).sum()) / (ranked.n_neg - 1)
    return s10 / ranked.n_pos + s01 / ranked.n_neg


def placement_deviations(ranked: RankedScores) -> np.ndarray:
    """Each row's first-order contribution to ``AUC - E[AUC]`` (DeLong's decomposition).

    A positive row contributes ``(V10 - AUC) / m``, a negative one ``(V01 - AUC) / n``; the
    contributions of one AUC sum to zero, and the sum of their squares is DeLong's variance
    with ``m`` and ``n`` in place of ``m - 1`` and ``n - 1``. Averaging the rows'
    contributions over several AUCs computed on the same rows gives the variance of their
    mean with every covariance included.
    """
    v10, v01, auc = _placements(ranked)
    table = np.concatenate([(v01 - auc) / ranked.n_neg, (v10 - auc) / ranked.n_pos])
    return table[ranked.cell]


def ap_deviations(ranked: RankedScores) -> np.ndarray:
    """Each row's first-order contribution to ``AP - E[AP]`` (the delta method).

    The derivative of the average precision with respect to a row's bootstrap weight, taken
    on scikit-learn's formula itself (ties included): a positive row moves the mean of
    precisions and raises the precision of every positive scored at or below it; a negative
    row lowers them. The contributions sum to zero and the sum of their squares is the
    infinitesimal-jackknife variance; averaging them over several APs computed on the same
    rows gives the variance of their mean with every covariance included.
    """
    n_pos, n_neg = ranked.n_pos, ranked.n_neg
    neg_cum = np.concatenate([[0], np.cumsum(ranked.neg)])
    tp = n_pos - (np.cumsum(ranked.pos) - ranked.pos)  # positives at or above each positive score
    fp = n_neg - neg_cum[ranked.below]  # negatives at or above it
    total = (tp + fp).astype(np.float64)
    precision = tp / total
    ap = float((ranked.pos * precision).sum() / n_pos)
    raise_pos = np.cumsum(ranked.pos * fp / total**2)  # over positive scores at or below
    lower = np.concatenate([[0.0], np.cumsum(ranked.pos * tp / total**2)])
    at_or_below = np.searchsorted(ranked.pos_values, ranked.neg_values, side="right")
    table = np.concatenate([-lower[at_or_below], precision - ap + raise_pos]) / n_pos
    return table[ranked.cell]


def chunk_size(n: int) -> int:
    """Resamples per chunk: ``(chunk, n)`` arrays of 8-byte numbers stay under :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (8 * n))


def index_chunks(n: int, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap index matrices ``(b, n)`` with ``b <= chunk_size(n)``, ``n_resamples`` rows in all."""
    per_chunk = chunk_size(n)
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def percentile_interval(replicates: np.ndarray, confidence: float) -> Interval | None:
    """The percentile interval of the finite replicates; None when fewer than half are
    finite (resamples where the metric is undefined, e.g. no positive row drawn)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2 or 2 * finite.size < replicates.size:
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def normal_interval(
    estimate: float,
    variance: float,
    confidence: float,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Interval | None:
    """``estimate ± z * sqrt(variance)``, clipped to ``bounds``; None if the variance is not finite."""
    if not math.isfinite(variance) or variance < 0:
        return None
    half = z_value(confidence) * math.sqrt(variance)
    return max(bounds[0], estimate - half), min(bounds[1], estimate + half)


def mean_interval(per_row: np.ndarray, confidence: float) -> Interval | None:
    """The CLT interval of a mean: ``mean ± z * sd / sqrt(n)``."""
    if per_row.size < 2:
        return None
    return normal_interval(float(per_row.mean()), float(per_row.var(ddof=1)) / per_row.size, confidence)


def logit_interval(estimate: float, n: int, confidence: float) -> Interval | None:
    """Boyd et al. (2013) logit interval for a proportion-like area from ``n`` positives:
    ``expit(logit(θ) ± z / sqrt(n θ (1 - θ)))``; None at θ = 0 or 1."""
    if not 0.0 < estimate < 1.0 or n < 1:
        return None
    eta = math.log(estimate / (1.0 - estimate))
    half = z_value(confidence) / math.sqrt(n * estimate * (1.0 - estimate))
    return 1.0 / (1.0 + math.exp(-(eta - half))), 1.0 / (1.0 + math.exp(-(eta + half)))


def median_interval(values: np.ndarray, confidence: float) -> Interval | None:
    """Distribution-free interval for the median: the order statistics at
    ``n/2 ∓ z sqrt(n)/2`` (the normal approximation of Binomial(n, 1/2))."""
    n = values.size
    if n < 2:
        return None
    half = z_value(confidence) * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2.0 + half))
    part = np.partition(values, (lo, hi))
    return float(part[lo]), float(part[hi])
