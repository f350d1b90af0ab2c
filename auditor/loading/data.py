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

:func:`read_table` reads every column of a file with the same detection and bounds (for scans
of values, such as the privacy audit's), so that what the run reads and what is scanned can
never disagree about a file.

One concept: reading a data file as the run reads it. The format, delimiter, encoding and
header detection, the memory bounds and the messages are shared by every part, so they stay
in one module.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from auditor.contract.context import Dataset, Groups
from auditor.contract.errors import DataError, UsageError
from auditor.loading.arrow import column_to_numpy
from auditor.loading.groups import groups_from_column
from auditor.loading.hashing import sha256_file
from auditor.loading.inputs import (
    MEMORY_BUDGET_VARIABLE,
    MIN_BOUND,
    BoundedStream,
    InputTooLarge,
    binary_kind,
    line_limit,
    memory_budget,
    not_a_table,
    open_regular,
    read_limit,
)
from auditor.loading.inputs import (
    human_size as _human,
)

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
        raise not_a_table("The data path", path, "a folder")
    with open_regular(path, "The data file") as handle:  # a FIFO or a device is refused, not waited on
        head = handle.read(512)
    if not head:
        raise DataError(
            f"The data file {path.name} is empty (0 bytes).",
            hint="Export the test set with a header row and at least one data row.",
        )
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "csv.gz"
    kind = binary_kind(path, head)
    if kind is not None:  # an image, array, archive or document: never read as text
        raise not_a_table("The data file", path, kind)
    if head[:1] == b"\x80":
        raise not_a_table("The data file", path, "a saved model (torch.save or torch.jit.save)")
    return "csv"


_SAMPLE_BYTES = 1 << 16
_DELIMITERS = ",;\t|"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# What spreadsheets and pandas write for a missing label (pyarrow's default null values, and "None").
_MISSING_LABELS = frozenset([
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA",
    "NULL", "NaN", "n/a", "nan", "null", "None",
])
# A number as pyarrow's float parser takes it (NaN and infinities are numbers, caught later).
_NUMBER = r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|(?i:inf|infinity|nan))$"
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_LINE_SCAN_LIMIT = 1_000_000


@dataclass
class _CsvLayout:
    """How a CSV file is written, from its header and first rows."""

    encoding: str  # a Python codec name, which pyarrow understands too
    delimiter: str
    columns: list[str]
    header_lines: int  # physical lines the header takes
    size: int  # bytes of text (decompressed, for gzip; estimated from the trailer)
    bytes_per_row: float
    text_limit: int | None = None  # gzip: the most text the memory check allows (the trailer can lie)


def _gzip_error(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"The data file {path.name} starts like gzip but cannot be decompressed ({type(exc).__name__}: "
        f"{str(exc)[:80]}).",
        hint="It is probably truncated or corrupt: check it with `gzip -t`, and compress the CSV again.",
    )


