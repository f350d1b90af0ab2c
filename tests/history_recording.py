"""Record two real training runs, and write each history in every layout ``load_history`` reads.

Two small MLPs train for :data:`EPOCHS` epochs on scikit-learn's breast-cancer data (569
tumours, 30 features), validated on the same :data:`VAL_SIZE` held-out tumours:

``overfitting``
    A wide MLP (30-256-256-2, no regularisation) on a 30-tumour training slice: the training
    loss falls to ~0 while the validation loss bottoms out around epoch 10, then climbs.
``well_fit``
    A small MLP (30-16-2, weight decay) on 300 tumours: both losses fall together to the end.

Each epoch records what a training loop reports: the training loss and accuracy over the
epoch's batches (their mean, as Keras' ``loss`` and Lightning's ``*_epoch`` are), the
validation loss and accuracy after the epoch, every batch's loss, and the epoch's seconds.
Values are Python floats from ``Tensor.item()``.

:func:`record_histories` trains both and writes each history in every layout of
:data:`LAYOUTS`, byte for byte the way the tool named there writes it (Lightning is not
installed: its ``CSVLogger`` and ``TensorBoardLogger`` output is reproduced from their
source). Other test modules use it through the :func:`recorded_histories` fixture::

    from history_recording import recorded_histories  # noqa: F401 (a pytest fixture)
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from sklearn import datasets
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

EPOCHS = 30
VAL_SIZE = 200
BATCHES_PER_EPOCH = 6
LIGHTNING_LOG_EVERY_N_STEPS = 2  # Trainer(log_every_n_steps=2): several step rows per epoch


@dataclass
class RecordedRun:
    """One training run as recorded, epoch by epoch (``epochs`` are 1, 2, ..., EPOCHS)."""

    name: str
    overfits: bool
    learning_rate: float
    epochs: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    seconds: np.ndarray
    batch_losses: np.ndarray  # epochs x BATCHES_PER_EPOCH
    files: dict[str, Path] = field(default_factory=dict)  # layout name -> what to pass to load_history

    @property
    def best_epoch(self) -> int:
        """The epoch (counted from 1) with the lowest validation loss."""
        return int(self.epochs[np.argmin(self.val_loss)])


def _exact(values: np.ndarray) -> np.ndarray:
    return values


def _float32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).astype(np.float64)


def _whole_seconds(values: np.ndarray) -> np.ndarray:
    return np.floor(values)  # fastai's format_time writes int(seconds) as mm:ss


@dataclass(frozen=True)
class Layout:
    """What ``load_history`` must report for one layout."""

    format: str
    first_epoch: int  # the number the writer gives the first epoch
    train_loss: str  # the training loss's name in that log
    val_loss: str
    stored: Callable[[np.ndarray], np.ndarray]  # the values as the log keeps them
    seconds: Callable[[np.ndarray], np.ndarray] | None  # the seconds as kept, None if not logged


LAYOUTS: dict[str, Layout] = {
    "csv": Layout("csv", 1, "train_loss", "val_loss", _exact, _exact),
    "keras_csvlogger": Layout("csv", 0, "loss", "val_loss", _exact, None),
    "fastai_csvlogger": Layout("csv", 0, "train_loss", "valid_loss", _exact, _whole_seconds),
    "tsv_without_epoch": Layout("csv", 1, "training_loss", "validation_loss", _exact, _exact),
    "lightning_csvlogger": Layout("lightning_csv", 0, "train_loss_epoch", "val_loss", _exact, None),
    "keras_history_json": Layout("keras_json", 1, "loss", "val_loss", _exact, None),
    "json_lists_with_epoch": Layout("json", 1, "train/loss", "val/loss", _exact, None),
    "json_records": Layout("json", 1, "train_loss", "val_loss", _exact, _exact),
    "tensorboard_summarywriter": Layout("tensorboard", 0, "train/loss", "val/loss", _float32, _float32),
    "tensorboard_event_file": Layout("tensorboard", 0, "train/loss", "val/loss", _float32, _float32),
    "tensorboard_add_scalars": Layout("tensorboard", 1, "loss/train", "loss/val", _float32, None),
    "tensorboard_lightning": Layout("tensorboard", 0, "train_loss_epoch", "val_loss", _float32, None),
    "tensorboard_keras": Layout("tensorboard", 0, "train/epoch_loss", "validation/epoch_loss", _float32, None),
    "tensorboard_global_steps": Layout("tensorboard", 1, "train_loss", "val_loss", _float32, None),
}


def _train(name: str, n_train: int, hidden: tuple[int, ...], weight_decay: float, learning_rate: float) -> RecordedRun:
    X, y = datasets.load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order].astype(np.float32), y[order]
    mean, std = X[:n_train].mean(axis=0), X[:n_train].std(axis=0) + 1e-6
    X = (X - mean) / std
    X_train, y_train = torch.tensor(X[:n_train]), torch.tensor(y[:n_train])
    X_val, y_val = torch.tensor(X[-VAL_SIZE:]), torch.tensor(y[-VAL_SIZE:])
    batch_size = n_train // BATCHES_PER_EPOCH
    loss_fn = torch.nn.functional.cross_entropy
    columns: dict[str, list[float]] = {k: [] for k in ("train_loss", "val_loss", "train_acc", "val_acc", "seconds")}
    batch_losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[torch.nn.Module] = []
        width = X.shape[1]
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            width = size
        model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 2))
        optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
        for _ in range(EPOCHS):
            start = time.perf_counter()
            losses, correct = [], 0
            for batch in torch.randperm(n_train).split(batch_size):
                optimiser.zero_grad()
                logits = model(X_train[batch])
                loss = loss_fn(logits, y_train[batch])
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                correct += int((logits.argmax(dim=1) == y_train[batch]).sum())
            with torch.no_grad():
                logits = model(X_val)
                columns["val_loss"].append(loss_fn(logits, y_val).item())
                columns["val_acc"].append((logits.argmax(dim=1) == y_val).float().mean().item())
            columns["train_loss"].append(float(np.mean(losses)))
            columns["train_acc"].append(correct / n_train)
            columns["seconds"].append(time.perf_counter() - start)
            batch_losses.append(losses)
    arrays = {key: np.array(values, dtype=np.float64) for key, values in columns.items()}
    return RecordedRun(
        name=name, overfits=name == "overfitting", learning_rate=learning_rate,
        epochs=np.arange(1, EPOCHS + 1), train_loss=arrays["train_loss"], val_loss=arrays["val_loss"],
        train_accuracy=arrays["train_acc"], val_accuracy=arrays["val_acc"], seconds=arrays["seconds"],
        batch_losses=np.array(batch_losses, dtype=np.float64),
    )


# --- writers: each writes the run the way one tool does and returns what a user would pass ---

def _write_rows(path: Path, fieldnames: list[str], rows: list[dict[str, object]], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:  # csv's own line ends (\r\n), as the tools open it
        writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _csv(run: RecordedRun, folder: Path) -> Path:
    rows = [{"epoch": e, "train_loss": tl, "val_loss": vl, "train_accuracy": ta, "val_accuracy": va, "seconds": s}
            for e, tl, vl, ta, va, s in zip(run.epochs.tolist(), run.train_loss, run.val_loss,
                                            run.train_accuracy, run.val_accuracy, run.seconds)]
    return _write_rows(folder / "history.csv", list(rows[0]), rows)


def _keras_csvlogger(run: RecordedRun, folder: Path) -> Path:
    """keras.callbacks.CSVLogger: ``epoch`` (from 0), then the logs' keys sorted."""
    keys = sorted(["loss", "accuracy", "val_loss", "val_accuracy"])
    logs = {"loss": run.train_loss, "accuracy": run.train_accuracy, "val_loss": run.val_loss,
            "val_accuracy": run.val_accuracy}
    rows = [{"epoch": i, **{key: logs[key][i] for key in keys}} for i in range(EPOCHS)]
    return _write_rows(folder / "training.log", ["epoch", *keys], rows)


