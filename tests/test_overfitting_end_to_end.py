"""`audit ... --history LOG --train-data CSV` end to end, on real recorded training runs.

Two real models were trained and their true histories recorded (tests/history_recording.py):
one overfits (a wide net on 30 tumours), one does not (a small weight-decayed net on 300).
Whatever format the history is written in, the audit finds the recorded best epoch and the
right verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import invoke, read_report
from history_recording import LAYOUTS, recorded_histories  # noqa: F401 - a pytest fixture
from scipy.special import expit
from sklearn.metrics import roc_auc_score


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("run", ["overfitting", "well_fit"])
def test_the_recorded_best_epoch_and_verdict_are_found_in_every_format(
    tmp_path, breast_cancer, recorded_histories, run, layout  # noqa: F811
):
    recorded = recorded_histories[run]
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--history", recorded.files[layout], "--audits", "overfitting", "--out", out, "-q",
                    "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    audit = read_report(out)["audits"]["overfitting"]
    truth = LAYOUTS[layout].first_epoch + int(np.argmin(LAYOUTS[layout].stored(recorded.val_loss)))
    assert audit["metrics"]["best_epoch"]["value"] == truth
    codes = {f["code"] for f in audit["findings"]}
    if recorded.overfits:
        assert "overfitting" in codes
    else:
        assert "overfitting" not in codes and "validation-worsening" not in codes


def test_train_data_gives_the_train_vs_test_gap_with_one_more_pass(tmp_path, breast_cancer):
    """The training data goes through the same one-pass machinery; the gap equals sklearn's."""
    train = tmp_path / "train.csv"
    breast_cancer.frame.sample(frac=1.0, random_state=1).to_csv(train, index=False)
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--train-data", train, "--out", out, "-q", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    report = read_report(out)
    assert report["run"]["forward_passes"] == 2
    assert report["train_data"]["rows"] == len(breast_cancer.frame)
    metrics = report["audits"]["overfitting"]["metrics"]
    test_auc = report["audits"]["metrics"]["metrics"]["roc_auc"]["value"]
    # the shuffled copy of the test set scores the same: a gap of zero, computed by sklearn too
    p = expit(breast_cancer.eager_outputs()[:, 0].astype(np.float64))
    assert metrics["train_roc_auc"]["value"] == pytest.approx(roc_auc_score(breast_cancer.frame["target"], p), abs=1e-9)
    assert metrics["gap_roc_auc"]["value"] == pytest.approx(metrics["train_roc_auc"]["value"] - test_auc, abs=1e-12)
    low, high = metrics["gap_roc_auc"]["ci"]
    assert low <= 0.0 <= high


def test_a_bad_history_file_is_an_input_error(tmp_path, breast_cancer):
    bad = tmp_path / "log.csv"
    bad.write_text("epoch,note\n1,fine\n2,good\n")
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--history", bad, "-q", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_train_data_missing_the_target_is_an_input_error(tmp_path, breast_cancer):
    train = tmp_path / "train.csv"
    breast_cancer.frame.drop(columns=["target"]).to_csv(train, index=False)
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
                    "--train-data", train, "-q", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    assert "'target' is not in train.csv" in result.stderr
