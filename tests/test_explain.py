"""The explain audit: attributions a reviewer can trust.

Expected numbers come from elsewhere: captum called the plain way (a per-row target), the
eager model's own outputs, scikit-learn's ``permutation_importance`` on the model wrapped
as an estimator, and models trained on data whose signal is known by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import DeepLift, FeatureAblation, GradientShap, IntegratedGradients
from cli_helpers import invoke, read_report
from scipy.stats import spearmanr
from sklearn import datasets
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.model_selection import train_test_split

from auditor.contract.context import Task
from auditor_plugins.explain import attribution
from auditor_plugins.explain.attribution import Explained, Settings
from auditor_plugins.explain.importance import downsample, importance, spearman
from auditor_plugins.explain.sample import allocate, deciles, stratified_sample

# what captum tells its own users when the tests call it directly (the audit silences these)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients:UserWarning"),
    pytest.mark.filterwarnings("ignore:Setting forward, backward hooks:UserWarning"),
]

BINARY = Task("binary", ("0", "1"), "logits", 1)
CPU = torch.device("cpu")


def explain_section(folder):
    return read_report(folder)["audits"]["explain"]


def table(section, name):
    found = next(t for t in section["tables"] if t["name"] == name)
    return pd.DataFrame(found["rows"], columns=found["columns"])


def chart(section, name):
    return next(c for c in section["charts"] if c["name"] == name)


def run_explain(tmp_path, model, data, *args):
    out = tmp_path / "out"
    result = invoke(model, "--data", data, "--audits", "explain", "--out", out, "-q", *args)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return explain_section(out)


def fit(module, X, y, loss, steps=300, lr=0.01):
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss(module(Xt), yt).backward()
        opt.step()
    return module.eval()


class Standardised(torch.nn.Module):
    """Standardises inside, then an MLP: what the tests train on known signals."""

    def __init__(self, X: np.ndarray, outputs: int = 1, hidden: int = 16) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(X.mean(axis=0), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(X.std(axis=0) + 1e-6, dtype=torch.float32))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


# --- a signal known by construction -------------------------------------------------------

SIGNAL = ["worst_concave_points", "worst_radius", "mean_texture"]


@pytest.fixture(scope="module")
def known_signal(tmp_path_factory):
    """Breast cancer: three real features carry the signal; five more are real columns
    shuffled across rows, so they keep their distribution but say nothing of the target."""
    data = datasets.load_breast_cancer(as_frame=True)
    frame = data.frame.copy()
    frame.columns = [c.replace(" ", "_") for c in data.feature_names] + ["malignant"]
    rng = np.random.default_rng(0)
    noise = ["mean_smoothness", "mean_symmetry", "texture_error", "area_error", "worst_fractal_dimension"]
    for column in noise:
        frame[f"shuffled_{column}"] = rng.permutation(frame[column].to_numpy())
    features = SIGNAL + [f"shuffled_{c}" for c in noise]
    frame = frame[features + ["malignant"]]
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["malignant"])
    X = train[features].to_numpy(np.float32)
    module = fit(Standardised(X), X, train["malignant"].to_numpy(np.float32)[:, None],
                 torch.nn.functional.binary_cross_entropy_with_logits)
    folder = tmp_path_factory.mktemp("known_signal")
    test.reset_index(drop=True).to_csv(folder / "test.csv", index=False)
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return module, test.reset_index(drop=True), features, folder


def test_the_top_features_are_the_ones_that_carry_the_signal(tmp_path, known_signal):
    _, _, _, folder = known_signal
    section = run_explain(tmp_path, folder / "model.pt", folder / "test.csv", "--target", "malignant")
    importance = table(section, "importance")
    assert set(importance["Feature"][:3]) == set(SIGNAL)
    assert importance["Share"][:3].sum() > 0.6
    assert set(importance.sort_values("Permutation rank")["Feature"][:3]) == set(SIGNAL)
    assert section["metrics"]["agreement"]["value"] > 0.5
    assert section["status"] == "pass"
    for name in SIGNAL:
        assert name in section["summary"] or importance["Feature"].tolist().index(name) >= 3


@pytest.fixture(scope="module")
def known_direction(tmp_path_factory):
    """Diabetes rows with a target built to rise with bmi and fall with s5 (plus noise)."""
    data = datasets.load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    rng = np.random.default_rng(1)
    frame["score"] = 40 * frame["bmi"] / frame["bmi"].std() - 25 * frame["s5"] / frame["s5"].std() + rng.normal(0, 5, len(frame))
    features = list(data.feature_names)
    X = frame[features].to_numpy(np.float32)
    module = fit(Standardised(X, hidden=32), X, frame["score"].to_numpy(np.float32)[:, None],
                 torch.nn.functional.mse_loss, steps=600, lr=0.02)
    folder = tmp_path_factory.mktemp("known_direction")
    frame.to_csv(folder / "test.csv", index=False)
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return module, frame, features, folder


def test_the_sign_tendency_says_which_way_a_feature_pushes(tmp_path, known_direction):
    _, _, _, folder = known_direction
    section = run_explain(tmp_path, folder / "model.pt", folder / "test.csv", "--target", "score")
    importance = table(section, "importance").set_index("Feature")
    assert list(importance.index[:2]) == ["bmi", "s5"]
    assert importance.loc["bmi", "Value–attribution correlation"] > 0.9
    assert importance.loc["s5", "Value–attribution correlation"] < -0.9
    assert "bmi" in section["summary"] and "higher values raise it" in section["summary"]
    assert "higher values lower it" in section["summary"]
    bars = chart(section, "importance")["data"]
    assert bars["labels"][:2] == ["bmi", "s5"] and bars["groups"][:2] == [1, 0]
    assert bars["legend"] == ["higher values lower it", "higher values raise it"]


# --- captum, called the plain way ---------------------------------------------------------


def _plain(method, module, X, baseline, **kwargs):
    """captum used as its documentation shows: the per-row output, a target per row."""
    wrapper = Explained(module, BINARY, None, summed=False)
    target = torch.ones(X.shape[0], dtype=torch.long)
    return method(wrapper).attribute(
        torch.tensor(X), baselines=baseline, additional_forward_args=(target,), **kwargs
    ).detach().double().numpy()


def test_attributions_equal_captums_plain_per_row_ones(breast_cancer):
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)
    base = X.mean(axis=0, keepdims=True)
    ones = np.ones(len(X), dtype=np.int64)
    for name, method, kwargs in [
        ("integrated_gradients", IntegratedGradients, {"n_steps": 50}),
        ("deeplift", DeepLift, {}),
        ("feature_ablation", FeatureAblation, {}),
    ]:
        ours = attribution.attribute(
            breast_cancer.module, X, ones, base, task=BINARY, input_shape=None, device=CPU,
            settings=Settings(method=name, max_steps=50),
        )
        expected = _plain(method, breast_cancer.module, X, torch.tensor(base), **kwargs)
        np.testing.assert_allclose(ours.values, expected, atol=1e-6, err_msg=name)
    torch.manual_seed(3), np.random.seed(3)
    ours = attribution.attribute(
        breast_cancer.module, X, ones, X[:10], task=BINARY, input_shape=None, device=CPU,
        settings=Settings(method="gradient_shap", n_steps=20),
    )
    torch.manual_seed(3), np.random.seed(3)
    expected = _plain(GradientShap, breast_cancer.module, X, torch.tensor(X[:10]), n_samples=20)
    np.testing.assert_allclose(ours.values, expected, atol=1e-6)


def test_integrated_gradients_sum_to_the_output_minus_the_baselines(breast_cancer):
    """Completeness, against the eager model's own probabilities."""
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)
    base = X.mean(axis=0, keepdims=True)
    found = attribution.attribute(
        breast_cancer.module, X, np.ones(len(X), dtype=np.int64), base, task=BINARY, input_shape=None,
        device=CPU, settings=Settings(tolerance=0.001, max_steps=800),
    )
    with torch.no_grad():
        p = torch.sigmoid(breast_cancer.module(torch.tensor(X)))[:, 0].double().numpy()
        p0 = float(torch.sigmoid(breast_cancer.module(torch.tensor(base)))[0, 0])
    np.testing.assert_allclose(found.outputs, p, atol=1e-6)
    np.testing.assert_allclose(found.values.sum(axis=1), p - p0, atol=0.001)
    np.testing.assert_allclose(found.delta, found.values.sum(axis=1) - (p - p0), atol=1e-6)


