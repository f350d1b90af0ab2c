"""Past the memory budget: tallies of every row instead of every row's predictions.

When the outputs, labels and groups of every row exceed a quarter of the budget, the pass
keeps mergeable state (confusion counts per group, score bins, sums) and a seeded sample of
rows. The metrics and fairness audits read the tallies: their figures are the exact run's
(the same confusion-matrix bootstrap, the same stratified fairness bootstrap), but for
ROC-AUC and average precision, which are binned and must lie within their stated bounds of
the exact values, checked here against scikit-learn on real data. Every other audit runs on
the sample and says so. A later chunk that contradicts the task decided before the switch is
exit 2 naming its rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from auditor.loading.bundled import demo_files
from auditor.run.stream import FeatureKeeper, row_keys
from auditor.stats import binned
from tests.cli_helpers import assert_clean_input_error, invoke, read_report

COPIES = 8  # the demo's test set eight times over: 120,480 rows
BINNED_BUDGET = "6MiB"  # a quarter holds the compact columns of ~70,000 of them


@pytest.fixture(scope="module")
def real_scores() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, positive, score): breast cancer and one-vs-rest digits, from logistic regressions
    fitted on one half and scored on the other; and those scores rounded, for true ties."""
    X, y = load_breast_cancer(return_X_y=True)
    p = LogisticRegression(max_iter=5000).fit(X[::2], y[::2]).predict_proba(X[1::2])[:, 1]
    Xd, yd = load_digits(return_X_y=True)
    pd_ = LogisticRegression(max_iter=3000).fit(Xd[::2] / 16, yd[::2]).predict_proba(Xd[1::2] / 16)
    out = [("breast cancer", y[1::2] == 1, p), ("breast cancer, rounded", y[1::2] == 1, np.round(p, 2))]
    out += [(f"digit {c}", yd[1::2] == c, pd_[:, c]) for c in (3, 8, 9)]
    return out


@pytest.mark.parametrize("n_bins", [4, 16, 64, 1024, binned.BINS])
def test_the_exact_auc_and_average_precision_lie_within_the_stated_bounds(real_scores, n_bins):
    for name, positive, score in real_scores:
        bins = binned.ScoreBins.empty(n_bins)
        bins.add(positive, score)
        auc, ap = binned.auc(bins), binned.average_precision(bins)
        assert auc is not None and ap is not None
        exact_auc, exact_ap = roc_auc_score(positive, score), average_precision_score(positive, score)
        assert abs(exact_auc - auc.value) <= auc.bound + 1e-12, (name, n_bins)
        assert auc.lower - 1e-12 <= exact_auc <= auc.upper + 1e-12, (name, n_bins)
        assert ap.lower - 1e-12 <= exact_ap <= ap.upper + 1e-12, (name, n_bins)
        assert abs(exact_ap - ap.value) <= ap.bound + 1e-12, (name, n_bins)


def test_the_bounds_are_tight_enough_to_use_and_vanish_for_true_ties(real_scores):
    _, positive, score = real_scores[0]
    fine = binned.ScoreBins.empty()
    fine.add(positive, score)
    assert binned.auc(fine).bound < 1e-3 and binned.average_precision(fine).bound < 1e-3  # type: ignore[union-attr]
    # every bin holding one distinct score: the binned figures are the exact ones, bound 0
    _, positive, rounded = real_scores[1]
    tied = binned.ScoreBins.empty()
    tied.add(positive, rounded)
    auc, ap = binned.auc(tied), binned.average_precision(tied)
    assert auc is not None and ap is not None and auc.bound == 0 and ap.bound == 0
    assert auc.value == pytest.approx(roc_auc_score(positive, rounded), abs=1e-12)
    assert ap.value == pytest.approx(average_precision_score(positive, rounded), abs=1e-12)


def test_the_binned_auc_variance_is_delongs_for_the_binned_scores():
    """DeLong's variance from the bins equals the row formula on the scores rounded to their bins."""
    rng = np.random.default_rng(4)
    positive = rng.random(3000) < 0.3
    score = 1 / (1 + np.exp(-(rng.normal(size=3000) + positive)))
    bins = binned.ScoreBins.empty(32)
    bins.add(positive, score)
    rounded = binned.bin_of(score, 32).astype(float)
    pos, neg = rounded[positive], rounded[~positive]
    v10 = np.array([(np.sum(neg < s) + 0.5 * np.sum(neg == s)) / neg.size for s in pos])
    v01 = np.array([(np.sum(pos > s) + 0.5 * np.sum(pos == s)) / pos.size for s in neg])
    expected = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    value = binned.auc(bins)
    assert value is not None
    assert value.value == pytest.approx(roc_auc_score(positive, rounded), abs=1e-12)
    assert value.variance == pytest.approx(expected, rel=1e-9)


