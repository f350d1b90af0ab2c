"""A training history from TensorBoard event files, read with the ``tensorboard`` package.

No TensorFlow: ``tensorboard``'s own event reader. It is imported only when a history is a
TensorBoard log, and when it is not installed the message says how to install it. Both
scalar encodings are read: ``simple_value`` (``add_scalar``, Lightning) and the scalar
tensors of ``tf.summary.scalar`` (Keras) or ``add_scalar(..., new_style=True)``.

Scalars are logged by step; each value's epoch is, in this order:

1. when an ``epoch`` scalar exists (Lightning's loggers log one with every metric), what it
   reads at the first step at or after the value's;
2. else the steps of the validation loss (of the training loss, failing that; of the first
   scalar, failing both) decide: consecutive integers are epochs (``add_scalar(tag, value,
   epoch)``), and every value's step is its epoch;
3. else each distinct step of that scalar ends an epoch, numbered from 1, and a value
   belongs to the epoch of the first such step at or after its own.

Then, as for every format, an epoch's value is the last one logged in it (see
:mod:`auditor.loading.history`).

Names: the tags of the file given, or of the event files in the deepest folder that holds
them all (``version_0`` when given Lightning's ``lightning_logs``), keep their names. A
subfolder's tags are prefixed with its path (Keras' ``train/`` and
``validation/`` subfolders give ``train/epoch_loss`` and ``validation/epoch_loss``), except
the subfolders that ``SummaryWriter.add_scalars(main, {key: value})`` writes, named
``main_key`` and holding the tag ``main``: their scalar is ``main/key`` (``loss/train``).
A folder whose subfolders hold several runs that each log a loss (Lightning's ``version_0``,
``version_1``...) is refused: which run to audit is the user's choice.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from auditor.contract.context import History
from auditor.contract.errors import DataError
from auditor.loading.history import (
    Points,
    build_history,
    display_name,
    epochs_at_steps,
    key_of,
    recognise,
    whole_epochs,
)
from auditor.loading.inputs import read_limit, too_large


def _event_files(folder: Path) -> list[Path]:
    """The event files anywhere under ``folder``: the files TensorBoard reads (``*tfevents*``)."""
    return sorted(path for path in folder.rglob("*tfevents*") if path.is_file())


def _modules(name: str) -> tuple[Any, Any]:
    try:
        from tensorboard.backend.event_processing import event_accumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise DataError(
            f"Reading the TensorBoard log {name} needs the tensorboard package, which is not installed.",
            hint="Install it with: pip install 'auditor[tensorboard]'",
        ) from None
    return event_accumulator, tensor_util


def _read(location: Path, event_accumulator: Any, tensor_util: Any) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar of one event file, or of the event files directly inside one folder."""
    everything = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}  # 0 keeps every event
    accumulator = event_accumulator.EventAccumulator(str(location), size_guidance=everything)
    accumulator.Reload()
    tags = accumulator.Tags()
    found: dict[str, tuple[list[int], list[float]]] = {}
    for tag in tags["scalars"]:
        events = accumulator.Scalars(tag)
        found[tag] = ([event.step for event in events], [event.value for event in events])
    for tag in tags["tensors"]:
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            events = accumulator.Tensors(tag)
            found[tag] = (
                [event.step for event in events],
                [float(tensor_util.make_ndarray(event.tensor_proto)) for event in events],
            )
    return found


def _check_files(path: Path, files: list[Path]) -> None:
    """Every event file is a regular file, and together they fit the bound on a history
    (what their scalars take in memory grows with their size)."""
    limit, total = read_limit(), 0
    for file in files:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"The TensorBoard log {display_name(path)} holds {file.name!r}, which is not a regular file.",
                            hint="Pass a folder of event files only.")
        total += info.st_size
    if total > limit:
        raise too_large("The TensorBoard log", path, limit)


def _run_and_name(relative: str, tag: str) -> tuple[str, str]:
    """The run a scalar belongs to (a folder path relative to the log's root) and its name in it."""
    parent, _, leaf = relative.rpartition("/")
    main = tag.replace("/", "_") + "_"
    if leaf.startswith(main) and len(leaf) > len(main):
        return parent, f"{tag}/{leaf[len(main):]}"
    return relative, tag


def _read_scalars(path: Path) -> tuple[dict[str, Points], dict[str, list[str]]]:
    """Every scalar in the event file ``path``, or in every event file under the folder ``path``.

    Returns each scalar's steps and values by name (see the module docstring) and, for each run
    (a folder of event files other than an ``add_scalars`` subfolder; ``""`` for the root), the
    names it holds.
    """
    name = display_name(path)
    if path.is_dir():
        files = _event_files(path)
        if not files:
            others = sorted(p for p in path.rglob("*") if p.suffix in (".csv", ".json") and p.is_file())
            hint = (f"It holds {others[0].relative_to(path).as_posix()}: pass that file instead." if others
                    else "Pass the folder a SummaryWriter or Lightning logger wrote, or a CSV or JSON history.")
            raise DataError(f"The history folder {name} holds no TensorBoard event files (events.out.tfevents.*).",
                            hint=hint)
        locations = sorted({file.parent for file in files})
        root = Path(os.path.commonpath(locations))
    else:
        files = [path]
        locations, root = [path], path
    _check_files(path, files)
    event_accumulator, tensor_util = _modules(name)
    scalars: dict[str, Points] = {}
    runs: dict[str, list[str]] = {}
    for location in locations:
        relative = "" if location == root else location.relative_to(root).as_posix()
        for tag, (steps, values) in _read(location, event_accumulator, tensor_util).items():
            run, in_run = _run_and_name(relative, tag)
            scalars[f"{run}/{in_run}" if run else in_run] = (
                np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
            runs.setdefault(run, []).append(in_run)
    return scalars, runs


def _check_one_run(path: Path, runs: dict[str, list[str]]) -> None:
    losses = [run or "." for run, names in runs.items()
              if any(recognise([name], role) for name in names for role in ("train_loss", "val_loss"))]
    if len(losses) > 1:
        raise DataError(
            f"The TensorBoard folder {display_name(path)} holds {len(losses)} runs that each log a loss: "
            f"{', '.join(sorted(losses)[:5])}.",
            hint=f"Pass one run's folder, e.g. {display_name(path)}/{sorted(losses)[-1]}.",
        )


def load_tensorboard(path: Path) -> History:
    """The history in the event file or folder ``path`` (see the module docstring)."""
    scalars, runs = _read_scalars(path)
    _check_one_run(path, runs)
    if not scalars:
        raise DataError(f"The TensorBoard log {display_name(path)} holds no scalars.",
                        hint="Pass the log of a run that logged its losses (add_scalar, or self.log in Lightning).")
    epoch_name = key_of(scalars, "epoch")
    if epoch_name is not None:
        known_steps, epochs = scalars.pop(epoch_name)
        known_epochs = whole_epochs(path, epochs)
    else:
        anchor = recognise(scalars, "val_loss") or recognise(scalars, "train_loss") or next(iter(scalars))
        known_steps = np.unique(scalars[anchor][0])
        if known_steps[-1] - known_steps[0] + 1 == known_steps.size:  # consecutive: the steps are the epochs
            known_steps = known_epochs = np.unique(np.concatenate([steps for steps, _ in scalars.values()]))
        else:
            known_epochs = np.arange(1, known_steps.size + 1)
    points = {name: (epochs_at_steps(known_steps, known_epochs, steps), values)
              for name, (steps, values) in scalars.items()}
    seen = np.concatenate([known_epochs] + [at for at, _ in points.values()])
    return build_history(path, "tensorboard", seen, points, list(scalars))
