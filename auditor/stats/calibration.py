"""Calibration of predicted probabilities: can a predicted 80% be believed?

Every function takes ``p`` (float64 in [0, 1]: the probability the model gives the event) and
``y`` (0/1: whether the event happened), one per row: for a binary model the positive class's
probability and label; for a multiclass model the *top-label* event, the predicted class's
probability and whether the prediction was right.

- **ECE** (expected calibration error): ``sum_b (n_b / n) |mean(y_b) − mean(p_b)|`` over bins of
  ``p``; equal-width bins as torchmetrics' ``CalibrationError`` bins them (``n_bins`` bins of
  [0, 1], ``torch.bucketize(p, edges, right=True) − 1``, the last bin closed), or equal-mass
  bins (sorted rows split into ``n_bins`` runs of sizes differing by at most one, as
  ``numpy.array_split``). **MCE**: the largest bin's gap.
- **Debiased ECE** (Kumar, Liang & Ma, "Verified uncertainty calibration", NeurIPS 2019, their
  ``normal_debiased_ce``): a plug-in ECE over-states the error, because every bin's mean label
  is noisy; each bin's mean label is redrawn ``draws`` times from a normal with the binomial
  standard error, and the debiased estimate is ``2 ECE − mean(redrawn ECEs)`` (the mean taken
  exactly here, not over random redraws). Their debiased
  squared error (``unbiased_square_ce``) for the L2 error: ``sum_b (n_b / n) [(mean(p_b) −
  mean(y_b))² − mean(y_b)(1 − mean(y_b)) / (n_b − 1)]``, its square root when positive.
- **Brier decomposition** (CORP: Dimitriadis, Gneiting & Jordan, PNAS 2021): with ``r`` the
  isotonic regression of ``y`` on ``p`` (pool-adjacent-violators, equal to scikit-learn's
  ``IsotonicRegression``) and ``ȳ`` the mean label: miscalibration ``MCB = S(p) − S(r)``,
  discrimination ``DSC = S(ȳ) − S(r)``, uncertainty ``UNC = S(ȳ)``, ``S`` the mean Brier score;
  ``Brier = MCB − DSC + UNC`` exactly. The isotonic fit is also the reliability diagram's curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Bins of the ECE (torchmetrics' and Kumar et al.'s default).
N_BINS = 15


def equal_width_bins(p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Each row's bin of ``n_bins`` equal-width bins of [0, 1] (torchmetrics' bucketing)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)


def ascending(p: np.ndarray) -> np.ndarray:
    """The rows in the order of ``p`` (ties by row order): the one sort the functions here share."""
    return np.argsort(p, kind="stable")


def equal_mass_bins(p: np.ndarray, n_bins: int = N_BINS, order: np.ndarray | None = None) -> np.ndarray:
    """Each row's bin of ``n_bins`` bins holding equal numbers of rows in the order of ``p``
    (ties broken by row order; fewer bins than rows when there are fewer rows)."""
    n = p.size
    bins = min(n_bins, max(n, 1))
    order = ascending(p) if order is None else order
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(np.arange(bins), sizes)
    return out


@dataclass(frozen=True)
class Bins:
    """Per-bin counts, mean probabilities and mean labels (NaN in empty bins)."""

    count: np.ndarray
    mean_p: np.ndarray
    mean_y: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return np.abs(self.mean_y - self.mean_p)


def binned(p: np.ndarray, y: np.ndarray, bins: np.ndarray, n_bins: int) -> Bins:
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(bins, weights=p, minlength=n_bins) / count
        mean_y = np.bincount(bins, weights=y, minlength=n_bins) / count
    return Bins(count, mean_p, mean_y)


def ece(b: Bins) -> float:
    n = b.count.sum()
    filled = b.count > 0
    return float(np.sum(b.count[filled] / n * b.gap[filled])) if n else float("nan")


def mce(b: Bins) -> float:
    filled = b.count > 0
    return float(np.max(b.gap[filled])) if np.any(filled) else float("nan")


def expected_abs(mean: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``E|X − centre|`` for ``X ~ N(mean, scale²)``, exactly (the folded normal's mean):
    ``σ √(2/π) exp(−d²/2σ²) + d (1 − 2Φ(−d/σ))`` with ``d = mean − centre``; ``|d|`` where σ = 0."""
    d = mean - centre
    safe = np.where(scale > 0, scale, 1.0)
    folded = safe * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (d / safe) ** 2) + d * (1.0 - 2.0 * _normal_cdf(-d / safe))
    return np.where(scale > 0, folded, np.abs(d))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(−x/√2) / 2 (the standard library's erfc: SciPy's import would cost 0.2 s)."""
    return 0.5 * np.asarray(_ERFC(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)), dtype=np.float64)


def debiased_ece(b: Bins) -> float:
    """Kumar et al.'s normal-debiased L1 ECE: ``2 ECE − E[ECE]`` with every bin's mean label
    redrawn from ``N(mean(y_b), mean(y_b)(1 − mean(y_b)) / n_b)``. Their code averages 1,000
    random redraws; the expectation is taken here exactly (:func:`expected_abs`), so the
    figure does not depend on a seed."""
    filled = b.count > 0
    count, mean_p, mean_y = b.count[filled], b.mean_p[filled], b.mean_y[filled]
    if count.size == 0:
        return float("nan")
    weight = count / count.sum()
    plug_in = float(np.sum(weight * np.abs(mean_y - mean_p)))
    scale = np.sqrt(mean_y * (1.0 - mean_y) / count)
    return 2.0 * plug_in - float(np.sum(weight * expected_abs(mean_y, scale, mean_p)))


def debiased_l2(b: Bins) -> float:
    """Kumar et al.'s debiased L2 calibration error (``unbiased_l2_ce``); bins of one row add 0."""
    n = b.count.sum()
    usable = b.count >= 2
    if not n:
        return float("nan")
    count, mean_p, mean_y = b.count[usable], b.mean_p[usable], b.mean_y[usable]
    squared = np.sum(count / n * ((mean_p - mean_y) ** 2 - mean_y * (1.0 - mean_y) / (count - 1.0)))
    return float(np.sqrt(max(squared, 0.0)))


