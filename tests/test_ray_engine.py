"""``--engine ray``: the pass in Ray Data actors gives the report of the stream engine.

A local Ray instance of 2 CPUs is started once for the module (the driver is this process, as
it is the ``audit`` command's). report.json from Ray equals the stream engine's outside ``run``
and ``measurements`` on real fixtures, with slices many and few; bad rows, CSV input, a hostile
model and a config that names a cluster are refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from auditor.contain import available
from auditor.contract.errors import UsageError
from auditor.loading.bundled import demo_files
from auditor.report.view import run_facts
from auditor.run.config import engine_of, refuse_untrusted
from auditor.run.pipeline import RAY_ENERGY
from auditor.run.ray_engine import PassRequest, slices
from tests.cli_helpers import assert_clean_input_error, invoke, read_report
from tests.test_containment import _scripted_saver

ray = pytest.importorskip("ray", reason="--engine ray needs Ray Data: pip install 'auditor[ray]'")

OPTIONS = ("--format", "json", "-q", "--seed", "3", "--fail-on", "never", "--batch-size", "512",
           "-o", "metrics.n_resamples=200", "-o", "explain.samples=200")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "test.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(demo_files().data)), path, row_group_size=1000)
    return path


def _audit(model: Path, data: Path, out: Path, *extra: str) -> dict:
    result = invoke(model, "--data", data, "--out", out, *OPTIONS, *extra)
    assert result.exit_code == 0, result.stderr
    return read_report(out)


def _outside_run(report: dict) -> str:
    report = json.loads(json.dumps(report))
    report.pop("run")
    report.pop("measurements")
    return json.dumps(report, sort_keys=True)


def test_the_demo_on_ray_gives_the_stream_engines_report_outside_run_and_measurements(demo_parquet, tmp_path):
    demo = demo_files()
    extra = ("--history", str(demo.history), "--train-data", str(demo.train_data), "--memory-budget", "6MiB")
    stream = _audit(demo.model, demo_parquet, tmp_path / "stream", *extra)
    on_ray = _audit(demo.model, demo_parquet, tmp_path / "ray", *extra, "--engine", "ray")
    assert _outside_run(on_ray) == _outside_run(stream)
    engine = on_ray["run"]["engine"]
    assert engine["name"] == "ray" and stream["run"]["engine"]["name"] == "stream"
    assert engine["data"]["rows"] == 15060
    assert engine["data"]["chunks"] >= 7
    assert engine["ray"]["workers"] >= 1 and engine["ray"]["gpus_per_worker"] == 0
    carbon = on_ray["measurements"]["carbon"]["findings"]
    assert [f["message"] for f in carbon if f["code"] == "phase-not-metered"] == [RAY_ENERGY]  # not the workers'
    assert not any(f["code"] == "phase-not-metered" for f in stream["measurements"]["carbon"]["findings"])
    assert dict(run_facts(on_ray))["Engine"].startswith(
        "Ray (2 worker(s), the Ray instance this process was already connected to); the model ran in Ray")


def test_over_budget_ray_keeps_the_same_seeded_sample_of_features(tmp_path, wine):
    frame = pd.concat([wine.frame] * 500, ignore_index=True)  # 44,500 rows
    data = tmp_path / "wine.parquet"
    pq.write_table(pa.Table.from_pandas(frame), data, row_group_size=700)
    only = ("--audits", "metrics,explain")  # the audit that reads the features kept, and one that reads outputs
    stream = _audit(wine.folder / "model.pt", data, tmp_path / "stream", "--memory-budget", "5MiB", *only)
    on_ray = _audit(wine.folder / "model.pt", data, tmp_path / "ray", "--memory-budget", "5MiB", "--engine", "ray", *only)
    facts = on_ray["run"]["engine"]["data"]
    assert facts["features_sampled"] is True and facts["chunks"] >= 7
    assert facts["feature_rows"] == stream["run"]["engine"]["data"]["feature_rows"]
    assert _outside_run(on_ray) == _outside_run(stream)


def test_slices_are_whole_batches_and_cover_every_row_once(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"x": np.arange(10_007, dtype=np.float32)}), path, row_group_size=3000)
    handle = pq.ParquetFile(path)
    for rows_per_chunk, batch in ((1000, 256), (100_000, 512), (700, 700), (5, 1)):
        parts = slices(handle, rows_per_chunk, batch)
        assert parts[0][0] == 0 and parts[-1][1] == 10_007
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert all(start % batch == 0 for start, _ in parts), (rows_per_chunk, batch)


def test_a_nan_in_a_slice_is_one_line_naming_its_rows_and_nothing_is_written(demo_parquet, tmp_path):
    table = pq.read_table(demo_parquet)
    age = table.column("age").to_numpy().astype(np.float64)
    age[10_500] = np.nan
    bad = tmp_path / "nan.parquet"
    pq.write_table(table.set_column(table.column_names.index("age"), "age", pa.array(age)), bad, row_group_size=1000)
    out = tmp_path / "out"
    result = invoke(demo_files().model, "--data", bad, "--out", out, "--engine", "ray", "-q", "--memory-budget", "6MiB")
    assert_clean_input_error(result, "'age'", "first at data row 10501")
    assert not out.exists()


def test_csv_is_refused_with_how_to_convert_it(tmp_path):
    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--out", tmp_path / "out", "--engine", "ray", "-q")
    assert_clean_input_error(result, "--engine ray reads Parquet files", "--engine stream")


@pytest.mark.skipif(not available().enforced, reason="needs Landlock and seccomp (Linux)")
def test_a_model_that_writes_a_file_is_confined_inside_the_ray_worker_too(breast_cancer, tmp_path):
    marker = tmp_path / "written-by-the-model.pt"
    model = tmp_path / "model.pt"
    torch.jit.save(_scripted_saver(str(marker)), str(model))
    data = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(breast_cancer.frame), data)
    result = invoke(model, "--data", data, "--audits", "metrics", "--out", tmp_path / "out", "-q", "--engine", "ray")
    assert not marker.exists(), result.stderr  # torch.save in TorchScript ignores the refusal: nothing written
    assert result.exit_code in (0, 2), result.stderr


def test_a_config_file_may_not_send_the_data_to_a_cluster_on_its_own(tmp_path):
    settings = {"ray_address": "ray://elsewhere:10001"}
    with pytest.raises(UsageError, match="sends the data and the model"):
        refuse_untrusted(settings, {}, tmp_path)
    refuse_untrusted(settings, {"ray_address": "ray://elsewhere:10001"}, tmp_path)  # the user's own flag
    refuse_untrusted(settings, {}, tmp_path, trust=True)
    assert engine_of(None) == "stream"
    with pytest.raises(UsageError, match="engine must be one of stream, ray"):
        engine_of("spark")


def test_a_model_object_is_not_sent_to_ray(breast_cancer):
    import auditor

    with pytest.raises(UsageError, match="--engine ray runs a model file"):
        auditor.audit(breast_cancer.module, breast_cancer.frame, target="target", engine="ray", audits=["metrics"])


def test_the_driver_checks_what_the_run_asks_for():
    good = {"target": "y", "features": ["a"], "sensitive": [], "named": {}, "batch_size": None,
            "default_batch": 512, "input_shape": None, "device": "cpu"}
    assert PassRequest.of(good).features == ["a"]
    for bad in ({"features": "a"}, {"batch_size": -1}, {"named": {"a": 1}}, {"input_shape": [1] * 40},
                {"target": None}):
        with pytest.raises((ValueError, TypeError)):
            PassRequest.of({**good, **bad})


def test_a_model_process_that_dies_mid_pass_ends_the_run_with_exit_3(demo_parquet, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "dying.py").write_text(
        "import os\nimport torch\n\n\n"
        "class Dies(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.net = torch.nn.Linear(30, 1)\n\n"
        "    def forward(self, x):\n        if x.shape[0] < 300:\n            os._exit(9)\n        return self.net(x)\n"
    )
    import sys

    sys.path.insert(0, str(code))
    try:
        import dying

        torch.save(dying.Dies(), tmp_path / "model.pt")
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("dying", None)
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(1300, 30)).astype(np.float32),
                         columns=[f"f{i}" for i in range(30)])
    frame["target"] = np.arange(1300) % 2
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame), data)  # its last batch (rows 1,025-1,300) kills the process
    out = tmp_path / "out"
    result = invoke(tmp_path / "model.pt", "--data", data, "--out", out, "--engine", "ray", "-q", "--trust-model",
                    "--model-path", code, "--batch-size", "512", "--audits", "metrics")
    assert result.exit_code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "ended while scoring data rows 1 to 1,300 without an answer" in lines[0], lines[0]
    assert not out.exists()


def test_an_image_folder_is_refused_before_this_process_opens_an_image(tmp_path):
    from PIL import Image

    (tmp_path / "images" / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "0" / "a.png")
    result = invoke(demo_files().model, "--data", tmp_path / "images", "--out", tmp_path / "out", "--engine", "ray", "-q")
    assert_clean_input_error(result, "--engine ray reads Parquet files", "--engine stream")


@pytest.mark.skipif(not available().enforced, reason="needs Landlock and seccomp (Linux)")
def test_a_model_that_never_returns_is_stopped_by_the_inference_timeout_under_ray(breast_cancer, tmp_path):
    import time

    from tests.test_containment import _looping_script

    data = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(breast_cancer.frame), data)
    started = time.monotonic()
    result = invoke(_looping_script(tmp_path), "--data", data, "--audits", "metrics", "--out", tmp_path / "out", "-q",
                    "--engine", "ray", "--inference-timeout", "3")
    assert time.monotonic() - started < 90
    assert_clean_input_error(result, "within 3 s (--inference-timeout) in a Ray worker")
    assert not (tmp_path / "out").exists()


def test_a_transform_runs_in_every_ray_model_process(breast_cancer, tmp_path):
    """``--transform`` under Ray: each actor's confined model process imports the user's module
    (from ``--model-path``) and applies it to every slice; the report equals the stream
    engine's with the same transform, code section included."""
    frame = breast_cancer.frame.copy()
    frame[breast_cancer.features] = frame[breast_cancer.features] / 2  # the data in other units
    data = tmp_path / "halved.parquet"
    pq.write_table(pa.Table.from_pandas(frame), data, row_group_size=100)
    (tmp_path / "units.py").write_text("def doubled(x):\n    return x * 2\n")
    extra = ("--transform", "units:doubled", "--model-path", str(tmp_path), "--audits", "metrics,calibration")
    stream = _audit(breast_cancer.folder / "model.pt", data, tmp_path / "stream", *extra)
    on_ray = _audit(breast_cancer.folder / "model.pt", data, tmp_path / "ray", "--engine", "ray", *extra)
    assert _outside_run(on_ray) == _outside_run(stream)
    assert [c["spec"] for c in on_ray["code"] if c["option"] == "--transform"] == ["units:doubled"]
    plain = _audit(breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", tmp_path / "plain",
                   "--audits", "metrics")
    assert on_ray["audits"]["metrics"]["metrics"]["accuracy"]["value"] == pytest.approx(
        plain["audits"]["metrics"]["metrics"]["accuracy"]["value"], abs=1e-12)
