"""The built-in "overfitting" audit: the training history and the train-vs-test gap.

Two independent inputs, either or both:

- ``--history`` (``ctx.history``): the per-epoch curves. :func:`auditor_plugins.overfitting.curves.analyse_history`
  finds the best epoch, the generalisation gap and its trend, and gives a verdict:
  overfitting (the smoothed validation curve worsens for a sustained stretch while the
  training loss keeps falling), underfitting (both losses still falling at the end, or
  flat while training barely moved), healthy, or "worsening" (validation worsens but the
  training loss does not fall).
- ``--train-data`` (``ctx.train``): the metrics audit's metric suite on the training and
  the test data and the gap between them, with intervals
  (:func:`auditor_plugins.overfitting.curves.metric_gaps`).

It reads the context only: it never calls the model. This module computes the numbers and the
verdict (metrics, findings, status); the tables, charts and sentences built from them are in
:mod:`auditor_plugins.overfitting.present`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.contract.plugin import Audit, Option
from auditor.contract.result import (
    AuditResult,
    Direction,
    Finding,
    Metric,
    status_from_findings,
)
from auditor.contract.result import (
    ResultPart as _Part,
)
from auditor.contract.vocabulary import (
    HEADLINE_TOLERANCE,
    INTERVAL_OPTIONS,
    METRIC_DEFINITIONS,
    MULTICLASS_DESCRIPTIONS,
    check_memory,
    in_sentence,
    sentence_number,
)
from auditor.stats import metrics as stats
from auditor.stats import tallied
from auditor_plugins.overfitting import curves as of
from auditor_plugins.overfitting.present import (
    gap_chart,
    history_charts,
    history_notes,
    history_sentence,
    history_summary,
    history_table,
    train_test_notes,
    train_test_table,
)

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext, History

#: The metric whose train-vs-test gap drives the finding, in order of preference.
_GAP_HEADLINES = {
    "binary": ("roc_auc", "accuracy"),
    "multiclass": ("roc_auc", "accuracy"),
    "regression": ("r2",),
}
_KEY_UNSAFE = re.compile(r"[^a-z0-9_]+")


def _key(name: str) -> str:
    """A series name as a metric-key fragment: ``val/acc`` -> ``val_acc``."""
    return _KEY_UNSAFE.sub("_", name.lower()).strip("_") or "monitored"


class OverfittingAudit(Audit):
    """Overfitting and underfitting from the training curves and the train-vs-test gap."""

    name = "overfitting"
    title = "Overfitting"
    description = (
        "Over- or underfitting from the training history (best epoch, generalisation gap, early "
        "stopping) and the train-vs-test metric gap with intervals."
    )
    needs = ("target",)
    reads_tallies = True  # the train-vs-test figures come from either side's tallies when a side kept them
    options = (
        Option("monitor", "str", "", "History series judged for the best epoch; empty: the validation loss."),
        Option(
            "mode", "str", "auto",
            "Whether the monitored series is better low (min) or high (max); auto: min when its "
            "name contains 'loss' or 'error'.",
            choices=("auto", "min", "max"),
        ),
        Option("train_key", "str", "", "History series of the training loss; empty: the one recognised."),
        Option("val_key", "str", "", "History series of the validation loss; empty: the one recognised."),
        Option(
            "patience", "int", 5,
            "Epochs a rise must last, and the patience of the suggested early stopping.", min=1, max=10_000,
        ),
        Option(
            "smoothing", "int", 5,
            "Window (epochs) of the centred moving average; even windows are widened by one.",
            min=1, max=1001,
        ),
        Option(
            "min_rise", "float", 0.02,
            "Smallest rise of the smoothed validation curve that counts, relative to its best value.",
            min=0.0, max=100.0,
        ),
        Option(
            "noise_z", "float", 3.0,
            "A rise must also exceed this many standard errors of the curve's own epoch-to-epoch noise.",
            min=0.0, max=100.0,
        ),
        Option(
            "underfit_slope", "float", 0.01,
            "A loss is still falling when it drops by more than this share of its level per epoch "
            "(and significantly) over the last epochs.",
            min=0.0, max=1.0,
        ),
        Option(
            "underfit_progress", "float", 0.05,
            "Flat curves are underfit when the final training loss is within this share of the first epoch's.",
            min=0.0, max=1.0,
        ),
        Option(
            "max_val_degradation", "float", 0.10,
            "Overfitting is an error when the final monitored value is this much worse (relative) than its best.",
            min=0.0,
        ),
        Option(
            "max_gap", "float", 0.05,
            "Largest acceptable train-minus-test gap of the headline metric (ROC-AUC, accuracy or R²).",
            min=0.0,
        ),
        *INTERVAL_OPTIONS,
    )

    def check_context(self, ctx: AuditContext, options: Mapping[str, Any]) -> None:
        """Before any audit runs: refuse (exit 2) a class count whose train-vs-test metric
        arrays would not fit in memory (see :func:`auditor.contract.vocabulary.check_memory`)."""
        if ctx.train is not None and ctx.task.is_classification:
            rows = max(ctx.data.n_rows, ctx.train.data.n_rows)
            check_memory(self.name, rows, len(ctx.task.class_names) or ctx.task.n_outputs,
                         int(options["n_resamples"]))

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        if ctx.history is None and ctx.train is None:
            return AuditResult.skipped(
                self.name, self.title, "needs --history or --train-data (a training history or the training data)"
            )
        parts: list[_Part] = []
        if ctx.history is not None:
            part = _history_part(ctx.history, options)
            if part is None:
                if ctx.train is None:
                    return AuditResult.skipped(self.name, self.title, _no_validation(ctx.history))
                part = _Part(
                    findings=[Finding("info", "no-validation-series", _no_validation(ctx.history))],
                    notes=[_no_validation(ctx.history)],
                )
            parts.append(part)
        if ctx.train is not None:
            parts.append(_train_part(ctx, options))
        findings = [f for p in parts for f in p.findings]
        summary = "; ".join(p.summary for p in parts if p.summary) or "No verdict."
        summary = summary[0].upper() + summary[1:]
        unjudged = not any(p.assessed for p in parts)
        if unjudged:
            summary = ("Not assessed: " + summary[0].lower() + summary[1:]).rstrip(".") + (
                f". A verdict needs at least {of.MIN_EPOCHS} epochs with a monitored value, or --train-data "
                "for the train-versus-test gap")
        return AuditResult.from_parts(
            self.name, self.title, parts, options=options,
            status="not assessed" if unjudged else status_from_findings(findings),
            summary=summary if summary.endswith(".") else summary + ".",
        )


def _no_validation(history: History) -> str:
    names = ", ".join(repr(n) for n in history.series) or "none"
    return (
        f"The training history {history.source!r} has no validation series with a value to judge (its series: "
        f"{names}); name one with -o overfitting.monitor=NAME or -o overfitting.val_key=NAME."
    )


def _series(history: History, name: str, option: str) -> np.ndarray:
    if name not in history.series:
        names = ", ".join(repr(n) for n in history.series) or "none"
        raise ValueError(
            f"the option overfitting.{option}={name!r} names no series of the history {history.source!r} "
            f"(its series: {names})"
        )
    return np.asarray(history.series[name], dtype=np.float64)


# ---- the history --------------------------------------------------------------------------


def _history_part(history: History, options: Mapping[str, Any]) -> _Part | None:
    """The history's metrics, findings, table and charts; None when there is no validation
    series to judge."""
    train_key = options["train_key"] or history.train_loss
    val_key = options["val_key"] or history.val_loss
    monitor = options["monitor"] or val_key
    train = _series(history, train_key, "train_key") if train_key else None
    val = _series(history, val_key, "val_key") if val_key else None
    if monitor is None:
        return None
    monitored = _series(history, monitor, "monitor" if options["monitor"] else "val_key")
    if not np.any(np.isfinite(monitored)):
        return None
    mode: of.Mode = of.auto_mode(monitor) if options["mode"] == "auto" else options["mode"]
    patience = int(options["patience"])
    a = of.analyse_history(
        history.epochs, monitored, monitor=monitor, mode=mode, train_loss=train, val_loss=val,
        patience=patience, smoothing=int(options["smoothing"]), min_rise=float(options["min_rise"]),
        noise_z=float(options["noise_z"]), underfit_slope=float(options["underfit_slope"]),
        underfit_progress=float(options["underfit_progress"]),
    )
    is_loss = monitor == val_key
    name = "validation loss" if is_loss else f"'{monitor}'"
    suffix = "val_loss" if is_loss else _key(monitor)
    better: Direction = "lower" if mode == "min" else "higher"
    metrics = {
        "best_epoch": Metric(
            a.best_epoch, "Best epoch", direction="none",
            description=f"Epoch where the raw {name} was best ({'lowest' if mode == 'min' else 'highest'}).",
        ),
        f"best_{suffix}": Metric(a.best_value, f"Best {name}", direction=better,
                                 description=f"The {name} at the best epoch."),
        f"final_{suffix}": Metric(a.final_value, f"Final {name}", direction=better,
                                  description=f"The {name} at the last epoch that logged it."),
        "epochs_past_best": Metric(
            a.epochs_past_best, "Epochs past the best", direction="lower",
            description="Epochs trained after the best epoch (the history's last epoch minus the best epoch).",
        ),
        "val_degradation": Metric(
            a.degradation, "Validation degradation", direction="lower", headline=True, tolerance=HEADLINE_TOLERANCE,
            description=f"How much worse the final {name} is than its best, relative to the best "
            "(0 when the last epoch is the best).",
        ),
        "generalization_gap": Metric(
            a.gap_final, "Generalisation gap", direction="lower", headline=True, tolerance=HEADLINE_TOLERANCE,
            description="Validation loss minus training loss at the last epoch that logged both.",
        ),
        "generalization_gap_at_best": Metric(
            a.gap_at_best, "Generalisation gap at the best epoch", direction="lower",
            description="Validation loss minus training loss at the best epoch.",
        ),
        "gap_trend": Metric(
            a.gap_trend, "Generalisation gap trend", direction="lower",
            description=f"OLS slope of the generalisation gap per epoch over the last "
            f"{a.gap_trend_epochs or 'third of the'} epochs (positive: widening).",
        ),
    }
    sentence = history_sentence(a, name, options, train_key is not None)
    findings = _history_findings(a, sentence, name, options)
    table = history_table(a, monitor, name, patience, sentence)
    notes = history_notes(history, a, monitor, name, options, has_train=train_key is not None,
                          has_val=val_key is not None)
    charts = history_charts(history, a, train_key, val_key, monitor, is_loss)
    return _Part(metrics, findings, [table], charts, notes, history_summary(a, name),
                 assessed=a.verdict != "undetermined")


def _history_findings(
    a: of.HistoryAnalysis, sentence: str, name: str, options: Mapping[str, Any]
) -> list[Finding]:
    patience = int(options["patience"])
    findings = []
    if a.verdict == "overfitting":
        limit = float(options["max_val_degradation"])
        severe = a.degradation is not None and a.degradation > limit
        extra = (
            f" The final {name} is {a.degradation:.1%} worse than its best, more than the "
            f"{limit:.0%} allowed (overfitting.max_val_degradation)." if severe else ""
        )
        findings.append(Finding("error" if severe else "warning", "overfitting", sentence + extra))
    elif a.verdict == "worsening":
        findings.append(Finding("warning", "validation-worsening", sentence))
    elif a.verdict == "underfitting":
        findings.append(Finding("warning", "underfitting", sentence))
    elif a.verdict == "healthy":
        findings.append(Finding("info", "healthy-training", sentence))
    else:
        findings.append(Finding("info", "history-too-short", sentence))
    if a.epochs_past_best > 2 * patience:
        kept = int(np.flatnonzero(a.epochs == a.stop_kept_epoch)[0])
        findings.append(Finding(
            "info",
            "early-stopping",
            f"Training went on for {a.epochs_past_best} epochs after the best epoch ({a.best_epoch}), "
            f"more than twice the patience of {patience}: early stopping on the {name} with "
            f"patience {patience} would have stopped at epoch {a.stop_epoch} and, restoring the best "
            f"weights, kept epoch {a.stop_kept_epoch}'s model ({name} {sentence_number(float(a.values[kept]))}).",
        ))
    return findings


def _train_part(ctx: AuditContext, options: Mapping[str, Any]) -> _Part:
    assert ctx.train is not None
    if ctx.data.y is None or ctx.train.data.y is None:
        raise ValueError("the train-vs-test comparison needs the target in the test and the training data")
    settings: dict[str, Any] = {
        "seed": ctx.seed,
        "n_resamples": int(options["n_resamples"]),
        "confidence": float(options["confidence"]),
        "bootstrap_max_rows": int(options["bootstrap_max_rows"]),
        "bootstrap_max_work": int(options["bootstrap_max_work"]),
    }
    kind = ctx.task.kind
    train_p, test_p = ctx.train.predictions, ctx.predictions
    confusion = None
    positive = None
    if ctx.task.is_classification:
        if train_p.proba is None or test_p.proba is None:
            raise ValueError("the context has no class probabilities for the training or the test data")
        k = test_p.proba.shape[1]
        names = list(ctx.task.class_names) or [str(i) for i in range(k)]
        positive = names[1] if kind == "binary" else None
        sides = []
        for data, predictions, tallies in ((ctx.train.data, train_p, ctx.train.tallies),
                                           (ctx.data, test_p, ctx.tallies)):
            if tallies is not None and tallies.confusion is not None:  # every row's, from the run's tallies
                values, _ = tallied.classification_metrics(
                    tallies, names, seed=settings["seed"], n_resamples=settings["n_resamples"],
                    confidence=settings["confidence"])
                sides.append((values, tallies.confusion.sum(axis=0)))
                continue
            assert predictions.proba is not None
            y = np.asarray(data.y, np.int64)
            label = np.argmax(predictions.proba, axis=1) if predictions.label is None else predictions.label
            values = stats.classification_metrics(y, predictions.proba, label, class_names=names, **settings)
            sides.append((values, of.confusion_of(y, label, k)))
        (train_values, cm_train), (test_values, cm_test) = sides
        confusion = (cm_train, cm_test)
    else:
        if train_p.value is None or test_p.value is None:
            raise ValueError("the context has no regression predictions for the training or the test data")
        train_values, test_values = (
            tallied.regression_metrics(tallies, confidence=settings["confidence"]) if tallies is not None
            else stats.regression_metrics(np.asarray(data.y), np.asarray(predictions.value), **settings)
            for data, predictions, tallies in ((ctx.train.data, train_p, ctx.train.tallies),
                                               (ctx.data, test_p, ctx.tallies)))
    gaps = of.metric_gaps(
        train_values, test_values, confusion=confusion, seed=ctx.seed,
        n_resamples=settings["n_resamples"], confidence=settings["confidence"],
    )
    headline = next(
        (m for m in _GAP_HEADLINES[kind] if m in gaps and gaps[m].value is not None), None
    )
    metrics: dict[str, Metric] = {}
    rows = []
    for key, gap in gaps.items():
        label, direction, description = METRIC_DEFINITIONS[key]
        if kind == "multiclass" and key in MULTICLASS_DESCRIPTIONS:
            description = MULTICLASS_DESCRIPTIONS[key]
        description = description.format(positive=positive)
        tv = train_values[key]
        metrics[f"train_{key}"] = Metric(
            tv.value, f"{label} (training data)", ci=tv.ci, ci_method=tv.ci_method, direction=direction,
            description=f"{description} On the training data.",
        )
        order = "train - test" if of.gap_sign(key) > 0 else "test - train"
        metrics[f"gap_{key}"] = Metric(
            gap.value, f"{label} gap", ci=gap.ci, ci_method=gap.ci_method, direction="lower",
            headline=key == headline, tolerance=HEADLINE_TOLERANCE if key == headline else None,
            description=f"{label} on the training data minus on the test data, signed so that a "
            f"positive gap means better on the training data ({order}).",
        )
        ci = gap.ci or (None, None)
        rows.append([label, gap.train, gap.test, gap.value, ci[0], ci[1]])
    level = f"{round(settings['confidence'] * 100, 1):g}%"
    findings, summary = _gap_findings(gaps, headline, float(options["max_gap"]), level)
    table = train_test_table(rows, level, train_rows=_rows(ctx.train.data, ctx.train.tallies),
                             test_rows=_rows(ctx.data, ctx.tallies))
    notes = train_test_notes(metrics, settings["confidence"])
    for what, tallies in (("training", ctx.train.tallies), ("test", ctx.tallies)):
        if tallies is not None:
            notes.append(f"The {what} data's figures are computed over all {tallies.rows:,} rows from tallies kept "
                         "chunk by chunk (its rows' outputs exceeded the memory budget, run.engine in report.json): "
                         "exact, but ROC-AUC and average precision, binned within the bounds the metrics audit states.")
    chart = gap_chart(gaps, level) if ctx.task.is_classification else None
    charts = [chart] if chart is not None else []
    return _Part(metrics, findings, [table], charts, notes, summary)


def _rows(data: Any, tallies: Any) -> int:
    """A data set's rows: every row's, when it kept tallies and ``data`` holds a sample."""
    return int(tallies.rows) if tallies is not None else int(data.n_rows)


def _gap_findings(
    gaps: dict[str, of.Gap], headline: str | None, max_gap: float, level: str
) -> tuple[list[Finding], str]:
    if headline is None:
        note = "no headline metric (ROC-AUC, accuracy or R²) is defined on both data sets"
        return [Finding("info", "train-test-gap-undefined", f"The train-vs-test gap is not judged: {note}.")], ""
    gap = gaps[headline]
    label = METRIC_DEFINITIONS[headline][0]
    ci = f" ({level} CI {sentence_number(gap.ci[0])} to {sentence_number(gap.ci[1])})" if gap.ci else " (no interval)"
    text = (
        f"{label} is {sentence_number(gap.train)} on the training data and {sentence_number(gap.test)} on the test data: "
        f"a gap of {sentence_number(gap.value)}{ci}"
    )
    summary = f"{in_sentence(label)} gap (train - test) {sentence_number(gap.value)}{ci}"
    findings = []
    if gap.ci is not None and gap.ci[0] > max_gap:
        findings.append(Finding(
            "warning", "train-test-gap",
            f"{text}, above the {max_gap:g} allowed (overfitting.max_gap) with its whole interval: "
            "the model does markedly better on the data it was trained on.",
        ))
    elif gap.value is not None and gap.value > max_gap:
        findings.append(Finding(
            "info", "train-test-gap",
            f"{text}, above the {max_gap:g} allowed (overfitting.max_gap), but the interval reaches "
            "below it: more test rows would settle it.",
        ))
    return findings, summary
