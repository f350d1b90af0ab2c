"""The built-in "calibration" audit: can the probabilities be believed, for every group, and
where should the decision threshold be?

- **Calibration** (:mod:`auditor.stats.calibration`) of the positive class's probability
  (binary) or of the predicted class's (multiclass, *top-label*), all from one sort: ECE over
  15 equal-width bins (torchmetrics' binning) and 15 equal-mass bins, Kumar et al.'s debiased
  ECE (the audit's judgement: its interval covers the true error) and debiased L2 error, the
  MCE, a calibration test, and the CORP decomposition of the Brier score into miscalibration,
  discrimination and uncertainty; intervals from cell bootstraps
  (:mod:`auditor_plugins.calibration.intervals`). The reliability diagram is the isotonic
  (CORP) recalibration curve with the equal-mass bins' points and CORP's consistency band.
- **Within groups**: the debiased ECE of every group of every sensitive column, with its
  interval, and bin by bin; a group whose interval lies above ``max_ece`` while another
  group's lies below it is a finding.
- **Thresholds** (binary, :mod:`auditor.stats.thresholds`): precision, recall, F1, FPR and the
  selection rate at every threshold (a chart), and the thresholds that maximise F1 and
  Youden's J, reach ``target_recall`` or ``target_precision``, and minimise the expected cost
  under ``costs``, each with intervals (:mod:`auditor_plugins.calibration.threshold_intervals`).
- **Class-wise** (multiclass): each class's probability one against the rest, with intervals.
- **Regression** (:mod:`auditor_plugins.calibration.regression`): the mean residual, the
  calibration slope, the residuals by prediction decile and by group, with intervals, and a
  finding when their spread changes along the predictions.

A run that kept tallies computes on the seeded sample of rows, as the runner says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import AuditResult, Chart, Finding, Metric, Table, status_from_findings
from auditor.contract.vocabulary import sentence_number
from auditor.stats import calibration as cal
from auditor.stats import thresholds as th
from auditor.stats.bootstrap import make_rng, z_value
from auditor_plugins.calibration.intervals import (
    BRIER_RUNS,
    MAX_TYPES,
    brier_intervals,
    classwise_interval,
    intervals,
    reaching_zero,
)
from auditor_plugins.calibration.regression import regression_calibration
from auditor_plugins.calibration.threshold_intervals import GROUPS, threshold_intervals

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext

#: Points of a curve in a chart, at most.
MAX_POINTS = 200
#: Groups smaller than this get no calibration figures of their own (too few rows to bin).
MIN_GROUP_ROWS = 30
#: Groups drawn in a chart of calibration within groups, at most (the largest).
MAX_GROUP_SERIES = 8
#: Bands of the probability (its quintiles over all rows) in the table within groups.
GROUP_BANDS = 5
#: Rows needed to judge calibration (a finding): about 13 a bin. Fewer rows give an ECE biased
#: upward (2 rows a bin: COMPAS's 32 Asian defendants read 0.17 on scores calibrated to 0.01
#: over everyone), and its bootstrap interval inherits the bias.
MIN_JUDGED_ROWS = 200


def _costs(text: str) -> tuple[float, float]:
    costs = {"fp": 1.0, "fn": 1.0}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition(":")
        if key.strip() not in costs:
            raise ValueError(f"calibration.costs names {key.strip()!r}; it takes fp:COST,fn:COST, e.g. fp:1,fn:5.")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"calibration.costs gives {part!r}: the cost must be a number, e.g. fn:5.") from None
        if not np.isfinite(number) or number < 0:
            raise ValueError(f"calibration.costs gives {part!r}: costs are finite and not negative.")
        costs[key.strip()] = number
    return costs["fp"], costs["fn"]


def _threshold(s: th.Sweep, i: int | None) -> float | None:
    """The sweep's threshold ``i`` (None for the first, +inf: nothing predicted positive)."""
    return float(s.thresholds[i]) if i is not None and np.isfinite(s.thresholds[i]) else None


