"""auditor reproduces published COMPAS figures when fed ProPublica's data and COMPAS's rule.

Sources: ProPublica, "How We Analyzed the COMPAS Recidivism Algorithm" (2016), and
Dressel & Farid, "The accuracy, fairness, and limits of predicting recidivism", Science
Advances 4(1) eaao5580 (2018), Table 2 column D (COMPAS, 7,214 defendants): with 'high risk'
meaning decile score >= 5 and truth meaning two-year recidivism:

| group            | accuracy | false positive rate | false negative rate |
| all              | 65.4%    | 32.35%              | 37.40%              |
| African-American | 63.8%    | 44.85%              | 27.99%              |
| Caucasian        | 67.0%    | 23.45%              | 47.72%              |

and the other side of the dispute, calibration within groups: "about 60 percent of those
classified as higher risk went on to commit new crimes, a rate that was the same for both
black and white defendants" (ProPublica, "ProPublica Responds to Company's Critique of Machine
Bias Story", July 2016); the positive predictive values quoted from Northpointe's response,
0.63 for black and 0.59 for white defendants (Dieterich, Mendoza & Brennan, "COMPAS Risk
Scales: Demonstrating Accuracy Equity and Predictive Parity", 2016).
"""

from __future__ import annotations

import pytest
from cli_helpers import invoke, read_report


@pytest.fixture(scope="module")
def compas_report(compas, tmp_path_factory):
    out = tmp_path_factory.mktemp("compas_report")
    result = invoke(compas.folder / "rule.pt", "--data", compas.folder / "compas.csv", "--sensitive", "race",
                    "--sensitive", "sex", "--out", out, "-q")
    assert result.exit_code in (0, 1), result.stderr
    return read_report(out)


def test_overall_figures_match_the_published_table(compas_report):
    metrics = compas_report["audits"]["metrics"]["metrics"]
    assert compas_report["data"]["rows"] == 7214
    assert round(100 * metrics["accuracy"]["value"], 1) == 65.4
    cm = next(t for t in compas_report["audits"]["metrics"]["tables"] if t["name"] == "confusion_matrix")
    (tn, fp), (fn, tp) = (row[1:] for row in cm["rows"])
    assert round(100 * fp / (fp + tn), 2) == 32.35
    assert round(100 * fn / (fn + tp), 2) == 37.40


def group_rows(report: dict, column: str) -> dict[str, dict]:
    table = next(t for t in report["audits"]["fairness"]["tables"] if t["name"] == f"groups_{column}")
    return {row[0]: dict(zip(table["columns"], row)) for row in table["rows"]}


@pytest.mark.parametrize("group, accuracy, fpr, fnr", [
    ("African-American", 63.8, 44.85, 27.99),
    ("Caucasian", 67.0, 23.45, 47.72),
])
def test_per_race_figures_match_the_published_table(compas_report, group, accuracy, fpr, fnr):
    row = group_rows(compas_report, "race")[group]
    assert round(100 * row["accuracy"], 1) == accuracy
    assert round(100 * row["FPR"], 2) == fpr
    assert round(100 * row["FNR"], 2) == fnr


def test_groups_too_small_to_judge_are_reported_not_dropped(compas_report):
    rows = group_rows(compas_report, "race")
    assert rows["Native American"]["count"] == 18
    assert "too small to judge" in rows["Native American"]["note"]
    assert sum(row["count"] for row in rows.values()) == 7214


def test_disparities_equal_fairlearns_on_the_same_predictions(compas, compas_report):
    """fairlearn is the oracle: same data, same predictions, groups large enough to judge."""
    from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

    frame = compas.frame
    judged = frame[frame["race"].map(frame["race"].value_counts()) >= 30]
    y, pred = judged["two_year_recid"], (judged["decile_score"] >= 5).astype(int)
    metrics = compas_report["audits"]["fairness"]["metrics"]
    assert metrics["race.demographic_parity_difference"]["value"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=judged["race"]), abs=1e-12)
    assert metrics["race.demographic_parity_ratio"]["value"] == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=judged["race"]), abs=1e-12)


def test_calibration_by_race_is_the_published_predictive_parity_beside_the_error_rates(compas, compas_report):
    """The same report holds both sides: the calibration audit's table within race groups, by
    decile (the rule's probabilities take ten values: a risk scale), gives each decile's
    recidivism share per race (checked against pandas), and pooled over the deciles the rule
    calls higher risk, the published predictive values; while the fairness audit's false
    positive rates differ by more than 20 points (the table above)."""
    table = next(t for t in compas_report["audits"]["calibration"]["tables"] if t["name"] == "group_bins")
    frame = compas.frame
    for race in ("African-American", "Caucasian"):
        rows = [dict(zip(table["columns"], row)) for row in table["rows"] if row[:2] == ["race", race]]
        assert len(rows) == 10  # one per decile score
        by_decile = frame[frame["race"] == race].groupby("decile_score")["two_year_recid"]
        assert [row["Rows"] for row in rows] == by_decile.size().tolist()
        assert [row["Share of events"] for row in rows] == pytest.approx(by_decile.mean().tolist(), abs=1e-12)
        higher = [row for row in rows if row["Mean probability"] > 0.5]  # deciles 5 to 10
        assert len(higher) == 6
        ppv = sum(row["Rows"] * row["Share of events"] for row in higher) / sum(row["Rows"] for row in higher)
        assert round(ppv, 2) == {"African-American": 0.63, "Caucasian": 0.59}[race]
        assert abs(ppv - 0.60) < 0.035  # "about 60 percent ... the same for both"
    fpr = {race: group_rows(compas_report, "race")[race]["FPR"] for race in ("African-American", "Caucasian")}
    assert fpr["African-American"] - fpr["Caucasian"] > 0.2
