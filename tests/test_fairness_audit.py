"""The built-in "fairness" audit: findings that fire when (and only when) they should,
stable metric keys, tables and charts a report can show, and a result that is plain,
deterministic, JSON-safe data that passes the plugin conformance check.

The contexts are built from arrays with ``auditor.testing.make_context``, without a model
(the audit reads predictions only; ``check_audit`` fails it if it tries to run one).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from auditor.contract.context import AuditContext, Groups, Task
from auditor.contract.result import AuditResult
from auditor.testing import check_audit, make_context
from auditor_plugins.fairness.audit import FairnessAudit

AUDIT = FairnessAudit()
DEFAULTS = FairnessAudit.defaults()
BINARY = Task(kind="binary", class_names=("denied", "approved"), output="probabilities", n_outputs=2)


def context(y, label, sensitive, task=BINARY, seed=0, value=None) -> AuditContext:
    """A context with predictions and sensitive groups, built from arrays by make_context;
    without a model (check_audit fails an audit that tries to run one)."""
    if task.kind == "regression":
        return make_context(y=y, values=value, groups=sensitive, seed=seed)
    proba = np.eye(len(task.class_names))[label] * 0.8 + 0.2 / len(task.class_names)
    return make_context(y=y, proba=proba, labels=label, groups=sensitive, class_names=task.class_names,
                        task=task.kind, seed=seed)


def exact_rows(n: int, selected: float, positives: float, tpr: float, fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows with exactly these shares of positives, and of each class predicted 1."""
    n_pos = round(n * positives)
    y = np.r_[np.ones(n_pos, np.int64), np.zeros(n - n_pos, np.int64)]
    pred = np.r_[np.arange(n_pos) < round(n_pos * tpr), np.arange(n - n_pos) < round((n - n_pos) * fpr)]
    assert abs(pred.mean() - selected) < 1e-9
    return y, pred.astype(np.int64)


def two_groups(a: tuple[int, float, float], b: tuple[int, float, float], **groups_options) -> AuditContext:
    """Groups A and B: (rows, TPR, FPR) each, half of the rows positive."""
    parts = [exact_rows(n, (tpr + fpr) / 2, 0.5, tpr, fpr) for n, tpr, fpr in (a, b)]
    y = np.concatenate([p[0] for p in parts])
    label = np.concatenate([p[1] for p in parts])
    codes = np.repeat([0, 1], [a[0], b[0]])
    return context(y, label, {"group": Groups("group", codes, ("A", "B"), **groups_options)})


def codes_of(result: AuditResult) -> list[str]:
    return [f.code for f in result.findings]


def test_a_predictor_selecting_60_against_20_percent_fails_the_four_fifths_rule() -> None:
    ctx = two_groups((20_000, 0.8, 0.4), (20_000, 0.3, 0.1))
    result = AUDIT.run(ctx, DEFAULTS)
    assert result.status == "fail"
    finding = next(f for f in result.findings if f.code == "four-fifths-rule")
    assert finding.severity == "error"
    assert "60.0% for group=B" not in finding.message and "20.0% for group=B" in finding.message
    assert result.metrics["group.demographic_parity_ratio"].value == pytest.approx(0.2 / 0.6)
    assert result.metrics["group.demographic_parity_ratio"].ci[1] < 0.8
    eo = next(f for f in result.findings if f.code == "equalized-odds-difference")
    assert eo.severity == "error" and "true positive rate" in eo.message


def test_a_fair_predictor_passes_with_no_finding() -> None:
    result = AUDIT.run(two_groups((20_000, 0.7, 0.2), (20_000, 0.7, 0.2)), DEFAULTS)
    assert result.status == "pass"
    assert result.findings == []
    assert result.metrics["demographic_parity_ratio"].value == 1.0
    assert result.metrics["equalized_odds_difference"].value == 0.0


def test_an_estimate_below_the_rule_with_an_interval_reaching_it_only_warns() -> None:
    """100 rows a group: a ratio of 0.76 whose interval reaches 0.8 cannot settle the rule."""
    ctx = two_groups((100, 0.62, 0.38), (100, 0.5, 0.26))
    result = AUDIT.run(ctx, DEFAULTS)
    metric = result.metrics["group.demographic_parity_ratio"]
    assert metric.value == pytest.approx(0.38 / 0.5) and metric.ci[1] >= 0.8
    severities = {f.code: f.severity for f in result.findings}
    assert severities["four-fifths-rule"] == "warning"
    assert severities["equalized-odds-difference"] == "warning"
    assert result.status == "warn"


