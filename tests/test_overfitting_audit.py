"""The "overfitting" audit: findings that fire when (and only when) they should, train-vs-test
gaps equal to scikit-learn's on the same arrays, and a result that is plain, deterministic,
JSON-safe data that the report renderers can draw.

Contexts are built from arrays by ``auditor.testing.make_context``, without a model (the
audit reads predictions only; check_audit fails an audit that tries to run one). The train-vs-test contexts come from scikit-learn estimators fitted
on scikit-learn's bundled data: a one-nearest-neighbour classifier and a random forest, which
memorise their training rows, and strongly regularised linear models, which do not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import datasets
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.contract.context import AuditContext, History
from auditor.contract.result import AuditResult
from auditor.report.charts import render_chart
from auditor.testing import check_audit, make_context
from auditor_plugins.overfitting.audit import OverfittingAudit

AUDIT = OverfittingAudit()
DEFAULTS = OverfittingAudit.defaults()
EPOCHS = np.arange(1, 41)


def options(**changes) -> dict:
    return {**DEFAULTS, **changes}


def predictions(model, X: np.ndarray, kind: str) -> dict:
    """The estimator's predictions, as make_context takes them."""
    if kind == "regression":
        return {"values": model.predict(X).astype(np.float64)}
    return {"proba": model.predict_proba(X)}


def context(
    test: tuple | None = None,
    train: tuple | None = None,
    kind: str = "binary",
    names: tuple[str, ...] = ("no", "yes"),
    history: History | None = None,
    seed: int = 0,
) -> AuditContext:
    """A context from (model, X, y) of the test and the training data, built by make_context;
    the model is only used here, to make the predictions (the context has none to run)."""
    if test is None:  # a history-only context still has audit data
        arrays = {"y": np.array([0, 1, 0, 1]), "proba": np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])}
    else:
        model, X, y = test
        arrays = {"y": y, **predictions(model, X, kind)}
    train_arrays = None
    if train is not None:
        model, X, y = train
        train_arrays = {"y": y, **predictions(model, X, kind)}
    return make_context(**arrays, class_names=None if kind == "regression" else names, task=kind,
                        history=history, train=train_arrays, seed=seed)


def history(val, train=None, **extra) -> History:
    series = {"val_loss": np.asarray(val, np.float64)}
    if train is not None:
        series["train_loss"] = np.asarray(train, np.float64)
    series.update({k: np.asarray(v, np.float64) for k, v in extra.items()})
    return History(source="history.csv", format="csv", epochs=np.arange(1, len(val) + 1), series=series,
                   train_loss="train_loss" if train is not None else None, val_loss="val_loss")


#: Controlled curves (1% noise, seeded): validation loss lowest near epoch 12, then up 60%.
_RNG = np.random.default_rng(7)
TRAIN_CURVE = 0.02 + 0.6 * np.exp(-EPOCHS / 6)
OVERFIT_CURVE = np.where(EPOCHS <= 12, 0.3 + 0.4 * (12 - EPOCHS) / 11, 0.3 * (1 + 0.6 * (EPOCHS - 12) / 28))
OVERFIT_CURVE = OVERFIT_CURVE * (1 + 0.01 * _RNG.standard_normal(EPOCHS.size))
HEALTHY_CURVE = (0.25 + 0.45 * np.exp(-EPOCHS / 5)) * (1 + 0.01 * _RNG.standard_normal(EPOCHS.size))


def _split(loader, train_size, seed=0, stratify=True):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, train_size=train_size, random_state=seed, stratify=y if stratify else None)