def _fastai_time(seconds: float) -> str:
    t = int(seconds)
    hours, minutes, secs = t // 3600, (t // 60) % 60, t % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _fastai_csvlogger(run: RecordedRun, folder: Path) -> Path:
    """fastai's CSVLogger: the Recorder's columns, epoch from 0, the time as mm:ss."""
    lines = ["epoch,train_loss,valid_loss,accuracy,time"]
    for i in range(EPOCHS):
        values = [i, run.train_loss[i], run.val_loss[i], run.val_accuracy[i], _fastai_time(run.seconds[i])]
        lines.append(",".join(str(value) for value in values))
    path = folder / "history.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _tsv_without_epoch(run: RecordedRun, folder: Path) -> Path:
    rows = [{"training_loss": tl, "validation_loss": vl, "lr": run.learning_rate, "epoch_time": s}
            for tl, vl, s in zip(run.train_loss, run.val_loss, run.seconds)]
    return _write_rows(folder / "losses.tsv", list(rows[0]), rows, delimiter="\t")


def _lightning_metrics(run: RecordedRun) -> list[tuple[int, dict[str, float]]]:
    """Lightning's ``log_metrics(metrics, step)`` calls for a LightningModule that logs
    ``train_loss`` (on_step and on_epoch), ``train_acc`` (on_epoch), ``val_loss`` and
    ``val_acc``, with a ``LearningRateMonitor(logging_interval="epoch")``.

    The logger connector adds ``epoch`` (``trainer.current_epoch``, from 0) to every call
    but the monitor's; steps are ``_batches_that_stepped``: a training step row every
    ``log_every_n_steps`` batches, then validation and the epoch-end row both at the epoch's
    last step (the fit loop steps back one for epoch-end logging)."""
    calls: list[tuple[int, dict[str, float]]] = []
    for epoch in range(EPOCHS):
        first = epoch * BATCHES_PER_EPOCH
        calls.append((first, {"lr-AdamW": run.learning_rate}))
        for batch in range(BATCHES_PER_EPOCH):
            if (first + batch + 1) % LIGHTNING_LOG_EVERY_N_STEPS == 0:
                calls.append((first + batch, {"train_loss_step": run.batch_losses[epoch, batch], "epoch": epoch}))
        last = first + BATCHES_PER_EPOCH - 1
        calls.append((last, {"val_loss": run.val_loss[epoch], "val_acc": run.val_accuracy[epoch], "epoch": epoch}))
        calls.append((last, {"train_loss_epoch": run.train_loss[epoch], "train_acc": run.train_accuracy[epoch],
                             "epoch": epoch}))
    return calls