def test_the_worst_case_average_precision_sum_is_the_closed_form():
    from auditor.stats.binned import _rising_sum

    for a, c, p in ((0, 0, 5), (3, 10, 7), (12.0, 40.0, 1), (100, 1000, 250)):
        direct = sum((a + j) / (c + j) for j in range(1, p + 1))
        assert _rising_sum(np.array([a], float), np.array([c], float), np.array([p], float))[0] == pytest.approx(direct)


def test_score_bins_merge_to_the_same_state_however_the_rows_are_split(real_scores):
    _, positive, score = real_scores[2]
    whole = binned.ScoreBins.empty()
    whole.add(positive, score)
    for cuts in ([100, 100], [1, 2, 3, 500]):
        parts, start = [], 0
        for n in cuts + [positive.size - sum(cuts)]:
            part = binned.ScoreBins.empty()
            part.add(positive[start:start + n], score[start:start + n])
            parts.append(part)
            start += n
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        for field in ("pos", "neg", "low", "high"):
            assert np.array_equal(getattr(merged, field), getattr(whole, field)), field


def test_a_sample_cut_down_at_the_switch_is_still_the_rows_with_the_smallest_keys():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    expected = np.sort(np.argsort(row_keys(7, 0, 5000), kind="stable")[:100])
    for cuts, switch in (([5000], 0), ([300, 4700], 0), ([1000] * 5, 3), ([2500, 2500], 1)):
        keeper = FeatureKeeper(4, 600 * (4 * 4 + 16), seed=7)  # 600 rows fit: before the switch, a sample of 300
        start = 0
        for i, n in enumerate(cuts):
            keeper.add(X[start:start + n], start)
            start += n
            if i == switch:
                keeper.limit(100)
        kept, rows = keeper.result()
        assert rows is not None and np.array_equal(rows, expected), cuts
        assert np.array_equal(kept, X[expected]) and keeper.sample is not None and keeper.sample.shape[0] == 200


def test_a_numeric_sensitive_column_keeps_the_quartiles_of_the_rows_before_the_switch():
    import pyarrow as pa

    from auditor.run.tally import GroupCoder

    prefix = pa.chunked_array([pa.array([float(v) for v in range(1, 21)] + [None])])  # 20 values and a missing one
    coder = GroupCoder("age", prefix, fed_to_model=True)
    later = coder.codes(pa.chunked_array([pa.array([0.5, 10.0, 99.0])]))  # beyond the first rows' range
    labels, remap = coder.final()
    first = coder.codes(prefix)
    assert labels[-1] == "(missing)" and remap[first[-1]] == len(labels) - 1  # the first rows' missing value
    assert labels[0].startswith("[0.5, ") and labels[-2].endswith(", 99]")  # the range grew, the cuts did not
    assert list(remap[later]) == [0, 1, 3]


# --- end to end ---------------------------------------------------------------------------------

OPTIONS = ("--format", "json", "-q", "--fail-on", "never", "--skip", "carbon", "-o", "metrics.n_resamples=200",
           "-o", "explain.samples=100", "-o", "fairness.n_resamples=200")


