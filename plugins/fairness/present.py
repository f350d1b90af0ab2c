"""What the "fairness" audit shows: the tables, charts and sentences built from its computed
numbers (:mod:`auditor_plugins.fairness.audit` computes them and gives the verdict).

- :class:`Frame`: what every part of the result needs to know about the run (task kind,
  class names, thresholds, the interval method);
- the vocabulary of the disparities (:data:`DEFINITIONS`, :data:`RATE_NAMES`) and of metric keys;
- the per-group and disparity tables, the per-group bar charts, the plain-language account
  of each partition, the notes (definitions, small groups, intervals) and the summary.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from auditor.contract.result import Chart, Direction, Table
from auditor_plugins.fairness import regression as fr
from auditor_plugins.fairness import stats as fs

if TYPE_CHECKING:
    from auditor.contract.context import Groups

#: Charts for an intersection only when it has at most this many groups.
MAX_CHART_GROUPS = 20
#: Groups named in one finding or note before "and N more".
MAX_LISTED = 12


# key: (label, direction, description); "{positive}" is the positive class (binary) or "the class".
DEFINITIONS: dict[str, tuple[str, Direction, str]] = {
    "demographic_parity_difference": (
        "Demographic parity difference", "lower",
        "Largest minus smallest selection rate (share predicted {positive}) over the groups.",
    ),
    "demographic_parity_ratio": (
        "Demographic parity ratio", "higher",
        "Smallest over largest selection rate (share predicted {positive}) over the groups; "
        "below 0.8 breaks the four-fifths rule.",
    ),
    "equalized_odds_difference": (
        "Equalized odds difference", "lower",
        "The larger of the between-group differences in true positive rate and in false positive rate.",
    ),
    "equalized_odds_ratio": (
        "Equalized odds ratio", "higher",
        "The smaller of the between-group ratios (smallest over largest) of true positive rate "
        "and of false positive rate.",
    ),
    "equal_opportunity_difference": (
        "Equal opportunity difference", "lower",
        "Largest minus smallest true positive rate (share of {positive} rows predicted {positive}).",
    ),
    "mae_difference": ("MAE difference", "lower", "Largest minus smallest mean absolute error over the groups."),
    "mae_ratio": ("MAE ratio", "higher", "Smallest over largest mean absolute error over the groups."),
    "mean_prediction_difference": (
        "Mean prediction difference", "lower", "Largest minus smallest mean prediction over the groups.",
    ),
}


RATE_NAMES = {
    "selection_rate": "selection rate",
    "true_positive_rate": "true positive rate",
    "false_positive_rate": "false positive rate",
    "mae": "mean absolute error",
    "mean_prediction": "mean prediction",
}

SHORT_RATE_NAMES = {"true_positive_rate": "TPR", "false_positive_rate": "FPR"}

_KEY_UNSAFE = re.compile(r"[.\s]")


def metric_key(partition: fs.Partition) -> str:
    """The metric-key prefix of a partition: ``race``, ``sex*race``; '.' and whitespace in
    column names become '_' (keys are dotted report paths)."""
    return "*".join(_KEY_UNSAFE.sub("_", column) for column in partition.columns)


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def interval_or_none(low: float, high: float) -> list[float] | None:
    return [float(low), float(high)] if math.isfinite(low) and math.isfinite(high) else None


def _num(value: float) -> str:
    """A figure for a sentence (:func:`auditor.contract.vocabulary.sentence_number`)."""
    from auditor.contract.vocabulary import sentence_number

    return sentence_number(value)


def listed(items: Sequence[str]) -> str:
    """``a, b and c``, or the first :data:`MAX_LISTED` and how many more."""
    from auditor.report.numbers import join_words

    return join_words(items, limit=MAX_LISTED)


@dataclass(frozen=True)
class Frame:
    """What every part of the result needs to know about the run."""

    kind: str
    class_names: tuple[str, ...]
    min_group_size: int
    confidence: float
    four_fifths: float
    max_eo_difference: float
    method: str
    approach: str
    resampling: str
    n_rows: int

    @property
    def classification(self) -> bool:
        return self.kind != "regression"

    @property
    def ci_method(self) -> str:
        """The interval method as metrics state it."""
        return f"{self.method}, {self.resampling}"

    @property
    def level(self) -> str:
        return f"{round(self.confidence * 100, 1):g}%"

    def class_of(self, report: fs.PartitionReport, position: int) -> str:
        return self.class_names[report.classes[position]]

    def ci_text(self, ci: Sequence[float] | None, digits: int) -> str:
        if ci is None:
            return "no interval"
        return f"{self.level} CI {ci[0]:.{digits}f}–{ci[1]:.{digits}f}"


def not_assessed_summary(reports: list[fs.PartitionReport], frame: Frame, powers: Sequence[tuple[str, str]]) -> str:
    """The summary of a run where no disparity could be computed: why, what it would need and
    what it could have seen at these sizes."""
    why = []
    for report in reports:
        counts = report.partition.counts.astype(int)
        small = [f"{report.partition.labels[g]} has {int(counts[g]):,}" for g in range(counts.size)
                 if counts[g] > 0 and not report.judged[g]]
        judged = int(report.judged.sum())
        why.append(f"{report.partition.name} has {judged} group{'s' if judged != 1 else ''} with at least "
                   f"{frame.min_group_size} rows" + (f" ({listed(small)})" if small else ""))
    short = next((clause for _, clause in powers if clause), "")
    return (f"Not assessed: no disparity could be computed: {'; '.join(why)}, and a disparity needs two groups "
            f"of at least fairness.min_group_size ({frame.min_group_size}) rows."
            + (f" At these sizes, {short}." if short else ""))


def disparity_names(frame: Frame) -> tuple[str, ...]:
    return fs.CLASSIFICATION_DISPARITIES if frame.classification else fr.DISPARITIES


def metric_description(name: str, frame: Frame) -> str:
    positive = f"'{frame.class_names[1]}'" if frame.kind == "binary" else "the class"
    text = DEFINITIONS[name][2].format(positive=positive)
    if frame.kind == "multiclass":
        text += " Computed per class, one-vs-rest; the worst over classes."
    return text


def too_small_groups(report: fs.PartitionReport) -> list[int]:
    return [g for g in range(report.judged.size) if not report.judged[g]]


def rate_denominator(report: fs.PartitionReport, frame: Frame, rate: str, g: int, position: int) -> str:
    """The rows a group's TPR or FPR is computed from: "12 '>50K' rows"."""
    count = int(report.partition.counts[g])
    positives = round(float(report.figures["base_rate"].value[g, position]) * count)
    cls = frame.class_of(report, position)
    if rate == "true_positive_rate":
        return f"{positives:,} '{cls}' rows"
    other = f"'{frame.class_names[0]}'" if frame.kind == "binary" else f"non-'{cls}'"
    return f"{count - positives:,} {other} rows"


