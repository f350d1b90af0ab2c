"""Reading a CSV file's columns with pyarrow, as its :class:`~auditor.loading.layout.CsvLayout`
says it is written, within the bounds the memory check set.

A row longer than pyarrow's block is read again with blocks of the longest line allowed; a
gzipped file is decompressed no further than the memory check allowed (its trailer can lie);
pyarrow's errors (a cell that is not a number, a row with the wrong number of fields, a file
with no rows, text that is not in the file's encoding) become one-line errors
(``DataError``) that name the column or the row, never quoting a row that does not parse.
"""

from __future__ import annotations

import re
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import pyarrow as pa

from auditor.contract.errors import DataError
from auditor.loading.inputs import (
    MEMORY_BUDGET_VARIABLE,
    BoundedStream,
    InputTooLarge,
    line_limit,
)
from auditor.loading.inputs import (
    human_size as _human,
)
from auditor.loading.layout import CsvLayout, gzip_error, line_too_long, not_utf8, read_names

CONVERSION_ERROR = re.compile(
    r"CSV column #(\d+):(?: Row #(\d+):)? CSV conversion error to (.+?): invalid value '(.*)'"
)
_FIELD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+): ?(.*)")


def raise_arrow(path: Path, exc: Exception, all_columns: list[str]) -> None:
    text = str(exc)
    match = CONVERSION_ERROR.search(text)
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


def longer_than_a_block(exc: Exception) -> bool:
    """pyarrow's words for a line longer than its block: a row straddles two blocks, or the
    header lines it was told to skip do not fit in the first one (which it would otherwise
    report like a file with no rows)."""
    return "straddling" in str(exc) or "Could not skip initial" in str(exc)


def csv_options(
    layout: CsvLayout, columns: list[str], include: list[str], types: Mapping[str, pa.DataType], **convert: Any
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        column_names=read_names(columns),
        skip_rows=layout.header_lines,
        encoding="utf8" if layout.encoding == "utf-8-sig" else layout.encoding,
        # a row must fit in one block: the first rows tell how long rows are
        block_size=max(1 << 20, int(layout.bytes_per_row * 4)),
    )
    parse = pacsv.ParseOptions(delimiter=layout.delimiter)
    options = pacsv.ConvertOptions(include_columns=include, column_types=dict(types), **convert)
    return read, parse, options


def csv_source(path: Path, fmt: str, text_limit: int | None) -> Any:
    """What pyarrow reads: the file, or its gzip stream cut off past ``text_limit`` bytes of
    text (the limit the memory check allowed: a gzip trailer is no bound, it can lie)."""
    if fmt != "csv.gz":
        return str(path)
    stream = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    if text_limit is None:
        return stream
    return pa.PythonFile(BoundedStream(stream, text_limit), mode="r")


def read_csv(
    path: Path, fmt: str, read: Any, parse: Any, convert: Any, columns: list[str], text_limit: int | None = None
) -> pa.Table:
    import pyarrow.csv as pacsv

    with arrow_errors(path, fmt, read.encoding, columns, text_limit):
        try:
            source = csv_source(path, fmt, text_limit)
            return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if not longer_than_a_block(exc):
                raise
        # a row (a huge text field) or the header (thousands of long names) longer than a block:
        # read again with blocks of the longest line
        if read.block_size >= line_limit():
            raise line_too_long(path)
        read.block_size = line_limit()
        try:
            source = csv_source(path, fmt, text_limit)
            return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if "straddling" in str(exc):
                raise line_too_long(path) from None
            raise
    raise AssertionError("unreachable")  # pragma: no cover - arrow_errors raises or the read returned


@contextmanager
def arrow_errors(path: Path, fmt: str, encoding: str, columns: list[str], text_limit: int | None = None) -> Iterator[None]:
    """pyarrow's and the decompressor's errors while reading ``path`` as one-line ``DataError``s."""
    try:
        yield
    except InputTooLarge:
        raise DataError(
            f"The data file {path.name} decompresses to more than {_human(text_limit or 0)} of text, more "
            "than its gzip trailer declares and than the memory budget allows.",
            hint=f"Check that it is the file you meant; {MEMORY_BUDGET_VARIABLE} (e.g. 16GB) raises the "
            "budget if you have the memory.",
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise_arrow(path, exc, columns)
        raise  # unreachable: raise_arrow always raises
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError) and encoding != "utf8":
            raise DataError(
                f"The data file {path.name} is not valid {encoding.upper()} text ({exc.reason}): it is "
                "probably truncated or corrupt.",
                hint="Export it again, preferably as UTF-8 CSV or Parquet.",
            ) from None
        if isinstance(exc, UnicodeDecodeError):
            raise not_utf8(path, "a row", exc.object[exc.start:exc.end + 8]) from None
        if fmt == "csv.gz":
            raise gzip_error(path, exc) from None
        raise DataError(f"The data file {path.name} cannot be read: {exc}.") from None