class CalibrationAudit(Audit):
    name = "calibration"
    title = "Calibration and thresholds"
    description = ("Whether the predicted probabilities match how often the events happen (ECE, debiased ECE, "
                   "Brier decomposition, per group), and which decision threshold serves which goal.")
    needs = ("target",)
    options = (
        Option("max_ece", "float", 0.05, "A group whose debiased ECE interval lies above this while another's "
               "lies below it is a finding; the whole data's too.", min=0.0, max=1.0),
        Option("n_resamples", "int", 1000, "Bootstrap resamples per interval.", min=100, max=100_000),
        Option("confidence", "float", 0.95, "Confidence level of the intervals.", min=0.5, max=0.999),
        Option("target_recall", "float", 0.0, "Also report the highest threshold reaching this recall (0: none).",
               min=0.0, max=1.0),
        Option("target_precision", "float", 0.0, "Also report the lowest threshold reaching this precision "
               "(0: none).", min=0.0, max=1.0),
        Option("costs", "str", "fp:1,fn:1", "Costs of a false positive and a false negative, for the threshold "
               "of least expected cost, e.g. fp:1,fn:5."),
    )

    def check(self, options: Mapping[str, Any]) -> None:
        try:
            _costs(str(options["costs"]))
        except ValueError as exc:
            raise UsageError(str(exc), hint="Give -o calibration.costs=fp:COST,fn:COST, e.g. fp:1,fn:5.") from None

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        if ctx.data.y is None:
            raise ValueError("the calibration audit needs the target column")
        if not ctx.task.is_classification:
            return regression_calibration(ctx, options, MIN_JUDGED_ROWS)
        fp_cost, fn_cost = _costs(str(options["costs"]))
        return _Run(ctx, options, fp_cost, fn_cost).result()


