"""The built-in "metrics" audit: right numbers, findings that fire when (and only when)
they should, and a result that is plain, deterministic, JSON-safe data.

The contexts are built without a model (the audit reads predictions only); the models are
scikit-learn estimators trained on scikit-learn's bundled data sets, and every expected
number is computed by scikit-learn on the same arrays.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import datasets
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.contract.context import AuditContext, Dataset, Predictions, Task
from auditor.contract.errors import UsageError
from auditor.contract.result import AuditResult
from auditor_plugins.metrics.audit import MetricsAudit

AUDIT = MetricsAudit()
DEFAULTS = MetricsAudit.defaults()


def classification_context(
    y: np.ndarray, proba: np.ndarray, names: tuple[str, ...], label: np.ndarray | None = None, seed: int = 0
) -> AuditContext:
    n, k = proba.shape
    data = Dataset(path="test.csv", sha256="0" * 64, n_rows=n, columns=["target"], feature_names=[],
                   X=np.zeros((n, 0), np.float32), target_name="target", y=np.asarray(y, np.int64))
    task = Task(kind="binary" if k == 2 else "multiclass", class_names=names, output="probabilities", n_outputs=k)
    label = proba.argmax(axis=1) if label is None else label
    predictions = Predictions(raw=proba.astype(np.float32), proba=proba, label=label.astype(np.int64))
    return AuditContext(model=None, data=data, task=task, predictions=predictions, seed=seed)


def regression_context(y: np.ndarray, pred: np.ndarray, seed: int = 0) -> AuditContext:
    n = y.size
    data = Dataset(path="test.csv", sha256="0" * 64, n_rows=n, columns=["target"], feature_names=[],
                   X=np.zeros((n, 0), np.float32), target_name="target", y=y.astype(np.float64))
    task = Task(kind="regression", class_names=(), output="values", n_outputs=1)
    predictions = Predictions(raw=pred[:, None].astype(np.float32), value=pred.astype(np.float64))
    return AuditContext(model=None, data=data, task=task, predictions=predictions, seed=seed)


def _classifier_context(loader, names: tuple[str, ...]) -> AuditContext:
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(X_train, y_train)
    return classification_context(y_test, model.predict_proba(X_test), names)


@pytest.fixture(scope="module")
def contexts() -> dict[str, AuditContext]:
    X, y = datasets.load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    return {
        "binary": _classifier_context(datasets.load_breast_cancer, ("malignant", "benign")),
        "multiclass": _classifier_context(datasets.load_wine, ("class_0", "class_1", "class_2")),
        "regression": regression_context(y_test, Ridge(alpha=0.1).fit(X_train, y_train).predict(X_test)),
    }


@pytest.fixture(scope="module")
def results(contexts: dict[str, AuditContext]) -> dict[str, AuditResult]:
    return {kind: AUDIT.run(ctx, DEFAULTS) for kind, ctx in contexts.items()}


TASKS = ["binary", "multiclass", "regression"]


def expected_metrics(ctx: AuditContext) -> dict[str, float]:
    y = ctx.data.y
    if ctx.task.kind == "regression":
        pred = ctx.predictions.value
        return {
            "mae": skm.mean_absolute_error(y, pred),
            "mse": skm.mean_squared_error(y, pred),
            "rmse": skm.root_mean_squared_error(y, pred),
            "r2": skm.r2_score(y, pred),
            "median_absolute_error": skm.median_absolute_error(y, pred),
            "max_error": skm.max_error(y, pred),
            "mape": skm.mean_absolute_percentage_error(y, pred),
        }
    proba, label = ctx.predictions.proba, ctx.predictions.label
    expected = {
        "accuracy": skm.accuracy_score(y, label),
        "balanced_accuracy": skm.balanced_accuracy_score(y, label),
        "mcc": skm.matthews_corrcoef(y, label),
        "log_loss": skm.log_loss(y, proba),
        "baseline_accuracy": np.bincount(y).max() / y.size,
    }
    if ctx.task.kind == "binary":
        expected.update(
            precision=skm.precision_score(y, label),
            recall=skm.recall_score(y, label),
            f1=skm.f1_score(y, label),
            roc_auc=skm.roc_auc_score(y, proba[:, 1]),
            average_precision=skm.average_precision_score(y, proba[:, 1]),
            brier=skm.brier_score_loss(y, proba[:, 1]),
        )
    else:
        for avg in ("macro", "weighted"):
            expected[f"precision_{avg}"] = skm.precision_score(y, label, average=avg)
            expected[f"recall_{avg}"] = skm.recall_score(y, label, average=avg)
            expected[f"f1_{avg}"] = skm.f1_score(y, label, average=avg)
        expected["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        expected["average_precision"] = skm.average_precision_score(y, proba)
    return expected


@pytest.mark.parametrize("kind", TASKS)
def test_every_metric_equals_sklearn(kind: str, contexts, results) -> None:
    expected = expected_metrics(contexts[kind])
    assert set(results[kind].metrics) == set(expected)
    for key, value in expected.items():
        assert results[kind].metrics[key].value == pytest.approx(value, abs=1e-9), key


@pytest.mark.parametrize(
    "kind, headlines",
    [("binary", {"roc_auc", "accuracy", "f1"}), ("multiclass", {"accuracy", "f1_macro", "roc_auc"}),
     ("regression", {"rmse", "r2", "mae"})],
)
def test_headline_metrics(kind: str, headlines: set[str], results) -> None:
    assert {k for k, m in results[kind].metrics.items() if m.headline} == headlines


@pytest.mark.parametrize("kind", TASKS)
def test_every_metric_is_labelled_described_and_bracketed_by_its_interval(kind: str, results) -> None:
    for key, m in results[kind].metrics.items():
        assert m.label and m.description and "{" not in m.description, key
        assert m.direction in ("higher", "lower", "none"), key
        if key in ("max_error", "baseline_accuracy"):
            assert m.ci is None, key
            continue
        assert m.ci is not None and m.ci_method, key
        assert m.ci[0] <= m.value <= m.ci[1], key
    directions = {k: m.direction for k, m in results[kind].metrics.items()}
    assert all(directions[k] == "lower" for k in ("log_loss", "brier", "mae", "rmse", "max_error") if k in directions)


@pytest.mark.parametrize("kind", TASKS)
def test_result_round_trips_through_dict_and_strict_json(kind: str, results) -> None:
    result = results[kind]
    text = json.dumps(result.to_dict(), allow_nan=False, sort_keys=True)
    again = AuditResult.from_dict(json.loads(text))
    assert json.dumps(again.to_dict(), sort_keys=True) == text
    assert again.metrics == result.metrics


@pytest.mark.parametrize("kind", TASKS)
def test_deterministic_under_a_seed_and_seed_dependent(kind: str, contexts, results) -> None:
    ctx = contexts[kind]
    assert AUDIT.run(ctx, DEFAULTS).to_dict() == results[kind].to_dict()
    reseeded = AuditContext(model=None, data=ctx.data, task=ctx.task, predictions=ctx.predictions, seed=1)
    other = AUDIT.run(reseeded, DEFAULTS)
    key = "log_loss" if kind != "regression" else "rmse"  # continuous: endpoints move with the seed
    assert other.metrics[key].value == results[kind].metrics[key].value
    assert other.metrics[key].ci != results[kind].metrics[key].ci


def test_good_binary_model_passes_with_a_readable_summary(results) -> None:
    result = results["binary"]
    assert result.status == "pass" and result.findings == []
    m = result.metrics
    assert result.summary == (
        f"ROC-AUC {m['roc_auc'].value:.3f} (95% CI {m['roc_auc'].ci[0]:.3f}–{m['roc_auc'].ci[1]:.3f}), "
        f"accuracy {m['accuracy'].value:.3f} (95% CI {m['accuracy'].ci[0]:.3f}–{m['accuracy'].ci[1]:.3f}), "
        f"F1 {m['f1'].value:.3f} (95% CI {m['f1'].ci[0]:.3f}–{m['f1'].ci[1]:.3f}) on 285 rows."
    )


@pytest.mark.parametrize("kind", TASKS)
def test_notes_state_the_interval_methods_and_confidence(kind: str, results) -> None:
    notes = " ".join(results[kind].notes)
    assert "95% confidence intervals" in notes
    assert "percentile bootstrap over rows, 1000 resamples, seed 0" in notes
    if kind != "regression":
        assert "exact multinomial bootstrap of the confusion matrix" in notes
    if kind == "binary":
        assert "Positive class: 'benign'" in notes


def test_constant_majority_predictor_warns_that_accuracy_is_near_baseline(contexts) -> None:
    y = contexts["binary"].data.y
    proba = np.tile([0.3, 0.7], (y.size, 1))
    result = AUDIT.run(classification_context(y, proba, ("malignant", "benign")), DEFAULTS)
    assert result.status == "warn"
    codes = {f.code: f for f in result.findings}
    near = codes["accuracy-near-baseline"]
    assert near.severity == "warning"
    for words in ("balanced accuracy", "MCC", "ROC-AUC", "'benign'", "imbalanced"):
        assert words in near.message
    assert codes["class-never-predicted"].severity == "warning"
    assert "'malignant'" in codes["class-never-predicted"].message
    assert result.metrics["roc_auc"].value == pytest.approx(0.5)
    assert result.metrics["accuracy"].value == result.metrics["baseline_accuracy"].value
    assert result.metrics["precision"].value == pytest.approx(skm.precision_score(y, np.ones_like(y)))


def _predictions_with_accuracy(n_majority: int, n_minority: int, n_correct_minority: int):
    """Always predicts the majority class except for some minority rows, predicted right."""
    y = np.array([0] * n_majority + [1] * n_minority)
    label = np.zeros_like(y)
    label[n_majority : n_majority + n_correct_minority] = 1
    proba = np.where(label[:, None] == 1, [0.2, 0.8], [0.8, 0.2])
    return y, proba


@pytest.mark.parametrize("margin, warns", [(0.02, False), (0.05, True)])
def test_accuracy_near_baseline_respects_the_margin(margin: float, warns: bool) -> None:
    y, proba = _predictions_with_accuracy(700, 300, 30)  # accuracy 0.73, baseline 0.70
    result = AUDIT.run(classification_context(y, proba, ("no", "yes")), {**DEFAULTS, "baseline_margin": margin})
    assert result.metrics["accuracy"].value == pytest.approx(0.73)
    assert ("accuracy-near-baseline" in {f.code for f in result.findings}) is warns


@pytest.mark.parametrize("minority, fires", [(0.10, True), (0.19, True), (0.25, False), (0.5, False)])
def test_class_imbalance_is_noted_below_a_20_percent_minority(minority: float, fires: bool) -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = np.zeros(n, dtype=np.int64)
    y[: int(minority * n)] = 1
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 3.0 * (y - 0.5))))
    proba = np.stack([1 - score, score], axis=1)
    result = AUDIT.run(classification_context(y, proba, ("no", "yes")), DEFAULTS)
    imbalance = [f for f in result.findings if f.code == "class-imbalance"]
    assert bool(imbalance) is fires
    if fires:
        assert imbalance[0].severity == "info" and "'yes'" in imbalance[0].message


def test_multiclass_imbalance_is_relative_to_a_balanced_split() -> None:
    """Ten balanced classes (10% each) are not imbalanced; one at 2% is."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(10), 100)
    proba = rng.dirichlet(np.ones(10), size=y.size) + 2.0 * np.eye(10)[y]
    proba /= proba.sum(axis=1, keepdims=True)
    names = tuple(f"c{i}" for i in range(10))
    balanced = AUDIT.run(classification_context(y, proba, names), DEFAULTS)
    assert "class-imbalance" not in {f.code for f in balanced.findings}
    keep = (y != 9) | (np.arange(y.size) % 100 < 15)
    skewed = AUDIT.run(classification_context(y[keep], proba[keep], names), DEFAULTS)
    assert "class-imbalance" in {f.code for f in skewed.findings}