@pytest.fixture(scope="module")
def contexts() -> dict[str, AuditContext]:
    out = {}
    X_tr, X_te, y_tr, y_te = _split(datasets.load_breast_cancer, 0.5)
    nearest = KNeighborsClassifier(n_neighbors=1).fit(X_tr, y_tr)
    out["binary"] = context((nearest, X_te, y_te), (nearest, X_tr, y_tr), "binary", ("malignant", "benign"))
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)).fit(X_tr, y_tr)
    out["binary_regularised"] = context((linear, X_te, y_te), (linear, X_tr, y_tr), "binary",
                                        ("malignant", "benign"))
    X_tr, X_te, y_tr, y_te = _split(datasets.load_wine, 0.5)
    wine = RandomForestClassifier(n_estimators=50, max_depth=2, random_state=0).fit(X_tr, y_tr)
    out["multiclass"] = context((wine, X_te, y_te), (wine, X_tr, y_tr), "multiclass",
                                ("class_0", "class_1", "class_2"))
    X_tr, X_te, y_tr, y_te = _split(datasets.load_diabetes, 0.5, stratify=False)
    reg = RandomForestRegressor(n_estimators=50, random_state=0).fit(X_tr, y_tr)
    out["regression"] = context((reg, X_te, y_te), (reg, X_tr, y_tr), "regression")
    ridge = Ridge(alpha=1.0).fit(X_tr, y_tr)
    out["regression_ridge"] = context((ridge, X_te, y_te), (ridge, X_tr, y_tr), "regression")
    return out


@pytest.fixture(scope="module")
def results(contexts) -> dict[str, AuditResult]:
    return {name: AUDIT.run(ctx, DEFAULTS) for name, ctx in contexts.items()}


TRAIN_CONTEXTS = ["binary", "binary_regularised", "multiclass", "regression", "regression_ridge"]


# ---- what runs when -----------------------------------------------------------------------


def test_with_neither_a_history_nor_training_data_it_is_skipped():
    result = AUDIT.run(context(), DEFAULTS)
    assert result.status == "skipped"
    assert "needs --history or --train-data" in result.summary
    assert result.metrics == {} and result.findings == []


def test_a_history_without_a_validation_series_is_skipped_with_the_series_named():
    only_train = History(source="log.csv", format="csv", epochs=EPOCHS, series={"loss": TRAIN_CURVE},
                         train_loss="loss", val_loss=None)
    result = AUDIT.run(context(history=only_train), DEFAULTS)
    assert result.status == "skipped"
    assert "no validation series" in result.summary and "'loss'" in result.summary
    assert "overfitting.monitor" in result.summary


def test_without_a_validation_series_the_training_data_part_still_runs(contexts):
    only_train = History(source="log.csv", format="csv", epochs=EPOCHS, series={"loss": TRAIN_CURVE},
                         train_loss="loss", val_loss=None)
    ctx = contexts["binary_regularised"]
    ctx = AuditContext(model=ctx.model, data=ctx.data, task=ctx.task, predictions=ctx.predictions,
                       history=only_train, train=ctx.train)
    result = AUDIT.run(ctx, DEFAULTS)
    assert "no-validation-series" in [f.code for f in result.findings]
    assert "gap_roc_auc" in result.metrics and "best_epoch" not in result.metrics


def test_an_unknown_series_name_is_an_error_that_lists_the_series():
    ctx = context(history=history(OVERFIT_CURVE, TRAIN_CURVE))
    with pytest.raises(ValueError, match=r"monitor='val_acc'.*'val_loss', 'train_loss'"):
        AUDIT.run(ctx, options(monitor="val_acc"))


# ---- the history --------------------------------------------------------------------------


def codes(result: AuditResult) -> dict[str, str]:
    return {f.code: f.severity for f in result.findings}


