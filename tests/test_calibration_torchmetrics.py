"""The ECE and MCE equal torchmetrics' CalibrationError on the same bins (15 equal-width bins,
L1 and max norms), binary and top-label multiclass: the peers' own implementation as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from auditor.stats import calibration as cal


@pytest.mark.parametrize("distort", [1.0, 1.4])
def test_the_binary_ece_and_mce_are_torchmetrics(distort):
    rng = np.random.default_rng(7)
    p = rng.beta(2, 3, 20_000).astype(np.float32)  # torchmetrics computes in float32
    y = (rng.random(p.size) < p.astype(np.float64) ** distort).astype(np.int64)
    ranked = cal.rank(p.astype(np.float64), y.astype(np.float64))
    bins = ranked.runs(cal.width_bounds(ranked))
    preds, target = torch.from_numpy(p), torch.from_numpy(y)
    assert cal.ece(bins) == pytest.approx(float(binary_calibration_error(preds, target, n_bins=15, norm="l1")),
                                          abs=1e-6)
    assert cal.mce(bins) == pytest.approx(float(binary_calibration_error(preds, target, n_bins=15, norm="max")),
                                          abs=1e-6)


def test_the_top_label_ece_is_torchmetrics_multiclass_calibration_error():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(10_000, 4)) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in proba])  # calibrated by construction...
    proba32 = np.float32(proba ** 1.3 / (proba ** 1.3).sum(axis=1, keepdims=True))  # ...then sharpened
    confident = proba32.max(axis=1).astype(np.float64)
    right = (proba32.argmax(axis=1) == y).astype(np.float64)
    ranked = cal.rank(confident, right)
    bins = ranked.runs(cal.width_bounds(ranked))
    expected = multiclass_calibration_error(torch.from_numpy(proba32), torch.from_numpy(y), num_classes=4,
                                            n_bins=15, norm="l1")
    assert cal.ece(bins) == pytest.approx(float(expected), abs=1e-6)