def thin_rates(report: fs.PartitionReport, frame: Frame) -> list[tuple[int, int, str]]:
    """(group, class position, rate) of every TPR or FPR left out of the disparities because
    its denominator is too small, in a group large enough to judge otherwise."""
    if not frame.classification:
        return []
    return [
        (g, position, rate)
        for g in np.flatnonzero(report.judged).tolist()
        for position in range(len(report.classes))
        for rate in ("true_positive_rate", "false_positive_rate")
        if not report.judged_rates[rate][g, position]
    ]


def extreme_groups(report: fs.PartitionReport, spread: fs.Spread) -> tuple[str, str]:
    """'40.1% for race=X' at the lowest and the highest group of the spread's worst class."""
    position = spread.worst
    rate = report.figures[spread.rate[position]].value
    out = []
    for g in (int(spread.lowest[position]), int(spread.highest[position])):
        value = rate[g, position] if rate.ndim == 2 else rate[g]
        out.append(f"{value:.1%} for {report.partition.describe(g)}")
    return out[0], out[1]


def class_clause(report: fs.PartitionReport, frame: Frame, position: int) -> str:
    return f" of '{frame.class_of(report, position)}'" if frame.kind == "multiclass" else ""


def _group_note(report: fs.PartitionReport, g: int, frame: Frame, position: int = 0) -> str:
    if report.partition.counts[g] == 0:
        return "no rows"
    if not report.judged[g]:
        return f"too small to judge (n < {frame.min_group_size})"
    left_out = [
        f"{SHORT_RATE_NAMES[rate]} left out ({rate_denominator(report, frame, rate, g, position)} "
        f"< {frame.min_group_size})"
        for rate in ("true_positive_rate", "false_positive_rate")
        if frame.classification and not report.judged_rates[rate][g, position]
    ]
    return "; ".join(left_out)


