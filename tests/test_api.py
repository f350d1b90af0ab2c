"""`auditor.audit(model, data, **options) -> Outcome`: the command line's run, from Python.

Paths run exactly as `audit` runs them (the same report, the same exit code); an nn.Module
runs in the caller's process and says so; DataFrames, arrays and tensors go through the same
loader as files. Expected numbers come from the eager model and scikit-learn.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from cli_helpers import install_plugin, invoke, read_report
from scipy.special import expit
from sklearn import metrics as skm

import auditor
from auditor.contract.errors import AuditorError, DataError, UsageError
from auditor.report.document import Report
from auditor.report.schema import validate
from auditor.report.write import canonical

FAST = {"metrics.n_resamples": 200}


def figures(report: dict) -> dict:
    """A report without what differs between two identical runs (and between how they ran)."""
    kept = {k: v for k, v in report.items() if k not in ("run", "measurements")}
    kept["model"] = {k: v for k, v in kept["model"].items() if k != "trust"}  # names the run's confinement
    return kept


def metric(outcome: auditor.Outcome, name: str) -> float:
    return outcome.report.audits["metrics"].metrics[name].value


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Temporary files of the run go here, so a test can see that none are left behind (the
    process-wide server contained runs fork from keeps its own folder: started before)."""
    from auditor.contain import server

    server.start()
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# --- the same run as the command line ------------------------------------------------------------


def test_a_path_gives_the_command_lines_report_and_exit_code(tmp_path, breast_cancer, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./pyproject.toml: the CLI reads one, the API does not
    model, data = breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv"
    result = invoke(model, "--data", data, "--out", tmp_path / "cli", "-q", "--audits", "metrics,explain,privacy",
                    "-o", "metrics.n_resamples=200")
    outcome = auditor.audit(model, data, audits=["metrics", "explain", "privacy"], options=FAST,
                            out=tmp_path / "api")
    assert outcome.exit_code == result.exit_code == 0
    assert figures(canonical(outcome.report)) == figures(read_report(tmp_path / "cli"))
    assert figures(read_report(tmp_path / "api")) == figures(read_report(tmp_path / "cli"))
    assert sorted(p.name for p in outcome.written) == ["report.html", "report.json", "report.md"]
    assert outcome.report.run["confinement"]["enforced"] == read_report(tmp_path / "cli")["run"]["confinement"][
        "enforced"]
    assert outcome.report.run["command"].startswith("auditor.audit('")
    y = breast_cancer.frame["target"].to_numpy()
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    assert metric(outcome, "roc_auc") == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)