def test_rows_that_miss_the_tolerance_are_integrated_again_with_more_steps(breast_cancer):
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)
    ones = np.ones(len(X), dtype=np.int64)
    base = np.zeros((1, X.shape[1]), dtype=np.float32)  # far from the data: a curved path
    coarse = attribution.attribute(
        breast_cancer.module, X, ones, base, task=BINARY, input_shape=None, device=CPU,
        settings=Settings(n_steps=4, max_steps=4, tolerance=1e-4),
    )
    refined = attribution.attribute(
        breast_cancer.module, X, ones, base, task=BINARY, input_shape=None, device=CPU,
        settings=Settings(n_steps=4, max_steps=512, tolerance=1e-4),
    )
    missed = np.abs(coarse.delta) > 1e-4
    assert missed.any() and (coarse.steps == 4).all()
    assert (refined.steps[missed] > 4).all() and (refined.steps[~missed] == 4).all()
    assert np.abs(refined.delta).max() < np.abs(coarse.delta).max()
    assert refined.passes > coarse.passes


def test_a_baseline_sample_averages_the_attributions_over_its_rows(breast_cancer):
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)[:20]
    bases = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)[-3:]
    ones = np.ones(len(X), dtype=np.int64)
    together = attribution.attribute(
        breast_cancer.module, X, ones, bases, task=BINARY, input_shape=None, device=CPU,
        settings=Settings(max_steps=50),
    )
    apart = [
        _plain(IntegratedGradients, breast_cancer.module, X, torch.tensor(b[None, :]), n_steps=50) for b in bases
    ]
    np.testing.assert_allclose(together.values, np.mean(apart, axis=0), atol=1e-6)


