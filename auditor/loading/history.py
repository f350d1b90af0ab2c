"""Read a training history (``--history``): per-epoch losses and metrics, whatever wrote them.

The format is recognised from the content, never from the extension:

``csv``
    One row per epoch under a header, comma, semicolon or tab separated, with an ``epoch``
    column or without one (row i is then epoch i + 1). Keras' ``CSVLogger``
    (``epoch,accuracy,loss,val_accuracy,val_loss``, epochs from 0) and fastai's
    (``epoch,train_loss,valid_loss,...,time`` with the time as ``mm:ss``) are such files.
``lightning_csv``
    PyTorch Lightning's ``CSVLogger`` ``metrics.csv``: ``epoch`` and ``step`` columns and one
    row per ``log_metrics`` call, so an epoch spans several rows (training steps, validation,
    epoch end) with empty cells where a row did not log a column.
``json``
    A list of per-epoch objects ``[{"epoch": 1, "train_loss": 0.6, ...}, ...]``, or an object
    of equal-length lists with an ``epoch`` list.
``keras_json``
    Keras' ``history.history`` dumped as JSON: ``{"loss": [...], "val_loss": [...], ...}``,
    one value per epoch, epochs 1, 2, ...
``tensorboard``
    An event file or a folder of them (searched recursively): see
    :mod:`auditor.loading.tensorboard_history` for how steps become epochs and tags names.

A CSV or JSON history is read whole, so it may hold at most the memory budget over
:data:`~auditor.loading.inputs.PARSE_FACTOR` (:func:`~auditor.loading.inputs.read_limit`; the
event files of a TensorBoard log, together, too), JSON nested at most
:data:`~auditor.loading.inputs.MAX_DEPTH` deep; a FIFO or a device is refused, never waited on.
A file that does not parse is described, never quoted.

Whatever the format, several values for one epoch collapse to the **last** value logged in
that epoch (never a mean): that is the epoch-end value of a quantity logged during the epoch.
For Lightning's ``X_step`` columns the last value is the loss of the epoch's last logged
batch, whereas Lightning's epoch loss is its ``X_epoch`` column (the mean over the epoch's
batches): when both exist, ``X_step`` is left out of ``series`` and ``X_epoch`` is used.
``epoch`` and ``step`` are the log's coordinates, never series; columns or keys that hold only
text (labels, dates) are left out; an unnamed column (the index pandas writes) is skipped.

Names are recognised after lower-casing and turning runs of ``_``, ``/``, ``-``, ``.`` and
spaces into one ``_`` (``Train/Loss``, ``train-loss`` and ``train_loss`` are one name), in the
order of :data:`RECOGNISED_NAMES`; the first name the log has wins, and a role the log lacks
is None (deciding what that means is the audit's job).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa

from auditor.contract.context import History
from auditor.contract.errors import DataError
from auditor.loading.arrow import column_to_numpy
from auditor.loading.inputs import loads_json, open_regular, read_bytes, read_limit

#: For each role, the names (normalised as above) that fill it, best first.
RECOGNISED_NAMES: dict[str, tuple[str, ...]] = {
    "train_loss": (
        "train_loss", "training_loss", "loss_train", "loss_training", "train_loss_epoch",
        "train_epoch_loss", "loss", "train_loss_step",
    ),
    "val_loss": (
        "val_loss", "valid_loss", "validation_loss", "loss_val", "loss_valid", "loss_validation",
        "val_loss_epoch", "val_epoch_loss", "validation_epoch_loss", "eval_loss", "loss_eval",
        "test_loss", "loss_test",
    ),
    "seconds": (
        "seconds", "epoch_seconds", "epoch_time", "time", "duration", "epoch_duration",
        "time_per_epoch", "secs", "sec",
    ),
}

#: A series' epochs (or steps) and values, one entry per logged value, in log order.
Points = tuple[np.ndarray, np.ndarray]

_SEPARATORS = re.compile(r"[\s_/.\-]+")
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
_SHAPES = 'Expected {"loss": [...], "val_loss": [...]} or [{"epoch": 1, "train_loss": 0.6, ...}, ...].'
_EXAMPLE = "Expected one row per epoch with numbers under a header, e.g. 'epoch,train_loss,val_loss'."


def normalise(name: str) -> str:
    """``name`` lower-cased, with each run of separators (``_ / - .``, spaces) one ``_``."""
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")


def recognise(names: Iterable[str], role: str) -> str | None:
    """The name among ``names`` that plays ``role`` (a key of :data:`RECOGNISED_NAMES`), or None."""
    forms: dict[str, str] = {}
    for name in names:
        forms.setdefault(normalise(name), name)
    return next((forms[form] for form in RECOGNISED_NAMES[role] if form in forms), None)


def key_of(names: Iterable[str], form: str) -> str | None:
    """The first of ``names`` whose normalised form is ``form`` (e.g. ``"epoch"``), or None."""
    return next((name for name in names if normalise(name) == form), None)


def epochs_at_steps(known_steps: np.ndarray, known_epochs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The epoch of each of ``steps``: that of the first known step at or after it (the last
    known epoch for a step past the end)."""
    order = np.argsort(known_steps, kind="stable")
    at = np.searchsorted(known_steps[order], steps, side="left")
    return known_epochs[order][np.minimum(at, order.size - 1)]