@pytest.mark.parametrize("option, value, fires", [("four_fifths", 0.5, False), ("four_fifths", 0.9, True)])
def test_the_four_fifths_threshold_is_an_option(option, value, fires) -> None:
    ctx = two_groups((20_000, 0.7, 0.3), (20_000, 0.6, 0.2))  # ratio 0.8 exactly: not below
    result = AUDIT.run(ctx, {**DEFAULTS, option: value, "max_eo_difference": 0.5})
    assert ("four-fifths-rule" in codes_of(result)) is fires


@pytest.fixture(scope="module")
def binary_ctx() -> AuditContext:
    """Two sensitive columns with a 12-row group, one fed to the model and one binned."""
    rng = np.random.default_rng(0)
    n = 6000
    sex = rng.integers(0, 2, n)
    race = rng.choice(3, n, p=[0.6, 0.398, 0.002])
    y = (rng.random(n) < 0.4).astype(np.int64)
    label = (rng.random(n) < 0.2 + 0.15 * race + 0.4 * y).astype(np.int64)
    return context(y, label, {
        "sex": Groups("sex", sex, ("Female", "Male"), fed_to_model=True),
        "race group": Groups("race group", race, ("White", "Black", "Other"), binned="quartiles"),
    })


@pytest.fixture(scope="module")
def binary_result(binary_ctx) -> AuditResult:
    return AUDIT.run(binary_ctx, DEFAULTS)


