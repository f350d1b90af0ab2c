"""Group fairness figures with confidence intervals, vectorised with numpy (no fairlearn).

Names and definitions are fairlearn's (``fairlearn.metrics``); the tests hold the numbers
to it. Everything comes from counts, never from a Python loop over rows:

- The rows are split into *cells*, the combinations of every sensitive column's groups that
  occur (:func:`combine`). A :class:`Partition` (one sensitive column, or the intersection
  of all of them) groups those cells; its figures are sums of its cells' figures.
- Classification: one ``np.bincount`` over ``cell * K * K + y * K + pred`` gives every
  cell's confusion counts. Rates are one-vs-rest per class (:func:`class_rates`); a binary
  task reports its positive class (index 1) only.
- Regression (:mod:`auditor_plugins.fairness.regression`): per-cell sums of absolute errors,
  predictions and targets.

Disparities (:func:`gaps`) are taken over the *judged* values: a group's rate counts when
the group and the rate's denominator both have at least ``min_group_size`` rows (the true
positive rate of a group of 500 with 4 positive rows is left out; :func:`judged_rates`).
An undefined rate (a zero denominator) is never judged, where fairlearn counts it as 0, so
with ``min_group_size=1`` the disparities are fairlearn's wherever every rate is defined. A
difference or a ratio needs two judged values, else it is NaN. ``ratio = lowest /
highest``, and 1 when the highest is 0: every group is at 0, so they are equal (fairlearn
returns NaN there).

Intervals are percentile intervals of a bootstrap stratified by cell: each cell's rows are
resampled within the cell, so every group keeps its size and all the figures of one
resample, of every partition, come from the same resampled rows. For classification the
bootstrap is exact at any n: resampling a cell's rows changes only its confusion counts,
which are then Multinomial(n_cell, the cell's observed shares), so B resamples are B
multinomial draws per cell, a few vectorised calls in all (:func:`resample_margins`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Sequence

import numpy as np

from auditor.contract.context import Groups
from auditor.stats import bootstrap as bs

#: Generator stream of the classification bootstrap (see :func:`auditor.stats.bootstrap.make_rng`).
_CLASSIFICATION_STREAM = 11
#: The largest block of resampled counts drawn at once, in bytes.
_DRAW_BYTES = 4_000_000
#: Joins the columns of an intersection, and their labels: "sex × race", "Male × White".
SEPARATOR = " × "

#: Per-group, per-class rates (one-vs-rest); accuracy is per group.
RATES = (
    "base_rate",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "precision",
)
CLASSIFICATION_DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
)


def larger_is_worse(disparity: str) -> bool:
    """Differences are worse when larger, ratios when smaller."""
    return not disparity.endswith("_ratio")


@dataclass(frozen=True)
class Cells:
    """The rows split by every sensitive column at once: the combinations that occur, in
    lexicographic order of the columns' codes. ``row``: each row's cell; ``codes``:
    ``(n_cells, n_columns)``, each column's group in each cell; ``counts``: rows per cell."""

    row: np.ndarray
    codes: np.ndarray
    counts: np.ndarray

    @property
    def n_cells(self) -> int:
        return self.counts.size


def combine(groups: Sequence[Groups]) -> Cells:
    """The cells of one or more sensitive columns: the mixed-radix combination of their
    codes, keeping only the combinations that occur (a counting pass when the number of
    possible combinations is small, a sort otherwise)."""
    if not groups:
        raise ValueError("no sensitive column to group by")
    n = groups[0].codes.size
    sizes = [len(g.labels) for g in groups]
    for g in groups:
        if g.codes.shape != (n,):
            raise ValueError(f"the groups of {g.column!r} have {g.codes.size} codes for {n} rows")
        if n and (g.codes.min() < 0 or g.codes.max() >= len(g.labels)):
            raise ValueError(f"the groups of {g.column!r} have codes outside 0..{len(g.labels) - 1}")
    possible = math.prod(sizes)
    if possible <= max(4 * n, 1 << 16):
        flat = np.zeros(n, dtype=np.int64)
        for g, size in zip(groups, sizes):
            flat *= size
            flat += g.codes
        all_counts = np.bincount(flat, minlength=possible)
        present = np.flatnonzero(all_counts)
        remap = np.zeros(possible, dtype=np.int64)
        remap[present] = np.arange(present.size)
        codes = np.stack(np.unravel_index(present, sizes), axis=1)
        return Cells(remap[flat], codes.astype(np.int64), all_counts[present])
    stacked = np.stack([g.codes for g in groups], axis=1)
    codes, row, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return Cells(row.ravel().astype(np.int64), codes.astype(np.int64), counts.astype(np.int64))


