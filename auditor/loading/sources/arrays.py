"""Arrays as data: a NumPy archive (``np.savez``) or a dict of tensors (``torch.save``).

The inputs are the array named by ``--features NAME``, else the one named ``X``, ``x``,
``inputs``, ``features``, ``images`` or ``data``, else the only one with two dimensions or
more: ``[N, ...]``, each example one row, its shape the model's input shape. Every other array
must be one value an example (``[N]``): the target (``y``, ``label``, ... or ``--target``),
sensitive and other named columns. Numbers are given to the model as float32, unscaled.

An ``.npz`` member is read straight from the archive a chunk at a time (it never sits in
memory whole, unless stored column-major); tensors are loaded with ``weights_only=True`` and
memory-mapped.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from auditor.contract.errors import DataError
from auditor.loading.sources.base import ArraySource, check_finite, named_input

#: Names the inputs array goes by, in the order they are looked for.
INPUT_NAMES = ("X", "x", "inputs", "features", "images", "data")


def _refuse(path: Path, why: str, hint: str) -> DataError:
    return DataError(f"The data file {path.name} {why}.", hint=hint)


@dataclass
class Arrays(ArraySource):
    """An ``.npz`` archive or a ``torch.save`` dict, opened."""

    path: Path
    kind: str
    n_rows: int
    input_shape: tuple[int, ...]
    columns: list[str]
    inputs: str  # the name of the inputs array
    values: dict[str, np.ndarray] = field(default_factory=dict)  # the 1-D arrays
    tensor: Any = None  # the inputs, when they came from torch.save (memory-mapped)
    member: tuple[str, int, np.dtype, bool] | None = None  # npz: member name, data offset, dtype, column-major

    @classmethod
    def open(cls, path: Path, kind: str, *, features: list[str] | None = None) -> Arrays:
        headers: dict[str, tuple[tuple[int, ...], Any]]
        if kind == "npz":
            arrays, headers = _npz_headers(path)
        else:
            arrays, headers = _tensors(path)
        shapes = {name: shape for name, (shape, _) in headers.items()}
        chosen = _inputs(path, shapes, features)
        shape = shapes[chosen]
        if len(shape) < 2:
            raise _refuse(path, f"holds its inputs array {chosen!r} as shape {shape}: one number an example, with no "
                          "axis for the values the model takes", "Save it as [N, features] (X.reshape(-1, 1) for one "
                          "feature), or [N, C, H, W] / [N, T, F].")
        if shape[0] == 0:
            raise _refuse(path, f"has no examples in its inputs array {chosen!r} (shape {shape})",
                          "Save the inputs as one array of shape [N, ...] with N >= 1.")
        n = int(shape[0])
        values: dict[str, np.ndarray] = {}
        for name, (other, _) in headers.items():
            if name == chosen:
                continue
            if tuple(other) != (n,):
                raise _refuse(path, f"holds the array {name!r} of shape {tuple(other)}, but the inputs "
                              f"{chosen!r} hold {n:,} examples", "Every other array must hold one value an example: "
                              f"shape [{n}].")
            values[name] = arrays(name)
        source = cls(path=path, kind=kind, n_rows=n, input_shape=tuple(int(s) for s in shape[1:]),
                     columns=list(values), inputs=chosen, values=values)
        if kind == "npz":
            source.member = headers[chosen][1]
        else:
            source.tensor = arrays(chosen, whole=False)
        return source

    def files(self) -> list[Path]:
        return [self.path]

    def head(self, rows: int) -> pa.Table:
        return self._table(0, min(rows, self.n_rows))

    def _table(self, start: int, stop: int) -> pa.Table:
        return pa.table({name: pa.array(values[start:stop]) for name, values in self.values.items()}
                        if self.values else {"__rows": pa.nulls(stop - start)})

    def chunks(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
        what = f"The inputs array {self.inputs!r}"
        width = self.n_features
        if self.tensor is not None:
            for start in range(0, self.n_rows, rows):
                stop = min(start + rows, self.n_rows)
                X = self.tensor[start:stop].reshape(stop - start, width).to(dtype=_torch_float()).numpy()
                X = np.ascontiguousarray(X)
                check_finite(X, self.path, start, what)
                yield self._table(start, stop), X
            return
        assert self.member is not None
        name, _, dtype, fortran = self.member
        with zipfile.ZipFile(self.path) as archive, archive.open(name) as handle:
            _skip_header(handle)
            whole: np.ndarray | None = None
            if fortran:  # column-major: rows are not contiguous, read it whole
                column_major = np.frombuffer(handle.read(), dtype=dtype).reshape((self.n_rows, *self.input_shape),
                                                                                order="F")
                whole = column_major.reshape(self.n_rows, width)
            for start in range(0, self.n_rows, rows):
                stop = min(start + rows, self.n_rows)
                if whole is not None:
                    part = whole[start:stop]
                else:
                    want = (stop - start) * width * dtype.itemsize
                    data = handle.read(want)
                    if len(data) != want:
                        raise _refuse(self.path, f"ends inside its inputs array {self.inputs!r} (example "
                                      f"{start + len(data) // max(width * dtype.itemsize, 1) + 1:,} of {self.n_rows:,})",
                                      "It is truncated; save it again.")
                    part = np.frombuffer(data, dtype=dtype).reshape(stop - start, width)
                X = np.ascontiguousarray(part, dtype=np.float32)
                check_finite(X, self.path, start, what)
                yield self._table(start, stop), X


def _torch_float() -> Any:
    import torch

    return torch.float32


def _inputs(path: Path, shapes: dict[str, tuple[int, ...]], features: list[str] | None) -> str:
    names = list(shapes)
    named = named_input(path, names, features, "array")
    if named is not None:
        return named
    for name in INPUT_NAMES:
        if name in shapes:
            return name
    many = [name for name, shape in shapes.items() if len(shape) >= 2]
    if len(many) == 1:
        return many[0]
    if any("." in name for name in names):
        raise _refuse(path, "looks like a model's weights (a state_dict: names like "
                      f"{next(n for n in names if '.' in n)!r}), not data",
                      "Did you swap the model and --data? The model comes first: audit model.pt --data test.npz.")
    raise _refuse(path, f"holds no array named {', '.join(INPUT_NAMES)}" + (
        f" and several of two dimensions or more ({', '.join(many)})" if many else " and none of two dimensions or more"),
        "Name the inputs array X (np.savez(path, X=..., y=...)), or pass --features NAME.")


def _numeric(path: Path, name: str, dtype: np.dtype) -> None:
    if dtype.kind not in "biuf" and not (dtype.kind == "U"):
        raise _refuse(path, f"holds the array {name!r} of type {dtype}, which is neither numbers nor text",
                      "Save numbers (or text for a column of labels), not objects.")


def _npz_headers(path: Path) -> tuple[Any, dict[str, tuple[tuple[int, ...], tuple[str, int, np.dtype, bool]]]]:
    """Each member's shape and where its data start, read from the headers only."""
    headers: dict[str, tuple[tuple[int, ...], tuple[str, int, np.dtype, bool]]] = {}
    try:
        archive = zipfile.ZipFile(path)
        with archive:
            for info in archive.infolist():
                with archive.open(info) as handle:
                    shape, fortran, dtype = _skip_header(handle)
                _numeric(path, info.filename[:-4], dtype)
                headers[info.filename[:-4]] = (shape, (info.filename, 0, dtype, fortran))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _refuse(path, f"is not a readable NumPy archive ({str(exc)[:120]})",
                      "Save it with np.savez or np.savez_compressed.") from None

    def arrays(name: str) -> np.ndarray:
        try:
            with np.load(path, allow_pickle=False) as loaded:
                return np.asarray(loaded[name])
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise _refuse(path, f"cannot be read at its array {name!r} ({str(exc)[:120]})",
                          "It is truncated or corrupt; save it again.") from None

    return arrays, headers