def group_table(report: fs.PartitionReport, frame: Frame) -> Table:
    p, f = report.partition, report.figures
    total = frame.n_rows
    rows: list[list[Any]] = []
    if frame.classification:
        multiclass = frame.kind == "multiclass"
        for g, label in enumerate(p.labels):
            for position in range(len(report.classes)):
                base, sel, tpr, fpr, fnr, precision = (finite_or_none(f[name].value[g, position]) for name in fs.RATES)
                rows.append([
                    label,
                    *([frame.class_of(report, position)] if multiclass else []),
                    int(p.counts[g]),
                    int(p.counts[g]) / total,
                    base,
                    sel,
                    interval_or_none(f["selection_rate"].low[g, position], f["selection_rate"].high[g, position]),
                    tpr,
                    fpr,
                    fnr,
                    precision,
                    finite_or_none(f["accuracy"].value[g]),
                    _group_note(report, g, frame, position),
                ])
        level = frame.level
        columns = ["group", *(["class"] if multiclass else []), "count", "share", "base rate", "selection rate",
                   f"selection rate {level} CI", "TPR", "FPR", "FNR", "precision", "accuracy", "note"]
        positive = "each class, one-vs-rest" if multiclass else f"'{frame.class_names[1]}'"
        caption = (f"Rates of {positive}: base rate = share of rows of the class; selection rate = share "
                   "predicted as it; TPR, FPR, FNR = true positive, false positive and false negative rates; "
                   "accuracy is over all classes. — marks a rate whose denominator is 0 in the group.")
    else:
        for g, label in enumerate(p.labels):
            rows.append([
                label, int(p.counts[g]), int(p.counts[g]) / total,
                finite_or_none(f["mae"].value[g]), interval_or_none(f["mae"].low[g], f["mae"].high[g]),
                finite_or_none(f["mean_prediction"].value[g]),
                interval_or_none(f["mean_prediction"].low[g], f["mean_prediction"].high[g]),
                finite_or_none(f["mean_target"].value[g]),
                _group_note(report, g, frame),
            ])
        columns = ["group", "count", "share", "MAE", f"MAE {frame.level} CI", "mean prediction",
                   f"mean prediction {frame.level} CI", "mean target", "note"]
        caption = "MAE = mean absolute error."
    return Table(
        name=f"groups_{metric_key(p)}",
        title=f"By group: {p.name}",
        columns=columns,
        rows=rows,
        caption=f"{caption} Groups too small to judge are left out of the disparities.",
    )


def _disparity_row(
    report: fs.PartitionReport, name: str, position: int, cls: str | None, overall: bool
) -> list[Any]:
    """One row of the disparity table: at a class position, or (``overall``) the worst over
    classes; empty cells where the disparity is undefined."""
    spread = report.disparities[name]
    head = [report.partition.name, name, *([] if cls is None else [cls])]
    if position < 0 or not math.isfinite(spread.value[position]):
        return head + [None] * 5
    if overall:
        value, ci = spread.overall, list(spread.overall_ci) if spread.overall_ci else None
    else:
        value, ci = spread.value[position], interval_or_none(spread.low[position], spread.high[position])
    labels = report.partition.labels
    return head + [float(value), ci, RATE_NAMES[spread.rate[position]],
                   labels[spread.lowest[position]], labels[spread.highest[position]]]


