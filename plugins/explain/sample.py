"""A seeded stratified sample of rows, for audits too costly to run on every row.

Each stratum (a class, or a decile of a regression target) gets a share of the sample
proportional to its share of the rows (largest remainders settle the rounding), and every
stratum gets at least one row, so a rare class is never left out. The same strata, size and
seed give the same rows on every machine: the rows are chosen by NumPy's PCG64 generator.
"""

from __future__ import annotations

import numpy as np


def deciles(values: np.ndarray) -> np.ndarray:
    """Strata for a continuous quantity: which tenth of its sorted values each row falls in."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return ranks * 10 // values.size


def allocate(counts: np.ndarray, size: int) -> np.ndarray:
    """Rows to draw from each stratum: proportional, at least one each, summing to ``size``
    (``size`` is at least the number of non-empty strata and at most their total)."""
    counts = np.asarray(counts, dtype=np.int64)
    quota = counts * size / int(counts.sum())
    take = np.maximum(np.floor(quota).astype(np.int64), np.minimum(counts, 1))
    short = size - int(take.sum())
    if short > 0:
        # largest remainders first, among strata not already raised to their one row;
        # ties go to the earlier stratum (a stable sort)
        remainder = np.where(take > quota, -np.inf, quota - np.floor(quota))
        take[np.argsort(-remainder, kind="stable")[:short]] += 1
    while take.sum() > size:  # the one row each overshot: trim the largest share
        take[int(np.argmax(take))] -= 1
    return take


def stratified_sample(strata: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted row indices of a seeded stratified sample of ``size`` rows (all rows when
    ``size`` is at least their number): every row draws a uniform random key, and each stratum
    keeps its rows with the smallest keys."""
    strata = np.asarray(strata)
    n = strata.size
    if size >= n:
        return np.arange(n, dtype=np.int64)
    codes, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    size = max(size, codes.size)
    take = allocate(counts, size)
    keys = np.random.default_rng(seed).random(n)
    if codes.size <= 64:  # a pass per stratum and a partial sort of its keys: O(rows x strata)
        chosen = []
        for code, count in enumerate(take):
            rows = np.flatnonzero(inverse == code)
            if count < rows.size:
                rows = rows[np.argpartition(keys[rows], count - 1)[:count]]
            chosen.append(rows)
        return np.sort(np.concatenate(chosen)).astype(np.int64)
    order = np.lexsort((keys, inverse))  # rows grouped by stratum, each group by key
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - np.repeat(starts, counts)
    return np.nonzero(position < take[inverse])[0].astype(np.int64)
