"""Inputs given as Python objects (:func:`auditor.audit`), not as files.

- A ``torch.nn.Module`` becomes a :class:`~auditor.loading.model.LoadedModel` as it is
  (:func:`module_model`): no file, so its "sha256" is the digest of its state_dict tensors
  (names, dtypes, shapes and bytes, in name order) and its size their bytes. It is borrowed,
  not copied (:func:`borrowed`): moved to the run's device and put in eval mode for the run,
  and given back on its own device in its own mode afterwards.
- A pandas DataFrame, a NumPy array or a torch tensor becomes a Parquet file in a private
  temporary folder (:func:`table_file`), which the run reads through the SAME loader as a
  file the user names (every check, every message, the privacy scan), and which the caller
  deletes after the run. Array columns are ``f0..f{n-1}`` unless ``features`` names them;
  labels given apart (``y``) become the column ``target`` (or the ``target`` name asked for).
  An array of more than two dimensions is one row per first index, flattened, and the
  model's input shape is then the array's own shape past the first (said, never guessed).
"""

from __future__ import annotations

import hashlib
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from auditor.contract.errors import DataError, UsageError

#: ``report.model.format`` of a module given as an object.
IN_MEMORY_FORMAT = "in-memory module"

IN_MEMORY_TRUST = (
    "An nn.Module object handed to auditor.audit() by the caller's own Python process: no file was "
    "loaded and no code was imported by auditor; the module's code is the caller's. Its sha256 is the "
    "digest of its state_dict tensors (names, dtypes, shapes, bytes)."
)

#: ``report.run.confinement`` of an in-process run of an in-memory module.
UNCONFINED = {
    "enforced": False,
    "reason": "the model was an object already in the caller's Python process",
    "summary": "It ran WITHOUT operating-system confinement, in the caller's process: the module was "
    "already there, so confining the run could not have kept its code out.",
}


def is_module(value: Any) -> bool:
    """Whether ``value`` is a ``torch.nn.Module`` (without importing torch for a path)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def state_digest(module: Any) -> tuple[str, int]:
    """The sha256 of a module's state_dict (names, dtypes, shapes and bytes, in name order)
    and the bytes its tensors hold: the same weights give the same digest, on any device."""
    import torch

    digest = hashlib.sha256()
    size = 0
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode("utf-8") + b"\0")
        if not isinstance(value, torch.Tensor):  # extra state: its repr is all there is
            digest.update(repr(value).encode("utf-8") + b"\0")
            continue
        tensor = value.detach()
        if tensor.is_quantized or tensor.layout != torch.strided:
            tensor = tensor.dequantize() if tensor.is_quantized else tensor.to_dense()
        tensor = tensor.to("cpu").contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode() + b"\0")
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        digest.update(raw.tobytes())
        size += int(raw.nbytes)
    return digest.hexdigest(), size


def _device_of(module: Any) -> Any:
    import torch

    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def borrowed(module: Any, device: Any) -> Iterator[Any]:
    """The caller's module on ``device`` in eval mode for the run; afterwards back on the
    device it came from, in the mode (train or eval) it was in."""
    was_training = bool(module.training)
    home = _device_of(module)
    try:
        if home != device:
            module.to(device)
        module.eval()
        yield module
    finally:
        if home != device:
            module.to(home)
        module.train(was_training)


def module_model(module: Any, metadata: dict[str, Any] | None = None) -> Any:
    """A :class:`~auditor.loading.model.LoadedModel` for a module given as an object; its
    ``metadata`` (feature_names, class_names, target, task, output, input_shape, name...)
    checked like a sidecar's."""
    from auditor.loading.metadata import check_metadata
    from auditor.loading.model import LoadedModel

    if not is_module(module):
        raise UsageError(
            f"The model must be a path or a torch.nn.Module; got {type(module).__name__}.",
            hint="Pass the path of a saved model, or the nn.Module itself.",
        )
    checked = check_metadata(dict(metadata), "the metadata= argument") if metadata else {}
    sha, size = state_digest(module)
    return LoadedModel(
        module=module,
        format=IN_MEMORY_FORMAT,
        path=Path(f"<in-memory {type(module).__name__}>"),
        sha256=sha,
        size_bytes=size,
        metadata={k: v for k, v in checked.items() if v is not None},
        trust=IN_MEMORY_TRUST,
    )