def test_nothing_is_written_or_printed_unless_asked(tmp_path, breast_cancer, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    outcome = auditor.audit(str(breast_cancer.folder / "model.pt"), str(breast_cancer.folder / "test.csv"),
                            audits="metrics", options=FAST)
    assert list(tmp_path.iterdir()) == [] and outcome.written == []
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert isinstance(outcome.report, Report) and outcome.verdict == outcome.report.outcome.verdict
    written = outcome.save(tmp_path / "later", "md")
    assert [p.name for p in written] == ["report.md", "report.json"]  # report.json always, as by the CLI


# --- objects -------------------------------------------------------------------------------------


def test_a_module_and_a_dataframe_run_in_process_and_say_so(breast_cancer, private_tmp):
    module = breast_cancer.module
    module.train()  # the caller's mode, given back after the run
    try:
        outcome = auditor.audit(module, breast_cancer.frame, audits="metrics,privacy", options=FAST)
        assert module.training
    finally:
        module.eval()
    frame = breast_cancer.frame
    report = canonical(outcome.report)
    validate(report)
    assert report["model"]["format"] == "in-memory module"
    assert report["model"]["path"] == "<in-memory BreastCancerMLP>"
    assert report["data"]["path"] == "<in-memory DataFrame>" and "Parquet copy" in report["data"]["origin"]
    assert report["data"]["rows"] == len(frame)
    assert report["run"]["confinement"]["enforced"] is False
    assert "caller's Python process" in report["run"]["confinement"]["reason"]
    assert "WITHOUT operating-system confinement" in report["model"]["trust"]
    assert report["code"][0]["spec"] == "tiny_nets:BreastCancerMLP" and report["code"][0]["file"] == "tiny_nets.py"
    y = frame["target"].to_numpy()
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    assert metric(outcome, "roc_auc") == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert metric(outcome, "accuracy") == pytest.approx(skm.accuracy_score(y, p > 0.5))
    assert list(private_tmp.iterdir()) == []  # the Parquet copy is gone


def test_a_model_file_with_data_objects_reads_them_in_the_contained_run(breast_cancer, private_tmp):
    """The confined process may read the Parquet copies (and nothing else of the caller's)."""
    from auditor.contain import available

    frame = breast_cancer.frame
    X, y = frame[breast_cancer.features].to_numpy(), frame["target"].to_numpy()
    outcome = auditor.audit(breast_cancer.folder / "model.pt", frame.iloc[:150], train_data=X[150:],
                            train_y=y[150:], features=breast_cancer.features, audits="metrics,privacy",
                            options=FAST)
    assert outcome.exit_code == 0, outcome.report.outcome
    report = canonical(outcome.report)
    assert report["run"]["confinement"]["enforced"] is available().enforced
    assert report["data"]["path"] == "<in-memory DataFrame>" and report["data"]["rows"] == 150
    assert report["train_data"]["path"] == "<in-memory ndarray>" and report["train_data"]["rows"] == len(y) - 150
    p = expit(breast_cancer.eager_outputs()[:150, 0].astype(np.float64))
    assert metric(outcome, "roc_auc") == pytest.approx(skm.roc_auc_score(y[:150], p), abs=1e-9)
    assert list(private_tmp.iterdir()) == []


def test_a_modules_sha256_is_that_of_its_weights(breast_cancer):
    """Independently: sha256 over the state_dict's names, dtypes, shapes and bytes, in name order."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(breast_cancer.module.state_dict().items()):
        digest.update(name.encode() + b"\0" + f"{tensor.dtype}{tuple(tensor.shape)}".encode() + b"\0")
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    outcome = auditor.audit(breast_cancer.module, breast_cancer.frame, audits="metrics", options=FAST)
    assert outcome.report.model["sha256"] == digest.hexdigest()
    assert outcome.report.model["size_bytes"] == sum(t.numel() * t.element_size()
                                                     for t in breast_cancer.module.state_dict().values())


def test_an_ndarray_with_labels_and_a_tensor_give_the_same_numbers(breast_cancer, private_tmp):
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)
    y = breast_cancer.frame["target"].to_numpy()
    from_array = auditor.audit(breast_cancer.module, X, y=y, audits="metrics", options=FAST)
    from_tensor = auditor.audit(breast_cancer.module, torch.tensor(X), y=torch.tensor(y), audits="metrics",
                                options=FAST)
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    for outcome, kind in ((from_array, "ndarray"), (from_tensor, "Tensor")):
        assert outcome.report.data["path"] == f"<in-memory {kind}>"
        assert outcome.report.data["features"] == [f"f{i}" for i in range(X.shape[1])]
        assert outcome.report.data["target"] == "target"
        assert metric(outcome, "roc_auc") == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    named = auditor.audit(breast_cancer.module, X, y=y, features=breast_cancer.features, audits="metrics",
                          options=FAST)
    assert named.report.data["features"] == breast_cancer.features
    assert list(private_tmp.iterdir()) == []


def test_an_image_array_declares_its_input_shape(digits):
    X = digits.frame[digits.features].to_numpy(np.float32).reshape(-1, 1, 8, 8)
    y = digits.frame["target"].to_numpy()
    outcome = auditor.audit(digits.module, X, y=y, audits="metrics", options=FAST)
    with torch.no_grad():
        predicted = digits.module(torch.tensor(X)).argmax(1).numpy()
    assert metric(outcome, "accuracy") == pytest.approx(skm.accuracy_score(y, predicted))
    assert outcome.report.data["rows"] == len(y)


# --- errors: raised, never an exit, nothing written ------------------------------------------------


@pytest.mark.parametrize("call, error, fragment", [
    (lambda bc: auditor.audit(bc.folder / "model.pt", bc.folder / "test.csv", target="no_such_column"),
     AuditorError, "no_such_column"),
    (lambda bc: auditor.audit(bc.module, bc.frame[bc.features].to_numpy(), y=bc.frame["target"].to_numpy(),
                              features=["a", "b"]), DataError, "features names 2 column(s)"),
    (lambda bc: auditor.audit(bc.module, bc.frame, y=bc.frame["target"].to_numpy()), DataError,
     "already has a column 'target'"),
    (lambda bc: auditor.audit(bc.module, bc.frame[bc.features].to_numpy(), y=[0, 1]), DataError,
     "one label per row"),
    (lambda bc: auditor.audit(bc.folder / "model.pt", bc.folder / "test.csv", y=[0, 1]), UsageError, "y="),
    (lambda bc: auditor.audit(bc.folder / "model.pt", {"a": [1]}), UsageError, "got dict"),
    (lambda bc: auditor.audit(42, bc.folder / "test.csv"), UsageError, "torch.nn.Module"),
    (lambda bc: auditor.audit(bc.folder / "whole.pt", bc.folder / "test.csv"), AuditorError, "whole.pt"),
    (lambda bc: auditor.audit(bc.folder / "model.pt", bc.folder / "test.csv", options={"metrics": {"nope": 1}}),
     UsageError, "has no option 'nope'"),
    (lambda bc: auditor.audit(bc.folder / "model.pt", bc.folder / "test.csv", formats="docx"), UsageError,
     "docx"),
    (lambda bc: auditor.audit(bc.module, bc.frame, batch_size=0), UsageError, "batch_size must be"),
])
def test_bad_input_raises_the_auditor_error_and_writes_nothing(tmp_path, breast_cancer, private_tmp, monkeypatch,
                                                               call, error, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as raised:
        call(breast_cancer)
    assert fragment in str(raised.value) and raised.value.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"] and list(private_tmp.iterdir()) == []


def test_a_bad_column_with_out_leaves_no_folder(tmp_path, breast_cancer):
    with pytest.raises(AuditorError, match="no_such_column"):
        auditor.audit(breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv",
                      target="no_such_column", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


BOOM = """
    from auditor.contract.plugin import Audit

    class Boom(Audit):
        name = "boom"
        title = "Raises"
        description = "Breaks on every run."

        def run(self, ctx, options):
            raise RuntimeError("boom")
"""


@pytest.mark.parametrize("how", ["module", "path"])
def test_a_broken_audit_is_exit_code_3_not_an_exception(site, breast_cancer, monkeypatch, how):
    install_plugin(site, "boom", "Boom", BOOM)
    monkeypatch.setenv("AUDITOR_PLUGINS", "metrics,boom")
    model = breast_cancer.module if how == "module" else breast_cancer.folder / "model.pt"
    outcome = auditor.audit(model, breast_cancer.frame if how == "module" else breast_cancer.folder / "test.csv",
                            options=FAST)
    assert outcome.exit_code == 3 and outcome.verdict == "error"
    assert outcome.report.audits["boom"].status == "error" and "RuntimeError: boom" in outcome.report.audits[
        "boom"].summary
    assert outcome.report.audits["metrics"].status in ("pass", "warn")  # the others still ran
    assert "RuntimeError: boom" in outcome.tracebacks["boom"]


# --- gates and regressions: part of the outcome -----------------------------------------------------


def test_a_regression_against_a_baseline_is_exit_code_1(tmp_path, breast_cancer):
    module, frame = breast_cancer.module, breast_cancer.frame
    baseline = auditor.audit(module, frame, audits="metrics", options=FAST, out=tmp_path / "main")
    worse = frame.copy()
    flipped = worse.index[:40]
    worse.loc[flipped, "target"] = 1 - worse.loc[flipped, "target"]
    y = worse["target"].to_numpy()
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    drop = skm.accuracy_score(frame["target"], p > 0.5) - skm.accuracy_score(y, p > 0.5)
    assert drop > 0.02  # independently: the flipped labels cost accuracy
    policy = {"regression": {"metrics.accuracy": {"max_drop": 0.02}}}
    for given in (baseline, baseline.report, tmp_path / "main" / "report.json"):
        outcome = auditor.audit(module, worse, audits="metrics", options=FAST, policy=policy, baseline=given)
        assert outcome.exit_code == 1 and outcome.verdict == "fail"
        assert outcome.gates is not None
        [failed] = [g for g in outcome.gates["results"] if not g["passed"]]
        assert failed["kind"] == "regression" and failed["path"] == "metrics.accuracy"
        assert outcome.report.outcome.failed_gates == [failed["name"]]
    same = auditor.audit(module, frame, audits="metrics", options=FAST, policy=policy, baseline=baseline)
    assert same.exit_code == 0 and all(g["passed"] for g in same.gates["results"])


def test_a_policy_file_gate_fails_the_same_way_as_on_the_command_line(tmp_path, breast_cancer, monkeypatch):
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "audit.toml"
    policy.write_text('[gates]\n"metrics.accuracy" = ">= 0.999"\n')
    model, data = breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv"
    outcome = auditor.audit(model, data, audits="metrics", options=FAST, policy=policy)
    result = invoke(model, "--data", data, "--audits", "metrics", "-o", "metrics.n_resamples=200", "--policy",
                    policy, "--out", tmp_path / "cli", "-q")
    assert outcome.exit_code == result.exit_code == 1
    assert canonical(outcome.report)["gates"]["results"] == read_report(tmp_path / "cli")["gates"]["results"]
    assert canonical(outcome.report)["outcome"] == read_report(tmp_path / "cli")["outcome"]


# --- as users call it ----------------------------------------------------------------------------------


def test_the_one_liner_runs_as_a_real_process(tmp_path, breast_cancer):
    for name in ("model.pt", "test.csv"):
        shutil.copy(breast_cancer.folder / name, tmp_path / name)
    code = "import auditor; out = auditor.audit('model.pt', 'test.csv'); print(out.exit_code)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0\n" and proc.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "test.csv"]  # wrote nothing


def test_import_auditor_is_cheap():
    code = ("import sys, auditor; heavy = [m for m in ('torch', 'pandas', 'numpy', 'click') if m in sys.modules];"
            "print(heavy, callable(auditor.audit), 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] True False"  # auditor.audit itself is loaded without torch


def test_the_report_shows_itself_in_a_notebook(breast_cancer):
    outcome = auditor.audit(breast_cancer.module, breast_cancer.frame, audits="metrics", options=FAST)
    html = outcome.report._repr_html_()
    assert html == outcome._repr_html_()
    assert html.startswith('<div class="auditor-report">') and html.rstrip().endswith("</div>")
    lowered = html.lower()
    for absent in ("<html", "<body", "<script", "<link", "src=\"http", "href=\"http", "@import"):
        assert absent not in lowered, absent
    assert outcome.verdict.upper() in html and "<style>" in html
    assert "Outcome(verdict=" in repr(outcome) and len(repr(outcome)) < 300


def test_an_outcome_round_trips_through_report_json(tmp_path, breast_cancer):
    outcome = auditor.audit(breast_cancer.module, breast_cancer.frame, audits="metrics", options=FAST,
                            out=tmp_path, formats=["json"])
    stored = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert canonical(Report.from_dict(stored)) == stored == canonical(outcome.report)