def test_an_overfitting_history_warns_with_the_best_epoch_and_the_onset():
    result = AUDIT.run(context(history=history(OVERFIT_CURVE, TRAIN_CURVE)), options(max_val_degradation=10.0))
    best = int(EPOCHS[np.argmin(OVERFIT_CURVE)])
    assert codes(result)["overfitting"] == "warning" and result.status == "warn"
    m = {k: v.value for k, v in result.metrics.items()}
    assert m["best_epoch"] == best
    assert m["best_val_loss"] == OVERFIT_CURVE.min() and m["final_val_loss"] == OVERFIT_CURVE[-1]
    assert m["epochs_past_best"] == 40 - best
    assert m["val_degradation"] == pytest.approx(OVERFIT_CURVE[-1] / OVERFIT_CURVE.min() - 1)
    assert m["generalization_gap"] == pytest.approx(OVERFIT_CURVE[-1] - TRAIN_CURVE[-1])
    assert m["generalization_gap_at_best"] == pytest.approx(OVERFIT_CURVE[best - 1] - TRAIN_CURVE[best - 1])
    assert m["gap_trend"] > 0
    assert {k for k, v in result.metrics.items() if v.headline} == {"val_degradation", "generalization_gap"}
    table = {row[0]: row[1] for row in result.tables[0].rows}
    assert table["verdict"] == "overfitting" and table["best epoch"] == best
    assert abs(table["overfitting onset epoch"] - best) <= 3
    message = next(f.message for f in result.findings if f.code == "overfitting")
    assert f"lowest at epoch {best}" in message and f"stopping at epoch {best}" in message
    assert "training loss kept falling" in message


@pytest.mark.parametrize("limit, severity, status", [(0.10, "error", "fail"), (1.0, "warning", "warn")])
def test_overfitting_is_an_error_when_the_final_value_is_much_worse_than_the_best(limit, severity, status):
    """The final validation loss is about 60% above its best."""
    result = AUDIT.run(context(history=history(OVERFIT_CURVE, TRAIN_CURVE)), options(max_val_degradation=limit))
    assert codes(result)["overfitting"] == severity and result.status == status


def test_a_healthy_history_passes_with_an_info_finding():
    result = AUDIT.run(context(history=history(HEALTHY_CURVE, TRAIN_CURVE)), DEFAULTS)
    assert codes(result) == {"healthy-training": "info"}
    assert result.status == "pass"
    assert "healthy" in result.summary.lower()


def test_an_underfit_history_warns():
    train = 0.7 * np.exp(-np.arange(1, 9) / 10)
    result = AUDIT.run(context(history=history(train + 0.02, train)), DEFAULTS)
    assert codes(result) == {"underfitting": "warning"}
    assert "still falling" in result.findings[0].message


def test_many_epochs_past_the_best_suggest_early_stopping():
    """The best epoch is about 12 of 40: 28 epochs past it, more than twice the patience."""
    result = AUDIT.run(context(history=history(OVERFIT_CURVE, TRAIN_CURVE)), DEFAULTS)
    message = next(f.message for f in result.findings if f.code == "early-stopping")
    assert "patience 5" in message and "restoring the best weights" in message
    few = AUDIT.run(context(history=history(OVERFIT_CURVE, TRAIN_CURVE)), options(patience=15))
    assert "early-stopping" not in codes(few)


def test_a_short_history_gets_no_verdict_and_no_crash():
    result = AUDIT.run(context(history=history([0.7, 0.5], [0.69, 0.45])), DEFAULTS)
    assert codes(result) == {"history-too-short": "info"}
    assert result.metrics["best_epoch"].value == 2
    check_audit(AUDIT, context(history=history([0.7], [0.69])))


def test_a_monitored_metric_that_is_not_the_loss_gets_its_own_keys_and_chart():
    accuracy = np.minimum(0.6 + 0.03 * EPOCHS, 0.9) - 0.004 * np.maximum(EPOCHS - 10, 0)
    h = history(HEALTHY_CURVE, TRAIN_CURVE, val_accuracy=accuracy, train_accuracy=accuracy + 0.05)
    result = AUDIT.run(context(history=h), options(monitor="val_accuracy"))
    assert result.metrics["best_val_accuracy"].value == pytest.approx(0.9)
    assert result.metrics["best_val_accuracy"].direction == "higher"
    assert result.metrics["best_epoch"].value == 10
    assert "overfitting" in codes(result)
    assert [c.name for c in result.charts] == ["loss_curves", "monitored_curve"]
    monitored = result.charts[1].data
    assert [s["name"] for s in monitored["series"]] == ["val_accuracy", "train_accuracy"]
    assert monitored["markers"][0] == {"x": 10, "label": "best epoch 10"}


