"""Over- and underfitting detection (auditor_plugins.overfitting.curves) on real recorded training curves and on
controlled ones.

The recorded runs are real: small torch MLPs trained here on scikit-learn's breast-cancer
data, with the training and validation loss measured on the whole of each split after
every epoch. A wide net on 40 rows overfits; a narrow, weight-decayed net on 250 rows does
not; the same narrow net stopped after 8 epochs at a low learning rate is still learning.
The controlled curves pin down the rule itself: noise alone must never be called
overfitting, a planted rise must be found where it was planted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets
from sklearn.preprocessing import StandardScaler

from auditor_plugins.overfitting import curves as of

DEMO_HISTORY = Path(__file__).parents[1] / "auditor" / "demo" / "history.csv"


def record_run(n_train: int, width: int, epochs: int, lr: float, weight_decay: float, batch: int | None,
               seed: int = 0) -> dict[str, np.ndarray]:
    """Train an MLP (two hidden ReLU layers, Adam, cross-entropy) on ``n_train`` rows of the
    breast-cancer data and record both losses after every epoch (300 other rows validate)."""
    X, y = datasets.load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    train, val = order[:n_train], order[n_train : n_train + 300]
    scaler = StandardScaler().fit(X[train])
    Xt = torch.tensor(scaler.transform(X[train]), dtype=torch.float32)
    Xv = torch.tensor(scaler.transform(X[val]), dtype=torch.float32)
    yt, yv = torch.tensor(y[train]), torch.tensor(y[val])
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], width), torch.nn.ReLU(),
        torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 2),
    )
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    train_loss, val_loss = [], []
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n_train, generator=generator)
        size = batch or n_train
        for start in range(0, n_train, size):
            rows = perm[start : start + size]
            opt.zero_grad()
            loss(net(Xt[rows]), yt[rows]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            train_loss.append(loss(net(Xt), yt).item())
            val_loss.append(loss(net(Xv), yv).item())
    return {"epochs": np.arange(1, epochs + 1), "train_loss": np.array(train_loss), "val_loss": np.array(val_loss)}


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, np.ndarray]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            "overfitting": record_run(n_train=40, width=512, epochs=40, lr=3e-3, weight_decay=0.0, batch=None),
            "regularised": record_run(n_train=250, width=32, epochs=40, lr=3e-3, weight_decay=0.1, batch=32),
            "underfit": record_run(n_train=250, width=32, epochs=8, lr=3e-4, weight_decay=0.0, batch=32),
        }
    finally:
        torch.set_num_threads(threads)


def analyse(run: dict[str, np.ndarray], **options) -> of.HistoryAnalysis:
    return of.analyse_history(
        run["epochs"], run["val_loss"], train_loss=run["train_loss"], val_loss=run["val_loss"], **options
    )


# ---- real recorded runs -------------------------------------------------------------------


def test_a_wide_net_on_forty_rows_overfits_and_its_best_epoch_is_the_recorded_minimum(recorded):
    run = recorded["overfitting"]
    a = analyse(run)
    assert a.verdict == "overfitting"
    assert a.best_epoch == run["epochs"][np.argmin(run["val_loss"])]
    assert a.best_value == run["val_loss"].min()
    assert a.final_value == run["val_loss"][-1]
    assert a.epochs_past_best == 40 - a.best_epoch
    # The onset is where the smoothed curve is lowest: within half a window of the raw best.
    assert abs(a.onset_epoch - a.best_epoch) <= a.window // 2 + 1
    assert a.train_falling and a.train_change < 0
    assert a.degradation == pytest.approx((run["val_loss"][-1] - run["val_loss"].min()) / run["val_loss"].min())
    assert a.rise > a.rise_threshold >= 0.02
    # The gap widens: validation loss minus training loss grows over the last third.
    assert a.gap_final == pytest.approx(run["val_loss"][-1] - run["train_loss"][-1])
    assert a.gap_trend > 0 and a.gap_final > a.gap_at_best


def test_a_regularised_run_is_healthy(recorded):
    a = analyse(recorded["regularised"])
    assert a.verdict == "healthy"
    assert a.onset_epoch is None


def test_a_run_stopped_while_both_losses_fall_is_underfitting(recorded):
    run = recorded["underfit"]
    assert np.all(np.diff(run["train_loss"]) < 0) and np.all(np.diff(run["val_loss"]) < 0)
    a = analyse(run)
    assert a.verdict == "underfitting"
    assert a.underfit_reason == "still-falling"
    assert a.train_end.falling and a.val_end.falling


def test_the_bundled_demo_history_rises_too_little_to_count():
    """The demo's validation loss is lowest at epoch 10 and ends 1.6% higher: a smoothed rise
    of about 1%, under the 2% that counts, so the run is healthy (the audit adds an
    early-stopping note: 20 epochs past the best)."""
    table = np.genfromtxt(DEMO_HISTORY, delimiter=",", names=True)
    a = of.analyse_history(table["epoch"].astype(int), table["val_loss"], train_loss=table["train_loss"],
                           val_loss=table["val_loss"])
    assert (a.best_epoch, a.last_epoch, a.epochs_past_best) == (10, 30, 20)
    assert a.verdict == "healthy"
    assert 0 < a.rise < 0.02 == a.rise_threshold
    assert (a.stop_epoch, a.stop_kept_epoch) == (15, 10)


# ---- controlled curves --------------------------------------------------------------------

EPOCHS = np.arange(1, 41)


def falling_train(rng: np.random.Generator, noise: float) -> np.ndarray:
    return (0.2 + 0.5 * np.exp(-EPOCHS / 10)) * (1 + noise * rng.standard_normal(EPOCHS.size))


CURVES = {
    "flat": lambda t: np.full(t.size, 0.5),
    "decaying": lambda t: 0.3 + 0.5 * np.exp(-t / 8),
    "falling linearly": lambda t: 1.0 - 0.01 * t,
}


@pytest.mark.parametrize("noise", [0.005, 0.02, 0.05, 0.2])
@pytest.mark.parametrize("curve", list(CURVES))
def test_noise_alone_is_never_called_overfitting(curve, noise):
    """Independent relative noise of 0.5% to 20% around a flat or falling validation curve,
    while training loss falls: 40 seeds each, no overfitting verdict (nor 'worsening')."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        val = CURVES[curve](EPOCHS) * (1 + noise * rng.standard_normal(EPOCHS.size))
        a = of.analyse_history(EPOCHS, val, train_loss=falling_train(rng, noise), val_loss=val)
        assert a.verdict not in ("overfitting", "worsening"), (curve, noise, seed, a.rise, a.rise_threshold)


