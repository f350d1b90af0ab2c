"""Reading the columns a run needs from a data file in chunks: :func:`read_chunks`.

A Parquet file is read in batches of rows (``ParquetFile.iter_batches``); a CSV file (plain
or gzipped) in blocks of bytes with pyarrow's streaming reader, sized to about the rows asked
for. Either way each chunk is a ``pyarrow.Table`` of the plan's columns (features as
float32), and the chunks, put end to end, are what :func:`auditor.loading.data.load_data`
reads in one go, value for value and type for type:

- **Types of text columns.** pyarrow's one-shot CSV reader infers a column's type from the
  whole file; its streaming reader from the first block, then fails on a later value that
  does not fit. The kept columns (target, sensitive, named) are therefore read again, from
  the start, with the next type on pyarrow's own inference ladder (null, integer, boolean,
  date, time, timestamp, float, text) until one holds every value: the type the one-shot
  reader would have found. :class:`Reread` tells the caller to start over (so does a row longer than the block).
- **A file that changes while it is read** (appended to, truncated, replaced) is refused
  at the end with the rows read, as is a Parquet row group that cannot be decoded halfway:
  one line naming the rows, nothing written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from auditor.contract.errors import DataError
from auditor.loading.columns import ReadPlan
from auditor.loading.csv_reader import CONVERSION_ERROR, arrow_errors, csv_options, csv_source, longer_than_a_block
from auditor.loading.data import bad_feature_text, check_number_features
from auditor.loading.inputs import line_limit
from auditor.loading.layout import line_too_long, not_utf8, read_names

#: pyarrow's CSV type inference, in the order it tries kinds (arrow/cpp/src/arrow/csv/inference_internal.h).
LADDER: tuple[pa.DataType, ...] = (
    pa.null(), pa.int64(), pa.bool_(), pa.date32(), pa.time32("s"), pa.timestamp("s"), pa.timestamp("ns"),
    pa.float64(), pa.string(), pa.binary(),
)
#: The smallest CSV block read at a time (pyarrow needs a row to fit in one).
MIN_BLOCK = 1 << 10


class Reread(Exception):
    """Read the CSV file again from the start: a kept column met a value its first block's
    type does not hold (``types``: that column widened on :data:`LADDER`), or a row is longer
    than the block (``block_size``: blocks of the longest line allowed)."""

    def __init__(self, types: dict[str, pa.DataType], block_size: int | None = None) -> None:
        super().__init__("read again")
        self.types = types
        self.block_size = block_size


@dataclass
class Stamp:
    """A file's identity and size when reading began: a change by the end is an error."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class ChunkReader:
    """Reads ``plan``'s columns ``rows`` at a time; :meth:`chunks` yields tables."""

    plan: ReadPlan
    rows: int
    types: dict[str, pa.DataType] = field(default_factory=dict)  # kept CSV columns' types, once widened
    block_size: int | None = None  # CSV blocks, once a row was longer than the first size
    stamp: Stamp | None = None

    def chunks(self) -> Iterator[pa.Table]:
        self.stamp = Stamp.of(self.plan.path)
        if self.plan.fmt == "parquet":
            yield from self._parquet()
        else:
            yield from self._csv()

    def check_unchanged(self, rows_read: int) -> None:
        """The file is as it was when reading began (size, modification time, inode)."""
        path = self.plan.path
        try:
            now = Stamp.of(path)
        except OSError:
            now = None
        if self.stamp is not None and now != self.stamp:
            size = f"{now.size:,} bytes" if now is not None else "gone"
            raise DataError(
                f"The data file {path.name} changed while it was read ({self.stamp.size:,} bytes when reading "
                f"began, {size} after data row {rows_read:,}).",
                hint="Audit a copy that nothing writes to (copy it first, or wait for the writer to finish).",
            )

    # --- Parquet ------------------------------------------------------------------------------

    def _parquet(self) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq

        path, plan = self.plan.path, self.plan
        try:
            # pre_buffer (Arrow's default) reads a whole row group's column chunks ahead: 1M-row
            # row groups, pyarrow's default, held ~200 MB more; on a local disk it buys nothing
            handle = pq.ParquetFile(path, pre_buffer=False)
            check_number_features(path, handle.schema_arrow, plan.feature_names)
            batches = handle.iter_batches(batch_size=self.rows, columns=plan.wanted)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"The Parquet file {path.name} cannot be read: {str(exc)[:200]}.",
                            hint="It is probably truncated or corrupt; write it again.") from None
        done = 0
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise undecodable(path, f"past data row {done:,} (the next rows, from {done + 1:,}, do not "
                                  "decode", exc) from None
            done += batch.num_rows
            yield pa.Table.from_batches([batch])

    # --- CSV ----------------------------------------------------------------------------------

    def _csv(self) -> Iterator[pa.Table]:
        import pyarrow.csv as pacsv

        plan = self.plan
        layout = plan.layout
        assert layout is not None
        float_columns = plan.float_columns
        types: dict[str, pa.DataType] = {name: pa.float32() for name in float_columns}
        types.update(self.types)
        read, parse, convert = csv_options(layout, plan.columns, plan.wanted, types,
                                           null_values=[""], strings_can_be_null=True)
        # about ``rows`` rows a chunk; a row must fit in one, and none may pass the longest line allowed
        least = max(MIN_BLOCK, int(layout.bytes_per_row * 4))
        chunk_bytes = self.block_size or min(max(least, int(self.rows * layout.bytes_per_row)),
                                             max(least, line_limit()))
        names = read_names(plan.columns)
        seen: dict[str, pa.DataType] = {}
        with arrow_errors(plan.path, plan.fmt, read.encoding, plan.columns):
            try:
                if plan.fmt == "csv" and layout.encoding in ("utf-8", "utf-8-sig"):
                    # byte ranges cut at line ends, each parsed by pyarrow's multithreaded reader
                    # (newlines inside quoted values are not read, as pyarrow's reader does not)
                    yield from self._ranges(pacsv, read, parse, convert, chunk_bytes, seen)
                    return
                read.block_size = chunk_bytes
                reader = self._open(pacsv, read, parse, convert)
                seen.update({f.name: f.type for f in reader.schema})
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    yield pa.Table.from_batches([batch])
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                self._widen(exc, names, float_columns, seen)
                match = CONVERSION_ERROR.search(str(exc))
                if match and 0 <= int(match.group(1)) < len(names) and names[int(match.group(1))] in float_columns:
                    raise bad_feature_text(plan.path, plan.fmt, layout, plan.columns, names[int(match.group(1))],
                                           exc) from None
                if "straddling" in str(exc):
                    if read.block_size >= line_limit():
                        raise line_too_long(plan.path) from None
                    raise Reread(self.types, line_limit()) from None
                raise

    def _ranges(
        self, pacsv: Any, read: Any, parse: Any, convert: Any, chunk_bytes: int, seen: dict[str, pa.DataType]
    ) -> Iterator[pa.Table]:
        """The file in byte ranges of about ``chunk_bytes``, each ending at a line end, parsed
        with ``read_csv``; the kept columns take the first range's types (``seen``), widened
        from the start (:class:`Reread`) when a later range needs more."""
        plan = self.plan
        assert plan.layout is not None
        with open(plan.path, "rb") as handle:
            first = True
            while True:
                data = handle.read(chunk_bytes)
                if not data:
                    return
                if len(data) == chunk_bytes:  # not the end: stop at the last line end
                    cut = data.rfind(b"\n", max(0, len(data) - line_limit()))
                    if cut < 0 or (first and data.count(b"\n", 0, cut + 1) <= plan.layout.header_lines):
                        if chunk_bytes >= line_limit():
                            raise line_too_long(plan.path)
                        raise Reread(self.types, line_limit())
                    handle.seek(cut + 1 - len(data), os.SEEK_CUR)
                    data = data[:cut + 1]
                read.skip_rows = plan.layout.header_lines if first else 0
                if not first:
                    convert.column_types = {**{n: seen[n] for n in seen if n not in convert.column_types},
                                            **convert.column_types}
                table = pacsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                                       convert_options=convert)
                if first:
                    seen.update({f.name: f.type for f in table.schema})
                    first = False
                yield table

    def _open(self, pacsv: Any, read: Any, parse: Any, convert: Any) -> Any:
        """pyarrow's streaming reader (it reads the first block to infer types); a header or
        first row longer than the block: opened again with blocks of the longest line."""
        plan = self.plan
        try:
            return pacsv.open_csv(csv_source(plan.path, plan.fmt, None), read_options=read, parse_options=parse,
                                  convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if not longer_than_a_block(exc) or read.block_size >= line_limit():
                raise
        read.block_size = line_limit()
        try:
            return pacsv.open_csv(csv_source(plan.path, plan.fmt, None), read_options=read, parse_options=parse,
                                  convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if "straddling" in str(exc):
                raise line_too_long(plan.path) from None
            raise

    def _widen(self, exc: Exception, names: list[str], float_columns: list[str], seen: dict[str, pa.DataType]) -> None:
        """A conversion error in a kept (non-float) column: raise :class:`Retype` with its next
        type on the ladder; an error in a feature column is left to the caller's message."""
        match = CONVERSION_ERROR.search(str(exc))
        if not match or not 0 <= int(match.group(1)) < len(names):
            return
        name = names[int(match.group(1))]
        if name in float_columns:
            return
        current = self.types.get(name) or seen.get(name)
        rungs = list(LADDER)
        index = next((i for i, t in enumerate(rungs) if t == current), len(rungs) - 3)  # unknown: to text
        value = match.group(4)
        for rung in rungs[index + 1:]:  # the next rung that takes the value met (earlier ones cannot)
            if rung == pa.binary() or _takes(rung, value):
                if rung == pa.binary() and current == pa.string():
                    raise not_utf8(self.plan.path, f"the column {name!r}", b"")
                raise Reread({**self.types, name: rung}, self.block_size) from None
        raise not_utf8(self.plan.path, f"the column {name!r}", b"")


def undecodable(path: Path, where: str, exc: BaseException) -> DataError:
    """A Parquet file whose rows ``where`` do not decode (``where`` opens a parenthesis)."""
    said = "".join(c for c in (str(exc).splitlines() or [""])[0] if c.isprintable())[:160]
    return DataError(f"The Parquet file {path.name} cannot be read {where}: {said}).",
                     hint="It is probably truncated or corrupt; write it again.")


def _takes(kind: pa.DataType, value: str) -> bool:
    """Whether pyarrow's CSV parser reads ``value`` as ``kind``."""
    import io

    import pyarrow.csv as pacsv

    try:
        pacsv.read_csv(io.BytesIO(b"v\n" + value.encode("utf-8", errors="replace") + b"\n"),
                       convert_options=pacsv.ConvertOptions(column_types={"v": kind}, null_values=[""],
                                                            strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def count_rows(plan: ReadPlan) -> int | None:
    """The file's data rows when known before reading (Parquet metadata), else None."""
    if plan.fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(plan.path).metadata.num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"The Parquet file {plan.path.name} cannot be read: {str(exc)[:200]}.",
                        hint="It is probably truncated or corrupt; write it again.") from None


def estimated_rows(plan: ReadPlan) -> int | None:
    """The file's data rows, for a progress bar: exact for Parquet, estimated from its size and
    first rows for a plain CSV; None for a gzipped one (its size says little of its rows)."""
    known = count_rows(plan)
    if known is not None:
        return known
    assert plan.layout is not None
    if plan.fmt != "csv":
        return None
    return max(1, int(plan.layout.size / max(plan.layout.bytes_per_row, 1.0)))
