"""The fairness numbers: every per-group rate and every disparity equals fairlearn's (and a
pandas groupby done by hand), on scikit-learn's bundled data sets with models trained on
them; the stratified multinomial bootstrap agrees with a slow loop that resamples rows
within each group; undefined rates and small groups are handled as documented.

fairlearn, pandas and scikit-learn are the oracles here only: ``auditor`` never imports them.
"""

from __future__ import annotations

import warnings

import fairlearn.metrics as fm
import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.contract.context import Groups
from auditor.stats import bootstrap as bs
from auditor_plugins.fairness import regression as fr
from auditor_plugins.fairness import stats as fs

SETTINGS = {"n_resamples": 1000, "confidence": 0.95, "seed": 0}
FAIRLEARN_DISPARITIES = {name: getattr(fm, name) for name in fs.CLASSIFICATION_DISPARITIES}


def tertiles(values: np.ndarray, k: int) -> np.ndarray:
    """Quantile bins 0..k-1 of a feature: a derived sensitive grouping."""
    return np.searchsorted(np.quantile(values, np.arange(1, k) / k), values, side="right").astype(np.int64)


def groups_of(name: str, codes: np.ndarray) -> Groups:
    return Groups(name, codes, tuple(f"{name}{i}" for i in range(int(codes.max()) + 1)))


@pytest.fixture(scope="module")
def cancer() -> dict[str, np.ndarray]:
    """Breast cancer (positive class 1 = benign), a logistic regression's held-out predictions,
    and three groupings derived from features: ``fractal`` (3 quantile bins), ``texture`` (2)
    and ``small`` (2 bins of another feature: its intersection with ``fractal`` has cells of
    11 and 13 rows)."""
    data = datasets.load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(X_train, y_train)
    column = list(data.feature_names).index
    return {
        "y": y_test.astype(np.int64),
        "pred": model.predict(X_test).astype(np.int64),
        "fractal": tertiles(X_test[:, column("mean fractal dimension")], 3),
        "texture": tertiles(X_test[:, column("texture error")], 2),
        "small": tertiles(X_test[:, column("fractal dimension error")], 2),
    }


def audit_classification(data, columns, *, binary=True, n_classes=2, min_group_size=1, intersection=True,
                         y=None, pred=None, **settings):
    groups = [groups_of(c, data[c]) for c in columns]
    return fs.classification_fairness(
        groups, data["y"] if y is None else y, data["pred"] if pred is None else pred, n_classes,
        binary=binary, intersection=intersection, min_group_size=min_group_size, **{**SETTINGS, **settings},
    )


def sensitive_features(data, columns) -> np.ndarray | pd.DataFrame:
    return data[columns[0]] if len(columns) == 1 else pd.DataFrame({c: data[c] for c in columns})


CASES = [["fractal"], ["texture"], ["fractal", "texture"]]


def test_the_grouping_gives_every_group_both_classes(cancer) -> None:
    """The precondition for comparing with fairlearn: it counts an undefined rate as 0."""
    cells = cancer["fractal"] * 2 + cancer["texture"]
    for g in range(6):
        assert set(cancer["y"][cells == g]) == {0, 1}
        assert set(cancer["pred"][cells == g]) == {0, 1}


@pytest.mark.parametrize("columns", CASES)
def test_per_group_rates_equal_fairlearn_metricframe(cancer, columns) -> None:
    report = audit_classification(cancer, columns)[-1]
    frame = fm.MetricFrame(
        metrics={
            "selection_rate": fm.selection_rate,
            "true_positive_rate": fm.true_positive_rate,
            "false_positive_rate": fm.false_positive_rate,
            "false_negative_rate": fm.false_negative_rate,
            "accuracy": skm.accuracy_score,
            "precision": skm.precision_score,
            "count": fm.count,
        },
        y_true=cancer["y"], y_pred=cancer["pred"], sensitive_features=sensitive_features(cancer, columns),
    ).by_group
    assert report.partition.columns == tuple(columns)
    np.testing.assert_array_equal(report.partition.counts, frame["count"].to_numpy())
    for name in ("selection_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate",
                 "precision"):
        np.testing.assert_allclose(report.figures[name].value[:, 0], frame[name].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(report.figures["accuracy"].value, frame["accuracy"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("columns", CASES)
def test_per_group_rates_equal_a_pandas_groupby(cancer, columns) -> None:
    report = audit_classification(cancer, columns)[-1]
    df = pd.DataFrame({"y": cancer["y"], "pred": cancer["pred"], **{c: cancer[c] for c in columns}})
    by = df.groupby(columns)
    expected = pd.DataFrame({
        "base_rate": by["y"].mean(),
        "selection_rate": by["pred"].mean(),
        "true_positive_rate": df[df.y == 1].groupby(columns)["pred"].mean(),
        "false_positive_rate": df[df.y == 0].groupby(columns)["pred"].mean(),
        "precision": df[df.pred == 1].groupby(columns)["y"].mean(),
        "accuracy": (df.y == df.pred).groupby([df[c] for c in columns]).mean(),
    })
    for name in ("base_rate", "selection_rate", "true_positive_rate", "false_positive_rate", "precision"):
        np.testing.assert_allclose(report.figures[name].value[:, 0], expected[name].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(report.figures["accuracy"].value, expected["accuracy"].to_numpy(), rtol=1e-12)
    labels = [" × ".join(f"{c}{v}" for c, v in zip(columns, key if isinstance(key, tuple) else (key,)))
              for key in expected.index]
    assert list(report.partition.labels) == labels


@pytest.mark.parametrize("columns", CASES)
@pytest.mark.parametrize("name", fs.CLASSIFICATION_DISPARITIES)
def test_every_disparity_equals_fairlearn(cancer, columns, name) -> None:
    report = audit_classification(cancer, columns)[-1]
    expected = FAIRLEARN_DISPARITIES[name](
        cancer["y"], cancer["pred"], sensitive_features=sensitive_features(cancer, columns)
    )
    assert report.disparities[name].overall == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_each_column_and_the_intersection_are_reported_in_order(cancer) -> None:
    reports = audit_classification(cancer, ["fractal", "texture"])
    assert [r.partition.name for r in reports] == ["fractal", "texture", "fractal × texture"]
    assert [r.partition.counts.size for r in reports] == [3, 2, 6]
    assert len(audit_classification(cancer, ["fractal", "texture"], intersection=False)) == 2


def test_the_groups_at_the_extremes_are_the_lowest_and_highest_rates(cancer) -> None:
    report = audit_classification(cancer, ["fractal", "texture"])[-1]
    selection = report.figures["selection_rate"].value[:, 0]
    dp = report.disparities["demographic_parity_difference"]
    assert (dp.lowest[0], dp.highest[0]) == (selection.argmin(), selection.argmax())
    eo = report.disparities["equalized_odds_difference"]
    rate = report.figures[eo.rate[0]].value[:, 0]
    assert eo.value[0] == pytest.approx(rate[eo.highest[0]] - rate[eo.lowest[0]])


def test_small_groups_and_rates_from_few_rows_are_left_out_of_the_disparities(cancer) -> None:
    """min_group_size=30: the 11- and 13-row cells are reported but left out, and so is a
    larger group's TPR (FPR) when it has fewer than 30 positive (negative) rows."""
    report = audit_classification(cancer, ["fractal", "small"], min_group_size=30)[-1]
    cells = cancer["fractal"] * 2 + cancer["small"]
    frame = fm.MetricFrame(
        metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                 "fpr": fm.false_positive_rate, "count": fm.count},
        y_true=cancer["y"], y_pred=cancer["pred"], sensitive_features=cells,
    ).by_group
    count = frame["count"].to_numpy()
    positives = np.bincount(cells, weights=cancer["y"]).astype(int)
    rules = {"selection_rate": count >= 30, "true_positive_rate": positives >= 30,
             "false_positive_rate": (count >= 30) & (count - positives >= 30)}
    assert sorted(count[~report.judged].tolist()) == [11, 13]
    assert np.isfinite(report.figures["selection_rate"].value[~report.judged]).all()
    for rate, rule in rules.items():
        np.testing.assert_array_equal(report.judged_rates[rate][:, 0], rule)

    kept = np.isin(cells, np.flatnonzero(count >= 30))
    expected_dp = fm.demographic_parity_difference(cancer["y"][kept], cancer["pred"][kept],
                                                   sensitive_features=cells[kept])
    assert report.disparities["demographic_parity_difference"].overall == pytest.approx(expected_dp, rel=1e-12)
    tpr = frame["tpr"].to_numpy()[rules["true_positive_rate"]]
    assert report.disparities["equal_opportunity_difference"].overall == pytest.approx(np.ptp(tpr), rel=1e-12)
    assert rules["false_positive_rate"].sum() == 1  # one judged FPR: no FPR gap, so no equalized odds
    assert np.isnan(report.disparities["equalized_odds_difference"].overall)
    assert report.disparities["equalized_odds_difference"].overall_ci is None


def test_fewer_than_two_large_groups_leave_the_disparities_undefined(cancer) -> None:
    report = audit_classification(cancer, ["fractal"], min_group_size=1000)[0]
    for spread in report.disparities.values():
        assert np.isnan(spread.overall) and spread.overall_ci is None and spread.worst == -1
    assert np.isfinite(report.figures["selection_rate"].value).all()


def test_a_group_without_positive_rows_has_an_undefined_tpr_and_no_warning() -> None:
    """Group 2 has no positive row: its TPR and FNR are NaN (fairlearn would say 0) and the
    TPR gap is taken over groups 0 and 1; its FPR still counts."""
    y = np.array([1, 1, 0, 0, 0] * 20 + [1, 0, 0, 0, 0] * 20 + [0] * 100)
    pred = np.array([1, 0, 1, 0, 0] * 20 + [1, 1, 1, 0, 0] * 20 + [1, 0, 0, 0, 0] * 20)
    codes = np.repeat([0, 1, 2], 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = audit_classification({"y": y, "pred": pred, "g": codes}, ["g"])[0]
    tpr = report.figures["true_positive_rate"].value[:, 0]
    fpr = report.figures["false_positive_rate"].value[:, 0]
    assert tpr[0] == pytest.approx(0.5) and tpr[1] == pytest.approx(1.0) and np.isnan(tpr[2])
    assert np.isnan(report.figures["false_negative_rate"].value[2, 0])
    assert np.isnan(report.figures["true_positive_rate"].low[2, 0])
    assert fpr == pytest.approx([1 / 3, 0.5, 0.2])
    assert report.disparities["equal_opportunity_difference"].overall == pytest.approx(0.5)
    assert report.disparities["equalized_odds_difference"].overall == pytest.approx(0.5)
    assert report.disparities["equalized_odds_ratio"].overall == pytest.approx(0.4)


def test_a_ratio_is_1_when_every_group_is_at_0() -> None:
    """Every selection rate is 0: the groups are equal, so the ratio is 1 (fairlearn: NaN)."""
    y = np.tile([0, 1], 100)
    pred = np.zeros(200, dtype=np.int64)
    codes = np.repeat([0, 1], 100)
    report = audit_classification({"y": y, "pred": pred, "g": codes}, ["g"])[0]
    assert report.disparities["demographic_parity_ratio"].overall == 1.0
    assert report.disparities["demographic_parity_difference"].overall == 0.0
    assert np.isnan(fm.demographic_parity_ratio(y, pred, sensitive_features=codes))


@pytest.fixture(scope="module")
def wine() -> dict[str, np.ndarray]:
    """Wine (3 classes), a logistic regression's held-out predictions, two derived groupings
    (halves of ``ash`` and of ``magnesium``: every cell of their intersection has every class)."""
    X, y = datasets.load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(X_train, y_train)
    return {"y": y_test.astype(np.int64), "pred": model.predict(X_test).astype(np.int64),
            "ash": tertiles(X_test[:, 2], 2), "magnesium": tertiles(X_test[:, 4], 2)}


@pytest.mark.parametrize("columns", [["ash"], ["ash", "magnesium"]])
def test_multiclass_is_one_vs_rest_per_class_and_the_headline_is_the_worst(wine, columns) -> None:
    report = audit_classification(wine, columns, binary=False, n_classes=3)[-1]
    features = sensitive_features(wine, columns)
    for c in range(3):
        y, pred = (wine["y"] == c).astype(int), (wine["pred"] == c).astype(int)
        frame = fm.MetricFrame(metrics={"s": fm.selection_rate, "t": fm.true_positive_rate},
                               y_true=y, y_pred=pred, sensitive_features=features).by_group
        np.testing.assert_allclose(report.figures["selection_rate"].value[:, c], frame["s"].to_numpy())
        np.testing.assert_allclose(report.figures["true_positive_rate"].value[:, c], frame["t"].to_numpy())
        for name, function in FAIRLEARN_DISPARITIES.items():
            expected = function(y, pred, sensitive_features=features)
            assert report.disparities[name].value[c] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    accuracy = fm.MetricFrame(metrics=skm.accuracy_score, y_true=wine["y"], y_pred=wine["pred"],
                              sensitive_features=features).by_group
    np.testing.assert_allclose(report.figures["accuracy"].value, accuracy.to_numpy())
    for name, spread in report.disparities.items():
        worst = spread.value.max() if fs.larger_is_worse(name) else spread.value.min()
        assert spread.overall == worst == spread.value[spread.worst]


@pytest.fixture(scope="module")
def diabetes() -> dict[str, np.ndarray]:
    """Diabetes with a ridge regression's held-out predictions, grouped by its ``sex`` column."""
    data = datasets.load_diabetes()
    X_train, X_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.5, random_state=0)
    sex = X_test[:, list(data.feature_names).index("sex")]
    codes = np.unique(sex, return_inverse=True)[1].ravel().astype(np.int64)
    pred = Ridge(alpha=0.1).fit(X_train, y_train).predict(X_test)
    return {"y": y_test, "pred": pred, "sex": codes, "sex_values": sex}


def audit_regression(data, **options):
    settings = {"intersection": True, "min_group_size": 30, "bootstrap_max_rows": 100_000, **SETTINGS, **options}
    return fr.regression_fairness([groups_of("sex", data["sex"])], data["y"], data["pred"], **settings)


def test_regression_per_group_figures_and_disparities_equal_fairlearn(diabetes) -> None:
    (report,), method = audit_regression(diabetes)
    assert method == fr.ROW_BOOTSTRAP
    frame = fm.MetricFrame(metrics={"mae": skm.mean_absolute_error, "mean_prediction": fm.mean_prediction},
                           y_true=diabetes["y"], y_pred=diabetes["pred"], sensitive_features=diabetes["sex_values"])
    np.testing.assert_allclose(report.figures["mae"].value, frame.by_group["mae"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(report.figures["mean_prediction"].value,
                               frame.by_group["mean_prediction"].to_numpy(), rtol=1e-12)
    target = pd.Series(diabetes["y"]).groupby(diabetes["sex"]).mean().to_numpy()
    np.testing.assert_allclose(report.figures["mean_target"].value, target, rtol=1e-12)
    assert report.disparities["mae_difference"].overall == pytest.approx(frame.difference()["mae"], rel=1e-12)
    assert report.disparities["mae_ratio"].overall == pytest.approx(frame.ratio()["mae"], rel=1e-12)
    assert report.disparities["mean_prediction_difference"].overall == pytest.approx(
        frame.difference()["mean_prediction"], rel=1e-12)


def test_regression_normal_approximation_is_close_to_the_row_bootstrap(diabetes) -> None:
    (exact,), _ = audit_regression(diabetes)
    (normal,), method = audit_regression(diabetes, bootstrap_max_rows=10)
    assert method == fr.NORMAL
    for name in ("mae", "mean_prediction"):
        width = exact.figures[name].high - exact.figures[name].low
        np.testing.assert_allclose(normal.figures[name].low, exact.figures[name].low, atol=0.15 * width.max())
        np.testing.assert_allclose(normal.figures[name].high, exact.figures[name].high, atol=0.15 * width.max())
    assert np.isnan(normal.figures["mean_target"].low).all()


def reference_replicates(y, pred, cells, n_resamples, seed) -> dict[str, np.ndarray]:
    """The slow reference: resample rows within each cell, one resample at a time, and
    compute the selection rates and two disparities from the resampled rows."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(cells == c) for c in range(cells.max() + 1)]
    out: dict[str, list] = {"selection_rate": [], "demographic_parity_difference": [],
                            "equalized_odds_difference": []}
    for _ in range(n_resamples):
        rows = np.concatenate([rng.choice(m, size=m.size) for m in members])
        g, yr, pr = cells[rows], y[rows], pred[rows]
        selection = np.bincount(g, weights=pr) / np.bincount(g)
        tpr = np.bincount(g, weights=pr * yr) / np.bincount(g, weights=yr)
        fpr = np.bincount(g, weights=pr * (1 - yr)) / np.bincount(g, weights=1 - yr)
        out["selection_rate"].append(selection)
        out["demographic_parity_difference"].append(np.ptp(selection))
        out["equalized_odds_difference"].append(max(np.ptp(tpr), np.ptp(fpr)))
    return {name: np.array(values) for name, values in out.items()}


def test_the_multinomial_bootstrap_agrees_with_resampling_rows_within_groups() -> None:
    rng = np.random.default_rng(5)
    cells = np.repeat([0, 1, 2], [60, 40, 80])
    y = (rng.random(cells.size) < 0.5).astype(np.int64)
    pred = (rng.random(cells.size) < np.array([0.3, 0.5, 0.7])[cells]).astype(np.int64)
    report = audit_classification({"y": y, "pred": pred, "g": cells}, ["g"], n_resamples=4000, seed=1)[0]
    reference = reference_replicates(y, pred, cells, 4000, seed=2)
    lows, highs = np.quantile(reference["selection_rate"], [0.025, 0.975], axis=0)
    figure = report.figures["selection_rate"]
    np.testing.assert_allclose(figure.low[:, 0], lows, atol=0.03)
    np.testing.assert_allclose(figure.high[:, 0], highs, atol=0.03)
    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        ours, theirs = report.disparities[name].replicates, reference[name]
        assert ours.mean() == pytest.approx(theirs.mean(), abs=0.01)
        assert ours.std() == pytest.approx(theirs.std(), rel=0.08)
        assert report.disparities[name].overall_ci == pytest.approx(np.quantile(theirs, [0.025, 0.975]), abs=0.03)


def test_the_regression_row_bootstrap_agrees_with_a_loop() -> None:
    rng = np.random.default_rng(3)
    cells = np.repeat([0, 1], [50, 70])
    values = rng.gamma(2.0, size=cells.size) + cells
    combined = fs.combine([groups_of("g", cells)])
    ours = fr.row_bootstrap_means(combined, [values], 4000, seed=0)[:, :, 0]
    loop = np.array([[values[cells == c][rng.integers(0, (cells == c).sum(), (cells == c).sum())].mean()
                      for c in (0, 1)] for _ in range(4000)])
    np.testing.assert_allclose(ours.mean(axis=0), loop.mean(axis=0), atol=0.03)
    np.testing.assert_allclose(ours.std(axis=0), loop.std(axis=0), rtol=0.08)


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others(cancer) -> None:
    def bounds(seed):
        report = audit_classification(cancer, ["fractal", "texture"], seed=seed)[-1]
        return (report.figures["selection_rate"].low, report.disparities["demographic_parity_ratio"].overall_ci)

    first, again, other = bounds(0), bounds(0), bounds(1)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] != other[1]


def test_every_interval_covers_its_estimate(cancer) -> None:
    for report in audit_classification(cancer, ["fractal", "texture"]):
        for name in fs.RATES[1:]:
            figure = report.figures[name]
            assert (figure.low <= figure.value).all() and (figure.value <= figure.high).all()
        for name in ("demographic_parity_difference", "demographic_parity_ratio"):
            spread = report.disparities[name]
            if spread.overall > 0.05 and spread.overall < 0.95:  # clear of the 0 / 1 boundary
                assert spread.overall_ci[0] <= spread.overall <= spread.overall_ci[1]


def test_the_worst_over_columns_comes_from_consistent_resamples(cancer) -> None:
    reports = audit_classification(cancer, ["fractal", "texture"])
    worst = fs.worst_over(reports, "demographic_parity_ratio", 0.95)
    values = [r.disparities["demographic_parity_ratio"].overall for r in reports]
    assert worst.value == min(values) and worst.partition == int(np.argmin(values))
    replicates = np.minimum.reduce([r.disparities["demographic_parity_ratio"].replicates for r in reports])
    assert worst.ci == pytest.approx(tuple(np.quantile(replicates, [0.025, 0.975])))


def test_percentile_bounds_match_the_single_interval_function() -> None:
    rng = np.random.default_rng(0)
    replicates = rng.normal(size=(999, 4))
    replicates[:100, 1] = np.nan  # a few undefined resamples: left out
    replicates[:600, 2] = np.nan  # most undefined: no interval
    low, high = fs.percentile_bounds(replicates, 0.9)
    for j in range(4):
        expected = bs.percentile_interval(replicates[:, j], 0.9)
        if expected is None:
            assert np.isnan(low[j]) and np.isnan(high[j])
        else:
            assert (low[j], high[j]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("labels", [3, 2000])
def test_combine_keeps_the_combinations_that_occur(labels) -> None:
    """Mixed-radix codes, counted or (for many possible combinations) sorted: the same cells."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, labels, 500), rng.integers(0, 3, 500)
    cells = fs.combine([Groups("a", a, tuple(map(str, range(labels)))), Groups("b", b, ("x", "y", "z"))])
    pairs = sorted(set(zip(a.tolist(), b.tolist())))
    assert cells.codes.tolist() == [list(p) for p in pairs]
    np.testing.assert_array_equal(cells.codes[cells.row], np.stack([a, b], axis=1))
    np.testing.assert_array_equal(cells.counts, np.bincount(cells.row))


def test_a_label_no_row_has_is_a_group_of_zero_rows() -> None:
    codes = np.repeat([0, 2], 50)
    y = np.tile([0, 1], 50)
    report = fs.classification_fairness([Groups("g", codes, ("a", "b", "c"))], y, y, 2, binary=True,
                                        intersection=True, min_group_size=30, **SETTINGS)[0]
    assert report.partition.counts.tolist() == [50, 0, 50]
    assert not report.judged[1] and np.isnan(report.figures["selection_rate"].value[1, 0])
    assert report.disparities["demographic_parity_difference"].overall == 0.0