def test_the_loss_chart_marks_the_best_epoch_and_the_onset_and_uses_a_log_axis_when_needed():
    overfit = AUDIT.run(context(history=history(OVERFIT_CURVE, TRAIN_CURVE)), DEFAULTS)
    chart = overfit.charts[0]
    assert chart.kind == "curve" and chart.data["x_label"] == "Epoch"
    labels = [m["label"] for m in chart.data["markers"]]
    best = int(EPOCHS[np.argmin(OVERFIT_CURVE)])
    assert labels[0] == f"best epoch {best}" and labels[1].startswith("overfitting onset ")
    # Training loss runs from 0.6 down to 0.02 (1.5 decades): log scale. Halve that span: linear.
    assert chart.data["y_scale"] == "log"
    assert "y_scale" not in AUDIT.run(context(history=history(HEALTHY_CURVE, 0.2 + TRAIN_CURVE)),
                                      DEFAULTS).charts[0].data
    svg = str(render_chart(chart.to_dict(), "loss"))
    assert svg.count('stroke-dasharray="4 3"') == 2
    assert f"best epoch {best}</text>" in svg and "overfitting onset" in svg
    assert ">0.01</text>" in svg and ">0.1</text>" in svg and ">1</text>" in svg
    assert "Logarithmic y axis" in svg