@pytest.mark.parametrize("seed", range(5))
def test_a_planted_rise_is_found_where_it_was_planted(seed):
    """Validation loss falls to epoch 15, then rises 20% by epoch 40 (1% noise)."""
    rng = np.random.default_rng(seed)
    clean = np.where(EPOCHS <= 15, 0.3 + 0.4 * (15 - EPOCHS) / 14, 0.3 * (1 + 0.2 * (EPOCHS - 15) / 25))
    val = clean * (1 + 0.01 * rng.standard_normal(EPOCHS.size))
    a = of.analyse_history(EPOCHS, val, train_loss=falling_train(rng, 0.01), val_loss=val)
    assert a.verdict == "overfitting"
    assert a.best_epoch == EPOCHS[np.argmin(val)]
    assert 12 <= a.onset_epoch <= 18
    assert a.rise == pytest.approx(0.2, abs=0.06)  # the truncated end window understates it a little


def test_a_higher_is_better_series_overfits_when_it_falls():
    accuracy = np.minimum(0.6 + 0.03 * EPOCHS, 0.9) - 0.004 * np.maximum(EPOCHS - 10, 0)
    a = of.analyse_history(EPOCHS, accuracy, monitor="val_accuracy", mode="max",
                           train_loss=0.5 * np.exp(-EPOCHS / 10))
    assert a.verdict == "overfitting"
    assert a.best_epoch == 10 and a.best_value == pytest.approx(0.9)
    assert a.degradation == pytest.approx((0.9 - accuracy[-1]) / 0.9)


def test_a_rise_of_both_curves_is_worsening_not_overfitting():
    val = 0.3 + 0.01 * np.maximum(EPOCHS - 10, 0)
    train = 0.25 + 0.01 * np.maximum(EPOCHS - 12, 0)
    assert of.analyse_history(EPOCHS, val, train_loss=train, val_loss=val).verdict == "worsening"
    # Without a training loss the rise cannot be called overfitting either.
    assert of.analyse_history(EPOCHS, val, val_loss=val).verdict == "worsening"


def test_flat_curves_that_barely_moved_are_underfitting():
    train = 0.69 - 0.001 * np.log(EPOCHS)
    a = of.analyse_history(EPOCHS, train + 0.01, train_loss=train, val_loss=train + 0.01)
    assert (a.verdict, a.underfit_reason) == ("underfitting", "flat-and-high")
    assert a.train_progress < 0.05


