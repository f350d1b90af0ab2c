"""What the "overfitting" audit shows: the tables, charts and sentences built from its computed
numbers (:mod:`auditor_plugins.overfitting.audit` computes them and gives the verdict).

- the history: the verdict as a sentence and as a summary clause, the quantities table, the
  notes on how the curves were read, the loss and monitored-series charts (thinned, on a log
  axis when they span decades);
- the training data: the train-vs-test table, its notes and the gap chart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.contract.result import Chart, Metric, Table
from auditor.contract.vocabulary import METRIC_DEFINITIONS, in_sentence, sentence_number
from auditor_plugins.overfitting import curves as of

if TYPE_CHECKING:
    from auditor.contract.context import History

#: Points per series in a training-curve chart, at most (longer histories are thinned evenly).
MAX_CHART_POINTS = 500
#: A curve chart gets a log y axis when its positive values span more than this many decades.
LOG_DECADES = 1.5


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def _counterpart(history: History, name: str) -> str | None:
    """The training series matching a validation series name, for display only
    (``val_accuracy`` -> ``train_accuracy`` or ``accuracy``)."""
    for prefix in ("val_", "val/", "validation_", "validation/", "valid_", "val-"):
        if name.lower().startswith(prefix):
            rest = name[len(prefix):]
            for candidate in (f"train_{rest}", f"train/{rest}", f"training_{rest}", rest):
                if candidate in history.series and candidate != name:
                    return candidate
    return None


def _thin(epochs: np.ndarray, values: np.ndarray) -> tuple[list[float], list[float | None]]:
    """A series for a chart: NaN as None, at most :data:`MAX_CHART_POINTS` evenly spaced
    points (the first and last kept)."""
    idx = np.arange(epochs.size)
    if epochs.size > MAX_CHART_POINTS:
        idx = np.unique(np.linspace(0, epochs.size - 1, MAX_CHART_POINTS).round().astype(int))
    return (
        [float(epochs[i]) for i in idx],
        [float(values[i]) if math.isfinite(values[i]) else None for i in idx],
    )


def _log_scale(*series: np.ndarray) -> bool:
    values = np.concatenate([s[np.isfinite(s)] for s in series])
    if values.size == 0 or np.any(values <= 0):
        return False
    return math.log10(values.max() / values.min()) > LOG_DECADES


def history_sentence(a: of.HistoryAnalysis, name: str, options: Mapping[str, Any], has_train: bool) -> str:
    """The verdict as a sentence a reviewer can read."""
    worse_verb = "rose" if a.mode == "min" else "fell"
    lowest = "lowest" if a.mode == "min" else "highest"
    best = f"{name[0].upper()}{name[1:]} was {lowest} at epoch {a.best_epoch} ({sentence_number(a.best_value)})"
    change = (a.final_value - a.best_value) / abs(a.best_value) if a.best_value else math.nan
    moved = (
        f" and {worse_verb} for {a.epochs_past_best} more epochs to {sentence_number(a.final_value)}"
        + (f" ({_pct(change)})" if math.isfinite(change) else "")
        if a.epochs_past_best > 0 and a.final_value != a.best_value
        else (" at the last epoch" if a.epochs_past_best == 0 else "")
    )
    if a.verdict == "overfitting":
        severe = a.degradation is not None and a.degradation > float(options["max_val_degradation"])
        kind = "overfitting" if severe else "mild overfitting"
        return (
            f"{best}{moved} while training loss kept falling ({_pct(a.train_change or 0)} from the onset "
            f"at epoch {a.onset_epoch}): {kind}; stopping at epoch {a.best_epoch} would have kept the "
            "best model."
        )
    if a.verdict == "worsening":
        why = "training loss rose too" if has_train else "the history has no training loss to compare"
        return (
            f"{best}{moved}, a sustained worsening from epoch {a.onset_epoch}, but {why}: that points at "
            "the optimisation (learning rate, instability) rather than at overfitting."
        )
    if a.verdict == "underfitting" and a.underfit_reason == "still-falling":
        assert a.train_end is not None and a.val_end is not None
        return (
            f"Training and validation loss were both still falling at the end "
            f"({a.train_end.relative:.1%} and {a.val_end.relative:.1%} per epoch over the last "
            f"{_epochs(a.val_end.window)}): underfitting; more epochs (or a higher learning rate) "
            "should help."
        )
    if a.verdict == "underfitting":
        return (
            f"Training loss barely moved in {_epochs(a.epochs.size)} ({_pct(-(a.train_progress or 0))} "
            "from the first epoch) and neither loss is falling: underfitting (too little capacity, "
            "too low a learning rate, or features with little signal)."
        )
    if a.verdict == "undetermined":
        return f"{best}; only {_epochs(a.epochs.size)} logged, too few for a verdict."
    rise = ""
    if a.rise is not None and a.rise > 0 and a.rise_threshold is not None:
        rise = (
            f"; the smoothed curve ended {a.rise:.1%} {'above' if a.mode == 'min' else 'below'} its best, "
            f"under the {a.rise_threshold:.1%} that counts as a sustained rise"
        )
    return f"{best}{moved}{rise}; no sign of over- or underfitting: healthy training."


def history_summary(a: of.HistoryAnalysis, name: str) -> str:
    where = f"best {name} at epoch {a.best_epoch} of {a.last_epoch}"
    if a.verdict == "overfitting":
        worse = f", the final value {a.degradation:.1%} worse" if a.degradation is not None else ""
        return f"overfitting from epoch {a.onset_epoch} ({where}{worse})"
    if a.verdict == "worsening":
        return f"the {name} worsened from epoch {a.onset_epoch} but training loss did not fall ({where})"
    if a.verdict == "underfitting":
        return f"underfitting ({where})"
    if a.verdict == "undetermined":
        return f"history too short for a verdict ({where})"
    return f"healthy training ({where})"


def history_charts(
    history: History, a: of.HistoryAnalysis, train_key: str | None, val_key: str | None,
    monitor: str, is_loss: bool,
) -> list[Chart]:
    markers = [{"x": a.best_epoch, "label": f"best epoch {a.best_epoch}"}]
    if a.onset_epoch is not None:
        markers.append({"x": a.onset_epoch, "label": f"{a.verdict} onset {a.onset_epoch}"})
    charts = []
    losses = [(k, label) for k, label in ((train_key, "training loss"), (val_key, "validation loss")) if k]
    if losses:
        arrays = [np.asarray(history.series[k], dtype=np.float64) for k, _ in losses]
        series = []
        for (key, label), values in zip(losses, arrays):
            xs, ys = _thin(history.epochs, values)
            series.append({"name": f"{label} ({key})", "x": xs, "y": ys})
        data: dict[str, Any] = {"x_label": "Epoch", "y_label": "Loss", "series": series, "diagonal": False}
        if _log_scale(*arrays):
            data["y_scale"] = "log"
        if is_loss:
            data["markers"] = markers
        charts.append(Chart(
            name="loss_curves",
            title="Training and validation loss",
            kind="curve",
            data=data,
            caption=(
                "Dashed vertical lines: the best epoch"
                + (" and the onset of the smoothed validation curve's sustained rise."
                   if a.onset_epoch is not None else ".")
                if is_loss else f"The monitored series, {monitor}, and its best epoch are on the next chart."
            ) + (" Logarithmic y axis." if data.get("y_scale") == "log" else ""),
        ))
    if not is_loss:
        names = [monitor] + ([c] if (c := _counterpart(history, monitor)) else [])
        arrays = [np.asarray(history.series[k], dtype=np.float64) for k in names]
        series = []
        for key, values in zip(names, arrays):
            xs, ys = _thin(history.epochs, values)
            series.append({"name": key, "x": xs, "y": ys})
        data = {"x_label": "Epoch", "y_label": monitor, "series": series, "diagonal": False, "markers": markers}
        if _log_scale(*arrays):
            data["y_scale"] = "log"
        charts.append(Chart(
            name="monitored_curve",
            title=f"Monitored: {monitor}",
            kind="curve",
            data=data,
            caption=f"The monitored series ({'lower' if a.mode == 'min' else 'higher'} is better), "
            "with the best epoch" + (" and the onset of its sustained worsening." if a.onset_epoch else "."),
        ))
    return charts


def history_table(a: of.HistoryAnalysis, monitor: str, name: str, patience: int, sentence: str) -> Table:
    """The history's quantities, one row each, captioned with the verdict's sentence."""
    recommended = a.best_epoch if a.epochs_past_best > 0 else None
    rows: list[list[Any]] = [
        ["verdict", a.verdict],
        ["monitored series", f"{monitor} ({'lower' if a.mode == 'min' else 'higher'} is better)"],
        ["best epoch", a.best_epoch],
        [f"best {name}", a.best_value],
        ["last epoch", a.last_epoch],
        [f"final {name}", a.final_value],
        ["epochs past the best", a.epochs_past_best],
        ["change from best to final (relative, + = worse)", a.degradation],
        ["smoothed curve best at epoch", a.smoothed_best_epoch],
        ["overfitting onset epoch", a.onset_epoch],
        ["smoothed rise after it (relative)", a.rise],
        ["rise threshold (relative)", a.rise_threshold],
        ["epoch-to-epoch noise (SD)", a.noise],
        ["training loss change over that stretch (relative)", a.train_change],
        ["generalisation gap at the best epoch", a.gap_at_best],
        ["generalisation gap at the end", a.gap_final],
        ["generalisation gap trend (per epoch)", a.gap_trend],
        ["recommended stopping epoch", recommended],
        [f"early stopping (patience {patience}) would stop at epoch", a.stop_epoch],
        ["and keep the weights of epoch", a.stop_kept_epoch],
    ]
    return Table(
        name="history",
        title="Training history",
        columns=["quantity", "value"],
        rows=rows,
        caption=sentence,
    )


def history_notes(
    history: History, a: of.HistoryAnalysis, monitor: str, name: str, options: Mapping[str, Any],
    has_train: bool, has_val: bool,
) -> list[str]:
    """How the history was read and judged: the best epoch, the smoothing, the overfitting and
    underfitting rules with their thresholds, and a missing loss."""
    patience = int(options["patience"])
    window = a.window
    notes = [
        f"History {history.source!r} ({history.format}), {_epochs(a.epochs.size)} with a value of "
        f"{monitor}. Best epoch: the raw {name}'s {'minimum' if a.mode == 'min' else 'maximum'}.",
        f"Smoothing: centred moving average over {window} epochs, truncated at both ends (the "
        f"first and last epochs average only the epochs that exist, which understates a final "
        f"rise rather than inventing one); epochs without a value are left out.",
        f"Overfitting: at least {patience} epochs after the smoothed curve's best, every smoothed "
        f"value over the last {patience} epochs worse than that best by more than "
        f"max({options['min_rise']:g} x |best|, {options['noise_z']:g} standard errors of the "
        "curve's epoch-to-epoch noise), a significantly rising OLS trend of the raw values after "
        "it, and a smoothed training loss lower at the end than there. Without that last "
        "condition the verdict is 'worsening'.",
        f"Underfitting: both losses falling by more than {options['underfit_slope']:g} of their "
        f"level per epoch, significantly (OLS t-test), over the last max({patience}, n/3) epochs; "
        f"or neither falling and the final training loss within {options['underfit_progress']:g} "
        "(relative) of the first epoch's.",
    ]
    if not has_train or not has_val:
        notes.append(
            "The history has no " + ("training" if not has_train else "validation")
            + " loss, so the generalisation gap is undefined"
            + (" and overfitting cannot be told from a worsening optimisation." if not has_train else ".")
        )
    return notes


def train_test_table(rows: list[list[Any]], level: str, train_rows: int, test_rows: int) -> Table:
    """Every metric on the training and the test data, and the gap with its interval."""
    return Table(
        name="train_vs_test",
        title="Training vs test metrics",
        columns=["metric", "train", "test", "gap", "gap CI low", "gap CI high"],
        rows=rows,
        caption=f"Gap: positive when the model does better on its training data (train - test for "
        f"higher-is-better metrics, test - train for lower-is-better ones); {level} intervals. "
        f"{train_rows:,} training rows, {test_rows:,} test rows.",
    )


def train_test_notes(metrics: dict[str, Metric], confidence: float) -> list[str]:
    """How the gap is signed, its intervals' methods, and that the metrics audit's methods apply."""
    return [
        "Train-vs-test gap: positive when the model scores better on the data it was trained on: "
        "train - test for higher-is-better metrics, test - train for lower-is-better ones (log "
        "loss, Brier score, errors).",
        _gap_interval_note(metrics, confidence),
        "Training-data metrics use the same methods, seed and resamples as the metrics audit.",
    ]


def _gap_interval_note(metrics: dict[str, Metric], confidence: float) -> str:
    by_method: dict[str, list[str]] = {}
    for key, m in metrics.items():
        if key.startswith("gap_") and m.ci_method is not None:
            by_method.setdefault(m.ci_method, []).append(in_sentence(m.label.removesuffix(" gap")))
    level = f"{round(confidence * 100, 1):g}%"
    if not by_method:
        return f"No {level} interval of a train-vs-test gap could be computed."
    clauses = " ".join(f"{', '.join(labels)}: {method}." for method, labels in by_method.items())
    return f"{level} intervals of the train-vs-test gaps. {clauses[0].upper()}{clauses[1:]}"


def gap_chart(gaps: dict[str, of.Gap], level: str) -> Chart | None:
    """The gaps of the classification metrics as bars (log loss left out); None when no gap is defined."""
    shown = [k for k in gaps if k not in ("log_loss",) and gaps[k].value is not None]
    if not shown:
        return None
    return Chart(
        name="train_test_gap",
        title="Train - test gap by metric",
        kind="bar",
        data={
            "x_label": "Metric", "y_label": "Gap (positive: better on the training data)",
            "labels": [METRIC_DEFINITIONS[k][0] for k in shown],
            "values": [gaps[k].value for k in shown],
            "errors": [list(gaps[k].ci) if gaps[k].ci else None for k in shown],
        },
        caption=f"{level} intervals. Log loss is left out (not on a 0-1 scale).",
    )
