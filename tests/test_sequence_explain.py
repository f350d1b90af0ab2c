"""Sequence models (``--input-shape T,F``): a feature is named for what it is, every time step.

What a user saw (issue 17, item 4): with ``--input-shape 8,8`` the summary said the model was
driven by "t0_f2 (23%)": feature 2 summed over all 8 time steps, but named after step 0's
column, and the heatmap's feature axis the same. Here a real LSTM learns a task that only
feature 2 decides (the sum of feature 2 over the steps), so the right answer is known by
construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import invoke, read_report

from auditor_plugins.explain.importance import sequence_features

STEPS, WIDTH, DRIVER = 8, 8, 2


class Recurrent(torch.nn.Module):
    """An LSTM over T steps of F features, classifying from its last state."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(WIDTH, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of T x F standard normal values; the class is whether feature 2's sum over the
    steps is positive: no other feature carries any signal."""
    X = np.random.default_rng(seed).normal(size=(n, STEPS, WIDTH)).astype(np.float32)
    return X, (X[:, :, DRIVER].sum(axis=1) > 0).astype(np.int64)


@pytest.fixture(scope="module")
def lstm(tmp_path_factory):
    torch.manual_seed(0)
    X, y = _task(2000, seed=0)
    module = Recurrent()
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    Xt, yt = torch.tensor(X), torch.tensor(y, dtype=torch.float32)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(module(Xt)[:, 0], yt).backward()
        opt.step()
    module.eval()
    X_test, y_test = _task(400, seed=1)
    with torch.no_grad():
        accuracy = float(((module(torch.tensor(X_test))[:, 0] > 0).numpy() == y_test).mean())
    assert accuracy > 0.85, accuracy  # it learned the task, so feature 2 is what drives it
    folder = tmp_path_factory.mktemp("lstm")
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return folder, X_test, y_test


def _csv(folder, X, y, columns) -> str:
    frame = pd.DataFrame(X.reshape(len(X), -1), columns=columns)
    frame["target"] = y
    path = folder / f"test_{columns[0]}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _explain(tmp_path, model_folder, data):
    out = tmp_path / "out"
    result = invoke(
        model_folder / "model.pt", "--data", data, "--input-shape", f"{STEPS},{WIDTH}", "--audits", "explain",
        "--out", out, "-q", "-o", "explain.samples=200", "-o", "explain.repeats=2",
    )
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return read_report(out)["audits"]["explain"]


def _chart(section, name):
    return next(c for c in section["charts"] if c["name"] == name)


def _table(section, name):
    found = next(t for t in section["tables"] if t["name"] == name)
    return pd.DataFrame(found["rows"], columns=found["columns"])


def test_step_named_columns_name_the_feature_that_drives_an_lstm(tmp_path, lstm):
    folder, X, y = lstm
    columns = [f"t{t}_f{f}" for t in range(STEPS) for f in range(WIDTH)]  # what the user's CSV held
    section = _explain(tmp_path, folder, _csv(tmp_path, X, y, columns))
    assert section["summary"].startswith("P(1) is driven most by f2 (")
    assert "(each feature summed over its time steps)" in section["summary"]
    assert "t0_" not in section["summary"]
    importance = _table(section, "importance")
    assert importance["Feature"].iloc[0] == "f2"
    assert sorted(importance["Feature"]) == [f"f{f}" for f in range(WIDTH)]
    assert importance["Share"].iloc[0] > 0.5  # the only feature with signal
    heatmap = _chart(section, "time_feature_map")["data"]
    assert heatmap["x_label"] == "Feature" and heatmap["x_ticks"] == [f"f{f}" for f in range(WIDTH)]
    assert heatmap["y_label"] == "Time step" and heatmap["y_ticks"] == [str(t) for t in range(STEPS)]
    grid = np.array(heatmap["panels"][0]["values"])
    assert grid.shape == (STEPS, WIDTH)
    assert grid.sum(axis=0).argmax() == DRIVER  # the feature column of the map, not a time step
    assert _chart(section, "importance")["data"]["labels"][0] == "f2"
    assert any("follow the pattern t{step}_{name}" in note for note in section["notes"])
    steps = _table(section, "time_steps")
    assert list(steps["Time step"]) == list(range(STEPS))
    busiest = int(steps["Share"].to_numpy().argmax())
    assert f"time step {busiest} carries the most ({steps['Share'].iloc[busiest]:.0%})" in section["summary"]
    # every individual explanation names features, never one step's column
    for top in _table(section, "examples")["Top features (value: attribution)"]:
        assert "t0_" not in top and top.startswith("f")


def test_columns_without_steps_in_their_names_are_numbered_features_and_say_so(tmp_path, lstm):
    folder, X, y = lstm
    columns = [f"x{j}" for j in range(STEPS * WIDTH)]
    section = _explain(tmp_path, folder, _csv(tmp_path, X, y, columns))
    assert section["summary"].startswith(f"P(1) is driven most by feature {DRIVER} (")
    assert "x2" not in section["summary"]
    heatmap = _chart(section, "time_feature_map")["data"]
    assert heatmap["x_ticks"] == [f"feature {f}" for f in range(WIDTH)]
    assert any(
        "numbered feature 0 to feature 7" in note and "t0_<name>" in note for note in section["notes"]
    )


def test_step_named_columns_in_another_order_than_the_reshape_are_a_warning(tmp_path, lstm):
    folder, X, y = lstm
    # the values step by step, but named feature by feature: the reshape reads them wrongly named
    columns = [f"t{t}_f{f}" for f in range(WIDTH) for t in range(STEPS)]
    section = _explain(tmp_path, folder, _csv(tmp_path, X, y, columns))
    found = [f for f in section["findings"] if f["code"] == "sequence-columns-misordered"]
    assert len(found) == 1 and "column 2 is 't1_f0'" in found[0]["message"]
    assert section["status"] == "warn"


@pytest.mark.parametrize(
    "columns, names",
    [
        ([f"t{t}_{n}" for t in range(3) for n in ("speed", "heat")], ["speed", "heat"]),
        ([f"{n}_step{t}" for t in range(3) for n in ("speed", "heat")], ["speed", "heat"]),
        ([f"pixel_{t}_{f}" for t in range(3) for f in range(2)], ["feature 0", "feature 1"]),
        ([f"t{t + 1}_{n}" for t in range(3) for n in ("a", "b")], ["feature 0", "feature 1"]),  # steps from 1
        ([f"t{t}_{n}" for t in range(3) for n in ("a", "a")], ["feature 0", "feature 1"]),  # one name twice
    ],
)
def test_sequence_feature_names_come_only_from_an_unambiguous_pattern(columns, names):
    found = sequence_features(columns, 3, 2)
    assert found.names == names
    assert found.groups == [[0, 2, 4], [1, 3, 5]]


def _y_ticks(svg) -> list[float]:
    """The y axis's tick labels of a rendered curve (right-anchored text left of the plot)."""
    import re

    return [float(t.replace(",", "")) for t in re.findall(r'text-anchor="end"[^>]*>([-0-9.,]+)</text>', str(svg))]


