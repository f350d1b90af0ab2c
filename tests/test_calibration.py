"""The calibration audit: every figure against an independent computation (scikit-learn's
calibration_curve and brier_score_loss, the ECE's formula, F1 and ROC from scikit-learn), the
debiased ECE's bias by simulation, and the audit end to end with a group made miscalibrated."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, f1_score, roc_curve

from auditor.stats import calibration as cal
from auditor.stats import thresholds as th
from auditor_plugins.calibration.intervals import brier_intervals, classwise_interval, intervals, reaching_zero
from auditor_plugins.calibration.threshold_intervals import threshold_intervals


def _data(n: int, seed: int, distort: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities p and events drawn with probability p ** distort (1: calibrated)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 3, n)
    return p, (rng.random(n) < p ** distort).astype(np.float64)


def test_the_ece_equals_scikit_learns_calibration_curve_weighted_by_bin():
    p, y = _data(20_000, 0, distort=1.6)
    found = cal.binned(p, y, cal.equal_width_bins(p), cal.N_BINS)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=cal.N_BINS, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, cal.N_BINS + 1))[0]
    weights = counts[counts > 0] / p.size
    assert cal.ece(found) == pytest.approx(np.sum(weights * np.abs(prob_true - prob_pred)), abs=1e-12)
    assert cal.mce(found) == pytest.approx(np.max(np.abs(prob_true - prob_pred)), abs=1e-12)
    quantile_true, quantile_pred = calibration_curve(y, p, n_bins=cal.N_BINS, strategy="quantile")
    mass = cal.binned(p, y, cal.equal_mass_bins(p), cal.N_BINS)
    assert cal.ece(mass) == pytest.approx(np.mean(np.abs(quantile_true - quantile_pred)), abs=2e-3)


@pytest.mark.parametrize("own_loop", [True, False], ids=["PAVA loop", "convex minorant"])
def test_the_brier_decomposition_sums_to_scikit_learns_brier_score_with_its_isotonic_fit(own_loop, monkeypatch):
    monkeypatch.setattr(cal, "SMALL_PAVA", 10**9 if own_loop else 0)
    p, y = _data(5_000, 1, distort=1.4)
    p[::7] = np.round(p[::7], 2)  # ties pooled first
    recalibrated = cal.isotonic(p, y)
    expected = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y).predict(p)
    assert np.allclose(recalibrated, expected, atol=1e-12)
    parts = cal.decomposition(p, y, recalibrated)
    assert parts.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert parts.mcb - parts.dsc + parts.unc == pytest.approx(parts.brier, abs=1e-12)
    assert parts.mcb > 0 and parts.dsc > 0 and parts.unc == pytest.approx(y.mean() * (1 - y.mean()))


def test_the_debiased_ece_against_the_truth_of_known_calibration_curves():
    """Events drawn with probability p ** d: the binned ECE's true value is taken from 10^6 rows.
    Over 200 seeded samples of 1,000 rows, Kumar et al.'s debiased ECE is within 0.005 of it on
    average where the curve is off the diagonal (d = 1.3, 1.6); on calibrated data (d = 1, truth
    0) it removes less than half of the plug-in estimate's bias (what the L1 normal
    approximation gives, stated in the README), so both are only compared there."""
    for distort, bound in ((1.0, None), (1.3, 0.005), (1.6, 0.005)):
        p, y = _data(1_000_000, 9, distort)
        truth = cal.ece(cal.binned(p, y, cal.equal_mass_bins(p), cal.N_BINS))
        plug_in, debiased = [], []
        for seed in range(200):
            p, y = _data(1_000, 100 + seed, distort)
            mass = cal.binned(p, y, cal.equal_mass_bins(p), cal.N_BINS)
            plug_in.append(cal.ece(mass))
            debiased.append(cal.debiased_ece(mass))
        if bound is None:
            assert 0.01 < np.mean(debiased) - truth < np.mean(plug_in) - truth
        else:
            assert abs(np.mean(debiased) - truth) <= bound


def _binned_truth(curve) -> float:
    """The population's ECE over the 15 equal-mass bins of Beta(2, 3), by integration."""
    from scipy import integrate, stats

    beta = stats.beta(2, 3)
    edges = beta.ppf(np.linspace(0, 1, cal.N_BINS + 1))
    return sum(abs(integrate.quad(lambda t: (curve(t) - t) * beta.pdf(t), a, b)[0]) for a, b in zip(edges, edges[1:]))


def test_the_calibration_test_is_its_formula_with_scipys_chi_squared_tail():
    from scipy import stats

    p, y = _data(2_000, 4, distort=1.1)
    bins = cal.equal_mass_bins(p)
    found = cal.calibration_test(p, y, bins, cal.N_BINS)
    by_bin = [(y[bins == b].sum() - p[bins == b].sum()) ** 2 / np.sum(p[bins == b] * (1 - p[bins == b]))
              for b in range(cal.N_BINS)]
    assert found.statistic == pytest.approx(sum(by_bin), rel=1e-12) and found.dof == cal.N_BINS
    assert found.p_value == pytest.approx(stats.chi2.sf(found.statistic, cal.N_BINS), rel=1e-9)
    for dof in (1, 2, 7, 15, 30):
        for x in (0.1, 3.0, 14.0, 60.0):
            assert cal.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_the_calibration_test_rejects_calibrated_data_at_its_level():
    rejected = [cal.calibration_test(p, y, cal.equal_mass_bins(p), cal.N_BINS).p_value <= 0.05
                for p, y in (_data(500, 300 + seed) for seed in range(400))]
    assert 0.025 <= np.mean(rejected) <= 0.08


@pytest.mark.parametrize("distort", [1.0, 1.15, 1.3])
def test_the_debiased_eces_interval_covers_the_true_error(distort):
    """The suite's short version of benchmarks/bench_calibration.py (500 runs, in its README):
    over 120 seeded samples of 1,000 rows, the audit's 95% interval of the debiased ECE covers
    the population's binned ECE at least 90% of the time: on calibrated data (truth 0) too,
    where the interval reaches 0 when the calibration test does not reject."""
    truth = _binned_truth(lambda t: t ** distort)
    covered = 0
    for seed in range(120):
        p, y = _data(1_000, 2_000 + seed, distort)
        ranked, bounds = cal.rank(p, y), cal.mass_bounds(p.size)
        found = intervals(ranked, bounds, np.random.default_rng(seed), 400, 0.95)
        low, high = reaching_zero(found.ece_debiased, cal.ranked_test(ranked, bounds), 0.95)
        covered += low <= truth <= high
    assert covered / 120 >= 0.9


@pytest.mark.parametrize("size", [1, 2, 3, 50, 3_000])
def test_the_convex_minorant_is_the_pool_adjacent_violators_fit(size):
    rng = np.random.default_rng(size)
    for values in (rng.random(size), np.sort(rng.random(size))[::-1], np.full(size, 0.3), np.sort(rng.random(size))):
        weights = rng.integers(1, 9, size).astype(np.float64)
        assert np.allclose(cal._minorant(values, weights), cal._pava(values, weights), atol=1e-12)


def test_the_ranked_rows_give_the_row_level_figures():
    """The audit reads every figure off one sort (prefix sums over the sorted rows); the same
    figures from the rows themselves, bin by bin."""
    p, y = _data(5_000, 6, distort=1.2)
    ranked = cal.rank(p, y)
    for rows, by_rank in ((cal.equal_width_bins(p), ranked.runs(cal.width_bounds(ranked))),
                          (cal.equal_mass_bins(p), ranked.runs(cal.mass_bounds(p.size)))):
        by_row = cal.binned(p, y, rows, cal.N_BINS)
        assert np.allclose(by_rank.count, by_row.count) and np.allclose(by_rank.mean_y, by_row.mean_y, atol=1e-12)
        assert np.allclose(by_rank.mean_p, by_row.mean_p, atol=1e-12)
    test = cal.ranked_test(ranked, cal.mass_bounds(p.size))
    assert test.statistic == pytest.approx(cal.calibration_test(p, y, cal.equal_mass_bins(p), cal.N_BINS).statistic)
    parts, values, fitted = cal.ranked_decomposition(ranked)
    row_level = cal.decomposition(p, y, cal.isotonic(p, y))
    assert parts.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    for key in ("mcb", "dsc", "unc"):
        assert getattr(parts, key) == pytest.approx(getattr(row_level, key), abs=1e-12)
    assert np.allclose(np.interp(p, values, fitted), cal.isotonic(p, y))


def test_a_bin_edge_inside_tied_probabilities_takes_its_share_of_their_events():
    """Ties: a risk scale's few values, 15 equal-mass bins. A bin edge inside a run of tied
    rows gives each side the run's events in proportion (within one event), not the file's
    order; the equal-width bins, the decomposition and the sweep never split a run."""
    rng = np.random.default_rng(16)
    p = rng.choice([0.1, 0.3, 0.55, 0.8], 3_001)
    y = (rng.random(p.size) < p).astype(np.float64)
    ranked = cal.rank(p, y)
    bounds = cal.mass_bounds(p.size)
    events = ranked.runs(bounds).mean_y * np.diff(bounds)
    value_of_row = np.sort(p)
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        share = 0.0
        for v in np.unique(value_of_row[a:b]):
            run = value_of_row == v
            share += y[p == v].sum() * np.sum(run[a:b]) / run.sum()
        assert abs(events[k] - share) <= 1.0, k
    width = ranked.runs(cal.width_bounds(ranked))
    by_row = cal.binned(p, y, cal.equal_width_bins(p), cal.N_BINS)
    assert np.allclose(width.mean_y[width.count > 0], by_row.mean_y[by_row.count > 0], atol=1e-12)


def test_the_ranked_figures_do_not_depend_on_the_order_of_the_rows():
    p, y = _data(4_000, 17, distort=1.3)
    p[::2] = np.round(p[::2], 2)
    shuffled = np.random.default_rng(0).permutation(p.size)
    one, other = cal.rank(p, y), cal.rank(p[shuffled], y[shuffled])
    for field in ("p", "cum_p", "cum_y", "cum_py", "cum_var", "starts"):
        assert np.array_equal(getattr(one, field), getattr(other, field)), field


def test_the_mean_class_wise_eces_interval_equals_a_joint_row_bootstrap():
    """The classes share rows: the rows are redrawn once for all classes. Against 1,000 plain
    redraws of the rows, each class's ECE recomputed from scratch."""
    rng = np.random.default_rng(19)
    proba = rng.dirichlet([2, 2, 2], 400)
    sharpened = proba**1.5 / (proba**1.5).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in sharpened])

    def mean_ece(p, labels):
        return np.mean([cal.ece(cal.binned(p[:, c], (labels == c).astype(float), cal.equal_width_bins(p[:, c]),
                                           cal.N_BINS)) for c in range(3)])

    found = classwise_interval(proba, y, np.random.default_rng(0), 1_000, 0.95)
    loop = np.random.default_rng(1)
    redrawn = [mean_ece(proba[rows], y[rows]) for rows in (loop.integers(0, 400, 400) for _ in range(1_000))]
    assert found == pytest.approx(tuple(np.quantile(redrawn, [0.025, 0.975])), abs=0.006)
    assert found[0] < mean_ece(proba, y) < found[1]


def test_the_consistency_band_is_corps_redraw_of_every_row_and_refit():
    """CORP's consistency band, by its definition: each row's event redrawn from its own
    probability, scikit-learn's isotonic regression refitted on the rows, pointwise 2.5% and
    97.5% quantiles. With 19 distinct probabilities every run is one of them, so the band's
    Binomial draw per run is that same redraw, summed."""
    rng = np.random.default_rng(8)
    n = 2_000
    p = rng.choice(np.linspace(0.05, 0.95, 19), n)
    y = (rng.random(n) < p).astype(np.float64)
    band = cal.consistency_band(cal.rank(p, y), np.random.default_rng(0), 0.95, replicates=1_000)
    values = np.unique(p)
    assert np.allclose(band.x, values)
    redraws = np.random.default_rng(1)
    refits = []
    for _ in range(1_000):
        events = (redraws.random(n) < p).astype(np.float64)
        fit = IsotonicRegression(y_min=0, y_max=1).fit(p, events)
        refits.append(fit.predict(values))
    low, high = np.quantile(refits, [0.025, 0.975], axis=0)
    assert np.allclose(band.low, low, atol=0.025) and np.allclose(band.high, high, atol=0.025)
    assert np.allclose(band.fitted, IsotonicRegression(y_min=0, y_max=1).fit(p, y).predict(values))


def test_the_consistency_band_holds_calibrated_curves_and_not_miscalibrated_ones():
    calibrated = cal.consistency_band(cal.rank(*_data(5_000, 12)), np.random.default_rng(0), 0.95)
    assert calibrated.outside() < 0.25
    off = cal.consistency_band(cal.rank(*_data(5_000, 12, distort=1.6)), np.random.default_rng(0), 0.95)
    assert off.outside() > 0.6