def _lightning_csvlogger(run: RecordedRun, folder: Path) -> Path:
    """lightning.pytorch.loggers.CSVLogger's ``_ExperimentWriter``: each call's metrics plus
    ``step`` make one row; the header is the sorted union of every row's keys; a missing key
    is an empty cell."""
    version = folder / "lightning_logs" / "version_0"
    rows = [{**metrics, "step": step} for step, metrics in _lightning_metrics(run)]
    keys = sorted(set().union(*rows))
    _write_rows(version / "metrics.csv", keys, rows)
    (version / "hparams.yaml").write_text(f"learning_rate: {run.learning_rate}\n")
    return version / "metrics.csv"


def _keras_history_json(run: RecordedRun, folder: Path) -> Path:
    """json.dump(model.fit(...).history, f)."""
    history = {"loss": run.train_loss.tolist(), "accuracy": run.train_accuracy.tolist(),
               "val_loss": run.val_loss.tolist(), "val_accuracy": run.val_accuracy.tolist()}
    path = folder / "history.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history))
    return path


def _json_lists_with_epoch(run: RecordedRun, folder: Path) -> Path:
    history = {"epoch": run.epochs.tolist(), "train/loss": run.train_loss.tolist(),
               "val/loss": run.val_loss.tolist(), "lr": [run.learning_rate] * EPOCHS}
    path = folder / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=2))
    return path


def _json_records(run: RecordedRun, folder: Path) -> Path:
    records = [{"epoch": e, "train_loss": tl, "val_loss": vl, "val_accuracy": va, "seconds": s}
               for e, tl, vl, va, s in zip(run.epochs.tolist(), run.train_loss, run.val_loss,
                                           run.val_accuracy, run.seconds)]
    path = folder / "log.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1))
    return path


def _tensorboard_summarywriter(run: RecordedRun, folder: Path) -> Path:
    """SummaryWriter() under runs/, add_scalar(tag, value, epoch) with epochs from 0."""
    writer = SummaryWriter(str(folder / "runs" / "Jan01_00-00-00_host"))
    for i in range(EPOCHS):
        writer.add_scalar("train/loss", run.train_loss[i], i)
        writer.add_scalar("val/loss", run.val_loss[i], i)
        writer.add_scalar("train/accuracy", run.train_accuracy[i], i)
        writer.add_scalar("val/accuracy", run.val_accuracy[i], i)
        writer.add_scalar("epoch_time", run.seconds[i], i)
    writer.close()
    return folder / "runs"


def _tensorboard_event_file(run: RecordedRun, folder: Path) -> Path:
    return next((_tensorboard_summarywriter(run, folder) / "Jan01_00-00-00_host").glob("events.out.tfevents.*"))


