"""What the model returns and what its metadata declares is checked before a number is
computed from it: a wrong shape, a wrong type or a run too big for the memory is one line on
stderr, exit 2, and nothing written; never a wrong number or an "Internal error".

Covers: output width that changes between batches, 0-d and width-0 outputs, every metadata
field with a wrong type (sidecar, TorchScript extra file, safetensors header), input shapes,
AUDITOR_PLUGINS naming nothing installed, a sensitive column with more groups than the
fairness limit, and a class count whose metric arrays do not fit the memory budget.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report
from sklearn.metrics import roc_auc_score
from torch import nn

NETS = Path(__file__).parent / "nets"


def run_expecting_error(model: Path, data: Path, out: Path, *extra: object, fragments: tuple[str, ...]) -> None:
    result = invoke(model, "--data", data, "--out", out, "-q", "--audits", "metrics", *extra)
    assert_clean_input_error(result, *fragments)
    assert not out.exists(), "nothing may be written"


def script(module: nn.Module, path: Path, meta: dict | None = None) -> Path:
    extra = {"auditor.json": json.dumps(meta)} if meta is not None else {}
    torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra)
    return path


# --- the model's outputs ------------------------------------------------------------------------


class NarrowsOnSmallBatches(nn.Module):
    """Two logits per row, but only the second for a batch of fewer than 100 rows."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.inner(x)
        out = torch.cat([-z, z], dim=1)
        if x.shape[0] < 100:
            return out[:, 1:]
        return out


class OneNumber(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum()


class NoOutputs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :0]