def disparity_table(reports: list[fs.PartitionReport], frame: Frame) -> Table:
    multiclass = frame.kind == "multiclass"
    rows: list[list[Any]] = []
    for report in reports:
        for name in disparity_names(frame):
            if not multiclass:
                rows.append(_disparity_row(report, name, 0, None, overall=True))
                continue
            worst = report.disparities[name].worst
            cls = f"worst: '{frame.class_of(report, worst)}'" if worst >= 0 else "worst"
            rows.append(_disparity_row(report, name, worst, cls, overall=True))
            rows += [_disparity_row(report, name, p, frame.class_of(report, p), overall=False)
                     for p in range(len(report.classes))]
    return Table(
        name="disparities",
        title="Disparities between groups",
        columns=["column", "metric", *(["class"] if multiclass else []), "value", f"{frame.level} CI", "rate",
                 "lowest group", "highest group"],
        rows=rows,
        caption="Over the groups large enough to judge. 'rate' is the rate whose spread gives the value; the "
        "lowest and highest groups are at its extremes (whether the high or the low end is the disadvantaged "
        "one depends on what the predicted outcome means for people).",
    )


def bar_charts(report: fs.PartitionReport, frame: Frame) -> list[Chart]:
    p = report.partition
    if len(p.columns) > 1 and p.counts.size > MAX_CHART_GROUPS:
        return []
    if frame.classification:
        dp = report.disparities["demographic_parity_ratio"]
        eo = report.disparities["equalized_odds_difference"]
        smallest_dp = "the class with the smallest demographic parity ratio"
        largest_eo = "the class with the largest equalized odds difference"
        specs = [
            ("selection_rate", max(dp.worst, 0), smallest_dp),
            ("true_positive_rate", max(eo.worst, 0), largest_eo),
            ("false_positive_rate", max(eo.worst, 0), largest_eo),
        ]
    else:
        specs = [("mae", 0, ""), ("mean_prediction", 0, "")]
    charts = []
    for rate, position, which in specs:
        labels = [_chart_label(report, frame, rate, g, position) for g in range(p.counts.size)]
        marked = labels != list(p.labels)
        small = (f" Groups labelled with a number of rows are left out of the disparities: fewer than "
                 f"{frame.min_group_size} rows to judge the {RATE_NAMES[rate]} by." if marked else "")
        figure = report.figures[rate]
        value, low, high = (a[:, position] if a.ndim == 2 else a for a in (figure.value, figure.low, figure.high))
        title = RATE_NAMES[rate].capitalize()
        axis = title
        caption = f"Error bars: {frame.level} intervals, {frame.method}."
        if frame.kind == "multiclass":
            cls = frame.class_of(report, position)
            title += f" of '{cls}'"
            axis += f" of '{cls}'"
            caption = f"Class '{cls}' (one-vs-rest), {which}. {caption}"
        elif frame.kind == "binary":
            axis += f" ('{frame.class_names[1]}')"
        charts.append(Chart(
            name=f"{rate}_{metric_key(p)}",
            title=f"{title} by {p.name}",
            kind="bar",
            data={
                "x_label": p.name,
                "y_label": axis,
                "labels": labels,
                "values": [finite_or_none(v) for v in value],
                "errors": [interval_or_none(lo, hi) for lo, hi in zip(low, high)],
            },
            caption=caption + small,
        ))
    return charts


def _chart_label(report: fs.PartitionReport, frame: Frame, rate: str, g: int, position: int) -> str:
    """A group's label, with its size when the rate is not judged for it."""
    label = report.partition.labels[g]
    if not report.judged[g]:
        return f"{label} (n={int(report.partition.counts[g])})"
    if rate in SHORT_RATE_NAMES and not report.judged_rates[rate][g, position]:
        return f"{label} ({rate_denominator(report, frame, rate, g, position)})"
    return label


