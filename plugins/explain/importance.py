"""Global importance from per-row attributions: how much each feature moves the output over
a sample, which way, and how two importances agree.

A reported feature may be a group of input columns (a sequence feature across its time
steps): its attribution in a row is the sum over its columns. Also the block means that
shrink an attribution map to the size a report shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass
class Importance:
    """Importance per reported feature over the sample."""

    mean_abs: np.ndarray
    share: np.ndarray
    mean: np.ndarray
    tendency: np.ndarray  # correlation of value and attribution (NaN: undefined)
    order: np.ndarray  # features by importance, most first


#: Column names that carry their time step: ``t3_pressure`` or ``step3_pressure`` (the step
#: first), ``pressure_t3`` or ``pressure_step3`` (the step last); ``_``, ``-`` or ``.`` between.
_STEP_FIRST = re.compile(r"^(?:t|step)(\d+)[_.-](.+)$", re.IGNORECASE)
_STEP_LAST = re.compile(r"^(.+)[_.-](?:t|step)(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class SequenceFeatures:
    """The F features of a sequence model fed flat rows of T x F columns (column ``t * F + f``
    is feature ``f`` at time step ``t``): each feature's name, its columns, and how the names
    were found (a sentence for the report)."""

    names: list[str]
    groups: list[list[int]]
    how: str
    misordered: str | None = None  # the columns carry steps, in another order than T x F rows


def sequence_features(columns: list[str], steps: int, width: int) -> SequenceFeatures:
    """Name the ``width`` features of flat sequence rows from the column names when every
    column follows one pattern that carries its step (``t{step}_{name}``, ``{name}_t{step}``,
    ``step`` for ``t`` too), the step counted from 0 matching the column's place and each
    feature's name the same at every step; otherwise number them ``feature 0`` .. ``feature
    F-1``. A feature is never named after one step's column: it stands for all of them.
    Columns that carry their steps in another order than the reshape reads them are told in
    ``misordered``."""
    groups = [[t * width + f for t in range(steps)] for f in range(width)]
    misordered = None
    layout = f"column t·{width}+f is feature f at time step t, steps counted from 0"
    for pattern, step_at, name_at, shape in ((_STEP_FIRST, 1, 2, "t{step}_{name}"), (_STEP_LAST, 2, 1, "{name}_t{step}")):
        found = [pattern.match(c) for c in columns]
        if len(columns) != steps * width or not all(found):
            continue
        parts = [(int(m.group(step_at)), m.group(name_at)) for m in found if m is not None]
        names = [parts[f][1] for f in range(width)]
        if len(set(names)) == width and all(
            parts[t * width + f] == (t, names[f]) for t in range(steps) for f in range(width)
        ):
            return SequenceFeatures(names, groups, (
                f"Sequence features are named from the data's columns, which follow the pattern {shape} ({layout})."
            ))
        if misordered is None and len(set(parts)) == len(parts) and {t for t, _ in parts} == set(range(steps)):
            first = next(i for i, (t, _) in enumerate(parts) if t != i // width)
            misordered = (
                f"The data's columns follow the pattern {shape} but not in the order --input-shape "
                f"{steps},{width} reads them (the {width} features of step 0, then those of step 1, ...): column "
                f"{first + 1} is {columns[first]!r}, where the reshape expects a column of step {first // width}. "
                "Reorder the columns step by step, or check --input-shape."
            )
    return SequenceFeatures([f"feature {f}" for f in range(width)], groups, misordered=misordered, how=(
        f"Sequence features are numbered feature 0 to feature {width - 1} ({layout}): the data's columns do "
        "not follow the pattern t{step}_{name} or {name}_t{step}, so no name is read from them; name the "
        "columns t0_<name>, t1_<name>, ... to see names."
    ))


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``a`` with the same column of ``b`` (NaN when
    either is constant)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=0) / np.where(denominator > 0, denominator, 1), np.nan)


def importance(values: np.ndarray, X: np.ndarray, groups: list[list[int]]) -> Importance:
    """Importance of each reported feature from ``values`` (rows x columns of attributions)
    and the rows' inputs ``X``; a feature of several columns sums their attributions, and its
    tendency correlates every one of its values with its attribution."""
    if all(len(g) == 1 for g in groups):
        columns = [g[0] for g in groups]
        signed = values[:, columns]
        magnitude = np.abs(signed)
        tendency = correlation(X[:, columns], signed)
    else:
        signed = np.stack([values[:, g].sum(axis=1) for g in groups], axis=1)
        magnitude = np.stack([np.abs(values[:, g]).sum(axis=1) for g in groups], axis=1)
        tendency = np.array([correlation(X[:, g].reshape(-1, 1), values[:, g].reshape(-1, 1))[0] for g in groups])
    mean_abs = magnitude.mean(axis=0)
    total = mean_abs.sum()
    share = mean_abs / total if total > 0 else np.zeros_like(mean_abs)
    return Importance(mean_abs, share, signed.mean(axis=0), tendency, np.argsort(-mean_abs, kind="stable"))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (scipy's ``rankdata(method="average")``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    run = np.cumsum(starts) - 1
    first = np.nonzero(starts)[0]
    last = np.concatenate([first[1:], [values.size]]) - 1
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = (first[run] + last[run]) / 2.0 + 1.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (None with fewer than 3 values or a constant side)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    value = float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])
    return value if np.isfinite(value) else None


def downsample(grid: np.ndarray, side: int = 64) -> np.ndarray:
    """Block means so that neither side exceeds ``side`` (the last block may be partial)."""
    height, width = grid.shape[:2]
    factor = max(1, -(-max(height, width) // side))
    if factor == 1:
        return grid
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.full((rows * factor, cols * factor, *grid.shape[2:]), np.nan)
    padded[:height, :width] = grid
    blocks = padded.reshape(rows, factor, cols, factor, *grid.shape[2:])
    return np.nanmean(blocks, axis=(1, 3))