def test_the_brier_terms_intervals_equal_a_row_bootstrap_of_the_decomposition():
    """The cell bootstrap (50 runs x label, the isotonic curve refitted on runs, centred)
    against the plain one: 1,000 redraws of the rows, each decomposed by scikit-learn-equal
    isotonic regression on its rows."""
    p, y = _data(2_000, 14, distort=1.3)
    ranked = cal.rank(p, y)
    estimate, _, _ = cal.ranked_decomposition(ranked)
    found = brier_intervals(ranked, estimate, np.random.default_rng(0), 1_000, 0.95)
    loop, terms = np.random.default_rng(1), []
    for _ in range(1_000):
        rows = loop.integers(0, p.size, p.size)
        parts = cal.decomposition(p[rows], y[rows], cal.isotonic(p[rows], y[rows]))
        terms.append((parts.mcb, parts.dsc, parts.unc))
    low, high = np.quantile(terms, [0.025, 0.975], axis=0)
    for k, key in enumerate(("mcb", "dsc", "unc")):
        assert getattr(found, key) == pytest.approx((low[k], high[k]), abs=0.0015), key
        assert getattr(found, key)[0] < getattr(estimate, key) < getattr(found, key)[1]


def test_the_debiased_ece_is_kumar_et_als_redraws_in_the_limit():
    """Their estimator averages random redraws of the bins' mean labels; the exact expectation
    used here is what 200,000 redraws converge to."""
    p, y = _data(2_000, 5, 1.2)
    mass = cal.binned(p, y, cal.equal_mass_bins(p), cal.N_BINS)
    rng = np.random.default_rng(0)
    weight = mass.count / mass.count.sum()
    scale = np.sqrt(mass.mean_y * (1 - mass.mean_y) / mass.count)
    redrawn = rng.normal(mass.mean_y, scale, size=(200_000, mass.count.size))
    by_redraws = 2 * cal.ece(mass) - float(np.mean(np.abs(redrawn - mass.mean_p) @ weight))
    assert cal.debiased_ece(mass) == pytest.approx(by_redraws, abs=2e-4)


def test_threshold_rates_equal_scikit_learns_at_the_chosen_thresholds():
    p, y = _data(3_000, 2, distort=1.2)
    p = np.round(p, 3)  # ties
    s = th.sweep(p, y)
    rates = s.rates()
    i = th.best(rates["f1"])
    assert rates["f1"][i] == pytest.approx(f1_score(y, p >= s.thresholds[i]), abs=1e-12)
    assert rates["f1"][i] == pytest.approx(max(f1_score(y, p >= t) for t in np.unique(p)), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, p)
    j = th.best(rates["tpr"] - rates["fpr"])
    assert rates["tpr"][j] - rates["fpr"][j] == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    half = th.at(s, 0.5)
    assert rates["recall"][half] == pytest.approx(np.mean(p[y == 1] >= 0.5))
    k = th.reaching(rates["recall"], 0.9, highest=True)
    assert rates["recall"][k] >= 0.9 > rates["recall"][k - 1]


def test_threshold_intervals_equal_a_row_bootstrap_that_chooses_again_each_time():
    """Fewer distinct probabilities than runs: the cell bootstrap is a row bootstrap. Against a
    plain loop over 2,000 redraws of the rows, each choosing its threshold by brute force."""
    rng = np.random.default_rng(5)
    n = 400
    p = np.round(rng.beta(2, 3, n), 2)
    y = (rng.random(n) < p ** 1.2).astype(np.float64)
    found = threshold_intervals(th.sweep(p, y), (1.0, 5.0), {"recall": 0.9}, np.random.default_rng(0), 2_000, 0.95)
    best_f1, best_t, least_cost, cost_t, at_recall = [], [], [], [], []
    loop = np.random.default_rng(1)
    for _ in range(2_000):
        rows = loop.integers(0, n, n)
        pp, yy = p[rows], y[rows]
        candidates = np.unique(pp)[::-1]
        tp = np.array([yy[pp >= t].sum() for t in candidates])
        fp = np.array([(pp >= t).sum() for t in candidates]) - tp
        f1 = 2 * tp / (tp + fp + yy.sum())
        if not best_f1:  # the formula is scikit-learn's F1
            assert np.allclose(f1, [f1_score(yy, pp >= t) for t in candidates])
        best_f1.append(f1.max())
        best_t.append(candidates[f1.argmax()])
        cost = (fp + 5 * (yy.sum() - tp)) / n
        least_cost.append(cost.min())
        cost_t.append(candidates[cost.argmin()])
        first = np.flatnonzero(tp / yy.sum() >= 0.9)[0]
        at_recall.append(tp[first] / (tp[first] + fp[first]))

    def q(values):
        return np.quantile(values, [0.025, 0.975])

    assert np.allclose(found["f1"].value, q(best_f1), atol=0.012)
    assert np.allclose(found["f1"].threshold, q(best_t), atol=0.021)
    assert np.allclose(found["cost"].value, q(least_cost), atol=0.012)
    assert np.allclose(found["cost"].threshold, q(cost_t), atol=0.021)
    assert np.allclose(found["recall"].value, q(at_recall), atol=0.015)