def plain_language(report: fs.PartitionReport, frame: Frame) -> str:
    """A few sentences a review board can read: the largest error-rate gap and the spread of
    selection rates (or of errors and predictions, for regression)."""
    p = report.partition
    if report.judged.sum() < 2:
        return (f"By {p.name}: fewer than two groups have at least {frame.min_group_size} rows, so no "
                "disparity is computed.")
    describe = p.describe
    sentences = []
    if frame.classification:
        eo = report.disparities["equalized_odds_difference"]
        if eo.worst >= 0:
            position, rate = eo.worst, eo.rate[eo.worst]
            values = report.figures[rate].value[:, position]
            low, high = int(eo.lowest[position]), int(eo.highest[position])
            cls = frame.class_of(report, position)
            if frame.kind == "binary":
                among = frame.class_names[1] if rate == "true_positive_rate" else frame.class_names[0]
                whose = f"whose true class is '{among}'"
            else:
                whose = f"whose true class is {'' if rate == 'true_positive_rate' else 'not '}'{cls}'"
            sentences.append(
                f"Among rows {whose}, the model predicted '{cls}' for {values[high]:.1%} of {describe(high)} "
                f"against {values[low]:.1%} of {describe(low)} ({RATE_NAMES[rate]})."
            )
        dp = report.disparities["demographic_parity_ratio"]
        if dp.worst >= 0:
            position = dp.worst
            values = report.figures["selection_rate"].value[:, position]
            low, high = int(dp.lowest[position]), int(dp.highest[position])
            cls = frame.class_of(report, position)
            side = "below" if dp.overall < frame.four_fifths else "at or above"
            ci = f" ({frame.ci_text(dp.overall_ci, 2)})" if dp.overall_ci else ""
            sentences.append(
                f"Selection rates (share predicted '{cls}') range from {values[low]:.1%} ({describe(low)}) to "
                f"{values[high]:.1%} ({describe(high)}): a ratio of {dp.overall:.2f}, {side} the four-fifths "
                f"rule's {frame.four_fifths:g}{ci}."
            )
    else:
        mae = report.disparities["mae_difference"]
        ratio = report.disparities["mae_ratio"]
        if mae.worst >= 0:
            values = report.figures["mae"].value
            low, high = int(mae.lowest[0]), int(mae.highest[0])
            sentences.append(
                f"The mean absolute error ranges from {_num(values[low])} ({describe(low)}) to "
                f"{_num(values[high])} ({describe(high)}): a difference of {_num(mae.overall)} "
                f"({frame.ci_text(mae.overall_ci, 3)}) and a ratio of {ratio.overall:.2f}."
            )
        pred = report.disparities["mean_prediction_difference"]
        if pred.worst >= 0:
            values, target = report.figures["mean_prediction"].value, report.figures["mean_target"].value
            low, high = int(pred.lowest[0]), int(pred.highest[0])
            sentences.append(
                f"Mean predictions range from {_num(values[low])} ({describe(low)}) to {_num(values[high])} "
                f"({describe(high)}), where the mean targets are {_num(target[low])} and {_num(target[high])}."
            )
    if not sentences:
        sentences.append("No disparity is defined (a rate is undefined in all but one of the groups large enough "
                         "to judge).")
    text = " ".join(sentences)
    return f"By {p.name}: {text[0].lower()}{text[1:]}"


