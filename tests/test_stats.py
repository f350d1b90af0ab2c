"""auditor.stats.metrics: every point estimate equals scikit-learn's; every interval is the one it claims.

scikit-learn is the independent oracle here (auditor never imports it). Interval tests
compare the vectorised machinery with slow, obvious reference loops, and check coverage
on simulated data whose true values are known.
"""

from __future__ import annotations

import math
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest
from sklearn import metrics as skm

from auditor.stats import bootstrap as bs
from auditor.stats import metrics as stats

SEEDS = [0, 1, 2]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_classification(
    k: int, n: int, seed: int, *, ties: bool = False, imbalance: float | None = None, never: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of a noisy model. ``ties`` rounds the probabilities so that
    many scores tie; ``imbalance`` is the total share of the classes other than 0;
    ``never`` is a class the model never predicts."""
    rng = np.random.default_rng(seed)
    shares = np.full(k, 1.0 / k) if imbalance is None else np.array([1 - imbalance] + [imbalance / (k - 1)] * (k - 1))
    y = rng.choice(k, size=n, p=shares)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    if never is not None:
        logits[:, never] -= 50.0
    proba = _softmax(logits)
    if ties:
        proba = np.round(proba, 1)
        proba[:, -1] = 1.0 - proba[:, :-1].sum(axis=1)
        proba = np.clip(proba, 0.0, 1.0)
        proba /= proba.sum(axis=1, keepdims=True)
    return y, proba


def sklearn_classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    k = proba.shape[1]
    label = proba.argmax(axis=1)
    ref = {
        "accuracy": skm.accuracy_score(y, label),
        "balanced_accuracy": skm.balanced_accuracy_score(y, label),
        "mcc": skm.matthews_corrcoef(y, label),
        "log_loss": skm.log_loss(y, proba, labels=list(range(k))),
        "baseline_accuracy": np.bincount(y).max() / y.size,
    }
    if k == 2:
        ref.update(
            precision=skm.precision_score(y, label, zero_division=0),
            recall=skm.recall_score(y, label, zero_division=0),
            f1=skm.f1_score(y, label, zero_division=0),
            roc_auc=skm.roc_auc_score(y, proba[:, 1]),
            average_precision=skm.average_precision_score(y, proba[:, 1]),
            brier=skm.brier_score_loss(y, proba[:, 1]),
        )
    else:
        for avg in ("macro", "weighted"):
            ref[f"precision_{avg}"] = skm.precision_score(y, label, average=avg, zero_division=0)
            ref[f"recall_{avg}"] = skm.recall_score(y, label, average=avg, zero_division=0)
            ref[f"f1_{avg}"] = skm.f1_score(y, label, average=avg, zero_division=0)
        ref["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        ref["average_precision"] = skm.average_precision_score(y, proba, average="macro")
    return ref


def assert_matches(ours: dict[str, stats.MetricValue], ref: dict[str, float]) -> None:
    assert set(ours) == set(ref)
    for key, expected in ref.items():
        assert ours[key].value == pytest.approx(expected, abs=1e-9), key


SCENARIOS = {
    "plain": {},
    "tied scores": {"ties": True},
    "imbalanced": {"imbalance": 0.08},
    "class never predicted": {"never": 1},
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_binary_point_estimates_equal_sklearn(scenario: str, seed: int) -> None:
    y, proba = make_classification(2, 600, seed, **SCENARIOS[scenario])
    assert_matches(stats.classification_metrics(y, proba, seed=seed, n_resamples=200), sklearn_classification(y, proba))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_multiclass_point_estimates_equal_sklearn(scenario: str, k: int, seed: int) -> None:
    y, proba = make_classification(k, 800, seed, **SCENARIOS[scenario])
    assert_matches(stats.classification_metrics(y, proba, seed=seed, n_resamples=200), sklearn_classification(y, proba))


def test_large_binary_point_estimates_equal_sklearn_on_the_analytic_path() -> None:
    y, proba = make_classification(2, 300_000, 7, ties=True)
    ours = stats.classification_metrics(y, proba, n_resamples=200)
    assert ours["roc_auc"].ci_method == "DeLong (fast midrank) normal interval"
    assert_matches(ours, sklearn_classification(y, proba))


@pytest.mark.parametrize("k", [2, 4])
def test_confusion_matrix_and_per_class_scores_equal_sklearn(k: int) -> None:
    y, proba = make_classification(k, 500, 3, never=k - 1)
    label = proba.argmax(axis=1)
    cm = stats.confusion_matrix(y, label, k)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, label, labels=list(range(k))))
    per_class = stats.per_class_scores(cm)
    p, r, f, s = skm.precision_recall_fscore_support(y, label, labels=list(range(k)), zero_division=0)
    np.testing.assert_allclose(per_class["precision"], p, atol=1e-12)
    np.testing.assert_allclose(per_class["recall"], r, atol=1e-12)
    np.testing.assert_allclose(per_class["f1"], f, atol=1e-12)
    np.testing.assert_array_equal(per_class["support"], s)
    assert per_class["precision"][k - 1] == 0.0  # never predicted: zero_division=0


def test_explicit_labels_are_used_instead_of_argmax() -> None:
    y, proba = make_classification(2, 400, 4)
    label = (proba[:, 1] > 0.3).astype(np.int64)
    ours = stats.classification_metrics(y, proba, label, n_resamples=200)
    assert ours["f1"].value == pytest.approx(skm.f1_score(y, label))
    assert ours["mcc"].value == pytest.approx(skm.matthews_corrcoef(y, label))


def test_log_loss_clips_certain_wrong_predictions_like_sklearn() -> None:
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    ours = stats.classification_metrics(y, proba, n_resamples=200)
    assert ours["log_loss"].value == pytest.approx(skm.log_loss(y, proba), abs=1e-12)
    assert math.isfinite(ours["log_loss"].value)


def test_a_single_class_in_the_target_leaves_roc_auc_undefined_with_a_reason() -> None:
    y = np.ones(50, dtype=np.int64)
    proba = _softmax(np.random.default_rng(0).normal(size=(50, 2)))
    ours = stats.classification_metrics(y, proba, class_names=["no", "yes"], n_resamples=200)
    assert ours["roc_auc"].value is None and ours["roc_auc"].ci is None
    assert "only one class" in ours["roc_auc"].note
    assert ours["average_precision"].value == pytest.approx(1.0)  # every row is positive
    assert ours["accuracy"].value == pytest.approx(skm.accuracy_score(y, proba.argmax(axis=1)))

    ours = stats.classification_metrics(1 - y, proba, class_names=["no", "yes"], n_resamples=200)
    assert ours["average_precision"].value is None
    assert "'yes'" in ours["average_precision"].note


def test_a_multiclass_class_absent_from_the_target_leaves_ovr_metrics_undefined() -> None:
    y, proba = make_classification(3, 300, 5)
    y[y == 2] = 0
    ours = stats.classification_metrics(y, proba, class_names=["a", "b", "c"], n_resamples=200)
    for key in ("roc_auc", "average_precision"):
        assert ours[key].value is None
        assert "'c'" in ours[key].note
    assert ours["f1_macro"].value == pytest.approx(skm.f1_score(y, proba.argmax(axis=1), average="macro", zero_division=0))


def test_bad_inputs_are_rejected() -> None:
    y, proba = make_classification(3, 20, 0)
    with pytest.raises(ValueError):
        stats.classification_metrics(y + 1, proba)
    with pytest.raises(ValueError):
        stats.classification_metrics(y[:10], proba)
    with pytest.raises(ValueError):
        stats.regression_metrics(np.zeros(3), np.zeros(4))


def make_regression(n: int, seed: int, *, zero: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 10.0, size=n) + 1.0
    if zero:
        y[3] = 0.0
    pred = y + rng.standard_t(3, size=n) * 3.0
    return y, pred


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [7, 400, 150_000])
def test_regression_point_estimates_equal_sklearn(n: int, seed: int) -> None:
    y, pred = make_regression(n, seed)
    ours = stats.regression_metrics(y, pred, seed=seed, n_resamples=200)
    ref = {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "median_absolute_error": skm.median_absolute_error(y, pred),
        "max_error": skm.max_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    assert set(ours) == set(ref)
    for key, expected in ref.items():
        assert ours[key].value == pytest.approx(expected, rel=1e-12), key


def test_undefined_regression_metrics_say_why() -> None:
    y, pred = make_regression(100, 0, zero=True)
    ours = stats.regression_metrics(y, pred, n_resamples=200)
    assert ours["mape"].value is None and "zeros" in ours["mape"].note
    assert ours["max_error"].ci is None and "maximum" in ours["max_error"].note
    constant = stats.regression_metrics(np.full(10, 3.0), np.arange(10.0), n_resamples=200)
    assert constant["r2"].value is None and "constant" in constant["r2"].note


# ---------------------------------------------------------------- intervals


def test_multinomial_confusion_bootstrap_matches_a_naive_row_bootstrap() -> None:
    """Resampling rows only changes confusion-cell counts, which are Multinomial(n, shares):
    the two bootstrap distributions agree up to Monte-Carlo error."""
    y, proba = make_classification(3, 300, 11)
    label = proba.argmax(axis=1)
    cm = stats.confusion_matrix(y, label, 3)
    fast = bs.confusion_kernel(bs.confusion_resamples(cm, 4000, np.random.default_rng(1)), binary=False)
    rng = np.random.default_rng(2)
    naive: dict[str, list[float]] = {"accuracy": [], "balanced_accuracy": [], "f1_macro": [], "mcc": []}
    for _ in range(600):
        i = rng.integers(0, y.size, y.size)
        naive["accuracy"].append(skm.accuracy_score(y[i], label[i]))
        naive["balanced_accuracy"].append(skm.balanced_accuracy_score(y[i], label[i]))
        naive["f1_macro"].append(skm.f1_score(y[i], label[i], average="macro", zero_division=0))
        naive["mcc"].append(skm.matthews_corrcoef(y[i], label[i]))
    for key, values in naive.items():
        ref = np.array(values)
        assert fast[key].mean() == pytest.approx(ref.mean(), abs=0.004), key
        assert fast[key].std() == pytest.approx(ref.std(), rel=0.1), key
        np.testing.assert_allclose(np.quantile(fast[key], [0.025, 0.975]), np.quantile(ref, [0.025, 0.975]), atol=0.012)


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_ranking_bootstrap_equals_a_loop_of_sklearn_on_the_same_resamples(ties: bool) -> None:
    y, proba = make_classification(2, 150, 12, ties=ties)
    positive, score = y == 1, proba[:, 1]
    ranked = bs.RankedScores.build(positive, score)
    batch = bs.chunk_size(y.size)
    resample = bs.CellResampler(ranked.cell, ranked.n_cells, batch)
    kernel = bs.RankingKernel(ranked, batch)
    for idx in bs.index_chunks(y.size, 300, np.random.default_rng(3)):
        counts = resample(idx)
        auc, ap = kernel(counts[:, ranked.neg.size :], counts[:, : ranked.neg.size])
        for row, i in enumerate(idx):
            assert auc[row] == pytest.approx(skm.roc_auc_score(positive[i], score[i]), abs=1e-12)
            assert ap[row] == pytest.approx(skm.average_precision_score(positive[i], score[i]), abs=1e-12)


def slow_delong_variance(positive: np.ndarray, score: np.ndarray) -> float:
    """DeLong, DeLong & Clarke-Pearson (1988), straight from the definition: O(m * n)."""
    x, yy = score[positive], score[~positive]
    psi = (x[:, None] > yy[None, :]) + 0.5 * (x[:, None] == yy[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.var(ddof=1) / x.size + v01.var(ddof=1) / yy.size


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_variance_equals_the_definition(ties: bool) -> None:
    y, proba = make_classification(2, 120, 13, ties=ties)
    ranked = bs.RankedScores.build(y == 1, proba[:, 1])
    assert bs.delong_variance(ranked) == pytest.approx(slow_delong_variance(y == 1, proba[:, 1]), rel=1e-10)


def test_placement_deviations_reproduce_delong_up_to_the_degrees_of_freedom() -> None:
    y, proba = make_classification(2, 200, 14, ties=True)
    ranked = bs.RankedScores.build(y == 1, proba[:, 1])
    d = bs.placement_deviations(ranked)
    m, n = ranked.n_pos, ranked.n_neg
    assert d.sum() == pytest.approx(0.0, abs=1e-12)
    x = bs.delong_variance(ranked)
    v10_part = (d[y == 1] ** 2).sum() * m / (m - 1)
    v01_part = (d[y == 0] ** 2).sum() * n / (n - 1)
    assert v10_part + v01_part == pytest.approx(x, rel=1e-10)


def test_ap_deviations_are_the_derivatives_of_sklearns_average_precision() -> None:
    """The delta method's per-row terms, checked against finite differences of
    ``average_precision_score`` with sample weights (ties included)."""
    y, proba = make_classification(2, 60, 3, ties=True)
    d = bs.ap_deviations(bs.RankedScores.build(y == 1, proba[:, 1]))
    base = skm.average_precision_score(y, proba[:, 1])
    step = 1e-6
    for i in range(y.size):
        w = np.ones(y.size)
        w[i] += step
        numeric = (skm.average_precision_score(y, proba[:, 1], sample_weight=w) - base) / step
        assert d[i] == pytest.approx(numeric, abs=1e-7), i
    assert d.sum() == pytest.approx(0.0, abs=1e-12)


def test_median_interval_uses_the_binomial_order_statistics() -> None:
    values = np.arange(100.0)
    low, high = bs.median_interval(values, 0.95)
    # n = 100: ranks 40 and 61 (1-based), the textbook 95% interval for the median
    assert (low, high) == (39.0, 60.0)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_analytic_and_bootstrap_intervals_agree_at_50k_rows(kind: str) -> None:
    n = 50_000
    if kind == "regression":
        y, pred = make_regression(n, 21)
        boot = stats.regression_metrics(y, pred, seed=1, bootstrap_max_rows=n, bootstrap_max_work=10**9)
        analytic = stats.regression_metrics(y, pred, seed=1, bootstrap_max_rows=0)
        keys = ["mae", "mse", "rmse", "r2", "median_absolute_error", "mape"]
    else:
        y, proba = make_classification(2 if kind == "binary" else 3, n, 21)
        boot = stats.classification_metrics(y, proba, seed=1, bootstrap_max_rows=3 * n, bootstrap_max_work=10**9)
        analytic = stats.classification_metrics(y, proba, seed=1, bootstrap_max_rows=0)
        keys = ["roc_auc", "average_precision", "log_loss"] + (["brier"] if kind == "binary" else [])
    for key in keys:
        assert boot[key].ci_method.startswith("percentile bootstrap"), key
        assert not analytic[key].ci_method.startswith("percentile bootstrap"), key
        (bl, bh), (al, ah) = boot[key].ci, analytic[key].ci
        width = bh - bl
        assert ah - al == pytest.approx(width, rel=0.2), key
        assert (al + ah) / 2 == pytest.approx((bl + bh) / 2, abs=0.25 * width), key


@pytest.mark.parametrize(("n", "resamples", "bootstrapped"), [
    (20_000, 1000, True), (40_000, 1000, False), (40_000, 200, True), (100_000, 200, True), (200_000, 200, False)])
def test_the_interval_method_is_picked_by_the_bootstrap_s_cost_not_by_a_row_count(n, resamples, bootstrapped):
    """Rows x ranked columns x resamples at most bootstrap_max_work (30M): bootstrap; beyond, analytic."""
    y, proba = make_classification(2, n, 5)
    values = stats.classification_metrics(y, proba, seed=1, n_resamples=resamples)
    assert values["roc_auc"].ci_method.startswith("percentile bootstrap") is bootstrapped
    y, pred = make_regression(n, 5)
    values = stats.regression_metrics(y, pred, seed=1, n_resamples=resamples)
    assert values["mae"].ci_method.startswith("percentile bootstrap") is bootstrapped


def _covered(ci: tuple[float, float] | None, truth: float) -> bool:
    return ci is not None and ci[0] <= truth <= ci[1]


def test_intervals_cover_known_truths_about_95_percent_of_the_time() -> None:
    """Simulated data with a known true ROC-AUC (binormal scores: Phi(d / sqrt 2)) and a
    known true accuracy (each prediction right with probability 0.8)."""
    true_auc = NormalDist().cdf(1.0 / math.sqrt(2.0))
    hits = {"accuracy": 0, "roc_auc bootstrap": 0, "roc_auc DeLong": 0}
    sims, n = 200, 400
    rng = np.random.default_rng(2024)
    for sim in range(sims):
        y = (rng.random(n) < 0.4).astype(np.int64)
        score = rng.normal(size=n) + 1.0 * y
        p1 = 1.0 / (1.0 + np.exp(-score))
        proba = np.stack([1.0 - p1, p1], axis=1)
        label = np.where(rng.random(n) < 0.8, y, 1 - y)
        boot = stats.classification_metrics(y, proba, label, seed=sim, n_resamples=400)
        analytic = stats.classification_metrics(y, proba, label, seed=sim, n_resamples=400, bootstrap_max_rows=0)
        hits["accuracy"] += _covered(boot["accuracy"].ci, 0.8)
        hits["roc_auc bootstrap"] += _covered(boot["roc_auc"].ci, true_auc)
        hits["roc_auc DeLong"] += _covered(analytic["roc_auc"].ci, true_auc)
    for name, count in hits.items():
        assert 0.90 <= count / sims <= 0.98, (name, count / sims)


def test_regression_intervals_cover_known_truths() -> None:
    """Gaussian errors with sd 2: true MAE = 2 sqrt(2 / pi), true RMSE = 2."""
    truths = {"mae": 2.0 * math.sqrt(2.0 / math.pi), "rmse": 2.0, "median_absolute_error": 2.0 * NormalDist().inv_cdf(0.75)}
    hits = {f"{k} {path}": 0 for k in truths for path in ("bootstrap", "analytic")}
    sims, n = 200, 300
    rng = np.random.default_rng(77)
    for sim in range(sims):
        y = rng.normal(size=n) * 5.0
        pred = y + rng.normal(size=n) * 2.0
        boot = stats.regression_metrics(y, pred, seed=sim, n_resamples=400)
        analytic = stats.regression_metrics(y, pred, seed=sim, bootstrap_max_rows=0)
        for key, truth in truths.items():
            hits[f"{key} bootstrap"] += _covered(boot[key].ci, truth)
            hits[f"{key} analytic"] += _covered(analytic[key].ci, truth)
    for name, count in hits.items():
        assert 0.90 <= count / sims <= 0.98, (name, count / sims)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_same_seed_same_intervals_and_another_seed_other_intervals(kind: str) -> None:
    if kind == "regression":
        y, pred = make_regression(500, 0)
        run = lambda seed: stats.regression_metrics(y, pred, seed=seed, n_resamples=300)  # noqa: E731
    else:
        y, proba = make_classification(2 if kind == "binary" else 4, 500, 0)
        run = lambda seed: stats.classification_metrics(y, proba, seed=seed, n_resamples=300)  # noqa: E731
    first, again, other = run(5), run(5), run(6)
    assert first == again
    changed = [k for k in first if first[k].ci is not None and first[k].ci != other[k].ci]
    assert changed == [k for k in first if first[k].ci is not None]
    assert all(first[k].ci_method.endswith("seed 5") for k in first if first[k].ci_method and "bootstrap" in first[k].ci_method)


def test_intervals_do_not_depend_on_the_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    y, proba = make_classification(3, 2000, 8)
    yr, pred = make_regression(2000, 8)
    runs = []
    for cpus in ({0}, {0, 1, 2, 3}):
        monkeypatch.setattr(bs.os, "sched_getaffinity", lambda _pid, cpus=cpus: cpus, raising=False)
        runs.append((stats.classification_metrics(y, proba, n_resamples=300), stats.regression_metrics(yr, pred, n_resamples=300)))
    assert runs[0] == runs[1]


def test_intervals_follow_the_confidence_level() -> None:
    y, proba = make_classification(2, 800, 9)
    narrow = stats.classification_metrics(y, proba, confidence=0.8, n_resamples=500)
    wide = stats.classification_metrics(y, proba, confidence=0.99, n_resamples=500)
    for key in ("accuracy", "roc_auc", "log_loss"):
        n_lo, n_hi = narrow[key].ci
        w_lo, w_hi = wide[key].ci
        assert w_lo < n_lo <= narrow[key].value <= n_hi < w_hi, key


# ---------------------------------------------------------------- curves


@pytest.mark.parametrize("ties", [False, True])
def test_curves_equal_sklearn_when_small(ties: bool) -> None:
    y, proba = make_classification(2, 150, 15, ties=ties)
    fpr, tpr = stats.roc_curve_points(y == 1, proba[:, 1])
    ref_fpr, ref_tpr, _ = skm.roc_curve(y, proba[:, 1], drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    recall, precision = stats.pr_curve_points(y == 1, proba[:, 1])
    ref_precision, ref_recall, _ = skm.precision_recall_curve(y, proba[:, 1])
    np.testing.assert_allclose(recall, ref_recall[::-1], atol=1e-12)
    np.testing.assert_allclose(precision, ref_precision[::-1], atol=1e-12)


def test_curves_are_downsampled_with_their_endpoints() -> None:
    y, proba = make_classification(2, 20_000, 16)
    fpr, tpr = stats.roc_curve_points(y == 1, proba[:, 1], max_points=200)
    assert len(fpr) <= 200 and (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    recall, precision = stats.pr_curve_points(y == 1, proba[:, 1], max_points=200)
    assert len(recall) <= 200 and (recall[0], precision[0]) == (0.0, 1.0) and recall[-1] == 1.0
    assert precision[-1] == pytest.approx(np.mean(y == 1))
    assert stats.roc_curve_points(np.zeros(5, bool), np.arange(5.0)) is None
    assert stats.pr_curve_points(np.zeros(5, bool), np.arange(5.0)) is None


def test_auditor_stats_imports_neither_sklearn_nor_scipy() -> None:
    code = "import sys, auditor.stats.metrics; sys.exit(any(m in sys.modules for m in ('sklearn', 'scipy')))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
