"""`audit MODEL --data CSV` end to end, with numbers checked against scikit-learn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, read_report
from scipy.special import expit
from sklearn import metrics as skm


def metric(report: dict, name: str) -> float:
    return report["audits"]["metrics"]["metrics"][name]["value"]


def test_binary_torchscript_end_to_end(tmp_path, breast_cancer):
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    report = read_report(out)

    y = breast_cancer.frame["target"].to_numpy()
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    assert report["data"]["task"] == "binary"
    assert report["data"]["output"] == "logits"
    assert report["data"]["rows"] == len(y)
    assert metric(report, "roc_auc") == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert metric(report, "accuracy") == pytest.approx(skm.accuracy_score(y, p > 0.5), abs=1e-12)
    assert metric(report, "log_loss") == pytest.approx(skm.log_loss(y, p), rel=1e-5)
    low, high = report["audits"]["metrics"]["metrics"]["roc_auc"]["ci"]
    assert low <= metric(report, "roc_auc") <= high
    assert report["model"]["format"] == "torchscript"
    assert report["model"]["parameters"] == sum(p.numel() for p in breast_cancer.module.parameters())
    assert report["run"]["forward_passes"] == 1
    # the terminal summary names the audit and where the reports went
    assert "metrics" in result.stdout and "report.html" in result.stdout


def test_multiclass_softmax_outputs_with_text_labels(tmp_path, wine):
    out = tmp_path / "out"
    result = invoke(wine.folder / "model.pt", "--data", wine.folder / "test.csv", "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    assert report["data"]["task"] == "multiclass"
    assert report["data"]["output"] == "probabilities"
    assert report["data"]["class_names"] == ["barolo", "grignolino", "barbera"]
    proba = wine.eager_outputs().astype(np.float64)
    y = np.array([["barolo", "grignolino", "barbera"].index(v) for v in wine.frame["cultivar"]])
    assert metric(report, "accuracy") == pytest.approx(skm.accuracy_score(y, proba.argmax(1)))
    assert metric(report, "f1_macro") == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    expected_auc = skm.roc_auc_score(y, proba / proba.sum(1, keepdims=True), multi_class="ovr")
    assert metric(report, "roc_auc") == pytest.approx(expected_auc, abs=1e-9)
    counts = {row["class"]: row["count"] for row in report["data"]["class_balance"]}
    assert counts == wine.frame["cultivar"].value_counts().to_dict()


def test_regression_from_parquet(tmp_path, diabetes):
    out = tmp_path / "out"
    result = invoke(diabetes.folder / "model.pt", "--data", diabetes.folder / "test.parquet", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    y = diabetes.frame["target"].to_numpy()
    pred = diabetes.eager_outputs()[:, 0].astype(np.float64)
    assert report["data"]["task"] == "regression"
    assert metric(report, "rmse") == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-6)
    assert metric(report, "r2") == pytest.approx(skm.r2_score(y, pred), rel=1e-6)
    assert metric(report, "mae") == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-6)


def test_cnn_from_flat_rows_with_input_shape(tmp_path, digits):
    out = tmp_path / "out"
    result = invoke(digits.folder / "model.pt", "--data", digits.folder / "test.csv", "--input-shape", "1,8,8",
                    "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    X = digits.frame[digits.features].to_numpy(np.float32).reshape(-1, 1, 8, 8)
    import torch

    with torch.no_grad():
        predicted = digits.module(torch.tensor(X)).argmax(1).numpy()
    assert report["data"]["class_names"] == [str(i) for i in range(10)]
    assert metric(report, "accuracy") == pytest.approx(skm.accuracy_score(digits.frame["target"], predicted))


@pytest.mark.parametrize("model_file, extra, fmt", [
    ("weights.pt", ["--model-class", "tiny_nets:BreastCancerMLP"], "state_dict"),
    ("weights.safetensors", ["--model-class", "tiny_nets:BreastCancerMLP"], "safetensors"),
    ("exported.pt2", [], "export"),
    ("whole.pt", ["--trust-model"], "pickle"),
])
def test_every_model_format_gives_the_same_numbers(tmp_path, breast_cancer, model_file, extra, fmt):
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / model_file, "--data", breast_cancer.folder / "test.csv",
                    "--out", out, "-q", "--model-path", Path(__file__).parent / "nets", *extra)
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    assert report["model"]["format"] == fmt
    y = breast_cancer.frame["target"].to_numpy()
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    assert metric(report, "roc_auc") == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert "weights_only=False" not in json.dumps(report)


def test_same_inputs_and_seed_give_identical_reports(tmp_path, breast_cancer):
    reports = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, "-q",
               "--seed", "7")
        report = read_report(out)
        report.pop("run")
        report.pop("measurements")  # energy and carbon: measured, so different every run
        reports.append(json.dumps(report, sort_keys=True))
    assert reports[0] == reports[1]


def test_seed_changes_only_the_intervals(tmp_path, breast_cancer):
    seen = {}
    for seed in ("1", "2"):
        out = tmp_path / seed
        invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, "-q",
               "--seed", seed)
        seen[seed] = read_report(out)["audits"]["metrics"]["metrics"]["roc_auc"]
    assert seen["1"]["value"] == seen["2"]["value"]
    assert seen["1"]["ci"] != seen["2"]["ci"]


def test_pyproject_settings_and_o_overrides_reach_the_audit(tmp_path, breast_cancer, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.auditor]\nformat = ["json"]\n\n[tool.auditor.metrics]\nn_resamples = 300\nconfidence = 0.9\n'
    )
    monkeypatch.chdir(tmp_path)
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "-q",
                    "-o", "metrics.confidence=0.8")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "reports" / "model"
    assert [p.name for p in out.iterdir()] == ["report.json"]
    options = read_report(out)["audits"]["metrics"]["options"]
    assert options["n_resamples"] == 300 and options["confidence"] == 0.8


def test_render_rebuilds_every_format_from_the_json_alone(tmp_path, breast_cancer):
    out = tmp_path / "out"
    invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, "-q")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "report.json", alone / "report.json")
    result = invoke("render", alone / "report.json", "--format", "html,md")
    assert result.exit_code == 0, result.stderr
    assert (alone / "report.html").read_text() == (out / "report.html").read_text()
    assert (alone / "report.md").read_text() == (out / "report.md").read_text()


def test_plugins_lists_the_builtin_audits_with_their_options():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    listing = {item["name"]: item for item in json.loads(result.stdout)}
    assert listing["metrics"]["module"] == "auditor_plugins.metrics.audit"
    assert "n_resamples" in {o["name"] for o in listing["metrics"]["options"]}


def test_help_teaches_with_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    for text in ("audit model.pt --data test.csv", "--target", "--input-shape", "audit demo", "Exit codes"):
        assert text in result.stdout


def test_installed_audit_command_runs_as_a_real_process(tmp_path, breast_cancer):
    audit = shutil.which("audit") or str(Path(sys.executable).with_name("audit"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [audit, str(breast_cancer.folder / "model.pt"), "--data", str(breast_cancer.folder / "test.csv"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.json").is_file()
    bad = subprocess.run([audit, str(breast_cancer.folder / "whole.pt"), "--data", "x.csv"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_a_run_imports_no_heavy_library_it_does_not_need(tmp_path, breast_cancer):
    """Start-up time is part of the speed budget: pandas, scikit-learn, scipy, fairlearn, captum
    and codecarbon are imported only by the audits that use them (captum, and the matplotlib
    it imports, by the explain audit; codecarbon, and the pandas it imports, by the carbon
    audit: both skipped here)."""
    script = (
        "import sys\n"
        "from auditor.cli import cli\n"
        f"args = [{str(breast_cancer.folder / 'model.pt')!r}, '--data', {str(breast_cancer.folder / 'test.csv')!r},"
        f" '--out', {str(tmp_path / 'out')!r}, '-q', '--skip', 'explain,carbon']\n"
        "try:\n    cli.main(args, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'sklearn', 'scipy', 'fairlearn', 'captum', 'codecarbon', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "report.json").is_file()
    assert proc.stdout.strip() == "[]"


# --- [tool.auditor] settings are the run command's defaults (Click's default_map) ----------------

def test_settings_show_as_the_defaults_in_help_and_the_command_line_wins(tmp_path, breast_cancer, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.auditor]\nseed = 3\nformat = ["json", "md"]\nfail_on = "never"\naudits = ["metrics"]\n')
    monkeypatch.chdir(tmp_path)
    shown = " ".join(invoke("run", "--help").stdout.split())
    for default in ("[default: 3]", "[default: json,md]", "[default: never]", "[default: metrics]"):
        assert default in shown
    assert "[default: False]" not in shown  # flags keep quiet about theirs
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "-q",
                    "--seed", "5", "-o", "metrics.n_resamples=200")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "reports" / "model"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]
    report = read_report(out)
    assert report["run"]["seed"] == 5 and list(report["audits"]) == ["metrics"]
    assert report["gates"]["fail_on"] == "never"  # a rule the settings asked for is part of the outcome


def test_a_setting_its_option_would_refuse_is_one_line_naming_the_file(tmp_path, breast_cancer, monkeypatch):
    config = tmp_path / "ci.toml"
    config.write_text('task = "binaryy"\n')
    monkeypatch.chdir(tmp_path)
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--config", config)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ci.toml sets task = 'binaryy'")
    assert "'auto', 'binary', 'multiclass', 'regression'" in lines[0]
    assert not (tmp_path / "reports").exists()
    assert invoke("run", "--config", config, "--help").exit_code == 0  # help whatever the settings say