@pytest.mark.parametrize("min_rise, verdict", [(0.1, "overfitting"), (0.3, "healthy")])
def test_min_rise_is_relative_to_the_best_value(min_rise, verdict):
    """A 20% rise counts at min_rise 0.1 and not at 0.3, whatever the loss's scale."""
    val = np.where(EPOCHS <= 15, 2.0 - 0.1 * EPOCHS, 0.5 * (1 + 0.2 * (EPOCHS - 15) / 25))
    for scale in (1e-3, 1.0, 1e3):
        a = of.analyse_history(EPOCHS, scale * val, train_loss=scale * 0.5 * np.exp(-EPOCHS / 10),
                               val_loss=scale * val, min_rise=min_rise)
        assert a.verdict == verdict


# ---- edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_history_of_one_to_three_epochs_gets_no_verdict(n):
    val = np.array([0.7, 0.5, 0.6][:n])
    train = np.array([0.69, 0.45, 0.4][:n])
    a = of.analyse_history(np.arange(1, n + 1), val, train_loss=train, val_loss=val)
    assert a.verdict == "undetermined"
    assert a.best_epoch == int(np.argmin(val)) + 1
    assert a.gap_final == pytest.approx(val[-1] - train[-1])
    assert a.gap_trend is None if n < 3 else math.isfinite(a.gap_trend)


def test_missing_epochs_are_left_out_not_filled_in():
    """Validation logged every other epoch, training loss missing at the first one."""
    val = 0.3 + 0.5 * np.exp(-EPOCHS / 5) + 0.008 * np.maximum(EPOCHS - 12, 0)
    val[1::2] = np.nan
    train = 0.5 * np.exp(-EPOCHS / 10)
    train[0] = np.nan
    a = of.analyse_history(EPOCHS, val, train_loss=train, val_loss=val)
    assert a.epochs.size == 20 and np.all(a.epochs % 2 == 1)
    assert a.best_epoch == EPOCHS[np.nanargmin(val)]
    assert a.final_epoch == 39 and a.last_epoch == 40 and a.epochs_past_best == 40 - a.best_epoch
    assert a.gap_final == pytest.approx(val[38] - train[38]) and a.gap_final_epoch == 39
    assert a.verdict == "overfitting"


def test_a_monitored_series_without_a_value_is_an_error():
    with pytest.raises(ValueError, match="no finite value"):
        of.analyse_history(EPOCHS, np.full(EPOCHS.size, np.nan))


# ---- the building blocks ------------------------------------------------------------------


def test_the_moving_average_is_centred_and_truncated_at_the_ends():
    y = np.arange(10.0)
    smoothed, counts = of.moving_average(y, 5)
    assert counts.tolist() == [3, 4, 5, 5, 5, 5, 5, 5, 4, 3]
    assert smoothed[2:8].tolist() == y[2:8].tolist()  # a line is unchanged in the interior
    assert smoothed[-1] == pytest.approx(np.mean(y[-3:]))  # and lags at the end
    assert of.moving_average(y, 4)[1].max() == 5  # an even window is widened by one
    assert of.moving_average(y, 1)[0].tolist() == y.tolist()


def test_noise_sd_estimates_independent_noise_around_a_trend():
    rng = np.random.default_rng(0)
    t = np.arange(2000.0)
    assert of.noise_sd(3.0 - 0.001 * t + 0.05 * rng.standard_normal(t.size)) == pytest.approx(0.05, rel=0.05)
    assert of.noise_sd(np.ones(4)) != of.noise_sd(np.ones(4))  # NaN below 5 points


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571), (10, 2.228), (30, 2.042)])
def test_student_t_quantiles(df, expected):
    assert of.t_quantile(0.975, df) == pytest.approx(expected, abs=0.01)


def test_trend_is_ordinary_least_squares():
    rng = np.random.default_rng(1)
    x = np.arange(12.0)
    y = 1.0 - 0.1 * x + 0.05 * rng.standard_normal(12)
    tr = of.trend(x, y)
    slope, _ = np.polyfit(x, y, 1)
    assert tr.slope == pytest.approx(slope)
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    assert tr.se == pytest.approx(math.sqrt(resid @ resid / 10 / ((x - x.mean()) @ (x - x.mean()))))
    assert of.trend(x, 2 * x).t == math.inf


def test_early_stopping_is_replayed_on_the_raw_curve():
    """Keras' rule with min_delta 0: stop after ``patience`` epochs without a new best, keep the best."""
    val = np.array([1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.76, 0.77, 0.6])
    epochs = np.arange(1, 10)
    assert of.early_stopping(epochs, val, 3) == (8, 5)
    assert of.early_stopping(epochs, val, 4) == (9, 9)
    assert of.auto_mode("val_loss") == "min" and of.auto_mode("val_accuracy") == "max"
    assert of.auto_mode("mean_abs_error") == "min"