def _save_logistic(path) -> None:
    """The logistic model sigmoid(1.5 x0 − x1) as TorchScript with its auditor.json."""
    import json

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.5, -1.0]]))
        model.bias.zero_()
    meta = {"feature_names": ["x0", "x1"], "class_names": ["0", "1"], "target": "target"}
    torch.jit.save(torch.jit.script(model), str(path), _extra_files={"auditor.json": json.dumps(meta)})


def test_the_audit_finds_the_group_whose_probabilities_mean_something_else(tmp_path):
    """A logistic model scored on two sites: site b's events happen far less often than its
    probabilities say. The audit's figures equal the formulas', and site b is the finding."""


    rng = np.random.default_rng(3)
    n = 4_000
    x = rng.normal(size=(n, 2)).astype(np.float32)
    site = np.where(rng.random(n) < 0.5, "a", "b")
    logit = 1.5 * x[:, 0] - x[:, 1]
    p = 1 / (1 + np.exp(-logit))
    event = rng.random(n) < np.where(site == "a", p, p ** 3)
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "site": site, "target": event.astype(int)})
    frame.to_csv(tmp_path / "test.csv", index=False)
    _save_logistic(tmp_path / "model.pt")
    result = invoke(tmp_path / "model.pt", "--data", tmp_path / "test.csv", "--sensitive", "site", "--audits",
                    "calibration", "--out", tmp_path / "out", "--format", "json,html", "-q", "--fail-on", "never",
                    "-o", "calibration.costs=fp:1,fn:5", "-o", "calibration.target_recall=0.9")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    scores = p.astype(np.float32).astype(np.float64)
    prob_true, prob_pred = calibration_curve(event, scores, n_bins=15)
    counts = np.histogram(scores, bins=np.linspace(0, 1, 16))[0]
    expected = np.sum(counts[counts > 0] / n * np.abs(prob_true - prob_pred))
    assert audit["metrics"]["ece"]["value"] == pytest.approx(expected, abs=1e-4)
    low, high = audit["metrics"]["ece"]["ci"]
    assert low < audit["metrics"]["ece"]["value"] < high
    groups = {row[1]: row for row in next(t for t in audit["tables"] if t["name"] == "groups")["rows"]}
    assert groups["a"][6] < 0.05 < groups["b"][5]  # debiased ECE's interval: a's high, b's low
    codes = [f["code"] for f in audit["findings"]]
    assert "group-miscalibrated" in codes and "site = b" in next(
        f["message"] for f in audit["findings"] if f["code"] == "group-miscalibrated")
    goals = {row[0]: row for row in next(t for t in audit["tables"] if t["name"] == "thresholds")["rows"]}
    cost = goals["least expected cost (fp 1, fn 5)"]
    assert cost[1] < goals["largest F1"][1]  # false negatives cost more: a lower threshold
    assert goals["recall at least 0.9"][3] >= 0.9
    spread = {row[0]: row for row in next(t for t in audit["tables"] if t["name"] == "threshold_intervals")["rows"]}
    for goal in ("largest F1", "least expected cost (fp 1, fn 5)", "recall at least 0.9"):
        name, threshold, low, high, _, value, value_low, value_high = spread[goal]
        assert low <= threshold <= high and value_low <= value <= value_high
    assert spread["largest F1"][5] == goals["largest F1"][4] == audit["metrics"]["best_f1"]["value"]
    assert audit["metrics"]["best_f1_threshold"]["ci"] == spread["largest F1"][2:4]
    assert {c["name"] for c in audit["charts"]} == {"reliability", "thresholds", "group_reliability_site"}
    bins = [row for row in next(t for t in audit["tables"] if t["name"] == "group_bins")["rows"] if row[1] == "b"]
    in_b = site == "b"
    cuts = np.unique(np.sort(scores)[(np.arange(1, 5) * n) // 5])  # quintiles of every row's probability
    by_pandas = pd.DataFrame({"bin": np.searchsorted(cuts, scores[in_b], side="right"),
                              "event": event[in_b]}).groupby("bin")
    assert [row[3] for row in bins] == by_pandas.size().tolist()
    assert np.allclose([row[5] for row in bins], by_pandas["event"].mean(), atol=1e-12)
    assert all(low <= share <= high for *_, share, low, high in bins)
    band = next(c for c in audit["charts"] if c["name"] == "reliability")["data"]["band"]
    assert len(band["x"]) == 100 and all(lo <= hi for lo, hi in zip(band["low"], band["high"]))
    caption = next(c for c in audit["charts"] if c["name"] == "reliability")["caption"]
    assert int(re.search(r"leaves it at (\d+)% of the rows", caption).group(1)) > 30  # half the rows are site b's
    assert "Calibration and thresholds" in (tmp_path / "out" / "report.html").read_text()


def test_a_calibrated_model_on_few_rows_is_not_called_miscalibrated(tmp_path):
    """300 rows whose events are drawn from the model's own probabilities: the plug-in ECE
    reads about 0.08 (its 15 bins hold 20 rows each) and its whole interval lies above 0.05,
    but the judgement is the debiased ECE's, whose interval reaches 0 as the test does not
    reject calibration."""
    rng = np.random.default_rng(11)
    n = 300
    x = rng.normal(size=(n, 2)).astype(np.float32)
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0].astype(np.float64) - x[:, 1])))
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "target": (rng.random(n) < p).astype(int)})
    frame.to_csv(tmp_path / "test.csv", index=False)
    _save_logistic(tmp_path / "model.pt")
    result = invoke(tmp_path / "model.pt", "--data", tmp_path / "test.csv", "--audits", "calibration",
                    "--out", tmp_path / "out", "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    metrics = audit["metrics"]
    assert metrics["ece"]["ci"][0] > 0.05  # the plug-in's interval alone would have judged it miscalibrated
    assert metrics["ece_debiased"]["ci"][0] == 0.0 and metrics["calibration_p_value"]["value"] > 0.05
    assert audit["findings"] == [] and audit["status"] == "pass"
    assert "(not detectably miscalibrated)" in audit["summary"]


def test_the_summary_says_whether_the_miscalibration_is_detectable_and_how_large():
    """Many rows detect a small miscalibration: the summary says it is detectable but under
    max_ece, where the p-value alone would read as alarming."""
    from auditor.testing import make_context
    from auditor_plugins.calibration.audit import CalibrationAudit

    p, y = _data(50_000, 20, distort=1.05)
    result = CalibrationAudit().run(make_context(y=y.astype(int), proba=p), CalibrationAudit.defaults())
    assert result.metrics["calibration_p_value"].value < 0.05
    assert "(detectably miscalibrated on 50,000 rows, but by less than 0.05)" in result.summary
    p, y = _data(50_000, 21, distort=1.6)
    result = CalibrationAudit().run(make_context(y=y.astype(int), proba=p), CalibrationAudit.defaults())
    assert "(miscalibrated by more than 0.05)" in result.summary and result.findings[0].code == "miscalibrated"


def test_a_regression_gets_its_calibration_by_decile_and_slope(diabetes, tmp_path):
    result = invoke(diabetes.folder / "model.pt", "--data", diabetes.folder / "test.csv", "--audits", "calibration",
                    "--out", tmp_path / "out", "--format", "json", "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    pred = diabetes.eager_outputs()[:, 0].astype(np.float64)
    actual = diabetes.frame[diabetes.target].to_numpy(np.float64)
    assert audit["metrics"]["mean_residual"]["value"] == pytest.approx(np.mean(actual - pred), abs=1e-4)
    assert audit["metrics"]["calibration_slope"]["value"] == pytest.approx(np.polyfit(pred, actual, 1)[0], abs=1e-4)
    deciles = next(t for t in audit["tables"] if t["name"] == "deciles")["rows"]
    assert sum(row[1] for row in deciles) == actual.size and len(deciles) == 10
    first = np.argsort(pred, kind="stable")[: deciles[0][1]]
    assert deciles[0][3] == pytest.approx(actual[first].mean(), abs=1e-4)
    from scipy import stats

    residual = actual - pred
    expected = stats.t.interval(0.95, residual.size - 1, loc=residual.mean(), scale=stats.sem(residual))
    assert audit["metrics"]["mean_residual"]["ci"] == pytest.approx(expected, abs=1e-3)
    low, high = audit["metrics"]["calibration_slope"]["ci"]
    assert low < audit["metrics"]["calibration_slope"]["value"] < high
    assert 0 <= audit["metrics"]["heteroscedasticity_p_value"]["value"] <= 1


def test_a_regression_whose_errors_grow_with_the_prediction_is_heteroscedastic(tmp_path):
    """Errors whose SD is proportional to the prediction: the SD ratio and Breusch–Pagan agree,
    the finding names both; the same model on errors of one size gets no finding."""
    import json

    rng = np.random.default_rng(21)
    n = 2_000
    x = rng.uniform(1, 10, (n, 1)).astype(np.float32)
    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    meta = {"feature_names": ["x"], "target": "y", "task": "regression"}
    torch.jit.save(torch.jit.script(model), str(tmp_path / "model.pt"), _extra_files={"auditor.json": json.dumps(meta)})
    for name, noise in (("grows", 0.3 * x[:, 0]), ("even", np.full(n, 1.5))):
        frame = pd.DataFrame({"x": x[:, 0], "y": x[:, 0] + rng.normal(size=n) * noise})
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        result = invoke(tmp_path / "model.pt", "--data", tmp_path / f"{name}.csv", "--audits", "calibration",
                        "--out", tmp_path / name, "--format", "json", "-q", "--fail-on", "never")
        assert result.exit_code == 0, result.stderr
        audit = read_report(tmp_path / name)["audits"]["calibration"]
        codes = [f["code"] for f in audit["findings"]]
        if name == "grows":
            assert codes == ["heteroscedastic"] and "Breusch–Pagan p" in audit["findings"][0]["message"]
            assert audit["metrics"]["heteroscedasticity_p_value"]["value"] < 1e-6
        else:
            assert codes == [] and audit["metrics"]["heteroscedasticity_p_value"]["value"] > 0.01


def test_bad_costs_are_a_usage_error(breast_cancer, tmp_path):
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--audits",
                    "calibration", "-o", "calibration.costs=fp:1,tn:3", "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "calibration.costs names 'tn'")


class DecileRates(torch.nn.Module):
    """COMPAS's decile score mapped to the two-year recidivism share of its decile over all
    defendants (a lookup, as a probability): calibrated over everyone by construction."""

    def __init__(self, rates: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.logit(torch.tensor(rates, dtype=torch.float64)).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[(x[:, 0].round().long() - 1).clamp(0, 9)][:, None]


def test_compas_is_calibrated_within_race_groups_while_its_error_rates_are_not(compas, tmp_path):
    """The COMPAS dispute, both sides in one report: scored by their decile's recidivism share,
    African-American and Caucasian defendants are each calibrated (ECE under 0.05, computed
    here independently per group), while the same scores' false positive rates differ by more
    than 10 points (the decile >= 5 rule's published 44.85% and 23.45%, Dressel & Farid 2018,
    are reproduced in tests/test_fairness_published.py)."""
    import json

    frame = compas.frame
    rates = frame.groupby("decile_score")["two_year_recid"].mean().reindex(range(1, 11)).tolist()
    model = DecileRates(rates)
    meta = {"feature_names": ["decile_score"], "class_names": ["0", "1"], "target": "two_year_recid",
            "task": "binary", "output": "logits"}
    torch.jit.save(torch.jit.script(model), str(tmp_path / "rates.pt"), _extra_files={"auditor.json": json.dumps(meta)})
    result = invoke(tmp_path / "rates.pt", "--data", compas.folder / "compas.csv", "--sensitive", "race",
                    "--audits", "calibration,fairness", "--out", tmp_path / "out", "--format", "json", "-q",
                    "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    report = read_report(tmp_path / "out")
    groups = {row[1]: row for row in next(t for t in report["audits"]["calibration"]["tables"]
                                          if t["name"] == "groups")["rows"]}
    p = torch.sigmoid(model(torch.tensor(frame[["decile_score"]].to_numpy(np.float32)))[:, 0].double()).numpy()
    for race in ("African-American", "Caucasian"):
        rows = (frame["race"] == race).to_numpy()
        found = cal.binned(p[rows], frame["two_year_recid"].to_numpy(np.float64)[rows],
                           cal.equal_width_bins(p[rows]), cal.N_BINS)
        assert groups[race][3] == pytest.approx(cal.ece(found), abs=1e-6)
        assert groups[race][3] < 0.05  # calibrated within the group
    assert report["audits"]["calibration"]["metrics"]["ece"]["value"] < 1e-6  # over everyone, by construction
    # ... and in the same report, the same scores' error rates differ between the groups
    table = next(t for t in report["audits"]["fairness"]["tables"] if t["name"] == "groups_race")
    fpr = {row[0]: dict(zip(table["columns"], row))["FPR"] for row in table["rows"]}
    assert fpr["African-American"] - fpr["Caucasian"] > 0.1
    # 32 Asian defendants read an ECE of ~0.17 (two rows a bin: upward bias): shown, not judged
    assert groups["Asian"][3] > 0.1
    assert "group-miscalibrated" not in [f["code"] for f in report["audits"]["calibration"]["findings"]]


def test_a_gate_on_the_ece_fails_ci(breast_cancer, tmp_path):
    (tmp_path / "audit.toml").write_text('[gates]\n"calibration.ece" = "<= 0.001"\n"calibration.mce" = "<= 1"\n')
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--audits",
                    "calibration", "--policy", tmp_path / "audit.toml", "--out", tmp_path / "out", "--format", "json",
                    "-q")
    assert result.exit_code == 1, result.stderr
    gates = {g["path"]: g for g in read_report(tmp_path / "out")["gates"]["results"]}
    assert not gates["calibration.ece"]["passed"] and gates["calibration.mce"]["passed"]


def test_a_multiclass_model_gets_top_label_and_class_wise_calibration(wine, tmp_path):
    result = invoke(wine.folder / "model.pt", "--data", wine.folder / "test.csv", "--audits", "calibration",
                    "--out", tmp_path / "out", "--format", "json", "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    proba = wine.eager_outputs().astype(np.float64)  # the model outputs softmax probabilities
    proba /= proba.sum(axis=1, keepdims=True)
    y = np.array([["barolo", "grignolino", "barbera"].index(v) for v in wine.frame[wine.target]])
    eces = []
    for k in range(proba.shape[1]):  # one class against the rest, by scikit-learn's calibration_curve
        event = (y == k).astype(float)
        prob_true, prob_pred = calibration_curve(event, proba[:, k], n_bins=15)
        counts = np.histogram(proba[:, k], bins=np.linspace(0, 1, 16))[0]
        eces.append(np.sum(counts[counts > 0] / y.size * np.abs(prob_true - prob_pred)))
    assert audit["metrics"]["ece_classwise"]["value"] == pytest.approx(np.mean(eces), abs=1e-4)
    low, high = audit["metrics"]["ece_classwise"]["ci"]
    assert low < audit["metrics"]["ece_classwise"]["value"] < high
    classes = next(t for t in audit["tables"] if t["name"] == "classes")["rows"]
    assert [row[4] for row in classes] == pytest.approx(eces, abs=1e-4)
    assert all(row[5] <= row[4] <= row[6] and 0 <= row[8] <= row[9] for row in classes)
    chart = next(c for c in audit["charts"] if c["name"] == "class_reliability")["data"]
    assert sorted(s["name"] for s in chart["series"]) == ["barbera", "barolo", "grignolino"]
    confident, right = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    prob_true, prob_pred = calibration_curve(right, confident, n_bins=15)
    counts = np.histogram(confident, bins=np.linspace(0, 1, 16))[0]
    top_label = np.sum(counts[counts > 0] / y.size * np.abs(prob_true - prob_pred))
    assert audit["metrics"]["ece"]["value"] == pytest.approx(top_label, abs=1e-4)
    assert "thresholds" not in {t["name"] for t in audit["tables"]}


def test_data_of_one_class_get_calibration_but_no_thresholds(breast_cancer, tmp_path):
    """A student's test set of one class only: the calibration figures, no threshold table
    (precision, recall and FPR need both classes), and no audit error."""
    frame = breast_cancer.frame
    frame[frame[breast_cancer.target] == 1].to_csv(tmp_path / "ones.csv", index=False)
    result = invoke(breast_cancer.folder / "model.pt", "--data", tmp_path / "ones.csv", "--audits", "calibration",
                    "--out", tmp_path / "out", "--format", "json,html", "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    assert audit["status"] in ("pass", "warn") and audit["metrics"]["ece"]["value"] is not None
    assert "thresholds" not in {t["name"] for t in audit["tables"]}
    assert any("only positive rows" in note for note in audit["notes"])


def test_a_long_text_shows_the_window_around_its_strongest_token():
    from auditor_plugins.explain.token_views import SHOWN, _window

    values = np.zeros(3 * SHOWN)
    values[2 * SHOWN] = -1.0
    start = _window(values)
    assert start <= 2 * SHOWN < start + SHOWN and start + SHOWN <= values.size
    assert _window(np.zeros(SHOWN)) == 0
    values[-1] = 5.0
    assert _window(values) == 2 * SHOWN


def test_a_regression_of_three_rows_claims_no_residual_spread(diabetes, tmp_path):
    diabetes.frame.head(3).to_csv(tmp_path / "three.csv", index=False)
    result = invoke(diabetes.folder / "model.pt", "--data", tmp_path / "three.csv", "--audits", "calibration",
                    "--out", tmp_path / "out", "--format", "json,md", "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    audit = read_report(tmp_path / "out")["audits"]["calibration"]
    deciles = next(t for t in audit["tables"] if t["name"] == "deciles")["rows"]
    assert [row[5] for row in deciles] == [None, None, None]  # one row a decile: no SD
    assert "too few rows for the residual SD" in audit["summary"] and not audit["findings"]
