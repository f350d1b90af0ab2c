"""Fuzzed data files: every one ends in a valid report or a clean exit 2, never a traceback.

The files are built from the real breast-cancer test frame: written in every encoding,
delimiter and quoting style the loader accepts, then corrupted one way at a time. Each
case runs the real command line in-process (``--audits metrics --format json -q``). A
case "ends well" when it exits 0 with a report, or exits 2 with one line on stderr and
nothing written under --out; exit 3 or a traceback is a bug. The explicit tests after
the properties pin down what the loader does with each trap.
"""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_clean_input_error, invoke, read_report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.loading.data import load_data
from auditor.loading.inputs import MEMORY_BUDGET_VARIABLE

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1"]
DELIMITERS = [",", ";", "\t", "|"]
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]
GROUPS = ["Zoë", "José", "None", "NA", "n/a", "null", "Ñandú"]  # all Latin-1 encodable


# --- writing and running ----------------------------------------------------------------------

def to_bytes(frame: pd.DataFrame, *, encoding: str = "utf-8", delimiter: str = ",",
             quoting: int = csv.QUOTE_MINIMAL, newline: str = "\n", blank_lines: bool = False,
             header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    writer.writerow(header if header is not None else list(frame.columns))
    for row in frame.itertuples(index=False):
        writer.writerow(row)
        if blank_lines:
            buffer.write(newline)
    return buffer.getvalue().encode(encoding)


def with_cell(frame: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    frame = frame.astype({column: object})
    frame.loc[row, column] = value
    return frame


def run_cli(model: Path, data_bytes: bytes, *extra: str, name: str = "d.csv", formats: str = "json"):
    """Write the file, audit it, and check it ended well; returns (result, report or None)."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / name
        data.write_bytes(data_bytes)
        out = Path(folder) / "out"
        result = invoke(model, "--data", data, "--out", out, "-q", "--audits", "metrics", "--format", formats, *extra)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
        if result.exit_code == 2:
            assert_clean_input_error(result)
            assert not out.exists(), "nothing may be written when the input is bad"
            return result, None
        return result, read_report(out)


@pytest.fixture(scope="module")
def case(breast_cancer):
    """The model, the real test frame (first 60 rows keep each case fast) and its features."""
    frame = breast_cancer.frame.head(60).reset_index(drop=True)
    return breast_cancer.folder / "model.pt", frame, list(breast_cancer.features)


def _features(features: list[str]) -> tuple[str, str]:
    return "--features", ",".join(features)


# --- properties -------------------------------------------------------------------------------

@FUZZ
@given(encoding=st.sampled_from(ENCODINGS), delimiter=st.sampled_from(DELIMITERS),
       quoting=st.sampled_from(QUOTING), newline=st.sampled_from(["\n", "\r\n"]),
       blank_lines=st.booleans(), gzipped=st.booleans(), rows=st.integers(1, 60),
       groups=st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3))
def test_well_formed_files_are_read_exactly_or_refused_for_their_encoding(
    case, encoding, delimiter, quoting, newline, blank_lines, gzipped, rows, groups
):
    model, frame, features = case
    frame = frame.head(rows).copy()
    frame.insert(3, "group", [groups[i % len(groups)] for i in range(rows)])
    raw = to_bytes(frame, encoding=encoding, delimiter=delimiter, quoting=quoting, newline=newline,
                   blank_lines=blank_lines)
    name = "d.csv.gz" if gzipped else "d.csv"
    raw = gzip.compress(raw, mtime=0) if gzipped else raw
    result, report = run_cli(model, raw, *_features(features), "--sensitive", "group", name=name)
    non_ascii = any(not g.isascii() for g in frame["group"])
    if encoding == "latin-1" and non_ascii:
        assert report is None
        assert "not UTF-8" in result.stderr and "iconv -f latin1 -t utf-8" in result.stderr
        return
    assert report is not None, result.stderr
    assert report["data"]["rows"] == rows
    # the loader's own view: exactly the frame, group labels as written (NA and None kept)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(raw)
        loaded = load_data(path, target=None, features=features, metadata={}, sensitive=["group"])
    np.testing.assert_array_equal(loaded.dataset.X, frame[features].to_numpy(np.float32))
    assert loaded.dataset.columns[0] == frame.columns[0], "no BOM in the first column's name"
    labels = loaded.sensitive["group"].labels
    assert sorted(labels) == sorted(set(frame["group"])), labels


CORRUPTIONS = [
    "text_in_feature", "missing_in_feature", "missing_in_target", "duplicate_name", "unicode_name",
    "empty_name", "no_target", "fewer_features", "header_only", "empty_file", "truncated",
    "huge_field", "random_bytes", "extra_field", "unbalanced_quote",
]
BAD_CELLS = ["", "NA", "None", "null", "n/a", "NaN", "nan", "inf", "-inf", "abc", "1,5", "  ", "#N/A", "1e999"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(CORRUPTIONS), delimiter=st.sampled_from(DELIMITERS),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]), gzipped=st.booleans(),
       row=st.integers(0, 59), column=st.integers(0, 29), cell=st.sampled_from(BAD_CELLS),
       cut=st.floats(0.0, 1.0), noise=st.binary(min_size=1, max_size=40))
def test_corrupted_files_end_in_a_report_or_a_clean_exit_2(
    case, kind, delimiter, encoding, gzipped, row, column, cell, cut, noise
):
    model, frame, features = case
    frame = frame.copy()
    header = list(frame.columns)
    name = features[column]
    raw: bytes | None = None
    expect_error = True
    if kind in ("text_in_feature", "missing_in_feature"):
        frame = with_cell(frame, row, name, cell)
    elif kind == "missing_in_target":
        frame = with_cell(frame, row, "target", cell)
    elif kind == "duplicate_name":
        header[column + 1 if column < 29 else 0] = header[column]
    elif kind == "unicode_name":
        header[column] = "ñ_é_🙂_" + header[column]
        expect_error = False  # the model declares no feature names: any names are fine
    elif kind == "empty_name":
        frame.insert(0, "", range(len(frame)))
        header = list(frame.columns)
    elif kind == "no_target":
        frame = frame.drop(columns=["target"])
        header = list(frame.columns)
    elif kind == "fewer_features":
        frame = frame.drop(columns=features[: column % 5 + 1])
        header = list(frame.columns)
    elif kind == "header_only":
        frame = frame.head(0)
    elif kind == "empty_file":
        raw = b""
    elif kind == "huge_field":
        frame.insert(column, "note", "short")
        frame.loc[row, "note"] = "x" * 1_000_000
        header = list(frame.columns)
        expect_error = False
    if raw is None:
        text = to_bytes(frame, delimiter=delimiter, header=header).decode()
        lines = text.split("\n")
        at = 1 + row % max(len(lines) - 2, 1)
        if kind == "extra_field" and len(lines) > 2:
            lines[at] += delimiter + "7"
        elif kind == "unbalanced_quote" and len(lines) > 2:
            lines[at] = '"' + lines[at]
        raw = "\n".join(lines).encode(encoding)
        if kind in ("extra_field", "unbalanced_quote"):
            expect_error = None  # a quote may pair with a later one and still read
    if kind == "truncated":
        raw = raw[: max(1, int(len(raw) * cut))]
        expect_error = None  # a cut after a complete row still reads
    elif kind == "random_bytes":
        at = int(len(raw) * cut)
        raw = raw[:at] + noise + raw[at:]
        expect_error = None
    extra = _features(features) if kind == "huge_field" else ()
    result, report = run_cli(model, gzip.compress(raw, mtime=0) if gzipped else raw, *extra,
                             name="d.csv.gz" if gzipped else "d.csv")
    if expect_error is True:
        assert report is None, (kind, cell)
    elif expect_error is False:
        assert report is not None, (kind, result.stderr)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delimiter=st.sampled_from(DELIMITERS), encoding=st.sampled_from(["utf-8-sig", "utf-16"]),
       bad=st.sampled_from([None, "NA", "inf"]))
def test_all_report_formats_on_fuzzed_files(case, delimiter, encoding, bad):
    model, frame, features = case
    if bad:
        frame = with_cell(frame, 7, features[2], bad)
    raw = to_bytes(frame, encoding=encoding, delimiter=delimiter)
    result, report = run_cli(model, raw, formats="json,md,html,junit")
    assert (report is None) == (bad is not None)


# --- the traps, one by one --------------------------------------------------------------------

def test_header_only_no_rows_and_empty_file(case):
    model, frame, _ = case
    result, _ = run_cli(model, to_bytes(frame.head(0)))
    assert_clean_input_error(result, "no data rows")
    result, _ = run_cli(model, to_bytes(frame.head(0)).rstrip(b"\n"))
    assert_clean_input_error(result, "no data rows")
    result, _ = run_cli(model, b"")
    assert_clean_input_error(result, "is empty")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_files_are_read_with_their_delimiter(case, delimiter):
    """pandas' C engine would read a ';' file as one column; the loader detects the delimiter."""
    model, frame, features = case
    _, report = run_cli(model, to_bytes(frame, delimiter=delimiter))
    assert report is not None
    assert report["data"]["rows"] == len(frame) and report["data"]["columns"] == 31


def test_semicolon_file_with_decimal_commas_says_so(case):
    model, frame, features = case
    text = to_bytes(frame, delimiter=";").decode()
    lines = text.splitlines()
    cells = lines[4].split(";")
    cells[1] = cells[1].replace(".", ",")
    lines[4] = ";".join(cells)
    result, _ = run_cli(model, ("\n".join(lines) + "\n").encode())
    assert_clean_input_error(result, repr(features[1]), "decimal comma", "data row 4 (line 5 of the file)")


def test_a_latin1_file_is_refused_with_the_iconv_command(case):
    model, frame, features = case
    frame = frame.copy()
    frame.insert(0, "région", "Île-de-France")
    result, _ = run_cli(model, to_bytes(frame, encoding="latin-1"), *_features(features))
    assert_clean_input_error(result, "not UTF-8", "Latin-1", "iconv -f latin1 -t utf-8 d.csv")
    # the header is ASCII and the text sits in a sensitive column: pyarrow would give raw bytes
    frame = frame.rename(columns={"région": "region"})
    result, _ = run_cli(model, to_bytes(frame, encoding="latin-1"), *_features(features), "--sensitive", "region")
    assert_clean_input_error(result, "not UTF-8", "'region'", "iconv")


def test_latin1_text_in_a_column_the_audit_does_not_read_is_harmless(case):
    model, frame, features = case
    frame = frame.copy()
    frame.insert(0, "name", "José")
    _, report = run_cli(model, to_bytes(frame, encoding="latin-1"), *_features(features))
    assert report is not None


def test_utf16_with_a_bom_is_read_and_without_one_is_refused(case):
    model, frame, _ = case
    _, report = run_cli(model, to_bytes(frame, encoding="utf-16"))
    assert report is not None and report["data"]["rows"] == len(frame)
    result, _ = run_cli(model, to_bytes(frame, encoding="utf-16-le"))
    assert_clean_input_error(result, "UTF-16", "iconv -f utf-16le -t utf-8")


def test_a_utf8_bom_never_reaches_the_first_column_name(case, tmp_path):
    _, frame, features = case
    path = tmp_path / "d.csv"
    path.write_bytes(to_bytes(frame, encoding="utf-8-sig"))
    loaded = load_data(path, target=None, features=None, metadata={})
    assert loaded.dataset.columns[0] == "mean_radius"
    assert loaded.dataset.feature_names == features


@pytest.mark.parametrize("spelling", ["NA", "None", "null", "n/a", ""])
def test_a_missing_value_in_a_feature_names_the_column_the_row_and_the_count(case, spelling):
    model, frame, features = case
    frame = with_cell(with_cell(frame, 6, features[4], spelling), 9, features[4], spelling)
    result, _ = run_cli(model, to_bytes(frame))
    assert_clean_input_error(result, repr(features[4]), "2 missing", "data row 7 (line 8 of the file)")


@pytest.mark.parametrize("value, kind", [("NaN", "missing or NaN"), ("inf", "infinity"), ("-inf", "infinity")])
def test_nan_or_infinity_in_a_feature_names_the_column_the_row_and_the_count(case, value, kind):
    model, frame, features = case
    frame = with_cell(with_cell(with_cell(frame, 11, features[7], value), 20, features[7], value), 21, features[7], value)
    result, _ = run_cli(model, to_bytes(frame))
    assert_clean_input_error(result, repr(features[7]), f"3 {kind}", "data row 12 (line 13 of the file)")


def test_row_numbers_count_file_lines_past_blank_lines(case):
    model, frame, features = case
    frame = with_cell(frame, 2, features[0], "inf")
    result, _ = run_cli(model, to_bytes(frame, blank_lines=True))
    assert_clean_input_error(result, "data row 3 (line 6 of the file)")


@pytest.mark.parametrize("spelling", ["", "NA", "None", "null", "NaN"])
def test_a_missing_label_in_the_target_names_the_row(case, spelling):
    model, frame, _ = case
    result, _ = run_cli(model, to_bytes(with_cell(frame, 4, "target", spelling)))
    assert_clean_input_error(result, "'target'", "1 missing", "data row 5 (line 6 of the file)")


def test_sensitive_text_keeps_na_and_none_as_groups_and_only_empty_cells_are_missing(case, tmp_path):
    _, frame, features = case
    frame = frame.copy()
    frame.insert(0, "region", ["NA", "None", "null", "n/a", "EU", ""] * 10)
    path = tmp_path / "d.csv"
    path.write_bytes(to_bytes(frame))
    loaded = load_data(path, target=None, features=features, metadata={}, sensitive=["region"])
    assert set(loaded.sensitive["region"].labels) == {"NA", "None", "null", "n/a", "EU", "(missing)"}


def test_text_in_a_feature_names_the_value_the_row_and_the_count(case):
    model, frame, features = case
    result, _ = run_cli(model, to_bytes(with_cell(frame, 30, features[3], "abc")))
    assert_clean_input_error(result, repr(features[3]), "'abc'", "must hold numbers",
                             "data row 31 (line 32 of the file)", "1 such value")


def test_a_repeated_column_name_is_refused_when_the_copies_differ(case):
    model, frame, features = case
    header = list(frame.columns)
    header[5] = header[4]
    result, _ = run_cli(model, to_bytes(frame, header=header))
    assert_clean_input_error(result, "two different columns named", repr(features[4]), "Rename")


def test_a_repeated_column_name_is_read_once_when_the_copies_agree(case, tmp_path):
    """Deliberate (ProPublica's COMPAS file repeats columns): identical copies are one column."""
    model, frame, features = case
    frame = frame.copy()
    frame["copy"] = frame[features[0]]
    header = [*frame.columns[:-1], features[0]]
    _, report = run_cli(model, to_bytes(frame, header=header))
    assert report is not None and report["data"]["features"] == features
    path = tmp_path / "d.csv"
    path.write_bytes(to_bytes(frame, header=header))
    assert load_data(path, target=None, features=None, metadata={}).dataset.feature_names == features


def test_a_repeated_name_the_audit_does_not_read_is_ignored(case):
    model, frame, features = case
    frame = frame.copy()
    frame["a"], frame["b"] = 1, 2
    _, report = run_cli(model, to_bytes(frame, header=[*frame.columns[:-2], "note", "note"]), *_features(features))
    assert report is not None


def test_an_unnamed_column_is_refused_when_it_would_be_a_feature(case):
    model, frame, features = case
    frame = frame.copy()
    frame.insert(0, "", range(len(frame)))
    result, _ = run_cli(model, to_bytes(frame))
    assert_clean_input_error(result, "Column 1 of d.csv has no name", "--features")
    _, report = run_cli(model, to_bytes(frame), *_features(features))
    assert report is not None


def test_unicode_column_names_are_read(case):
    model, frame, features = case
    renamed = frame.rename(columns={features[0]: "rayon_moyen_ñ_🙂"})
    _, report = run_cli(model, to_bytes(renamed))
    assert report is not None and report["data"]["features"][0] == "rayon_moyen_ñ_🙂"


def test_missing_target_and_wrong_feature_count(case):
    model, frame, features = case
    result, _ = run_cli(model, to_bytes(frame.drop(columns=["target"])))
    assert_clean_input_error(result, "No target column found", "--target")
    result, _ = run_cli(model, to_bytes(frame.drop(columns=features[:2])))
    assert_clean_input_error(result, "rejected 28 features", "--features")


def test_a_truncated_file_is_a_malformed_row(case):
    model, frame, _ = case
    raw = to_bytes(frame)
    cut = raw.index(b"\n", len(raw) // 2) + 20
    result, _ = run_cli(model, raw[:cut])
    assert_clean_input_error(result, "fields where the header has 31", "truncated")


def test_a_truncated_gzip_file_is_a_clean_error(case):
    model, frame, _ = case
    raw = gzip.compress(to_bytes(frame), mtime=0)
    result, _ = run_cli(model, raw[: len(raw) // 2], name="d.csv.gz")
    assert_clean_input_error(result, "d.csv.gz", "gzip -t")


def test_a_one_megabyte_field_is_read(case):
    model, frame, features = case
    frame = frame.copy()
    frame.insert(0, "note", "short")
    frame.loc[3, "note"] = "x" * 1_000_000
    _, report = run_cli(model, to_bytes(frame), *_features(features), "--sensitive", "note")
    assert report is not None


def test_a_budget_too_small_for_one_row_is_refused_before_reading_naming_the_least_that_works(case, monkeypatch):
    model, frame, _ = case
    monkeypatch.setenv(MEMORY_BUDGET_VARIABLE, "2KiB")
    result, _ = run_cli(model, to_bytes(frame))
    assert_clean_input_error(result, "cannot hold one row", "2.0 KiB", "Give at least", "--memory-budget")
    result, _ = run_cli(model, gzip.compress(to_bytes(frame)), name="d.csv.gz")
    assert_clean_input_error(result, "cannot hold one row", "2.0 KiB")
    monkeypatch.setenv(MEMORY_BUDGET_VARIABLE, "1G")
    _, report = run_cli(model, to_bytes(frame))
    assert report is not None


def test_a_parquet_file_with_a_budget_too_small_for_one_row_is_refused(case, tmp_path, monkeypatch):
    model, frame, _ = case
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    monkeypatch.setenv(MEMORY_BUDGET_VARIABLE, "2KiB")
    result = invoke(model, "--data", tmp_path / "d.parquet", "--out", tmp_path / "out", "-q", "--audits", "metrics")
    assert_clean_input_error(result, "cannot hold one row", "2.0 KiB")
    assert not (tmp_path / "out").exists()


def test_a_memory_budget_that_is_not_a_size_is_a_usage_error(case, monkeypatch):
    model, frame, _ = case
    monkeypatch.setenv(MEMORY_BUDGET_VARIABLE, "lots")
    result, _ = run_cli(model, to_bytes(frame))
    assert_clean_input_error(result, MEMORY_BUDGET_VARIABLE, "not a size", "500MB")
