"""What every non-table source gives the streaming pass: rows of float32 inputs, and a table
of the columns beside them."""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from auditor.contract.errors import DataError, UsageError

#: Image modes a run may declare (Pillow's names), with the channels each gives.
MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


@dataclass(frozen=True)
class ImageSpec:
    """How image files become tensors: the size to resize to (None: as the files hold them,
    all alike), the mode to convert to (None: as the files hold them, all alike), and the
    per-channel mean and standard deviation to normalise with (after scaling to [0, 1])."""

    size: tuple[int, int] | None = None  # (height, width)
    mode: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def declared(cls, meta: Any, size: Any = None, mode: Any = None) -> ImageSpec:
        meta = meta if isinstance(meta, dict) else {}
        size = size if size is not None else meta.get("size")
        mode = mode if mode is not None else meta.get("mode")
        return cls(size=_size(size), mode=_mode(mode), mean=_floats(meta.get("mean"), "mean"),
                   std=_floats(meta.get("std"), "std"))


def _size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().replace("x", ",").split(",")
        value = [p.strip() for p in parts]
    try:
        if isinstance(value, (int, str)):
            value = [value, value]
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"An image size is HEIGHTxWIDTH, e.g. 28x28; got {value!r}.") from None
    if not (0 < height <= 16384 and 0 < width <= 16384):
        raise UsageError(f"An image size must be 1 to 16,384 pixels a side; got {height}x{width}.")
    return height, width


def _mode(value: Any) -> str | None:
    if value is None:
        return None
    if str(value) not in MODES:
        raise UsageError(f"The image mode must be one of {', '.join(MODES)}; got {value!r}.")
    return str(value)


def _floats(value: Any, what: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        values = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    except (TypeError, ValueError):
        raise UsageError(f"The image {what} in the model's metadata must be numbers; got {value!r}.") from None
    if not values or not all(math.isfinite(v) for v in values) or (what == "std" and min(values) <= 0):
        raise UsageError(f"The image {what} in the model's metadata must be finite numbers (std above 0); "
                         f"got {value!r}.")
    return values


def feature_names(shape: Sequence[int]) -> list[str]:
    """A name per input value, row-major: ``c0_y3_x5`` for images (C, H, W), ``t4_f2`` for
    sequences (T, F), ``x7`` for flat rows, ``i0_3_1`` otherwise."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return [f"x{i}" for i in range(shape[0])]
    prefixes = {2: ("t", "f"), 3: ("c", "y", "x")}.get(len(shape))
    names = []
    for index in np.ndindex(*shape):
        if prefixes:
            names.append("_".join(f"{p}{i}" for p, i in zip(prefixes, index)))
        else:
            names.append("i" + "_".join(str(i) for i in index))
    return names


class ArraySource(ABC):
    """A data source of ``n_rows`` examples, each ``input_shape`` float32 values, beside a
    table of ``columns`` (the default target first among them when there is one)."""

    path: Path
    kind: str
    n_rows: int
    input_shape: tuple[int, ...]
    columns: list[str]
    input_dtype = "float32"  # what the model takes: "int64" for token ids (carried as exact float32)

    @property
    def n_features(self) -> int:
        return int(math.prod(self.input_shape))

    def feature_names(self) -> list[str]:
        return feature_names(self.input_shape)

    @abstractmethod
    def chunks(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """The table of ``columns`` and the inputs (rows x features, float32, finite), ``rows``
        examples at a time, in order."""

    @abstractmethod
    def head(self, rows: int) -> pa.Table:
        """The table of ``columns`` of the first ``rows`` examples (no input read)."""

    @abstractmethod
    def files(self) -> list[Path]:
        """The files the data come from, for the digest and the size."""

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def digest(self) -> str:
        """SHA-256 of the data: of the file, or of a manifest of every file's path (relative to
        the folder) and SHA-256, in order."""
        from auditor.loading.hashing import sha256_file

        files = self.files()
        if len(files) == 1 and files[0] == self.path:
            return sha256_file(self.path)
        manifest = hashlib.sha256()
        for file in files:
            manifest.update(f"{file.relative_to(self.path).as_posix()}\0{sha256_file(file)}\n".encode())
        return manifest.hexdigest()

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.input_shape)
        return f"{self.n_rows:,} examples of shape {shape} ({self.kind})"


def named_input(path: Path, names: list[str], features: list[str] | None, what: str) -> str | None:
    """The inputs ``--features NAME`` names among ``names`` (``what``: "array", "column"), or
    None when it names none; one name that is not there is an error listing them."""
    if not features:
        return None
    if len(features) != 1 or features[0] not in names:
        raise DataError(f"--features names the inputs {what} of {path.name}: one of {', '.join(names)}; "
                        f"got {', '.join(features)}.")
    return features[0]


def check_finite(X: np.ndarray, path: Path, offset: int, what: str) -> None:
    """Inputs must be finite numbers: a NaN or infinity is an error naming the first row."""
    bad = ~np.isfinite(X)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(f"{what} in {path.name} holds a NaN or infinite value in example {offset + row + 1:,}.",
                        hint="Clean or drop those examples before auditing; the model cannot take NaN.")