class Squeezed(nn.Module):
    """One logit per row, squeezed: a batch of one row gives a 0-d tensor."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).squeeze()


def test_an_output_that_narrows_in_a_later_batch_is_refused_naming_the_rows_and_both_shapes(breast_cancer, tmp_path):
    # 228 rows in batches of 100: rows 201-228 come back with one output instead of two. Before,
    # the one column was broadcast into both and ROC-AUC came out near 0 for a good model.
    assert len(breast_cancer.frame) == 228
    model = script(NarrowsOnSmallBatches(breast_cancer.module), tmp_path / "narrows.pt")
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out", "--batch-size", 100,
                        fragments=("output shape changed between batches", "rows 1-100 gave (2,) per row",
                                   "rows 201-228 gave (1,) per row"))


def test_the_same_model_in_one_batch_is_audited(breast_cancer, tmp_path):
    model = script(NarrowsOnSmallBatches(breast_cancer.module), tmp_path / "narrows.pt")
    out = tmp_path / "out"
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", out, "-q", "--audits", "metrics",
                    "--batch-size", 1000)
    assert result.exit_code == 0, result.output
    expected = roc_auc_score(breast_cancer.frame["target"], breast_cancer.eager_outputs()[:, 0])
    assert read_report(out)["audits"]["metrics"]["metrics"]["roc_auc"]["value"] == pytest.approx(expected)


@pytest.mark.parametrize("module, fragments", [
    (OneNumber(), ("a single number (a 0-d tensor)", "batch of 228 rows")),
    (NoOutputs(), ("returned no outputs", "(228, 0)")),
], ids=["0-d", "width-0"])
def test_a_scalar_or_an_empty_output_is_refused(breast_cancer, tmp_path, module, fragments):
    model = script(module, tmp_path / "odd.pt")
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out", fragments=fragments)


def test_a_squeezed_output_still_reads_a_last_batch_of_one_row(breast_cancer, tmp_path):
    # 228 rows in batches of 227: the last batch is one row, which .squeeze() makes 0-d.
    model = script(Squeezed(breast_cancer.module), tmp_path / "squeezed.pt")
    out = tmp_path / "out"
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", out, "-q", "--audits", "metrics",
                    "--batch-size", 227)
    assert result.exit_code == 0, result.output
    expected = roc_auc_score(breast_cancer.frame["target"], breast_cancer.eager_outputs()[:, 0])
    assert read_report(out)["audits"]["metrics"]["metrics"]["roc_auc"]["value"] == pytest.approx(expected)


# --- the model's metadata -----------------------------------------------------------------------

WRONG_FIELDS = [
    ("feature_names", 5, "got a number"),
    ("feature_names", "mean_radius", "got text"),
    ("feature_names", [], "got an empty list"),
    ("feature_names", ["a", ["b"]], "item 2 is a list"),
    ("feature_names", ["a", "a"], "item 2 repeats an earlier one"),
    ("class_names", {"a": 1}, "got an object"),
    ("class_names", "01", "got text"),
    ("class_names", [0, True], "item 2 is a boolean"),
    ("target", 3.5, "got a number"),
    ("target", ["target"], "got a list"),
    ("sensitive", "sex", "got text"),
    ("task", 3, "got a number"),
    ("task", "classify", "got text that is none of them"),
    ("output", ["logits"], "got a list"),
    ("name", {"first": "x"}, "got an object"),
    ("input_shape", "abc", "got text"),
    ("input_shape", 30, "got a number"),
    ("input_shape", [1e400], "size 1 is a number too large to be a size"),
    ("input_shape", [-30], "size 1 is negative"),
    ("input_shape", [0, 30], "size 1 is zero"),
    ("input_shape", [2.0, 15], "size 1 is a number with a decimal point"),
    ("input_shape", [True], "size 1 is a boolean"),
    ("input_shape", [2**40], "size 1 is too large"),
]


def _sidecar(breast_cancer, folder: Path, meta: dict) -> tuple[Path, list[str], str]:
    model = folder / "model.pt"
    shutil.copy(breast_cancer.folder / "model.pt", model)
    (folder / "model.auditor.json").write_text(json.dumps(meta))
    return model, [], "model.auditor.json"


def _torchscript(breast_cancer, folder: Path, meta: dict) -> tuple[Path, list[str], str]:
    return script(breast_cancer.module, folder / "model.pt", meta), [], "auditor.json embedded in model.pt"


def _safetensors(breast_cancer, folder: Path, meta: dict) -> tuple[Path, list[str], str]:
    import safetensors.torch

    model = folder / "weights.safetensors"
    state = {k: v.contiguous() for k, v in breast_cancer.module.state_dict().items()}
    safetensors.torch.save_file(state, str(model), metadata={"auditor": json.dumps(meta)})
    return model, ["--model-class", "tiny_nets:BreastCancerMLP", "--model-path", str(NETS)], \
        "auditor.json embedded in weights.safetensors"


@pytest.mark.parametrize("source", [_sidecar, _torchscript, _safetensors], ids=["sidecar", "torchscript", "safetensors"])
@pytest.mark.parametrize("field, value, got", WRONG_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in WRONG_FIELDS])
def test_a_wrong_typed_metadata_field_is_one_line_naming_it(breast_cancer, tmp_path, source, field, value, got):
    model, extra, label = source(breast_cancer, tmp_path, {field: value})
    named = f"input_shape in {label}" if field == "input_shape" else f"field {field} of the model metadata ({label})"
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out", *extra, fragments=(named, got))


def test_a_metadata_file_that_is_not_an_object_is_refused(breast_cancer, tmp_path):
    model, _, label = _sidecar(breast_cancer, tmp_path, {})
    (tmp_path / "model.auditor.json").write_text("[1, 2]")
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out",
                        fragments=(f"({label}) must be a JSON object; got a list",))


def test_valid_metadata_with_integer_labels_and_a_null_field_is_read(breast_cancer, tmp_path):
    # Integer class labels (json.dumps of pandas labels) are kept as strings; null is "not declared".
    model, _, _ = _sidecar(breast_cancer, tmp_path, {"class_names": [0, 1], "task": None, "name": "cancer"})
    out = tmp_path / "out"
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", out, "-q", "--audits", "metrics")
    assert result.exit_code == 0, result.output
    metadata = read_report(out)["model"]["metadata"]
    assert metadata["class_names"] == ["0", "1"] and "task" not in metadata


def test_a_class_name_given_twice_on_the_command_line_is_refused(breast_cancer, tmp_path):
    run_expecting_error(breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", tmp_path / "out",
                        "--classes", "0,0", fragments=("class names must be distinct", "'0'"))


# --- input shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, fragments", [
    ("1e400", ("--input-shape must be comma-separated integers",)),
    ("-30", ("input shape (--input-shape)", "size 1 is negative")),
    ("0,30", ("size 1 is zero",)),
    ("99999999999999999999999", ("size 1 is too large",)),
    ("7", ("input shape 7 holds 7 values, but each row has 30 features",)),
    ("4,4", ("input shape 4,4 holds 16 values",)),
    ("2147483647,2147483647,2147483647", ("each row has 30 features",)),  # its product overflows int64
])
def test_an_input_shape_that_is_not_whole_positive_sizes_dividing_the_row_is_refused(breast_cancer, tmp_path, shape, fragments):
    run_expecting_error(breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv", tmp_path / "out",
                        f"--input-shape={shape}", fragments=fragments)


def test_a_metadata_input_shape_that_does_not_divide_the_row_names_both_sources(breast_cancer, tmp_path):
    model, _, _ = _sidecar(breast_cancer, tmp_path, {"input_shape": [4, 7]})
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out",
                        fragments=("input shape 4,7 holds 28 values, but each row has 30 features",
                                   "input_shape in the model's metadata"))


# --- plugins selected by AUDITOR_PLUGINS --------------------------------------------------------

@pytest.mark.parametrize("command", [["run"], ["plugins"]])
def test_auditor_plugins_naming_nothing_installed_is_a_usage_error(breast_cancer, tmp_path, monkeypatch, command):
    monkeypatch.setenv("AUDITOR_PLUGINS", "nonexistent,metrics")
    out = tmp_path / "out"
    args = ["plugins"] if command == ["plugins"] else [breast_cancer.folder / "model.pt", "--data",
                                                      breast_cancer.folder / "test.csv", "--out", out, "-q"]
    result = invoke(*args)
    assert_clean_input_error(result, "AUDITOR_PLUGINS names plugin(s) that are not installed: nonexistent",
                             "installed: ", "metrics")
    assert not out.exists()


# --- a sensitive column with too many groups ----------------------------------------------------


@pytest.fixture
def with_ids(breast_cancer, tmp_path) -> Path:
    """The test data five times over (1,140 rows) with an identifier column (1,140 values), a
    two-valued column and a 40-valued one, every one of their 80 combinations present."""
    frame = pd.concat([breast_cancer.frame] * 5, ignore_index=True)
    frame["patient_id"] = [f"p{i:05d}" for i in range(len(frame))]
    frame["site"] = np.where(np.arange(len(frame)) % 2 == 0, "north", "south")
    frame["clinic"] = [f"c{(i // 2) % 40:02d}" for i in range(len(frame))]
    path = tmp_path / "with_ids.csv"
    frame.to_csv(path, index=False)
    return path


def _fairness(breast_cancer, data: Path, out: Path, *extra: object) -> dict:
    result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--out", out, "-q", "--format", "json",
                    "--features", ",".join(breast_cancer.features), "--audits", "fairness",
                    "-o", "fairness.n_resamples=100", *extra)
    assert result.exit_code in (0, 1), result.output
    return read_report(out)["audits"]["fairness"]


def test_a_sensitive_column_with_more_groups_than_the_limit_is_left_out_with_a_warning(breast_cancer, with_ids, tmp_path):
    audit = _fairness(breast_cancer, with_ids, tmp_path / "out", "--sensitive", "patient_id,site")
    codes = [f["code"] for f in audit["findings"]]
    assert "sensitive-too-many-groups" in codes
    warning = next(f for f in audit["findings"] if f["code"] == "sensitive-too-many-groups")
    assert warning["severity"] == "warning"
    assert "'patient_id' has 1,140 groups, more than fairness.max_groups (1,000)" in warning["message"]
    assert audit["status"] != "pass"
    assert any(k.startswith("site.") for k in audit["metrics"])
    assert not any("patient_id" in k for k in audit["metrics"])


def test_with_every_column_over_the_limit_fairness_is_not_assessed(breast_cancer, with_ids, tmp_path):
    audit = _fairness(breast_cancer, with_ids, tmp_path / "out", "--sensitive", "patient_id")
    assert audit["status"] == "not assessed"
    assert audit["summary"].startswith("Not assessed: every sensitive column has more than fairness.max_groups")
    assert audit["metrics"] == {}


def test_the_limit_is_an_option(breast_cancer, with_ids, tmp_path):
    audit = _fairness(breast_cancer, with_ids, tmp_path / "out", "--sensitive", "clinic",
                      "-o", "fairness.max_groups=39")
    assert audit["summary"].startswith("Not assessed")
    audit = _fairness(breast_cancer, with_ids, tmp_path / "out2", "--sensitive", "clinic",
                      "-o", "fairness.max_groups=40")
    assert any(k.startswith("clinic.") for k in audit["metrics"])


def test_an_intersection_with_more_groups_than_the_limit_audits_each_column_alone(breast_cancer, with_ids, tmp_path):
    # site (2 groups) x clinic (40 groups): 80 groups in the intersection.
    def run(limit: int, out: str) -> dict:
        return _fairness(breast_cancer, with_ids, tmp_path / out, "--sensitive", "site,clinic",
                         "-o", f"fairness.max_groups={limit}", "-o", "fairness.min_group_size=5")

    joint = run(80, "joint")
    assert any(k.startswith("site*clinic.") for k in joint["metrics"])
    assert "sensitive-intersection-too-large" not in [f["code"] for f in joint["findings"]]
    alone = run(40, "alone")
    finding = next(f for f in alone["findings"] if f["code"] == "sensitive-intersection-too-large")
    assert finding["severity"] == "info"
    assert "The intersection of 'site' and 'clinic' has 80 groups, more than fairness.max_groups (40)" in finding["message"]
    assert {k.split(".")[0] for k in alone["metrics"]} >= {"site", "clinic"}
    assert not any("*" in k for k in alone["metrics"])
    # Each column alone gives the same point estimates as in the joint run.
    for key in ("site.demographic_parity_ratio", "clinic.demographic_parity_ratio"):
        assert alone["metrics"][key]["value"] == pytest.approx(joint["metrics"][key]["value"])
    only_site = run(30, "only_site")  # clinic's 40 groups are over 30: left out
    assert any(k.startswith("site.") for k in only_site["metrics"])
    assert not any("clinic" in k for k in only_site["metrics"])


# --- a class count too big for the memory budget ------------------------------------------------


def test_a_class_count_whose_metric_arrays_do_not_fit_the_budget_is_refused_before_any_audit(breast_cancer, tmp_path, monkeypatch):
    # 200 outputs: the bootstrap draws 1,000 confusion matrices of 200 x 200 cells, read as int64
    # and as float64: 16 * 1,000 * 40,000 bytes = 640 MB, against a budget of 100 MiB.
    model = script(nn.Linear(30, 200), tmp_path / "wide.pt")
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", "100M")
    budget, k, n = 100 * 2**20, 200, 228
    fits = (budget - 32 * n * k - 48 * k * k) // (16 * k * k)  # the most resamples that fit
    run_expecting_error(model, breast_cancer.folder / "test.csv", tmp_path / "out",
                        fragments=("The metrics audit needs about", "for 200 classes", "100.0 MiB",
                                   "AUDITOR_MEMORY_BUDGET", f"-o metrics.n_resamples={fits} fits the budget"))
    out = tmp_path / "fits"
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", out, "-q", "--audits", "metrics",
                    "--format", "json", "-o", f"metrics.n_resamples={fits}")
    assert result.exit_code in (0, 1), result.output
    assert read_report(out)["audits"]["metrics"]["status"] in ("pass", "warn")