def test_the_time_step_chart_starts_its_axis_at_zero(tmp_path, lstm):
    """Issue 17: the time-step chart's y axis started at 0.10, which made a step 10% above another
    look twice as important."""
    from auditor.report.charts import render_chart

    folder, X, y = lstm
    columns = [f"t{t}_f{f}" for t in range(STEPS) for f in range(WIDTH)]
    section = _explain(tmp_path, folder, _csv(tmp_path, X, y, columns))
    steps = _chart(section, "time_steps")
    assert steps["data"]["y_from_zero"] is True
    assert min(_y_ticks(render_chart(steps, "c1"))) == 0
    # a curve of values far from zero, not declared a magnitude, keeps its zoomed axis
    loss = {"name": "c", "title": "T", "kind": "curve", "data": {
        "x_label": "Epoch", "y_label": "Loss", "diagonal": False,
        "series": [{"name": "train", "x": [1, 2, 3], "y": [0.52, 0.51, 0.5]}]}}
    assert min(_y_ticks(render_chart(loss, "c2"))) >= 0.4


def test_sequences_in_an_array_file_get_the_time_step_and_feature_views_without_an_input_shape(tmp_path, lstm):
    """An ``.npz`` of X [N, T, F] carries its shape: the same LSTM is explained per time step and
    per feature, and feature 2 (position 2 of the last axis) is found to drive it."""
    folder, X, y = lstm
    np.savez(tmp_path / "test.npz", X=X, y=y)
    result = invoke(folder / "model.pt", "--data", tmp_path / "test.npz", "--audits", "explain", "--out",
                    tmp_path / "out", "-q", "-o", "explain.samples=200", "-o", "explain.repeats=2")
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    section = read_report(tmp_path / "out")["audits"]["explain"]
    assert {"time_steps", "time_feature_map"} <= {c["name"] for c in section["charts"]}
    importance = _table(section, "importance")
    assert importance["Feature"].iloc[0] == "f2" and importance["Share"].iloc[0] > 0.5
    heatmap = _chart(section, "time_feature_map")["data"]["panels"][0]["values"]
    assert len(heatmap) == STEPS and len(heatmap[0]) == WIDTH
