"""The built-in "metrics" audit: performance metrics with confidence intervals.

Reads the target and the predictions from the context (never the model), computes every
metric with :mod:`auditor.stats.metrics`, and explains what the numbers mean: a warning when
accuracy barely beats always predicting the majority class, a note on class imbalance, a
warning for classes the model never predicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor.contract.plugin import Audit, Option
from auditor.contract.result import (
    AuditResult,
    Chart,
    Finding,
    Metric,
    Table,
    status_from_findings,
)
from auditor.contract.vocabulary import (
    HEADLINE_TOLERANCE,
    HEADLINES,
    INTERVAL_OPTIONS,
    METRIC_DEFINITIONS,
    MULTICLASS_DESCRIPTIONS,
    check_memory,
    in_sentence,
    sentence_number,
)
from auditor.stats import binned, tallied
from auditor.stats import metrics as stats
from auditor.stats.bootstrap import RankedScores, make_rng

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


class MetricsAudit(Audit):
    """Performance metrics with confidence intervals, curves and a confusion matrix."""

    name = "metrics"
    title = "Performance metrics"
    description = "Accuracy, F1, ROC-AUC, log loss or RMSE, R² and more, each with a confidence interval."
    needs = ("target",)
    reads_tallies = True
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
            "bootstrap_max_work": int(options["bootstrap_max_work"]),
        }
        if ctx.tallies is not None:
            return self._tallied(ctx, options, settings)
        if ctx.task.is_classification:
            return self._classification(ctx, options, settings)
        return self._regression(ctx, options, settings)

    def _tallied(self, ctx: AuditContext, options: Mapping[str, Any], settings: dict[str, Any]) -> AuditResult:
        """Every row's figures from the run's tallies (see :mod:`auditor.stats.tallied`): exact
        but for ROC-AUC and average precision, binned with their bounds reported beside them."""
        tallies = ctx.tallies
        assert tallies is not None
        if not ctx.task.is_classification:
            values = tallied.regression_metrics(tallies, confidence=settings["confidence"])
            metrics = self._metrics(values, "regression", None)
            charts = _scatter_charts(ctx, np.asarray(ctx.data.y, dtype=np.float64),
                                     np.asarray(ctx.predictions.value, dtype=np.float64), f" of a seeded sample of "
                                     f"{tallies.sample.size:,} of the {tallies.rows:,} rows")
            notes = [_interval_note(metrics, settings["confidence"]), "MAPE is a fraction, not a percentage (0.1 = 10%).",
                     _TALLIED_NOTE.format(rows=tallies.rows)]
            return self._result(metrics, _undefined_findings(metrics, values), [], charts, notes, options,
                                "regression", tallies.rows)
        assert tallies.confusion is not None
        names = list(ctx.task.class_names)
        binary = ctx.task.kind == "binary"
        values, bounds = tallied.classification_metrics(
            tallies, names, seed=settings["seed"], n_resamples=settings["n_resamples"],
            confidence=settings["confidence"])
        cm = tallies.confusion.sum(axis=0)
        per_class = stats.per_class_scores(cm)
        metrics = self._metrics(values, ctx.task.kind, names[1] if binary else None)
        for key, bound in bounds.items():
            label = METRIC_DEFINITIONS[key][0]
            metrics[f"{key}_binning_bound"] = Metric(
                value=bound, label=f"{label}: binning bound", direction="none",
                description=f"The exact {label} of every row is within this of the reported value, which was "
                "computed from the scores counted in bins (the outputs of every row exceeded the memory budget).")
        findings = _classification_findings(values, per_class, names, float(options["baseline_margin"]))
        findings += _undefined_findings(metrics, values)
        charts = [_confusion_chart(names, cm), *_binned_curve_charts(tallies, cm, names, binary)]
        notes = [_interval_note(metrics, settings["confidence"]), _TALLIED_NOTE.format(rows=tallies.rows)]
        if bounds:
            shown = ", ".join(f"{METRIC_DEFINITIONS[k][0]} ±{b:.2g}" for k, b in bounds.items())
            notes.append(f"Binned figures: {shown} at most (the exact values lie within these of the figures shown; "
                         f"scores counted in {binned.BINS:,} bins of their logit).")
        notes.append(_class_note(binary, names))
        return self._result(metrics, findings, _class_tables(names, per_class, cm), charts, notes, options,
                            ctx.task.kind, tallies.rows)

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
        ranked = ctx.ranked_scores  # sorted once per run, shared with crossval
        values = stats.classification_metrics(y, proba, label, class_names=names, ranked=ranked, **settings)
        label = np.argmax(proba, axis=1) if label is None else np.asarray(label, dtype=np.int64)
        cm = stats.confusion_matrix(y, label, len(names))
        per_class = stats.per_class_scores(cm)
        metrics = self._metrics(values, ctx.task.kind, names[1] if binary else None)
        findings = _classification_findings(values, per_class, names, float(options["baseline_margin"]))
        findings += _undefined_findings(metrics, values)
        tables = _class_tables(names, per_class, cm)
        charts = [_confusion_chart(names, cm), *_curve_charts(y, ranked, names, binary)]
        notes = [_interval_note(metrics, settings["confidence"]), _class_note(binary, names)]
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
        charts = _scatter_charts(ctx, y, pred, "")
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
                tolerance=HEADLINE_TOLERANCE if key in HEADLINES[kind] and direction != "none" else None,
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


#: Said of a result computed from tallies.
_TALLIED_NOTE = ("Computed over all {rows:,} rows from tallies kept chunk by chunk (the outputs, labels and groups of "
                 "every row exceeded a quarter of the memory budget, run.engine.data.binned in report.json): the "
                 "same figures as from the rows, but for those listed as binned.")


def _class_tables(names: list[str], per_class: dict[str, np.ndarray], cm: np.ndarray) -> list[Table]:
    return [
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


def _confusion_chart(names: list[str], cm: np.ndarray) -> Chart:
    return Chart(
        name="confusion_matrix",
        title="Confusion matrix",
        kind="confusion_matrix",
        data={"labels": names, "matrix": cm.tolist()},
        caption="Rows are the true classes, columns the predicted classes.",
    )


def _class_note(binary: bool, names: list[str]) -> str:
    if binary:
        return (f"Positive class: '{names[1]}' (model output 1); precision, recall, F1, average "
                "precision and the Brier score refer to it.")
    return ("Macro averages weight equally every class present in the target or the "
            "predictions; weighted averages weight them by support. ROC-AUC and average "
            "precision are one-vs-rest macro averages.")


def _scatter_charts(ctx: AuditContext, y: np.ndarray, pred: np.ndarray, of: str) -> list[Chart]:
    """Residuals and predicted against actual, for at most MAX_SCATTER_POINTS rows (``of``: whose rows)."""
    n_shown = min(len(y), MAX_SCATTER_POINTS)
    shown = np.sort(make_rng(ctx.seed, _SCATTER_STREAM).choice(len(y), size=n_shown, replace=False))
    caption = f"{n_shown:,} of {len(y):,} rows{of}"
    caption += ", a seeded random subsample." if n_shown < len(y) else "."
    return [
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


def _binned_curve_charts(tallies: Any, cm: np.ndarray, names: list[str], binary: bool) -> list[Chart]:
    """ROC and precision-recall curves at the score bins' thresholds."""
    support = cm.sum(axis=1)
    if binary:
        classes = [(1, tallies.scores[0])]
    else:
        largest = np.argsort(-support, kind="stable")[:MAX_CURVE_CLASSES]
        classes = [(int(c), tallies.scores[int(c)]) for c in sorted(largest) if support[c] > 0]
    roc, pr = [], []
    for c, bins in classes:
        if bins.n_pos and bins.n_neg:
            roc.append({"name": names[c], **dict(zip("xy", stats.downsample(*binned.roc_points(bins), MAX_CURVE_POINTS)))})
        if bins.n_pos:
            pr.append({"name": names[c], **dict(zip("xy", stats.downsample(*binned.pr_points(bins), MAX_CURVE_POINTS)))})
    caption = f"At the thresholds of {binned.BINS:,} bins of the score's logit" + (
        "." if binary else ", one-vs-rest, one curve per class" + (
            f" (the {MAX_CURVE_CLASSES} largest classes)." if len(names) > MAX_CURVE_CLASSES else "."))
    charts = []
    if roc:
        charts.append(Chart(name="roc", title="ROC curve", kind="curve", caption=caption,
                            data={"x_label": "False positive rate", "y_label": "True positive rate", "series": roc,
                                  "diagonal": True}))
    if pr:
        charts.append(Chart(name="pr", title="Precision-recall curve", kind="curve", caption=caption,
                            data={"x_label": "Recall", "y_label": "Precision", "series": pr, "diagonal": False}))
    return charts


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
            f"{in_sentence(METRIC_DEFINITIONS[k][0])} {sentence_number(float(values[k].value or 0.0))}"
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


def _curve_charts(y: np.ndarray, ranked: Sequence[RankedScores], names: list[str], binary: bool) -> list[Chart]:
    """ROC and precision-recall curves: the positive class, or one-vs-rest for the largest
    classes (``ranked``: the context's ranked scores, one per class, or the positive class's)."""
    if binary:
        classes = [1]
    else:
        support = np.bincount(y, minlength=len(names))
        largest = np.argsort(-support, kind="stable")[:MAX_CURVE_CLASSES]
        classes = sorted(int(c) for c in largest if support[c] > 0)
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    for c in classes:
        column = ranked[0] if binary else ranked[c]
        counts = stats.descending_counts(column)
        for series, points in ((roc, stats.roc_points(column, MAX_CURVE_POINTS, counts)),
                               (pr, stats.pr_points(column, MAX_CURVE_POINTS, counts))):
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
