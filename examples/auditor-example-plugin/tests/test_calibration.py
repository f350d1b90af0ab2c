"""The calibration audit, checked against numbers computed independently of its code.

Contexts come from ``auditor.testing.make_context`` (arrays, no files) and from the
``binary_context`` fixture (a real MLP trained on the breast cancer data), both provided by
auditor's pytest plugin; ``check_audit`` is auditor's conformance check.
"""

from __future__ import annotations

import numpy as np
import pytest
from auditor_calibration import CalibrationAudit, reliability

from auditor.contract.errors import UsageError

AUDIT = CalibrationAudit()


def options(**changes):
    return {**CalibrationAudit.defaults(), **changes}


def ece_by_hand(proba: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[float, float]:
    """ECE and MCE as the textbook writes them: a plain loop over bins (lo, hi]."""
    proba, y = np.asarray(proba, float), np.asarray(y)
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece, mce = 0.0, 0.0
    for m in range(n_bins):
        lo, hi = edges[m], edges[m + 1]
        inside = [i for i in range(len(y)) if (lo < confidence[i] <= hi) or (m == 0 and confidence[i] == 0)]
        if not inside:
            continue
        accuracy = sum(predicted[i] == y[i] for i in inside) / len(inside)
        mean_confidence = sum(confidence[i] for i in inside) / len(inside)
        ece += len(inside) / len(y) * abs(accuracy - mean_confidence)
        mce = max(mce, abs(accuracy - mean_confidence))
    return ece, mce


def test_a_hand_worked_example(audit_context):
    # confidences 0.9, 0.6, 0.6, 0.8, every prediction right: bins (0.5, 0.6] with 2 rows
    # (gap 0.4), (0.7, 0.8] (gap 0.2) and (0.8, 0.9] (gap 0.1): ECE = (2*0.4 + 0.2 + 0.1) / 4
    ctx = audit_context(y=[1, 1, 0, 0], proba=[0.9, 0.6, 0.4, 0.2])
    result = AUDIT.run(ctx, options(min_rows=1, n_resamples=0))
    assert result.metrics["ece"].value == pytest.approx(0.275)
    assert result.metrics["mce"].value == pytest.approx(0.4)
    assert result.metrics["overconfidence"].value == pytest.approx(0.725 - 1.0)
    assert result.status == "warn" and [f.code for f in result.findings] == ["miscalibrated"]
    assert "under-confident" in result.findings[0].message


def test_matches_the_textbook_loop_on_a_real_model(binary_context, check_audit):
    result = check_audit(AUDIT, binary_context)
    ece, mce = ece_by_hand(binary_context.predictions.proba, binary_context.data.y, 10)
    assert result.metrics["ece"].value == pytest.approx(ece, abs=1e-12)
    assert result.metrics["mce"].value == pytest.approx(mce, abs=1e-12)
    low, high = result.metrics["ece"].ci
    assert 0 <= low <= high <= 1
    rows = {row[0]: row[1] for row in result.tables[0].rows}
    assert sum(rows.values()) == binary_context.data.n_rows


@pytest.mark.parametrize("n_bins", [2, 7, 15])
def test_multiclass_and_any_bin_count(audit_context, n_bins):
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([0.7, 0.7, 0.7, 0.7], size=400)
    y = rng.integers(0, 4, size=400)
    ctx = audit_context(y=y, proba=proba, class_names=["a", "b", "c", "d"])
    result = AUDIT.run(ctx, options(n_bins=n_bins, n_resamples=0))
    ece, mce = ece_by_hand(proba, y, n_bins)
    assert result.metrics["ece"].value == pytest.approx(ece, abs=1e-12)
    assert result.metrics["mce"].value == pytest.approx(mce, abs=1e-12)


def test_a_calibrated_model_passes(audit_context):
    # the true class is drawn from the predicted probabilities: calibrated by construction
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0, 1, size=20_000)
    y = (rng.uniform(0, 1, size=p1.size) < p1).astype(int)
    result = AUDIT.run(audit_context(y=y, proba=p1), options())
    assert result.status == "pass" and result.metrics["ece"].value < 0.02
    low, high = result.metrics["ece"].ci
    assert low < 0.02


def test_the_interval_is_seeded(audit_context):
    rng = np.random.default_rng(1)
    p1, y = rng.uniform(size=300), rng.integers(0, 2, size=300)
    first = AUDIT.run(audit_context(y=y, proba=p1, seed=5), options()).metrics["ece"].ci
    again = AUDIT.run(audit_context(y=y, proba=p1, seed=5), options()).metrics["ece"].ci
    other = AUDIT.run(audit_context(y=y, proba=p1, seed=6), options()).metrics["ece"].ci
    assert first == again and first != other


def test_too_few_rows_is_not_assessed(audit_context):
    result = AUDIT.run(audit_context(y=[0, 1, 1], proba=[0.1, 0.8, 0.3]), options())
    assert result.status == "not assessed" and "confidence.min_rows (50)" in result.summary


def test_bins_alone():
    bins = reliability(np.array([0.55, 0.95, 1.0]), np.array([True, False, True]), 2)
    assert bins.rows.tolist() == [0, 3] and bins.ece == pytest.approx(abs(2.5 - 2) / 3)


@pytest.mark.parametrize("option, value", [("n_bins", 1), ("max_ece", 1.5), ("n_resamples", -1)])
def test_options_out_of_range_are_refused(option, value):
    declared = next(o for o in CalibrationAudit.options if o.name == option)
    with pytest.raises(UsageError, match=f"confidence.{option}"):
        declared.convert("confidence", value)
