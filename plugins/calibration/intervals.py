"""Bootstrap intervals of the calibration errors, at any number of rows.

Rows are pooled into cells (label x equal-mass bin x one of 120 equal-width fine bins, which
nest in the 15 equal-width bins), each cell holding its count and its rows' summed
probability. A bootstrap replicate draws the cells' counts from a multinomial over the rows,
each cell keeping its mean probability: within a cell the probabilities differ by at most
1/120, so a replicate equals a row bootstrap's up to that, and its cost is the number of
occupied cells (at most 28,800), not of rows. The equal-mass bins stay those of the data (a
bootstrap conditional on the bins). Percentile intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.stats.calibration import N_BINS, expected_abs

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


def intervals(p: np.ndarray, y: np.ndarray, mass_bins: np.ndarray, rng: np.random.Generator,
              resamples: int, confidence: float) -> Intervals:
    n = p.size
    fine = np.clip(np.searchsorted(np.linspace(0.0, 1.0, FINE + 1), p, side="right") - 1, 0, FINE - 1)
    code = (y.astype(np.int64) * N_BINS + mass_bins) * FINE + fine
    every = np.bincount(code, minlength=2 * N_BINS * FINE)
    cells = np.flatnonzero(every)
    count = every[cells].astype(np.float64)
    mean_p = np.bincount(code, weights=p, minlength=2 * N_BINS * FINE)[cells] / count
    label = cells // (N_BINS * FINE)
    width_bin = (cells % FINE) // (FINE // N_BINS)
    mass_bin = (cells // FINE) % N_BINS
    one_hot = np.eye(N_BINS)
    width, mass = one_hot[width_bin], one_hot[mass_bin]  # cells x bins

    # per cell: its contribution to a bin's count, sum of events and sum of probabilities
    width_sums = np.stack([width, width * label[:, None], width * mean_p[:, None]])  # 3 x cells x bins
    mass_sums = np.stack([mass, mass * label[:, None], mass * mean_p[:, None]])

    ece, ece_mass, debiased, mce = [], [], [], []
    for start in range(0, resamples, _BLOCK):
        b = min(_BLOCK, resamples - start)
        drawn = rng.multinomial(n, count / n, size=b).astype(np.float64)  # b x cells
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

    def bounds(values: list[np.ndarray]) -> tuple[float, float]:
        low, high = np.quantile(np.concatenate(values), [tail, 1 - tail])
        return float(low), float(high)

    return Intervals(ece=bounds(ece), ece_equal_mass=bounds(ece_mass), ece_debiased=bounds(debiased), mce=bounds(mce))
