"""How a data file is laid out, found from its content before it is read.

- the format (CSV, gzipped CSV or Parquet) by the file's first bytes, never its name; a
  folder, an empty file, a FIFO or a device, and files that are not tables (images, arrays,
  archives, saved models) are refused;
- for CSV: the encoding (UTF-8 with or without a BOM, UTF-16/UTF-32 with a BOM; text that is
  not UTF-8 is refused with the ``iconv`` command that converts it), the delimiter (sniffed
  from the header and the first rows), the header (quoted names may span lines) and the
  average row length, read from a bounded sample; a gzipped file's size from its trailer;
- the bounds on a line (:func:`~auditor.loading.inputs.line_limit`) and the messages for a
  line too long, a corrupt gzip stream or text that is not UTF-8;
- the names a file is read with (a repeated header name gets ``.1``, ``.2``...), and where a
  data row starts in the file, for messages.

:class:`CsvLayout` is what :mod:`auditor.loading.data` (the audit's columns) and
:mod:`auditor.loading.sample_rows` (every column's first rows) both read a file with, so they
never disagree about it.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from auditor.contract.errors import DataError
from auditor.loading.inputs import (
    MEMORY_BUDGET_VARIABLE,
    binary_kind,
    line_limit,
    memory_budget,
    not_a_table,
    open_regular,
)
from auditor.loading.inputs import (
    human_size as _human,
)


def format_of(path: Path) -> str:
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
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_LINE_SCAN_LIMIT = 1_000_000


@dataclass
class CsvLayout:
    """How a CSV file is written, from its header and first rows."""

    encoding: str  # a Python codec name, which pyarrow understands too
    delimiter: str
    columns: list[str]
    header_lines: int  # physical lines the header takes
    size: int  # bytes of text (decompressed, for gzip; estimated from the trailer)
    bytes_per_row: float
    text_limit: int | None = None  # gzip: the most text the memory check allows (the trailer can lie)


def gzip_error(path: Path, exc: BaseException) -> DataError:
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
        raise gzip_error(path, exc) from None
    return head[:size], len(head) <= size


def _convert_hint(path: Path, source: str) -> str:
    stem = path.name.split(".")[0]
    if path.name.endswith(".gz"):
        command = f"gunzip -c {path.name} | iconv -f {source} -t utf-8 | gzip > {stem}-utf8.csv.gz"
    else:
        command = f"iconv -f {source} -t utf-8 {path.name} > {stem}-utf8.csv"
    return (f"Convert it to UTF-8, e.g. `{command}`, or save it as 'CSV UTF-8' (Excel) or Parquet.")


def not_utf8(path: Path, where: str, raw: bytes) -> DataError:
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


def csv_layout(path: Path, fmt: str) -> CsvLayout:
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
    return CsvLayout(encoding, delimiter, columns, header_lines, size, bytes_per_row)


def _header(path: Path, fmt: str, encoding: str, delimiter: str, head: bytes, whole: bool) -> tuple[list[str], int]:
    """The column names and how many physical lines they take (a quoted name may hold a newline).

    Bytes that are not text in the encoding are kept (as surrogates) so that only the header's
    own bytes can make it unreadable; a header longer than the sample is read with more."""
    size = len(head)
    while True:
        if not whole and b"\n" not in head and b"\r" not in head:  # the first line goes on: read more
            if size >= line_limit():
                raise line_too_long(path, "The header of")
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
            raise line_too_long(path, "The header of")
        size = min(size * 8, line_limit())
        head, whole = _head(path, fmt, size)
    for name in columns:
        if any("\udc80" <= ch <= "\udcff" for ch in name):
            raw = name.encode(encoding.replace("-sig", ""), errors="surrogateescape")
            raise not_utf8(path, "its header", raw[:40])
    if columns and columns[0].startswith("\ufeff"):
        columns[0] = columns[0][1:]  # a second BOM
    return columns, header_lines


def line_too_long(path: Path, where: str = "A row of") -> DataError:
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


def _data_line(path: Path, fmt: str, layout: CsvLayout | None, row: int) -> int | None:
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


def row_location(path: Path, fmt: str, layout: CsvLayout | None, row: int) -> str:
    """Data row ``row`` (0-based) for a message: 1-based, with its line in the file."""
    line = _data_line(path, fmt, layout, row)
    return f"data row {row + 1}" + (f" (line {line} of the file)" if line else "")


def parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {exc}.") from None


def read_names(columns: list[str]) -> list[str]:
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
