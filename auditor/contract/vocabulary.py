"""The shared metric vocabulary: what each performance metric is called, which way is
better, what it means, which metrics a report leads with, and how their intervals are set.

Several audits report the same metrics (metrics, overfitting, crossval, explain), so one
name means one thing everywhere; this module is where they meet, so that no audit imports
another. A third-party audit that reports these metrics may use it too: the keys are
stable (they are report.json paths, ``metrics.roc_auc``).

Torch-free: importing it loads nothing heavy (:func:`check_memory` imports the loader
lazily).
"""

from __future__ import annotations

from auditor.contract.plugin import Option
from auditor.contract.result import Direction

#: The regression tolerance (absolute) the built-in audits declare on their headline metrics
#: (:attr:`auditor.contract.result.Metric.tolerance`): with a baseline and no [regression]
#: table, each may get worse by at most this much.
HEADLINE_TOLERANCE = 0.01

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
    Option(
        "bootstrap_max_work", "int", 30_000_000,
        "Largest cost of the row bootstrap (rows x ranked score columns x resamples, ~0.4 s on one core); "
        "analytic intervals beyond, so that more rows never cost more time.",
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
    from auditor.loading.inputs import MEMORY_BUDGET_VARIABLE, memory_budget
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