def test_marker_labels_are_escaped_and_log_axes_skip_values_that_are_not_positive():
    chart = {
        "kind": "curve", "title": "t",
        "data": {"x_label": "Epoch", "y_label": "Loss", "y_scale": "log",
                 "series": [{"name": "a", "x": [1, 2, 3, 4], "y": [1.0, 0.0, 0.02, 0.5]}],
                 "markers": [{"x": 3, "label": '<script>alert("x")</script>'}]},
    }
    svg = str(render_chart(chart, "c"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count("<polyline") == 2  # the zero splits the line
    assert ">0.01</text>" in svg and ">0.02</text>" in svg and ">0.05</text>" in svg  # 1-2-5 ticks
    from auditor.report.charts import ChartDataError

    for bad, match in (({"y_scale": "sqrt"}, "y_scale"), ({"markers": [{"label": "no x"}]}, "number 'x'")):
        with pytest.raises(ChartDataError, match=match):
            render_chart({**chart, "data": {**chart["data"], **bad}}, "c")


# ---- train vs test ------------------------------------------------------------------------


def sklearn_metrics(y, proba_or_pred, kind) -> dict[str, float]:
    if kind == "regression":
        return {"mae": skm.mean_absolute_error(y, proba_or_pred), "rmse": skm.root_mean_squared_error(y, proba_or_pred),
                "r2": skm.r2_score(y, proba_or_pred), "mse": skm.mean_squared_error(y, proba_or_pred)}
    proba = proba_or_pred
    label = proba.argmax(axis=1)
    out = {"accuracy": skm.accuracy_score(y, label), "balanced_accuracy": skm.balanced_accuracy_score(y, label),
           "mcc": skm.matthews_corrcoef(y, label), "log_loss": skm.log_loss(y, proba, labels=range(proba.shape[1]))}
    if kind == "binary":
        out.update(roc_auc=skm.roc_auc_score(y, proba[:, 1]), f1=skm.f1_score(y, label),
                   brier=skm.brier_score_loss(y, proba[:, 1]))
    else:
        out.update(roc_auc=skm.roc_auc_score(y, proba, multi_class="ovr"),
                   f1_macro=skm.f1_score(y, label, average="macro"))
    return out


@pytest.mark.parametrize("name", TRAIN_CONTEXTS)
def test_train_and_gap_values_equal_sklearn_on_the_same_arrays(name, contexts, results):
    ctx, result = contexts[name], results[name]
    kind = ctx.task.kind
    pick = (lambda p: p.value) if kind == "regression" else (lambda p: p.proba)
    train = sklearn_metrics(ctx.train.data.y, pick(ctx.train.predictions), kind)
    test = sklearn_metrics(ctx.data.y, pick(ctx.predictions), kind)
    lower_is_better = {"log_loss", "brier", "mae", "rmse", "mse"}
    for key in train:
        expected = (test[key] - train[key]) if key in lower_is_better else (train[key] - test[key])
        assert result.metrics[f"train_{key}"].value == pytest.approx(train[key], abs=1e-12), key
        assert result.metrics[f"gap_{key}"].value == pytest.approx(expected, abs=1e-12), key


@pytest.mark.parametrize("name", TRAIN_CONTEXTS)
def test_every_gap_interval_contains_its_point_and_names_its_method(name, results):
    gaps = {k: m for k, m in results[name].metrics.items() if k.startswith("gap_") and k != "gap_trend"}
    assert gaps
    for key, m in gaps.items():
        if key == "gap_max_error":  # a maximum has no interval
            assert m.ci is None
            continue
        assert m.ci is not None and m.ci[0] <= m.value <= m.ci[1], key
        confusion = key.removeprefix("gap_") in {"accuracy", "balanced_accuracy", "f1", "mcc", "precision",
                                                "recall", "f1_macro", "precision_macro", "recall_macro",
                                                "f1_weighted", "precision_weighted", "recall_weighted"}
        assert ("multinomial bootstrap" in m.ci_method) == confusion, key
        assert ("normal interval" in m.ci_method) == (not confusion), key


def test_the_confusion_gap_interval_is_the_exact_bootstrap_of_the_difference(contexts, results):
    """Recomputed by hand: independent multinomial draws of each confusion matrix."""
    ctx = contexts["binary"]
    cms = []
    for y, p, stream in ((ctx.train.data.y, ctx.train.predictions, 21), (ctx.data.y, ctx.predictions, 22)):
        cm = skm.confusion_matrix(y, p.label, labels=[0, 1])
        draws = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(stream,))).multinomial(
            cm.sum(), cm.ravel() / cm.sum(), size=1000)
        cms.append(draws.reshape(-1, 2, 2))
    acc = [np.trace(c, axis1=1, axis2=2) / c.sum(axis=(1, 2)) for c in cms]
    low, high = np.quantile(acc[0] - acc[1], [0.025, 0.975])
    assert results["binary"].metrics["gap_accuracy"].ci == pytest.approx((low, high))


def test_a_memorising_classifier_warns_and_a_regularised_one_does_not(results):
    nearest = results["binary"]
    assert nearest.metrics["train_roc_auc"].value == 1.0  # each training row is its own neighbour
    assert nearest.metrics["gap_roc_auc"].headline and nearest.metrics["gap_roc_auc"].ci[0] > 0.05
    assert codes(nearest) == {"train-test-gap": "warning"} and nearest.status == "warn"
    assert "ROC-AUC gap (train - test)" in nearest.summary
    regularised = results["binary_regularised"]
    assert abs(regularised.metrics["gap_roc_auc"].value) < 0.02
    assert codes(regularised) == {} and regularised.status == "pass"