def test_metric_keys_are_stable_dotted_paths(binary_result) -> None:
    columns = ["sex", "race_group", "sex*race_group"]
    disparities = ["demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                   "equalized_odds_ratio", "equal_opportunity_difference"]
    expected = [f"{c}.{d}" for c in columns for d in disparities]
    expected += ["demographic_parity_ratio", "equalized_odds_difference"]
    assert list(binary_result.metrics) == expected
    assert [k for k, m in binary_result.metrics.items() if m.headline] == expected[-2:]
    assert binary_result.metrics["race_group.demographic_parity_ratio"].label == \
        "Demographic parity ratio (race group)"
    assert binary_result.metrics["sex*race_group.equalized_odds_difference"].label == \
        "Equalized odds difference (sex × race group)"


def test_metrics_have_directions_intervals_and_methods(binary_result) -> None:
    for key, metric in binary_result.metrics.items():
        assert metric.direction == ("higher" if key.endswith("_ratio") else "lower")
        assert metric.ci is not None and metric.ci[0] <= metric.ci[1]
        assert "exact stratified bootstrap" in metric.ci_method


def test_headlines_are_the_worst_over_columns(binary_result) -> None:
    m = binary_result.metrics
    columns = ["sex", "race_group", "sex*race_group"]
    assert m["demographic_parity_ratio"].value == min(m[f"{c}.demographic_parity_ratio"].value for c in columns)
    assert m["equalized_odds_difference"].value == max(m[f"{c}.equalized_odds_difference"].value for c in columns)


def test_small_groups_are_listed_and_kept_in_the_tables(binary_result, binary_ctx) -> None:
    small = next(f for f in binary_result.findings if f.code == "small-groups")
    n_other = int((binary_ctx.sensitive["race group"].codes == 2).sum())
    assert small.severity == "info" and f"Other (n={n_other})" in small.message
    table = next(t for t in binary_result.tables if t.name == "groups_race_group")
    row = next(r for r in table.rows if r[0] == "Other")
    assert row[table.columns.index("note")] == "too small to judge (n < 30)"
    assert row[table.columns.index("count")] == n_other
    assert any("left out of every disparity" in note for note in binary_result.notes)
    disparities = next(t for t in binary_result.tables if t.name == "disparities")
    for r in disparities.rows:
        assert "Other" not in (r[-1] or "") and "Other" not in (r[-2] or "")


def test_a_rate_computed_from_few_rows_is_left_out_and_said_so() -> None:
    """Group B has 400 rows but only 10 approved: its TPR (0 or 1 by chance) is left out."""
    y = np.r_[np.tile([0, 1], 200), np.ones(10, np.int64), np.zeros(390, np.int64)]
    label = np.r_[np.tile([0, 1], 200), np.zeros(10, np.int64), np.zeros(390, np.int64)]
    ctx = context(y, label, {"group": Groups("group", np.repeat([0, 1], 400), ("A", "B"))})
    result = AUDIT.run(ctx, DEFAULTS)
    table = result.tables[0]
    assert table.rows[1][table.columns.index("TPR")] == 0.0
    assert table.rows[1][-1] == "TPR left out (10 'approved' rows < 30)"
    assert result.metrics["group.equal_opportunity_difference"].value is None
    assert "TPR of B (10 'approved' rows)" in next(f.message for f in result.findings if f.code == "small-groups")
    assert result.charts[1].data["labels"] == ["A", "B (10 'approved' rows)"]


def test_columns_fed_to_the_model_and_binned_columns_are_noted(binary_result) -> None:
    messages = {f.code: f.message for f in binary_result.findings}
    assert "'sex'" in messages["sensitive-feature-used"]
    assert "quartiles" in messages["sensitive-column-binned"]
    assert {f.severity for f in binary_result.findings if f.code.startswith("sensitive-")} == {"info"}


def test_tables_and_charts(binary_result) -> None:
    names = [t.name for t in binary_result.tables]
    assert names == ["groups_sex", "groups_race_group", "groups_sex*race_group", "disparities"]
    table = binary_result.tables[0]
    assert table.columns == ["group", "count", "share", "base rate", "selection rate", "selection rate 95% CI",
                             "TPR", "FPR", "FNR", "precision", "accuracy", "note"]
    assert [r[0] for r in table.rows] == ["Female", "Male"]
    low, high = table.rows[0][5]
    assert low <= table.rows[0][4] <= high
    assert len(binary_result.charts) == 9  # 3 per column, the intersection (6 groups) included
    chart = binary_result.charts[0]
    assert chart.kind == "bar" and chart.name == "selection_rate_sex"
    assert len(chart.data["labels"]) == len(chart.data["values"]) == len(chart.data["errors"])
    for value, (low, high) in zip(chart.data["values"], chart.data["errors"]):
        assert low <= value <= high


def test_the_plain_language_paragraph_uses_the_class_names(binary_result) -> None:
    paragraph = binary_result.notes[0]
    assert paragraph.startswith("By sex: ")
    assert "predicted 'approved'" in paragraph and "four-fifths rule" in paragraph
    assert "sex=Female × race group=White" in paragraph or "By sex × race group" in paragraph


def test_the_result_round_trips_through_json(binary_result) -> None:
    text = json.dumps(binary_result.to_dict(), allow_nan=False)
    assert AuditResult.from_dict(json.loads(text)).to_dict() == binary_result.to_dict()


def test_binary_passes_the_conformance_check(binary_ctx) -> None:
    check_audit(AUDIT, binary_ctx)


def test_runs_are_deterministic_under_a_seed_and_vary_with_it(binary_ctx) -> None:
    first = AUDIT.run(binary_ctx, DEFAULTS).to_dict()
    assert AUDIT.run(binary_ctx, DEFAULTS).to_dict() == first
    other = AUDIT.run(context(binary_ctx.data.y, binary_ctx.predictions.label, binary_ctx.sensitive, seed=7),
                      DEFAULTS).to_dict()
    assert other["metrics"]["sex.demographic_parity_ratio"]["value"] == \
        first["metrics"]["sex.demographic_parity_ratio"]["value"]
    assert other["metrics"]["sex.demographic_parity_ratio"]["ci"] != \
        first["metrics"]["sex.demographic_parity_ratio"]["ci"]


def test_without_intersections_only_the_columns_are_audited(binary_ctx) -> None:
    result = AUDIT.run(binary_ctx, {**DEFAULTS, "intersections": False})
    assert not any(k.startswith("sex*") for k in result.metrics)
    assert len(result.tables) == 3


def test_an_intersection_of_many_groups_gets_tables_but_no_charts() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    a, b = rng.integers(0, 5, n), rng.integers(0, 5, n)  # 25 groups
    y = rng.integers(0, 2, n)
    ctx = context(y, y, {"a": Groups("a", a, tuple("vwxyz")), "b": Groups("b", b, tuple("VWXYZ"))})
    result = AUDIT.run(ctx, DEFAULTS)
    assert len(result.charts) == 6
    assert any(t.name == "groups_a*b" and len(t.rows) == 25 for t in result.tables)


def test_key_names_are_sanitised_but_labels_are_not() -> None:
    ctx = two_groups((200, 0.5, 0.5), (200, 0.5, 0.5))
    ctx.sensitive = {"age.band x": Groups("age.band x", ctx.sensitive["group"].codes, ("A", "B"))}
    result = AUDIT.run(ctx, DEFAULTS)
    assert "age_band_x.demographic_parity_ratio" in result.metrics
    assert result.metrics["age_band_x.demographic_parity_ratio"].label == "Demographic parity ratio (age.band x)"
    assert result.tables[0].title == "By group: age.band x"


def test_fewer_than_two_large_groups_give_no_disparity_and_say_why() -> None:
    result = AUDIT.run(two_groups((20, 0.5, 0.5), (24, 0.5, 0.5)), DEFAULTS)
    assert result.metrics["group.demographic_parity_ratio"].value is None
    assert result.metrics["demographic_parity_ratio"].value is None
    assert "too-few-groups" in codes_of(result)
    assert "fewer than two groups have at least 30 rows" in result.notes[0]
    assert result.status == "not assessed"  # never "pass": nothing could be judged (issue 17)
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.fixture(scope="module")
def multiclass_ctx() -> AuditContext:
    rng = np.random.default_rng(2)
    n = 3000
    region = rng.integers(0, 3, n)
    y = rng.integers(0, 3, n)
    label = np.where(rng.random(n) < 0.55 + 0.15 * region, y, rng.integers(0, 3, n))
    task = Task(kind="multiclass", class_names=("low", "mid", "high"), output="logits", n_outputs=3)
    return context(y, label, {"region": Groups("region", region, ("north", "centre", "south"))}, task=task)


def test_multiclass_headlines_are_the_worst_over_classes(multiclass_ctx) -> None:
    result = check_audit(AUDIT, multiclass_ctx)
    table = next(t for t in result.tables if t.name == "disparities")
    assert table.columns == ["column", "metric", "class", "value", "95% CI", "rate", "lowest group",
                             "highest group"]
    for name in ("demographic_parity_difference", "equalized_odds_difference", "demographic_parity_ratio"):
        per_class = [r[3] for r in table.rows if r[1] == name and not r[2].startswith("worst")]
        worst = min(per_class) if name.endswith("ratio") else max(per_class)
        assert len(per_class) == 3
        assert result.metrics[f"region.{name}"].value == worst
    assert any("worst over classes" in note for note in result.notes)
    groups = next(t for t in result.tables if t.name == "groups_region")
    assert len(groups.rows) == 9 and groups.columns[1] == "class"
    assert result.charts[0].title.startswith("Selection rate of '")


@pytest.fixture(scope="module")
def regression_ctx() -> AuditContext:
    rng = np.random.default_rng(3)
    n = 2000
    sex = rng.integers(0, 2, n)
    y = rng.normal(100, 20, n)
    value = y + rng.normal(0, 5 + 5 * sex, n)
    task = Task(kind="regression", class_names=(), output="values", n_outputs=1)
    return context(y, None, {"sex": Groups("sex", sex, ("F", "M"))}, task=task, value=value)


@pytest.mark.parametrize("max_rows, method", [(100_000, "row bootstrap"), (100, "normal approximation")])
def test_regression_reports_error_gaps_with_the_stated_method(regression_ctx, max_rows, method) -> None:
    result = check_audit(AUDIT, regression_ctx, {"bootstrap_max_rows": max_rows})
    assert list(result.metrics) == ["sex.mae_difference", "sex.mae_ratio", "sex.mean_prediction_difference",
                                    "mae_ratio", "mae_difference"]
    ratio = result.metrics["sex.mae_ratio"]
    assert 0.4 < ratio.value < 0.6 and ratio.ci[0] <= ratio.value <= ratio.ci[1]
    assert method in ratio.ci_method
    assert result.status == "pass"
    assert [c.name for c in result.charts] == ["mae_sex", "mean_prediction_sex"]
    assert "mean absolute error ranges from" in result.notes[0]


def test_the_audit_declares_its_needs_and_options() -> None:
    assert AUDIT.needs == ("target", "sensitive")
    assert set(DEFAULTS) == {"min_group_size", "n_resamples", "confidence", "four_fifths", "max_eo_difference",
                             "bootstrap_max_rows", "intersections", "max_groups"}
    assert DEFAULTS["min_group_size"] == 30 and DEFAULTS["intersections"] is True
    assert DEFAULTS["max_groups"] == 1000


def test_without_sensitive_columns_the_audit_is_skipped_with_the_reason(binary_ctx) -> None:
    """The runner never calls it so; a direct call (as check_audit's) gets the runner's answer."""
    ctx = context(binary_ctx.data.y, binary_ctx.predictions.label, {})
    result = check_audit(AUDIT, ctx)
    assert result.status == "skipped" and result.summary == "Needs sensitive columns (--sensitive)."
