"""A text column of a table, as token ids: ``--text COL --tokenizer tokenizer.json``.

The table (CSV, gzipped CSV or Parquet) is read as the privacy scan reads it
(:func:`auditor.loading.sample_rows.read_table`: the loader's own format detection, every
column as text), which holds it whole (text columns are not streamed yet). The text column
is encoded by the ``tokenizers`` library from the tokenizer's JSON file, truncated and padded
to the maximum declared (``--max-tokens``, or ``text.max_tokens`` in the model's metadata:
never guessed) with the tokenizer's padding id (``text.pad_id`` or ``[PAD]``/``<pad>``'s id,
else 0). The model receives int64 ids ``[N, max_tokens]``; the other columns are the target,
sensitive and named columns, as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from auditor.contract.context import TokenText
from auditor.contract.errors import DataError, UsageError
from auditor.loading.sources.base import ArraySource

PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>", "[pad]")


@dataclass(frozen=True)
class TextSpec:
    """What turns text into the model's inputs."""

    column: str
    tokenizer: Path
    max_tokens: int
    pad_id: int | None = None

    @classmethod
    def declared(cls, metadata: dict[str, Any], column: str | None, tokenizer: Path | None,
                 max_tokens: int | None) -> TextSpec | None:
        found = metadata.get("text")
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        column = column or meta.get("column")
        if not column and tokenizer is None:
            return None
        if not column or tokenizer is None:
            raise UsageError("Text needs both --text COLUMN and --tokenizer tokenizer.json.",
                             hint="The tokenizer is the tokenizers-library JSON the model was trained with.")
        limit = max_tokens if max_tokens is not None else meta.get("max_tokens")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1_000_000:
            raise UsageError(f"How many tokens the model takes must be declared: --max-tokens N (or text.max_tokens in "
                             f"the model's metadata); got {limit!r}.",
                             hint="Use the length the model was trained with; texts are truncated and padded to it.")
        pad = meta.get("pad_id")
        return cls(column=str(column), tokenizer=Path(tokenizer), max_tokens=limit,
                   pad_id=int(pad) if isinstance(pad, int) and not isinstance(pad, bool) else None)


def load_tokenizer(path: Path) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise UsageError("--tokenizer needs the tokenizers library, which is not installed.",
                         hint="pip install 'auditor[text]' (or tokenizers).") from None
    from auditor.loading.inputs import read_bytes, small_limit

    data = read_bytes(path, "The tokenizer file", limit=small_limit() * 16, error=UsageError)
    try:
        return Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - the library's errors are plain Exceptions with its message
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"The tokenizer file {path.name} is not a tokenizers JSON file ({first}).",
                         hint="Save it with tokenizer.save('tokenizer.json') (the tokenizers library, or a Hugging Face "
                         "tokenizer's tokenizer.json).") from None


@dataclass
class TextTable(ArraySource):
    path: Path
    kind: str
    n_rows: int
    input_shape: tuple[int, ...]
    columns: list[str]
    table: pa.Table
    texts: pa.ChunkedArray
    text: TextSpec
    tokenizer: Any
    pad_id: int
    file_columns: list[str]  # every column of the file, the text column too, in the file's order
    input_dtype = "int64"  # the model takes the ids as integers

    @classmethod
    def open(cls, path: Path, spec: TextSpec) -> TextTable:
        from auditor.loading.sample_rows import read_table

        tokenizer = load_tokenizer(spec.tokenizer)
        table = read_table(path).table
        if spec.column not in table.column_names:
            raise DataError(f"The text column {spec.column!r} (--text) is not in {path.name}.",
                            hint=f"Columns: {', '.join(table.column_names[:20])}.")
        if table.num_rows == 0:
            raise DataError(f"The data file {path.name} has a header but no data rows.")
        text = table.column(spec.column)
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            raise DataError(f"The text column {spec.column!r} in {path.name} is not UTF-8 text ({text.type}).")
        if text.null_count:
            import pyarrow.compute as pc

            first = int(np.flatnonzero(pc.is_null(text).to_numpy(zero_copy_only=False))[0])
            raise DataError(f"The text column {spec.column!r} in {path.name} has {text.null_count:,} empty value(s), "
                            f"first at data row {first + 1:,}.", hint="Drop those rows, or give them an empty string.")
        pad = spec.pad_id if spec.pad_id is not None else next(
            (i for t in PAD_TOKENS if (i := tokenizer.token_to_id(t)) is not None), 0)
        tokenizer.no_padding()
        tokenizer.no_truncation()
        tokenizer.enable_truncation(spec.max_tokens)
        tokenizer.enable_padding(pad_id=pad, length=spec.max_tokens)
        others = [name for name in table.column_names if name != spec.column]
        return cls(path=path, kind="text", n_rows=table.num_rows, input_shape=(spec.max_tokens,), columns=others,
                   table=table.select(others), texts=text, text=spec, tokenizer=tokenizer, pad_id=pad,
                   file_columns=list(table.column_names))

    def feature_names(self) -> list[str]:
        return [f"token{i}" for i in range(self.text.max_tokens)]

    def token_text(self) -> TokenText:
        """What each id reads as, for audits that show tokens (the explain audit)."""
        vocabulary = [""] * self.tokenizer.get_vocab_size(with_added_tokens=True)
        for token, i in self.tokenizer.get_vocab(with_added_tokens=True).items():
            if 0 <= i < len(vocabulary):
                vocabulary[i] = token
        return TokenText(column=self.text.column, pad_id=self.pad_id, vocabulary=tuple(vocabulary))

    def files(self) -> list[Path]:
        return [self.path]

    def head(self, rows: int) -> pa.Table:
        return self.table.slice(0, rows)

    def chunks(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
        texts = self.texts
        for start in range(0, self.n_rows, rows):
            stop = min(start + rows, self.n_rows)
            encoded = self.tokenizer.encode_batch([str(t) for t in texts.slice(start, stop - start).to_pylist()])
            X = np.asarray([e.ids for e in encoded], dtype=np.float32)  # ids below 2**24 are exact in float32
            if X.size and X.max() >= 2**24:
                raise DataError(f"The tokenizer {self.text.tokenizer.name} gives ids of 2**24 or more, which auditor "
                                "cannot carry exactly.")
            yield self.table.slice(start, stop - start), X