def test_an_undefined_metric_is_none_with_an_info_finding() -> None:
    y = np.ones(40, dtype=np.int64)
    proba = np.tile([0.4, 0.6], (40, 1))
    result = AUDIT.run(classification_context(y, proba, ("no", "yes")), DEFAULTS)
    roc = result.metrics["roc_auc"]
    assert roc.value is None and roc.ci is None
    undefined = [f for f in result.findings if f.code == "metric-undefined"]
    assert [f.severity for f in undefined] == ["info"]
    assert "ROC-AUC" in undefined[0].message and "one class" in undefined[0].message
    assert result.summary.startswith("ROC-AUC undefined, accuracy 1.000")
    json.dumps(result.to_dict(), allow_nan=False)


def test_tables_per_class_and_confusion_matrix(contexts, results) -> None:
    ctx, result = contexts["multiclass"], results["multiclass"]
    y, label = ctx.data.y, ctx.predictions.label
    tables = {t.name: t for t in result.tables}
    per_class = tables["per_class"]
    assert per_class.columns == ["class", "support", "precision", "recall", "f1"]
    p, r, f, s = skm.precision_recall_fscore_support(y, label)
    for i, row in enumerate(per_class.rows):
        assert row == [ctx.task.class_names[i], int(s[i]), pytest.approx(p[i]), pytest.approx(r[i]), pytest.approx(f[i])]
    cm = tables["confusion_matrix"]
    assert cm.columns[1:] == list(ctx.task.class_names)
    assert [row[0] for row in cm.rows] == list(ctx.task.class_names)
    assert [row[1:] for row in cm.rows] == skm.confusion_matrix(y, label).tolist()


