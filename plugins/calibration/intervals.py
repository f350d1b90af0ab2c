"""Bootstrap intervals of the calibration errors, at any number of rows.

Rows are pooled into cells (label x equal-mass bin x one of 120 equal-width fine bins, which
nest in the 15 equal-width bins), each cell holding its count and its rows' summed
probability: read off the ranked rows' prefix sums (:class:`auditor.stats.calibration.Ranked`),
as the bins are runs of the sorted rows. A bootstrap replicate draws the cells' counts from a multinomial over the rows,
each cell keeping its mean probability: within a cell the probabilities differ by at most
1/120, so a replicate equals a row bootstrap's up to that, and its cost is the number of
occupied cells (at most 28,800), not of rows. The equal-mass bins stay those of the data (a
bootstrap conditional on the bins). Percentile intervals, but for the debiased ECE's.

The debiased ECE's replicates centre on the *plug-in* ECE, not on the debiased one (in the
bootstrap's world the truth is the sample's plug-in ECE, and the debiased estimator is nearly
unbiased for it), so their percentiles lie above the truth by about the plug-in's bias: the
interval is their percentiles moved by the debiased estimate less the replicates' mean, and
clipped at 0. Near 0 the debiased estimator is itself biased upward (at perfect calibration it
reads about 0.6 of the plug-in's bias), so the audit also widens the interval down to 0 when
the calibration test (:func:`auditor.stats.calibration.calibration_test`) does not reject
calibration at the same level. Coverage measured by ``benchmarks/bench_calibration.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.stats.bootstrap import percentile_interval
from auditor.stats.calibration import (
    N_BINS,
    Decomposition,
    Ranked,
    Test,
    equal_width_bins,
    expected_abs,
    isotonic_fit,
)

#: Fine equal-width bins: a multiple of N_BINS, so that they nest in the equal-width bins.
FINE = N_BINS * 8
#: Replicates whose cell counts are drawn at once.
_BLOCK = 100


@dataclass(frozen=True)
class Intervals:
    ece: tuple[float, float]
    ece_equal_mass: tuple[float, float]
    ece_debiased: tuple[float, float]
    mce: tuple[float, float]


def intervals(r: Ranked, mass: np.ndarray, rng: np.random.Generator, resamples: int,
              confidence: float) -> Intervals:
    """``r``: the rows ranked by probability; ``mass``: the equal-mass bins' bounds in them."""
    n = r.n
    fine_edges = np.linspace(0.0, 1.0, FINE + 1)
    fine = np.r_[0, np.searchsorted(r.p, fine_edges[1:-1], side="left"), n]
    cuts = np.unique(np.r_[fine, mass])  # runs of sorted rows in one fine bin and one equal-mass bin
    start, end = cuts[:-1], cuts[1:]
    start, end = start[end > start], end[end > start]
    rows = (end - start).astype(np.float64)
    events = np.rint(r.cum_y[end] - r.cum_y[start])  # whole numbers (prefix sums of 0/1)
    event_p = r.cum_py[end] - r.cum_py[start]
    sum_p = r.cum_p[end] - r.cum_p[start]
    fine_bin = np.searchsorted(fine, start, side="right") - 1
    mass_bin = np.searchsorted(mass, start, side="right") - 1
    # the cells: each run's events, then its other rows (labels 1 and 0), those that hold rows
    count = np.r_[events, rows - events]
    summed_p = np.r_[event_p, sum_p - event_p]
    label = np.r_[np.ones_like(rows), np.zeros_like(rows)]
    width_bin, mass_bin = np.tile(fine_bin // (FINE // N_BINS), 2), np.tile(mass_bin, 2)
    filled = count > 0
    count, label, width_bin, mass_bin = count[filled], label[filled], width_bin[filled], mass_bin[filled]
    mean_p = summed_p[filled] / count
    one_hot = np.eye(N_BINS)
    width, mass_hot = one_hot[width_bin], one_hot[mass_bin]  # cells x bins

    # per cell: its contribution to a bin's count, sum of events and sum of probabilities
    width_sums = np.stack([width, width * label[:, None], width * mean_p[:, None]])  # 3 x cells x bins
    mass_sums = np.stack([mass_hot, mass_hot * label[:, None], mass_hot * mean_p[:, None]])

    ece, ece_mass, debiased, mce = [], [], [], []
    blocks = [min(_BLOCK, resamples - first) for first in range(0, resamples, _BLOCK)]
    for b in [0, *blocks]:  # 0: the data themselves first (the estimates the debiased interval centres on)
        drawn = count[None, :] if b == 0 else rng.multinomial(n, count / n, size=b).astype(np.float64)  # b x cells
        counts, sum_y, sum_p = drawn @ width_sums  # each b x bins
        gaps = np.abs(sum_y - sum_p)
        ece.append(gaps.sum(axis=1) / n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mce.append(np.nanmax(np.where(counts > 0, gaps / counts, np.nan), axis=1))
        counts, sum_y, sum_p = drawn @ mass_sums
        plug_in = np.abs(sum_y - sum_p).sum(axis=1) / n
        ece_mass.append(plug_in)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_y = np.where(counts > 0, sum_y / counts, 0.0)
            mean_pb = np.where(counts > 0, sum_p / counts, 0.0)
        scale = np.sqrt(np.clip(mean_y * (1 - mean_y), 0, None) / np.maximum(counts, 1))
        debiased.append(2 * plug_in - np.sum(counts / n * expected_abs(mean_y, scale, mean_pb), axis=1))
    tail = (1 - confidence) / 2

    def bounds(values: list[np.ndarray], shift: bool = False) -> tuple[float, float]:
        replicates = np.concatenate(values[1:])
        low, high = np.quantile(replicates, [tail, 1 - tail])
        if shift:  # the low end centred on the estimate, and not below 0
            moved = float(values[0][0] - replicates.mean())
            return max(float(low) + moved, 0.0), max(float(high), 0.0)
        return float(low), float(high)

    return Intervals(ece=bounds(ece), ece_equal_mass=bounds(ece_mass), ece_debiased=bounds(debiased, shift=True),
                     mce=bounds(mce))


def reaching_zero(interval: tuple[float, float], test: Test, confidence: float) -> tuple[float, float]:
    """The debiased ECE's interval, down to 0 when ``test`` does not reject calibration at the
    interval's level (the debiased estimate is biased upward near 0: see the module's text)."""
    return (0.0, interval[1]) if test.p_value > 1 - confidence else interval


#: Runs of rows the Brier decomposition's bootstrap refits its isotonic curve on.
BRIER_RUNS = 50


@dataclass(frozen=True)
class BrierIntervals:
    mcb: tuple[float, float]
    dsc: tuple[float, float]
    unc: tuple[float, float]


def brier_intervals(r: Ranked, estimate: Decomposition, rng: np.random.Generator, resamples: int,
                    confidence: float) -> BrierIntervals:
    """Intervals of the CORP decomposition's terms. The rows are pooled into about
    :data:`BRIER_RUNS` runs of equal size in the order of probability (ties never split), each
    split by label: the cells, holding their rows' sums of ``p`` and ``p²``. A replicate draws
    the cells' counts (a multinomial over the rows), scores the probabilities exactly from the
    sums, and refits the isotonic curve on the runs' event shares. Refitting on runs rather
    than rows lowers every replicate's miscalibration a little; the intervals are centred on
    the estimates (each replicate moved by the estimate less the same computation on the data's
    own counts). Percentile intervals."""
    cuts = r.equal_runs(BRIER_RUNS)
    start, end = cuts[:-1], cuts[1:]
    rows = (end - start).astype(np.float64)
    events = np.rint(r.cum_y[end] - r.cum_y[start])
    sum_p, event_p = r.cum_p[end] - r.cum_p[start], r.cum_py[end] - r.cum_py[start]
    squares = sum_p - (r.cum_var[end] - r.cum_var[start])  # Σ p² = Σ p − Σ p (1 − p)
    runs = rows.size
    # cells: the runs' events, then their other rows; the probabilities' Σ p² split by label in
    # proportion to Σ p (exact when a run holds one distinct probability)
    cell_rows = np.r_[events, rows - events]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sum_p > 0, event_p / sum_p, 0.0)
    cell_p = np.r_[event_p, sum_p - event_p]
    cell_p2 = np.r_[squares * share, squares * (1 - share)]
    label = np.r_[np.ones(runs), np.zeros(runs)]
    filled = cell_rows > 0
    n = r.n

    def terms(drawn: np.ndarray) -> np.ndarray:
        """Each replicate's (MCB, DSC, UNC) from its cells' counts (replicates x cells)."""
        scale = np.zeros_like(cell_rows)
        scale[filled] = 1.0 / cell_rows[filled]
        per_row = drawn * scale  # each drawn row carries its cell's mean p and p²
        brier = (per_row @ (cell_p2 - 2 * cell_p * label) + drawn @ label) / n
        pos, total = drawn[:, :runs], drawn[:, :runs] + drawn[:, runs:]
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = pos / total
        fitted = shares.copy()
        for i in np.flatnonzero(np.any(np.diff(np.where(total > 0, shares, np.nan), axis=1) < 0, axis=1)
                                | np.any(total == 0, axis=1)):  # replicates whose shares are not yet monotone
            used = total[i] > 0
            fitted[i, used] = isotonic_fit(shares[i, used], total[i, used])
        fitted = np.where(total > 0, fitted, 0.0)
        best = np.sum(total * fitted * fitted - 2 * fitted * pos + pos, axis=1) / n
        mean = pos.sum(axis=1) / n
        return np.stack([brier - best, mean * (1 - mean) - best, mean * (1 - mean)], axis=1)

    own = terms(cell_rows[None, :])[0]
    replicates = terms(rng.multinomial(n, cell_rows / n, size=resamples).astype(np.float64))
    replicates += np.array([estimate.mcb, estimate.dsc, estimate.unc]) - own
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail], axis=0)
    return BrierIntervals(*((float(a), float(b)) for a, b in zip(low, high)))


