"""load_history reads the histories people have, whatever wrote them, into one History.

Real histories come from :mod:`history_recording`: two real trainings (one overfits, one
does not) written the way Keras, fastai, Lightning, TensorBoard's SummaryWriter and
hand-written loops write them. Whatever the layout, the loader must give back the recorded
epochs and losses, and find the training and validation loss by name.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from history_recording import LAYOUTS, RecordedRun, recorded_histories  # noqa: F401 (a fixture)
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from auditor.contract.errors import DataError
from auditor.loading.history import load_history

RUNS = ("overfitting", "well_fit")


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- real histories, in every layout -------------------------------------------------------------

def test_the_recorded_runs_are_what_they_claim(recorded_histories):
    overfitting, well_fit = recorded_histories["overfitting"], recorded_histories["well_fit"]
    assert overfitting.overfits and not well_fit.overfits
    assert overfitting.best_epoch <= 15 < len(overfitting.epochs)
    assert overfitting.val_loss[-1] > 1.2 * overfitting.val_loss.min()
    assert overfitting.train_loss[-1] < 0.01 < overfitting.val_loss[-1] / 10
    assert well_fit.best_epoch >= 20
    assert well_fit.val_loss[-1] < 1.05 * well_fit.val_loss.min()
    assert abs(well_fit.val_loss[-1] - well_fit.train_loss[-1]) < 0.05


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("run_name", RUNS)
def test_every_layout_gives_back_the_recorded_history(recorded_histories, run_name, layout):
    run: RecordedRun = recorded_histories[run_name]
    expected = LAYOUTS[layout]
    path = run.files[layout]
    history = load_history(path)

    assert history.format == expected.format
    assert history.source == path.name
    assert history.epochs.dtype == np.int64
    np.testing.assert_array_equal(history.epochs, run.epochs - 1 + expected.first_epoch)
    assert (history.train_loss, history.val_loss) == (expected.train_loss, expected.val_loss)
    assert all(values.dtype == np.float64 and values.shape == history.epochs.shape
               for values in history.series.values())
    np.testing.assert_array_equal(history.series[history.train_loss], expected.stored(run.train_loss))
    np.testing.assert_array_equal(history.series[history.val_loss], expected.stored(run.val_loss))
    best = history.epochs[np.argmin(history.series[history.val_loss])]
    assert best == run.best_epoch - 1 + expected.first_epoch
    if expected.seconds is None:
        assert history.seconds is None
    else:
        np.testing.assert_array_equal(history.seconds, expected.seconds(run.seconds))


def test_lightning_csv_keeps_the_epoch_mean_and_places_rows_without_an_epoch_by_step(recorded_histories):
    """The LearningRateMonitor's rows have a step but no epoch: they belong to the epoch they open."""
    run = recorded_histories["overfitting"]
    history = load_history(run.files["lightning_csvlogger"])
    assert list(history.series) == ["lr-AdamW", "train_acc", "train_loss_epoch", "val_acc", "val_loss"]
    np.testing.assert_array_equal(history.series["lr-AdamW"], np.full(len(run.epochs), run.learning_rate))
    np.testing.assert_array_equal(history.series["train_acc"], run.train_accuracy)
    np.testing.assert_array_equal(history.series["val_acc"], run.val_accuracy)


