"""A Hugging Face dataset saved with ``Dataset.save_to_disk``, read without the library.

Such a folder holds ``state.json`` (its Arrow files, in order), ``dataset_info.json`` (its
features) and the Arrow files (IPC streams), which are memory-mapped and read a record batch
at a time. The inputs are the column named by ``--features NAME``, else the ``Image`` column,
else the one named ``pixel_values``, ``image``, ``X``, ``x``, ``inputs`` or ``features``, else
the only ``ArrayND``/list column: images are read as an image folder's are (float32 in [0, 1],
channels first, all of one size and mode unless declared), arrays as float32 of the shape
the features declare (``Array2D``...) or the first row holds (lists: every row must match).
The other columns are the target, sensitive and named columns: ``ClassLabel`` columns as their
class names, ``Value`` columns as they are. A ``DatasetDict`` (several splits) must be named
by its split's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from auditor.contract.errors import DataError, UsageError
from auditor.loading.sources.base import MODES, ArraySource, ImageSpec, check_finite, named_input

INPUT_NAMES = ("pixel_values", "image", "X", "x", "inputs", "features")
_ARRAYS = ("Array2D", "Array3D", "Array4D", "Array5D", "List", "Sequence", "LargeList")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()
                              or (path / "dataset_dict.json").is_file())


def _refuse(path: Path, why: str, hint: str = "") -> DataError:
    return DataError(f"The saved dataset {path.name} {why}.", hint=hint or None)


def _json(path: Path, file: str) -> Any:
    from auditor.loading.inputs import read_bytes, small_limit

    try:
        return json.loads(read_bytes(path / file, f"The dataset's {file}", limit=small_limit()))
    except (OSError, ValueError) as exc:
        raise _refuse(path, f"has a {file} that cannot be read ({str(exc)[:120]})",
                      "Save it again with Dataset.save_to_disk.") from None


@dataclass
class SavedDataset(ArraySource):
    path: Path
    kind: str
    n_rows: int
    input_shape: tuple[int, ...]
    columns: list[str]
    arrow_files: list[Path]
    inputs: str
    image: bool
    spec: ImageSpec
    mode: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)  # ClassLabel columns' names

    @classmethod
    def open(cls, path: Path, *, features: list[str] | None = None, spec: ImageSpec | None = None) -> SavedDataset:
        if (path / "dataset_dict.json").is_file():
            splits = _json(path, "dataset_dict.json").get("splits") or []
            raise UsageError(
                f"{path.name} is a DatasetDict of {len(splits)} split(s) ({', '.join(map(str, splits))}): name the split "
                "to audit.", hint=f"Point --data at its folder, e.g. --data {path / str((splits or ['test'])[0])}.")
        state, info = _json(path, "state.json"), _json(path, "dataset_info.json")
        if not isinstance(state, dict) or not isinstance(info, dict):
            raise _refuse(path, "has a state.json or dataset_info.json that is not a JSON object",
                          "Save it again with Dataset.save_to_disk.")
        files = []
        for entry in state.get("_data_files") or []:
            name = str(entry.get("filename", "")) if isinstance(entry, dict) else ""
            if not name or Path(name).name != name or name.startswith("."):
                raise _refuse(path, f"lists a data file {name!r} that is not a plain file name in its folder",
                              "Save it again with Dataset.save_to_disk.")
            if not (path / name).is_file():
                raise _refuse(path, f"lists the data file {name}, which is not there", "Copy the whole folder.")
            files.append(path / name)
        if not files:
            raise _refuse(path, "lists no data file in its state.json")
        declared = info.get("features")
        if not isinstance(declared, dict) or not all(isinstance(f, dict) for f in declared.values()):
            raise _refuse(path, "declares no features (or malformed ones) in its dataset_info.json",
                          "Save it again with Dataset.save_to_disk.")
        schema, n = _schema_and_rows(path, files)
        inputs = _inputs(path, declared, features)
        kind = declared[inputs].get("_type")
        labels = {name: [str(v) for v in f.get("names", [])] for name, f in declared.items()
                  if isinstance(f, dict) and f.get("_type") == "ClassLabel" and name != inputs}
        columns = [name for name in schema.names if name != inputs]
        for name in columns:
            if not (pa.types.is_integer(schema.field(name).type) or pa.types.is_floating(schema.field(name).type)
                    or pa.types.is_boolean(schema.field(name).type) or pa.types.is_string(schema.field(name).type)
                    or pa.types.is_large_string(schema.field(name).type)):
                raise _refuse(path, f"has a column {name!r} of type {schema.field(name).type} beside its inputs "
                              f"{inputs!r}; only columns of one number or text a row can be targets or groups",
                              f"Save the dataset without it (dataset.remove_columns({name!r})).")
        source = cls(path=path, kind="hf", n_rows=n, input_shape=(), columns=columns, arrow_files=files,
                     inputs=inputs, image=kind == "Image", spec=spec or ImageSpec(), labels=labels)
        if source.image:
            source.mode, size = source._first_image()
            source.mode = source.spec.mode or source.mode
            size = source.spec.size or size
            source.input_shape = (MODES.get(source.mode, 1), size[0], size[1])
        else:
            source.input_shape = _array_shape(path, declared[inputs], next(source._batches()).column(inputs))
        return source

    def files(self) -> list[Path]:
        return [self.path / "state.json", self.path / "dataset_info.json", *self.arrow_files]

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for file in self.arrow_files:
            try:
                with pa.memory_map(str(file)) as source:
                    yield from pa.ipc.open_stream(source)
            except (pa.ArrowException, OSError) as exc:
                raise _refuse(self.path, f"cannot be read in {file.name} ({str(exc)[:120]})",
                              "It is truncated or corrupt; save it again.") from None

    def _first_image(self) -> tuple[str, tuple[int, int]]:
        from auditor.loading.sources.images import _mode_of

        image = self._image(next(self._batches()).column(self.inputs)[0].as_py(), 0)
        try:
            return _mode_of(image), (image.size[1], image.size[0])
        finally:
            image.close()

    def _image(self, value: Any, row: int) -> Any:
        import io

        from auditor.loading.sources.images import decode

        data = value.get("bytes") if isinstance(value, dict) else None
        if not data:
            raise _refuse(self.path, f"holds no image bytes in example {row + 1:,} (only a path, or nothing)",
                          "Save the dataset with the images embedded (the default of save_to_disk).")
        return decode(io.BytesIO(data), f"example {row + 1:,}", self.path.name)

    def _table(self, batch: pa.RecordBatch) -> pa.Table:
        columns = {}
        for name in self.columns:
            column = batch.column(name)
            if name in self.labels and pa.types.is_integer(column.type):
                names = pa.array(self.labels[name] + [None])
                codes = np.array(column.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
                if codes.size and (codes.max() >= len(self.labels[name]) or codes.min() < -1):
                    raise _refuse(self.path, f"has a {name!r} value outside its ClassLabel names")
                codes[codes < 0] = len(self.labels[name])
                column = names.take(pa.array(codes))
            columns[name] = column
        return pa.table(columns) if columns else pa.table({"__rows": pa.nulls(batch.num_rows)})

    def head(self, rows: int) -> pa.Table:
        parts, have = [], 0
        for batch in self._batches():
            parts.append(self._table(batch.slice(0, rows - have)))
            have += parts[-1].num_rows
            if have >= rows:
                break
        return pa.concat_tables(parts) if parts else pa.table({})

    def chunks(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
        from auditor.loading.sources.images import image_values

        at = 0
        width = self.n_features
        for batch in self._batches():
            for start in range(0, batch.num_rows, rows):
                part = batch.slice(start, rows)
                column = part.column(self.inputs)
                if self.image:
                    X = np.empty((part.num_rows, width), dtype=np.float32)
                    for i, value in enumerate(column.to_pylist()):
                        shown = f"example {at + i + 1:,}"
                        X[i] = image_values(self._image(value, at + i), self.spec, self.mode, self.input_shape, shown,
                                            self.path.name).reshape(-1)
                else:
                    X = _flat(self.path, column, self.input_shape, at)
                    check_finite(X, self.path, at, f"The inputs column {self.inputs!r}")
                yield self._table(part), X
                at += part.num_rows


def _schema_and_rows(path: Path, files: list[Path]) -> tuple[pa.Schema, int]:
    schema, rows = None, 0
    for file in files:
        try:
            with pa.memory_map(str(file)) as source:
                reader = pa.ipc.open_stream(source)
                schema = schema or reader.schema
                for batch in reader:
                    rows += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise _refuse(path, f"cannot be read in {file.name} ({str(exc)[:120]})",
                          "It is truncated or corrupt; save it again.") from None
    if schema is None or rows == 0:
        raise _refuse(path, "holds no examples")
    return schema, rows


def _inputs(path: Path, declared: dict[str, Any], features: list[str] | None) -> str:
    named = named_input(path, list(declared), features, "column")
    if named is not None:
        return named
    images = [n for n, f in declared.items() if isinstance(f, dict) and f.get("_type") == "Image"]
    if len(images) == 1:
        return images[0]
    for name in INPUT_NAMES:
        if name in declared:
            return name
    arrays = [n for n, f in declared.items() if isinstance(f, dict) and f.get("_type") in _ARRAYS]
    if len(arrays) == 1:
        return arrays[0]
    raise _refuse(path, "has no column that is clearly its inputs (an Image column, one named "
                  f"{', '.join(INPUT_NAMES)}, or the only array column)", "Name it with --features NAME.")


def _array_shape(path: Path, feature: dict[str, Any], first: pa.ChunkedArray | pa.Array) -> tuple[int, ...]:
    """The shape of one example: declared (ArrayND), else that of the first row's lists."""
    if isinstance(feature.get("shape"), list):
        return tuple(int(s) for s in feature["shape"])
    value = first[0].as_py()
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    if not shape:
        raise _refuse(path, "has inputs of one number an example; there is nothing to reshape",
                      "Store each example's inputs as a list (or ArrayND) column.")
    return tuple(shape)


def _flat(path: Path, column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], at: int) -> np.ndarray:
    """A list (or ArrayND) column as (rows, values) float32, every row of ``shape``."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    width = int(np.prod(shape))
    values = array
    for _ in shape:
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)
                or pa.types.is_fixed_size_list(values.type)):
            break
        values = values.flatten()
    if values.null_count or len(values) != len(array) * width:
        raise _refuse(path, f"has inputs that are not all of shape {'x'.join(map(str, shape))} (or hold a missing "
                      f"value) among examples {at + 1:,} to {at + len(array):,}",
                      "Pad or crop every example to one shape before saving, or declare it as ArrayND.")
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(array), width)
