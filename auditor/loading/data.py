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
- **Memory**: before reading, the memory the needed columns will take is estimated (from
  the file's size and its first rows, or the Parquet metadata) and compared with the
  memory available (``psutil``, the cgroup limit, else ``os.sysconf``); a file that would
  not fit is refused with both figures. ``AUDITOR_MEMORY_BUDGET`` (e.g. ``50MB``, ``8G``;
  K/M/G/T are powers of 1024) sets the budget instead.
- **Bounds**: a line (the header or a row) longer than
  :func:`~auditor.loading.inputs.line_limit` (64 MiB, less with a small budget) is refused; a
  gzipped CSV is decompressed only as far as the memory check allowed, whatever its trailer
  (which can lie) declares; a FIFO or a device is refused, never waited on. A row that does
  not parse is described (its field count), never quoted.
- **Parquet**: a column read as the target, a sensitive or a named column must be flat
  (numbers, text, dates), not a struct, list or map: that is refused naming the column.

How the file is laid out (format, encoding, delimiter, header, line bounds) is found by
:mod:`auditor.loading.layout`, and its CSV columns are parsed by :mod:`auditor.loading.csv_reader`;
this module resolves the target, sensitive, named and feature columns, checks the memory they
need, reads them and checks their values. :func:`~auditor.loading.sample_rows.read_table` reads
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
from auditor.contract.errors import DataError, UsageError
from auditor.loading.arrow import column_to_numpy
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
    csv_layout,
    format_of,
    not_utf8,
    parquet_columns,
    read_names,
    row_location,
)

TARGET_NAMES = ("target", "label", "y", "class")


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


def _check_flat(path: Path, roles: Mapping[str, str]) -> None:
    """A Parquet column the audit reads as labels or groups (``roles``: column -> what it is
    for) must be flat: numbers, text, true/false or dates, not a struct, list or map."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {exc}.") from None
    for name, role in roles.items():
        if name not in schema.names:
            continue
        kind = schema.field(name).type
        value = kind.value_type if pa.types.is_dictionary(kind) else kind
        if pa.types.is_nested(value):
            raise DataError(
                f"The column {name!r} in {path.name} ({role}) holds nested values ({str(kind)[:80]}); "
                "auditor reads flat columns of numbers or text.",
                hint="Flatten it into plain columns (one per field) before auditing, or name another column.",
            )


def _copies(columns: list[str], used: Sequence[str]) -> dict[str, list[str]]:
    """For each used column whose name the header repeats, the read names of its other copies."""
    names = read_names(columns)
    copies: dict[str, list[str]] = {}
    for header, read_as in zip(columns, names):
        if header in used and read_as != header:
            copies.setdefault(header, []).append(read_as)
    return copies


def _check_copies_agree(path: Path, table: pa.Table, copies: dict[str, list[str]]) -> None:
    """A repeated column may be read only when every copy holds the same values."""
    for name, others in copies.items():
        for other in others:
            if not table.column(name).equals(table.column(other)):
                raise DataError(
                    f"The data file {path.name} has two different columns named {name!r}, and the "
                    "audit reads it.",
                    hint="Rename one of them so the column the model needs is unambiguous.",
                )


def _listing(columns: Sequence[str], limit: int = 20) -> str:
    """Column names for a message: all of them, or the first and last few (targets are often last)."""
    if len(columns) <= limit:
        return ", ".join(repr(c) for c in columns)
    head, tail = columns[: limit - 5], columns[-5:]
    return (", ".join(repr(c) for c in head) + ", ..., " + ", ".join(repr(c) for c in tail)
            + f" ({len(columns)} in all)")


def resolve_target(path: Path, columns: list[str], target: str | None, metadata: dict[str, Any]) -> str:
    if target is not None:
        if target not in columns:
            raise DataError(
                f"The target column {target!r} is not in {path.name}.",
                hint=f"Columns: {_listing(columns)}. Name one with --target.",
            )
        return target
    declared = metadata.get("target")
    if isinstance(declared, str) and declared in columns:
        return declared
    lowered = {c.lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"No target column found in {path.name}: none is named {', '.join(TARGET_NAMES)}.",
        hint=f"Columns: {_listing(columns)}. Name the target with --target COL.",
    )


def resolve_sensitive(
    path: Path, columns: list[str], requested: Sequence[str] | None, metadata: dict[str, Any]
) -> list[str]:
    """The sensitive columns: those asked for (each must exist), else those the model's
    metadata declares that the file has."""
    if requested:
        missing = [name for name in requested if name not in columns]
        if missing:
            raise DataError(
                f"The sensitive column(s) {_listing(missing, 8)} are not in {path.name}.",
                hint=f"Columns: {_listing(columns)}. Fix --sensitive (or [tool.auditor] sensitive).",
            )
        return list(dict.fromkeys(requested))
    declared = metadata.get("sensitive") or []
    return [str(name) for name in declared if str(name) in columns]


def resolve_features(
    path: Path,
    columns: list[str],
    features: Sequence[str] | None,
    metadata: dict[str, Any],
    exclude: Sequence[str],
) -> list[str]:
    declared = metadata.get("feature_names")
    if features:
        wanted = list(features)
        if declared and list(declared) != wanted:
            raise UsageError(
                f"--features ({len(wanted)} columns) differs from the feature_names the model "
                f"declares ({len(declared)} columns, starting {_listing(declared, 5)}).",
                hint="Leave out --features to use the model's own list, or fix the model's metadata.",
            )
        source = "--features"
    elif declared:
        wanted = [str(name) for name in declared]
        source = "the model's feature_names"
    else:
        wanted = list(dict.fromkeys(c for c in columns if c not in exclude))  # a repeated name once
        source = None
        unnamed = [i for i, c in enumerate(columns) if not c.strip() and c in wanted]
        if unnamed:
            raise DataError(
                f"Column {unnamed[0] + 1} of {path.name} has no name, and every column but the target "
                "would be fed to the model.",
                hint="Name it or drop it (a pandas index saved with to_csv(index=True) looks like this), "
                "or list the model's inputs with --features.",
            )
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"{len(missing)} feature column(s) from {source} are missing from {path.name}: "
            f"{_listing(missing, 8)}.",
            hint=f"Columns in the file: {_listing(columns)}.",
        )
    if not wanted:
        raise DataError(f"{path.name} has no feature columns besides the target.")
    return wanted


def _bad_feature_text(
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


def _read_table(
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
        for name in features:
            if not (pa.types.is_integer(table.schema.field(name).type)
                    or pa.types.is_floating(table.schema.field(name).type)
                    or pa.types.is_boolean(table.schema.field(name).type)):
                raise DataError(
                    f"The feature column {name!r} in {path.name} must hold numbers, but it holds "
                    f"{table.schema.field(name).type}.",
                    hint="Encode it as numbers, or leave it out of the model's inputs with --features.",
                )
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
            raise _bad_feature_text(path, fmt, layout, columns, name, cause) from None  # type: ignore[arg-type]
        raise
    for name in wanted:
        if name not in float_columns and pa.types.is_binary(table.schema.field(name).type):
            raise not_utf8(path, f"the column {name!r}", _first_non_utf8(table.column(name)))
    return table


def _first_non_utf8(column: pa.ChunkedArray) -> bytes:
    for value in column.to_pylist():
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                return value[max(exc.start - 4, 0):exc.end + 8]
    return b""


def _feature_matrix(
    path: Path, fmt: str, layout: CsvLayout | None, table: pa.Table, features: list[str]
) -> np.ndarray:
    """The features as a rows x features float32 array, laid out column-major.

    Each column is copied into one contiguous row of a features x rows buffer (writing a
    column into a row-major matrix is a strided, cache-hostile copy: ~3x slower at a million
    rows); the returned array is that buffer's transpose, a view torch takes as it is.
    Missing values arrive as NaN; a missing, NaN or infinite value is an error naming the
    first such column, its count and its first row.
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
    raise DataError(
        f"The feature column {features[j]!r} in {path.name} has {' and '.join(parts)}, first at "
        f"{row_location(path, fmt, layout, first)}{also}.",
        hint=("Impute or drop those rows before auditing; the model cannot take NaN."
              if missing else "Replace them with finite numbers before auditing."),
    )


def _target(path: Path, fmt: str, layout: CsvLayout | None, table: pa.Table, name: str) -> np.ndarray:
    """The target as the file holds it; missing labels (empty, NA, null, NaN...) are refused."""
    import pyarrow.compute as pc

    column = table.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        missing = pc.or_kleene(pc.is_null(column), pc.is_in(column, pa.array(sorted(_MISSING_LABELS))))
    elif pa.types.is_floating(column.type):
        missing = pc.or_kleene(pc.is_null(column), pc.invert(pc.is_finite(column)))
    else:
        missing = pc.is_null(column)
    count = int(pc.sum(missing.cast(pa.int64())).as_py() or 0)
    if count:
        first = int(np.flatnonzero(column_to_numpy(missing.cast(pa.int8())))[0])
        raise DataError(
            f"The target column {name!r} has {count} missing value(s) (empty, NA, null, NaN or infinite), "
            f"first at {row_location(path, fmt, layout, first)}.",
            hint="Drop rows without a label before auditing.",
        )
    return column_to_numpy(column)


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


def load_data(
    path: Path,
    *,
    target: str | None,
    features: Sequence[str] | None,
    metadata: dict[str, Any],
    sensitive: Sequence[str] | None = None,
    named: Mapping[str, str] | None = None,
) -> RawData:
    """Read and validate the data file; the target stays as the file held it.

    ``named`` maps columns that audit options name (e.g. a cross-validation group column) to
    the option naming them, for messages; they are read into ``Dataset.named`` and left out
    of the default features. See the module's docstring for what is accepted and refused.
    """
    named = dict(named or {})
    fmt = format_of(path)
    layout = csv_layout(path, fmt) if fmt != "parquet" else None
    columns = parquet_columns(path) if layout is None else layout.columns
    sensitive = resolve_sensitive(path, columns, sensitive, metadata)
    target_name = resolve_target(path, columns, target, metadata)
    for name, option in named.items():
        if name not in columns:
            raise DataError(
                f"The column {name!r} named by {option} is not in {path.name}.",
                hint=f"Columns: {_listing(columns)}. Fix -o {option}=COLUMN.",
            )
    feature_names = resolve_features(
        path, columns, features, metadata, exclude=[target_name, *sensitive, *named]
    )
    if fmt == "parquet":
        _check_flat(path, {**{name: f"named by {option}" for name, option in named.items()},
                           **{name: "a sensitive column" for name in sensitive}, target_name: "the target"})
    copies = _copies(columns, [*feature_names, target_name, *sensitive, *named])
    if target_name in feature_names:
        raise UsageError(f"The target column {target_name!r} is also listed as a feature.")
    keep = [target_name, *sensitive, *named]
    check_memory(path, fmt, layout, columns, feature_names, [c for c in dict.fromkeys(keep) if c not in feature_names])

    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        table = _read_table(path, fmt, layout, columns, feature_names, keep, copies)
        _check_copies_agree(path, table, copies)
        if table.num_rows == 0:
            raise DataError(
                f"The data file {path.name} has a header but no data rows.",
                hint="Export the test set with at least one row.",
            )
        X = _feature_matrix(path, fmt, layout, table, feature_names)
        target_values = _target(path, fmt, layout, table, target_name)
        groups = {
            name: groups_from_column(name, table.column(name), fed_to_model=name in feature_names)
            for name in sensitive
        }
        named_values = {name: _named_column(path, table, name, option) for name, option in named.items()}
        n_rows = table.num_rows
        del table
        sha = digest.result()

    dataset = Dataset(
        path=str(path),
        sha256=sha,
        n_rows=n_rows,
        columns=columns,
        feature_names=feature_names,
        X=X,
        target_name=target_name,
        named=named_values,
    )
    return RawData(dataset=dataset, target_values=target_values, sensitive=groups)