def explanatory_notes(reports: list[fs.PartitionReport], frame: Frame, groups: Sequence[Groups]) -> list[str]:
    notes = []
    if frame.classification:
        positive = f"'{frame.class_names[1]}'" if frame.kind == "binary" else "each class"
        notes.append(
            f"Definitions follow fairlearn, for {positive}: the demographic parity difference and ratio are the "
            "largest minus the smallest, and the smallest over the largest, of the groups' selection rates (share "
            "predicted as the class); the equalized odds difference is the larger of the true-positive-rate and "
            "false-positive-rate differences, the equalized odds ratio the smaller of their ratios; the equal "
            "opportunity difference is the true-positive-rate difference."
        )
        if frame.kind == "multiclass":
            notes.append(
                "Multiclass: every rate is one-vs-rest, per class, and every disparity is computed per class. The "
                "metrics, findings and headline figures take the worst over classes: the largest difference and "
                "the smallest ratio (classes where a disparity is undefined are skipped)."
            )
        notes.append(
            "A rate whose denominator is 0 in a group (the true positive rate of a group with no rows of the "
            "class, the precision of a group never predicted as it) is undefined, shown as —, and left out of "
            "the disparities (fairlearn and scikit-learn count it as 0). A ratio whose largest rate is 0 is 1: "
            "every group is at 0 (fairlearn gives NaN). Equalized odds is undefined when either of its rates is."
        )
    else:
        notes.append(
            "Regression: the MAE difference and ratio are the largest minus the smallest, and the smallest over "
            "the largest, of the groups' mean absolute errors (a ratio is 1 when every MAE is 0); the mean "
            "prediction difference compares the groups' mean predictions. No threshold applies: read them "
            "against the mean targets."
        )
    small = sum(int((~r.judged).sum()) for r in reports)
    thin = sum(len(thin_rates(r, frame)) for r in reports)
    if small or thin:
        parts = []
        if small:
            parts.append(f"{small} group(s) have fewer than {frame.min_group_size} rows: they are shown, marked "
                         "'too small to judge', but left out of every disparity")
        if thin:
            parts.append(f"{thin} true or false positive rate(s) of larger groups come from fewer than "
                         f"{frame.min_group_size} rows of the class (or of the other classes) and are left out "
                         "in the same way (see each table's note)")
        notes.append("; ".join(parts) + ", so that a handful of rows cannot decide a disparity.")
    within = "group" if len(groups) == 1 else "cell of the intersection of all sensitive columns"
    if frame.approach == "multinomial":
        how = (
            f"resampling the rows within each {within} changes only its confusion counts, which are then exactly "
            "Multinomial(size, observed shares), so each resample draws them directly, at any number of rows"
        )
    elif frame.approach == fr.ROW_BOOTSTRAP:
        how = f"the rows of each {within} are resampled within it"
    else:
        how = f"the mean of each {within} is drawn from its normal approximation (CLT, plug-in variance)"
        if len(groups) > 1:
            how += ", a group's mean being the size-weighted mean of its cells'"
        how += "; per-group intervals are the normal intervals"
    notes.append(
        f"{frame.level} intervals: {frame.ci_method}; {how}. Every figure of one resample comes from the same "
        "draw; the disparities' intervals are percentile intervals, leaving out resamples where the figure is "
        "undefined (no interval when more than half are). The worst-case metrics take the worst over columns "
        "within each resample. A difference or a ratio is an extreme over groups: with many groups, or few rows "
        "per group, sampling noise alone widens it even when the groups' true rates are equal, and its interval "
        "shares that bias (min_group_size limits it)."
    )
    if any(_outside(s) for r in reports for s in r.disparities.values()):
        notes.append(
            "Some disparity lies outside its interval. A difference is a largest minus a smallest rate, so when "
            "groups are nearly equal its resampled values pile up above the estimate (they cannot go below 0), "
            "and a ratio's below it (they cannot exceed 1): the percentile interval then sits beside a near-zero "
            "difference or a near-one ratio, and the groups are best read as indistinguishable."
        )
    return notes


def _outside(spread: fs.Spread) -> bool:
    """Whether any of the spread's values lies outside its interval."""
    with np.errstate(invalid="ignore"):
        return bool(np.any((spread.value < spread.low) | (spread.value > spread.high)))


def summary_sentence(reports: list[fs.PartitionReport], worst: dict[str, fs.Worst], frame: Frame) -> str:
    names = [r.partition.name if len(r.partition.columns) == 1 else "their intersection" for r in reports]
    across = listed(names)
    parts = []
    for name, w in worst.items():
        label = DEFINITIONS[name][0]
        label = label if label[:3].isupper() else label[0].lower() + label[1:]
        if w.partition < 0:
            parts.append(f"{label} undefined")
            continue
        digits = 2 if name.endswith("_ratio") else 3
        ci = f"; {frame.ci_text(w.ci, digits)}" if w.ci else ""
        parts.append(f"{label} {w.value:.{digits}f} ({reports[w.partition].partition.name}{ci})")
    return f"Worst {parts[0]} and worst {parts[1]} across {across}, on {frame.n_rows:,} rows."
