"""The math: reliability bins and the expected calibration error (ECE), with a bootstrap interval.

A classifier is *calibrated* when, among the rows it predicts with confidence p, a share p is
right. The top-label reliability diagram (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017) bins rows by their confidence, the probability of the predicted class,
into ``n_bins`` equal-width bins ``(edges[m], edges[m+1]]`` with
``edges = numpy.linspace(0, 1, n_bins + 1)``, and compares each bin's mean confidence with its
accuracy:

    ECE = sum over bins m of |B_m| / n * |accuracy(B_m) - confidence(B_m)|
    MCE = the largest |accuracy(B_m) - confidence(B_m)| over the non-empty bins

Nothing here knows about auditor: plain numpy arrays in, numbers out, so the math can be
tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: At most this many (resample x row) entries are held at once while bootstrapping.
_CHUNK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class Reliability:
    """Each bin's rows, mean confidence and accuracy (NaN for an empty bin), and the errors."""

    edges: np.ndarray
    rows: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float
    mce: float


def bin_of(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Each row's bin: m such that ``edges[m] < confidence <= edges[m + 1]`` (0 goes in bin 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], confidence, side="left").astype(np.int64)


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> Reliability:
    """The reliability bins of rows with these confidences and correctness (bool per row)."""
    confidence = np.asarray(confidence, np.float64)
    hits = np.asarray(correct, np.float64)
    bins = bin_of(confidence, n_bins)
    rows = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(bins, weights=hits, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(rows > 0, conf_sum / rows, np.nan)
        accuracy = np.where(rows > 0, hit_sum / rows, np.nan)
    gaps = np.abs(accuracy - mean_conf)
    filled = rows > 0
    ece = float(np.abs(conf_sum - hit_sum).sum() / len(confidence))
    mce = float(gaps[filled].max())
    return Reliability(np.linspace(0.0, 1.0, n_bins + 1), rows, mean_conf, accuracy, ece, mce)


def bootstrap_ece(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int, *, n_resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """A percentile bootstrap interval of the ECE: rows resampled with replacement, vectorised
    (one ``bincount`` per chunk of resamples, never a Python loop over resamples)."""
    n = len(confidence)
    bins = bin_of(np.asarray(confidence, np.float64), n_bins)
    signed = np.asarray(confidence, np.float64) - np.asarray(correct, np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        rows = rng.integers(0, n, size=(size, n))
        slots = (bins[rows] + n_bins * np.arange(size)[:, None]).ravel()
        sums = np.bincount(slots, weights=signed[rows].ravel(), minlength=size * n_bins).reshape(size, n_bins)
        out[start:start + size] = np.abs(sums).sum(axis=1) / n
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(out, [tail, 1.0 - tail])
    return float(low), float(high)