@dataclass(frozen=True)
class Partition:
    """A grouping of the rows: one sensitive column, or the intersection of several.

    ``parts[g]`` names group g by each column's label (one label for a single column);
    ``cell_group[c]`` is the group of cell c and ``counts[g]`` the rows of group g (0 for a
    label no row has).
    """

    columns: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    cell_group: np.ndarray
    counts: np.ndarray

    @property
    def name(self) -> str:
        """``"race"``, or ``"sex × race"`` for an intersection."""
        return SEPARATOR.join(self.columns)

    @property
    def labels(self) -> tuple[str, ...]:
        """Group labels: ``"Caucasian"``, or ``"Male × White"`` for an intersection."""
        return tuple(SEPARATOR.join(p) for p in self.parts)

    def describe(self, group: int) -> str:
        """A group for a sentence: ``"race=Caucasian"``, ``"sex=Male × race=White"``."""
        return SEPARATOR.join(f"{c}={p}" for c, p in zip(self.columns, self.parts[group]))

    @cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """How to sum cells into groups: the cells in group order, the groups that have
        cells, and where each starts; None when every cell is its own group, in order."""
        size = self.counts.size
        if self.cell_group.size == size and np.array_equal(self.cell_group, np.arange(size)):
            return None
        order = np.argsort(self.cell_group, kind="stable")
        present = np.flatnonzero(np.bincount(self.cell_group, minlength=size))
        return order, present, np.searchsorted(self.cell_group[order], present)

    def sum_cells(self, per_cell: np.ndarray) -> np.ndarray:
        """Per-cell figures ``(..., n_cells, m)`` summed into groups ``(..., G, m)``."""
        if self._layout is None:
            return np.asarray(per_cell, dtype=np.float64)
        order, present, starts = self._layout
        out = np.zeros(per_cell.shape[:-2] + (self.counts.size, per_cell.shape[-1]))
        out[..., present, :] = np.add.reduceat(per_cell[..., order, :], starts, axis=-2)
        return out


def partitions(groups: Sequence[Groups], cells: Cells, intersection: bool) -> list[Partition]:
    """One partition per sensitive column, in order, then their intersection when asked
    for and there are at least two columns (its groups are the cells)."""
    out = []
    for i, g in enumerate(groups):
        counts = np.bincount(cells.codes[:, i], weights=cells.counts, minlength=len(g.labels))
        out.append(Partition((g.column,), tuple((label,) for label in g.labels),
                             cells.codes[:, i], counts.astype(np.int64)))
    if intersection and len(groups) > 1:
        parts = tuple(tuple(g.labels[c] for g, c in zip(groups, row)) for row in cells.codes.tolist())
        out.append(Partition(tuple(g.column for g in groups), parts, np.arange(cells.n_cells), cells.counts))
    return out


