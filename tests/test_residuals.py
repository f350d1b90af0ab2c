"""A regression's residual statistics (auditor.stats.residuals) against SciPy and the matrix
formulas they abbreviate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditor.stats import residuals as rs


def _heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 10, n)
    return pred, 1.0 + 0.9 * pred + rng.normal(size=n) * (0.2 + 0.3 * pred)


def test_the_mean_residuals_interval_is_scipys_t_interval():
    values = np.random.default_rng(0).normal(0.3, 2.0, 40)
    expected = stats.t.interval(0.9, values.size - 1, loc=values.mean(), scale=stats.sem(values))
    assert rs.mean_interval(values, 0.9) == pytest.approx(expected, abs=1e-12)
    assert rs.mean_interval(values[:1], 0.9) is None


def test_the_slopes_standard_error_is_the_hc1_sandwich():
    pred, actual = _heteroscedastic(500, 1)
    found = rs.calibration_slope(pred, actual, 0.95)
    design = np.c_[np.ones_like(pred), pred]
    bread = np.linalg.inv(design.T @ design)
    coef = bread @ design.T @ actual
    residual = actual - design @ coef
    sandwich = bread @ (design.T * residual**2) @ design @ bread * pred.size / (pred.size - 2)
    assert found.slope == pytest.approx(np.polyfit(pred, actual, 1)[0], rel=1e-12)
    assert found.intercept == pytest.approx(coef[0], rel=1e-10)
    assert found.se == pytest.approx(np.sqrt(sandwich[1, 1]), rel=1e-10)
    half = stats.t.ppf(0.975, pred.size - 2) * found.se
    assert found.interval == pytest.approx((found.slope - half, found.slope + half), rel=1e-12)
    assert rs.calibration_slope(np.ones(10), np.arange(10.0), 0.95) is None


def test_the_slopes_interval_covers_the_true_slope_under_heteroscedastic_errors():
    covered = [lo <= 0.9 <= hi for lo, hi in (rs.calibration_slope(*_heteroscedastic(200, seed), 0.95).interval
                                              for seed in range(300))]
    assert np.mean(covered) >= 0.92


def test_breusch_pagan_is_n_r_squared_of_the_squared_residuals_on_the_predictions():
    pred, actual = _heteroscedastic(400, 2)
    residual = actual - pred
    found = rs.breusch_pagan(pred, residual)
    design = np.c_[np.ones_like(pred), pred]
    squared = residual**2
    fit = design @ np.linalg.lstsq(design, squared, rcond=None)[0]
    r2 = 1 - np.sum((squared - fit) ** 2) / np.sum((squared - squared.mean()) ** 2)
    assert found.statistic == pytest.approx(pred.size * r2, rel=1e-9)
    assert found.p_value == pytest.approx(stats.chi2.sf(found.statistic, 1), rel=1e-9)
    assert found.p_value < 1e-6


def test_breusch_pagan_rejects_equal_spreads_at_its_level():
    rng = np.random.default_rng(3)
    rejected = [rs.breusch_pagan(pred, rng.normal(size=300)).p_value <= 0.05
                for pred in (rng.uniform(0, 10, 300) for _ in range(400))]
    assert 0.025 <= np.mean(rejected) <= 0.08