def test_lightning_csv_without_the_epoch_column_uses_the_last_logged_step(recorded_histories, tmp_path):
    """self.log("train_loss", loss, on_step=True) only: the epoch's value is its last logged batch loss."""
    run = recorded_histories["well_fit"]
    with run.files["lightning_csvlogger"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in rows[0] if key not in ("train_loss_epoch", "train_acc")]
    kept = [{key: row[key] for key in keys} for row in rows if row["train_loss_epoch"] == ""]
    with (tmp_path / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(kept)
    history = load_history(tmp_path / "metrics.csv")
    assert history.format == "lightning_csv"
    assert history.train_loss == "train_loss_step"
    last_logged_batch = run.batch_losses[:, -1]  # (step + 1) % log_every_n_steps == 0 for the last batch
    np.testing.assert_array_equal(history.series["train_loss_step"], last_logged_batch)
    np.testing.assert_array_equal(history.series["val_loss"], run.val_loss)


def test_tensorboard_without_an_epoch_scalar_counts_validation_steps_as_epochs(recorded_histories):
    """Losses at global steps: each validation step ends an epoch; per-batch values take the
    epoch's last one."""
    run = recorded_histories["overfitting"]
    history = load_history(run.files["tensorboard_global_steps"])
    np.testing.assert_array_equal(history.epochs, run.epochs)
    np.testing.assert_array_equal(history.series["batch_loss"], run.batch_losses[:, -1].astype(np.float32))


def test_tensorboard_folder_with_several_runs_is_refused(recorded_histories, tmp_path):
    logs = shutil.copytree(recorded_histories["well_fit"].files["tensorboard_lightning"], tmp_path / "lightning_logs")
    shutil.copytree(logs / "version_0", logs / "version_1")
    with pytest.raises(DataError) as caught:
        load_history(logs)
    assert "holds 2 runs that each log a loss: version_0, version_1" in str(caught.value)
    assert "Pass one run's folder, e.g. lightning_logs/version_1." in str(caught.value)
    assert load_history(logs / "version_1").val_loss == "val_loss"


def test_tensorboard_log_without_scalars(tmp_path):
    writer = SummaryWriter(str(tmp_path / "run"))
    for summary in hparams({"lr": 0.01}, {"hp_metric": -1}):
        writer._get_file_writer().add_summary(summary)
    writer.close()
    with pytest.raises(DataError, match="holds no scalars"):
        load_history(tmp_path / "run")


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("train", "val"), [
    ("loss", "val_loss"),  # Keras
    ("train_loss", "valid_loss"),  # fastai
    ("training_loss", "validation_loss"),
    ("train/loss", "val/loss"),
    ("loss/train", "loss/val"),
    ("Train-Loss", "Validation.Loss"),
    ("train_loss_epoch", "val_loss_epoch"),  # Lightning, on_step and on_epoch
    ("train/epoch_loss", "validation/epoch_loss"),  # Keras' TensorBoard runs
    ("train_loss", "eval_loss"),
    ("train loss", "test_loss"),
])
def test_train_and_validation_losses_are_recognised_by_name(tmp_path, train, val):
    history = load_history(write(tmp_path / "h.csv", f"epoch,{train},{val},lr\n1,0.9,1.0,0.1\n2,0.5,0.7,0.1\n"))
    assert (history.train_loss, history.val_loss) == (train, val)


def test_the_best_name_wins_when_several_are_logged(tmp_path):
    history = load_history(write(tmp_path / "h.csv", "test_loss,loss,val_loss,train_loss\n1,2,3,4\n"))
    assert (history.train_loss, history.val_loss) == ("train_loss", "val_loss")


def test_unrecognised_names_leave_the_losses_unset(tmp_path):
    history = load_history(write(tmp_path / "h.csv", "epoch,objective,score\n1,0.5,0.7\n"))
    assert (history.train_loss, history.val_loss, history.seconds) == (None, None, None)
    assert list(history.series) == ["objective", "score"]


# --- what a CSV or JSON may look like -------------------------------------------------------------

def test_rows_without_an_epoch_column_are_epochs_from_1(tmp_path):
    history = load_history(write(tmp_path / "h.csv", "loss;val_loss\n0.9;1.0\n0.5;0.7\n0.4;0.8\n"))
    np.testing.assert_array_equal(history.epochs, [1, 2, 3])
    np.testing.assert_array_equal(history.series["val_loss"], [1.0, 0.7, 0.8])


def test_epochs_come_out_ascending_and_missing_values_are_nan(tmp_path):
    history = load_history(write(tmp_path / "h.csv", "epoch,loss,val_loss\n2,0.5,NA\n0,0.9,1.0\n1,0.7,\n"))
    np.testing.assert_array_equal(history.epochs, [0, 1, 2])
    np.testing.assert_array_equal(history.series["loss"], [0.9, 0.7, 0.5])
    np.testing.assert_array_equal(history.series["val_loss"], [1.0, np.nan, np.nan])


def test_text_columns_and_the_pandas_index_are_not_series(tmp_path):
    content = ",epoch,phase,loss,when\n0,1,fit,0.9,2024-01-01 10:00:00\n1,2,fit,0.5,2024-01-01 10:01:00\n"
    history = load_history(write(tmp_path / "h.csv", content))
    assert list(history.series) == ["loss"]


@pytest.mark.parametrize(("written", "seconds"), [("00:07", 7), ("01:05", 65), ("1:02:03", 3723), ("12.5", 12.5)])
def test_durations_may_be_clock_times(tmp_path, written, seconds):
    history = load_history(write(tmp_path / "h.csv", f"epoch,train_loss,valid_loss,time\n0,0.5,0.6,{written}\n"))
    assert history.seconds.tolist() == [seconds]