#: Distinct probabilities up to which the isotonic fit is this module's own pool-adjacent-violators
#: loop (~2 µs a value) rather than SciPy's, whose import alone takes 0.4 s.
SMALL_PAVA = 20_000


def _pava(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted non-decreasing least-squares fit of ``values`` (pool adjacent violators:
    each new value starts a block; while a block's mean is not above the previous block's, the
    two are pooled)."""
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values.tolist(), weights.tolist()):
        means.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] >= means[-1]:
            weight = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight
            totals[-2] = weight
            sizes[-2] += sizes[-1]
            del means[-1], totals[-1], sizes[-1]
    return np.repeat(np.asarray(means, dtype=np.float64), sizes)


@dataclass(frozen=True)
class Decomposition:
    """The CORP decomposition of the Brier score: ``brier = mcb − dsc + unc``."""

    brier: float
    mcb: float
    dsc: float
    unc: float


def isotonic(p: np.ndarray, y: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """The isotonic (non-decreasing) regression of ``y`` on ``p`` at every row: the CORP
    recalibrated probabilities. As scikit-learn's ``IsotonicRegression().fit(p, y).predict(p)``
    (rows of equal ``p`` pooled first, then pool-adjacent-violators: :func:`_pava` on up to
    :data:`SMALL_PAVA` distinct values, SciPy's ``isotonic_regression``, which scikit-learn
    calls too, beyond), from one sort and without importing scikit-learn (0.8 s)."""
    order = ascending(p) if order is None else order
    sorted_p = p[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]  # the first row of each distinct value
    count = np.diff(np.r_[first, sorted_p.size]).astype(np.float64)
    mean_y = np.add.reduceat(y[order].astype(np.float64), first) / count if sorted_p.size else count
    if mean_y.size <= SMALL_PAVA:
        fitted = np.clip(_pava(mean_y, count), 0.0, 1.0)
    else:
        from scipy.optimize import isotonic_regression

        fitted = np.clip(isotonic_regression(mean_y, weights=count, increasing=True).x, 0.0, 1.0)
    out = np.empty_like(p, dtype=np.float64)
    out[order] = np.repeat(fitted, count.astype(np.int64))
    return out


def decomposition(p: np.ndarray, y: np.ndarray, recalibrated: np.ndarray) -> Decomposition:
    mean = float(np.mean(y))
    score = float(np.mean((p - y) ** 2))
    best = float(np.mean((recalibrated - y) ** 2))
    unc = float(np.mean((mean - y) ** 2))
    return Decomposition(brier=score, mcb=score - best, dsc=unc - best, unc=unc)