def _tensorboard_add_scalars(run: RecordedRun, folder: Path) -> Path:
    """add_scalars("loss", {"train": ..., "val": ...}, epoch): one subfolder per key."""
    writer = SummaryWriter(str(folder / "tb"))
    for i in range(EPOCHS):
        writer.add_scalars("loss", {"train": run.train_loss[i], "val": run.val_loss[i]}, i + 1)
        writer.add_scalars("accuracy", {"train": run.train_accuracy[i], "val": run.val_accuracy[i]}, i + 1)
    writer.close()
    return folder / "tb"


def _tensorboard_lightning(run: RecordedRun, folder: Path) -> Path:
    """lightning.pytorch.loggers.TensorBoardLogger: log_hyperparams writes the hparams plugin's
    summaries and ``hp_metric`` = -1 at step 0, then every ``log_metrics`` call is
    ``add_scalar(key, value, step)`` per key (``epoch`` included)."""
    version = folder / "lightning_logs" / "version_0"
    writer = SummaryWriter(str(version))
    for summary in hparams({"learning_rate": run.learning_rate}, {"hp_metric": -1}):
        writer._get_file_writer().add_summary(summary)
    writer.add_scalar("hp_metric", -1, 0)
    for step, metrics in _lightning_metrics(run):
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)
    writer.close()
    (version / "hparams.yaml").write_text(f"learning_rate: {run.learning_rate}\n")
    return folder / "lightning_logs"


def _tensorboard_keras(run: RecordedRun, folder: Path) -> Path:
    """keras.callbacks.TensorBoard: train/ and validation/ runs, ``epoch_*`` tags written by
    tf.summary.scalar (tensor-encoded scalars), steps are epochs from 0."""
    for run_name, loss, accuracy in (("train", run.train_loss, run.train_accuracy),
                                     ("validation", run.val_loss, run.val_accuracy)):
        writer = SummaryWriter(str(folder / "logs" / run_name))
        for i in range(EPOCHS):
            writer.add_scalar("epoch_loss", loss[i], i, new_style=True)
            writer.add_scalar("epoch_accuracy", accuracy[i], i, new_style=True)
        writer.close()
    return folder / "logs"


def _tensorboard_global_steps(run: RecordedRun, folder: Path) -> Path:
    """A hand-written loop: every batch's loss at its global step, the epoch's losses at the
    epoch's last step, and no epoch scalar."""
    writer = SummaryWriter(str(folder / "tb"))
    for i in range(EPOCHS):
        for batch in range(BATCHES_PER_EPOCH):
            writer.add_scalar("batch_loss", run.batch_losses[i, batch], i * BATCHES_PER_EPOCH + batch)
        last = (i + 1) * BATCHES_PER_EPOCH - 1
        writer.add_scalar("train_loss", run.train_loss[i], last)
        writer.add_scalar("val_loss", run.val_loss[i], last)
    writer.close()
    return folder / "tb"


_WRITERS: dict[str, Callable[[RecordedRun, Path], Path]] = {
    "csv": _csv,
    "keras_csvlogger": _keras_csvlogger,
    "fastai_csvlogger": _fastai_csvlogger,
    "tsv_without_epoch": _tsv_without_epoch,
    "lightning_csvlogger": _lightning_csvlogger,
    "keras_history_json": _keras_history_json,
    "json_lists_with_epoch": _json_lists_with_epoch,
    "json_records": _json_records,
    "tensorboard_summarywriter": _tensorboard_summarywriter,
    "tensorboard_event_file": _tensorboard_event_file,
    "tensorboard_add_scalars": _tensorboard_add_scalars,
    "tensorboard_lightning": _tensorboard_lightning,
    "tensorboard_keras": _tensorboard_keras,
    "tensorboard_global_steps": _tensorboard_global_steps,
}


def record_histories(folder: Path) -> dict[str, RecordedRun]:
    """Train both runs and write each one's history under ``folder/<run>/<layout>/``."""
    runs = {
        "overfitting": _train("overfitting", n_train=30, hidden=(256, 256), weight_decay=0.0, learning_rate=5e-4),
        "well_fit": _train("well_fit", n_train=300, hidden=(16,), weight_decay=1e-2, learning_rate=2e-3),
    }
    for run in runs.values():
        for layout, write in _WRITERS.items():
            run.files[layout] = write(run, folder / run.name / layout)
    return runs


@pytest.fixture(scope="module")
def recorded_histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RecordedRun]:
    """Both recorded runs, their histories written in every layout (trained once per module)."""
    return record_histories(tmp_path_factory.mktemp("histories"))