@pytest.mark.parametrize("kind, n_series", [("binary", 1), ("multiclass", 3)])
def test_classification_charts(kind: str, n_series: int, contexts, results) -> None:
    charts = {c.name: c for c in results[kind].charts}
    assert set(charts) == {"confusion_matrix", "roc", "pr"}
    assert charts["confusion_matrix"].data["labels"] == list(contexts[kind].task.class_names)
    for name in ("roc", "pr"):
        chart = charts[name]
        assert chart.kind == "curve" and len(chart.data["series"]) == n_series
        for series in chart.data["series"]:
            assert len(series["x"]) == len(series["y"]) <= 200
            assert series["x"][0] == 0.0 and series["x"][-1] == 1.0
    assert charts["roc"].data["diagonal"] is True
    assert all(s["y"][-1] == 1.0 for s in charts["roc"].data["series"])


def test_multiclass_curves_are_limited_to_the_ten_largest_classes() -> None:
    rng = np.random.default_rng(2)
    y = rng.choice(12, size=3000, p=np.r_[np.full(10, 0.095), 0.03, 0.02])
    proba = rng.dirichlet(np.ones(12), size=y.size) + np.eye(12)[y]
    proba /= proba.sum(axis=1, keepdims=True)
    result = AUDIT.run(classification_context(y, proba, tuple(f"c{i}" for i in range(12))), DEFAULTS)
    roc = next(c for c in result.charts if c.name == "roc")
    assert [s["name"] for s in roc.data["series"]] == [f"c{i}" for i in range(10)]
    assert "10 largest" in roc.caption