#: Row types (label x each class's equal-width bin) up to which the class-wise ECEs' mean gets a
#: joint interval; past it the bootstrap's matrix would cost seconds, and no interval is given.
MAX_TYPES = 20_000


def classwise_interval(proba: np.ndarray, y: np.ndarray, rng: np.random.Generator, resamples: int,
                       confidence: float) -> tuple[float, float] | None:
    """The percentile interval of the mean over classes of each class's one-vs-rest ECE (15
    equal-width bins): the classes share rows, so the rows are redrawn jointly. A row's *type*
    is its label and its bin in every class's probability; a replicate draws the types' counts
    (a multinomial over the rows), each type keeping its rows' summed probabilities, so every
    class's bins follow from one matrix product. None past :data:`MAX_TYPES` types or 13
    classes (the type's code would not fit in 64 bits)."""
    n, k = proba.shape
    if k > 13 or n == 0:
        return None
    bins = equal_width_bins(proba.ravel()).reshape(n, k)
    code = y.astype(np.int64) * N_BINS**k + bins @ (N_BINS ** np.arange(k, dtype=np.int64))
    types, first, inverse, counts = np.unique(code, return_index=True, return_inverse=True, return_counts=True)
    if types.size > MAX_TYPES:
        return None
    sums = np.stack([np.bincount(inverse, weights=proba[:, c], minlength=types.size) for c in range(k)], axis=1)
    label, type_bins = y[first].astype(np.int64), bins[first]
    one_hot = np.eye(N_BINS)
    # per class: each type's contribution to a bin's rows, events and summed probability, per drawn row
    columns = []
    for c in range(k):
        hot = one_hot[type_bins[:, c]]  # types x bins
        columns += [hot, hot * (label == c)[:, None], hot * (sums[:, c] / counts)[:, None]]
    design = np.concatenate(columns, axis=1)  # types x (3 k bins)
    estimates = []
    for start in range(0, resamples, _BLOCK):
        b = min(_BLOCK, resamples - start)
        drawn = rng.multinomial(n, counts / n, size=b).astype(np.float64)
        parts = (drawn @ design).reshape(b, k, 3, N_BINS)
        estimates.append(np.abs(parts[:, :, 1] - parts[:, :, 2]).sum(axis=2).mean(axis=1) / n)
    return percentile_interval(np.concatenate(estimates), confidence)
