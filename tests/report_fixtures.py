"""Report documents for the renderer tests: a realistic one and a hostile one.

:func:`sample_report` is what ``audit`` would write for a binary income classifier: a
metrics audit with confidence intervals, a confusion matrix, ROC and precision-recall
curves, a bar chart and a per-class table; a skipped audit; an errored audit; and a
regression-style plugin audit with scatter charts, a grouped bar chart, a heatmap and an
undefined metric; and the gates a policy and a baseline add (thresholds, regressions with
their noise, the findings rule). Every value is fixed (timestamps, timings, versions
included), so rendered output can be compared with golden files.

:func:`hostile_report` is the same document with :data:`PAYLOAD` appended to every string
that comes from data, a model or a plugin (names, labels, messages, cells, paths...), plus
one tampered audit whose status and severity are not valid values at all, and one tampered gate
whose ``passed`` is not a boolean. The payload tries
HTML/script injection (which would set the page title to :data:`PWNED` or create an element
with id :data:`INJECTED_ID`), Markdown table breaking, rich markup and terminal control
sequences.

:func:`assert_matches_golden` compares rendered text with a file under tests/golden/;
set the environment variable ``AUDITOR_UPDATE_GOLDEN=1`` to rewrite the files instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

from auditor.contract.result import AuditResult, Chart, Finding, Metric, Table

#: What injected script would set ``document.title`` to.
PWNED = "PWNED"
#: The id of the element injected markup would create.
INJECTED_ID = "injected"

PAYLOAD = (
    f'<script>document.title="{PWNED}"</script>'
    f'"><img id="{INJECTED_ID}" src=x onerror="document.title=\'{PWNED}\'">'
    " &amp; a|b `tick` ]]> </style> \n[bold]rich markup[/] \x1b[31mred\x00\x07"
)

Text = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def _hostile(text: str) -> str:
    return text + PAYLOAD


def _metrics_audit(t: Text) -> AuditResult:
    bootstrap = "bootstrap (percentile, 1,000 resamples)"
    fpr = [i / 40 for i in range(41)]
    recall = [i / 40 for i in range(41)]
    return AuditResult(
        audit="metrics",
        title=t("Classification metrics"),
        status="warn",
        summary=t("Accuracy 0.853 on 15,060 rows; recall of >50K is below the 0.70 threshold."),
        metrics={
            "accuracy": Metric(0.85312, t("Accuracy"), (0.84748, 0.85876), "Wilson score", "higher", True,
                               t("Share of rows classified correctly.")),
            "roc_auc": Metric(0.90118, t("ROC AUC"), (0.89502, 0.90741), bootstrap, "higher", True),
            "f1": Metric(0.67305, t("F1 (>50K)"), (0.65911, 0.68644), bootstrap, "higher", True),
            "precision": Metric(0.74031, t("Precision (>50K)"), (0.72313, 0.75702), bootstrap),
            "recall": Metric(0.61703, t("Recall (>50K)"), (0.60118, 0.63297), bootstrap),
            "log_loss": Metric(0.31874, t("Log loss"), (0.30911, 0.32902), bootstrap, "lower"),
            "ece": Metric(0.02131, t("Expected calibration error"), None, None, "lower",
                          description=t("15 equal-width bins.")),
            "mcc_weighted": Metric(None, t("Weighted MCC"), None, None,
                                   description=t("Undefined: no sample weights given.")),
        },
        findings=[
            Finding("info", t("calibration-ok"), t("The model is well calibrated (ECE 0.021).")),
            Finding("warning", t("low-recall"), t("Recall of >50K is 0.617, below the 0.70 threshold.")),
        ],
        tables=[
            Table(
                name="per_class",
                title=t("Per-class metrics"),
                columns=[t("Class"), t("Precision"), t("Recall"), t("F1"), t("Support")],
                rows=[
                    [t("<=50K"), 0.88231, 0.93108, 0.90604, 11360],
                    [t(">50K"), 0.74031, 0.61703, 0.67305, 3700],
                ],
                caption=t("Support is the number of rows whose true class is the row's class."),
            )
        ],
        charts=[
            Chart(
                name="confusion_matrix",
                title=t("Confusion matrix"),
                kind="confusion_matrix",
                data={"labels": [t("<=50K"), t(">50K")], "matrix": [[10559, 801], [1417, 2283]]},
                caption=t("Rows are the true class, columns the predicted class."),
            ),
            Chart(
                name="roc",
                title=t("ROC curve"),
                kind="curve",
                data={
                    "x_label": t("False positive rate"),
                    "y_label": t("True positive rate"),
                    "series": [
                        {"name": t("model (AUC 0.901)"), "x": fpr, "y": [1 - (1 - x) ** 6.5 for x in fpr]},
                    ],
                    "diagonal": True,
                },
                caption=t("The dashed diagonal is a classifier that guesses."),
            ),
            Chart(
                name="pr",
                title=t("Precision-recall curve"),
                kind="curve",
                data={
                    "x_label": t("Recall"),
                    "y_label": t("Precision"),
                    "series": [
                        {"name": t("model (AP 0.762)"), "x": recall,
                         "y": [0.246 + 0.73 * (1 - r ** 3) for r in recall]},
                        {"name": t("base rate"), "x": [0.0, 1.0], "y": [0.246, 0.246]},
                    ],
                    "diagonal": False,
                },
            ),
            Chart(
                name="recall_by_class",
                title=t("Recall by class"),
                kind="bar",
                data={
                    "x_label": t("Class"),
                    "y_label": t("Recall"),
                    "labels": [t("<=50K"), t(">50K")],
                    "values": [0.93108, 0.61703],
                    "errors": [[0.92641, 0.93562], [0.60118, 0.63297]],
                },
                caption=t("Error bars are 95% bootstrap intervals."),
            ),
            Chart(
                name="folds_roc_auc",
                title=t("ROC-AUC across folds"),
                kind="strip",
                data={
                    "x_label": t("Fold"),
                    "y_label": t("ROC-AUC"),
                    "series": [{"name": t("repeat 1"), "x": [1, 2, 3], "y": [0.902, 0.911, 0.897]},
                               {"name": t("repeat 2"), "x": [1, 2, 3], "y": [0.905, None, 0.899]}],
                    "mean": 0.9028,
                    "band": [0.8976, 0.9080],
                    "band_label": t("mean ± 1 SD"),
                    "references": [{"y": 0.905, "label": t("all rows 0.905")}],
                },
                caption=t("Each point is one test fold."),
            ),
        ],
        notes=[t("Thresholded at 0.5 on the probability of >50K.")],
        options={"threshold": 0.5, "bootstrap": 1000, "positive_class": t(">50K")},
    )


def _regression_audit(t: Text) -> AuditResult:
    actual = [20000 + 1500 * i for i in range(40)]
    predicted = [a + (a / 12) * math.sin(i * 1.7) for i, a in enumerate(actual)]
    return AuditResult(
        audit="income_regression",
        title=t("Income regression (plugin)"),
        status="warn",
        summary=t("Errors grow with income: the model is less precise for high earners."),
        metrics={
            "mae": Metric(4312.57, t("MAE"), (4101.2, 4533.9), "bootstrap", "lower", True),
            "r2": Metric(0.41231, t("R²"), (0.38804, 0.43517), "bootstrap", "higher", True),
            "mape": Metric(None, t("MAPE"), None, None, "lower",
                           description=t("Undefined: some targets are zero.")),
        },
        findings=[Finding("warning", t("heteroscedastic"), t("Residuals grow with the predicted value."))],
        tables=[
            Table(
                name="by_band",
                title=t("Error by income band"),
                columns=[t("Band"), t("Rows"), t("MAE")],
                rows=[[t("< 30k"), 5210, 2210.4], [t("30k-60k"), 7031, 4102.9], [t("> 60k"), 2819, None]],
            )
        ],
        charts=[
            Chart(
                name="predicted_vs_actual",
                title=t("Predicted vs actual"),
                kind="scatter",
                data={"x_label": t("Actual income"), "y_label": t("Predicted income"),
                      "x": actual, "y": predicted, "reference": "y=x"},
                caption=t("Points on the dashed line are predicted exactly."),
            ),
            Chart(
                name="residuals",
                title=t("Residuals"),
                kind="scatter",
                data={"x_label": t("Predicted income"), "y_label": t("Residual"),
                      "x": predicted, "y": [p - a for p, a in zip(predicted, actual)], "reference": "y=0"},
            ),
            Chart(
                name="importance",
                title=t("Permutation importance"),
                kind="bar",
                data={
                    "x_label": t("Feature"),
                    "y_label": t("Increase in MAE"),
                    "labels": [t("capital_gain"), t("education_num"), t("age"), t("hours_per_week"), t("workclass")],
                    "values": [1831.2, 1204.75, 655.1, 310.4, 12.9],
                    "errors": [[1702.3, 1960.8], [1122.0, 1290.1], [598.7, 712.6], [270.2, 351.9], [-20.4, 44.0]],
                    "groups": [1, 1, 2, 0, None],
                    "legend": [t("higher values lower the prediction"), t("higher values raise the prediction"),
                               t("mixed")],
                },
                caption=t("Colour: how the prediction moves as the feature grows; grey: a categorical feature."),
            ),
            Chart(
                name="attribution_maps",
                title=t("Attribution map of one example"),
                kind="heatmap",
                data={
                    "panels": [
                        {"title": t("Input"), "scale": "grey",
                         "values": [[round(math.cos(r * 0.9) * math.sin(c * 0.7), 4) for c in range(6)]
                                    for r in range(4)]},
                        {"title": t("Attribution"), "scale": "signed",
                         "values": [[None if (r, c) == (3, 5) else round(math.sin(r + c * 0.8) * (r - 1.5) / 10, 4)
                                     for c in range(6)] for r in range(4)]},
                    ],
                    "x_label": t("Time step"),
                    "y_label": t("Sensor"),
                    "x_ticks": [t(f"t{c}") for c in range(6)],
                    "y_ticks": [t(f"sensor {r}") for r in range(4)],
                },
                caption=t("Orange raises the prediction, blue lowers it; grey cells were not attributed."),
            ),
        ],
    )


def _tampered_audit() -> dict[str, Any]:
    """An audit edited by hand in report.json: status and severity are not valid values."""
    return {
        "audit": "tampered",
        "title": _hostile("Tampered"),
        "status": _hostile("pass"),
        "summary": _hostile("Edited by hand."),
        "metrics": {_hostile("m"): {"value": 1, "headline": True}},
        "findings": [{"severity": _hostile("warning"), "code": _hostile("x"), "message": _hostile("y")}],
        "tables": [{"name": "t", "title": _hostile("Ragged"), "columns": [_hostile("a")], "rows": [[1, 2], [_hostile("c")]]}],
        "charts": [{"name": "c", "title": _hostile("Unknown kind"), "kind": _hostile("pie"), "data": {}}],
        "notes": [],
        "options": {},
    }


def _gate(t: Text, name: str, kind: str, passed: bool, message: str, **fields: Any) -> dict[str, Any]:
    """One gate result as auditor.ci.gates writes it."""
    result = {
        "name": t(name), "kind": kind, "passed": passed, "message": t(message), "path": None,
        "audit": None, "metric": None, "field": None, "rule": None, "value": None, "threshold": None,
        "baseline": None, "delta": None, "tolerance": None, "noise": None, "noisy": False,
    }
    return {**result, **fields}


def _gates(t: Text) -> dict[str, Any]:
    """What ``--policy audit.toml --baseline main.json`` adds: a passing and a failing
    threshold, a regression within its noise and one beyond it, and the findings rule."""
    return {
        "policy": t("audit.toml"),
        "baseline": t("reports/main/report.json"),
        "fail_on": "error",
        "passed": False,
        "results": [
            _gate(t, "metrics.accuracy >= 0.8", "threshold", True, "Accuracy is 0.853, at least 0.8.",
                  path="metrics.accuracy", audit="metrics", metric="accuracy", field="value", rule=">= 0.8",
                  value=0.85312, threshold=0.8),
            _gate(t, "metrics.recall >= 0.7", "threshold", False, "Recall (>50K) is 0.617, below 0.7.",
                  path="metrics.recall", audit="metrics", metric="recall", field="value", rule=">= 0.7",
                  value=0.61703, threshold=0.7),
            _gate(t, "metrics.roc_auc vs baseline (max_drop 0.01)", "regression", True,
                  "ROC AUC is 0.901 against 0.903 on the baseline, a drop of 0.002 (at most 0.01 allowed); "
                  "the intervals overlap: within noise",
                  path="metrics.roc_auc", audit="metrics", metric="roc_auc", field="value", rule="max_drop 0.01",
                  value=0.90118, threshold=0.89311, baseline=0.90311, delta=-0.00193, tolerance=0.01,
                  noise="within noise"),
            _gate(t, "metrics.f1 vs baseline (max_drop 0.01)", "regression", False,
                  "F1 (>50K) is 0.673 against 0.701 on the baseline, a drop of 0.028 (at most 0.01 allowed); "
                  "the intervals do not overlap: beyond noise",
                  path="metrics.f1", audit="metrics", metric="f1", field="value", rule="max_drop 0.01",
                  value=0.67305, threshold=0.69112, baseline=0.70112, delta=-0.02807, tolerance=0.01,
                  noise="beyond noise"),
            _gate(t, "no error findings", "findings", False,
                  "1 error finding: Permutation importance (audit-error).", field="findings",
                  rule="fail_on error", value=1),
        ],
    }


def _report(t: Text) -> dict[str, Any]:
    features = ["age", "workclass", "education_num", "hours_per_week", "capital_gain"]
    classes = ["<=50K", ">50K"]
    audits = {
        "metrics": _metrics_audit(t),
        "fairness": AuditResult.skipped("fairness", t("Fairness"), t("needs sensitive columns (--sensitive)")),
        "explain": AuditResult.errored(
            "explain",
            t("Permutation importance"),
            t("RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x17 and 16x64)\n"
              "  at forward (model.py:12)"),
        ),
        "income_regression": _regression_audit(t),
    }
    return {
        "schema_version": "1.0",
        "tool": {"name": "auditor", "version": "0.1.0"},
        "verdict": "warn",
        "model": {
            "path": t("models/income.pt"),
            "name": t("income"),
            "format": "torchscript",
            "sha256": "9f2c4e8a1b7d3f6e0c5a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f",
            "size_bytes": 48213,
            "parameters": 5313,
            "trainable_parameters": 5313,
            "layers": [
                {"name": t("net.0"), "type": "Linear", "parameters": 1088, "output_shape": "[64]"},
                {"name": t("net.1"), "type": "ReLU", "parameters": 0, "output_shape": "[64]"},
                {"name": t("net.2"), "type": "Linear", "parameters": 4160, "output_shape": "[64]"},
                {"name": t("net.3"), "type": "ReLU", "parameters": 0, "output_shape": "[64]"},
                {"name": t("net.4"), "type": "Linear", "parameters": 65, "output_shape": "[1]"},
            ],
            "trust": "TorchScript archive: contains code, loaded with torch.jit.load (no arbitrary Python).",
            "metadata": {
                "feature_names": [t(f) for f in features],
                "class_names": [t(c) for c in classes],
                "intended_use": t("Research on income prediction; not for credit decisions."),
            },
        },
        "data": {
            "path": t("data/adult_test.csv"),
            "sha256": "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
            "size_bytes": 1982331,
            "rows": 15060,
            "columns": 6,
            "features": [t(f) for f in features],
            "target": t("income"),
            "task": "binary",
            "output": "logits",
            "class_names": [t(c) for c in classes],
            "class_balance": [
                {"class": t("<=50K"), "count": 11360, "share": 0.75432},
                {"class": t(">50K"), "count": 3700, "share": 0.24568},
            ],
        },
        "audits": {name: result.to_dict() for name, result in audits.items()},
        "gates": _gates(t),
        "run": {
            "command": t("audit models/income.pt --data data/adult_test.csv --target income"),
            "started": "2026-11-22T17:00:00+00:00",
            "seed": 0,
            "device": "cpu",
            "forward_passes": 1,
            "versions": {"auditor": "0.1.0", "python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"},
            "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
            "timings": {
                "load_model": 0.112,
                "load_data": 0.204,
                "inference": 0.318,
                "audits": {"metrics": 0.853, "fairness": 0.0, "explain": 0.021, "income_regression": 0.047},
                "total": 1.61,
            },
        },
    }


def _card(t: Text) -> dict[str, Any]:
    """A model card as report.json holds it (auditor.compliance.card.card_section), two required fields empty."""
    def field(key: str, label: str, value: Any, required: bool = False) -> dict[str, Any]:
        return {"key": key, "label": t(label), "value": value, "required": required}

    return {
        "source": t("model-card.toml"),
        "sha256": "5b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
        "format": "toml",
        "sections": [
            {"key": "model", "title": t("Model"), "fields": [
                field("name", "Name", t("Income classifier"), True),
                field("version", "Version", t("2.1.0"), True),
                field("license", "Licence", t("CC BY 4.0")),
            ]},
            {"key": "intended_use", "title": t("Intended use"), "fields": [
                field("primary_uses", "Primary uses", [t("Teaching fairness auditing"), t("Research")], True),
                field("out_of_scope", "Out-of-scope uses", None, True),
            ]},
            {"key": "training_data", "title": t("Training data"), "fields": [
                field("description", "Description", t("UCI Adult, 1994 census extract"), True),
                field("legal_basis", "Consent or legal basis", None, True),
            ]},
            {"key": "review", "title": t("Review"), "fields": [
                field("board", "Board", t("Research Ethics Committee"), True),
                field("reviewers", "Reviewers", [t("Dr A. Reviewer"), t("Prof B. Chair")]),
                field("approval_number", "Approval number", t("REC-2026-117")),
            ]},
        ],
        "gaps": [
            {"section": "intended_use", "field": "out_of_scope", "label": t("Out-of-scope uses")},
            {"section": "training_data", "field": "legal_basis", "label": t("Consent or legal basis")},
        ],
    }


def compliance_report() -> dict[str, Any]:
    """The sample report with a model card (``--card``), as a review board gets it."""
    report = _report(_identity)
    report["card"] = _card(_identity)
    report["run"]["plugins"] = {"metrics": "auditor 0.1.0", "income_regression": "income-audits 1.2"}
    return report


def hostile_compliance_report() -> dict[str, Any]:
    """The compliance report with :data:`PAYLOAD` in every data-derived string, card included."""
    report = hostile_report()
    report["card"] = _card(_hostile)
    return report


def odd_report() -> dict[str, Any]:
    """A report.json edited by hand or written by an older tool: optional sections missing,
    and values of the wrong type wherever a renderer looks."""
    return {
        "schema_version": "1.0",
        "verdict": None,
        "model": "not an object",
        "audits": {
            "odd": {
                "status": ["not", "a", "status"],
                "metrics": {"m": {"value": "high", "ci": 5, "ci_method": 3}, "n": "not a metric"},
                "findings": ["not a finding", {"severity": None}],
                "tables": [{"rows": "x"}, {"columns": ["a"], "rows": [1, [2, 3]]}, "not a table"],
                "charts": [{"kind": None}, {"kind": "curve", "data": {"series": [{"x": [1], "y": ["a"]}]}}],
                "notes": "not a list",
                "options": ["not", "a", "dict"],
            },
            "not an audit": 42,
        },
        "gates": {"policy": 7, "results": ["not a result", {"passed": "yes", "noise": "big"}, {"name": None}]},
        "run": {"timings": {"total": "slow", "audits": {"odd": None}}, "versions": [1]},
    }


def sample_report() -> dict[str, Any]:
    """A realistic report document with fixed values."""
    return _report(_identity)


def hostile_report() -> dict[str, Any]:
    """The sample report with :data:`PAYLOAD` in every data-derived string, plus a tampered
    audit under a hostile name."""
    report = _report(_hostile)
    report["audits"][_hostile("tampered")] = _tampered_audit()
    report["gates"]["results"].append(
        {"name": _hostile("tampered gate"), "kind": _hostile("kind"), "passed": "yes",
         "message": _hostile("passed is not a boolean"), "noise": 0.01}
    )
    return report


GOLDEN_DIR = Path(__file__).parent / "golden"


def assert_matches_golden(name: str, text: str) -> None:
    """``text`` equals tests/golden/``name``; with AUDITOR_UPDATE_GOLDEN=1 it replaces it."""
    path = GOLDEN_DIR / name
    if os.environ.get("AUDITOR_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"{path} is missing: run the tests with AUDITOR_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"the output differs from {path}; if the change is intended, rerun with AUDITOR_UPDATE_GOLDEN=1 "
        "and review the diff"
    )