# --- permutation importance, against scikit-learn ------------------------------------------


class _AsClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, module=None):
        self.module = module

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        with torch.no_grad():
            p = torch.sigmoid(self.module(torch.tensor(np.asarray(X, dtype=np.float32))))[:, 0].double().numpy()
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


class _AsRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, module=None):
        self.module = module

    def fit(self, X, y):
        return self

    def predict(self, X):
        with torch.no_grad():
            return self.module(torch.tensor(np.asarray(X, dtype=np.float32)))[:, 0].double().numpy()


def test_permutation_importance_equals_scikit_learns(tmp_path, breast_cancer):
    """171 rows, all explained (fewer than the sample size), so the rows are the file's."""
    section = run_explain(
        tmp_path, breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", "--seed", "7",
    )
    importance = table(section, "importance").set_index("Feature")
    X = breast_cancer.frame[breast_cancer.features].to_numpy(np.float32)
    y = breast_cancer.frame["target"].to_numpy()
    expected = sklearn_permutation_importance(
        _AsClassifier(breast_cancer.module).fit(X, y), X, y, scoring="roc_auc", n_repeats=5, random_state=7,
    )
    ours = importance.loc[breast_cancer.features]
    np.testing.assert_allclose(ours["Permutation importance"], expected.importances_mean, atol=1e-9)
    np.testing.assert_allclose(ours["Permutation SD"], expected.importances_std, atol=1e-9)


def test_permutation_importance_of_a_regression_metric_equals_scikit_learns(tmp_path, diabetes):
    section = run_explain(
        tmp_path, diabetes.folder / "model.pt", diabetes.folder / "test.csv", "-o", "explain.metric=rmse",
        "-o", "explain.repeats=3",
    )
    importance = table(section, "importance").set_index("Feature")
    X = diabetes.frame[diabetes.features].to_numpy(np.float32)
    y = diabetes.frame["target"].to_numpy()
    expected = sklearn_permutation_importance(
        _AsRegressor(diabetes.module).fit(X, y), X, y, scoring="neg_root_mean_squared_error", n_repeats=3,
        random_state=0,
    )
    np.testing.assert_allclose(
        importance.loc[diabetes.features, "Permutation importance"], expected.importances_mean, rtol=1e-6, atol=1e-6,
    )


# --- tasks and input shapes ---------------------------------------------------------------


def test_a_multiclass_model_is_explained_per_predicted_class(tmp_path, wine):
    section = run_explain(tmp_path, wine.folder / "model.pt", wine.folder / "test.csv")
    by_class = table(section, "importance_by_class")
    assert [c.split(" (")[0] for c in by_class.columns[1:]] == sorted(
        ["barolo", "grignolino", "barbera"], key=lambda c: -int((wine.eager_outputs().argmax(1) == ["barolo", "grignolino", "barbera"].index(c)).sum())
    )
    importance = table(section, "importance")
    assert "Value–attribution correlation" not in importance.columns  # a sign means nothing across classes
    tendency = table(section, "tendency_by_class")
    assert list(tendency.columns[1:]) == [c.split(" (")[0] for c in by_class.columns[1:]]
    assert tendency.iloc[:, 1:].abs().max().max() <= 1
    per_class = [c for c in section["charts"] if c["name"].startswith("importance_")]
    assert len(per_class) == 3 and all(c["data"]["legend"] for c in per_class)
    assert "the predicted class's probability" in section["summary"].lower()
    examples = table(section, "examples")
    assert set(examples["Example"]) <= {"confident and right", "confident and wrong"}
    probabilities = wine.eager_outputs()
    for _, row in examples.iterrows():
        assert row["Confidence"] == pytest.approx(probabilities[row["Row"] - 1].max(), abs=1e-6)
        assert row["Explained output (the predicted class's probability)"] == pytest.approx(row["Confidence"], abs=1e-5)


def test_an_image_model_gets_attribution_maps(tmp_path, digits):
    section = run_explain(
        tmp_path, digits.folder / "model.pt", digits.folder / "test.csv", "--input-shape", "1,8,8",
        "-o", "explain.examples=2",
    )
    maps = chart(section, "attribution_maps")
    assert maps["kind"] == "heatmap"
    panels = maps["data"]["panels"]
    assert panels[0]["scale"] == "magnitude" and len(panels) == 11  # overall + one per digit
    assert all(len(p["values"]) == 8 and len(p["values"][0]) == 8 for p in panels)
    examples = chart(section, "example_maps")["data"]["panels"]
    assert [p["scale"] for p in examples[:3]] == ["grey", "signed", "rgb"]
    assert len(examples) % 3 == 0 and len(examples) <= 12
    assert "importance" not in {t["name"] for t in section["tables"]}  # no ranked table of pixels
    assert 0.1 < section["metrics"]["top_tenth_share"]["value"] < 1
    assert "the busiest 10% of its inputs hold" in section["summary"]
    assert examples[1]["title"].startswith(("right: ", "wrong: ")) and examples[2]["title"] == "over the image"
    # the overlay is the image where nothing is attributed, the map's colour where the most is
    image = np.array(examples[0]["values"], dtype=float)
    attr = np.array(examples[1]["values"], dtype=float)
    drawn = np.array(examples[2]["values"], dtype=float)
    quiet, loudest = np.unravel_index(np.argmin(np.abs(attr)), attr.shape), np.unravel_index(
        np.argmax(np.abs(attr)), attr.shape)
    grey = (image - image.min()) / (image.max() - image.min())
    assert drawn[quiet] == pytest.approx([grey[quiet]] * 3, abs=0.02)
    expected = 0.15 * grey[loudest] + 0.85 * np.array([0.835, 0.369, 0.0] if attr[loudest] > 0 else [0.0, 0.447, 0.698])
    assert drawn[loudest] == pytest.approx(expected, abs=1e-6)
    assert any("not computed for image inputs" in n for n in section["notes"])
    assert section["metrics"]["completeness_error_p95"]["value"] <= 0.01
    # the border pixels of the digits are blank (zero) in nearly every image: nothing to attribute
    mean_map = np.array(panels[0]["values"])
    assert mean_map[:, 0].mean() < 0.1 * mean_map[2:6, 2:6].mean()