def test_regression_charts_show_a_seeded_subsample(contexts, results) -> None:
    ctx = contexts["regression"]
    charts = {c.name: c for c in results["regression"].charts}
    residuals, scatter = charts["residuals"], charts["predicted_vs_actual"]
    assert residuals.kind == scatter.kind == "scatter"
    assert residuals.data["reference"] == "y=0" and scatter.data["reference"] == "y=x"
    assert len(residuals.data["x"]) == len(scatter.data["x"]) == ctx.data.y.size  # 221 rows: all shown
    np.testing.assert_allclose(np.array(scatter.data["x"]) - np.array(scatter.data["y"]), residuals.data["y"])

    rng = np.random.default_rng(3)
    y = rng.normal(size=5000)
    big = AUDIT.run(regression_context(y, y + rng.normal(size=5000)), DEFAULTS)
    shown = next(c for c in big.charts if c.name == "residuals")
    assert len(shown.data["x"]) == 500 and "subsample" in shown.caption


def test_large_data_switches_to_analytic_intervals_and_formats_the_row_count() -> None:
    rng = np.random.default_rng(4)
    n = 15_060
    y = (rng.random(n) < 0.3).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 2.0 * y - 1.0)))
    ctx = classification_context(y, np.stack([1 - score, score], axis=1), ("no", "yes"))
    result = AUDIT.run(ctx, {**DEFAULTS, "bootstrap_max_rows": 10_000})
    assert result.metrics["roc_auc"].ci_method == "DeLong (fast midrank) normal interval"
    assert result.metrics["average_precision"].ci_method == "Boyd et al. (2013) logit interval"
    assert result.metrics["log_loss"].ci_method == "normal (CLT) interval"
    assert result.metrics["accuracy"].ci_method.startswith("exact multinomial bootstrap")
    assert result.summary.endswith("on 15,060 rows.")
    assert "ROC-AUC, average precision, log loss, Brier score: DeLong" not in result.notes[0]
    assert "ROC-AUC: DeLong (fast midrank) normal interval." in result.notes[0]


def test_options_are_declared_with_their_defaults_and_bounds() -> None:
    options = {o.name: o for o in MetricsAudit.options}
    assert DEFAULTS == {"confidence": 0.95, "n_resamples": 1000, "bootstrap_max_rows": 100_000,
                        "bootstrap_max_work": 30_000_000, "baseline_margin": 0.02}
    assert options["confidence"].convert("metrics", "0.9") == 0.9
    with pytest.raises(UsageError):
        options["confidence"].convert("metrics", 1.5)
    with pytest.raises(UsageError):
        options["n_resamples"].convert("metrics", 10)
    assert MetricsAudit.needs == ("target",)


def test_confidence_option_changes_the_intervals(contexts, results) -> None:
    result = AUDIT.run(contexts["binary"], {**DEFAULTS, "confidence": 0.8})
    narrow, wide = result.metrics["roc_auc"].ci, results["binary"].metrics["roc_auc"].ci
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    assert "80% CI" in result.summary and "80% confidence intervals" in result.notes[0]