def test_json_records_may_split_an_epoch_over_entries(tmp_path):
    records = [{"epoch": 1, "train_loss": 0.9}, {"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "train_loss": 0.5},
               {"epoch": 2, "val_loss": 0.7, "note": "best"}]
    history = load_history(write(tmp_path / "log.json", json.dumps(records)))
    assert history.format == "json"
    np.testing.assert_array_equal(history.series["val_loss"], [1.0, 0.7])
    assert list(history.series) == ["train_loss", "val_loss"]


# --- bad input: one line, a DataError, never a traceback --------------------------------------

def _lightning_rows_without_epoch(tmp_path: Path) -> Path:
    return write(tmp_path / "metrics.csv", "epoch,loss\n0,0.5\n,0.4\n")


BAD_INPUTS = {
    "missing path": (lambda d: d / "nowhere.csv", ["does not exist", "Check the --history path"]),
    "empty file": (lambda d: write(d / "h.csv", b""), ["h.csv is empty (0 bytes)"]),
    "blank file": (lambda d: write(d / "h.json", "\n  \n"), ["h.json is empty"]),
    "CSV without numbers": (lambda d: write(d / "h.csv", "model,status\nresnet,done\n"),
                            ["no numeric per-epoch values", "'model', 'status'", "epoch,train_loss,val_loss"]),
    "CSV with only epochs": (lambda d: write(d / "h.csv", "epoch\n1\n2\n"), ["no numeric per-epoch values"]),
    "CSV header only": (lambda d: write(d / "h.csv", "epoch,loss,val_loss\n"), ["h.csv holds no epochs"]),
    "text among numbers": (lambda d: write(d / "h.csv", "epoch,loss\n1,0.5\n2,0.4\n3,oops\n"),
                           ["column 'loss' in h.csv must hold numbers, but it holds 'oops' (data row 3)"]),
    "text in JSON": (lambda d: write(d / "h.json", '[{"loss": 0.5}, {"loss": "n/a?"}, {"loss": 0.3}]'),
                     ["column 'loss' in h.json must hold numbers, but it holds 'n/a?' (entry 1)"]),
    "JSON lists of different lengths": (lambda d: write(d / "h.json", '{"loss": [1, 2, 3], "val_loss": [1, 2]}'),
                                        ["differ in length: 'loss' has 3 values but 'val_loss' has 2"]),
    "JSON value that is no list": (lambda d: write(d / "h.json", '{"loss": 0.5}'),
                                   ["holds a number under 'loss', where a list of per-epoch values"]),
    "JSON entry that is no object": (lambda d: write(d / "h.json", '[{"loss": 1}, 2]'), ["Entry 1 of the history"]),
    "empty JSON list": (lambda d: write(d / "h.json", "[]"), ["h.json holds no epochs"]),
    "empty JSON lists": (lambda d: write(d / "h.json", '{"loss": [], "val_loss": []}'), ["h.json holds no epochs"]),
    "broken JSON": (lambda d: write(d / "h.json", '{"loss": [1, 2,'), ["is not valid JSON", "line 1"]),
    "fractional epochs": (lambda d: write(d / "h.csv", "epoch,loss\n0.5,1\n1,2\n"),
                          ["must be whole numbers, but one is 0.5"]),
    "row without an epoch": (_lightning_rows_without_epoch, ["epoch column of metrics.csv is empty at data row 2"]),
    "folder without event files": (lambda d: d, ["holds no TensorBoard event files"]),
    "folder with a corrupt event file": (
        lambda d: write(d / "events.out.tfevents.1.host", np.random.default_rng(0).bytes(512)).parent,
        ["The TensorBoard log in holds no scalars"]),
    "random bytes": (lambda d: write(d / "events.out.tfevents.1.host", np.random.default_rng(0).bytes(512)),
                     ["neither UTF-8 text (CSV, JSON) nor a TensorBoard event file"]),
    "a saved model": (lambda d: write(d / "model.pt", b"PK\x03\x04" + bytes(range(256))),
                      ["model.pt is neither UTF-8 text"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_data_error(tmp_path, case):
    make, fragments = BAD_INPUTS[case]
    folder = tmp_path / "in"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        load_history(make(folder))
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_folder_without_event_files_points_at_a_history_inside(tmp_path):
    write(tmp_path / "metrics.csv", "epoch,loss\n0,1\n")
    with pytest.raises(DataError, match="It holds metrics.csv: pass that file instead."):
        load_history(tmp_path)


def test_tensorboard_missing_says_how_to_install_it(recorded_histories, monkeypatch):
    for name in [name for name in sys.modules if name == "tensorboard" or name.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(DataError, match=r"pip install 'auditor\[tensorboard\]'"):
        load_history(recorded_histories["well_fit"].files["tensorboard_event_file"])


def test_reading_a_csv_or_json_history_does_not_import_tensorboard(recorded_histories):
    files = [str(recorded_histories["well_fit"].files[layout]) for layout in ("lightning_csvlogger", "json_records")]
    code = (
        "import sys\n"
        "from auditor.loading.history import load_history\n"
        f"for path in {files!r}:\n"
        "    load_history(path)\n"
        "assert 'tensorboard' not in sys.modules, 'tensorboard was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
