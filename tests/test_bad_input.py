"""Every bad input gets one line that says what and how to fix it, exit 2, and no report."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from cli_helpers import assert_clean_input_error, invoke


def run_expecting_error(tmp_path: Path, model: Path, data: Path, *extra: str, fragments: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    result = invoke(model, "--data", data, "--out", out, "--quiet", *extra)
    assert_clean_input_error(result, *fragments)
    assert not out.exists(), "nothing may be written when the input is bad"


@pytest.fixture
def good(breast_cancer):
    return breast_cancer.folder / "model.pt", breast_cancer.folder / "test.csv"


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- the model file ---------------------------------------------------------------------------

def test_random_bytes_as_model(tmp_path, good):
    model = write(tmp_path / "model.pt", os.urandom(2048).replace(b"\x80", b"\x81").replace(b"PK", b"QK"))
    run_expecting_error(tmp_path, model, good[1], fragments=("not a format auditor knows",))


def test_empty_model_file(tmp_path, good):
    run_expecting_error(tmp_path, write(tmp_path / "m.pt", b""), good[1], fragments=("is empty",))


def test_csv_renamed_as_model(tmp_path, good):
    model = write(tmp_path / "model.pt", good[1].read_text())
    run_expecting_error(tmp_path, model, good[1], fragments=("holds CSV", "swap"))


def test_truncated_torchscript(tmp_path, good):
    model = write(tmp_path / "model.pt", good[0].read_bytes()[:3000])
    run_expecting_error(tmp_path, model, good[1], fragments=("model.pt",))


def test_whole_pickled_module_is_refused_without_trust(tmp_path, breast_cancer, good):
    run_expecting_error(
        tmp_path, breast_cancer.folder / "whole.pt", good[1],
        fragments=("Refusing to load whole.pt", "tiny_nets.BreastCancerMLP", "--trust-model", "torch.jit.save"),
    )


def test_plain_pickle_is_refused_and_never_executed(tmp_path, good):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    model = write(tmp_path / "evil.pt", pickle.dumps(Payload(), protocol=2))
    run_expecting_error(tmp_path, model, good[1], fragments=("Refusing to load evil.pt",))
    assert not marker.exists()


def test_legacy_torch_save_is_refused(tmp_path, breast_cancer, good):
    run_expecting_error(tmp_path, breast_cancer.folder / "legacy.pt", good[1], fragments=("legacy",))


def test_state_dict_without_model_class(tmp_path, breast_cancer, good):
    run_expecting_error(tmp_path, breast_cancer.folder / "weights.pt", good[1], fragments=("--model-class",))


def test_model_class_that_does_not_fit_the_weights(tmp_path, breast_cancer, good):
    run_expecting_error(
        tmp_path, breast_cancer.folder / "weights.pt", good[1],
        "--model-class", "tiny_nets:DiabetesRegressor",
        fragments=("do not fit tiny_nets:DiabetesRegressor",),
    )


def test_model_class_that_cannot_be_imported(tmp_path, breast_cancer, good):
    run_expecting_error(
        tmp_path, breast_cancer.folder / "weights.pt", good[1], "--model-class", "no_such_pkg.nets:Net",
        fragments=("Cannot import the module 'no_such_pkg.nets'", "--model-path"),
    )


def test_model_class_factory_needing_arguments(tmp_path, breast_cancer, good):
    run_expecting_error(
        tmp_path, breast_cancer.folder / "weights.pt", good[1], "--model-class", "tiny_nets:needs_arguments",
        fragments=("no arguments",),
    )


def test_missing_model_file(tmp_path, good):
    run_expecting_error(tmp_path, tmp_path / "nope.pt", good[1], fragments=("does not exist",))


# --- the data file ----------------------------------------------------------------------------

def test_empty_csv(tmp_path, good):
    run_expecting_error(tmp_path, good[0], write(tmp_path / "d.csv", b""), fragments=("is empty",))


def test_header_only_csv(tmp_path, good):
    header = good[1].read_text().splitlines()[0] + "\n"
    run_expecting_error(tmp_path, good[0], write(tmp_path / "d.csv", header), fragments=("no data rows",))


def test_text_in_a_numeric_column(tmp_path, good):
    lines = good[1].read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "abc"
    lines[3] = ",".join(cells)
    data = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    column = lines[0].split(",")[2]
    run_expecting_error(tmp_path, good[0], data, fragments=(repr(column), "'abc'", "must hold numbers"))


@pytest.mark.parametrize("bad_value, fragment", [("", "missing or NaN"), ("NaN", "missing or NaN"), ("inf", "infinity")])
def test_nan_or_infinity_in_features(tmp_path, good, bad_value, fragment):
    lines = good[1].read_text().splitlines()
    cells = lines[5].split(",")
    cells[0] = bad_value
    lines[5] = ",".join(cells)
    data = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    run_expecting_error(tmp_path, good[0], data, fragments=(fragment, "Impute" if fragment != "infinity" else "finite"))


def test_missing_named_target_column(tmp_path, good):
    run_expecting_error(tmp_path, good[0], good[1], "--target", "outcome",
                        fragments=("'outcome' is not in test.csv", "mean_radius"))


def test_no_target_column_found(tmp_path, breast_cancer, good):
    frame = breast_cancer.frame.rename(columns={"target": "diagnosis"})
    frame.to_csv(tmp_path / "d.csv", index=False)
    run_expecting_error(tmp_path, good[0], tmp_path / "d.csv",
                        fragments=("No target column found", "--target", "diagnosis"))


def test_feature_count_the_model_rejects(tmp_path, breast_cancer, good):
    breast_cancer.frame.drop(columns=breast_cancer.features[:3]).to_csv(tmp_path / "d.csv", index=False)
    run_expecting_error(tmp_path, good[0], tmp_path / "d.csv", fragments=("rejected 27 features", "--features"))


def test_target_values_the_model_cannot_produce(tmp_path, breast_cancer, good):
    frame = breast_cancer.frame.copy()
    frame.loc[:4, "target"] = 2
    frame.to_csv(tmp_path / "d.csv", index=False)
    run_expecting_error(tmp_path, good[0], tmp_path / "d.csv", "--task", "binary",
                        fragments=("cannot produce", "'2'"))


def test_text_labels_without_class_names(tmp_path, breast_cancer, good):
    frame = breast_cancer.frame.copy()
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.to_csv(tmp_path / "d.csv", index=False)
    run_expecting_error(tmp_path, good[0], tmp_path / "d.csv", fragments=("text labels", "--classes"))


def test_ragged_csv_row(tmp_path, good):
    lines = good[1].read_text().splitlines()
    lines[4] = ",".join(lines[4].split(",")[:-2])
    data = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    run_expecting_error(tmp_path, good[0], data, fragments=("fields where the header has",))


def test_model_file_given_as_data(tmp_path, good):
    run_expecting_error(tmp_path, good[0], good[0], fragments=("looks like a saved model",))


def test_a_column_named_twice_with_different_values_is_ambiguous(tmp_path, good):
    lines = good[1].read_text().splitlines()
    header = lines[0].split(",")
    header[1] = header[0]
    lines[0] = ",".join(header)
    data = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    run_expecting_error(tmp_path, good[0], data, fragments=("two different columns named", "Rename"))


def test_a_column_named_twice_with_identical_values_is_read(tmp_path, breast_cancer, good):
    """ProPublica's COMPAS file repeats decile_score and priors_count with identical copies."""
    frame = breast_cancer.frame.copy()
    first = breast_cancer.features[0]
    frame.insert(len(frame.columns), "copy", frame[first])
    lines = frame.to_csv(index=False).splitlines()
    lines[0] = lines[0].replace(",copy", f",{first}")
    data = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    result = invoke(good[0], "--data", data, "--out", tmp_path / "out", "-q", "--features",
                    ",".join(breast_cancer.features))
    assert result.exit_code == 0, result.stderr


