"""Turn sensitive columns into groups: one integer code per row and a label per group.

Text and categorical columns: one group per distinct value. Numeric columns with at most
``MAX_DISTINCT`` distinct values (0/1 flags, small codes): one group per value. Numeric
columns with more (age, income): cut at their quartiles, so that no group is a handful of
rows, and the report says so. Missing values form the group ``"(missing)"``: never dropped.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from auditor.contract.context import Groups
from auditor.loading.arrow import column_to_numpy

MAX_DISTINCT = 10
MISSING = "(missing)"


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def from_dictionary(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = column.combine_chunks().dictionary_encode()
    labels = [_label(v) for v in encoded.dictionary.to_pylist()]
    indices = encoded.indices
    codes = np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices), offset=indices.offset * 4)
    codes = codes.astype(np.int64)
    if indices.null_count:
        nulls = column_to_numpy(pa.chunked_array([indices.is_null()])).astype(bool)
        codes[nulls] = len(labels)
        labels.append(MISSING)
    return codes, labels


def sorted_groups(codes: np.ndarray, labels: list[str], numeric_keys: list[float] | None) -> tuple[np.ndarray, list[str]]:
    """Order groups by value (numbers numerically, text alphabetically; missing last)."""
    if numeric_keys is not None:
        order = sorted(range(len(labels)), key=lambda i: (labels[i] == MISSING, numeric_keys[i]))
    else:
        order = sorted(range(len(labels)), key=lambda i: (labels[i] == MISSING, labels[i]))
    remap = np.empty(len(labels), dtype=np.int64)
    remap[order] = np.arange(len(labels))
    return remap[codes], [labels[i] for i in order]


def quartile_edges(values: np.ndarray) -> np.ndarray:
    """The distinct quartiles of a column's values (NaN left out): the cuts between its groups."""
    return np.unique(np.quantile(values[~np.isnan(values)], [0.25, 0.5, 0.75]))


def quartile_labels(edges: np.ndarray, low: float, high: float) -> list[str]:
    """The groups' labels, ``[low, q1)`` ... ``[q3, high]``."""
    bounds = [low, *edges.tolist(), high]
    labels = []
    for i in range(len(bounds) - 1):
        closing = "]" if i == len(bounds) - 2 else ")"
        labels.append(f"[{_label(bounds[i])}, {_label(bounds[i + 1])}{closing}")
    return labels


def by_edges(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's group between ``edges``; NaN gets the code after the last group (missing)."""
    codes = np.searchsorted(edges, values, side="right").astype(np.int64)
    codes[np.isnan(values)] = edges.size + 1
    return codes


def _quartiles(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    finite = values[~np.isnan(values)]
    edges = quartile_edges(values)
    codes = by_edges(values, edges)
    labels = quartile_labels(edges, float(finite.min()), float(finite.max()))
    if np.isnan(values).any():
        labels.append(MISSING)
    return codes, labels


def groups_from_column(name: str, column: pa.ChunkedArray, *, fed_to_model: bool) -> Groups:
    """The groups of one sensitive column, read straight from arrow (no per-row Python)."""
    kind = column.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    if numeric:
        as_float = column.cast(pa.float64())
        distinct = as_float.unique().drop_null()
        if len(distinct) > MAX_DISTINCT:
            codes, labels = _quartiles(column_to_numpy(as_float))
            return Groups(name, codes, tuple(labels), binned="quartiles", fed_to_model=fed_to_model)
        codes, labels = from_dictionary(as_float)
        keys = [float(v) if v != MISSING else 0.0 for v in labels]
        codes, labels = sorted_groups(codes, labels, keys)
        return Groups(name, codes, tuple(labels), fed_to_model=fed_to_model)
    text = column if pa.types.is_dictionary(kind) else column.cast(pa.string())  # the pass keeps text encoded
    codes, labels = from_dictionary(text)
    codes, labels = sorted_groups(codes, labels, None)
    return Groups(name, codes, tuple(labels), fed_to_model=fed_to_model)
