"""The built-in "metrics" audit: performance metrics with confidence intervals.

Reads the target and the predictions from the context (never the model), computes every
metric with :mod:`auditor.stats.metrics`, and explains what the numbers mean: a warning when
accuracy barely beats always predicting the majority class, a note on class imbalance, a
warning for classes the model never predicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.stats import metrics as stats
from auditor.stats.bootstrap import make_rng
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import (
    AuditResult,
    Chart,
    Direction,
    Finding,
    Metric,
    Table,
    status_from_findings,
)

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext

#: Curves drawn for at most this many classes (the largest ones).
MAX_CURVE_CLASSES = 10
#: Points in a curve and in a scatter chart, at most.
MAX_CURVE_POINTS = 200
MAX_SCATTER_POINTS = 500
#: Generator stream of the scatter subsample (the metric streams are 1 to 3).
_SCATTER_STREAM = 4
#: A class is "minority" below this share of what a balanced split gives it (20% for two classes).
_IMBALANCE_RATIO = 0.4

#: Every metric's display label, direction and description, by key; "{positive}" is filled in
#: for binary tasks. Shared with other audits that report the same metrics (overfitting).
METRIC_DEFINITIONS: dict[str, tuple[str, Direction, str]] = {
    "accuracy": ("Accuracy", "higher", "Share of rows whose predicted class is the true class."),
    "balanced_accuracy": (
        "Balanced accuracy", "higher",
        "Mean recall over the classes present in the target; unaffected by class imbalance.",
    ),
    "precision": ("Precision", "higher", "Share of rows predicted '{positive}' that are '{positive}'."),
    "recall": ("Recall", "higher", "Share of '{positive}' rows predicted '{positive}'."),
    "f1": ("F1", "higher", "Harmonic mean of precision and recall for '{positive}'."),
    "precision_macro": ("Precision (macro)", "higher", "Unweighted mean of the per-class precisions."),
    "recall_macro": ("Recall (macro)", "higher", "Unweighted mean of the per-class recalls."),
    "f1_macro": ("F1 (macro)", "higher", "Unweighted mean of the per-class F1 scores."),
    "precision_weighted": (
        "Precision (weighted)", "higher", "Per-class precisions averaged with weights = class support.",
    ),
    "recall_weighted": (
        "Recall (weighted)", "higher",
        "Per-class recalls averaged with weights = class support (equals accuracy).",
    ),
    "f1_weighted": ("F1 (weighted)", "higher", "Per-class F1 scores averaged with weights = class support."),
    "roc_auc": (
        "ROC-AUC", "higher",
        "Probability that a random '{positive}' row scores above a random row of the other class "
        "(ties count half).",
    ),
    "average_precision": (
        "Average precision", "higher",
        "Area under the precision-recall curve for '{positive}', as a step sum (scikit-learn's definition).",
    ),
    "mcc": (
        "MCC", "higher",
        "Matthews correlation between predicted and true classes, from -1 to 1; 0 is chance level.",
    ),
    "log_loss": (
        "Log loss", "lower",
        "Mean negative log-probability given to the true class (probabilities clipped to [eps, 1-eps]).",
    ),
    "brier": (
        "Brier score", "lower",
        "Mean squared difference between the predicted probability of '{positive}' and the outcome.",
    ),
    "baseline_accuracy": (
        "Majority-class accuracy", "none",
        "Accuracy of always predicting the most frequent class: the floor a useful model must clear.",
    ),
    "mae": ("MAE", "lower", "Mean absolute error."),
    "mse": ("MSE", "lower", "Mean squared error."),
    "rmse": ("RMSE", "lower", "Root mean squared error, in the target's units."),
    "r2": ("R²", "higher", "Share of the target's variance explained (1 is perfect, 0 predicts the mean)."),
    "median_absolute_error": (
        "Median absolute error", "lower", "Median of the absolute errors; robust to outliers.",
    ),
    "max_error": ("Max error", "lower", "Largest absolute error."),
    "mape": ("MAPE", "lower", "Mean absolute percentage error, as a fraction (0.1 = 10%)."),
}

MULTICLASS_DESCRIPTIONS = {
    "roc_auc": "Mean over classes of the one-vs-rest ROC-AUC (macro), as scikit-learn's multi_class='ovr'.",
    "average_precision": "Mean over classes of the one-vs-rest average precision (macro).",
}

#: The metrics a report leads with, by task; other audits judge the same ones.
HEADLINES = {
    "binary": ("roc_auc", "accuracy", "f1"),
    "multiclass": ("accuracy", "f1_macro", "roc_auc"),
    "regression": ("rmse", "r2", "mae"),
}


def in_sentence(label: str) -> str:
    """A label for the middle of a sentence: "Balanced accuracy" -> "balanced accuracy";
    acronyms ("ROC-AUC", "F1 (macro)", "R²") and names ("Brier score") unchanged."""
    if label[1:2].islower() and not label.startswith("Brier"):
        return label[0].lower() + label[1:]
    return label


def sentence_number(value: float) -> str:
    """A number for a sentence: 3 decimals in the usual metric range, else 3-4 significant figures."""
    size = abs(value)
    if size == 0 or 0.01 <= size < 100:
        return f"{value:.3f}"
    if 100 <= size < 1e6:
        return f"{value:,.1f}"
    return f"{value:.3g}"


#: How the intervals of :mod:`auditor.stats.metrics` are computed; shared by every audit that reports
#: those metrics (metrics, overfitting), so one setting means the same everywhere.
INTERVAL_MIN_RESAMPLES = 100
INTERVAL_OPTIONS = (
    Option("confidence", "float", 0.95, "Confidence level of the intervals.", min=0.5, max=0.999),
    Option("n_resamples", "int", 1000, "Bootstrap resamples per interval.", min=INTERVAL_MIN_RESAMPLES,
           max=100_000),
    Option(
        "bootstrap_max_rows", "int", 100_000,
        "Largest data (rows x ranked score columns) for the row bootstrap; analytic intervals beyond.",
        min=0,
    ),
)


def classification_bytes(n_rows: int, n_classes: int, n_resamples: int) -> int:
    """Estimated peak bytes of :func:`auditor.stats.metrics.classification_metrics` for ``n_rows``
    rows and ``n_classes`` classes: the exact bootstrap draws ``n_resamples`` K x K confusion
    matrices (int64) and reads them as float64 (16 bytes a cell each), each class's ranked
    scores hold about 32 bytes a row, and the confusion table in the report ~48 bytes a cell."""
    k = int(n_classes)
    return 16 * int(n_resamples) * k * k + 32 * int(n_rows) * k + 48 * k * k


def check_memory(audit: str, n_rows: int, n_classes: int, n_resamples: int) -> None:
    """Refuse, before allocating anything, a class count whose metric arrays would not fit
    in the memory budget (``AUDITOR_MEMORY_BUDGET``, else the memory available): a
    :class:`~auditor.contract.errors.DataError`, exit 2, with the figures and what would fit."""
    from auditor.contract.errors import DataError
    from auditor.loading.data import MEMORY_BUDGET_VARIABLE, memory_budget
    from auditor.report.numbers import format_bytes

    needed = classification_bytes(n_rows, n_classes, n_resamples)
    budget, source = memory_budget()
    if needed <= budget:
        return
    fixed = classification_bytes(n_rows, n_classes, 0)
    fits = (budget - fixed) // (16 * n_classes * n_classes) if budget > fixed else 0
    fewer = (f"-o {audit}.n_resamples={int(min(fits, n_resamples - 1))} fits the budget; or s"
             if fits >= INTERVAL_MIN_RESAMPLES else "S")
    raise DataError(
        f"The {audit} audit needs about {format_bytes(needed)} of memory for {n_classes:,} classes "
        f"({n_resamples:,} bootstrap resamples of the {n_classes:,} x {n_classes:,} confusion matrix, "
        f"{n_rows:,} rows), but only {format_bytes(budget)} is {source}.",
        hint=f"{fewer}kip the audit (--skip {audit}), or use a machine with more memory; "
        f"{MEMORY_BUDGET_VARIABLE} (e.g. 16GB) overrides the budget if the estimate is too cautious.",
    )


class MetricsAudit(Audit):
    """Performance metrics with confidence intervals, curves and a confusion matrix."""

    name = "metrics"
    title = "Performance metrics"
    description = "Accuracy, F1, ROC-AUC, log loss or RMSE, R² and more, each with a confidence interval."
    needs = ("target",)
    options = (
        *INTERVAL_OPTIONS,
        Option(
            "baseline_margin", "float", 0.02,
            "Warn when accuracy is at most the majority-class accuracy plus this margin.", min=0.0, max=1.0,
        ),
    )

    def check_context(self, ctx: AuditContext, options: Mapping[str, Any]) -> None:
        """Before any audit runs: refuse (exit 2) a class count whose arrays would not fit."""
        if ctx.task.is_classification:
            check_memory(self.name, ctx.data.n_rows, len(ctx.task.class_names) or ctx.task.n_outputs,
                         int(options["n_resamples"]))

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        if ctx.data.y is None:
            raise ValueError("the metrics audit needs the target column")
        settings = {
            "seed": ctx.seed,
            "n_resamples": int(options["n_resamples"]),
            "confidence": float(options["confidence"]),
            "bootstrap_max_rows": int(options["bootstrap_max_rows"]),
        }
        if ctx.task.is_classification:
            return self._classification(ctx, options, settings)
        return self._regression(ctx, options, settings)

    def _classification(
        self, ctx: AuditContext, options: Mapping[str, Any], settings: dict[str, Any]
    ) -> AuditResult:
        proba, label = ctx.predictions.proba, ctx.predictions.label
        if proba is None:
            raise ValueError("the context has no class probabilities (ctx.predictions.proba)")
        y = np.asarray(ctx.data.y, dtype=np.int64)
        names = list(ctx.task.class_names) or [str(i) for i in range(proba.shape[1])]
        binary = ctx.task.kind == "binary"
        check_memory(self.name, len(y), len(names), settings["n_resamples"])  # run directly, not by the runner
        values = stats.classification_metrics(y, proba, label, class_names=names, **settings)
        label = np.argmax(proba, axis=1) if label is None else np.asarray(label, dtype=np.int64)
        cm = stats.confusion_matrix(y, label, len(names))
        per_class = stats.per_class_scores(cm)
        metrics = self._metrics(values, ctx.task.kind, names[1] if binary else None)
        findings = _classification_findings(values, per_class, names, float(options["baseline_margin"]))
        findings += _undefined_findings(metrics, values)
        tables = [
            Table(
                name="per_class",
                title="Per-class precision, recall and F1",
                columns=["class", "support", "precision", "recall", "f1"],
                rows=[
                    [names[i], int(per_class["support"][i]), float(per_class["precision"][i]),
                     float(per_class["recall"][i]), float(per_class["f1"][i])]
                    for i in range(len(names))
                ],
                caption="A class that is never predicted has precision 0 (scikit-learn's zero_division=0).",
            ),
            Table(
                name="confusion_matrix",
                title="Confusion matrix",
                columns=["true \\ predicted", *names],
                rows=[[names[i], *map(int, cm[i])] for i in range(len(names))],
                caption="Rows are the true classes, columns the predicted classes.",
            ),
        ]
        charts = [
            Chart(
                name="confusion_matrix",
                title="Confusion matrix",
                kind="confusion_matrix",
                data={"labels": names, "matrix": cm.tolist()},
                caption="Rows are the true classes, columns the predicted classes.",
            ),
            *_curve_charts(y, proba, names, binary),
        ]
        notes = [_interval_note(metrics, settings["confidence"])]
        if binary:
            notes.append(
                f"Positive class: '{names[1]}' (model output 1); precision, recall, F1, average "
                "precision and the Brier score refer to it."
            )
        else:
            notes.append(
                "Macro averages weight equally every class present in the target or the "
                "predictions; weighted averages weight them by support. ROC-AUC and average "
                "precision are one-vs-rest macro averages."
            )
        return self._result(metrics, findings, tables, charts, notes, options, ctx.task.kind, len(y))

    def _regression(
        self, ctx: AuditContext, options: Mapping[str, Any], settings: dict[str, Any]
    ) -> AuditResult:
        pred = ctx.predictions.value
        if pred is None:
            raise ValueError("the context has no regression predictions (ctx.predictions.value)")
        y = np.asarray(ctx.data.y, dtype=np.float64)
        pred = np.asarray(pred, dtype=np.float64)
        values = stats.regression_metrics(y, pred, **settings)
        metrics = self._metrics(values, "regression", None)
        findings = _undefined_findings(metrics, values)
        n_shown = min(len(y), MAX_SCATTER_POINTS)
        shown = np.sort(make_rng(ctx.seed, _SCATTER_STREAM).choice(len(y), size=n_shown, replace=False))
        caption = f"{n_shown:,} of {len(y):,} rows"
        caption += ", a seeded random subsample." if n_shown < len(y) else "."
        charts = [
            Chart(
                name="residuals",
                title="Residuals",
                kind="scatter",
                data={"x_label": "Predicted", "y_label": "Residual (actual - predicted)",
                      "x": pred[shown].tolist(), "y": (y[shown] - pred[shown]).tolist(), "reference": "y=0"},
                caption=caption,
            ),
            Chart(
                name="predicted_vs_actual",
                title="Predicted vs actual",
                kind="scatter",
                data={"x_label": "Actual", "y_label": "Predicted",
                      "x": y[shown].tolist(), "y": pred[shown].tolist(), "reference": "y=x"},
                caption=caption,
            ),
        ]
        notes = [
            _interval_note(metrics, settings["confidence"]),
            "MAPE is a fraction, not a percentage (0.1 = 10%).",
        ]
        return self._result(metrics, findings, [], charts, notes, options, "regression", len(y))

    def _metrics(
        self, values: dict[str, stats.MetricValue], kind: str, positive: str | None
    ) -> dict[str, Metric]:
        out = {}
        for key, v in values.items():
            label, direction, description = METRIC_DEFINITIONS[key]
            if kind == "multiclass" and key in MULTICLASS_DESCRIPTIONS:
                description = MULTICLASS_DESCRIPTIONS[key]
            out[key] = Metric(
                value=v.value,
                label=label,
                ci=v.ci,
                ci_method=v.ci_method,
                direction=direction,
                headline=key in HEADLINES[kind],
                description=description.format(positive=positive),
            )
        return out

    def _result(
        self,
        metrics: dict[str, Metric],
        findings: list[Finding],
        tables: list[Table],
        charts: list[Chart],
        notes: list[str],
        options: Mapping[str, Any],
        kind: str,
        n_rows: int,
    ) -> AuditResult:
        level = f"{round(float(options['confidence']) * 100, 1):g}%"
        parts = []
        for key in HEADLINES[kind]:
            m = metrics[key]
            if m.value is None:
                parts.append(f"{in_sentence(m.label)} undefined")
            elif m.ci is None:
                parts.append(f"{in_sentence(m.label)} {sentence_number(m.value)}")
            else:
                ci = f"{level} CI {sentence_number(m.ci[0])}–{sentence_number(m.ci[1])}"
                parts.append(f"{in_sentence(m.label)} {sentence_number(m.value)} ({ci})")
        summary = f"{', '.join(parts)} on {n_rows:,} rows."
        return AuditResult(
            audit=self.name,
            title=self.title,
            status=status_from_findings(findings),
            summary=summary[0].upper() + summary[1:],
            metrics=metrics,
            findings=findings,
            tables=tables,
            charts=charts,
            notes=notes,
            options=dict(options),
        )


def _classification_findings(
    values: dict[str, stats.MetricValue], per_class: dict[str, np.ndarray], names: list[str], margin: float
) -> list[Finding]:
    findings = []
    support = per_class["support"]
    accuracy = values["accuracy"].value
    baseline = values["baseline_accuracy"].value
    if accuracy is not None and baseline is not None and accuracy <= baseline + margin:
        majority = names[int(np.argmax(support))]
        better = ", ".join(
            f"{in_sentence(METRIC_DEFINITIONS[k][0])} {sentence_number(values[k].value)}"
            for k in ("balanced_accuracy", "mcc", "roc_auc")
            if values[k].value is not None
        )
        findings.append(Finding(
            "warning",
            "accuracy-near-baseline",
            f"Accuracy {sentence_number(accuracy)} is within {margin:g} of the {sentence_number(baseline)} scored by always "
            f"predicting the majority class '{majority}', so it says little about this model (and "
            "accuracy misleads on imbalanced data): judge it by balanced accuracy, MCC and ROC-AUC "
            f"instead ({better}).",
        ))
    shares = support / support.sum()
    minority = int(np.argmin(shares))
    if shares[minority] < _IMBALANCE_RATIO / len(names):
        findings.append(Finding(
            "info",
            "class-imbalance",
            f"The classes are imbalanced: '{names[minority]}' is {shares[minority]:.1%} of the rows "
            f"(a balanced split would give each class {1 / len(names):.1%}). Prefer balanced "
            "accuracy, MCC, per-class recall and average precision to plain accuracy.",
        ))
    never = [i for i in range(len(names)) if support[i] > 0 and per_class["predicted"][i] == 0]
    if never:
        listed = ", ".join(f"'{names[i]}' ({int(support[i]):,} rows in the target)" for i in never)
        findings.append(Finding(
            "warning",
            "class-never-predicted",
            f"The model never predicts {listed}: recall for "
            f"{'these classes' if len(never) > 1 else 'it'} is 0, and precision is reported as 0.",
        ))
    return findings


def _undefined_findings(metrics: dict[str, Metric], values: dict[str, stats.MetricValue]) -> list[Finding]:
    return [
        Finding("info", "metric-undefined", f"{metrics[key].label} is undefined: {v.note}.")
        for key, v in values.items()
        if v.value is None
    ]


def _curve_charts(y: np.ndarray, proba: np.ndarray, names: list[str], binary: bool) -> list[Chart]:
    """ROC and precision-recall curves: the positive class, or one-vs-rest for the largest classes."""
    if binary:
        classes = [1]
    else:
        support = np.bincount(y, minlength=len(names))
        largest = np.argsort(-support, kind="stable")[:MAX_CURVE_CLASSES]
        classes = sorted(int(c) for c in largest if support[c] > 0)
    roc, pr = [], []
    for c in classes:
        positive = y == c
        for series, points in ((roc, stats.roc_curve_points(positive, proba[:, c], MAX_CURVE_POINTS)),
                               (pr, stats.pr_curve_points(positive, proba[:, c], MAX_CURVE_POINTS))):
            if points is not None:
                series.append({"name": names[c], "x": points[0], "y": points[1]})
    caption = "" if binary else "One-vs-rest, one curve per class" + (
        f" (the {MAX_CURVE_CLASSES} largest classes)." if len(names) > MAX_CURVE_CLASSES else "."
    )
    charts = []
    if roc:
        charts.append(Chart(
            name="roc",
            title="ROC curve",
            kind="curve",
            data={"x_label": "False positive rate", "y_label": "True positive rate", "series": roc,
                  "diagonal": True},
            caption=caption,
        ))
    if pr:
        charts.append(Chart(
            name="pr",
            title="Precision-recall curve",
            kind="curve",
            data={"x_label": "Recall", "y_label": "Precision", "series": pr, "diagonal": False},
            caption=caption,
        ))
    return charts


def _interval_note(metrics: dict[str, Metric], confidence: float) -> str:
    """One sentence naming each interval method and the metrics it covers."""
    by_method: dict[str, list[str]] = {}
    for m in metrics.values():
        if m.ci_method is not None:
            by_method.setdefault(m.ci_method, []).append(in_sentence(m.label))
    level = f"{round(confidence * 100, 1):g}%"
    if not by_method:
        return f"No {level} confidence interval could be computed."
    clauses = " ".join(f"{', '.join(labels)}: {method}." for method, labels in by_method.items())
    return f"{level} confidence intervals. {clauses[0].upper()}{clauses[1:]}"
