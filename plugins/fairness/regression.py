"""Group fairness of a regression model: per-group error and predictions, vectorised.

Per group: the mean absolute error (MAE), the mean prediction and the mean target.
Disparities over the judged groups (see :mod:`auditor_plugins.fairness.stats`): the MAE difference
(highest - lowest, as fairlearn's ``MetricFrame(...).difference()`` of
``mean_absolute_error``), the MAE ratio (lowest / highest, 1 when every MAE is 0) and the
mean-prediction difference (the regression analogue of demographic parity).

Intervals, stratified by cell like the classification ones (each cell's rows resampled
within the cell):

- ``n <= bootstrap_max_rows``: the percentile interval of a row bootstrap, resampled
  within each cell, in seeded blocks on all CPUs (:func:`auditor.stats.bootstrap.blockwise`).
- beyond: each cell's mean is drawn from its normal approximation (CLT, with the plug-in
  variance a row bootstrap would give it), a group's mean being the count-weighted mean of
  its cells'. Per-group intervals are then normal intervals; the disparities' are
  percentile intervals of the disparities of those draws.

The mean target gets no interval: it describes the data, not the model.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from auditor.contract.context import Groups
from auditor.stats import bootstrap as bs
from auditor_plugins.fairness.stats import (
    Cells,
    Figure,
    PartitionReport,
    Spread,
    combine,
    extreme_groups,
    gaps,
    make_spread,
    partitions,
    percentile_bounds,
)

#: Generator stream of the regression intervals (see :func:`auditor.stats.bootstrap.make_rng`).
_REGRESSION_STREAM = 12

FIGURES = ("mae", "mean_prediction", "mean_target")
DISPARITIES = ("mae_difference", "mae_ratio", "mean_prediction_difference")

#: The interval methods :func:`regression_fairness` reports.
ROW_BOOTSTRAP = "row_bootstrap"
NORMAL = "normal"


def row_bootstrap_means(
    cells: Cells, columns: Sequence[np.ndarray], n_resamples: int, seed: int
) -> np.ndarray:
    """``(B, n_cells, len(columns))`` cell means of a row bootstrap stratified by cell: each
    cell's rows drawn with replacement from that cell."""
    order = np.argsort(cells.row, kind="stable")
    stacked = np.stack([np.asarray(c, np.float64)[order] for c in columns])
    by_cell = np.split(stacked, np.cumsum(cells.counts)[:-1], axis=1)

    def work(size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = np.empty((size, cells.n_cells, len(columns)))
        for c, values in enumerate(by_cell):
            n_c = values.shape[1]
            step = bs.chunk_size(n_c)
            for start in range(0, size, step):
                b = min(step, size - start)
                idx = rng.integers(0, n_c, size=(b, n_c), dtype=np.int32)
                for j, column in enumerate(values):
                    out[start:start + b, c, j] = np.take(column, idx).mean(axis=1)
        return {"means": out}

    return bs.blockwise(work, n_resamples, seed, _REGRESSION_STREAM)["means"]


def regression_fairness(
    groups: Sequence[Groups],
    y: np.ndarray,
    pred: np.ndarray,
    *,
    intersection: bool,
    min_group_size: int,
    n_resamples: int,
    confidence: float,
    seed: int,
    bootstrap_max_rows: int,
) -> tuple[list[PartitionReport], str]:
    """Per-group MAE, mean prediction and mean target, and the disparities, for each
    sensitive column and (``intersection``) their intersection; returns the reports and
    the interval method (:data:`ROW_BOOTSTRAP` or :data:`NORMAL`)."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    cells = combine(groups)
    if cells.row.size == 0:
        raise ValueError("there are no rows to audit")
    if y.shape != cells.row.shape or pred.shape != cells.row.shape:
        raise ValueError(f"{y.size} targets and {pred.size} predictions for {cells.row.size} rows")
    parts = partitions(groups, cells, intersection)
    columns = (np.abs(pred - y), pred, y)
    sums = np.stack([np.bincount(cells.row, weights=c, minlength=cells.n_cells) for c in columns], axis=1)
    rows = cells.counts[:, None].astype(np.float64)
    cell_means = sums / rows
    if y.size <= min(bootstrap_max_rows, np.iinfo(np.int32).max):
        method = ROW_BOOTSTRAP
        replicates = row_bootstrap_means(cells, columns[:2], n_resamples, seed)
        variances = None
    else:
        method = NORMAL
        # plug-in (ddof=0) variance: the variance of a cell's mean under the row bootstrap is variance / n_cell
        variances = np.stack([
            np.bincount(cells.row, weights=(c - cell_means[cells.row, j]) ** 2, minlength=cells.n_cells)
            for j, c in enumerate(columns[:2])
        ], axis=1) / rows
        noise = bs.make_rng(seed, _REGRESSION_STREAM).standard_normal((n_resamples, cells.n_cells, 2))
        replicates = cell_means[:, :2] + noise * np.sqrt(variances / rows)
    reports = []
    for p in parts:
        large = p.counts >= min_group_size
        group_rows = p.counts[:, None].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            point = p.sum_cells(sums) / group_rows
            means = p.sum_cells(replicates * rows) / group_rows
            if variances is None:
                low, high = percentile_bounds(means, confidence)
            else:
                half = bs.z_value(confidence) * np.sqrt(p.sum_cells(variances * rows) / group_rows**2)
                low, high = point[:, :2] - half, point[:, :2] + half
        nothing = np.full(p.counts.size, math.nan)
        figures = {
            "mae": Figure(point[:, 0], low[:, 0], high[:, 0]),
            "mean_prediction": Figure(point[:, 1], low[:, 1], high[:, 1]),
            "mean_target": Figure(point[:, 2], nothing, nothing),
        }
        judged = {"mae": large[:, None], "mean_prediction": large[:, None]}
        spreads = _disparities(large[:, None], point, means, confidence)
        reports.append(PartitionReport(p, large, judged, (), figures, spreads))
    return reports, method


def _disparities(
    judged: np.ndarray, point: np.ndarray, means: np.ndarray, confidence: float
) -> dict[str, Spread]:
    """The three disparities of one partition from the point means ``(G, 3)`` and the
    replicated means ``(B, G, 2)`` (MAE, mean prediction), over the ``judged`` groups
    ``(G, 1)``."""
    out = {}
    for j, (rate, names) in enumerate((("mae", ("mae_difference", "mae_ratio")),
                                       ("mean_prediction", ("mean_prediction_difference",)))):
        values = gaps(point[:, j:j + 1], judged)
        replicated = gaps(means[:, :, j:j + 1], judged)
        lowest, highest = extreme_groups(point[:, j:j + 1], judged)
        for name, value, replicates in zip(names, values, replicated):
            out[name] = make_spread(name, value, replicates, [rate], lowest, highest, confidence)
    return out
