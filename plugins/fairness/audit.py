"""The built-in "fairness" audit: group fairness by sensitive column and their intersection.

Reads the target, the predictions and the sensitive groups from the context (never the
model) and computes, with :mod:`auditor_plugins.fairness.stats` (classification) and
:mod:`auditor_plugins.fairness.regression`, every group's rates and fairlearn's disparities
(demographic parity, equalized odds, equal opportunity) with bootstrap intervals. The
four-fifths rule and an equalized-odds limit drive the verdict, an error only when the
interval settles it. Rates computed from too few rows (a small group's, or a TPR from a
handful of positive rows) are shown but left out of the disparities.
"""

from __future__ import annotations

import math
import re
from statistics import NormalDist
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor_plugins.fairness import regression as fr
from auditor_plugins.fairness import stats as fs
from auditor.contract.plugin import NEEDS, Audit, Option
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
    from auditor.contract.context import AuditContext, Groups

#: Charts for an intersection only when it has at most this many groups.
MAX_CHART_GROUPS = 20
#: Groups named in one finding or note before "and N more".
MAX_LISTED = 12
#: Default of the ``max_groups`` option. Memory and time grow with the groups (about 75 kB
#: and 1.5 ms each at the default 1,000 resamples: 20,000 groups took 1.8 GB and a minute,
#: 100,000 more than 10 GB), and a column with thousands of values is an identifier or free
#: text rather than a sensitive attribute; real ones (sex, race, country) have tens to hundreds.
DEFAULT_MAX_GROUPS = 1000