@pytest.fixture(scope="module")
def many_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("binned")
    frame = pd.read_csv(demo_files().data)
    path = folder / "big.csv"
    pd.concat([frame] * COPIES, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def exact_and_binned(many_rows: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("runs")
    model = demo_files().model
    exact = invoke(model, "--data", many_rows, "--out", out / "exact", *OPTIONS)
    tallied = invoke(model, "--data", many_rows, "--out", out / "binned", "--memory-budget", BINNED_BUDGET, *OPTIONS)
    assert exact.exit_code == 0 and tallied.exit_code == 0, exact.stderr + tallied.stderr
    return read_report(out / "exact"), read_report(out / "binned")


def test_past_the_budget_the_run_says_it_kept_tallies_of_every_row_and_a_sample(exact_and_binned):
    exact, tallied = exact_and_binned
    assert "binned" not in exact["run"]["engine"]["data"]
    facts = tallied["run"]["engine"]["data"]["binned"]
    rows = 15060 * COPIES
    assert facts["rows"] == rows and 0 < facts["from_row"] < rows and 0 < facts["sample_rows"] < rows
    assert facts["cells"] == 10  # sex x race combinations that occur in UCI Adult's test set
    assert tallied["data"]["rows"] == rows and tallied["data"]["class_balance"] == exact["data"]["class_balance"]
    privacy = tallied["audits"]["privacy"]  # it reads the file itself, not the predictions: no sample to state
    assert f"of {rows:,} rows" in privacy["summary"] and "seeded sample" not in privacy["summary"]
    for name in ("explain", "crossval"):
        result = tallied["audits"][name]
        assert f"(On a seeded sample of {facts['sample_rows']:,} of the {rows:,} rows of the data.)" in result["summary"]
        assert result["notes"][0].startswith("Computed on a seeded sample"), name


def test_metrics_from_tallies_are_the_exact_figures_but_for_the_binned_ones_within_their_bounds(exact_and_binned):
    exact, tallied = (r["audits"]["metrics"] for r in exact_and_binned)
    assert tallied["tables"] == exact["tables"]  # per-class table and confusion matrix: every row, exact
    assert f"on {15060 * COPIES:,} rows" in tallied["summary"]
    for key, figure in exact["metrics"].items():
        got = tallied["metrics"][key]
        if key in ("roc_auc", "average_precision"):
            bound = tallied["metrics"][f"{key}_binning_bound"]["value"]
            assert 0 <= bound < 1e-3
            assert abs(got["value"] - figure["value"]) <= bound + 1e-12, key
            assert got["ci"][0] <= figure["value"] <= got["ci"][1]
            assert "widened" in got["ci_method"]
        elif key in ("log_loss", "brier"):  # sums in another order; the row path's CLT interval at this size
            assert got["value"] == pytest.approx(figure["value"], rel=1e-10)
            assert got["ci"] == pytest.approx(figure["ci"], rel=1e-8)
        else:
            assert got == figure, key  # the same numbers, the same bootstrap of the same confusion matrix
    assert any(note.startswith("Binned figures: ROC-AUC ±") for note in tallied["notes"])


def test_fairness_from_tallies_is_the_exact_run_s(exact_and_binned):
    exact, tallied = (r["audits"]["fairness"] for r in exact_and_binned)
    assert tallied["notes"][0].startswith(f"Computed over all {15060 * COPIES:,} rows from confusion counts per group")
    assert tallied["notes"][1:] == exact["notes"]
    for key in ("status", "summary", "metrics", "findings", "tables", "charts"):
        assert tallied[key] == exact[key], key


def test_tallies_do_not_depend_on_where_the_file_was_cut(many_rows, exact_and_binned, tmp_path):
    _, first = exact_and_binned
    other = invoke(demo_files().model, "--data", many_rows, "--out", tmp_path / "other", "--memory-budget", "5MiB",
                   *OPTIONS)
    assert other.exit_code == 0, other.stderr
    second = read_report(tmp_path / "other")
    one, two = first["run"]["engine"]["data"], second["run"]["engine"]["data"]
    assert one["chunks"] != two["chunks"] and one["binned"]["from_row"] != two["binned"]["from_row"]
    for name in ("metrics", "fairness"):
        a, b = first["audits"][name], second["audits"][name]
        assert a["tables"] == b["tables"], name
        for key, figure in a["metrics"].items():
            if key in ("log_loss", "brier"):  # float sums, added chunk by chunk: equal to rounding
                assert b["metrics"][key]["value"] == pytest.approx(figure["value"], rel=1e-12)
                assert b["metrics"][key]["ci"] == pytest.approx(figure["ci"], rel=1e-12)
            else:  # counts, score bins: the same integers, so the same figures and intervals
                assert b["metrics"][key] == figure, (name, key)


def test_a_file_that_ends_on_a_batch_boundary_is_counted_to_its_last_row(many_rows, exact_and_binned, tmp_path):
    rows = 15060 * COPIES  # 251 batches of 480: no partial batch at the end
    result = invoke(demo_files().model, "--data", many_rows, "--out", tmp_path / "out", "--memory-budget",
                    BINNED_BUDGET, "--batch-size", "480", "--audits", "metrics", *OPTIONS)
    assert result.exit_code == 0, result.stderr
    report = read_report(tmp_path / "out")
    assert report["run"]["engine"]["data"]["binned"]["rows"] == rows
    assert report["audits"]["metrics"]["tables"] == exact_and_binned[0]["audits"]["metrics"]["tables"]


def test_a_later_chunk_with_a_class_the_model_cannot_produce_is_exit_2_naming_its_rows(many_rows, tmp_path):
    frame = pd.read_csv(many_rows)
    frame.loc[len(frame) - 10, "income"] = "unknown"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = invoke(demo_files().model, "--data", bad, "--out", tmp_path / "out", "--memory-budget", BINNED_BUDGET,
                    *OPTIONS)
    assert_clean_input_error(result, "'unknown'")
    assert "In data rows" in result.stderr and "decided on the rows read before" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_later_chunk_with_a_missing_label_is_exit_2_naming_the_row(many_rows, tmp_path):
    frame = pd.read_csv(many_rows)
    frame.loc[len(frame) - 3, "income"] = None
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = invoke(demo_files().model, "--data", bad, "--out", tmp_path / "out", "--memory-budget", BINNED_BUDGET,
                    *OPTIONS)
    assert_clean_input_error(result, "missing value")
    assert f"{len(frame) - 2:,}" in result.stderr or f"{len(frame) - 2}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_training_data_past_the_budget_gives_the_overfitting_audit_every_row_s_figures(tmp_path):
    demo = demo_files()
    train = tmp_path / "train.csv"
    pd.concat([pd.read_csv(demo.train_data)] * 12, ignore_index=True).to_csv(train, index=False)  # 307,656 rows
    common = [demo.model, "--data", demo.data, "--train-data", train, "--audits", "overfitting,explain", *OPTIONS]
    exact = invoke(*common, "--out", tmp_path / "exact")
    tallied = invoke(*common, "--out", tmp_path / "binned", "--memory-budget", BINNED_BUDGET)
    assert exact.exit_code == 0 and tallied.exit_code == 0, exact.stderr + tallied.stderr
    one, two = read_report(tmp_path / "exact"), read_report(tmp_path / "binned")
    assert "binned" not in two["run"]["engine"]["data"]  # the test data fit; the training data did not
    assert two["run"]["engine"]["train_data"]["binned"]["rows"] == 25_638 * 12
    a, b = one["audits"]["overfitting"], two["audits"]["overfitting"]
    assert any(note.startswith("The training data's figures are computed over all 307,656 rows") for note in b["notes"])
    for key, figure in a["metrics"].items():
        got = b["metrics"][key]
        if "roc_auc" in key or "average_precision" in key:
            assert got["value"] == pytest.approx(figure["value"], abs=1e-3), key
        elif "log_loss" in key or "brier" in key:  # sums in another order; the same CLT interval
            assert got["value"] == pytest.approx(figure["value"], rel=1e-9, abs=1e-12), key
            assert (got["ci"] is None) == (figure["ci"] is None), key
        else:  # the confusion-matrix metrics and their gaps: the same counts, the same bootstrap
            assert got == figure, key
    # explain reads the test data only: no sample of the training data is claimed for it
    assert "training data" not in two["audits"]["explain"]["summary"]


# --- regression and multiclass -------------------------------------------------------------------

def _both(trained, copies: int, folder: Path, *options: str) -> tuple[dict, dict]:
    """The fixture's test set ``copies`` times over, audited whole and with tallies (1 MiB budget)."""
    data = folder / "many.csv"
    pd.concat([trained.frame] * copies, ignore_index=True).to_csv(data, index=False)
    common = [trained.folder / "model.pt", "--data", data, "--audits", "metrics", "--format", "json", "-q",
              "--fail-on", "never", "-o", "metrics.bootstrap_max_rows=0", *options]  # the row path's analytic intervals
    exact = invoke(*common, "--out", folder / "exact")
    tallied = invoke(*common, "--out", folder / "binned", "--memory-budget", "1MiB")
    assert exact.exit_code == 0 and tallied.exit_code == 0, exact.stderr + tallied.stderr
    one, two = read_report(folder / "exact"), read_report(folder / "binned")
    assert "binned" in two["run"]["engine"]["data"] and "binned" not in one["run"]["engine"]["data"]
    return one["audits"]["metrics"], two["audits"]["metrics"]


def test_regression_metrics_from_tallies_equal_the_row_path_s_analytic_ones(diabetes, tmp_path):
    exact, tallied = _both(diabetes, 300, tmp_path)  # 53,100 rows
    a, b = exact["metrics"], tallied["metrics"]
    for key in ("mae", "mse", "rmse", "r2", "max_error", "mape"):
        assert b[key]["value"] == pytest.approx(a[key]["value"], rel=1e-9), key
        if a[key].get("ci"):
            assert b[key]["ci"] == pytest.approx(a[key]["ci"], rel=1e-7), key
            assert b[key]["ci_method"] == a[key]["ci_method"], key
    assert b["median_absolute_error"]["value"] is None
    assert any(f["code"] == "metric-undefined" and "not computed: a median needs every row" in f["message"]
               for f in tallied["findings"])


def test_multiclass_metrics_from_tallies_are_exact_and_the_binned_macro_auc_within_its_bound(wine, tmp_path):
    exact, tallied = _both(wine, 400, tmp_path, "-o", "metrics.n_resamples=200")
    a, b = exact["metrics"], tallied["metrics"]
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "precision_weighted", "mcc"):
        assert b[key] == a[key], key
    for key in ("roc_auc", "average_precision"):
        bound = b[f"{key}_binning_bound"]["value"]
        assert abs(b[key]["value"] - a[key]["value"]) <= bound + 1e-12 and math.isfinite(bound), key
    assert b["log_loss"]["value"] == pytest.approx(a["log_loss"]["value"], rel=1e-10)