def test_binary_garbage_as_gzip_data(tmp_path, good):
    data = write(tmp_path / "d.csv.gz", b"\x1f\x8b" + os.urandom(200))
    run_expecting_error(tmp_path, good[0], data, fragments=("d.csv.gz",))


# --- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (("-o", "metrics.no_such_option=1"), "has no option 'no_such_option'"),
    (("-o", "metrics.n_resamples=many"), "must be int"),
    (("-o", "nonsense"), "AUDIT.OPTION=VALUE"),
    (("--audits", "metrics,nope"), "Unknown audit(s): nope"),
    (("--format", "html,docx"), "Unknown report format(s): docx"),
    (("--input-shape", "5,7"), "input shape 5,7 holds 35 values"),
    (("--device", "cuda:7"), "--device cuda:7"),
])
def test_bad_options(tmp_path, good, args, fragment):
    run_expecting_error(tmp_path, good[0], good[1], *args, fragments=(fragment,))


def test_bad_pyproject_setting(tmp_path, good, monkeypatch):
    write(tmp_path / "pyproject.toml", '[tool.auditor]\ntarget = "target"\nthreshold = 3\n')
    monkeypatch.chdir(tmp_path)
    run_expecting_error(tmp_path, good[0], good[1], fragments=("Unknown setting 'threshold'",))


def test_trust_cannot_come_from_a_config_file(tmp_path, good, monkeypatch):
    write(tmp_path / "pyproject.toml", "[tool.auditor]\ntrust_model = true\n")
    monkeypatch.chdir(tmp_path)
    run_expecting_error(tmp_path, good[0], good[1], fragments=("trust_model cannot be set",))


def test_debug_shows_the_traceback(tmp_path, good):
    result = invoke(tmp_path / "nope.pt", "--data", good[1], "--debug", "--quiet", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_a_malformed_policy_rule_is_a_usage_error_before_any_work(tmp_path, good):
    policy = write(tmp_path / "audit.toml", '[gates]\n"metrics.roc_auc" = "at least 0.9"\n')
    run_expecting_error(tmp_path, good[0], good[1], "--policy", policy, fragments=("metrics.roc_auc", "at least 0.9"))


def test_a_gate_on_an_unknown_metric_names_the_valid_paths_and_writes_nothing(tmp_path, good):
    policy = write(tmp_path / "audit.toml", '[gates]\n"metrics.roc_acu" = ">= 0.9"\n')
    run_expecting_error(tmp_path, good[0], good[1], "--policy", policy, fragments=("roc_acu", "metrics.roc_auc"))


def test_a_baseline_from_an_older_schema_is_refused_with_a_clear_message(tmp_path, good):
    baseline = write(tmp_path / "main.json", '{"schema_version": "0.9", "audits": {}}')
    run_expecting_error(tmp_path, good[0], good[1], "--baseline", baseline, fragments=("0.9",))