# key: (label, direction, description); "{positive}" is the positive class (binary) or "the class".
_DEFINITIONS: dict[str, tuple[str, Direction, str]] = {
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

_HEADLINES = {
    "classification": ("demographic_parity_ratio", "equalized_odds_difference"),
    "regression": ("mae_ratio", "mae_difference"),
}

_RATE_NAMES = {
    "selection_rate": "selection rate",
    "true_positive_rate": "true positive rate",
    "false_positive_rate": "false positive rate",
    "mae": "mean absolute error",
    "mean_prediction": "mean prediction",
}

_SHORT = {"true_positive_rate": "TPR", "false_positive_rate": "FPR"}

_KEY_UNSAFE = re.compile(r"[.\s]")


def metric_key(partition: fs.Partition) -> str:
    """The metric-key prefix of a partition: ``race``, ``sex*race``; '.' and whitespace in
    column names become '_' (keys are dotted report paths)."""
    return "*".join(_KEY_UNSAFE.sub("_", column) for column in partition.columns)


def _value(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _ci(low: float, high: float) -> list[float] | None:
    return [float(low), float(high)] if math.isfinite(low) and math.isfinite(high) else None


def _num(value: float) -> str:
    """A figure for a sentence: 3 decimals in the usual range, else 3-4 significant figures."""
    size = abs(value)
    if size == 0 or 0.01 <= size < 100:
        return f"{value:.3f}"
    if 100 <= size < 1e6:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _listed(items: Sequence[str]) -> str:
    """``a, b and c``, or the first :data:`MAX_LISTED` and how many more."""
    shown = list(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        return f"{', '.join(shown)} and {len(items) - MAX_LISTED} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


@dataclass(frozen=True)
class _Frame:
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


class FairnessAudit(Audit):
    """Group fairness: per-group rates, fairlearn's disparities and the four-fifths rule."""

    name = "fairness"
    title = "Fairness"
    description = (
        "Per-group rates, demographic parity, equalized odds and the four-fifths rule by sensitive "
        "column and their intersection, with bootstrap intervals."
    )
    needs = ("target", "sensitive")
    options = (
        Option("min_group_size", "int", 30, "Groups with fewer rows are shown but left out of the disparities.",
               min=1),
        Option("n_resamples", "int", 1000, "Bootstrap resamples per interval.", min=100, max=100_000),
        Option("confidence", "float", 0.95, "Confidence level of the intervals.", min=0.5, max=0.999),
        Option("four_fifths", "float", 0.8, "Selection-rate ratio below which the four-fifths rule is broken.",
               min=0.0, max=1.0),
        Option("max_eo_difference", "float", 0.1, "Largest acceptable equalized odds difference.",
               min=0.0, max=1.0),
        Option("bootstrap_max_rows", "int", 100_000,
               "Regression: largest data for the row bootstrap; a normal approximation beyond.", min=0),
        Option("intersections", "bool", True, "Also audit the intersection of the sensitive columns (2 or more)."),
        Option("max_groups", "int", DEFAULT_MAX_GROUPS,
               "Most groups a sensitive column may have; a column with more (an identifier, free text) is left "
               "out with a warning, and an intersection with more is not audited (its columns are, one by one).",
               min=2, max=1_000_000),
    )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        # The runner skips the audit before calling it when a need is missing; called
        # directly (e.g. by auditor.testing.check_audit), it says so the same way.
        missing = [need for need, absent in (("target", ctx.data.y is None), ("sensitive", not ctx.sensitive))
                   if absent]
        if missing:
            return AuditResult.skipped(self.name, self.title, NEEDS[missing[0]].capitalize() + ".")
        limit = int(options["max_groups"])
        groups, limited = _within_limit(list(ctx.sensitive.values()), limit)
        if not groups:
            return AuditResult(
                audit=self.name,
                title=self.title,
                status="not assessed",
                summary=f"Not assessed: every sensitive column has more than fairness.max_groups ({limit:,}) "
                "groups, so none was audited. The audit needs a column with at most that many groups, two of "
                f"them with at least fairness.min_group_size ({int(options['min_group_size'])}) rows.",
                findings=limited,
                options=dict(options),
            )
        # Every partition is resampled as cells of all the columns at once: when their
        # intersection has more groups than the limit, each column is audited on its own.
        cells = fs.combine(groups).n_cells if len(groups) > 1 else 0
        joint = cells <= limit
        if not joint:
            limited.append(_intersection_finding(groups, cells, limit, bool(options["intersections"])))
        settings = {
            "intersection": bool(options["intersections"]) and joint,
            "min_group_size": int(options["min_group_size"]),
            "n_resamples": int(options["n_resamples"]),
            "confidence": float(options["confidence"]),
            "seed": ctx.seed,
        }
        sets = [groups] if joint else [[g] for g in groups]
        resampling = f"{settings['n_resamples']} resamples, seed {ctx.seed}"
        reports = []
        if ctx.task.is_classification:
            label, proba = ctx.predictions.label, ctx.predictions.proba
            if label is None and proba is None:
                raise ValueError("the context has no predicted classes (ctx.predictions.label or .proba)")
            label = np.argmax(proba, axis=1) if label is None else label
            names = ctx.task.class_names or _default_class_names(ctx.data.y, label, ctx.task.kind == "binary")
            for subset in sets:
                reports += fs.classification_fairness(
                    subset, ctx.data.y, label, len(names), binary=ctx.task.kind == "binary", **settings
                )
            method = "exact stratified bootstrap (multinomial confusion counts per group)"
            approach = "multinomial"
        else:
            if ctx.predictions.value is None:
                raise ValueError("the context has no regression predictions (ctx.predictions.value)")
            names = ()
            for subset in sets:
                found, approach = fr.regression_fairness(
                    subset, ctx.data.y, ctx.predictions.value,
                    bootstrap_max_rows=int(options["bootstrap_max_rows"]), **settings,
                )
                reports += found
            method = ("percentile row bootstrap within groups" if approach == fr.ROW_BOOTSTRAP
                      else "normal approximation of group means (CLT)")
        frame = _Frame(
            kind=ctx.task.kind,
            class_names=tuple(names),
            min_group_size=settings["min_group_size"],
            confidence=settings["confidence"],
            four_fifths=float(options["four_fifths"]),
            max_eo_difference=float(options["max_eo_difference"]),
            method=method,
            approach=approach,
            resampling=resampling,
            n_rows=int(ctx.data.y.shape[0]),
        )
        headlines = _headlines(reports, frame)
        metrics = _metrics(reports, headlines, frame)
        findings = limited + _findings(reports, frame, groups)
        charts = [c for r in reports for c in _charts(r, frame)]
        tables = [_group_table(r, frame) for r in reports] + [_disparity_table(reports, frame)]
        notes = [" ".join(_plain_language(r, frame) for r in reports), *_notes(reports, frame, groups)]
        powers = [_power(r, frame, ctx) for r in reports]
        notes += [f"Minimum data and power: {note}" for note, _ in powers]
        assessed = any(_defined(r) for r in reports)
        summary = _summary(reports, headlines, frame) if assessed else _not_assessed(reports, frame, powers)
        return AuditResult(
            audit=self.name,
            title=self.title,
            status=status_from_findings(findings) if assessed else "not assessed",
            summary=summary,
            metrics=metrics,
            findings=findings,
            tables=tables,
            charts=charts,
            notes=notes,
            options=dict(options),
        )


#: The test the power statements assume: two-sided, this significance level and power.
POWER_ALPHA = 0.05
POWER = 0.8


def detectable_h(n1: int, n2: int, alpha: float = POWER_ALPHA, power: float = POWER) -> float:
    """The smallest effect (Cohen's h, the difference of two proportions on the arcsine scale
    ``2 asin(sqrt(p))``) that a two-sided two-proportion z-test at ``alpha`` detects with
    probability ``power`` between groups of ``n1`` and ``n2`` rows: ``(z_{1-alpha/2} +
    z_power) * sqrt(1/n1 + 1/n2)`` (the far tail, under 1e-6 here, neglected). The same
    number is the smallest standardised mean difference (Cohen's d) of a two-sample z-test."""
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * math.sqrt(1 / n1 + 1 / n2)


def detectable_rates(h: float, p: float) -> tuple[float, float]:
    """The two selection rates, ``h`` apart on the arcsine scale and centred on ``p`` there
    (clipped to [0, 1]): the smallest visible gap around an overall rate ``p``."""
    phi = 2 * math.asin(math.sqrt(min(max(p, 0.0), 1.0)))
    low, high = phi - h / 2, phi + h / 2
    if low < 0.0:  # at an edge: keep the full width on the open side
        low, high = 0.0, min(h, math.pi)
    elif high > math.pi:
        low, high = max(math.pi - h, 0.0), math.pi
    return math.sin(low / 2) ** 2, math.sin(high / 2) ** 2


def _defined(report: fs.PartitionReport) -> bool:
    """Whether any disparity of the partition could be computed."""
    return any(
        math.isfinite(spread.overall) or bool(np.isfinite(np.asarray(spread.value, dtype=float)).any())
        for spread in report.disparities.values()
    )


def _power(report: fs.PartitionReport, frame: _Frame, ctx: AuditContext) -> tuple[str, str]:
    """What the partition needs and the smallest disparity it could show, as a note and as a
    short clause for a summary (empty when it has fewer than two groups with rows): between
    its two largest groups when fewer than two are large enough to judge, else between the
    smallest judged group and the largest (the pair with the least power among those judged)."""
    counts = report.partition.counts.astype(int)
    labels = report.partition.labels
    order = [int(g) for g in np.argsort(-counts, kind="stable") if counts[g] > 0]
    need = (f"{report.partition.name} needs at least two groups of fairness.min_group_size "
            f"({frame.min_group_size}) rows")
    if len(order) < 2:
        return f"{need}; it has {len(order)} group with rows.", ""
    judged = [g for g in order if report.judged[g]]
    pair = (judged[-1], judged[0]) if len(judged) >= 2 else (order[1], order[0])
    n1, n2 = int(counts[pair[0]]), int(counts[pair[1]])
    h = detectable_h(n1, n2)
    between = f"between {labels[pair[0]]} (n={n1:,}) and {labels[pair[1]]} (n={n2:,})"
    if frame.classification:
        label = ctx.predictions.label
        if label is None and ctx.predictions.proba is not None:
            label = np.argmax(ctx.predictions.proba, axis=1)
        if frame.kind == "binary" and label is not None and len(label):
            p = float(np.mean(np.asarray(label) == 1))
            where = f"the overall selection rate, {p:.2f}"
        else:
            p, where = 0.5, "a selection rate of 0.50 (one-vs-rest: the widest case)"
        low, high = detectable_rates(h, p)
        ratio = f"; a ratio of {low / high:.2f}" if high > 0 else ""
        short = (f"a two-sided two-proportion z-test (alpha {POWER_ALPHA:g}, power {POWER:g}) {between} "
                 f"would detect only a selection-rate difference of {high - low:.2f} or more")
        note = (f"a two-sided two-proportion z-test (Cohen's h, alpha {POWER_ALPHA:g}, power {POWER:g}) {between} "
                f"detects a selection-rate difference of {high - low:.2f} or more (h = {h:.2f}: {low:.2f} against "
                f"{high:.2f}, around {where}{ratio}); smaller disparities would go unseen.")
    else:
        short = (f"a two-sided two-sample z-test (alpha {POWER_ALPHA:g}, power {POWER:g}) {between} would detect "
                 f"only a difference in mean error of {h:.2f} standard deviations or more")
        note = (f"a two-sided two-sample z-test (alpha {POWER_ALPHA:g}, power {POWER:g}) {between} detects a "
                f"difference in mean error of {h:.2f} standard deviations or more; smaller ones would go unseen.")
    return f"{need}; at these sizes {note}", short


def _not_assessed(reports: list[fs.PartitionReport], frame: _Frame, powers: Sequence[tuple[str, str]]) -> str:
    """The summary of a run where no disparity could be computed: why, what it would need and
    what it could have seen at these sizes."""
    why = []
    for report in reports:
        counts = report.partition.counts.astype(int)
        small = [f"{report.partition.labels[g]} has {int(counts[g]):,}" for g in range(counts.size)
                 if counts[g] > 0 and not report.judged[g]]
        judged = int(report.judged.sum())
        why.append(f"{report.partition.name} has {judged} group{'s' if judged != 1 else ''} with at least "
                   f"{frame.min_group_size} rows" + (f" ({_listed(small)})" if small else ""))
    short = next((clause for _, clause in powers if clause), "")
    return (f"Not assessed: no disparity could be computed: {'; '.join(why)}, and a disparity needs two groups "
            f"of at least fairness.min_group_size ({frame.min_group_size}) rows."
            + (f" At these sizes, {short}." if short else ""))


def _within_limit(groups: list[Groups], limit: int) -> tuple[list[Groups], list[Finding]]:
    """The sensitive columns with at most ``limit`` groups, and a warning for each of the others."""
    kept = [g for g in groups if len(g.labels) <= limit]
    findings = [
        Finding(
            "warning", "sensitive-too-many-groups",
            f"The sensitive column '{g.column}' has {len(g.labels):,} groups, more than fairness.max_groups "
            f"({limit:,}), so it was left out of the fairness audit: a column with that many values is "
            "usually an identifier or free text. Group its values into fewer categories (or pick another "
            "column), or raise the limit with -o fairness.max_groups=N.",
        )
        for g in groups if len(g.labels) > limit
    ]
    return kept, findings


def _intersection_finding(groups: Sequence[Groups], cells: int, limit: int, asked: bool) -> Finding:
    columns = _listed([f"'{g.column}'" for g in groups])
    left = "so it was not audited, and " if asked else "so "
    return Finding(
        "info", "sensitive-intersection-too-large",
        f"The intersection of {columns} has {cells:,} groups, more than fairness.max_groups ({limit:,}), "
        f"{left}each column was audited on its own.",
    )


def _default_class_names(y: np.ndarray, label: np.ndarray, binary: bool) -> tuple[str, ...]:
    """Class indices as names, for a task that declares none."""
    count = 2 if binary else int(max(y.max(), label.max())) + 1
    return tuple(str(i) for i in range(count))


def _disparity_names(frame: _Frame) -> tuple[str, ...]:
    return fs.CLASSIFICATION_DISPARITIES if frame.classification else fr.DISPARITIES


def _description(name: str, frame: _Frame) -> str:
    positive = f"'{frame.class_names[1]}'" if frame.kind == "binary" else "the class"
    text = _DEFINITIONS[name][2].format(positive=positive)
    if frame.kind == "multiclass":
        text += " Computed per class, one-vs-rest; the worst over classes."
    return text


def _headlines(reports: list[fs.PartitionReport], frame: _Frame) -> dict[str, fs.Worst]:
    """The worst-case headline disparities over the partitions."""
    names = _HEADLINES["classification" if frame.classification else "regression"]
    return {name: fs.worst_over(reports, name, frame.confidence) for name in names}


def _metrics(
    reports: list[fs.PartitionReport], headlines: dict[str, fs.Worst], frame: _Frame
) -> dict[str, Metric]:
    out = {}
    for report in reports:
        key = metric_key(report.partition)
        for name in _disparity_names(frame):
            spread = report.disparities[name]
            label, direction, _ = _DEFINITIONS[name]
            out[f"{key}.{name}"] = Metric(
                value=_value(spread.overall),
                label=f"{label} ({report.partition.name})",
                ci=spread.overall_ci,
                ci_method=frame.ci_method if spread.overall_ci else None,
                direction=direction,
                description=_description(name, frame),
            )
    for name, worst in headlines.items():
        label, direction, _ = _DEFINITIONS[name]
        extreme = "largest" if fs.larger_is_worse(name) else "smallest"
        where = f", at {reports[worst.partition].partition.name}" if worst.partition >= 0 else ""
        out[name] = Metric(
            value=_value(worst.value),
            label=f"{label} (worst)",
            ci=worst.ci,
            ci_method=f"{frame.ci_method}; the worst over columns in each resample" if worst.ci else None,
            direction=direction,
            headline=True,
            description=f"The {extreme} {label.lower()} over the sensitive columns{where}. "
            + _description(name, frame),
        )
    return out


def _too_small(report: fs.PartitionReport) -> list[int]:
    return [g for g in range(report.judged.size) if not report.judged[g]]


def _denominator(report: fs.PartitionReport, frame: _Frame, rate: str, g: int, position: int) -> str:
    """The rows a group's TPR or FPR is computed from: "12 '>50K' rows"."""
    count = int(report.partition.counts[g])
    positives = round(float(report.figures["base_rate"].value[g, position]) * count)
    cls = frame.class_of(report, position)
    if rate == "true_positive_rate":
        return f"{positives:,} '{cls}' rows"
    other = f"'{frame.class_names[0]}'" if frame.kind == "binary" else f"non-'{cls}'"
    return f"{count - positives:,} {other} rows"


def _thin_rates(report: fs.PartitionReport, frame: _Frame) -> list[tuple[int, int, str]]:
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


def _findings(reports: list[fs.PartitionReport], frame: _Frame, groups: Sequence[Groups]) -> list[Finding]:
    findings = []
    if frame.classification:
        for report in reports:
            findings += _threshold_findings(report, frame)
    for report in reports:
        if report.judged.sum() < 2:
            findings.append(Finding(
                "info", "too-few-groups",
                f"{report.partition.name}: fewer than two groups have at least {frame.min_group_size} rows, "
                "so no disparity is computed for it.",
            ))
    small = [
        f"{r.partition.name}: " + _listed([f"{r.partition.labels[g]} (n={int(r.partition.counts[g]):,})"
                                           for g in _too_small(r)])
        for r in reports if _too_small(r)
    ]
    thin = [
        f"{r.partition.name}: " + _listed([
            f"{_SHORT[rate]}{_of_class(r, frame, position)} of {r.partition.labels[g]} "
            f"({_denominator(r, frame, rate, g, position)})"
            for g, position, rate in _thin_rates(r, frame)
        ])
        for r in reports if _thin_rates(r, frame)
    ]
    if small or thin:
        text = []
        if small:
            text.append(f"Groups with fewer than {frame.min_group_size} rows are too small to judge: they are "
                        f"shown in the tables but left out of every disparity. {'; '.join(small)}.")
        if thin:
            text.append(f"Rates computed from fewer than {frame.min_group_size} rows are left out of the "
                        f"disparities too: {'; '.join(thin)}.")
        findings.append(Finding("info", "small-groups", " ".join(text)))
    for g in groups:
        if g.fed_to_model:
            findings.append(Finding(
                "info", "sensitive-feature-used",
                f"The sensitive column '{g.column}' is also one of the model's features: the model sees it "
                "directly, so disparities by it need not come through correlated features only.",
            ))
        if g.binned:
            findings.append(Finding(
                "info", "sensitive-column-binned",
                f"The numeric column '{g.column}' was cut into {g.binned} to form its groups: "
                f"{_listed(list(g.labels))}.",
            ))
    return findings


def _threshold_findings(report: fs.PartitionReport, frame: _Frame) -> list[Finding]:
    """The four-fifths rule and the equalized-odds limit for one partition: an error when
    the interval lies entirely on the wrong side, a warning when only the estimate does."""
    findings = []
    name = report.partition.name
    dp = report.disparities["demographic_parity_ratio"]
    if math.isfinite(dp.overall) and dp.overall < frame.four_fifths:
        settled = dp.overall_ci is not None and dp.overall_ci[1] < frame.four_fifths
        low, high = _extremes(report, dp)
        of_class = f" of '{frame.class_of(report, dp.worst)}'" if frame.kind == "multiclass" else ""
        text = (f"Selection rates{of_class} by {name} break the four-fifths rule: {low} against {high}, a ratio "
                f"of {dp.overall:.2f} ({frame.ci_text(dp.overall_ci, 2)}")
        if settled:
            text += f", entirely below {frame.four_fifths:g})."
        else:
            text += f"), below {frame.four_fifths:g} but the interval does not settle it."
        findings.append(Finding("error" if settled else "warning", "four-fifths-rule", text))
    eo = report.disparities["equalized_odds_difference"]
    if math.isfinite(eo.overall) and eo.overall > frame.max_eo_difference:
        settled = eo.overall_ci is not None and eo.overall_ci[0] > frame.max_eo_difference
        low, high = _extremes(report, eo)
        rate = _RATE_NAMES[eo.rate[eo.worst]]
        of_class = f" of '{frame.class_of(report, eo.worst)}'" if frame.kind == "multiclass" else ""
        text = (f"The {rate}{of_class} differs by {name}: {high} against {low}, an equalized odds difference "
                f"of {eo.overall:.3f} ({frame.ci_text(eo.overall_ci, 3)}")
        if settled:
            text += f", entirely above {frame.max_eo_difference:g})."
        else:
            text += f"), above {frame.max_eo_difference:g} but the interval does not settle it."
        findings.append(Finding("error" if settled else "warning", "equalized-odds-difference", text))
    return findings


def _extremes(report: fs.PartitionReport, spread: fs.Spread) -> tuple[str, str]:
    """'40.1% for race=X' at the lowest and the highest group of the spread's worst class."""
    position = spread.worst
    rate = report.figures[spread.rate[position]].value
    out = []
    for g in (int(spread.lowest[position]), int(spread.highest[position])):
        value = rate[g, position] if rate.ndim == 2 else rate[g]
        out.append(f"{value:.1%} for {report.partition.describe(g)}")
    return out[0], out[1]


def _of_class(report: fs.PartitionReport, frame: _Frame, position: int) -> str:
    return f" of '{frame.class_of(report, position)}'" if frame.kind == "multiclass" else ""


def _group_note(report: fs.PartitionReport, g: int, frame: _Frame, position: int = 0) -> str:
    if report.partition.counts[g] == 0:
        return "no rows"
    if not report.judged[g]:
        return f"too small to judge (n < {frame.min_group_size})"
    left_out = [
        f"{_SHORT[rate]} left out ({_denominator(report, frame, rate, g, position)} < {frame.min_group_size})"
        for rate in ("true_positive_rate", "false_positive_rate")
        if frame.classification and not report.judged_rates[rate][g, position]
    ]
    return "; ".join(left_out)


def _group_table(report: fs.PartitionReport, frame: _Frame) -> Table:
    p, f = report.partition, report.figures
    total = frame.n_rows
    rows: list[list[Any]] = []
    if frame.classification:
        multiclass = frame.kind == "multiclass"
        for g, label in enumerate(p.labels):
            for position in range(len(report.classes)):
                base, sel, tpr, fpr, fnr, precision = (_value(f[name].value[g, position]) for name in fs.RATES)
                rows.append([
                    label,
                    *([frame.class_of(report, position)] if multiclass else []),
                    int(p.counts[g]),
                    int(p.counts[g]) / total,
                    base,
                    sel,
                    _ci(f["selection_rate"].low[g, position], f["selection_rate"].high[g, position]),
                    tpr,
                    fpr,
                    fnr,
                    precision,
                    _value(f["accuracy"].value[g]),
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
                _value(f["mae"].value[g]), _ci(f["mae"].low[g], f["mae"].high[g]),
                _value(f["mean_prediction"].value[g]),
                _ci(f["mean_prediction"].low[g], f["mean_prediction"].high[g]),
                _value(f["mean_target"].value[g]),
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
        value, ci = spread.value[position], _ci(spread.low[position], spread.high[position])
    labels = report.partition.labels
    return head + [float(value), ci, _RATE_NAMES[spread.rate[position]],
                   labels[spread.lowest[position]], labels[spread.highest[position]]]


def _disparity_table(reports: list[fs.PartitionReport], frame: _Frame) -> Table:
    multiclass = frame.kind == "multiclass"
    rows: list[list[Any]] = []
    for report in reports:
        for name in _disparity_names(frame):
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


def _charts(report: fs.PartitionReport, frame: _Frame) -> list[Chart]:
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
                 f"{frame.min_group_size} rows to judge the {_RATE_NAMES[rate]} by." if marked else "")
        figure = report.figures[rate]
        value, low, high = (a[:, position] if a.ndim == 2 else a for a in (figure.value, figure.low, figure.high))
        title = _RATE_NAMES[rate].capitalize()
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
                "values": [_value(v) for v in value],
                "errors": [_ci(lo, hi) for lo, hi in zip(low, high)],
            },
            caption=caption + small,
        ))
    return charts


def _chart_label(report: fs.PartitionReport, frame: _Frame, rate: str, g: int, position: int) -> str:
    """A group's label, with its size when the rate is not judged for it."""
    label = report.partition.labels[g]
    if not report.judged[g]:
        return f"{label} (n={int(report.partition.counts[g])})"
    if rate in _SHORT and not report.judged_rates[rate][g, position]:
        return f"{label} ({_denominator(report, frame, rate, g, position)})"
    return label


def _plain_language(report: fs.PartitionReport, frame: _Frame) -> str:
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
                f"against {values[low]:.1%} of {describe(low)} ({_RATE_NAMES[rate]})."
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


def _notes(reports: list[fs.PartitionReport], frame: _Frame, groups: Sequence[Groups]) -> list[str]:
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
    thin = sum(len(_thin_rates(r, frame)) for r in reports)
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


def _summary(reports: list[fs.PartitionReport], worst: dict[str, fs.Worst], frame: _Frame) -> str:
    names = [r.partition.name if len(r.partition.columns) == 1 else "their intersection" for r in reports]
    across = _listed(names)
    parts = []
    for name, w in worst.items():
        label = _DEFINITIONS[name][0]
        label = label if label[:3].isupper() else label[0].lower() + label[1:]
        if w.partition < 0:
            parts.append(f"{label} undefined")
            continue
        digits = 2 if name.endswith("_ratio") else 3
        ci = f"; {frame.ci_text(w.ci, digits)}" if w.ci else ""
        parts.append(f"{label} {w.value:.{digits}f} ({reports[w.partition].partition.name}{ci})")
    return f"Worst {parts[0]} and worst {parts[1]} across {across}, on {frame.n_rows:,} rows."
