"""The plugin author's kit (auditor.testing): make_context, check_audit and the pytest fixtures.

make_context builds the real context objects from arrays, the way a run builds them from
files; check_audit catches an audit that runs the model without declaring it, through
ctx.infer as well as ctx.model.module, and renders every result in every report format.
Expected values are computed here independently (the eager model, numpy, the loader on a CSV).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Audit
from auditor.contract.result import AuditResult
from auditor.loading.data import load_data
from auditor.testing import FORMATS, check_audit, check_rendering, make_context

# --- make_context: the objects a run builds ---------------------------------------------------


def test_a_binary_context_from_a_positive_class_probability():
    ctx = make_context(y=[0, 1, 1, 0], proba=[0.2, 0.9, 0.4, 0.5], class_names=["no", "yes"])
    assert ctx.task.kind == "binary" and ctx.task.class_names == ("no", "yes") and ctx.task.output == "probabilities"
    np.testing.assert_allclose(ctx.predictions.proba, [[0.8, 0.2], [0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    assert ctx.predictions.label.tolist() == [0, 1, 0, 0]  # argmax; a tie goes to the first class, as in a run
    assert ctx.data.y.dtype == np.int64 and ctx.data.y.tolist() == [0, 1, 1, 0]
    assert ctx.data.target_name == "target" and ctx.data.X.shape == (4, 0) and ctx.has_target
    assert ctx.infer is None and ctx.sensitive == {} and ctx.history is None and ctx.train is None


def test_multiclass_targets_by_name_and_regression():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    ctx = make_context(y=["barbera", "grignolino"], proba=proba, class_names=["barolo", "barbera", "grignolino"])
    assert ctx.task.kind == "multiclass" and ctx.task.n_outputs == 3
    assert ctx.data.y.tolist() == [1, 2] and ctx.predictions.label.tolist() == [0, 2]
    reg = make_context(y=[1.5, 2.0], values=[1.0, 2.5])
    assert reg.task.kind == "regression" and reg.task.class_names == ()
    assert reg.predictions.value.tolist() == [1.0, 2.5] and reg.data.y.dtype == np.float64


def test_labels_alone_are_hard_predictions():
    ctx = make_context(y=[0, 2, 1], labels=[0, 2, 2])
    assert ctx.task.kind == "multiclass"
    np.testing.assert_array_equal(ctx.predictions.proba, np.eye(3)[[0, 2, 2]])


def test_groups_are_built_as_the_loader_builds_a_csv_column(tmp_path):
    rng = np.random.default_rng(0)
    age = rng.integers(18, 90, size=200).astype(float)
    age[[3, 50]] = np.nan
    sex = rng.choice(["f", "m", None], size=200)
    frame = pd.DataFrame({"x": rng.normal(size=200), "age": age, "sex": sex, "target": rng.integers(0, 2, 200)})
    frame.to_csv(tmp_path / "data.csv", index=False)
    loaded = load_data(tmp_path / "data.csv", target="target", features=["x"], metadata={}, sensitive=["age", "sex"])
    ctx = make_context(y=frame["target"], proba=np.full(200, 0.5), X=frame[["x"]].to_numpy(), feature_names=["x"],
                       groups={"age": age, "sex": sex})
    for column in ("age", "sex"):
        expected, built = loaded.sensitive[column], ctx.sensitive[column]
        assert built.labels == expected.labels and built.binned == expected.binned
        np.testing.assert_array_equal(built.codes, expected.codes)
    assert ctx.sensitive["age"].binned == "quartiles" and ctx.sensitive["age"].labels[-1] == "(missing)"
    assert ctx.sensitive["sex"].labels == ("f", "m", "(missing)")
    assert ctx.data.columns == ["x", "target", "age", "sex"]


def test_history_from_series_and_named_columns():
    ctx = make_context(y=[0, 1], proba=[0.3, 0.6], history={"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.8]},
                       named={"patient": ["a", "b"]})
    assert ctx.history.train_loss == "loss" and ctx.history.val_loss == "val_loss"
    assert ctx.history.epochs.tolist() == [1, 2, 3]
    assert ctx.data.named["patient"].tolist() == ["a", "b"]


class TwoLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_a_model_predicts_once_and_infer_runs_it_like_the_run():
    model = TwoLayer()
    X = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    ctx = make_context(X=X, y=np.arange(50) % 3, model=model, train={"X": X[:20], "y": np.arange(20) % 3})
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(X)), dim=1).double().numpy()
    assert ctx.task.kind == "multiclass" and ctx.task.output == "logits" and ctx.forward_passes == 2
    np.testing.assert_allclose(ctx.predictions.proba, expected, rtol=1e-5)
    np.testing.assert_allclose(ctx.train.predictions.proba, expected[:20], rtol=1e-5)
    new = X[::-1].copy()
    with torch.no_grad():
        np.testing.assert_allclose(ctx.infer(new), model(torch.from_numpy(new)).numpy(), rtol=1e-6)
    assert ctx.model.format == "in-memory module" and len(ctx.model.sha256) == 64


def test_without_a_model_the_module_refuses_to_run():
    ctx = make_context(y=[0, 1], proba=[0.1, 0.9])
    with pytest.raises(UsageError, match="without a model"):
        ctx.model.module(np.zeros((1, 1)))


@pytest.mark.parametrize("arguments, fragment", [
    ({"y": [0, 1, 1], "proba": [0.2, 0.9]}, "'proba' has 2 rows but 'y' has 3"),
    ({"y": [0, 1], "proba": [[0.2, 0.7], [0.5, 0.5]]}, "'proba' must be rows that sum to 1"),
    ({"y": [0, 1], "proba": [1.2, 0.5]}, "'proba' must be probabilities between 0 and 1"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "labels": [1, 1]}, "'labels' must be the class of highest probability"),
    ({"y": [0, 1], "labels": [0, 3], "class_names": ["a", "b"]}, "'labels' must be class indices 0 .. 1"),
    ({"y": [0, 5], "proba": [0.2, 0.9]}, "'y' must be the target of a binary task"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "task": "multiclass"}, "'task' must be consistent"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "class_names": ["a", "b", "c"]}, "'class_names' must be 2 names"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "X": np.zeros((2, 2)), "feature_names": ["a"]}, "'feature_names' must be 2"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "values": [1.0, 2.0]}, "either values (regression) or proba"),
    ({"y": [0, 1]}, "no predictions"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "X": [[1.0], [np.nan]]}, "'X' must be finite numbers"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "groups": {"sex": ["f"]}}, "groups['sex'] has 1 rows"),
    ({"y": [0, 1], "proba": [0.2, 0.9], "model": "model.pt"}, "'model' must be a torch.nn.Module"),
])
def test_bad_input_is_one_line_naming_the_argument(arguments, fragment):
    with pytest.raises(UsageError) as caught:
        make_context(**arguments)
    message = str(caught.value)
    assert fragment in message and message.startswith("make_context") and "\n" not in message


# --- check_audit --------------------------------------------------------------------------------


class Sneaky(Audit):
    """Runs the model through ctx.infer without declaring the need "model"."""

    name = "sneaky"
    title = "Sneaky"
    description = "Calls ctx.infer without declaring it."

    def run(self, ctx, options):
        ctx.infer(ctx.data.X[:5])
        return AuditResult(audit=self.name, title=self.title, status="pass", summary="Looked at five rows.")


class Declared(Sneaky):
    name = "declared"
    needs = ("model",)


class Hostile(Audit):
    name = "hostile"
    title = "<b>Calibration</b> & gap | 50%"
    description = "Markup and punctuation in its title and summary."

    def run(self, ctx, options):
        return AuditResult(audit=self.name, title=self.title, status="warn",
                           summary="Rows <script>alert(1)</script> & *stars* | pipes: 97% `code` @someone.")


@pytest.fixture
def model_context():
    X = np.random.default_rng(2).normal(size=(30, 3)).astype(np.float32)
    return make_context(X=X, y=np.arange(30) % 3, model=TwoLayer())


def test_an_audit_calling_infer_undeclared_fails_naming_the_fix(model_context):
    with pytest.raises(AssertionError) as caught:
        check_audit(Sneaky(), model_context)
    message = str(caught.value)
    assert "sneaky called ctx.infer 2 time(s) without declaring the need 'model'" in message
    assert 'add "model" to its needs' in message
    assert model_context.infer.func.__name__ == "run_inference"  # put back as it was


def test_calling_infer_on_a_context_without_a_model_fails_the_same_way():
    with pytest.raises(AssertionError, match='add "model" to its needs'):
        check_audit(Sneaky(), make_context(y=[0, 1], proba=[0.2, 0.7]))


def test_an_audit_that_declares_the_model_may_call_infer(model_context):
    assert check_audit(Declared(), model_context, formats=["json"]).summary == "Looked at five rows."


def test_every_format_renders_and_shows_title_and_summary(model_context):
    rendered = check_rendering(Hostile(), Hostile().run(model_context, {}), model_context, formats=FORMATS)
    assert set(rendered) == set(FORMATS)
    assert "<script>alert" not in rendered["html"] and "&lt;script&gt;" in rendered["html"]
    assert "Sneaky" not in rendered["md"]


def test_check_audit_renders_pdf_when_a_browser_is_installed(model_context):
    from auditor.report.pdf import pdf_available

    if pdf_available() is None:
        pytest.skip("no Chromium: check_audit renders pdf only where one is installed")
    rendered = check_rendering(Hostile(), Hostile().run(model_context, {}), model_context, formats=["pdf"])
    assert rendered["pdf"].startswith(b"%PDF")


# --- the pytest plugin --------------------------------------------------------------------------


def test_loading_the_plugin_imports_no_torch():
    code = "import sys, auditor.testing.pytest_plugin; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_fixtures_in_a_plugin_authors_test_session(tmp_path: Path):
    (tmp_path / "test_mine.py").write_text(textwrap.dedent('''
        import sys

        def test_factory(audit_context):
            assert audit_context(y=[0, 1], proba=[0.4, 0.6]).task.kind == "binary"

        def test_binary_context_is_a_real_model(binary_context, check_audit):
            import torch
            ctx = binary_context
            with torch.no_grad():
                logits = ctx.model.module(torch.from_numpy(ctx.data.X)).numpy()[:, 0]
            assert ((logits > 0).astype(int) == ctx.predictions.label).all()
            assert (ctx.predictions.label == ctx.data.y).mean() > 0.9
            assert ctx.task.class_names == ("malignant", "benign") and len(ctx.data.feature_names) == 30
            assert ctx.train is not None and ctx.history.val_loss == "val_loss"
            assert ctx.sensitive["clinic"].labels == ("north", "south", "west")
            assert ctx.infer is not None
    '''))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout
