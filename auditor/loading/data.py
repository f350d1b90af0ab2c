"""Read the audit data (CSV, gzipped CSV or Parquet) with pyarrow, and validate it.

Only the columns the audit needs are parsed, features straight to float32, so reading
costs no more than the floor (pyarrow's own read) in time or memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..context import Dataset, Groups
from ..errors import DataError, UsageError
from ..arrow import column_to_numpy
from ..groups import groups_from_column
from ..hashing import sha256_file

TARGET_NAMES = ("target", "label", "y", "class")

_CONVERSION = re.compile(r"CSV column #(\d+):(?: Row #(\d+):)? CSV conversion error to (\w+): invalid value '(.*)'")
_FIELD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+): ?(.*)")


@dataclass
class RawData:
    """The dataset with its target still as the file held it (text or numbers)."""

    dataset: Dataset
    target_values: np.ndarray | None
    sensitive: dict[str, Groups]


def _format_of(path: Path) -> str:
    if not path.exists():
        raise DataError(f"The data file {str(path)!r} does not exist.", hint="Check the --data path.")
    if path.is_dir():
        raise DataError(f"The data path {str(path)!r} is a directory; a CSV or Parquet file was expected.")
    if path.stat().st_size == 0:
        raise DataError(
            f"The data file {path.name} is empty (0 bytes).",
            hint="Export the test set with a header row and at least one data row.",
        )
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "csv.gz"
    if head.startswith(b"PK") or head[:1] == b"\x80":
        raise DataError(
            f"The data file {path.name} looks like a saved model or archive, not CSV or Parquet.",
            hint="Did you swap the model and --data arguments?",
        )
    return "csv"


def _csv_header(path: Path, fmt: str) -> list[str]:
    opener = gzip.open if fmt == "csv.gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:  # type: ignore[operator]
            line = handle.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(
            f"The data file {path.name} is not readable UTF-8 CSV ({type(exc).__name__}).",
            hint="Save it as UTF-8 CSV or Parquet.",
        ) from None
    if not line.strip():
        raise DataError(
            f"The data file {path.name} has no header row.",
            hint="The first line must name the columns, e.g. 'age,income,target'.",
        )
    return next(csv.reader(io.StringIO(line)))


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {exc}.") from None


def _read_names(columns: list[str]) -> list[str]:
    """Names to read the file with: a repeated header name gets '.1', '.2'... like pandas."""
    taken = set(columns)
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        if name not in seen:
            seen[name] = 0
            names.append(name)
            continue
        while True:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
            if candidate not in taken:
                break
        taken.add(candidate)
        names.append(candidate)
    return names


def _copies(columns: list[str], used: Sequence[str]) -> dict[str, list[str]]:
    """For each used column whose name the header repeats, the read names of its other copies."""
    names = _read_names(columns)
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
        wanted = [c for c in columns if c not in exclude]
        source = None
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


def _raise_arrow(path: Path, exc: Exception, all_columns: list[str]) -> None:
    text = str(exc)
    match = _CONVERSION.search(text)
    if match:
        column = all_columns[int(match.group(1))] if int(match.group(1)) < len(all_columns) else "?"
        row = f" (data row {int(match.group(2))})" if match.group(2) else ""
        raise DataError(
            f"The feature column {column!r} in {path.name} must hold numbers, but it holds "
            f"{match.group(4)[:40]!r}{row}.",
            hint="Encode it as numbers, or leave it out of the model's inputs with --features.",
        ) from None
    match = _FIELD_COUNT.search(text)
    if match:
        raise DataError(
            f"A row of {path.name} has {match.group(2)} fields where the header has "
            f"{match.group(1)}: {match.group(3)[:60]!r}.",
            hint="Fix the malformed row (an unquoted comma, or a truncated line).",
        ) from None
    raise DataError(f"{path.name} cannot be parsed as CSV: {text.splitlines()[0][:200]}") from None


def _read_table(
    path: Path, fmt: str, columns: list[str], features: list[str], keep: list[str], copies: dict[str, list[str]]
) -> pa.Table:
    wanted = list(dict.fromkeys(features + keep + [c for others in copies.values() for c in others]))
    float_columns = features + [c for name in features for c in copies.get(name, [])]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=wanted)
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
    import pyarrow.csv as pacsv

    source: Any = str(path)
    if fmt == "csv.gz":
        source = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    convert = pacsv.ConvertOptions(
        include_columns=wanted,
        column_types={name: pa.float32() for name in float_columns},
        strings_can_be_null=True,
    )
    read = pacsv.ReadOptions(column_names=_read_names(columns), skip_rows=1) if copies else None
    try:
        return pacsv.read_csv(source, read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_arrow(path, exc, columns)
        raise  # unreachable: _raise_arrow always raises


def _feature_matrix(path: Path, table: pa.Table, features: list[str]) -> np.ndarray:
    """The features as a rows x features float32 array, laid out column-major.

    Each column is copied into one contiguous row of a features x rows buffer (writing a
    column into a row-major matrix is a strided, cache-hostile copy: ~3x slower at a million
    rows); the returned array is that buffer's transpose, a view torch takes as it is.
    """
    n = table.num_rows
    columns = np.empty((len(features), n), dtype=np.float32)
    for j, name in enumerate(features):
        column = table.column(name)
        if column.null_count:
            raise DataError(
                f"The feature column {name!r} in {path.name} has {column.null_count} missing or NaN "
                "value(s).",
                hint="Impute or drop those rows before auditing; the model cannot take NaN.",
            )
        if column.type != pa.float32():
            column = column.cast(pa.float32())
        columns[j] = column_to_numpy(column)
    X = columns.T
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(
            f"The feature column {features[cols[0]]!r} in {path.name} holds infinity or NaN "
            f"({int(bad.sum())} value(s), first at data row {int(rows[0]) + 1}).",
            hint="Replace them with finite numbers before auditing.",
        )
    return X


def _named_column(path: Path, table: pa.Table, name: str, option: str) -> np.ndarray:
    """A column an audit option names, as the file holds it; it must have no missing values."""
    column = table.column(name)
    if column.null_count:
        raise DataError(
            f"The column {name!r} named by {option} has {column.null_count} missing value(s) in {path.name}.",
            hint="Fill them (e.g. with a placeholder group) before auditing.",
        )
    return column_to_numpy(column)


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
    of the default features.
    """
    named = dict(named or {})
    fmt = _format_of(path)
    columns = _parquet_columns(path) if fmt == "parquet" else _csv_header(path, fmt)
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
    copies = _copies(columns, [*feature_names, target_name, *sensitive, *named])
    if target_name in feature_names:
        raise UsageError(f"The target column {target_name!r} is also listed as a feature.")

    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        table = _read_table(path, fmt, columns, feature_names, [target_name, *sensitive, *named], copies)
        _check_copies_agree(path, table, copies)
        if table.num_rows == 0:
            raise DataError(
                f"The data file {path.name} has a header but no data rows.",
                hint="Export the test set with at least one row.",
            )
        X = _feature_matrix(path, table, feature_names)
        y_column = table.column(target_name)
        if y_column.null_count:
            raise DataError(
                f"The target column {target_name!r} has {y_column.null_count} missing value(s).",
                hint="Drop rows without a label before auditing.",
            )
        target_values = column_to_numpy(y_column)
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