@dataclass
class _Rows:
    """A CSV or JSON history before collapsing: one entry per row (or list item)."""

    format: str
    n_rows: int
    names: list[str]
    columns: dict[str, np.ndarray]


def load_history(path: Path) -> History:
    """Read the training history at ``path`` (a CSV, JSON or TensorBoard file, or a folder of
    TensorBoard logs); raise :class:`DataError` with a one-line message when it is not one."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "tensorboard":
        from auditor.loading.tensorboard_history import load_tensorboard  # it imports this module's helpers

        return load_tensorboard(path)
    raw = read_bytes(path, "The history file", limit=read_limit())
    return _from_rows(path, _read_json(path, raw) if kind == "json" else _read_csv(path, raw))


def display_name(path: Path) -> str:
    """The file or folder name, also for a path like ``.``."""
    return path.name or path.resolve().name


def _sniff(path: Path) -> str:
    if not path.exists():
        raise DataError(f"The training history {str(path)!r} does not exist.", hint="Check the --history path.")
    if path.is_dir():
        return "tensorboard"
    try:
        with open_regular(path, "The history file") as handle:  # a FIFO is refused, not waited on
            head = handle.read(4096)
    except OSError as exc:
        raise DataError(f"The history file {path.name} cannot be read ({exc.strerror or exc}).",
                        hint="Check that it is a readable file.") from None
    if not head.strip():
        raise DataError(f"The history file {path.name} is empty{'' if head else ' (0 bytes)'}.",
                        hint="Pass the CSV, JSON or TensorBoard log written while training.")
    if b"brain.Event:" in head[:64]:  # the file_version record that opens every event file
        return "tensorboard"
    if _is_binary(head):
        raise DataError(
            f"The history file {path.name} is neither UTF-8 text (CSV, JSON) nor a TensorBoard event file.",
            hint="Pass the CSV or JSON history (saved as UTF-8), or an events.out.tfevents.* file or its folder.",
        )
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return "json" if text[:1] in ("{", "[") else "csv"


def _is_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3  # else a character cut by the end of the sample
    return False


def _number(value: Any, clock: bool) -> float | None:
    """``value`` as a float; ``mm:ss`` or ``h:mm:ss`` too when ``clock``; None when not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            match = _CLOCK.fullmatch(value.strip()) if clock else None
            if match:
                hours, minutes, seconds = match.groups()
                return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def _numbers(path: Path, name: str, values: Sequence[Any], where: Callable[[int], str]) -> np.ndarray | None:
    """One column as float64 (None and empty text are NaN); None for a column of text only (a
    label, not a per-epoch quantity); DataError for text among numbers."""
    clock = normalise(name) in RECOGNISED_NAMES["seconds"]
    out = np.full(len(values), np.nan)
    text = []
    for i, value in enumerate(values):
        if value is None or value == "":
            continue
        number = _number(value, clock)
        if number is None:
            text.append(i)
        else:
            out[i] = number
    if not text:
        return out
    if np.isnan(out).all():
        return None
    raise DataError(
        f"The history column {name!r} in {path.name} must hold numbers, but it holds "
        f"{str(values[text[0]])[:40]!r} ({where(text[0])}).",
        hint="Write a number, or leave the value empty (null in JSON) for an epoch that has none.",
    )


