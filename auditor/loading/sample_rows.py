"""The first rows of a data file, every column as the file writes it: :func:`read_table`.

For scans of values (the privacy audit's): the file is read with the layout the run's loader
finds (:mod:`auditor.loading.layout`: format, delimiter, encoding, header, gzip bounds), so
what the run reads and what is scanned can never disagree about a file. Rows are streamed and
the read stops at the rows asked for, or short of the memory budget's share for a parse.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from auditor.contract.errors import DataError
from auditor.loading.csv_reader import csv_options, csv_source, longer_than_a_block, raise_arrow
from auditor.loading.data import check_memory
from auditor.loading.inputs import (
    MEMORY_BUDGET_VARIABLE,
    MIN_BOUND,
    InputTooLarge,
    line_limit,
    read_limit,
)
from auditor.loading.inputs import (
    human_size as _human,
)
from auditor.loading.layout import (
    DELIMITER_NAMES,
    CsvLayout,
    csv_layout,
    format_of,
    gzip_error,
    line_too_long,
    parquet_columns,
    read_names,
)

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


def _layout_text(fmt: str, layout: CsvLayout | None) -> str:
    if layout is None:
        return "Parquet"
    encoding = {"utf-8-sig": "UTF-8"}.get(layout.encoding, layout.encoding.upper())
    kind = "gzipped CSV" if fmt == "csv.gz" else "CSV"
    return f"{kind}, {DELIMITER_NAMES[layout.delimiter]}-delimited, {encoding}"


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


def _csv_rows(path: Path, fmt: str, layout: CsvLayout, rows: int | None, budget: int) -> tuple[pa.Table, bool]:
    """The first rows of a CSV file with every column as text, streamed with the delimiter,
    encoding and header the loader found; a row longer than a block is read again with
    blocks of the longest line, like :func:`~auditor.loading.data.load_data`."""
    import pyarrow.csv as pacsv

    columns = layout.columns
    read, parse, convert = csv_options(
        layout, columns, read_names(columns), {name: pa.binary() for name in read_names(columns)},
        null_values=[""], strings_can_be_null=True,
    )
    try:
        while True:
            source = csv_source(path, fmt, layout.text_limit)
            try:
                reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
                table, complete = _first_batches(reader, reader.schema, rows, budget)
                break
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                if not longer_than_a_block(exc):
                    raise
                if read.block_size >= line_limit():
                    if "straddling" not in str(exc):
                        raise  # the header is not the problem: no rows follow it
                    raise line_too_long(path) from None
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
        raise_arrow(path, exc, columns)
        raise  # unreachable: raise_arrow always raises
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise DataError(
                f"The data file {path.name} is not valid {layout.encoding.upper()} text ({exc.reason}): it is "
                "probably truncated or corrupt.",
                hint="Export it again, preferably as UTF-8 CSV or Parquet.",
            ) from None
        if fmt == "csv.gz":
            raise gzip_error(path, exc) from None
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
    """Every column of a data file, read as :func:`~auditor.loading.data.load_data` reads the
    file: the same format detection (CSV, gzipped CSV or Parquet, by content), and for CSV the same
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
    from auditor.loading.sources import open_source, source_kind

    kind = source_kind(path)
    if kind is not None:  # the columns beside the inputs (file names, labels...), not the inputs
        source = open_source(path, kind, names_only=True)
        limit = source.n_rows if rows is None else min(rows, source.n_rows)
        table = source.head(limit).select(list(source.columns))
        texts = [_as_text(table.column(i)) for i in range(table.num_columns)]
        return TableRows(table=pa.Table.from_arrays(texts, names=table.column_names), columns=list(source.columns),
                         layout=source.describe(), complete=limit == source.n_rows)
    fmt = format_of(path)
    if fmt == "parquet":
        columns = parquet_columns(path)
        if rows is None:
            check_memory(path, fmt, None, columns, [], columns)
        table, complete = _parquet_rows(path, rows, read_limit(floor=MIN_BOUND))
        return TableRows(table=table, columns=columns, layout="Parquet", complete=complete)
    layout = csv_layout(path, fmt)
    if rows is None:
        check_memory(path, fmt, layout, layout.columns, [], list(dict.fromkeys(layout.columns)))
    table, complete = _csv_rows(path, fmt, layout, rows, read_limit(floor=MIN_BOUND))
    return TableRows(table=table, columns=layout.columns, layout=_layout_text(fmt, layout), complete=complete)
