"""The calibration audit: does the model's confidence match how often it is right?

A model that says "90% sure" should be right 9 times in 10. Accuracy and ROC-AUC do not show
this: a model can rank perfectly and still be badly over-confident, which matters whenever
someone acts on the probability itself (a triage threshold, a risk shown to a patient).

The audit reads the predictions the run computed once (``ctx.predictions``) and the target;
it never runs the model. It reports the expected calibration error with a bootstrap
confidence interval, the largest gap in any bin, how over- (or under-) confident the model is
on average, a table of the reliability bins and a reliability diagram, and warns when the
ECE exceeds ``confidence.max_ece``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from auditor.contract.context import AuditContext
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import (
    AuditResult,
    Chart,
    Finding,
    Metric,
    Table,
    status_from_findings,
)
from auditor_calibration.calibration import bootstrap_ece, reliability

CI_LEVEL = 0.95


class CalibrationAudit(Audit):
    name = "confidence"
    title = "Confidence calibration"
    description = "Does the model's confidence match its accuracy? Expected calibration error, reliability diagram."
    needs = ("target", "classification")
    options = (
        Option("n_bins", "int", 10, "Equal-width confidence bins of the reliability diagram.", min=2, max=100),
        Option("max_ece", "float", 0.05, "Warn when the expected calibration error is above this.", min=0.0, max=1.0),
        Option("n_resamples", "int", 200, "Bootstrap resamples of the ECE's 95% interval (0: no interval).",
               min=0, max=10_000),
        Option("min_rows", "int", 50, "Fewer rows than this: not assessed (the bins would be noise).", min=1),
    )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        y, proba, label = ctx.data.y, ctx.predictions.proba, ctx.predictions.label
        if y is None or proba is None or label is None:  # the runner skips it then; a direct call says so too
            return AuditResult.skipped(self.name, self.title, "Needs a target and a classification model.")
        n, n_bins = len(y), int(options["n_bins"])
        if n < int(options["min_rows"]):
            return AuditResult.not_assessed(
                self.name, self.title,
                f"Not assessed: {n} rows, fewer than confidence.min_rows ({options['min_rows']}); "
                "a reliability diagram needs more rows per bin.",
            )
        confidence = proba[np.arange(n), label]
        correct = label == y
        bins = reliability(confidence, correct, n_bins)
        ci = None
        if int(options["n_resamples"]) > 0:
            ci = bootstrap_ece(confidence, correct, n_bins, n_resamples=int(options["n_resamples"]),
                               level=CI_LEVEL, seed=ctx.seed)
        mean_confidence, accuracy = float(confidence.mean()), float(correct.mean())
        over = mean_confidence - accuracy
        metrics = {
            "ece": Metric(bins.ece, label="Expected calibration error", ci=ci,
                          ci_method=None if ci is None else f"percentile bootstrap ({options['n_resamples']} resamples)",
                          direction="lower", headline=True, tolerance=0.01,
                          description=f"Top-label ECE over {n_bins} equal-width confidence bins."),
            "mce": Metric(bins.mce, label="Maximum calibration error", direction="lower",
                          description="The largest |accuracy - confidence| of any non-empty bin."),
            "overconfidence": Metric(over, label="Mean confidence - accuracy", direction="none",
                                     description="Positive: over-confident; negative: under-confident."),
        }
        findings = []
        if bins.ece > float(options["max_ece"]):
            findings.append(Finding(
                "warning", "miscalibrated",
                f"The expected calibration error {bins.ece:.3f} is above confidence.max_ece "
                f"({float(options['max_ece']):g}): the model is {'over' if over > 0 else 'under'}-confident "
                f"(mean confidence {mean_confidence:.3f}, accuracy {accuracy:.3f}). Recalibrate its "
                "probabilities on held-out data (temperature scaling, isotonic regression) before acting on them.",
            ))
        filled = np.flatnonzero(bins.rows)
        table = Table(
            name="reliability", title="Reliability bins",
            columns=["Confidence", "Rows", "Mean confidence", "Accuracy", "Gap"],
            rows=[[f"({bins.edges[m]:.2f}, {bins.edges[m + 1]:.2f}]", int(bins.rows[m]), float(bins.confidence[m]),
                   float(bins.accuracy[m]), float(bins.accuracy[m] - bins.confidence[m])] for m in filled],
            caption="Rows binned by the probability of the predicted class; empty bins left out.",
        )
        chart = Chart(
            name="reliability_diagram", title="Reliability diagram", kind="curve",
            data={"x_label": "Mean confidence", "y_label": "Accuracy", "diagonal": True,
                  "series": [{"name": "model", "x": bins.confidence[filled].tolist(),
                              "y": bins.accuracy[filled].tolist()}]},
            caption="On the diagonal: calibrated. Below it: over-confident.",
        )
        interval = "" if ci is None else f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})"
        summary = (f"Expected calibration error {bins.ece:.3f}{interval} over {n_bins} bins; mean confidence "
                   f"{mean_confidence:.3f} against accuracy {accuracy:.3f}.")
        return AuditResult(
            audit=self.name, title=self.title, status=status_from_findings(findings), summary=summary,
            metrics=metrics, findings=findings, tables=[table], charts=[chart], options=dict(options),
        )