def _skip_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    reader = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
    if reader is None:
        raise ValueError(f"unsupported .npy version {version}")
    shape, fortran, dtype = reader(handle)
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _tensors(path: Path) -> tuple[Any, dict[str, tuple[tuple[int, ...], None]]]:
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise _refuse(path, f"is a torch.save file that does not load as plain tensors ({first})",
                      "Save a dict of tensors: torch.save({'X': X, 'y': y}, path).") from None
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(k, str) for k in loaded):
        raise _refuse(path, f"holds a {type(loaded).__name__}, not a dict of named tensors",
                      "Save a dict of tensors: torch.save({'X': X, 'y': y}, path).")
    headers: dict[str, tuple[tuple[int, ...], None]] = {}
    for name, value in loaded.items():
        if isinstance(value, torch.Tensor):
            if value.is_complex() or value.layout != torch.strided:
                raise _refuse(path, f"holds the tensor {name!r} of type {value.dtype}", "Save real numbers.")
            headers[name] = (tuple(value.shape), None)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            headers[name] = ((len(value),), None)
        else:
            raise _refuse(path, f"holds {name!r} as a {type(value).__name__}, neither a tensor nor a list of text",
                          "Save tensors, or lists of text for columns of labels.")

    def arrays(name: str, whole: bool = True) -> Any:
        value = loaded[name]
        if not whole:
            return value
        if isinstance(value, torch.Tensor):
            return value.numpy() if value.dtype != torch.bfloat16 else value.float().numpy()
        return np.array(value, dtype=str)

    return arrays, headers
