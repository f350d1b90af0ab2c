"""How far a metric moves across folds, seeds and retrained models: the summary statistics.

Every function takes the per-fold values of one metric (NaN where the metric is undefined
on a fold, which is then left out and counted) and returns plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (n - 1), coefficient of variation (SD / |mean|),
    range and the worst value of the defined values; ``worst_index`` points into the input.
    ``sd`` and ``cv`` are None with fewer than two values, ``cv`` also when the mean is 0."""

    n: int
    n_undefined: int
    mean: float | None
    sd: float | None
    cv: float | None
    low: float | None
    high: float | None
    worst: float | None
    worst_index: int | None

    @property
    def worst_gap(self) -> float | None:
        """How far the worst value lies from the mean, relative to |mean| (0.1 = 10% worse)."""
        if self.worst is None or self.mean is None or self.mean == 0:
            return None
        return abs(self.worst - self.mean) / abs(self.mean)


def summarise(values: np.ndarray, direction: str) -> Spread:
    """The spread of ``values``; the worst is the lowest when higher is better, the highest
    when lower is better, and None when the metric has no better side."""
    values = np.asarray(values, dtype=np.float64).ravel()
    defined = np.isfinite(values)
    n = int(defined.sum())
    if n == 0:
        return Spread(0, values.size, None, None, None, None, None, None, None)
    kept = values[defined]
    mean = float(kept.mean())
    sd = float(kept.std(ddof=1)) if n >= 2 else None
    cv = sd / abs(mean) if sd is not None and mean != 0 else None
    worst_index: int | None = None
    if direction in ("higher", "lower"):
        masked = np.where(defined, values, np.inf if direction == "higher" else -np.inf)
        worst_index = int(np.argmin(masked) if direction == "higher" else np.argmax(masked))
    return Spread(
        n=n,
        n_undefined=int(values.size - n),
        mean=mean,
        sd=sd,
        cv=cv,
        low=float(kept.min()),
        high=float(kept.max()),
        worst=None if worst_index is None else float(values[worst_index]),
        worst_index=worst_index,
    )


def seed_and_fold_sd(values: np.ndarray) -> tuple[float | None, float | None]:
    """For a ``(seeds, folds)`` table of scores: the typical SD across seeds on one fold (the
    root mean of the per-fold variances across seeds) and the SD across folds of the
    per-fold means over seeds. None where there are fewer than two seeds or folds; folds
    with an undefined value are left out."""
    values = np.asarray(values, dtype=np.float64)
    complete = np.all(np.isfinite(values), axis=0)
    values = values[:, complete]
    seeds, folds = values.shape
    by_seed = math.sqrt(float(values.var(axis=0, ddof=1).mean())) if seeds >= 2 and folds >= 1 else None
    by_fold = float(values.mean(axis=0).std(ddof=1)) if folds >= 2 else None
    return by_seed, by_fold


@dataclass(frozen=True)
class Placement:
    """Where one score lies against a sample of scores: the ``level`` prediction interval
    for one more draw (``mean ± t(level, m-1) * SD * sqrt(1 + 1/m)``, normal data assumed)
    and the share of the sample below the score."""

    score: float
    mean: float
    low: float
    high: float
    level: float
    share_below: float

    @property
    def outside(self) -> bool:
        return not self.low <= self.score <= self.high


def place(score: float, sample: np.ndarray, level: float) -> Placement | None:
    """The placement of ``score`` among ``sample`` (None with fewer than two finite values
    or a zero spread)."""
    from scipy.special import stdtrit

    sample = np.asarray(sample, dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    m = sample.size
    if m < 2 or not math.isfinite(score):
        return None
    mean, sd = float(sample.mean()), float(sample.std(ddof=1))
    if sd == 0:
        return None
    half = float(stdtrit(m - 1, 0.5 + level / 2.0)) * sd * math.sqrt(1.0 + 1.0 / m)
    share = float((np.sum(sample < score) + 0.5 * np.sum(sample == score)) / m)
    return Placement(score, mean, mean - half, mean + half, level, share)