@pytest.mark.parametrize("name", ["binary", "regression"])
def test_the_gap_finding_is_a_warning_only_when_the_interval_clears_the_limit(name, contexts, results):
    headline = "gap_roc_auc" if name == "binary" else "gap_r2"
    gap = results[name].metrics[headline]
    assert gap.headline and gap.ci[0] > 0
    ctx = contexts[name]
    below_interval = AUDIT.run(ctx, options(max_gap=gap.ci[0] / 2))
    assert codes(below_interval)["train-test-gap"] == "warning"
    inside_interval = AUDIT.run(ctx, options(max_gap=(gap.ci[0] + gap.value) / 2))
    assert codes(inside_interval)["train-test-gap"] == "info"
    above_point = AUDIT.run(ctx, options(max_gap=gap.value + 0.01))
    assert "train-test-gap" not in codes(above_point)


def test_the_regression_path_reports_r2_gaps_and_a_summary(results):
    forest, ridge = results["regression"], results["regression_ridge"]
    assert forest.metrics["gap_r2"].value > 0.3  # a forest fits its training targets far better
    assert codes(forest)["train-test-gap"] == "warning" and forest.status == "warn"
    assert "R² gap" in forest.summary
    # Ridge's gap (about 0.05) is sampling noise: its interval reaches 0, so at most an info.
    assert abs(ridge.metrics["gap_r2"].value) < 0.1 and ridge.metrics["gap_r2"].ci[0] < 0
    assert codes(ridge).get("train-test-gap", "info") == "info" and ridge.status == "pass"
    table = next(t for t in forest.tables if t.name == "train_vs_test")
    assert table.columns == ["metric", "train", "test", "gap", "gap CI low", "gap CI high"]
    assert [row[0] for row in table.rows][:4] == ["MAE", "MSE", "RMSE", "R²"]


# ---- the contract -------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRAIN_CONTEXTS)
def test_passes_check_audit_with_a_history_and_training_data(name, contexts):
    ctx = contexts[name]
    ctx = AuditContext(model=ctx.model, data=ctx.data, task=ctx.task, predictions=ctx.predictions,
                       history=history(OVERFIT_CURVE, TRAIN_CURVE), train=ctx.train)
    result = check_audit(AUDIT, ctx, {"n_resamples": 200})
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert AuditResult.from_dict(json.loads(text)).to_dict() == result.to_dict()
    assert {"best_epoch", "generalization_gap", "val_degradation"} <= set(result.metrics)
    assert [c.name for c in result.charts][0] == "loss_curves"
    for i, chart in enumerate(result.charts):
        render_chart(chart.to_dict(), f"c{i}")  # every chart is drawable


def test_deterministic_under_a_seed_and_only_the_intervals_move_with_it(contexts):
    ctx = contexts["binary"]
    first = AUDIT.run(ctx, DEFAULTS).to_dict()
    assert AUDIT.run(ctx, DEFAULTS).to_dict() == first
    other = AuditContext(model=ctx.model, data=ctx.data, task=ctx.task, predictions=ctx.predictions,
                         train=ctx.train, seed=1)
    second = AUDIT.run(other, DEFAULTS).to_dict()
    assert {k: m["value"] for k, m in second["metrics"].items()} == {k: m["value"] for k, m in first["metrics"].items()}
    assert second["metrics"]["gap_accuracy"]["ci"] != first["metrics"]["gap_accuracy"]["ci"]


def test_notes_state_the_rules_and_the_interval_methods(contexts):
    ctx = contexts["binary"]
    ctx = AuditContext(model=ctx.model, data=ctx.data, task=ctx.task, predictions=ctx.predictions,
                       history=history(OVERFIT_CURVE, TRAIN_CURVE), train=ctx.train)
    notes = " ".join(AUDIT.run(ctx, DEFAULTS).notes)
    assert "centred moving average over 5 epochs, truncated at both ends" in notes
    assert "every smoothed value over the last 5 epochs" in notes
    assert "train - test for higher-is-better metrics, test - train for lower-is-better" in notes
    assert "Accuracy, balanced accuracy, precision, recall, F1, MCC: percentile interval of independent exact " \
           "multinomial bootstrap" in notes
    assert "ROC-AUC, average precision, log loss, Brier score: normal interval" in notes
