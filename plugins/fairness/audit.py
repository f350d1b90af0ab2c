"""The built-in "fairness" audit: group fairness by sensitive column and their intersection.

Reads the target, the predictions and the sensitive groups from the context (never the
model) and computes, with :mod:`auditor_plugins.fairness.stats` (classification) and
:mod:`auditor_plugins.fairness.regression`, every group's rates and fairlearn's disparities
(demographic parity, equalized odds, equal opportunity) with bootstrap intervals. The
four-fifths rule and an equalized-odds limit drive the verdict, an error only when the
interval settles it. Rates computed from too few rows (a small group's, or a TPR from a
handful of positive rows) are shown but left out of the disparities.

This module computes the numbers and the verdict (metrics, findings, status, what the data
could show at its sizes); the tables, charts and sentences built from them, and the
:class:`~auditor_plugins.fairness.present.Frame` every part shares, are in
:mod:`auditor_plugins.fairness.present`.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor.contract.plugin import NEEDS, Audit, Option
from auditor.contract.result import (
    AuditResult,
    Finding,
    Metric,
    status_from_findings,
)
from auditor.contract.vocabulary import HEADLINE_TOLERANCE
from auditor_plugins.fairness import regression as fr
from auditor_plugins.fairness import stats as fs
from auditor_plugins.fairness.present import (
    DEFINITIONS,
    RATE_NAMES,
    SHORT_RATE_NAMES,
    Frame,
    bar_charts,
    class_clause,
    disparity_names,
    disparity_table,
    explanatory_notes,
    extreme_groups,
    finite_or_none,
    group_table,
    listed,
    metric_description,
    metric_key,
    not_assessed_summary,
    plain_language,
    rate_denominator,
    summary_sentence,
    thin_rates,
    too_small_groups,
)

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext, Groups

#: Default of the ``max_groups`` option. Memory and time grow with the groups (about 75 kB
#: and 1.5 ms each at the default 1,000 resamples: 20,000 groups took 1.8 GB and a minute,
#: 100,000 more than 10 GB), and a column with thousands of values is an identifier or free
#: text rather than a sensitive attribute; real ones (sex, race, country) have tens to hundreds.
DEFAULT_MAX_GROUPS = 1000


_HEADLINES = {
    "classification": ("demographic_parity_ratio", "equalized_odds_difference"),
    "regression": ("mae_ratio", "mae_difference"),
}


class FairnessAudit(Audit):
    """Group fairness: per-group rates, fairlearn's disparities and the four-fifths rule."""

    name = "fairness"
    title = "Fairness"
    description = (
        "Per-group rates, demographic parity, equalized odds and the four-fifths rule by sensitive "
        "column and their intersection, with bootstrap intervals."
    )
    needs = ("target", "sensitive")
    reads_tallies = True  # classification: every row's confusion counts per group; regression: the sample
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
        assert ctx.data.y is not None  # for the type checker: checked just above
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
        tallies = ctx.tallies if ctx.tallies is not None and ctx.task.is_classification else None
        position = {name: i for i, name in enumerate(ctx.sensitive)}

        def counted(subset: Sequence[Groups]) -> tuple[fs.Cells, np.ndarray] | None:
            """The subset's cells and confusion counts over every row, from the run's tallies."""
            if tallies is None:
                return None
            assert tallies.confusion is not None
            return fs.tallied_cells(tallies.cells, tallies.confusion, [position[g.column] for g in subset])

        # Every partition is resampled as cells of all the columns at once: when their
        # intersection has more groups than the limit, each column is audited on its own.
        if len(groups) <= 1:
            cells = 0
        else:
            whole = counted(groups)
            cells = whole[0].n_cells if whole is not None else fs.combine(groups).n_cells
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
            if label is None:
                assert proba is not None  # for the type checker: checked just above
                label = np.argmax(proba, axis=1)
            names = ctx.task.class_names or _default_class_names(ctx.data.y, label, ctx.task.kind == "binary")
            for subset in sets:
                reports += fs.classification_fairness(
                    subset, ctx.data.y, label, len(names), binary=ctx.task.kind == "binary", tallied=counted(subset),
                    **settings,
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
        frame = Frame(
            kind=ctx.task.kind,
            class_names=tuple(names),
            min_group_size=settings["min_group_size"],
            confidence=settings["confidence"],
            four_fifths=float(options["four_fifths"]),
            max_eo_difference=float(options["max_eo_difference"]),
            method=method,
            approach=approach,
            resampling=resampling,
            n_rows=int(ctx.data.y.shape[0]) if tallies is None else int(tallies.rows),
        )
        headlines = _headlines(reports, frame)
        metrics = _metrics(reports, headlines, frame)
        findings = limited + _findings(reports, frame, groups)
        charts = [c for r in reports for c in bar_charts(r, frame)]
        tables = [group_table(r, frame) for r in reports] + [disparity_table(reports, frame)]
        notes = [" ".join(plain_language(r, frame) for r in reports), *explanatory_notes(reports, frame, groups)]
        powers = [_power(r, frame, ctx) for r in reports]
        notes += [f"Minimum data and power: {note}" for note, _ in powers]
        assessed = any(_defined(r) for r in reports)
        summary = (summary_sentence(reports, headlines, frame) if assessed
                   else not_assessed_summary(reports, frame, powers))
        if ctx.tallies is not None and tallies is None:
            words = f"{ctx.tallies.sample.size:,} of the {ctx.tallies.rows:,} rows of the data"
            summary = f"{summary} (On a seeded sample of {words}.)"
            notes.insert(0, f"Computed on a seeded sample of {words}: the outputs, labels and groups of every row "
                         "exceed the memory budget (run.engine in report.json), and the regression figures are not "
                         "kept as tallies; raise --memory-budget to compute them on every row.")
        if tallies is not None:
            notes.insert(0, f"Computed over all {tallies.rows:,} rows from confusion counts per group kept chunk by "
                         "chunk (the outputs, labels and groups of every row exceeded a quarter of the memory budget, "
                         "run.engine.data.binned in report.json): the same figures as from the rows.")
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


def _power(report: fs.PartitionReport, frame: Frame, ctx: AuditContext) -> tuple[str, str]:
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
        tallies = ctx.tallies
        if frame.kind == "binary" and tallies is not None and tallies.confusion is not None:
            p = float(tallies.confusion[:, :, 1].sum() / max(tallies.confusion.sum(), 1))
            where = f"the overall selection rate, {p:.2f}"
        elif frame.kind == "binary" and label is not None and len(label):
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
    columns = listed([f"'{g.column}'" for g in groups])
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


def _headlines(reports: list[fs.PartitionReport], frame: Frame) -> dict[str, fs.Worst]:
    """The worst-case headline disparities over the partitions."""
    names = _HEADLINES["classification" if frame.classification else "regression"]
    return {name: fs.worst_over(reports, name, frame.confidence) for name in names}


def _metrics(
    reports: list[fs.PartitionReport], headlines: dict[str, fs.Worst], frame: Frame
) -> dict[str, Metric]:
    out = {}
    for report in reports:
        key = metric_key(report.partition)
        for name in disparity_names(frame):
            spread = report.disparities[name]
            label, direction, _ = DEFINITIONS[name]
            out[f"{key}.{name}"] = Metric(
                value=finite_or_none(spread.overall),
                label=f"{label} ({report.partition.name})",
                ci=spread.overall_ci,
                ci_method=frame.ci_method if spread.overall_ci else None,
                direction=direction,
                description=metric_description(name, frame),
            )
    for name, worst in headlines.items():
        label, direction, _ = DEFINITIONS[name]
        extreme = "largest" if fs.larger_is_worse(name) else "smallest"
        where = f", at {reports[worst.partition].partition.name}" if worst.partition >= 0 else ""
        out[name] = Metric(
            value=finite_or_none(worst.value),
            label=f"{label} (worst)",
            ci=worst.ci,
            ci_method=f"{frame.ci_method}; the worst over columns in each resample" if worst.ci else None,
            direction=direction,
            headline=True,
            tolerance=HEADLINE_TOLERANCE if direction != "none" else None,
            description=f"The {extreme} {label.lower()} over the sensitive columns{where}. "
            + metric_description(name, frame),
        )
    return out


def _findings(reports: list[fs.PartitionReport], frame: Frame, groups: Sequence[Groups]) -> list[Finding]:
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
        f"{r.partition.name}: " + listed([f"{r.partition.labels[g]} (n={int(r.partition.counts[g]):,})"
                                           for g in too_small_groups(r)])
        for r in reports if too_small_groups(r)
    ]
    thin = [
        f"{r.partition.name}: " + listed([
            f"{SHORT_RATE_NAMES[rate]}{class_clause(r, frame, position)} of {r.partition.labels[g]} "
            f"({rate_denominator(r, frame, rate, g, position)})"
            for g, position, rate in thin_rates(r, frame)
        ])
        for r in reports if thin_rates(r, frame)
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
                f"{listed(list(g.labels))}.",
            ))
    return findings


def _threshold_findings(report: fs.PartitionReport, frame: Frame) -> list[Finding]:
    """The four-fifths rule and the equalized-odds limit for one partition: an error when
    the interval lies entirely on the wrong side, a warning when only the estimate does."""
    findings = []
    name = report.partition.name
    dp = report.disparities["demographic_parity_ratio"]
    if math.isfinite(dp.overall) and dp.overall < frame.four_fifths:
        settled = dp.overall_ci is not None and dp.overall_ci[1] < frame.four_fifths
        low, high = extreme_groups(report, dp)
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
        low, high = extreme_groups(report, eo)
        rate = RATE_NAMES[eo.rate[eo.worst]]
        of_class = f" of '{frame.class_of(report, eo.worst)}'" if frame.kind == "multiclass" else ""
        text = (f"The {rate}{of_class} differs by {name}: {high} against {low}, an equalized odds difference "
                f"of {eo.overall:.3f} ({frame.ci_text(eo.overall_ci, 3)}")
        if settled:
            text += f", entirely above {frame.max_eo_difference:g})."
        else:
            text += f"), above {frame.max_eo_difference:g} but the interval does not settle it."
        findings.append(Finding("error" if settled else "warning", "equalized-odds-difference", text))
    return findings