def _arrow_problem(exc: Exception) -> str:
    """What pyarrow could not read, without the row it quotes (a file that does not parse may
    be anything: it is never echoed)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    fields = re.search(r"Expected (\d+) columns, got (\d+)", text)
    if fields:
        return f"a row has {fields.group(2)} fields where the header has {fields.group(1)}"
    return text.split(":", 1)[0][:80]


def _read_csv(path: Path, raw: bytes) -> _Rows:
    import pyarrow.csv as pacsv

    header = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
    delimiter = max(",;\t", key=header.count)
    durations = [name for name in next(csv.reader([header], delimiter=delimiter), [])
                 if normalise(name) in RECOGNISED_NAMES["seconds"]]
    options = (
        pacsv.ReadOptions(block_size=max(len(raw) + 1, 1 << 20)),  # types from every row
        pacsv.ParseOptions(delimiter=delimiter),
        pacsv.ConvertOptions(column_types={name: pa.string() for name in durations}),  # mm:ss, not a time of day
    )
    try:
        table = pacsv.read_csv(pa.BufferReader(raw), *options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"The history file {path.name} cannot be read as CSV: {_arrow_problem(exc)}.",
                        hint=_EXAMPLE) from None
    names = table.column_names
    repeated = [name for name in names if names.count(name) > 1]
    if repeated:
        raise DataError(f"The history file {path.name} has two columns named {repeated[0]!r}.",
                        hint="Rename one so that each quantity has one column.")
    columns: dict[str, np.ndarray] = {}
    for name, column in zip(names, table.columns):
        if not name.strip():
            continue
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            columns[name] = column_to_numpy(column).astype(np.float64)
        elif pa.types.is_string(column.type):
            values = _numbers(path, name, column_to_numpy(column).tolist(), lambda i: f"data row {i + 1}")
            if values is not None:
                columns[name] = values
    return _Rows("csv", table.num_rows, names, columns)


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


def _read_json(path: Path, raw: bytes) -> _Rows:
    try:
        data = loads_json(raw.decode("utf-8-sig"), f"The history file {path.name}")
    except json.JSONDecodeError as exc:
        raise DataError(f"The history file {path.name} is not valid JSON: {exc.msg} (line {exc.lineno}, "
                        f"column {exc.colno}).", hint=_SHAPES) from None
    except UnicodeDecodeError:
        raise DataError(f"The history file {path.name} is not UTF-8 text.", hint="Save it as UTF-8.") from None
    if isinstance(data, list):
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise DataError(f"Entry {i} of the history {path.name} is {_kind(entry)}, where an object "
                                "of one epoch's values was expected.", hint=_SHAPES)
        names = list(dict.fromkeys(key for entry in data for key in entry))
        lists = {name: [entry.get(name) for entry in data] for name in names}
        fmt, n_rows, where = "json", len(data), "entry {}"
    elif isinstance(data, dict):
        for name, values in data.items():
            if not isinstance(values, list):
                raise DataError(f"The history {path.name} holds {_kind(values)} under {name!r}, where a list "
                                "of per-epoch values was expected.", hint=_SHAPES)
        lengths = {name: len(values) for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            longest = max(lengths, key=lambda name: lengths[name])
            shortest = min(lengths, key=lambda name: lengths[name])
            raise DataError(
                f"The lists in the history {path.name} differ in length: {longest!r} has "
                f"{lengths[longest]} values but {shortest!r} has {lengths[shortest]}.",
                hint="Each key must hold one value per epoch; write null for an epoch that has none.",
            )
        names, lists = list(data), data
        fmt = "json" if key_of(data, "epoch") else "keras_json"
        n_rows, where = next(iter(lengths.values()), 0), "item {}"
    else:
        raise DataError(f"The history {path.name} holds {_kind(data)} at the top level.", hint=_SHAPES)
    columns = {}
    for name in names:
        values = _numbers(path, name, lists[name], where.format)
        if values is not None:
            columns[name] = values
    return _Rows(fmt, n_rows, names, columns)


def whole_epochs(path: Path, epochs: np.ndarray) -> np.ndarray:
    """``epochs`` as int64; DataError when one is not a whole number."""
    bad = ~np.isfinite(epochs) | (epochs != np.round(epochs))
    if bad.any():
        raise DataError(f"The epochs in the history {display_name(path)} must be whole numbers, but one is "
                        f"{epochs[bad][0]:g}.", hint="Write whole epoch numbers (0, 1, 2... or 1, 2, 3...).")
    return epochs.astype(np.int64)


def _from_rows(path: Path, rows: _Rows) -> History:
    """Rows to epochs: by the ``epoch`` column, else row i is epoch i + 1. A row without an
    epoch (Lightning's ``LearningRateMonitor`` logs none) takes the epoch of the first row
    logged at or after its ``step``."""
    if rows.n_rows == 0:
        raise DataError(f"The history file {path.name} holds no epochs: no rows or values under its header or "
                        "keys.", hint="Pass the history after at least one epoch of training.")
    epoch_name, step_name = key_of(rows.columns, "epoch"), key_of(rows.columns, "step")
    epochs = rows.columns.pop(epoch_name) if epoch_name else None
    steps = rows.columns.pop(step_name) if step_name else None
    if epochs is None:
        row_epochs = np.arange(1, rows.n_rows + 1)
    else:
        missing = np.isnan(epochs)
        if missing.any():
            if missing.all() or steps is None or np.isnan(steps[missing]).any():
                raise DataError(
                    f"The epoch column of {path.name} is empty at data row {int(np.argmax(missing)) + 1}, and no "
                    "step says which epoch that row belongs to.",
                    hint="Fill in every row's epoch, or drop the column (row i is then epoch i + 1).",
                )
            epochs = epochs.copy()
            epochs[missing] = epochs_at_steps(steps[~missing], epochs[~missing], steps[missing])
        row_epochs = whole_epochs(path, epochs)
    fmt = rows.format
    if fmt == "csv" and steps is not None and np.unique(row_epochs).size < rows.n_rows:
        fmt = "lightning_csv"
    points = {name: (row_epochs, values) for name, values in rows.columns.items()}
    return build_history(path, fmt, row_epochs, points, rows.names)


def _last_per_epoch(epochs: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One value per epoch: the last non-NaN value logged in it, NaN when it has none."""
    out = np.full(epochs.size, np.nan)
    logged = ~np.isnan(values)
    backwards_at, backwards = at[logged][::-1], values[logged][::-1]
    unique, last = np.unique(backwards_at, return_index=True)
    out[np.searchsorted(epochs, unique)] = backwards[last]
    return out


def build_history(path: Path, fmt: str, seen: np.ndarray, points: dict[str, Points], names: list[str]) -> History:
    """The History of ``points`` (each series' epochs and values, in log order), collapsed to one
    value per epoch of ``seen``; ``names`` (every name in the log) goes into the message when
    there are no numeric series."""
    if not points:
        shown = ", ".join(repr(name) for name in names[:12]) or "none"
        raise DataError(f"The history {display_name(path)} has no numeric per-epoch values (columns or keys: "
                        f"{shown}).", hint=_EXAMPLE)
    epochs = np.unique(seen)
    series = {name: _last_per_epoch(epochs, at, values) for name, (at, values) in points.items()
              if not (name.endswith("_step") and name[: -len("_step")] + "_epoch" in points)}
    seconds = recognise(series, "seconds")
    return History(
        source=display_name(path),
        format=fmt,
        epochs=epochs.astype(np.int64),
        series=series,
        train_loss=recognise(series, "train_loss"),
        val_loss=recognise(series, "val_loss"),
        seconds=None if seconds is None else series[seconds].copy(),
    )