@dataclass(frozen=True)
class TableFile:
    """An in-memory table written to Parquet: where, what to call it in the report, and the
    input shape an array of images or sequences declared by its own shape (else None)."""

    path: Path
    label: str
    input_shape: list[int] | None = None


def is_table_object(value: Any) -> bool:
    """Whether ``value`` is data given as an object (a DataFrame, an ndarray, a tensor)."""
    return not isinstance(value, (str, Path)) and value is not None


def _kind(value: Any) -> str:
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return "DataFrame"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "Tensor"
    if isinstance(value, np.ndarray):
        return "ndarray"
    raise UsageError(
        f"Data must be a path, a pandas DataFrame, a NumPy array or a torch tensor; got {type(value).__name__}.",
        hint="Pass the path of a CSV or Parquet file, or one of those objects.",
    )


def _array(value: Any, what: str) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return np.asarray(value.detach().to("cpu").numpy())
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.Series, pandas.DataFrame)):
        return np.asarray(value.to_numpy())
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what} cannot be read as an array: {exc}.") from None


def _labels(y: Any, rows: int, what: str) -> np.ndarray:
    labels = _array(y, what)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != rows:
        raise DataError(
            f"{what} must hold one label per row: {rows:,} rows; got an array of shape {tuple(labels.shape)}.",
            hint="Pass a 1-D array (or list) of labels, in the rows' order.",
        )
    return labels


def table_file(
    data: Any,
    folder: Path,
    *,
    name: str,
    y: Any = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
    what: str = "data",
) -> TableFile:
    """Write ``data`` (a DataFrame, ndarray or tensor) and its labels ``y`` to
    ``folder/name`` as Parquet, for the loader to read. Raises :class:`DataError` for a shape
    that is no table, labels that do not match the rows or a label column that exists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = _kind(data)
    input_shape: list[int] | None = None
    if kind == "DataFrame":
        frame = data.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        if len(set(frame.columns)) != len(frame.columns):
            raise DataError(f"The {what} DataFrame has repeated column names.", hint="Give every column its own name.")
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"The {what} DataFrame cannot be stored as a table: {exc}.",
                            hint="Give each column one type (numbers, or text).") from None
    else:
        array = _array(data, f"The {what}")
        if array.ndim < 2:
            raise DataError(
                f"The {what} {kind} must have one row per example: 2 or more dimensions; got shape {tuple(array.shape)}.",
                hint="Pass an array of shape (rows, features), or (rows, *input_shape) for images or sequences.",
            )
        if array.ndim > 2:
            input_shape = [int(n) for n in array.shape[1:]]
            array = array.reshape(array.shape[0], -1)
        if array.dtype.kind not in "biuf":
            raise DataError(f"The {what} {kind} holds {array.dtype} values; a model's features must be numbers.",
                            hint="Convert it to a numeric dtype (e.g. float32).")
        width = array.shape[1]
        names = list(features) if features is not None else [f"f{i}" for i in range(width)]
        if len(names) != width:
            raise DataError(
                f"features names {len(names)} column(s), but the {what} {kind} has {width} per row.",
                hint="Name every column, in order, or leave features out (they are then f0..f{n-1}).",
            )
        table = pa.table({column: array[:, i] for i, column in enumerate(names)})
    if y is not None:
        column = target or "target"
        if column in table.column_names:
            raise DataError(
                f"The {what} already has a column {column!r}, and y= gives the labels too.",
                hint="Leave y out (the column is the target), or name another target with target=.",
            )
        table = table.append_column(column, pa.array(_labels(y, table.num_rows, "y")))
    path = folder / name
    pq.write_table(table, path)
    return TableFile(path=path, label=f"<in-memory {kind}>", input_shape=input_shape)
