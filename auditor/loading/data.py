"""Read the audit data (CSV, gzipped CSV or Parquet) with pyarrow, and validate it.

Only the columns the audit needs are parsed, features straight to float32, so reading
costs no more than the floor (pyarrow's own read) in time or memory.

What the loader accepts, and what it refuses (always a ``DataError``: one line, exit 2):

- **Delimiter**: ``,``, ``;``, tab or ``|``, detected from the header and the first rows
  (the one giving the most fields, consistently; a tie goes to the comma).
- **Encoding**: UTF-8, with or without a byte-order mark (the BOM never reaches a column
  name); UTF-16 and UTF-32 with a byte-order mark are read as such. Text that is not UTF-8
  (Latin-1, Windows-1252, UTF-16 without a BOM) is refused where it would be read (the
  header, a target, sensitive or named column) with the ``iconv`` command that converts
  it: guessing between Latin-1 and Windows-1252 would silently change group labels.
- **Missing values, by column role**: only an empty cell is missing. In a *feature*, a
  missing, NaN or infinite value, and text such as ``NA``, ``None``, ``null`` or ``n/a``,
  is an error naming the column, the count and the first row (data row and file line).
  In the *target*, empty cells and the usual spellings of missing (``NA``, ``N/A``,
  ``n/a``, ``null``, ``NULL``, ``None``, ``NaN``, ``#N/A``...) are missing labels: an
  error naming the row. In *sensitive* and *named* text columns, ``NA``, ``None``,
  ``null`` and ``n/a`` are kept as the text groups the file wrote (``NA`` may be North
  America); only empty cells form the ``(missing)`` group.
- **Repeated column names**: a repeated name the audit does not read is ignored; one it
  reads is read when every copy holds the same values, else refused.
- **Memory**: :func:`load_data` (the whole file at once: the tests' reference, and tools
  that want a table) first estimates the memory the needed columns will take (from the
  file's size and its first rows, or the Parquet metadata) and compares it with the memory
  available (``psutil``, the cgroup limit, else ``os.sysconf``); a file that would not fit is
  refused with both figures. ``AUDITOR_MEMORY_BUDGET`` (e.g. ``50MB``, ``8G``; K/M/G/T are
  powers of 1024) sets the budget instead. A run reads in chunks instead
  (:mod:`auditor.run.stream`), with the same checks on every chunk (:func:`check_chunk`).
- **Bounds**: a line (the header or a row) longer than
  :func:`~auditor.loading.inputs.line_limit` (64 MiB, less with a small budget) is refused; a
  gzipped CSV is decompressed only as far as the memory check allowed, whatever its trailer
  (which can lie) declares; a FIFO or a device is refused, never waited on. A row that does
  not parse is described (its field count), never quoted.
- **Parquet**: a column read as the target, a sensitive or a named column must be flat
  (numbers, text, dates), not a struct, list or map: that is refused naming the column.

How the file is laid out (format, encoding, delimiter, header, line bounds) is found by
:mod:`auditor.loading.layout`, and its CSV columns are parsed by :mod:`auditor.loading.csv_reader`;
:mod:`auditor.loading.columns` resolves the target, sensitive, named and feature columns; this
module checks the memory they need, reads them and checks their values (:func:`check_chunk`,
which :mod:`auditor.run.stream` applies to each chunk of a streamed pass). :func:`~auditor.loading.sample_rows.read_table` reads
every column of a file with the same detection and bounds (for scans of values, such as the
privacy audit's), so that what the run reads and what is scanned can never disagree about a file.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from auditor.contract.context import Dataset, Groups
from auditor.contract.errors import DataError
from auditor.loading.arrow import column_to_numpy
from auditor.loading.columns import ReadPlan, plan_read
from auditor.loading.csv_reader import CONVERSION_ERROR, csv_options, raise_arrow, read_csv
from auditor.loading.groups import groups_from_column
from auditor.loading.hashing import sha256_file
from auditor.loading.inputs import (
    MEMORY_BUDGET_VARIABLE,
    memory_budget,
)
from auditor.loading.inputs import (
    human_size as _human,
)
from auditor.loading.layout import (
    CsvLayout,
    not_utf8,
    read_names,
    row_location,
)


@dataclass
class RawData:
    """The dataset with its target still as the file held it (text or numbers)."""

    dataset: Dataset
    target_values: np.ndarray | None
    sensitive: dict[str, Groups]


# What spreadsheets and pandas write for a missing label (pyarrow's default null values, and "None").
_MISSING_LABELS = frozenset([
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA",
    "NULL", "NaN", "n/a", "nan", "null", "None",
])
# A number as pyarrow's float parser takes it (NaN and infinities are numbers, caught later).
_NUMBER = r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|(?i:inf|infinity|nan))$"
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def check_copies_agree(path: Path, table: pa.Table, copies: dict[str, list[str]]) -> None:
    """A repeated column may be read only when every copy holds the same values."""
    for name, others in copies.items():
        for other in others:
            if not table.column(name).equals(table.column(other)):
                raise DataError(
                    f"The data file {path.name} has two different columns named {name!r}, and the "
                    "audit reads it.",
                    hint="Rename one of them so the column the model needs is unambiguous.",
                )


def bad_feature_text(
    path: Path, fmt: str, layout: CsvLayout, columns: list[str], name: str, fallback: Exception
) -> DataError:
    """Why a feature column failed to convert to numbers: the first offending cell and its row."""
    import pyarrow.compute as pc

    try:
        read, parse, convert = csv_options(
            layout, columns, [name], {name: pa.string()}, null_values=[], strings_can_be_null=False,
            check_utf8=False,
        )
        values = read_csv(path, fmt, read, parse, convert, columns, layout.text_limit).column(name).combine_chunks()
        numeric = pc.match_substring_regex(values, _NUMBER)
        bad = np.flatnonzero(~column_to_numpy(pa.chunked_array([numeric.cast(pa.int8())])).astype(bool))
        first = values[int(bad[0])].as_buffer().to_pybytes().decode("utf-8", errors="replace") if bad.size else ""
        missing = int(pc.sum(pc.is_in(values.take(pa.array(bad, pa.int64())),
                                      pa.array(sorted(_MISSING_LABELS)))).as_py() or 0)
    except Exception:  # noqa: BLE001 - the diagnosis is a courtesy: fall back to pyarrow's message
        bad = np.zeros(0, dtype=np.int64)
    if not bad.size:
        try:
            raise_arrow(path, fallback, columns)
        except DataError as exc:
            return exc
    where = row_location(path, fmt, layout, int(bad[0]))
    others = bad.size - missing
    if first in _MISSING_LABELS:
        return DataError(
            f"The feature column {name!r} in {path.name} has {missing} missing value(s) (written "
            f"{first!r}), first at {where}" + (f", and {others} other non-number(s)" if others else "") + ".",
            hint="Impute or drop those rows before auditing; the model cannot take missing values.",
        )
    hint = "Encode it as numbers, or leave it out of the model's inputs with --features."
    if layout.delimiter == ";" and _DECIMAL_COMMA.match(first):
        hint = ("It looks like a decimal comma: write numbers with a decimal point (e.g. in pandas, "
                "read_csv(decimal=',') then to_csv()).")
    return DataError(
        f"The feature column {name!r} in {path.name} must hold numbers, but it holds {first[:40]!r} at "
        f"{where}; {others} such value(s) in the column" + (f", and {missing} missing" if missing else "") + ".",
        hint=hint,
    )


def check_number_features(path: Path, schema: pa.Schema, features: list[str]) -> None:
    """A Parquet feature column must hold numbers (integers, floats or true/false)."""
    for name in features:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise DataError(
                f"The feature column {name!r} in {path.name} must hold numbers, but it holds {kind}.",
                hint="Encode it as numbers, or leave it out of the model's inputs with --features.",
            )


def read_columns(
    path: Path,
    fmt: str,
    layout: CsvLayout | None,
    columns: list[str],
    features: list[str],
    keep: list[str],
    copies: dict[str, list[str]],
) -> pa.Table:
    wanted = list(dict.fromkeys(features + keep + [c for others in copies.values() for c in others]))
    float_columns = features + [c for name in features for c in copies.get(name, [])]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path, columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"The Parquet file {path.name} cannot be read: {str(exc)[:200]}.",
                            hint="It is probably truncated or corrupt; write it again.") from None
        check_number_features(path, table.schema, features)
        return table
    assert layout is not None
    read, parse, convert = csv_options(
        layout, columns, wanted, {name: pa.float32() for name in float_columns},
        null_values=[""], strings_can_be_null=True,
    )
    try:
        table = read_csv(path, fmt, read, parse, convert, columns, layout.text_limit)
    except DataError as error:
        cause = error.__context__
        match = CONVERSION_ERROR.search(str(cause)) if cause is not None else None
        index = int(match.group(1)) if match else -1
        if match and 0 <= index < len(columns) and read_names(columns)[index] in float_columns:
            name = read_names(columns)[index]
            raise bad_feature_text(path, fmt, layout, columns, name, cause) from None  # type: ignore[arg-type]
        raise
    check_text(path, table, [name for name in wanted if name not in float_columns])
    return table


def check_text(path: Path, table: pa.Table, names: list[str]) -> None:
    """Text columns must be UTF-8: pyarrow reads one that is not as binary."""
    for name in names:
        if pa.types.is_binary(table.schema.field(name).type):
            raise not_utf8(path, f"the column {name!r}", _first_non_utf8(table.column(name)))


def check_chunk(plan: ReadPlan, table: pa.Table, offset: int | None = None, *, features: bool = True) -> Any:
    """The checks of one chunk of ``plan``'s columns (``offset``: its first data row; None for
    the whole file): repeated columns agree, text is UTF-8, no label is missing; and its
    features as float32 (see :func:`feature_matrix`), unless ``features`` is False (a
    source's inputs come apart from its table, already checked)."""
    check_copies_agree(plan.path, table, plan.copies)
    check_text(plan.path, table, [name for name in plan.wanted if name not in plan.float_columns])
    check_target(plan.path, plan.fmt, plan.layout, table, plan.target_name, offset)
    if not features:
        return None
    return feature_matrix(plan.path, plan.fmt, plan.layout, table, plan.feature_names, offset)


def _first_non_utf8(column: pa.ChunkedArray) -> bytes:
    for value in column.to_pylist():
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                return value[max(exc.start - 4, 0):exc.end + 8]
    return b""


def feature_matrix(
    path: Path, fmt: str, layout: CsvLayout | None, table: pa.Table, features: list[str], offset: int | None = None
) -> np.ndarray:
    """The features as a rows x features float32 array, laid out column-major.

    Each column is copied into one contiguous row of a features x rows buffer (writing a
    column into a row-major matrix is a strided, cache-hostile copy: ~3x slower at a million
    rows); the returned array is that buffer's transpose, a view torch takes as it is.
    Missing values arrive as NaN; a missing, NaN or infinite value is an error naming the
    first such column, its count and its first row (``offset``: the table's first data row in
    the file, for a chunk; the count is then the chunk's, and the message says so).
    """
    n = table.num_rows
    columns = np.empty((len(features), n), dtype=np.float32)
    for j, name in enumerate(features):
        column = table.column(name)
        if column.type != pa.float32():
            column = column.cast(pa.float32())
        columns[j] = column_to_numpy(column)
    finite = np.isfinite(columns)
    if finite.all():
        return columns.T
    j = int(np.flatnonzero(~finite.all(axis=1))[0])
    row_bad = ~finite[j]
    first = int(np.flatnonzero(row_bad)[0])
    missing = int(np.isnan(columns[j]).sum())
    infinite = int(row_bad.sum()) - missing
    others = sorted({features[k] for k in np.flatnonzero(~finite.all(axis=1))} - {features[j]})
    parts = []
    if missing:
        parts.append(f"{missing} missing or NaN value(s)")
    if infinite:
        parts.append(f"{infinite} infinity value(s)")
    also = f"; {len(others)} other feature column(s) too, e.g. {others[0]!r}" if others else ""
    within = f" in data rows {offset + 1:,}-{offset + n:,}" if offset is not None else ""
    raise DataError(
        f"The feature column {features[j]!r} in {path.name} has {' and '.join(parts)}{within}, first at "
        f"{row_location(path, fmt, layout, (offset or 0) + first)}{also}.",
        hint=("Impute or drop those rows before auditing; the model cannot take NaN."
              if missing else "Replace them with finite numbers before auditing."),
    )


def is_text(kind: pa.DataType) -> bool:
    """A text column: strings, or strings dictionary-encoded (how the streamed pass keeps them)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def check_target(
    path: Path, fmt: str, layout: CsvLayout | None, table: pa.Table, name: str, offset: int | None = None
) -> None:
    """Missing labels (empty, NA, null, NaN...) in the target are refused, naming the first
    (``offset``: the table's first data row, for a chunk; the count is then the chunk's)."""
    import pyarrow.compute as pc

    column = table.column(name)
    if is_text(column.type):
        missing = pc.or_kleene(pc.is_null(column), pc.is_in(column, pa.array(sorted(_MISSING_LABELS))))
    elif pa.types.is_floating(column.type):
        missing = pc.or_kleene(pc.is_null(column), pc.invert(pc.is_finite(column)))
    else:
        missing = pc.is_null(column)
    count = int(pc.sum(missing.cast(pa.int64())).as_py() or 0)
    if count:
        first = int(np.flatnonzero(column_to_numpy(missing.cast(pa.int8())))[0])
        within = f" in data rows {offset + 1:,}-{offset + table.num_rows:,}" if offset is not None else ""
        raise DataError(
            f"The target column {name!r} has {count} missing value(s) (empty, NA, null, NaN or infinite){within}, "
            f"first at {row_location(path, fmt, layout, (offset or 0) + first)}.",
            hint="Drop rows without a label before auditing.",
        )


def _target(path: Path, fmt: str, layout: CsvLayout | None, table: pa.Table, name: str) -> np.ndarray:
    """The target as the file holds it; missing labels are refused (:func:`check_target`)."""
    check_target(path, fmt, layout, table, name)
    return column_to_numpy(table.column(name))


def _named_column(path: Path, table: pa.Table, name: str, option: str) -> np.ndarray:
    """A column an audit option names, as the file holds it; it must have no missing values."""
    column = table.column(name)
    if column.null_count:
        raise DataError(
            f"The column {name!r} named by {option} has {column.null_count} missing value(s) in {path.name}.",
            hint="Fill them (e.g. with a placeholder group) before auditing.",
        )
    return column_to_numpy(column)


# --- memory -------------------------------------------------------------------------------------

def _memory_needed(
    path: Path, fmt: str, layout: CsvLayout | None, columns: list[str], features: list[str], others: list[str]
) -> tuple[int, int]:
    """Estimated bytes to read the needed columns (the table and the float32 matrix), and rows."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"The Parquet file {path.name} cannot be read: {str(exc)[:200]}.") from None
        wanted = set(features) | set(others)
        stored = 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.path_in_schema in wanted:
                    stored += chunk.total_uncompressed_size
        rows = meta.num_rows
        return stored + rows * len(features) * 8, rows
    assert layout is not None
    rows = int(layout.size / max(layout.bytes_per_row, 1.0))
    width = layout.bytes_per_row / max(len(columns), 1)  # a cell's text, on average
    per_row = len(features) * 8 + len(others) * (width + 16)  # float32 table + matrix; text + offsets
    return int(rows * per_row), rows


def check_memory(
    path: Path, fmt: str, layout: CsvLayout | None, columns: list[str], features: list[str], others: list[str]
) -> None:
    needed, rows = _memory_needed(path, fmt, layout, columns, features, others)
    budget, source = memory_budget()
    if needed <= budget:
        if layout is not None and fmt == "csv.gz":  # the estimate grows with the text: stop where it meets the budget
            layout.text_limit = max(layout.size, int(layout.size * (budget / max(needed, 1))))
        return
    raise DataError(
        f"Reading {path.name} needs about {_human(needed)} of memory (about {rows:,} rows x "
        f"{len(features) + len(others)} columns), but only {_human(budget)} is {source}.",
        hint=(f"Audit a sample of the rows (e.g. `head -n 100001 {path.name} > sample.csv`), convert it "
              "to Parquet with only the columns the audit needs, or use a machine with more memory; "
              f"{MEMORY_BUDGET_VARIABLE} (e.g. 16GB) overrides the budget if the estimate is too cautious."),
    )


def finish(plan: ReadPlan, kept: pa.Table, X: np.ndarray, n_rows: int, sha: str) -> RawData:
    """The dataset from the features ``X`` and the kept columns of every row (``kept``:
    target, sensitive and named columns, in file order): the target checked for missing
    labels, sensitive columns made groups, named columns checked for missing values."""
    path = plan.path
    target_values = _target(path, plan.fmt, plan.layout, kept, plan.target_name)
    groups = {
        name: groups_from_column(name, kept.column(name), fed_to_model=name in plan.feature_names)
        for name in plan.sensitive
    }
    named_values = {name: _named_column(path, kept, name, option) for name, option in plan.named.items()}
    dataset = Dataset(
        path=str(path),
        sha256=sha,
        n_rows=n_rows,
        columns=plan.columns,
        feature_names=plan.feature_names,
        X=X,
        target_name=plan.target_name,
        named=named_values,
        labels=str(plan.source.labels_path) if getattr(plan.source, "labels_path", None) else None,
        text=plan.source.text.column if getattr(plan.source, "text", None) is not None else None,
    )
    return RawData(dataset=dataset, target_values=target_values, sensitive=groups)


def no_rows(path: Path) -> DataError:
    return DataError(
        f"The data file {path.name} has a header but no data rows.",
        hint="Export the test set with at least one row.",
    )


def load_data(
    path: Path,
    *,
    target: str | None,
    features: Sequence[str] | None,
    metadata: dict[str, Any],
    sensitive: Sequence[str] | None = None,
    named: Mapping[str, str] | None = None,
) -> RawData:
    """Read and validate the whole data file at once; the target stays as the file held it.

    ``named`` maps columns that audit options name (e.g. a cross-validation group column) to
    the option naming them, for messages; they are read into ``Dataset.named`` and left out
    of the default features. See the module's docstring for what is accepted and refused.
    A run reads through :mod:`auditor.run.stream` instead, in chunks the memory budget sets,
    with the same plan, checks and finish: for the same file the two give the same dataset.
    """
    plan = plan_read(path, target=target, features=features, metadata=metadata, sensitive=sensitive, named=named)
    fmt, layout, columns, feature_names = plan.fmt, plan.layout, plan.columns, plan.feature_names
    check_memory(path, fmt, layout, columns, feature_names, plan.others)

    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        table = read_columns(path, fmt, layout, columns, feature_names, plan.keep, plan.copies)
        check_copies_agree(path, table, plan.copies)
        if table.num_rows == 0:
            raise no_rows(path)
        X = feature_matrix(path, fmt, layout, table, feature_names)
        kept = table.select(list(dict.fromkeys(plan.keep)))
        n_rows = table.num_rows
        del table
        return finish(plan, kept, X, n_rows, digest.result())
