"""``--transform pkg.module:function``: the user's own step between the data as read and the
model. Specified by what a user sees: the same figures as data already transformed, the
function's file in the report's code section, and one-line errors for a function that cannot
be imported, is not one, fails or returns something else than a tensor."""

from __future__ import annotations

import hashlib

import pytest
from cli_helpers import assert_clean_input_error, invoke, read_report

UNITS = '''
import torch

SCALE = 2

def doubled(x):
    return x * SCALE

def broken(x):
    raise ValueError("this transform is broken")

def as_list(x):
    return x.tolist()

def via_numpy(x):
    return torch.from_numpy(x.numpy() * SCALE)
'''


@pytest.fixture
def halved(breast_cancer, tmp_path):
    """The breast-cancer test set in other units (every feature halved), and a module that
    doubles a batch back: the model must see exactly the data it was trained on."""
    data = breast_cancer.frame.copy()
    data[breast_cancer.features] = data[breast_cancer.features] / 2
    data.to_csv(tmp_path / "halved.csv", index=False)
    (tmp_path / "units.py").write_text(UNITS)
    return tmp_path


def test_a_transform_gives_the_figures_of_the_data_it_makes(breast_cancer, halved):
    result = invoke(breast_cancer.folder / "model.pt", "--data", halved / "halved.csv", "--transform", "units:doubled",
                    "--model-path", halved, "--audits", "metrics,explain", "--out", halved / "t", "--format", "json",
                    "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--audits", "metrics,explain", "--out", halved / "plain", "--format", "json", "-q",
                    "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    transformed, plain = read_report(halved / "t"), read_report(halved / "plain")
    for key, metric in plain["audits"]["metrics"]["metrics"].items():
        assert transformed["audits"]["metrics"]["metrics"][key]["value"] == pytest.approx(metric["value"], abs=1e-9), key
    # attributions are over the data as read (halved units): the same ranking of features
    ranks = [next(t for t in r["audits"]["explain"]["tables"] if t["name"] == "importance")["rows"][:5]
             for r in (transformed, plain)]
    assert [row[1] for row in ranks[0]] == [row[1] for row in ranks[1]]
    code = [c for c in transformed["code"] if c["option"] == "--transform"]
    assert code == [{"option": "--transform", "spec": "units:doubled", "file": "units.py",
                     "sha256": hashlib.sha256((halved / "units.py").read_bytes()).hexdigest(),
                     "size_bytes": (halved / "units.py").stat().st_size}]
    assert transformed["model"]["sha256"] == plain["model"]["sha256"]


@pytest.mark.parametrize("spec, fragments", [
    ("units:broken", ["--transform 'units:broken' failed on a batch of shape", "ValueError: this transform is broken"]),
    ("units:as_list", ["--transform 'units:as_list' returned a list, not a tensor"]),
    ("units:SCALE", ["--transform 'units:SCALE' names a int, not a function"]),
    ("units:missing", ["has no attribute 'missing' (--transform)"]),
    ("units", ["--transform must look like"]),
])
def test_a_transform_that_cannot_be_used_is_one_line_and_writes_nothing(breast_cancer, halved, spec, fragments):
    result = invoke(breast_cancer.folder / "model.pt", "--data", halved / "halved.csv", "--transform", spec,
                    "--model-path", halved, "--out", halved / "never", "-q")
    assert_clean_input_error(result, *fragments)
    assert not (halved / "never").exists()


def test_a_config_file_cannot_name_a_transform_on_the_users_behalf(breast_cancer, halved, monkeypatch):
    (halved / "pyproject.toml").write_text('[tool.auditor]\ntransform = "units:doubled"\n')
    monkeypatch.chdir(halved)
    result = invoke(breast_cancer.folder / "model.pt", "--data", "halved.csv", "--model-path", ".", "--out", "never", "-q")
    assert_clean_input_error(result, "sets transform = 'units:doubled'", "--transform")
    assert not (halved / "never").exists()


def test_the_wrapper_leaves_the_models_own_mode_alone(breast_cancer, halved):
    """A model saved in training mode (dropout on) must stay so behind a transform: the explain
    audit's repeatability check is how a user learns of it."""
    import torch

    from auditor.loading.model import load_model
    from auditor.loading.transform import with_transform

    model = load_model(breast_cancer.folder / "model.pt", device=torch.device("cpu"))
    model.module.train(True)
    wrapped = with_transform(model, "units:doubled", str(halved)).module
    assert wrapped.model.training and wrapped.training
    model.module.train(False)
    assert not with_transform(model, "units:doubled", str(halved)).module.model.training


def test_a_transform_outside_torch_is_explained_by_feature_ablation(breast_cancer, halved):
    result = invoke(breast_cancer.folder / "model.pt", "--data", halved / "halved.csv", "--transform", "units:via_numpy",
                    "--model-path", halved, "--audits", "metrics,explain", "--out", halved / "n", "--format", "json",
                    "-q", "--fail-on", "never", "-o", "explain.samples=100")
    assert result.exit_code == 0, result.stderr
    explain = read_report(halved / "n")["audits"]["explain"]
    assert "perturbation-fallback" in [f["code"] for f in explain["findings"]]
    assert "Feature Ablation" in explain["summary"]
