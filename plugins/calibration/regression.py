"""A regression's calibration: do the predictions match the actual values on average, along
the predictions (deciles) and in every group, and does the errors' spread change along them?
(:mod:`auditor.stats.residuals` holds the intervals and the Breusch–Pagan test.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.contract.result import AuditResult, Chart, Finding, Metric, Table, status_from_findings
from auditor.contract.vocabulary import sentence_number
from auditor.stats import calibration as cal
from auditor.stats import residuals as rs

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext

#: A regression's residual SD in its widest prediction decile past this many times its narrowest
#: is a finding (heteroscedastic errors: one error bar does not fit every prediction).
SPREAD_RATIO = 2.0


def regression_calibration(ctx: AuditContext, options: Mapping[str, Any], min_rows: int) -> AuditResult:
    """A regression's calibration: do the predictions match the actual values on average, along
    the predictions (deciles) and in every group, and is the error's spread the same everywhere?
    ``min_rows``: the rows needed to judge (a finding)."""
    assert ctx.predictions.value is not None and ctx.data.y is not None
    pred = np.asarray(ctx.predictions.value, dtype=np.float64)
    actual = np.asarray(ctx.data.y, dtype=np.float64)
    residual = actual - pred
    order = cal.ascending(pred)
    decile = cal.equal_mass_bins(pred, 10, order)
    n_bins = int(decile.max()) + 1 if decile.size else 0
    count = np.bincount(decile, minlength=n_bins).astype(np.float64)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(decile, weights=values, minlength=n_bins) / count

    centred = residual - mean(residual)[decile]
    with np.errstate(invalid="ignore", divide="ignore"):  # a decile of one row has no SD (NaN)
        spread = np.sqrt(np.bincount(decile, weights=centred * centred, minlength=n_bins) / (count - 1))
    defined = spread[np.isfinite(spread)]
    confidence = float(options["confidence"])
    fitted = rs.calibration_slope(pred, actual, confidence)
    slope = fitted.slope if fitted is not None else None
    ratio = float(defined.max() / defined.min()) if defined.size > 1 and defined.min() > 0 else None
    test = rs.breusch_pagan(pred, residual)
    level = f"{confidence:.0%}"
    mean_ci = rs.mean_interval(residual, confidence)
    metrics = {
        "mean_residual": Metric(float(residual.mean()), "Mean residual (actual − predicted)", direction="none",
                                headline=True, description="Calibration in the large: 0 when the predictions are "
                                "right on average.", ci=mean_ci, ci_method="Student's t" if mean_ci else None),
        "calibration_slope": Metric(slope, "Calibration slope", direction="none", description="The least-squares "
                                    "slope of the actual values on the predictions: 1 when a prediction's deviation "
                                    "is matched on average; below 1, the predictions are too spread out.",
                                    ci=fitted.interval if fitted else None,
                                    ci_method="t on n − 2 degrees of freedom with a heteroscedasticity-consistent "
                                    "standard error (HC1)" if fitted else None),
        "residual_sd_ratio": Metric(ratio, "Residual SD, widest over narrowest decile", direction="lower",
                                    description="The residuals' SD in the prediction decile where it is largest, "
                                    "over the decile where it is smallest: 1 for errors of one size everywhere."),
        "heteroscedasticity_p_value": Metric(
            test.p_value if test else None, "Breusch–Pagan p-value", direction="higher",
            description="Koenker's studentized Breusch–Pagan test: the squared residuals regressed on the "
            "predictions, n R² against chi-squared with 1 degree of freedom"
            + (f" (n R² = {test.statistic:.4g})" if test else "") + ". Small: the errors' spread changes along "
            "the predictions."),
    }
    tables = [Table(
        "deciles", "Calibration by prediction decile",
        ["Decile", "Rows", "Mean prediction", "Mean actual", "Mean residual", "Residual SD"],
        [[k + 1, int(count[k]), float(mean(pred)[k]), float(mean(actual)[k]), float(mean(residual)[k]),
          float(spread[k]) if np.isfinite(spread[k]) else None] for k in range(n_bins)],
        caption="Rows in ten equal-size groups by their prediction; residual = actual − predicted.",
    )]
    group_rows = []
    for column, groups in ctx.sensitive.items():
        for code, label in enumerate(groups.labels):
            members = groups.codes == code
            if members.any():
                r = residual[members]
                interval = rs.mean_interval(r, confidence) or (None, None)
                group_rows.append([column, label, int(members.sum()), float(r.mean()), *interval,
                                   float(r.std(ddof=1)) if r.size > 1 else None])
    if group_rows:
        tables.append(Table("groups", "Residuals within groups",
                            ["Column", "Group", "Rows", "Mean residual", f"Mean {level} low", f"Mean {level} high",
                             "Residual SD"], group_rows,
                            caption="A group whose mean residual is far from 0 is predicted too high or too low "
                            "(Student's t intervals)."))
    findings = []
    judged = test is not None and test.p_value <= 1 - confidence
    if ratio is not None and ratio > SPREAD_RATIO and pred.size >= min_rows and judged:
        widest, narrowest = int(np.nanargmax(spread)) + 1, int(np.nanargmin(spread)) + 1
        findings.append(Finding(
            "warning", "heteroscedastic",
            f"The errors' spread depends on the prediction: the residual SD is {sentence_number(float(defined.max()))} "
            f"in prediction decile {widest} and {sentence_number(float(defined.min()))} in decile {narrowest} "
            f"({ratio:.1f} times; Breusch–Pagan p = {sentence_number(test.p_value if test else 1.0)}). One RMSE "
            "does not describe every prediction; report errors by range.",
        ))
    chart = Chart(
        "reliability", "Mean actual against mean prediction, by decile", "curve",
        {"x_label": "Mean prediction", "y_label": "Mean actual value", "diagonal": True,
         "series": [{"name": "prediction deciles", "x": [float(v) for v in mean(pred)],
                     "y": [float(v) for v in mean(actual)]}]},
        caption="On the diagonal the predictions are right on average along their whole range.",
    )
    summary = (f"Mean residual {sentence_number(float(residual.mean()))}, calibration slope "
               f"{sentence_number(slope) if slope is not None else 'undefined'}")
    summary += (f"; residual SD from {sentence_number(float(defined.min()))} to {sentence_number(float(defined.max()))} "
                "across the prediction deciles." if defined.size > 1 else
                "; too few rows for the residual SD of more than one prediction decile.")
    return AuditResult(audit="calibration", title="Calibration and thresholds", status=status_from_findings(findings),
                       summary=summary, metrics=metrics, findings=findings, tables=tables, charts=[chart],
                       options=dict(options))