def tallied_cells(cell_codes: np.ndarray, confusion: np.ndarray, columns: Sequence[int]) -> tuple[Cells, np.ndarray]:
    """The cells of some sensitive columns (``columns``: their positions in ``cell_codes``) and
    their confusion counts, from a run's tallies (:class:`auditor.contract.context.Tallies`:
    every combination of all the columns' groups, with its counts): in the order and with the
    counts :func:`combine` and :func:`confusion_by_cell` give from the rows."""
    projected = cell_codes[:, list(columns)]
    counts = confusion.sum(axis=(1, 2))
    projected, confusion, counts = projected[counts > 0], confusion[counts > 0], counts[counts > 0]
    codes, inverse = np.unique(projected, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = confusion.shape[1]
    summed = np.zeros((codes.shape[0], k, k), dtype=np.int64)
    np.add.at(summed, inverse, confusion)
    return Cells(np.zeros(0, dtype=np.int64), codes.astype(np.int64), summed.sum(axis=(1, 2))), summed


def confusion_by_cell(cells: Cells, y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_cells, K, K)`` confusion counts, rows = true class, columns = predicted class."""
    k = n_classes
    for what, values in (("target", y), ("predicted", pred)):
        if values.shape != cells.row.shape:
            raise ValueError(f"{values.size} {what} classes for {cells.row.size} rows")
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"{what} class indices must lie in 0..{k - 1}")
    flat = cells.row * (k * k) + y * k + pred
    return np.bincount(flat, minlength=cells.n_cells * k * k).reshape(cells.n_cells, k, k)


def margins(cm: np.ndarray) -> np.ndarray:
    """``(..., K, K)`` confusion counts -> ``(..., 3, K)``: per class, the true positives,
    the rows of the class and the rows predicted as it."""
    return np.stack([np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-1), cm.sum(axis=-2)], axis=-2)


def class_rates(m: np.ndarray) -> dict[str, np.ndarray]:
    """One-vs-rest rates of ``(..., 3, K)`` margins, each ``(..., K)``, and ``accuracy``
    ``(...)``: NaN where a denominator is 0 (the rate is undefined)."""
    m = np.asarray(m, dtype=np.float64)
    tp, pos, predicted = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    n = pos.sum(axis=-1)
    rows = n[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "base_rate": pos / rows,
            "selection_rate": predicted / rows,
            "true_positive_rate": tp / pos,
            "false_positive_rate": (predicted - tp) / (rows - pos),
            "false_negative_rate": (pos - tp) / pos,
            "precision": tp / predicted,
            "accuracy": tp.sum(axis=-1) / n,
        }


def judged_rates(counts: np.ndarray, positives: np.ndarray, min_group_size: int) -> dict[str, np.ndarray]:
    """Which rates the disparities use, each ``(G, C)``: a group's selection rate when it
    has ``min_group_size`` rows, its true positive rate when it also has that many rows of
    the class, its false positive rate when it also has that many of the other classes.
    ``counts``: rows per group ``(G,)``; ``positives``: rows of each class ``(G, C)``."""
    large = np.broadcast_to((counts >= min_group_size)[:, None], positives.shape)
    return {
        "selection_rate": large,
        "true_positive_rate": large & (positives >= min_group_size),
        "false_positive_rate": large & (counts[:, None] - positives >= min_group_size),
    }


def gaps(values: np.ndarray, judged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The difference (highest - lowest) and the ratio (lowest / highest; 1 when the highest
    is 0) of ``values`` ``(..., G, C)`` over the judged ones (``judged``: ``(G, C)``), each
    ``(..., C)``. Undefined (NaN) values are left out; NaN where fewer than two remain."""
    if values.shape[-2] < 2:
        shape = values.shape[:-2] + values.shape[-1:]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    kept = np.where(judged, values, np.nan)
    low = np.fmin.reduce(kept, axis=-2)
    high = np.fmax.reduce(kept, axis=-2)
    enough = np.isfinite(kept).sum(axis=-2) >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(high > 0, low / high, 1.0)
    return np.where(enough, high - low, np.nan), np.where(enough, ratio, np.nan)


def extreme_groups(values: np.ndarray, judged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups with the lowest and the highest judged value of ``values`` ``(G, C)``,
    each ``(C,)`` (the first on ties); -1 where :func:`gaps` is undefined."""
    usable = judged & np.isfinite(values)
    lowest = np.where(usable, values, np.inf).argmin(axis=0)
    highest = np.where(usable, values, -np.inf).argmax(axis=0)
    enough = usable.sum(axis=0) >= 2
    return np.where(enough, lowest, -1), np.where(enough, highest, -1)


def classification_disparities(
    rates: dict[str, np.ndarray], judged: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """fairlearn's disparities from per-group rates ``(..., G, C)``, each ``(..., C)``, over
    the judged values (:func:`judged_rates`).

    Equalized odds: the larger of the TPR and FPR differences, the smaller of their
    ratios; NaN when either is undefined.
    """
    dp_difference, dp_ratio = gaps(rates["selection_rate"], judged["selection_rate"])
    tpr_difference, tpr_ratio = gaps(rates["true_positive_rate"], judged["true_positive_rate"])
    fpr_difference, fpr_ratio = gaps(rates["false_positive_rate"], judged["false_positive_rate"])
    return {
        "demographic_parity_difference": dp_difference,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": np.maximum(tpr_difference, fpr_difference),
        "equalized_odds_ratio": np.minimum(tpr_ratio, fpr_ratio),
        "equal_opportunity_difference": tpr_difference,
    }


def resample_margins(cm: np.ndarray, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap resamples of every cell's margins, in blocks ``(b, n_cells, 3, K)``.

    Rows are resampled within their cell, exactly: a cell's resampled confusion counts are
    Multinomial(n_cell, the cell's observed shares). Only the entries a cell has are drawn
    (the others have share 0), so the cost follows the occupied entries, not K².
    """
    n_cells, k = cm.shape[0], cm.shape[1]
    flat = cm.reshape(n_cells, k * k)
    width = max(1, int(np.count_nonzero(flat, axis=1).max()))
    entry = np.argsort(flat == 0, axis=1, kind="stable")[:, :width]  # occupied entries first
    counts = np.take_along_axis(flat, entry, axis=1)
    rows = counts.sum(axis=1)
    shares = counts / rows[:, None]
    true, predicted = np.divmod(entry, k)
    # Where each drawn entry adds up in the flattened margins; the extra last slot takes the
    # "true positives" of off-diagonal entries and is dropped.
    slot_count = n_cells * 3 * k + 1
    base = np.arange(n_cells)[:, None] * (3 * k)
    target = np.concatenate(
        [np.where(true == predicted, base + true, slot_count - 1), base + k + true, base + 2 * k + predicted],
        axis=1,
    )
    per_block = max(1, _DRAW_BYTES // (8 * 3 * n_cells * width))
    done = 0
    while done < n_resamples:
        b = min(per_block, n_resamples - done)
        draws = rng.multinomial(rows, shares, size=(b, n_cells))
        slots = target + (np.arange(b) * slot_count)[:, None, None]
        summed = np.bincount(slots.ravel(), weights=np.tile(draws, 3).ravel(), minlength=b * slot_count)
        yield summed.reshape(b, slot_count)[:, :-1].reshape(b, n_cells, 3, k)
        done += b


def percentile_bounds(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-interval bounds along axis 0, for every other position at once.

    As :func:`auditor.stats.bootstrap.percentile_interval` (linear interpolation over the finite
    replicates): NaN where fewer than 2, or fewer than half, of the replicates are finite.
    """
    ordered = np.sort(replicates, axis=0)  # NaN last
    finite = np.isfinite(ordered).sum(axis=0)
    usable = (finite >= 2) & (2 * finite >= replicates.shape[0])
    last = np.maximum(finite - 1, 0)
    alpha = 1.0 - confidence
    bounds = []
    for q in (alpha / 2.0, 1.0 - alpha / 2.0):
        position = q * last
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, last)
        low = np.take_along_axis(ordered, below[None], axis=0)[0]
        high = np.take_along_axis(ordered, above[None], axis=0)[0]
        bounds.append(np.where(usable, low + (high - low) * (position - below), np.nan))
    return bounds[0], bounds[1]


@dataclass(frozen=True)
class Figure:
    """A per-group figure with its interval bounds: arrays ``(G, C)`` (per class) or ``(G,)``,
    NaN where undefined."""

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Spread:
    """One disparity of a partition, per class (one class position for binary tasks and
    regression).

    ``value``, ``low``, ``high``: the disparity and its interval, each ``(C,)``; ``rate``:
    the rate whose spread gives it; ``lowest``/``highest``: the judged groups at that rate's
    extremes (-1 where undefined). ``overall``: the worst over classes (the largest
    difference, the smallest ratio) at class position ``worst`` (-1 when undefined in every
    class), with its interval ``overall_ci`` and its bootstrap ``replicates`` ``(B,)``.
    """

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    rate: tuple[str, ...]
    lowest: np.ndarray
    highest: np.ndarray
    overall: float
    overall_ci: bs.Interval | None
    worst: int
    replicates: np.ndarray


def _worst_position(values: np.ndarray, larger: bool) -> int:
    """The position of the worst finite value, or -1."""
    finite = np.isfinite(values)
    if not finite.any():
        return -1
    return int(np.where(finite, values if larger else -values, -np.inf).argmax())


def _interval(replicates: np.ndarray, confidence: float) -> bs.Interval | None:
    low, high = percentile_bounds(replicates[:, None], confidence)
    return None if np.isnan(low[0]) else (float(low[0]), float(high[0]))


def make_spread(
    disparity: str,
    value: np.ndarray,
    replicates: np.ndarray,
    rate: Sequence[str],
    lowest: np.ndarray,
    highest: np.ndarray,
    confidence: float,
) -> Spread:
    """A :class:`Spread` from the point values ``(C,)`` and the replicates ``(B, C)``."""
    larger = larger_is_worse(disparity)
    low, high = percentile_bounds(replicates, confidence)
    worst = _worst_position(value, larger)
    overall_replicates = (np.fmax if larger else np.fmin).reduce(replicates, axis=1)
    return Spread(
        value=value,
        low=low,
        high=high,
        rate=tuple(rate),
        lowest=lowest,
        highest=highest,
        overall=float(value[worst]) if worst >= 0 else math.nan,
        overall_ci=_interval(overall_replicates, confidence) if worst >= 0 else None,
        worst=worst,
        replicates=overall_replicates,
    )


@dataclass(frozen=True)
class PartitionReport:
    """Every figure of one partition: ``judged[g]`` (group g has at least
    ``min_group_size`` rows), ``judged_rates`` (by rate, ``(G, C)``: the values the
    disparities use, see :func:`judged_rates`), ``classes`` (the class index at each class
    position: ``(1,)`` for binary, all classes for multiclass, ``()`` for regression),
    per-group ``figures`` and the ``disparities`` by name."""

    partition: Partition
    judged: np.ndarray
    judged_rates: dict[str, np.ndarray]
    classes: tuple[int, ...]
    figures: dict[str, Figure]
    disparities: dict[str, Spread]


@dataclass(frozen=True)
class Worst:
    """The worst value of one disparity over the partitions, its interval (the percentile
    interval of the worst over partitions in each resample) and its partition (-1: none)."""

    value: float
    ci: bs.Interval | None
    partition: int


def worst_over(reports: Sequence[PartitionReport], disparity: str, confidence: float) -> Worst:
    """The worst of ``disparity`` over the partitions (the largest difference, the smallest
    ratio); all partitions' figures of one resample come from the same resampled rows."""
    spreads = [r.disparities[disparity] for r in reports]
    larger = larger_is_worse(disparity)
    best = _worst_position(np.array([s.overall for s in spreads]), larger)
    if best < 0:
        return Worst(math.nan, None, -1)
    replicates = np.stack([s.replicates for s in spreads], axis=1)
    overall = (np.fmax if larger else np.fmin).reduce(replicates, axis=1)
    return Worst(spreads[best].overall, _interval(overall, confidence), best)


def _group_rates(
    partition: Partition, cell_margins: np.ndarray, classes: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Per-group rates of a block of cell margins ``(b, n_cells, 3, K)``: ``(b, G, C)``, and
    ``accuracy`` ``(b, G)``."""
    b, n_cells, _, k = cell_margins.shape
    grouped = partition.sum_cells(cell_margins.reshape(b, n_cells, 3 * k)).reshape(b, -1, 3, k)
    rates = class_rates(grouped)
    chosen = list(classes)
    return {name: v if name == "accuracy" else v[..., chosen] for name, v in rates.items()}


def _sources(
    point: dict[str, np.ndarray], judged: dict[str, np.ndarray], n_positions: int
) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """For each disparity, per class position: the rate whose spread gives it and the
    judged groups at that rate's lowest and highest (for equalized odds, whichever of TPR
    and FPR has the larger difference, or the smaller ratio; TPR on ties)."""
    tpr, fpr = "true_positive_rate", "false_positive_rate"
    extremes = {rate: extreme_groups(point[rate][0], judged[rate]) for rate in ("selection_rate", tpr, fpr)}
    tpr_difference, tpr_ratio = gaps(point[tpr][0], judged[tpr])
    fpr_difference, fpr_ratio = gaps(point[fpr][0], judged[fpr])
    choices = {
        "demographic_parity_difference": ("selection_rate", "selection_rate", np.full(n_positions, True)),
        "demographic_parity_ratio": ("selection_rate", "selection_rate", np.full(n_positions, True)),
        "equalized_odds_difference": (tpr, fpr, tpr_difference >= fpr_difference),
        "equalized_odds_ratio": (tpr, fpr, tpr_ratio <= fpr_ratio),
        "equal_opportunity_difference": (tpr, tpr, np.full(n_positions, True)),
    }
    return {
        name: (
            np.where(first, a, b).tolist(),
            np.where(first, extremes[a][0], extremes[b][0]),
            np.where(first, extremes[a][1], extremes[b][1]),
        )
        for name, (a, b, first) in choices.items()
    }


def _classification_report(
    partition: Partition,
    large: np.ndarray,
    judged: dict[str, np.ndarray],
    classes: tuple[int, ...],
    point: dict[str, np.ndarray],
    replicates: dict[str, np.ndarray],
    confidence: float,
) -> PartitionReport:
    figures = {}
    for name in (*RATES, "accuracy"):
        low, high = percentile_bounds(replicates[name], confidence)
        figures[name] = Figure(point[name][0], low, high)
    values = classification_disparities(point, judged)
    disparities = {}
    for name, (rate, lowest, highest) in _sources(point, judged, len(classes)).items():
        disparities[name] = make_spread(name, values[name][0], replicates[name], rate, lowest, highest, confidence)
    return PartitionReport(partition, large, judged, classes, figures, disparities)


def classification_fairness(
    groups: Sequence[Groups],
    y: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    *,
    binary: bool,
    intersection: bool,
    min_group_size: int,
    n_resamples: int,
    confidence: float,
    seed: int,
    tallied: tuple[Cells, np.ndarray] | None = None,
) -> list[PartitionReport]:
    """Per-group rates and fairlearn's disparities, with intervals from the exact
    stratified bootstrap, for each sensitive column and (``intersection``) their
    intersection. ``y`` and ``pred``: int class indices; binary tasks report class 1.
    ``tallied``: the cells and their confusion counts, already counted (:func:`tallied_cells`);
    ``y`` and ``pred`` are then not read."""
    if tallied is not None:
        cells, cm = tallied
        if cells.n_cells == 0:
            raise ValueError("there are no rows to audit")
    else:
        cells = combine(groups)
        if cells.row.size == 0:
            raise ValueError("there are no rows to audit")
        cm = confusion_by_cell(cells, np.asarray(y, np.int64), np.asarray(pred, np.int64), n_classes)
    parts = partitions(groups, cells, intersection)
    classes = (1,) if binary else tuple(range(n_classes))
    cell_margins = margins(cm)
    chosen = list(classes)
    judged = [judged_rates(p.counts, p.sum_cells(cell_margins[:, 1, :])[:, chosen], min_group_size) for p in parts]
    point = [_group_rates(p, cell_margins[None], classes) for p in parts]
    blocks: list[list[dict[str, np.ndarray]]] = [[] for _ in parts]
    for block in resample_margins(cm, n_resamples, bs.make_rng(seed, _CLASSIFICATION_STREAM)):
        for i, p in enumerate(parts):
            rates = _group_rates(p, block, classes)
            rates.update(classification_disparities(rates, judged[i]))
            blocks[i].append(rates)
    reports = []
    for i, p in enumerate(parts):
        replicates = {name: np.concatenate([b[name] for b in blocks[i]]) for name in blocks[i][0]}
        large = p.counts >= min_group_size
        reports.append(_classification_report(p, large, judged[i], classes, point[i], replicates, confidence))
    return reports