def _head(path: Path, fmt: str, size: int = _SAMPLE_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of the (decompressed) text, and whether they are all of it."""
    try:
        if fmt == "csv.gz":
            with gzip.open(path, "rb") as handle:
                head = handle.read(size + 1)
        else:
            with path.open("rb") as handle:
                head = handle.read(size + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_error(path, exc) from None
    return head[:size], len(head) <= size


def _convert_hint(path: Path, source: str) -> str:
    stem = path.name.split(".")[0]
    if path.name.endswith(".gz"):
        command = f"gunzip -c {path.name} | iconv -f {source} -t utf-8 | gzip > {stem}-utf8.csv.gz"
    else:
        command = f"iconv -f {source} -t utf-8 {path.name} > {stem}-utf8.csv"
    return (f"Convert it to UTF-8, e.g. `{command}`, or save it as 'CSV UTF-8' (Excel) or Parquet.")


def _not_utf8(path: Path, where: str, raw: bytes) -> DataError:
    return DataError(
        f"The data file {path.name} is not UTF-8: {where} holds {raw[:12]!r}, which looks like Latin-1 "
        "(ISO-8859-1) or Windows-1252 text.",
        hint=_convert_hint(path, "latin1") + " Use -f cp1252 for files from Windows.",
    )


def _encoding(path: Path, head: bytes) -> str:
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise DataError(
            f"The data file {path.name} holds NUL bytes: it looks like UTF-16 text without a byte-order "
            "mark, and auditor does not guess its byte order.",
            hint=_convert_hint(path, "utf-16le") + " (Use -f utf-16be for big-endian files.)",
        )
    return "utf-8-sig"


def _open_text(path: Path, fmt: str, encoding: str) -> io.TextIOBase:
    """The file as text, undecodable bytes replaced (only for counting lines)."""
    if fmt == "csv.gz":
        return gzip.open(path, "rt", encoding=encoding, errors="replace", newline="")  # type: ignore[return-value]
    return path.open("rt", encoding=encoding, errors="replace", newline="")  # type: ignore[return-value]


class _BigFields:
    """Let the csv module read fields as long as a line may be (its default limit is 128 KiB;
    see :func:`auditor.loading.inputs.line_limit`)."""

    def __enter__(self) -> None:
        self.old = csv.field_size_limit(line_limit())

    def __exit__(self, *exc: Any) -> None:
        csv.field_size_limit(self.old)


def _fields(line: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return 0


def _delimiter(lines: list[str]) -> str:
    """The delimiter giving the header the most fields, preferring one the first rows agree with."""
    header, rows = lines[0], [line for line in lines[1:6] if line.strip()]

    def score(delimiter: str) -> tuple[bool, bool, int]:
        width = _fields(header, delimiter)
        return width > 1, all(_fields(row, delimiter) == width for row in rows), width

    return max(_DELIMITERS, key=score)  # the first best: a tie goes to the comma


def _sniff_csv(path: Path, fmt: str) -> _CsvLayout:
    head, whole = _head(path, fmt)
    encoding = _encoding(path, head)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    if not lines or not lines[0].strip():
        raise DataError(
            f"The data file {path.name} has no header row (its first line is blank).",
            hint="The first line must name the columns, e.g. 'age,income,target'.",
        )
    delimiter = _delimiter(lines)
    columns, header_lines = _header(path, fmt, encoding, delimiter, head, whole)
    if fmt == "csv.gz":
        size = _gzip_size(path)
    else:
        size = path.stat().st_size
    body = head.split(b"\n", header_lines)[-1] if head.count(b"\n") > header_lines else b""
    rows = body.count(b"\n")
    bytes_per_row = len(body) / rows if rows else max(float(len(head)), 1.0)
    return _CsvLayout(encoding, delimiter, columns, header_lines, size, bytes_per_row)


def _header(path: Path, fmt: str, encoding: str, delimiter: str, head: bytes, whole: bool) -> tuple[list[str], int]:
    """The column names and how many physical lines they take (a quoted name may hold a newline).

    Bytes that are not text in the encoding are kept (as surrogates) so that only the header's
    own bytes can make it unreadable; a header longer than the sample is read with more."""
    size = len(head)
    while True:
        if not whole and b"\n" not in head and b"\r" not in head:  # the first line goes on: read more
            if size >= line_limit():
                raise _line_too_long(path, "The header of")
            size = min(size * 8, line_limit())
            head, whole = _head(path, fmt, size)
            continue
        try:
            text = head.decode(encoding, errors="surrogateescape")
        except UnicodeDecodeError:  # UTF-16 cut mid-character: surrogateescape takes only high bytes
            text = head.decode(encoding, errors="replace")
        try:
            with _BigFields():
                reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
                columns = next(reader, [])
                header_lines = reader.line_num
        except csv.Error as exc:
            raise DataError(f"The header of {path.name} cannot be parsed as CSV: {exc}.",
                            hint="Check the quotes in the first line.") from None
        if whole or header_lines < len(io.StringIO(text, newline="").readlines()):
            break
        if size >= line_limit():  # no end to the header within the bound (a gzip bomb is one line)
            raise _line_too_long(path, "The header of")
        size = min(size * 8, line_limit())
        head, whole = _head(path, fmt, size)
    for name in columns:
        if any("\udc80" <= ch <= "\udcff" for ch in name):
            raw = name.encode(encoding.replace("-sig", ""), errors="surrogateescape")
            raise _not_utf8(path, "its header", raw[:40])
    if columns and columns[0].startswith("\ufeff"):
        columns[0] = columns[0][1:]  # a second BOM
    return columns, header_lines


def _line_too_long(path: Path, where: str = "A row of") -> DataError:
    budget, source = memory_budget()
    return DataError(
        f"{where} {path.name} is longer than {_human(line_limit())}, the longest line auditor reads "
        f"(with {_human(budget)} of memory, {source}).",
        hint="Check that it is the data file you meant: a CSV row that long is not a table's row. "
        f"{MEMORY_BUDGET_VARIABLE} (e.g. 16GB) raises the bound with the budget.",
    )


def _gzip_size(path: Path) -> int:
    """The decompressed size from the gzip trailer (it keeps the size modulo 4 GiB)."""
    compressed = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(compressed - 4, 0))
        size = int.from_bytes(handle.read(4).ljust(4, b"\0"), "little")
    while size < compressed:
        size += 1 << 32
    return size


def _data_line(path: Path, fmt: str, layout: _CsvLayout | None, row: int) -> int | None:
    """The line of the file (1-based) where data row ``row`` (0-based) starts, if cheap to find."""
    if layout is None or row > _LINE_SCAN_LIMIT:
        return None
    try:
        with _BigFields(), _open_text(path, fmt, layout.encoding) as handle:
            reader = csv.reader(handle, delimiter=layout.delimiter)
            next(reader)
            start, seen = reader.line_num + 1, -1
            for record in reader:
                if record:  # pyarrow skips empty lines
                    seen += 1
                    if seen == row:
                        return start
                start = reader.line_num + 1
    except (csv.Error, OSError, EOFError, UnicodeDecodeError, zlib.error, StopIteration):
        return None
    return None


def _where(path: Path, fmt: str, layout: _CsvLayout | None, row: int) -> str:
    """Data row ``row`` (0-based) for a message: 1-based, with its line in the file."""
    line = _data_line(path, fmt, layout, row)
    return f"data row {row + 1}" + (f" (line {line} of the file)" if line else "")


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {exc}.") from None


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
        raise DataError(  # the row itself is not quoted: a file that does not parse may be anything
            f"A row of {path.name} has {match.group(2)} fields where the header has {match.group(1)}.",
            hint="Fix the malformed row (an unquoted delimiter, or a truncated line).",
        ) from None
    if "Empty CSV file" in text or "Could not skip initial" in text:
        raise DataError(
            f"The data file {path.name} has a header but no data rows.",
            hint="Export the test set with at least one row.",
        ) from None
    problem = (text.strip().splitlines() or [type(exc).__name__])[0].split(":", 1)[0][:80]
    raise DataError(f"{path.name} cannot be parsed as CSV ({problem}).",
                    hint="Check that it is a CSV file with a header row.") from None


def _csv_options(
    layout: _CsvLayout, columns: list[str], include: list[str], types: Mapping[str, pa.DataType], **convert: Any
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        column_names=_read_names(columns),
        skip_rows=layout.header_lines,
        encoding="utf8" if layout.encoding == "utf-8-sig" else layout.encoding,
        # a row must fit in one block: the first rows tell how long rows are
        block_size=max(1 << 20, int(layout.bytes_per_row * 4)),
    )
    parse = pacsv.ParseOptions(delimiter=layout.delimiter)
    options = pacsv.ConvertOptions(include_columns=include, column_types=dict(types), **convert)
    return read, parse, options


def _source(path: Path, fmt: str, text_limit: int | None) -> Any:
    """What pyarrow reads: the file, or its gzip stream cut off past ``text_limit`` bytes of
    text (the limit the memory check allowed: a gzip trailer is no bound, it can lie)."""
    if fmt != "csv.gz":
        return str(path)
    stream = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    if text_limit is None:
        return stream
    return pa.PythonFile(BoundedStream(stream, text_limit), mode="r")


def _read_csv(
    path: Path, fmt: str, read: Any, parse: Any, convert: Any, columns: list[str], text_limit: int | None = None
) -> pa.Table:
    import pyarrow.csv as pacsv

    try:
        try:
            source = _source(path, fmt, text_limit)
            return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if "straddling" not in str(exc):
                raise
        # a row longer than a block (a huge text field): read again with blocks of the longest line
        if read.block_size >= line_limit():
            raise _line_too_long(path)
        read.block_size = line_limit()
        try:
            source = _source(path, fmt, text_limit)
            return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if "straddling" in str(exc):
                raise _line_too_long(path) from None
            raise
    except InputTooLarge:
        raise DataError(
            f"The data file {path.name} decompresses to more than {_human(text_limit or 0)} of text, more "
            "than its gzip trailer declares and than the memory budget allows.",
            hint=f"Check that it is the file you meant; {MEMORY_BUDGET_VARIABLE} (e.g. 16GB) raises the "
            "budget if you have the memory.",
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_arrow(path, exc, columns)
        raise  # unreachable: _raise_arrow always raises
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError) and read.encoding != "utf8":
            raise DataError(
                f"The data file {path.name} is not valid {read.encoding.upper()} text ({exc.reason}): it is "
                "probably truncated or corrupt.",
                hint="Export it again, preferably as UTF-8 CSV or Parquet.",
            ) from None
        if isinstance(exc, UnicodeDecodeError):
            raise _not_utf8(path, "a row", exc.object[exc.start:exc.end + 8]) from None
        if fmt == "csv.gz":
            raise _gzip_error(path, exc) from None
        raise DataError(f"The data file {path.name} cannot be read: {exc}.") from None


def _bad_feature_text(
    path: Path, fmt: str, layout: _CsvLayout, columns: list[str], name: str, fallback: Exception
) -> DataError:
    """Why a feature column failed to convert to numbers: the first offending cell and its row."""
    import pyarrow.compute as pc

    try:
        read, parse, convert = _csv_options(
            layout, columns, [name], {name: pa.string()}, null_values=[], strings_can_be_null=False,
            check_utf8=False,
        )
        values = _read_csv(path, fmt, read, parse, convert, columns, layout.text_limit).column(name).combine_chunks()
        numeric = pc.match_substring_regex(values, _NUMBER)
        bad = np.flatnonzero(~column_to_numpy(pa.chunked_array([numeric.cast(pa.int8())])).astype(bool))
        first = values[int(bad[0])].as_buffer().to_pybytes().decode("utf-8", errors="replace") if bad.size else ""
        missing = int(pc.sum(pc.is_in(values.take(pa.array(bad, pa.int64())),
                                      pa.array(sorted(_MISSING_LABELS)))).as_py() or 0)
    except Exception:  # noqa: BLE001 - the diagnosis is a courtesy: fall back to pyarrow's message
        bad = np.zeros(0, dtype=np.int64)
    if not bad.size:
        try:
            _raise_arrow(path, fallback, columns)
        except DataError as exc:
            return exc
    where = _where(path, fmt, layout, int(bad[0]))
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
    layout: _CsvLayout | None,
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
    read, parse, convert = _csv_options(
        layout, columns, wanted, {name: pa.float32() for name in float_columns},
        null_values=[""], strings_can_be_null=True,
    )
    try:
        table = _read_csv(path, fmt, read, parse, convert, columns, layout.text_limit)
    except DataError as error:
        cause = error.__context__
        match = _CONVERSION.search(str(cause)) if cause is not None else None
        index = int(match.group(1)) if match else -1
        if match and 0 <= index < len(columns) and _read_names(columns)[index] in float_columns:
            name = _read_names(columns)[index]
            raise _bad_feature_text(path, fmt, layout, columns, name, cause) from None  # type: ignore[arg-type]
        raise
    for name in wanted:
        if name not in float_columns and pa.types.is_binary(table.schema.field(name).type):
            raise _not_utf8(path, f"the column {name!r}", _first_non_utf8(table.column(name)))
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
    path: Path, fmt: str, layout: _CsvLayout | None, table: pa.Table, features: list[str]
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
        f"{_where(path, fmt, layout, first)}{also}.",
        hint=("Impute or drop those rows before auditing; the model cannot take NaN."
              if missing else "Replace them with finite numbers before auditing."),
    )


def _target(path: Path, fmt: str, layout: _CsvLayout | None, table: pa.Table, name: str) -> np.ndarray:
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
            f"first at {_where(path, fmt, layout, first)}.",
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
    path: Path, fmt: str, layout: _CsvLayout | None, columns: list[str], features: list[str], others: list[str]
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


def _check_memory(
    path: Path, fmt: str, layout: _CsvLayout | None, columns: list[str], features: list[str], others: list[str]
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
    fmt = _format_of(path)
    layout = _sniff_csv(path, fmt) if fmt != "parquet" else None
    columns = _parquet_columns(path) if layout is None else layout.columns
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
    _check_memory(path, fmt, layout, columns, feature_names, [c for c in dict.fromkeys(keep) if c not in feature_names])

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


# --- every column, as the loader reads the file (for scans of the values) ----------------------

#: Rows per batch when a Parquet file is streamed by :func:`read_table`.
_PARQUET_BATCH = 65_536


@dataclass(frozen=True)
class TableRows:
    """Rows of a data file read by :func:`read_table`.

    ``table`` holds one column per header name, in file order (a repeated name's copies kept
    apart, matched to ``columns`` by position); ``columns`` is the header as the file writes
    it; ``layout`` says how the file was read, for a report (``CSV, semicolon-delimited,
    UTF-16``, ``gzipped CSV, comma-delimited, UTF-8``, ``Parquet``); ``complete`` is True
    when the file was read to its end (False when the read stopped at its ``rows``, even
    if no row was left)."""

    table: pa.Table
    columns: list[str]
    layout: str
    complete: bool


def _layout_text(fmt: str, layout: _CsvLayout | None) -> str:
    if layout is None:
        return "Parquet"
    encoding = {"utf-8-sig": "UTF-8"}.get(layout.encoding, layout.encoding.upper())
    kind = "gzipped CSV" if fmt == "csv.gz" else "CSV"
    return f"{kind}, {_DELIMITER_NAMES[layout.delimiter]}-delimited, {encoding}"


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A CSV column read as bytes, as text when it is valid UTF-8 (a cast that only checks);
    else left as bytes (the loader refuses such text where it reads it)."""
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column


def _first_batches(batches: Any, schema: pa.Schema, rows: int | None, budget: int) -> tuple[pa.Table, bool]:
    """The first ``rows`` rows of a stream of record batches (all of them when None),
    reading no further, and whether the stream ended within them. Batches stop once they
    hold ``budget`` bytes: a sample of fewer rows, never memory the budget lacks."""
    kept, count, held, ended = [], 0, 0, True
    for batch in batches:
        kept.append(batch)
        count += batch.num_rows
        held += batch.nbytes
        if (rows is not None and count >= rows) or held >= budget:
            ended = False
            break
    table = pa.Table.from_batches(kept, schema=schema)
    if rows is not None and table.num_rows > rows:
        table = table.slice(0, rows)
    return table, ended and (rows is None or count <= rows)


def _csv_rows(path: Path, fmt: str, layout: _CsvLayout, rows: int | None, budget: int) -> tuple[pa.Table, bool]:
    """The first rows of a CSV file with every column as text, streamed with the delimiter,
    encoding and header the loader found; a row longer than a block is read again with
    blocks of the longest line, like :func:`load_data`."""
    import pyarrow.csv as pacsv

    columns = layout.columns
    read, parse, convert = _csv_options(
        layout, columns, _read_names(columns), {name: pa.binary() for name in _read_names(columns)},
        null_values=[""], strings_can_be_null=True,
    )
    try:
        while True:
            source = _source(path, fmt, layout.text_limit)
            try:
                reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
                table, complete = _first_batches(reader, reader.schema, rows, budget)
                break
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                if "straddling" not in str(exc):
                    raise
                if read.block_size >= line_limit():
                    raise _line_too_long(path) from None
                read.block_size = line_limit()
            finally:
                if not isinstance(source, str):
                    source.close()  # the gzip stream and its file, now rather than when collected
    except InputTooLarge:
        raise DataError(
            f"The data file {path.name} decompresses to more than {_human(layout.text_limit or 0)} of text.",
            hint=f"{MEMORY_BUDGET_VARIABLE} (e.g. 16GB) raises the budget if you have the memory.",
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_arrow(path, exc, columns)
        raise  # unreachable: _raise_arrow always raises
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise DataError(
                f"The data file {path.name} is not valid {layout.encoding.upper()} text ({exc.reason}): it is "
                "probably truncated or corrupt.",
                hint="Export it again, preferably as UTF-8 CSV or Parquet.",
            ) from None
        if fmt == "csv.gz":
            raise _gzip_error(path, exc) from None
        raise DataError(f"The data file {path.name} cannot be read: {type(exc).__name__}.") from None
    texts = [_as_text(table.column(i)) for i in range(table.num_columns)]
    return pa.Table.from_arrays(texts, names=table.column_names), complete


def _parquet_rows(path: Path, rows: int | None, budget: int) -> tuple[pa.Table, bool]:
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(str(path)) as handle:
            size = _PARQUET_BATCH if rows is None else max(min(rows, _PARQUET_BATCH), 1)
            return _first_batches(handle.iter_batches(batch_size=size), handle.schema_arrow, rows, budget)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {type(exc).__name__}.",
                        hint="It is probably truncated or corrupt; write it again.") from None


def read_table(path: Path, *, rows: int | None = None) -> TableRows:
    """Every column of a data file, read as :func:`load_data` reads the file: the same
    format detection (CSV, gzipped CSV or Parquet, by content), and for CSV the same
    delimiter, encoding, header and gzip bounds; a file ``load_data`` refuses for its form
    (not a table, empty, no header, UTF-16 without a byte-order mark, a header that is not
    UTF-8, a line too long, a row that does not parse) is refused here too, with the same
    ``DataError``.

    Only the first ``rows`` rows are read (streamed: the rest of the file is never
    decompressed or parsed), or every row when ``rows`` is None. CSV columns come as text
    exactly as the file writes them (``007`` and ``+44 20`` stay text; only an empty cell
    is null), a column that is not valid UTF-8 as bytes (``pa.binary``); Parquet columns as
    stored. For scans of values (the privacy audit): it reads columns ``load_data`` does
    not, so it validates nothing about their values and does not hold the loader's table;
    the rows read stop short of the memory budget's share for a parse
    (:func:`~auditor.loading.inputs.read_limit`), a shorter sample rather than an error.
    """
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "parquet":
        columns = _parquet_columns(path)
        if rows is None:
            _check_memory(path, fmt, None, columns, [], columns)
        table, complete = _parquet_rows(path, rows, read_limit(floor=MIN_BOUND))
        return TableRows(table=table, columns=columns, layout="Parquet", complete=complete)
    layout = _sniff_csv(path, fmt)
    if rows is None:
        _check_memory(path, fmt, layout, layout.columns, [], list(dict.fromkeys(layout.columns)))
    table, complete = _csv_rows(path, fmt, layout, rows, read_limit(floor=MIN_BOUND))
    return TableRows(table=table, columns=layout.columns, layout=_layout_text(fmt, layout), complete=complete)
