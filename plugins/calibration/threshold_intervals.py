"""Bootstrap intervals of the chosen decision thresholds and of what they achieve.

Each goal (the largest F1, the largest Youden's J, the least expected cost, a target recall
or precision, and the fixed threshold 0.5) picks a threshold on the data; on other data drawn
from the same population it would pick another, and reach another figure. A replicate redraws
the rows and picks again: the interval of the threshold says how firmly the data fix it, the
interval of the figure what it achieves (for the largest F1 and J and the least cost, the
re-chosen optimum: like the point estimate, optimistic for new data, as it is chosen on the
rows it is scored on).

Rows are pooled, in decreasing order of probability, into at most :data:`GROUPS` runs of
about equal size (ties never split; the rows at or above 0.5 end a run) and each run into its
positive and negative rows: the cells. A replicate draws the cells' counts from a multinomial
over the rows, so its cost is the number of cells, not of rows; a replicate's thresholds are
the runs' lowest probabilities, so the intervals resolve 1/:data:`GROUPS` of the rows (every
distinct probability when there are fewer). Percentile intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.stats.bootstrap import percentile_interval
from auditor.stats.thresholds import Sweep

#: Runs of rows a replicate's thresholds choose between.
GROUPS = 250
#: Replicates drawn at once.
_BLOCK = 250


@dataclass(frozen=True)
class Goal:
    """A goal's threshold interval and its figure's (``None`` when no replicate reached it)."""

    threshold: tuple[float, float] | None
    value: tuple[float, float] | None


def _runs(s: Sweep) -> np.ndarray:
    """The sweep's indices (past its +inf) that end each run: about equal runs of rows whose
    bounds fall between distinct probabilities, with one at the lowest probability at or
    above 0.5."""
    rows = s.tp[1:] + s.fp[1:]  # rows at or above each distinct probability, descending
    last = np.arange(rows.size)
    if rows.size > GROUPS:
        wanted = np.linspace(0, rows[-1], GROUPS + 1)[1:]
        last = np.unique(np.minimum(np.searchsorted(rows, wanted, side="left"), rows.size - 1))
    half = int(np.searchsorted(-s.thresholds[1:], -0.5, side="right")) - 1
    if half >= 0:
        last = np.unique(np.r_[last, half])
    return last + 1


def threshold_intervals(s: Sweep, costs: tuple[float, float], targets: dict[str, float],
                        rng: np.random.Generator, resamples: int, confidence: float) -> dict[str, Goal]:
    """Goals: ``"0.5"`` (F1 at threshold 0.5), ``"f1"``, ``"youden"``, ``"cost"`` (expected cost
    per row at the least-cost threshold), and ``"recall"``/``"precision"`` when in ``targets``
    (the precision at the highest threshold reaching the target recall; the recall at the
    lowest reaching the target precision)."""
    last = _runs(s)
    positives = np.diff(np.r_[0, s.tp[last]])
    negatives = np.diff(np.r_[0, s.fp[last]])
    thresholds = s.thresholds[last]
    cells = np.r_[positives, negatives].astype(np.float64)
    n, runs = s.n, last.size
    half = int(np.searchsorted(-thresholds, -0.5, side="right")) - 1  # the runs predicted positive at 0.5
    fp_cost, fn_cost = costs
    picked: dict[str, list[np.ndarray]] = {}

    def keep(goal: str, index: np.ndarray | None, value: np.ndarray) -> None:
        threshold = (np.full(value.shape, np.nan) if index is None else
                     np.where(np.isnan(value) | (index < 0), np.nan, thresholds[np.maximum(index, 0)]))
        picked.setdefault(goal, []).append(np.stack([threshold, value]))

    for start in range(0, resamples, _BLOCK):
        b = min(_BLOCK, resamples - start)
        drawn = rng.multinomial(n, cells / n, size=b).astype(np.float64)
        tp, fp = np.cumsum(drawn[:, :runs], axis=1), np.cumsum(drawn[:, runs:], axis=1)  # b x runs
        pos, neg = tp[:, -1:], fp[:, -1:]
        usable = ((pos > 0) & (neg > 0))[:, 0]
        rows = np.arange(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall, fpr = tp / pos, fp / neg
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            f1 = 2 * tp / (tp + fp + pos)
        nan = np.where(usable, 0.0, np.nan)
        keep("0.5", None, (f1[:, half] if half >= 0 else np.zeros(b)) + nan)
        best = np.argmax(np.where(np.isnan(f1), -1, f1), axis=1)
        keep("f1", best, f1[rows, best] + nan)
        j = np.nan_to_num(recall - fpr, nan=-1.0)
        best = np.argmax(j, axis=1)
        keep("youden", best, j[rows, best] + nan)
        cost = (fp_cost * fp + fn_cost * (pos - tp)) / n
        best = np.argmin(cost, axis=1)
        nothing = fn_cost * pos[:, 0] / n  # predicting no row positive (threshold +inf: no threshold to show)
        keep("cost", np.where(nothing < cost[rows, best], -1, best), np.minimum(cost[rows, best], nothing) + nan)
        if "recall" in targets:
            hit = recall >= targets["recall"]
            first = np.argmax(hit, axis=1)
            keep("recall", first, np.where(hit.any(axis=1), precision[rows, first], np.nan) + nan)
        if "precision" in targets:
            hit = precision >= targets["precision"]
            final = runs - 1 - np.argmax(hit[:, ::-1], axis=1)
            keep("precision", final, np.where(hit.any(axis=1), recall[rows, final], np.nan) + nan)
    out = {}
    for goal, blocks in picked.items():  # no interval where most replicates never reached the goal
        threshold, value = np.concatenate(blocks, axis=1)
        out[goal] = Goal(None if goal == "0.5" else percentile_interval(threshold, confidence),
                         percentile_interval(value, confidence))
    return out