class _Run:
    def __init__(self, ctx: AuditContext, options: Mapping[str, Any], fp_cost: float, fn_cost: float) -> None:
        pred = ctx.predictions
        assert pred.proba is not None and pred.label is not None and ctx.data.y is not None
        self.ctx, self.options = ctx, options
        self.costs = (fp_cost, fn_cost)
        self.binary = ctx.task.kind == "binary"
        y = np.asarray(ctx.data.y, dtype=np.int64)
        if self.binary:
            self.p, self.y = np.asarray(pred.proba[:, 1], dtype=np.float64), (y == 1).astype(np.float64)
            self.event = f"P({ctx.task.class_names[1]})"
        else:
            self.p = np.asarray(pred.proba.max(axis=1), dtype=np.float64)
            self.y = (pred.label == y).astype(np.float64)
            self.event = "the predicted class's probability"
        self.ranked = cal.rank(self.p, self.y)  # the one sort of the probabilities every part shares
        self.metrics: dict[str, Metric] = {}
        self.findings: list[Finding] = []
        self.tables: list[Table] = []
        self.charts: list[Chart] = []
        self.notes: list[str] = []

    def _ci(self, values: tuple[float, float], debiased: bool = False) -> dict[str, Any]:
        method = (f"bootstrap of the rows pooled in cells, {int(self.options['n_resamples'])} resamples, seed "
                  f"{self.ctx.seed}, ")
        if debiased:
            method += ("percentiles centred on the estimate, clipped at 0, and down to 0 when the calibration test "
                       "does not reject calibration")
        else:
            method += ("percentile: the plug-in estimate's own spread, which lies above the true error by the "
                       "estimate's bias (read the debiased ECE for the true error)")
        return {"ci": values, "ci_method": method}

    def figures(self, r: cal.Ranked, stream: int) -> dict[str, Any]:
        width = r.runs(cal.width_bounds(r))
        mass_bounds = cal.mass_bounds(r.n)
        mass = r.runs(mass_bounds)
        rng = make_rng(self.ctx.seed, 40, stream)
        confidence = float(self.options["confidence"])
        found = intervals(r, mass_bounds, rng, int(self.options["n_resamples"]), confidence)
        test = cal.ranked_test(r, mass_bounds)
        debiased = reaching_zero(found.ece_debiased, test, confidence)
        return {"width": width, "mass": mass, "ece": cal.ece(width), "ece_equal_mass": cal.ece(mass),
                "ece_debiased": cal.debiased_ece(mass), "debiased_ci": debiased, "test": test,
                "l2_debiased": cal.debiased_l2(mass), "mce": cal.mce(width), "intervals": found}

    def result(self) -> AuditResult:
        whole = self.figures(self.ranked, 0)
        found = whole["intervals"]
        units = "probability"
        self.metrics["ece"] = Metric(
            whole["ece"], "Expected calibration error (ECE)", direction="lower", headline=True, **self._ci(found.ece),
            description=f"Mean over 15 equal-width bins of {self.event}, weighted by their rows, of |share of events − "
            f"mean probability|, in {units} (torchmetrics' CalibrationError, L1).")
        self.metrics["ece_equal_mass"] = Metric(
            whole["ece_equal_mass"], "ECE, equal-mass bins", direction="lower", **self._ci(found.ece_equal_mass),
            description="The same over 15 bins holding equal numbers of rows.")
        self.metrics["ece_debiased"] = Metric(
            whole["ece_debiased"], "ECE, debiased", direction="lower", **self._ci(whole["debiased_ci"], debiased=True),
            description="The equal-mass ECE less its estimated bias from noisy bin means (Kumar, Liang & Ma 2019: "
            "2 ECE − the expected ECE over bin means redrawn from their normal approximation). The estimate of "
            "the true error: the plug-in ECEs over-state it, most on few rows. It can fall a little below 0 "
            "(bins noisier than their gaps): read that as 0.")
        test: cal.Test = whole["test"]
        self.metrics["calibration_p_value"] = Metric(
            test.p_value, "Calibration test p-value", direction="higher",
            description=f"Whether the events could have come from these probabilities: over the 15 equal-mass bins, "
            f"Σ (events − Σ p)² / Σ p(1 − p) = {test.statistic:.4g} against chi-squared with {test.dof} degrees of "
            "freedom (Hosmer–Lemeshow on data the model was not fitted to). Small: the probabilities are off.")
        self.metrics["l2_debiased"] = Metric(
            whole["l2_debiased"], "L2 calibration error, debiased", direction="lower",
            description="Kumar et al.'s debiased estimate of the root mean squared calibration error over the "
            "equal-mass bins (0 when the bias correction exceeds the plug-in estimate).")
        self.metrics["mce"] = Metric(
            whole["mce"], "Maximum calibration error (MCE)", direction="lower", **self._ci(found.mce),
            description="The largest |share of events − mean probability| over the equal-width bins that hold rows.")
        parts, values, fitted = cal.ranked_decomposition(self.ranked)
        spread = brier_intervals(self.ranked, parts, make_rng(self.ctx.seed, 43, 0), int(self.options["n_resamples"]),
                                 float(self.options["confidence"]))
        brier_ci = (f"bootstrap of the rows pooled in cells ({BRIER_RUNS} runs by probability x label), "
                    f"{int(self.options['n_resamples'])} resamples, seed {self.ctx.seed}, the isotonic curve refitted "
                    "on the runs in each, percentiles centred on the estimate")
        for key, value, ci, label, text in (
            ("brier_miscalibration", parts.mcb, spread.mcb, "Brier miscalibration (MCB)", "The Brier score less that of the "
             "isotonic recalibration of the probabilities (CORP): what recalibrating would gain."),
            ("brier_discrimination", parts.dsc, spread.dsc, "Brier discrimination (DSC)", "The Brier score of always predicting "
             "the events' share less that of the isotonic recalibration: what the model's ranking is worth."),
            ("brier_uncertainty", parts.unc, spread.unc, "Brier uncertainty (UNC)", "The Brier score of always predicting the "
             "events' share: what the data leave to predict."),
        ):
            self.metrics[key] = Metric(value, label, direction="lower" if key == "brier_miscalibration" else "none",
                                       description=text + " Brier = MCB − DSC + UNC.", ci=ci, ci_method=brier_ci)
        self._reliability(whole, values, fitted, parts)
        maximum = float(self.options["max_ece"])
        if self.p.size < MIN_JUDGED_ROWS:
            self.notes.append(f"Calibration is not judged on {self.p.size:,} rows (fewer than {MIN_JUDGED_ROWS}): the "
                              "ECE of few rows is biased upward, and so is its interval.")
        elif whole["debiased_ci"][0] > maximum:
            low, high = whole["debiased_ci"]
            self.findings.append(Finding(
                "warning", "miscalibrated",
                f"{self.event[0].upper()}{self.event[1:]} is miscalibrated: debiased ECE "
                f"{sentence_number(whole['ece_debiased'])} (interval {sentence_number(low)}–{sentence_number(high)}) "
                f"lies above {maximum:g}. The reliability diagram shows where. On these data, the isotonic recalibration "
                f"lowers the Brier score by {sentence_number(parts.mcb)} (the miscalibration term); fit a "
                "recalibration (isotonic or Platt) on held-out data, not on these.",
            ))
        self._groups(maximum)
        if self.binary:
            self._thresholds()
        else:
            self._classwise()
            self.notes.append("Thresholds are chosen for a binary model; a multiclass model's predicted class is "
                              "its most probable one.")
        low, high = whole["debiased_ci"]
        if test.p_value > 1 - float(self.options["confidence"]):
            verdict = "not detectably miscalibrated"
        elif high <= maximum:
            verdict = f"detectably miscalibrated on {self.p.size:,} rows, but by less than {maximum:g}"
        elif low > maximum:
            verdict = f"miscalibrated by more than {maximum:g}"
        else:
            verdict = f"detectably miscalibrated; whether by more than {maximum:g}, these rows do not settle"
        summary = (f"ECE {sentence_number(whole['ece'])}, debiased {sentence_number(whole['ece_debiased'])} "
                   f"({sentence_number(low)}–{sentence_number(high)}), of {self.event}; calibration test p = "
                   f"{sentence_number(test.p_value)} ({verdict}); the Brier score {sentence_number(parts.brier)} = miscalibration "
                   f"{sentence_number(parts.mcb)} − discrimination {sentence_number(parts.dsc)} + uncertainty "
                   f"{sentence_number(parts.unc)}.")
        return AuditResult(audit=CalibrationAudit.name, title=CalibrationAudit.title,
                           status=status_from_findings(self.findings), summary=summary, metrics=self.metrics,
                           findings=self.findings, tables=self.tables, charts=self.charts, notes=self.notes,
                           options=dict(self.options))

    def _reliability(self, whole: dict[str, Any], values: np.ndarray, fitted: np.ndarray,
                     parts: cal.Decomposition) -> None:
        r = self.ranked
        rows = np.unique(np.linspace(0, r.n - 1, min(r.n, MAX_POINTS)).astype(np.int64))  # sorted rows, evenly
        keep = np.unique(np.searchsorted(r.starts, rows, side="right") - 1)  # their distinct values
        mass: cal.Bins = whole["mass"]
        filled = mass.count > 0
        confidence = float(self.options["confidence"])
        band = cal.consistency_band(r, make_rng(self.ctx.seed, 42, 0), confidence)
        level = f"{confidence:.0%}"
        self.charts.append(Chart(
            "reliability", f"Reliability of {self.event}", "curve",
            {"x_label": "Predicted probability", "y_label": "Share of events", "diagonal": True,
             "band": {"name": f"consistency band ({level}, if calibrated)", "x": [float(v) for v in band.x],
                      "low": [float(v) for v in band.low], "high": [float(v) for v in band.high]},
             "series": [{"name": "isotonic recalibration (CORP)", "x": [float(v) for v in values[keep]],
                         "y": [float(v) for v in fitted[keep]]},
                        {"name": "equal-mass bins", "x": [float(v) for v in mass.mean_p[filled]],
                         "y": [float(v) for v in mass.mean_y[filled]]}]},
            caption="On the diagonal, a predicted probability comes true as often as it says. The isotonic curve is "
            "the best non-decreasing recalibration of the probabilities (pool-adjacent-violators); the points are "
            "the 15 equal-mass bins' mean probability and share of events. The shaded band is where the isotonic "
            f"curve of calibrated probabilities falls {level} of the time, point by point (CORP's consistency band: "
            f"{cal.BAND_REPLICATES} redraws of the events from the probabilities, over {band.x.size} runs of rows): "
            f"the curve leaves it at {band.outside():.0%} of the rows (pointwise: a calibrated model's leaves it at "
            f"about {1 - confidence:.0%} on average; a Monte Carlo figure, which the seed moves a little).",
        ))
        width: cal.Bins = whole["width"]
        self.tables.append(Table(
            "bins", "Calibration by bin (equal width)",
            ["Bin", "Rows", "Mean probability", "Share of events", "Gap"],
            [[f"{k / cal.N_BINS:.3f}–{(k + 1) / cal.N_BINS:.3f}", int(width.count[k]), float(width.mean_p[k]),
              float(width.mean_y[k]), float(width.gap[k])] for k in range(cal.N_BINS) if width.count[k] > 0],
            caption=f"Rows by {self.event}; gap: |share of events − mean probability|. Brier score "
                    f"{sentence_number(parts.brier)}.",
        ))

    def _classwise(self) -> None:
        """Multiclass: each class's probability against whether the row is of that class (one
        vs rest), and their mean: Kumar et al.'s marginal (class-wise) calibration error."""
        pred = self.ctx.predictions
        assert pred.proba is not None and self.ctx.data.y is not None
        y = np.asarray(self.ctx.data.y, dtype=np.int64)
        level = f"{float(self.options['confidence']):.0%}"
        rows, eces, series = [], [], []
        for k, name in enumerate(self.ctx.task.class_names):
            p = np.asarray(pred.proba[:, k], dtype=np.float64)
            event = (y == k).astype(np.float64)
            found = self.figures(cal.rank(p, event), 1_000 + k)
            eces.append(found["ece"])
            mass: cal.Bins = found["mass"]
            filled = mass.count > 0
            series.append((int(event.sum()), {"name": str(name), "x": [float(v) for v in mass.mean_p[filled]],
                                              "y": [float(v) for v in mass.mean_y[filled]]}))
            rows.append([name, int(event.sum()), float(p.mean()), float(event.mean()), found["ece"],
                         *found["intervals"].ece, found["ece_debiased"], *found["debiased_ci"]])
        resamples = int(self.options["n_resamples"])
        joint = classwise_interval(np.asarray(pred.proba, dtype=np.float64), y, make_rng(self.ctx.seed, 44, 0),
                                   resamples, float(self.options["confidence"]))
        self.metrics["ece_classwise"] = Metric(
            float(np.mean(eces)), "Class-wise ECE (mean over classes)", direction="lower",
            description="The mean over classes of the ECE of each class's probability against whether the row "
            "is of that class (15 equal-width bins): Kumar et al.'s marginal calibration error, L1.",
            ci=joint, ci_method=(f"bootstrap of the rows pooled by type (label and bin in every class), {resamples} "
                                 f"resamples, seed {self.ctx.seed}, percentile: the plug-in estimate's spread")
            if joint is not None else None)
        if joint is None:
            self.notes.append(f"No interval on the mean class-wise ECE: past {MAX_TYPES:,} row types (label and bin "
                              "in every class) or 13 classes, the joint bootstrap is not run.")
        self.tables.append(Table(
            "classes", "Calibration of each class's probability",
            ["Class", "Rows of the class", "Mean probability", "Share of rows", "ECE", f"ECE {level} low",
             f"ECE {level} high", "ECE, debiased", f"Debiased {level} low", f"Debiased {level} high"], rows,
            caption="One class against the rest: a class whose mean probability differs from its share of rows "
            "is predicted too often or too rarely. Intervals as the whole data's (the plug-in ECE's: its spread; "
            "the debiased ECE's: of the true error).",
        ))
        shown = sorted(series, key=lambda item: -item[0])[:MAX_GROUP_SERIES]
        self.charts.append(Chart(
            "class_reliability", "Reliability of each class's probability", "curve",
            {"x_label": "Predicted probability of the class", "y_label": "Share of rows of the class",
             "diagonal": True, "series": [item[1] for item in shown]},
            caption="One class against the rest, over 15 equal-mass bins of its probability"
            + (f"; the {len(shown)} most frequent of {len(series)} classes." if len(shown) < len(series) else ".")
            + " On the diagonal, the class's probability comes true as often as it says.",
        ))

    def _bin_rows(self, r: cal.Ranked) -> list[list[Any]]:
        """A group's calibration bin by bin: each score value when the whole data's probabilities
        take at most 15 values (a risk scale: each score's share of events), else the whole
        data's probability quintiles, the same five bands for every group (15 bins a group made
        the table longer than the report); with a Wilson interval of each share of events."""
        values, _, _ = self.ranked.distinct
        if values.size <= cal.N_BINS:
            bounds = np.r_[np.searchsorted(r.p, values, side="left"), r.n]
            names = [f"p = {v:.4g}" for v in values]
        else:
            whole = self.ranked.p
            cuts = np.unique(whole[(np.arange(1, GROUP_BANDS) * whole.size) // GROUP_BANDS])
            bounds = np.r_[0, np.searchsorted(r.p, cuts, side="left"), r.n]
            edges = [float(whole[0]), *(float(c) for c in cuts), float(whole[-1])]
            names = [f"{low:.3g}–{high:.3g}" for low, high in zip(edges, edges[1:])]
        bins = r.runs(bounds)
        z = z_value(float(self.options["confidence"]))
        out = []
        for name, rows, mean_p, share in zip(names, bins.count, bins.mean_p, bins.mean_y):
            if rows == 0:
                continue
            centre = (share * rows + z * z / 2) / (rows + z * z)
            half = z * np.sqrt(share * (1 - share) * rows + z * z / 4) / (rows + z * z)
            out.append([name, int(rows), float(mean_p), float(share), float(max(centre - half, 0.0)),
                        float(min(centre + half, 1.0))])
        return out

    def _groups(self, maximum: float) -> None:
        rows = []
        by_bin: list[list[Any]] = []
        above: list[str] = []
        below: list[str] = []
        for column, groups in self.ctx.sensitive.items():
            for code, label in enumerate(groups.labels):
                members = np.flatnonzero(groups.codes == code)
                if members.size < MIN_GROUP_ROWS:
                    rows.append([column, label, int(members.size), None, None, None, None, None])
                    continue
                ranked = cal.rank(self.p[members], self.y[members])
                found = self.figures(ranked, 1 + len(rows))
                by_bin.extend([column, label, *row] for row in self._bin_rows(ranked))
                low, high = found["debiased_ci"]
                rows.append([column, label, int(members.size), found["ece"], found["ece_debiased"], low, high,
                             found["test"].p_value])
                if members.size < MIN_JUDGED_ROWS:
                    continue
                if low > maximum:
                    above.append(f"{column} = {label} (debiased ECE {sentence_number(found['ece_debiased'])})")
                elif high <= maximum:
                    below.append(f"{column} = {label}")
        if not rows:
            return
        level = f"{float(self.options['confidence']):.0%}"
        self.tables.append(Table(
            "groups", "Calibration within groups",
            ["Column", "Group", "Rows", "ECE", "ECE, debiased", f"Debiased {level} low", f"Debiased {level} high",
             "Test p-value"], rows,
            caption=f"ECE of {self.event} within each group (15 equal-width bins), the debiased ECE (15 equal-mass "
            f"bins) with its interval, and the calibration test's p-value; groups under {MIN_GROUP_ROWS} rows are "
            f"not binned, and groups under {MIN_JUDGED_ROWS} are shown but not judged (the ECE of few rows is "
            "biased upward).",
        ))
        if by_bin:
            self._group_bins(by_bin, level)
        if above and below:
            self.findings.append(Finding(
                "warning", "group-miscalibrated",
                f"The probabilities are miscalibrated for {', '.join(above)}: the interval lies above {maximum:g}, "
                f"while for {', '.join(below[:3])}{' and others' if len(below) > 3 else ''} it lies below. The same "
                "score means a different chance in different groups; see the fairness audit for the error rates.",
            ))

    def _group_bins(self, by_bin: list[list[Any]], level: str) -> None:
        """The calibration-within-groups table bin by bin, and a chart of it per column."""
        self.tables.append(Table(
            "group_bins", "Calibration within groups, band by band",
            ["Column", "Group", "Bin", "Rows", "Mean probability", "Share of events", f"Share {level} low",
             f"Share {level} high"], by_bin,
            caption=f"Within each group, how often the event happened at each level of {self.event}: calibrated "
            "within the group when the share of events matches the mean probability. Bins: each score value when "
            f"the probabilities take 15 values or fewer (a risk scale), else the {GROUP_BANDS} quintiles of the "
            "probability over all rows, the same bands for every group (a band starts at its low end). Wilson "
            "intervals.",
        ))
        for column in self.ctx.sensitive:
            mine = [row for row in by_bin if row[0] == column]
            sizes: dict[str, int] = {}
            for row in mine:
                sizes[row[1]] = sizes.get(row[1], 0) + row[3]
            shown = sorted(sizes, key=lambda g: -sizes[g])[:MAX_GROUP_SERIES]
            series = [{"name": str(group), "x": [row[4] for row in mine if row[1] == group],
                       "y": [row[5] for row in mine if row[1] == group]} for group in shown]
            if not series:
                continue
            left_out = len(sizes) - len(shown)
            self.charts.append(Chart(
                f"group_reliability_{column}", f"Reliability of {self.event} within {column}", "curve",
                {"x_label": "Mean predicted probability", "y_label": "Share of events", "diagonal": True,
                 "series": series},
                caption="Each group's share of events against its mean probability, band by band (the table above)"
                + (f"; the {len(shown)} largest groups ({left_out} smaller left out)." if left_out else ".")
                + " Lines on the diagonal together: the same score means the same chance in every group.",
            ))

    def _thresholds(self) -> None:
        s = th.from_distinct(*self.ranked.at_or_above())
        if s.positives == 0 or s.negatives == 0:
            self.notes.append(f"No thresholds: the data hold only {'negative' if s.positives == 0 else 'positive'} "
                              f"rows ({s.n:,}), and precision, recall and FPR need both classes.")
            return
        fp_cost, fn_cost = self.costs
        cost = (fp_cost * s.fp + fn_cost * (s.positives - s.tp)) / s.n
        best_f1, least_cost = th.best(s.f1()), int(np.argmin(cost))  # every threshold's F1, J and cost
        chosen: list[tuple[str, int | None]] = [
            ("0.5", th.at(s, 0.5)),
            ("largest F1", best_f1),
            ("largest Youden's J (TPR − FPR)", th.best(s.recall() - s.fpr())),
            (f"least expected cost (fp {fp_cost:g}, fn {fn_cost:g})", least_cost),
        ]
        for key, goal, highest in (("target_recall", "recall", True), ("target_precision", "precision", False)):
            target = float(self.options[key])
            if target > 0:
                values = s.recall() if goal == "recall" else s.precision()
                chosen.append((f"{goal} at least {target:g}", th.reaching(values, target, highest)))
        picked = np.array([i for _, i in chosen if i is not None], dtype=np.int64)
        at = {int(i): k for k, i in enumerate(picked)}
        rates = s.rates(picked)  # the rates at the chosen thresholds
        table: list[list[Any]] = []
        for name, i in chosen:
            if i is None:
                table.append([name, None, None, None, None, None, None, None])
                continue
            threshold = 0.5 if name.startswith("0.5") else _threshold(s, i)  # 0.5: the same rows as the score at or above it
            table.append([name, threshold, *(float(rates[k][at[i]]) for k in ("precision", "recall", "f1", "fpr",
                                                                              "selection_rate")), float(cost[i])])
        self.tables.append(Table(
            "thresholds", "Decision thresholds",
            ["Goal", "Threshold", "Precision", "Recall", "F1", "FPR", "Selection rate", "Expected cost"], table,
            caption=f"A row is predicted positive when {self.event} is at least the threshold (at 0.5 these are the "
            "model's own labels but for rows at exactly 0.5, which its labels count negative). Expected cost per row "
            "under the costs given (calibration.costs). Intervals: the next table.",
        ))
        targets = {goal: float(self.options[key]) for key, goal in (("target_recall", "recall"),
                                                                   ("target_precision", "precision"))
                   if float(self.options[key]) > 0}
        confidence = float(self.options["confidence"])
        resamples = int(self.options["n_resamples"])
        spread = threshold_intervals(s, self.costs, targets, make_rng(self.ctx.seed, 41, 0), resamples, confidence)
        cost_at = cost[picked]
        figures = {"0.5": ("F1", rates["f1"]), "f1": ("F1", rates["f1"]),
                   "youden": ("Youden's J", rates["tpr"] - rates["fpr"]), "cost": ("Expected cost", cost_at),
                   "recall": ("Precision", rates["precision"]), "precision": ("Recall", rates["recall"])}
        goals = ["0.5", "f1", "youden", "cost", *targets]
        level = f"{confidence:.0%}"
        rows: list[list[Any]] = []
        for goal, (name, i) in zip(goals, chosen):
            found = spread[goal]
            label, values = figures[goal]
            threshold = table[len(rows)][1]
            rows.append([name, threshold, *(found.threshold or (None, None)), label,
                         None if i is None else float(values[at[i]]), *(found.value or (None, None))])
        self.tables.append(Table(
            "threshold_intervals", "How firmly the data fix each threshold",
            ["Goal", "Threshold", f"Threshold {level} low", f"Threshold {level} high", "Figure", "Value",
             f"Value {level} low", f"Value {level} high"], rows,
            caption=f"Bootstrap: {resamples} redraws of the rows, each choosing its own threshold for the goal "
            f"(resolved to 1/{GROUPS} of the rows), seed {self.ctx.seed}, percentile intervals. A wide threshold "
            "interval: other data would put the line elsewhere. The largest F1 and J and the least cost are chosen "
            "on the rows they are scored on: optimistic for new data. Target rows: the precision (or recall) "
            "reached at the threshold meeting the target. No interval where most redraws never reach the goal.",
        ))
        ci_method = (f"bootstrap of the rows pooled in {GROUPS} runs by probability, {resamples} resamples, seed "
                     f"{self.ctx.seed}, the threshold chosen again in each, percentile")

        def ci(found: Any) -> dict[str, Any]:
            return {"ci": found, "ci_method": ci_method} if found is not None else {}

        self.metrics["best_f1_threshold"] = Metric(
            _threshold(s, best_f1), "Threshold of largest F1", direction="none",
            description="The threshold at which F1 is largest on these data.", **ci(spread["f1"].threshold))
        self.metrics["best_f1"] = Metric(
            float(rates["f1"][at[best_f1]]), "Largest F1 over thresholds", direction="higher",
            description="F1 at the threshold that maximises it on these data (optimistic for new data).",
            **ci(spread["f1"].value))
        self.metrics["least_cost_threshold"] = Metric(
            _threshold(s, least_cost), "Threshold of least expected cost", direction="none",
            description=f"The threshold minimising fp {fp_cost:g} × false positives + fn {fn_cost:g} × false "
            "negatives on these data.", **ci(spread["cost"].threshold))
        self.metrics["least_expected_cost"] = Metric(
            float(cost[least_cost]), "Least expected cost per row", direction="lower",
            description=f"fp {fp_cost:g} × false positives + fn {fn_cost:g} × false negatives, per row, at the "
            "least-cost threshold.", **ci(spread["cost"].value))
        keep = np.unique(np.linspace(1, s.thresholds.size - 1, min(s.thresholds.size - 1, MAX_POINTS)).astype(np.int64))
        x = [float(v) for v in s.thresholds[keep][::-1]]
        rates = s.rates(keep)
        self.charts.append(Chart(
            "thresholds", "Rates against the threshold", "curve",
            {"x_label": "Threshold", "y_label": "Rate",
             "series": [{"name": name, "x": x, "y": [float(v) for v in rates[key][::-1]]}
                        for name, key in (("precision", "precision"), ("recall (TPR)", "recall"), ("F1", "f1"),
                                          ("FPR", "fpr"), ("selection rate", "selection_rate"))]},
            caption="Each rate when rows at or above the threshold are predicted positive.",
        ))
