"""Sensitive columns: named on the command line, in config or by the model; never fed to it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from cli_helpers import assert_clean_input_error, invoke, read_report

from auditor.loading.groups import groups_from_column


@pytest.fixture
def with_groups(tmp_path, breast_cancer):
    """The breast-cancer test set plus two text columns the model must never see."""
    frame = breast_cancer.frame.copy()
    rng = np.random.default_rng(0)
    frame["site"] = rng.choice(["north", "south", "east"], size=len(frame))
    frame["sex"] = rng.choice(["F", "M"], size=len(frame))
    path = tmp_path / "with_groups.csv"
    frame.to_csv(path, index=False)
    return breast_cancer.folder / "model.pt", path


@pytest.mark.parametrize("args", [
    ("--sensitive", "site", "--sensitive", "sex"),
    ("--sensitive", "site,sex"),
])
def test_sensitive_columns_are_named_on_the_command_line_and_not_fed_to_the_model(tmp_path, with_groups, args):
    model, data = with_groups
    out = tmp_path / "out"
    result = invoke(model, "--data", data, "--out", out, "-q", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    report = read_report(out)
    assert [s["column"] for s in report["data"]["sensitive"]] == ["site", "sex"]
    assert len(report["data"]["features"]) == 30
    assert {"site", "sex"}.isdisjoint(report["data"]["features"])


def test_sensitive_columns_from_pyproject(tmp_path, with_groups, monkeypatch):
    model, data = with_groups
    (tmp_path / "pyproject.toml").write_text('[tool.auditor]\nsensitive = ["sex", "site"]\nformat = "json"\n')
    monkeypatch.chdir(tmp_path)
    result = invoke(model, "--data", data, "-q")
    assert result.exit_code in (0, 1), result.stderr
    assert [s["column"] for s in read_report(tmp_path / "reports" / "model")["data"]["sensitive"]] == ["sex", "site"]


def test_a_missing_sensitive_column_is_an_input_error(tmp_path, with_groups):
    model, data = with_groups
    result = invoke(model, "--data", data, "--sensitive", "gender", "-q", "--out", tmp_path / "out")
    assert_clean_input_error(result, "'gender'", "--sensitive")
    assert not (tmp_path / "out").exists()


def test_the_demo_models_declared_sensitive_columns_are_used_by_default(tmp_path):
    result = invoke("demo", "-q", "--format", "json", "--out", tmp_path)
    report = read_report(tmp_path)
    sensitive = report["data"]["sensitive"]
    assert [(s["column"], s["groups"], s["fed_to_model"]) for s in sensitive] == [("sex", 2, False), ("race", 5, False)]
    # The demo model is unfair across sex; showing that is the demo's job, so it exits 0.
    assert report["audits"]["fairness"]["status"] == "fail"
    assert result.exit_code == 0, result.stderr


def column(values, kind=None):
    return pa.chunked_array([pa.array(values, type=kind)])


def test_text_groups_are_sorted_and_missing_values_form_their_own_group():
    groups = groups_from_column("race", column(["White", "Black", None, "White"]), fed_to_model=False)
    assert groups.labels == ("Black", "White", "(missing)")
    assert groups.codes.tolist() == [1, 0, 2, 1]
    assert groups.counts.tolist() == [1, 2, 1]


def test_numeric_columns_with_few_values_keep_one_group_per_value():
    groups = groups_from_column("flag", column([10, 2, 10, 2, 1]), fed_to_model=True)
    assert groups.labels == ("1", "2", "10")
    assert groups.codes.tolist() == [2, 1, 2, 1, 0]
    assert groups.binned is None and groups.fed_to_model


def test_numeric_columns_with_many_values_are_cut_at_their_quartiles():
    ages = np.arange(20, 100, dtype=np.float64)
    groups = groups_from_column("age", column(ages), fed_to_model=False)
    assert groups.binned == "quartiles"
    edges = np.quantile(ages, [0.25, 0.5, 0.75])
    expected = np.searchsorted(edges, ages, side="right")
    assert groups.codes.tolist() == expected.tolist()
    assert groups.labels[0].startswith("[20, ") and groups.labels[-1].endswith(", 99]")
    assert groups.counts.tolist() == np.bincount(expected).tolist()
