"""The demo's fairness figures equal a pandas groupby over the real model's own predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import invoke, read_report

from auditor.loading.bundled import demo_files


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert invoke("demo", "-q", "--format", "json", "--out", out).exit_code == 0
    demo_set = demo_files()
    model_path, data_path = demo_set.model, demo_set.data
    extra = {"auditor.json": ""}
    model = torch.jit.load(str(model_path), _extra_files=extra)
    features = json.loads(extra["auditor.json"])["feature_names"]
    frame = pd.read_csv(data_path)
    with torch.no_grad():
        logits = model(torch.tensor(frame[features].to_numpy(np.float32)))[:, 0].numpy()
    frame["y"] = (frame["income"] == ">50K").astype(int)
    frame["pred"] = (logits > 0).astype(int)
    return read_report(out), frame


def expected_rates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    grouped = frame.groupby(column)
    return pd.DataFrame({
        "count": grouped.size(),
        "selection rate": grouped["pred"].mean(),
        "TPR": frame[frame.y == 1].groupby(column)["pred"].mean(),
        "FPR": frame[frame.y == 0].groupby(column)["pred"].mean(),
        "accuracy": grouped.apply(lambda g: (g.pred == g.y).mean(), include_groups=False),
    })


@pytest.mark.parametrize("column", ["sex", "race"])
def test_per_group_rates_equal_pandas(demo, column):
    report, frame = demo
    table = next(t for t in report["audits"]["fairness"]["tables"] if t["name"] == f"groups_{column}")
    ours = {row[0]: dict(zip(table["columns"], row)) for row in table["rows"]}
    expected = expected_rates(frame, column)
    assert set(ours) == set(expected.index)
    for group, row in expected.iterrows():
        assert ours[group]["count"] == row["count"]
        for rate in ("selection rate", "TPR", "FPR", "accuracy"):
            assert ours[group][rate] == pytest.approx(row[rate], abs=1e-12), (group, rate)


def test_demographic_parity_by_sex_equals_the_hand_formula(demo):
    report, frame = demo
    rates = frame.groupby("sex")["pred"].mean()
    metrics = report["audits"]["fairness"]["metrics"]
    assert metrics["sex.demographic_parity_difference"]["value"] == pytest.approx(rates.max() - rates.min(), abs=1e-12)
    assert metrics["sex.demographic_parity_ratio"]["value"] == pytest.approx(rates.min() / rates.max(), abs=1e-12)
