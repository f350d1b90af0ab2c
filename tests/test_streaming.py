"""The streaming pass: a file read in many chunks gives the figures of the file read at once.

Every audit's figures with a memory budget so small that the data arrive in many chunks equal
those of one chunk; the outputs are the same bits; the features kept over budget are a seeded
sample that does not depend on the chunking; a CSV column whose type a later block widens is
read as the one-shot reader reads it; and a file that changes, a Parquet file corrupt halfway
or a budget too small for one batch is one line and exit 2.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from auditor.contract.errors import DataError
from auditor.loading.bundled import demo_files
from auditor.loading.chunks import ChunkReader
from auditor.loading.columns import plan_read
from auditor.loading.data import load_data
from auditor.report.view import run_facts
from auditor.run.inference import run_inference
from auditor.run.stream import Batches, FeatureKeeper, row_keys, stream_pass
from tests.cli_helpers import assert_clean_input_error, invoke, read_report

DEMO_OPTIONS = ("--format", "json", "-q", "--seed", "3", "--fail-on", "never", "--batch-size", "512",
                "--skip", "carbon", "-o", "metrics.n_resamples=200", "-o", "explain.samples=200")


def _demo(out: Path, *extra: str, data: Path | None = None, train: Path | None = None) -> dict:
    demo = demo_files()
    result = invoke(demo.model, "--data", data or demo.data, "--history", demo.history,
                    "--train-data", train or demo.train_data, "--out", out, *DEMO_OPTIONS, *extra)
    assert result.exit_code == 0, result.stderr
    return read_report(out)


def _figures(report: dict) -> str:
    """Everything but how the run went (timings, chunks) and the energy measured; and but the
    privacy scan, whose scan of values reads the first rows up to a share of the memory
    budget by design and says how many (a smaller budget, fewer rows judged)."""
    report = json.loads(json.dumps(report))
    report.pop("run")
    report.pop("measurements")
    report["audits"].pop("privacy", None)
    return json.dumps(report, sort_keys=True)


@pytest.fixture(scope="module")
def demo_in_one_chunk(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _demo(tmp_path_factory.mktemp("one") / "out")


def test_every_audit_gives_the_same_figures_from_many_chunks_as_from_one(demo_in_one_chunk, tmp_path):
    report = _demo(tmp_path / "out", "--memory-budget", "6MiB")
    engine = report["run"]["engine"]
    assert demo_in_one_chunk["run"]["engine"]["data"]["chunks"] == 1
    assert engine["data"]["chunks"] >= 7 and engine["train_data"]["chunks"] >= 7
    assert engine["data"]["features_sampled"] is False and engine["data"]["feature_rows"] == 15060
    assert report["run"]["engine"]["data"]["memory_budget_bytes"] == 6 << 20
    assert _figures(report) == _figures(demo_in_one_chunk)


def test_parquet_read_in_1_2_and_7_chunks_gives_identical_reports(tmp_path):
    demo = demo_files()
    parquet = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(demo.data)), parquet, row_group_size=1000)
    per_row = 8 * 40 + 16 * 3 + 8  # a chunk's bytes a row: table and matrix of the 40 features, 3 kept columns
    reports = {}
    for chunks in (1, 2, 7):
        rows = -(-15060 // chunks)
        budget = 8 * rows * per_row if chunks > 1 else 1 << 30
        reports[chunks] = _demo(tmp_path / f"out{chunks}", "--memory-budget", str(budget), data=parquet)
        assert reports[chunks]["run"]["engine"]["data"]["chunks"] == chunks
    assert _figures(reports[1]) == _figures(reports[2]) == _figures(reports[7])


def test_batches_cut_across_chunks_give_the_bits_of_one_pass():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)).eval()
    columns = np.random.default_rng(0).normal(size=(12, 10_007)).astype(np.float32)
    X = columns.T  # column-major, as the loader lays features out
    whole = run_inference(model, X, device=torch.device("cpu"), batch_size=256)
    for cuts in ([10_007], [5000, 5007], [1, 255, 256, 3000, 6495], [700] * 14 + [207]):
        batches = Batches(lambda part, offset, size: run_inference(
            model, part, device=torch.device("cpu"), batch_size=size, offset=offset), 256)
        start = 0
        for n in cuts:
            chunk = np.ascontiguousarray(columns[:, start:start + n]).T
            batches.feed(chunk, start)
            start += n
        assert np.array_equal(batches.close(), whole), cuts


def test_the_features_kept_over_budget_are_the_rows_with_the_smallest_keys_however_the_file_is_cut():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    capacity = 600 * (4 * 4 + 16)  # 600 rows fit: the sample keeps half, 300
    expected = np.sort(np.argsort(row_keys(7, 0, 5000), kind="stable")[:300])
    for cuts in ([5000], [2500, 2500], [1, 599, 1, 3000, 1399], [700] * 7 + [100]):
        keeper = FeatureKeeper(4, capacity, seed=7)
        start = 0
        for n in cuts:
            keeper.add(X[start:start + n], start)
            start += n
        kept, rows = keeper.result()
        assert rows is not None and np.array_equal(rows, expected), cuts
        assert np.array_equal(kept, X[expected])


def test_row_keys_are_uniform_enough_to_sample_by():
    keys = row_keys(0, 0, 200_000).astype(np.float64) / 2.0**64
    counts = np.histogram(keys, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 20_000) < 5 * np.sqrt(20_000))  # about 3.5 sigma of a binomial
    assert not np.array_equal(row_keys(0, 0, 100), row_keys(1, 0, 100))


def test_over_budget_the_explain_audit_runs_on_a_sample_and_says_so_while_metrics_stay_exact(
        demo_in_one_chunk, tmp_path):
    report = _demo(tmp_path / "out", "--memory-budget", "4MiB")
    facts = report["run"]["engine"]["data"]
    assert facts["features_sampled"] is True and 0 < facts["feature_rows"] < 15060
    explain = report["audits"]["explain"]
    assert f"On a seeded sample of {facts['feature_rows']:,} of the 15,060 rows" in explain["summary"]
    assert explain["notes"][0].startswith("Computed on a seeded sample")
    for name in ("metrics", "fairness", "overfitting", "crossval"):
        assert json.dumps(report["audits"][name], sort_keys=True) == json.dumps(
            demo_in_one_chunk["audits"][name], sort_keys=True), name
    facts = dict(run_facts(report))  # what every report format shows of the run
    assert facts["Data: read"].startswith(f"15,060 rows in {facts_chunks(report)} chunk(s)")
    assert "memory budget 4.0 MiB (the budget stated with --memory-budget" in facts["Data: read"]
    assert facts["Data: features kept"].startswith(f"a seeded sample of {report['run']['engine']['data']['feature_rows']:,} rows")
    assert facts["Peak memory"].endswith("MiB")


def facts_chunks(report: dict) -> str:
    return f"{report['run']['engine']['data']['chunks']:,}"


def _silent(label, total):
    return nullcontext(lambda n: None)


def _stream(path: Path, budget: str, monkeypatch, **plan) -> object:
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", budget)
    read = plan_read(path, metadata={}, **plan)
    return stream_pass(read, infer=lambda X, offset, size: np.zeros((X.shape[0], 2), np.float32),
                       batch_size=None, default_batch=64, seed=0, progress=_silent)


def test_a_csv_column_whose_type_a_later_block_widens_is_read_as_the_one_shot_reader_reads_it(
        tmp_path, monkeypatch):
    rows = 3000
    frame = pd.DataFrame({"x": np.arange(rows, dtype=np.float64), "target": np.arange(rows) % 2})
    frame["region"] = [str(i % 3) for i in range(rows)]
    frame.loc[rows - 5, "region"] = "north"  # ints for 2,994 rows, then text
    frame["score"] = [str(i % 4) for i in range(rows)]
    frame.loc[rows - 3, "score"] = "1.5"  # ints, then a float
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    whole = load_data(path, target="target", features=["x"], metadata={}, sensitive=["region", "score"])
    done = _stream(path, "400KiB", monkeypatch, target="target", features=["x"], sensitive=["region", "score"])
    assert done.facts.chunks > 3
    assert done.facts.reread == ["region", "score"]
    for name in ("region", "score"):
        assert done.raw.sensitive[name].labels == whole.sensitive[name].labels
        assert np.array_equal(done.raw.sensitive[name].codes, whole.sensitive[name].codes)
    assert np.array_equal(done.raw.dataset.X, whole.dataset.X)


def test_a_budget_too_small_for_one_batch_names_the_least_that_works(tmp_path):
    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--out", tmp_path / "out", "--memory-budget", "2KiB", "-q")
    assert_clean_input_error(result, "cannot hold one row", "--memory-budget")
    result = invoke(demo.model, "--data", demo.data, "--out", tmp_path / "out", "--memory-budget", "1MiB",
                    "--batch-size", "100000", "-q")
    assert_clean_input_error(result, "one batch of 100,000 rows", "Give at least")
    assert not (tmp_path / "out").exists()


def test_a_memory_budget_that_is_not_a_size_is_a_usage_error(tmp_path):
    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--out", tmp_path / "out", "--memory-budget", "lots", "-q")
    assert_clean_input_error(result, "--memory-budget='lots' is not a size")


def test_a_parquet_file_corrupt_halfway_names_the_rows_read(tmp_path):
    demo = demo_files()
    frame = pd.read_csv(demo.data)
    path = tmp_path / "broken.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=2000, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(4).column(0)
    raw = bytearray(path.read_bytes())
    start = group.data_page_offset
    raw[start + 16:start + 2000] = b"\xff" * (2000 - 16)  # row group 5's first column: garbage
    path.write_bytes(bytes(raw))
    result = invoke(demo.model, "--data", path, "--out", tmp_path / "out", "--memory-budget", "4MiB", "-q")
    assert_clean_input_error(result, "broken.parquet", "cannot be read past data row ", "write it again")
    read = int(result.stderr.split("past data row ")[1].split(" ")[0].replace(",", ""))
    assert 0 < read <= 8000  # the rows before row group 5 were read; the message says how far
    assert not (tmp_path / "out").exists()


def test_a_file_that_changes_while_it_is_read_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": np.arange(5000.0), "target": np.arange(5000) % 2}).to_csv(path, index=False)
    reader = ChunkReader(plan_read(path, target="target", features=["x"], metadata={}), rows=500)
    chunks = reader.chunks()
    first = next(chunks)
    with path.open("a") as more:
        more.write("1.0,1\n")
    rest = sum(t.num_rows for t in chunks)
    with pytest.raises(DataError, match=r"changed while it was read"):
        reader.check_unchanged(first.num_rows + rest)


def test_an_in_process_run_leaves_the_budget_variable_as_it_found_it(monkeypatch):
    import os

    import auditor

    monkeypatch.delenv("AUDITOR_MEMORY_BUDGET", raising=False)
    demo = demo_files()
    extra = {"auditor.json": ""}
    model = torch.jit.load(str(demo.model), _extra_files=extra)
    outcome = auditor.audit(model, demo.data, metadata=json.loads(extra["auditor.json"]), memory_budget="8MiB",
                            audits=["metrics"], options={"metrics.n_resamples": 100})
    assert outcome.report.run["engine"]["data"]["chunks"] > 1
    assert "AUDITOR_MEMORY_BUDGET" not in os.environ


FIXTURE_RUNS = {
    "wine": ("--audits", "metrics,explain,crossval"),
    "diabetes": ("--audits", "metrics,explain,crossval,overfitting", "--train-data", "{folder}/train.csv"),
    "digits": ("--audits", "metrics,explain,crossval", "--input-shape", "1,8,8"),
    "compas": ("--audits", "metrics,fairness,crossval", "--sensitive", "race,sex"),
}


@pytest.mark.parametrize("fixture", sorted(FIXTURE_RUNS))
@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_each_fixture_gives_the_same_figures_in_many_chunks_as_in_one(fixture, form, request, tmp_path):
    from auditor.run.stream import row_bytes

    trained = request.getfixturevalue(fixture)
    data = next(trained.folder.glob("*.csv")) if fixture == "compas" else trained.folder / "test.csv"
    if form == "parquet":
        data = tmp_path / "data.parquet"
        pq.write_table(pa.Table.from_pandas(trained.frame, preserve_index=False), data)
    model = next(p for p in trained.folder.glob("*.pt") if p.name in ("model.pt", "rule.pt"))
    extra = [a.replace("{folder}", str(trained.folder)) for a in FIXTURE_RUNS[fixture]]
    common = [model, "--data", data, "--format", "json", "-q", "--fail-on", "never", "--batch-size", "16",
              "-o", "metrics.n_resamples=100", "-o", "explain.samples=40", "-o", "crossval.min_fold_rows=2", *extra]
    sensitive = extra[extra.index("--sensitive") + 1].split(",") if "--sensitive" in extra else None
    plan = plan_read(data, target=trained.target, features=None if fixture == "compas" else trained.features,
                     metadata={"feature_names": trained.features}, sensitive=sensitive)
    rows = len(trained.frame)
    # six chunks, a quarter of the budget holding 48 bytes a row, room for the bootstrap of 100
    # resamples, and for a batch of 16 training rows
    budget = max(8 * row_bytes(plan) * -(-rows // 6), 4 * 48 * rows, 32 << 10)
    if "--train-data" in extra:
        train = plan_read(Path(extra[extra.index("--train-data") + 1]), target=trained.target,
                          features=trained.features, metadata={})
        budget = max(budget, 8 * row_bytes(train) * 16)
    whole = invoke(*common, "--out", tmp_path / "one")
    chunked = invoke(*common, "--out", tmp_path / "many", "--memory-budget", str(budget))
    assert whole.exit_code == 0 and chunked.exit_code == 0, whole.stderr + chunked.stderr
    one, many = read_report(tmp_path / "one"), read_report(tmp_path / "many")
    assert one["run"]["engine"]["data"]["chunks"] == 1
    assert many["run"]["engine"]["data"]["chunks"] >= 3
    assert many["run"]["engine"]["data"]["features_sampled"] is False
    assert _figures(many) == _figures(one)
