"""A regression's residuals: intervals of their mean and of the calibration slope, and a test
of whether their spread changes along the predictions.

- **Mean residual**: Student's t interval, ``mean ± t(n − 1) s / √n``.
- **Calibration slope**: the least-squares slope of the actual values on the predictions, with
  a heteroscedasticity-consistent standard error (White's, with the ``n / (n − 2)`` factor:
  HC1, Stata's ``robust``), as the spread may change along the predictions; t interval on
  ``n − 2`` degrees of freedom.
- **Breusch–Pagan test** in Koenker's studentized form: the squared residuals regressed on the
  predictions; ``n R²`` against chi-squared with one degree of freedom. Small p: the spread of
  the errors depends on the prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from auditor.stats.calibration import chi2_sf


def t_quantile(probability: float, dof: int) -> float:
    """The Student t quantile (SciPy's ``stdtrit``, imported when first needed)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, probability))


def mean_interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Student's t interval of the mean (None under 2 values)."""
    n = values.size
    if n < 2:
        return None
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@dataclass(frozen=True)
class Slope:
    slope: float
    intercept: float
    se: float  # HC1
    interval: tuple[float, float]


def calibration_slope(pred: np.ndarray, actual: np.ndarray, confidence: float) -> Slope | None:
    """The least-squares slope of ``actual`` on ``pred`` with its HC1 interval (None when the
    predictions do not vary or there are fewer than 3 rows)."""
    n = pred.size
    centred = pred - pred.mean()
    spread = float(centred @ centred)
    if n < 3 or spread <= 0:
        return None
    slope = float(centred @ (actual - actual.mean())) / spread
    intercept = float(actual.mean() - slope * pred.mean())
    residual = actual - intercept - slope * pred
    se = math.sqrt(float((centred * centred) @ (residual * residual)) / (spread * spread) * n / (n - 2))
    half = t_quantile(0.5 + confidence / 2, n - 2) * se
    return Slope(slope, intercept, se, (slope - half, slope + half))


@dataclass(frozen=True)
class BreuschPagan:
    statistic: float
    p_value: float


def breusch_pagan(pred: np.ndarray, residual: np.ndarray) -> BreuschPagan | None:
    """Koenker's studentized Breusch–Pagan test of the squared residuals on the predictions."""
    n = pred.size
    squared = residual * residual
    x, e = pred - pred.mean(), squared - squared.mean()
    sxx, see = float(x @ x), float(e @ e)
    if n < 3 or sxx <= 0 or see <= 0:
        return None
    r2 = float(x @ e) ** 2 / (sxx * see)
    statistic = n * r2
    return BreuschPagan(statistic, chi2_sf(statistic, 1))