class RowsAsSequence(torch.nn.Module):
    """A GRU reading an 8x8 digit image row by row: 8 time steps of 8 features."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(8, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x / 16.0)
        return self.head(out[:, -1])


@pytest.fixture(scope="module")
def sequence_model(tmp_path_factory, digits):
    data = datasets.load_digits(as_frame=True)
    train, _ = train_test_split(data.frame, test_size=0.3, random_state=0, stratify=data.frame["target"])
    X = train[digits.features].to_numpy(np.float32).reshape(-1, 8, 8)
    module = fit(RowsAsSequence(), X, train["target"].to_numpy(), torch.nn.functional.cross_entropy, steps=200, lr=0.02)
    folder = tmp_path_factory.mktemp("sequence")
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return module, folder


def test_a_sequence_model_is_explained_per_time_step_and_feature(tmp_path, digits, sequence_model):
    module, folder = sequence_model
    section = run_explain(
        tmp_path, folder / "model.pt", digits.folder / "test.csv", "--input-shape", "8,8", "-o", "explain.repeats=2",
    )
    steps = chart(section, "time_steps")["data"]["series"][0]
    assert steps["x"] == list(range(8)) and len(steps["y"]) == 8
    grid = chart(section, "time_feature_map")["data"]
    assert len(grid["panels"][0]["values"]) == 8 and grid["y_ticks"] == [str(t) for t in range(8)]
    importance = table(section, "importance")
    assert len(importance) == 8  # the 8 features, each summed over its time steps
    # the first pixel of every image row is blank in nearly all digits: the least important feature,
    # numbered (its columns pixel_t_0 carry no t{step}_{name} pattern), never named after step 0's column
    assert importance["Feature"].iloc[-1] == "feature 0"
    # a feature is shuffled across all its time steps at once: check against scikit-learn, which
    # shuffles one column, by giving it one column per feature holding the row index
    X = digits.frame[digits.features].to_numpy(np.float32)
    y = digits.frame["target"].to_numpy()

    class ByRowIndex(ClassifierMixin, BaseEstimator):
        def fit(self, index, y):
            self.classes_ = np.arange(10)
            return self

        def predict(self, index):
            index = np.asarray(index, dtype=np.int64)
            rows = np.stack([X[index[:, f]].reshape(-1, 8, 8)[:, :, f] for f in range(8)], axis=2)
            with torch.no_grad():
                return module(torch.tensor(rows)).argmax(1).numpy()

    index = np.repeat(np.arange(len(X))[:, None], 8, axis=1)
    expected = sklearn_permutation_importance(
        ByRowIndex().fit(index, y), index, y, scoring="accuracy", n_repeats=2, random_state=0
    )
    ours = importance.set_index("Feature").loc[[f"feature {f}" for f in range(8)], "Permutation importance"]
    np.testing.assert_allclose(ours, expected.importances_mean, atol=1e-9)


# --- models that cannot be explained the usual way ----------------------------------------


class Bucketed(torch.nn.Module):
    """The first feature is cut into integer buckets for an embedding (no gradient through it)."""

    def __init__(self, X: np.ndarray, edges: torch.Tensor) -> None:
        super().__init__()
        n_features = X.shape[1]
        self.register_buffer("edges", edges)
        self.register_buffer("mean", torch.tensor(X[:, 1:].mean(axis=0), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(X[:, 1:].std(axis=0), dtype=torch.float32))
        self.embedding = torch.nn.Embedding(edges.numel() + 1, 4)
        self.rest = torch.nn.Linear(n_features - 1, 4)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bucket = torch.bucketize(x[:, 0].contiguous(), self.edges)
        rest = self.rest((x[:, 1:] - self.mean) / self.std)
        return self.head(torch.relu(torch.cat([self.embedding(bucket), rest], dim=1)))


def test_a_model_without_a_gradient_is_explained_by_feature_ablation(tmp_path, known_signal):
    _, test, features, folder = known_signal
    X = test[features].to_numpy(np.float32)
    edges = torch.tensor(np.quantile(X[:, 0], [0.2, 0.4, 0.6, 0.8]), dtype=torch.float32)
    module = fit(Bucketed(X, edges), X, test["malignant"].to_numpy(np.float32)[:, None],
                 torch.nn.functional.binary_cross_entropy_with_logits)
    torch.jit.save(torch.jit.script(module), str(tmp_path / "bucketed.pt"))
    section = run_explain(tmp_path, tmp_path / "bucketed.pt", folder / "test.csv", "--target", "malignant")
    fallback = [f for f in section["findings"] if f["code"] == "perturbation-fallback"]
    assert len(fallback) == 1 and "'worst_concave_points'" in fallback[0]["message"]
    assert any(n.startswith("Feature Ablation:") for n in section["notes"])
    importance = table(section, "importance").set_index("Feature")
    assert importance.loc["worst_concave_points", "Rank"] <= 3  # credited, not silently zero
    # Feature Ablation by hand: the output change when one feature takes the baseline's value
    found = attribution.attribute(
        module, X[:5], np.ones(5, dtype=np.int64), X.mean(axis=0, keepdims=True), task=BINARY,
        input_shape=None, device=CPU, settings=Settings(method="feature_ablation"),
    )
    with torch.no_grad():
        p = torch.sigmoid(module(torch.tensor(X[:5])))[:, 0]
        ablated = torch.tensor(X[:5]).clone()
        ablated[:, 0] = float(X[:, 0].mean())
        expected = p - torch.sigmoid(module(ablated))[:, 0]
    np.testing.assert_allclose(found.values[:, 0], expected.double().numpy(), atol=1e-6)


def test_deeplift_is_refused_inside_a_compiled_model(tmp_path, breast_cancer):
    section = run_explain(
        tmp_path, breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", "-o", "explain.method=deeplift",
    )
    assert "method-fallback" in [f["code"] for f in section["findings"]]
    assert any(n.startswith("Integrated Gradients:") for n in section["notes"])


def test_deeplift_runs_on_an_eager_model_and_is_complete(tmp_path, breast_cancer):
    section = run_explain(
        tmp_path, breast_cancer.folder / "weights.pt", breast_cancer.folder / "test.csv",
        "--model-class", "tiny_nets:BreastCancerMLP", "-o", "explain.method=deeplift",
    )
    assert any(n.startswith("DeepLift:") for n in section["notes"])
    assert section["metrics"]["completeness_error_max"]["value"] < 1e-4


def test_an_exported_program_is_explained_like_the_torchscript_model(tmp_path, breast_cancer):
    scripted = run_explain(tmp_path / "a", breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv")
    exported = run_explain(tmp_path / "b", breast_cancer.folder / "exported.pt2", breast_cancer.folder / "test.csv")
    a = table(scripted, "importance").set_index("Feature")
    b = table(exported, "importance").set_index("Feature").loc[a.index]
    np.testing.assert_allclose(b["Mean |attribution|"], a["Mean |attribution|"], rtol=1e-4, atol=1e-7)


def test_an_exported_program_with_a_fixed_batch_size_runs_in_chunks_of_it(tmp_path, breast_cancer):
    """Exported for batches of exactly 4 rows: inference, attributions and permutations run it
    in chunks of 4 (the last padded), and every figure equals the TorchScript model's."""
    scripted = run_explain(tmp_path / "a", breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv")
    fixed = run_explain(tmp_path / "b", breast_cancer.folder / "exported_fixed_batch.pt2", breast_cancer.folder / "test.csv")
    a = table(scripted, "importance").set_index("Feature")
    b = table(fixed, "importance").set_index("Feature").loc[a.index]
    np.testing.assert_allclose(b["Mean |attribution|"], a["Mean |attribution|"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(b["Permutation importance"], a["Permutation importance"], atol=1e-9)
    assert "batch-dependent" not in [f["code"] for f in fixed["findings"]]


class IgnoresSomeInputs(torch.nn.Module):
    """Multiplies the last five features by zero before the network, like the border pixels an
    unpadded CNN never reaches: their gradient is zero because they do not matter."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("mask", torch.cat([torch.ones(25), torch.zeros(5)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x * self.mask + self.inner.mean * (1 - self.mask))


def test_inputs_the_model_ignores_get_zero_and_keep_integrated_gradients(tmp_path, breast_cancer):
    torch.jit.save(torch.jit.script(IgnoresSomeInputs(breast_cancer.module)), str(tmp_path / "ignores.pt"))
    section = run_explain(tmp_path, tmp_path / "ignores.pt", breast_cancer.folder / "test.csv")
    assert "perturbation-fallback" not in [f["code"] for f in section["findings"]]
    assert any(n.startswith("Integrated Gradients:") for n in section["notes"])
    importance = table(section, "importance").set_index("Feature")
    assert (importance.loc[breast_cancer.features[-5:], "Mean |attribution|"] == 0).all()


class DropoutLeftOn(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.dropout = torch.nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.dropout(x))


def test_a_model_random_at_inference_is_flagged(tmp_path, breast_cancer):
    """Traced in training mode, dropout stays on after eval(): outputs change pass to pass."""
    model = DropoutLeftOn(breast_cancer.module).train()
    traced = torch.jit.trace(model, torch.zeros(2, 30), check_trace=False)
    torch.jit.save(traced, str(tmp_path / "random.pt"))
    section = run_explain(tmp_path, tmp_path / "random.pt", breast_cancer.folder / "test.csv")
    codes = [f["code"] for f in section["findings"]]
    assert "random-at-inference" in codes and section["status"] == "warn"
    assert section["metrics"]["repeat_difference"]["value"] > 1e-3


class BatchCentred(torch.nn.Module):
    """Centres each feature on the batch's mean: a row's output depends on the other rows."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x - x.mean(dim=0, keepdim=True) + self.inner.mean)


def test_a_batch_dependent_model_is_flagged(tmp_path, breast_cancer):
    torch.jit.save(torch.jit.script(BatchCentred(breast_cancer.module)), str(tmp_path / "batch.pt"))
    data = pd.concat([breast_cancer.frame] * 8, ignore_index=True)  # a sample smaller than the data
    data.to_csv(tmp_path / "more.csv", index=False)
    section = run_explain(tmp_path, tmp_path / "batch.pt", tmp_path / "more.csv", "-o", "explain.samples=200")
    assert "batch-dependent" in [f["code"] for f in section["findings"]]
    assert section["metrics"]["repeat_difference"]["value"] == 0


class Stepped(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(self.inner(x))


def test_a_step_function_falls_back_to_feature_ablation(tmp_path, breast_cancer):
    torch.jit.save(torch.jit.script(Stepped(breast_cancer.module)), str(tmp_path / "step.pt"))
    section = run_explain(tmp_path, tmp_path / "step.pt", breast_cancer.folder / "test.csv")
    fallback = [f for f in section["findings"] if f["code"] == "perturbation-fallback"]
    assert fallback and "zero at every probed row" in fallback[0]["message"]


# --- what the report says -----------------------------------------------------------------


def test_without_a_target_the_examples_are_the_most_and_least_confident(breast_cancer):
    """A context without a target (a plugin author's, say): no permutation importance, and
    the examples are the model's most and least confident rows."""
    from auditor.run.pipeline import RunConfig, execute
    from auditor.testing import check_audit
    from auditor_plugins.explain.audit import ExplainAudit

    ctx = execute(
        RunConfig(model=breast_cancer.folder / "model.pt", data=breast_cancer.folder / "test.csv", audits=["explain"]),
        {"explain": ExplainAudit()},
    ).context
    ctx.data.y = None
    result = check_audit(ExplainAudit(), ctx).to_dict()
    examples = table(result, "examples")
    assert list(examples["Example"]) == ["most confident"] * 3 + ["least confident"] * 3
    assert examples["Actual"].isna().all()
    assert any("needs a target" in n for n in result["notes"])
    assert "agreement" not in result["metrics"]
    logits = breast_cancer.eager_outputs()[:, 0]
    least = examples["Row"].to_numpy()[3:] - 1
    assert np.abs(logits[least]).max() <= np.sort(np.abs(logits))[2] + 1e-5


def test_the_examples_show_the_rows_top_features_with_their_values(tmp_path, breast_cancer):
    from scipy.special import expit

    section = run_explain(tmp_path, breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv")
    examples = table(section, "examples")
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    confidence = np.maximum(p, 1 - p)
    y = breast_cancer.frame["target"].to_numpy()
    right = (p > 0.5) == y
    for kind, group in examples.groupby("Example"):
        rows = group["Row"].to_numpy() - 1
        pool = right if kind == "confident and right" else ~right
        assert pool[rows].all()
        others = np.setdiff1d(np.nonzero(pool)[0], rows)
        assert confidence[rows].min() >= confidence[others].max() - 1e-9  # the most confident of their kind
    first = examples.iloc[0]
    feature = first["Top features (value: attribution)"].split(" = ")[0]
    assert feature in breast_cancer.features
    value = breast_cancer.frame.loc[first["Row"] - 1, feature]
    assert f"{feature} = {float(np.float32(value)):.4g}" in first["Top features (value: attribution)"]


def test_a_sensitive_feature_among_the_top_ones_is_flagged(tmp_path, known_signal):
    _, _, features, folder = known_signal
    section = run_explain(
        tmp_path, folder / "model.pt", folder / "test.csv", "--target", "malignant", "--sensitive", "worst_radius",
        "--features", ",".join(features),
    )
    flagged = [f for f in section["findings"] if f["code"] == "sensitive-feature-drives"]
    assert len(flagged) == 1 and "'worst_radius'" in flagged[0]["message"]


def test_the_audit_is_repeatable_under_a_seed(tmp_path, wine):
    a = run_explain(tmp_path / "a", wine.folder / "model.pt", wine.folder / "test.csv", "-o", "explain.method=gradient_shap")
    b = run_explain(tmp_path / "b", wine.folder / "model.pt", wine.folder / "test.csv", "-o", "explain.method=gradient_shap")
    assert a == b


@pytest.mark.parametrize("option, message", [
    ("explain.method=shap", "must be one of integrated_gradients"),
    ("explain.baseline=median", "must be one of auto, zeros, mean, sample"),
    ("explain.samples=3", "must be >= 10"),
    ("explain.metric=auc", "must be one of"),
])
def test_bad_options_are_usage_errors(tmp_path, breast_cancer, option, message):
    from cli_helpers import assert_clean_input_error

    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--out", tmp_path / "out", "-o", option)
    assert_clean_input_error(result, message)
    assert not (tmp_path / "out").exists()


# --- the pieces ---------------------------------------------------------------------------


def test_a_metric_of_another_task_skips_permutation_importance_with_a_warning(tmp_path, breast_cancer):
    section = run_explain(
        tmp_path, breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", "-o", "explain.metric=rmse",
    )
    assert [f["code"] for f in section["findings"]] == ["metric-not-applicable"]
    assert "ROC-AUC" in section["findings"][0]["message"] and "agreement" not in section["metrics"]


def test_the_stratified_sample_keeps_class_shares_and_every_class():
    y = np.repeat([0, 1, 2], [900, 95, 5])
    rows = stratified_sample(y, 100, seed=4)
    assert rows.size == 100 and np.all(np.diff(rows) > 0)
    assert np.bincount(y[rows]).tolist() == [90, 9, 1]
    assert np.array_equal(rows, stratified_sample(y, 100, seed=4))
    assert not np.array_equal(rows, stratified_sample(y, 100, seed=5))
    assert allocate(np.array([990, 5, 5]), 10).tolist() == [8, 1, 1]
    assert np.array_equal(stratified_sample(y, 5000, seed=0), np.arange(1000))
    assert np.bincount(deciles(np.arange(50.0))).tolist() == [5] * 10


def test_roc_auc_of_each_permuted_copy_equals_scikit_learns():
    from sklearn.metrics import roc_auc_score

    from auditor_plugins.explain.permutation import block_roc_auc

    rng = np.random.default_rng(0)
    for k in (2, 4):
        y = rng.integers(0, k, 7 * 300)
        p = rng.dirichlet(np.ones(k), y.size).round(2)  # rounded: many ties
        p /= p.sum(axis=1, keepdims=True)
        ours = block_roc_auc(y, p, 7)
        for b in range(7):
            rows = slice(b * 300, (b + 1) * 300)
            expected = roc_auc_score(y[rows], p[rows, 1]) if k == 2 else roc_auc_score(y[rows], p[rows], multi_class="ovr")
            assert ours[b] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(block_roc_auc(np.zeros(10, dtype=np.int64), np.full((10, 2), 0.5), 2)).all()


def test_spearman_equals_scipys_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 4, 12).astype(float), rng.normal(size=12)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(np.ones(5), np.arange(5.0)) is None


def test_importance_of_a_sequence_feature_sums_its_time_steps():
    rng = np.random.default_rng(0)
    values, X = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))
    found = importance(values, X, [[0, 2, 4], [1, 3, 5]])  # 3 time steps of 2 features
    np.testing.assert_allclose(found.mean_abs, [np.abs(values[:, [0, 2, 4]]).sum(1).mean(), np.abs(values[:, [1, 3, 5]]).sum(1).mean()])
    np.testing.assert_allclose(found.share.sum(), 1.0)
    np.testing.assert_allclose(found.tendency[0], np.corrcoef(X[:, [0, 2, 4]].ravel(), values[:, [0, 2, 4]].ravel())[0, 1])


def test_large_maps_are_block_averaged_for_the_report():
    grid = np.arange(100 * 70, dtype=np.float64).reshape(100, 70)
    small = downsample(grid, side=50)
    assert small.shape == (50, 35)
    assert small[0, 0] == grid[:2, :2].mean()


# ---- importing captum -------------------------------------------------------------------------


def _python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_captum_is_imported_without_its_plotting_helpers_and_they_still_work_when_used():
    """The audit's captum is captum's own classes; matplotlib.pyplot and IPython (0.6 s of the
    import) wait until something uses captum's visualization, which then works in full."""
    out = _python(
        "import sys\n"
        "from auditor_plugins.explain.captum_attr import attr\n"
        "import captum.attr\n"
        "assert attr is captum.attr and attr.IntegratedGradients.__module__ == 'captum.attr._core.integrated_gradients'\n"
        "print('pyplot' , 'matplotlib.pyplot' in sys.modules, 'IPython' in sys.modules)\n"
        "from captum.attr import visualization\n"
        "print('enum', visualization.ImageVisualizationMethod.heat_map.name)\n"
        "from captum.attr._utils import interpretable_input as ii\n"
        "print('pyplot', 'matplotlib.pyplot' in sys.modules, callable(ii.draw_mask_border))\n"
    )
    assert out.splitlines() == ["pyplot False False", "enum heat_map", "pyplot True True"]


def test_a_captum_layout_the_deferral_does_not_know_falls_back_to_the_usual_import():
    """If captum needed more than functions from its visualization module while importing,
    the stand-in is dropped with what the attempt left, and captum imports as usual."""
    out = _python(
        "import sys\n"
        "from auditor_plugins.explain import captum_attr as c\n"
        "for name in [n for n in sys.modules if n == 'captum' or n.startswith('captum.')]:\n"
        "    del sys.modules[name]\n"
        "def refuse(stand_in, name):\n"
        "    raise ImportError('needs ' + name)\n"
        "c._on_first_call = refuse\n"
        "attr = c._import()\n"
        "print(type(sys.modules[c.VISUALIZATION]).__name__, attr.IntegratedGradients.__name__)\n"
    )
    assert out.split() == ["module", "IntegratedGradients"]


# ---- text models: token ids, explained by occlusion --------------------------------------------


def test_a_text_model_is_explained_by_the_tokens_that_carry_its_sentiment(reviews, tmp_path):
    """The reviews' labels are set by one sentiment word each: those ten words must lead the
    token ranking with the right sign, the filler words must carry next to nothing, and padding
    a text's top tokens must move the output far more than padding random ones."""
    root, frame, model = reviews
    result = invoke(root / "model.pt", "--data", root / "reviews.csv", "--tokenizer", root / "tokenizer.json",
                    "--audits", "explain", "--out", tmp_path / "out", "--format", "json,html", "-q")
    assert result.exit_code == 0, result.stderr
    explain = read_report(tmp_path / "out")["audits"]["explain"]
    assert explain["status"] == "pass", explain["findings"]
    table = next(t for t in explain["tables"] if t["name"] == "token_importance")
    column = {name: i for i, name in enumerate(table["columns"])}
    ranked = {row[column["Token"]]: row for row in table["rows"]}
    good, bad = {"great", "moving", "brilliant", "funny", "superb"}, {"dull", "boring", "awful", "slow", "weak"}
    assert {row[column["Token"]] for row in table["rows"][:10]} == good | bad
    assert all(ranked[w][column["Mean attribution"]] > 0.2 for w in good)
    assert all(ranked[w][column["Mean attribution"]] < -0.2 for w in bad)
    assert all(abs(ranked[w][column["Mean attribution"]]) < 0.02 for w in ("the", "film", "plot", "was"))
    metrics = {k: v["value"] for k, v in explain["metrics"].items()}
    assert metrics["deletion_drop_top"] > 0.2 > 0.1 > metrics["deletion_drop_random"]
    assert metrics["repeat_difference"] == 0.0
    assert "'great'" in explain["summary"] or "'superb'" in explain["summary"]
    chart = next(c for c in explain["charts"] if c["kind"] == "tokens")
    assert chart["data"]["examples"] and "[PAD]" not in chart["data"]["examples"][0]["tokens"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'class="token"' in page and "Individual explanations: each token shaded" in page


def test_each_token_attribution_is_the_output_change_when_that_token_is_padded(reviews, tmp_path):
    """Independent of captum: every shown token's value equals P(1) of the tokenizers library's
    own encoding of the text minus P(1) with that one token replaced by the padding id."""
    from tokenizers import Tokenizer

    root, frame, model = reviews
    result = invoke(root / "model.pt", "--data", root / "reviews.csv", "--tokenizer", root / "tokenizer.json",
                    "--audits", "explain", "-o", "explain.examples=2", "--out", tmp_path / "out",
                    "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    chart = next(c for c in read_report(tmp_path / "out")["audits"]["explain"]["charts"] if c["kind"] == "tokens")
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    pad = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=pad, length=16)
    tokenizer.enable_truncation(16)
    checked = 0
    for example in chart["data"]["examples"]:
        row = int(example["title"].rsplit("row ", 1)[1]) - 1
        ids = torch.tensor([tokenizer.encode(frame["review"][row]).ids])
        with torch.no_grad():
            whole = torch.softmax(model(ids), 1)[0, 1].item()
            words = [j for j in range(16) if ids[0, j] != pad]
            assert example["tokens"] == [tokenizer.id_to_token(int(ids[0, j])) for j in words]
            for j, value in zip(words, example["values"]):
                padded = ids.clone()
                padded[0, j] = pad
                assert value == pytest.approx(whole - torch.softmax(model(padded), 1)[0, 1].item(), abs=1e-5)
                checked += 1
    assert checked >= 8


def test_highlighted_text_escapes_its_tokens_and_refuses_malformed_data():
    from auditor.report.charts import render_chart
    from auditor.report.charts.base import ChartDataError
    from auditor.report.charts.tokens import draw_tokens

    chart = {"kind": "tokens", "name": "t", "title": "Tokens",
             "data": {"examples": [{"title": "row 1", "tokens": ["<script>alert(1)</script>", "&", "fine"],
                                    "values": [0.5, -0.25, None]}], "value_label": "attribution"}}
    svg = str(render_chart(chart, "c1"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp;" in svg
    assert svg.count('class="token"') == 3
    for bad in ({}, {"examples": []}, {"examples": [{"tokens": ["a"], "values": []}]},
                {"examples": [{"tokens": ["a"], "values": ["x"]}]}):
        with pytest.raises(ChartDataError):
            draw_tokens(bad)
