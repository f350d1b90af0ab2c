"""One concept: the mergeable state a pass keeps when every row's predictions exceed the budget.

Past a quarter of the memory budget, :mod:`auditor.run.stream` stops keeping each row's
outputs, labels and groups and keeps instead, for every row read so far and every row to
come, what the exact figures of the built-in metrics and fairness audits are sums of:

- the *cells*, every combination of the sensitive columns' groups that occurs, and per cell
  the confusion counts (classification: exact) or the sums of errors, predictions and
  targets (regression: exact up to floating-point rounding);
- per ranked score column, the positive and negative rows per score bin
  (:class:`auditor.stats.binned.ScoreBins`: ROC-AUC and average precision become binned,
  with a stated bound);
- sums (and sums of squares) of the rows' log loss and Brier score; the regression
  moments the metrics' point estimates and intervals need.

All of it merges by addition: the same figures however the file is cut into chunks. The
task (binary, multiclass or regression; logits or probabilities; the classes) is decided
once, on every row read before the switch, exactly as for a whole file; every later chunk
must agree with it (a class the model cannot produce, or probabilities that stop summing to
1, is exit 2 with the rows). The groups are fixed the same way: text and small-count columns
gain any new value as a group; a numeric column cut at quartiles keeps the quartiles of the
rows before the switch, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from auditor.contract.context import Groups, Tallies, Task
from auditor.contract.errors import DataError
from auditor.loading.arrow import column_to_numpy
from auditor.loading.groups import (
    MISSING,
    by_edges,
    from_dictionary,
    groups_from_column,
    quartile_edges,
    quartile_labels,
    sorted_groups,
)
from auditor.run.task import classify_outputs, encode_target, read_outputs
from auditor.stats.binned import ScoreBins
from auditor.stats.metrics import row_brier, row_log_loss

#: Each sensitive column's group code takes this many bits of a cell's key (so at most 4 columns).
_GROUP_BITS = 15


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


class GroupCoder:
    """A sensitive column's groups, decided on the rows before the switch and applied to every later chunk."""

    def __init__(self, name: str, prefix: pa.ChunkedArray, fed_to_model: bool) -> None:
        self.name = name
        self.fed_to_model = fed_to_model
        first = groups_from_column(name, prefix, fed_to_model=fed_to_model)
        self.binned = first.binned
        self.numeric = _numeric(prefix.type)
        self.edges: np.ndarray | None = None
        self.missing = False
        if self.binned == "quartiles":
            values = column_to_numpy(prefix.cast(pa.float64()))
            self.edges = quartile_edges(values)
            self.low, self.high = float(np.nanmin(values)), float(np.nanmax(values))
            self.missing = bool(np.isnan(values).any())
            self.labels: list[str] = []
        else:
            self.labels = list(first.labels)
        self.index = {label: i for i, label in enumerate(self.labels)}

    def codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """Each row's group code (new values of a text or small-count column become new groups)."""
        if self.edges is not None:
            values = column_to_numpy(column.cast(pa.float64()))
            finite = values[~np.isnan(values)]
            if finite.size:
                self.low, self.high = min(self.low, float(finite.min())), max(self.high, float(finite.max()))
            self.missing = self.missing or finite.size < values.size
            return by_edges(values, self.edges)
        if self.numeric:
            column = column.cast(pa.float64())
        elif not pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        codes, labels = from_dictionary(column)
        lookup = np.array([self._code(label) for label in labels], dtype=np.int64)
        return lookup[codes] if lookup.size else codes

    def _code(self, label: str) -> int:
        code = self.index.get(label)
        if code is None:
            code = self.index[label] = len(self.labels)
            self.labels.append(label)
        return code

    def final(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The groups' labels in report order, and the remapping of the codes handed out."""
        if self.edges is not None:
            labels = quartile_labels(self.edges, self.low, self.high) + ([MISSING] if self.missing else [])
            return tuple(labels), np.arange(self.edges.size + 2)
        keys = [float(v) if v != MISSING else 0.0 for v in self.labels] if self.numeric else None
        remap, labels = sorted_groups(np.arange(len(self.labels)), list(self.labels), keys)
        return tuple(labels), remap

    def groups(self, column: pa.ChunkedArray) -> Groups:
        """The groups of some rows (the sample's), with the codes and labels of the whole file."""
        codes = self.codes(column)
        labels, remap = self.final()
        return Groups(self.name, remap[codes], labels, binned=self.binned, fed_to_model=self.fed_to_model)


@dataclass
class Decided:
    """The task decided on the rows before the switch, and what checks every later chunk."""

    task: Task
    declared_output: str | None
    target: str | None


class Tally:
    """The mergeable state, chunk by chunk (see the module)."""

    def __init__(self, decided: Decided, coders: list[GroupCoder], target_of: Callable[[pa.Table, int], np.ndarray]) -> None:
        self.decided = decided
        self.task = decided.task
        self.coders = coders
        self.target_of = target_of
        self.rows = 0
        self.cell_index: dict[int, int] = {}
        self.cell_keys: list[int] = []
        k = len(self.task.class_names)
        self.confusion = np.zeros((0, k, k), dtype=np.int64) if self.task.is_classification else None
        ranked = 0 if not self.task.is_classification else (1 if k == 2 else k)
        self.scores = tuple(ScoreBins.empty() for _ in range(ranked))
        self.sums: dict[str, float] = {}
        self.by_cell: dict[str, np.ndarray] = {}
        self.shift: float | None = None  # regression: the target's moments are taken about the first rows' mean

    # --- cells -------------------------------------------------------------------------------

    def _cells(self, table: pa.Table) -> np.ndarray:
        key = np.zeros(table.num_rows, dtype=np.int64)
        for coder in self.coders:
            codes = coder.codes(table.column(coder.name))
            if codes.size and codes.max() >= (1 << _GROUP_BITS):
                raise DataError(
                    f"The sensitive column {coder.name!r} has more than {1 << _GROUP_BITS:,} groups.",
                    hint="Audit fairness over a column with fewer distinct values (or bin it first).",
                )
            key = (key << _GROUP_BITS) | codes
        distinct, inverse = np.unique(key, return_inverse=True)
        mapping = np.empty(distinct.size, dtype=np.int64)
        for i, value in enumerate(distinct.tolist()):
            cell = self.cell_index.get(value)
            if cell is None:
                cell = self.cell_index[value] = len(self.cell_keys)
                self.cell_keys.append(value)
            mapping[i] = cell
        return mapping[inverse.reshape(-1)]

    def _per_cell(self, name: str, cell: np.ndarray, weights: np.ndarray | None) -> None:
        n = len(self.cell_keys)
        have = _padded(self.by_cell.get(name, np.zeros(0)), n)  # cells found since grow the array
        have += np.bincount(cell, weights=weights, minlength=n)
        self.by_cell[name] = have

    def _add_sum(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value

    # --- rows ----------------------------------------------------------------------------------

    def add(self, table: pa.Table, outputs: np.ndarray, first_row: int) -> None:
        """Count rows ``first_row..`` of the file: their kept columns and the model's outputs."""
        n = table.num_rows
        if n == 0:
            return
        self._check_outputs(outputs, first_row)
        cell = self._cells(table)
        self._per_cell("n", cell, None)
        predictions = read_outputs(outputs, self.task)
        y = None
        if self.decided.target is not None:
            y_raw = self.target_of(table, first_row)
            try:
                y = encode_target(y_raw, self.task, self.decided.target)
            except DataError as exc:
                raise DataError(
                    f"In data rows {first_row + 1:,}-{first_row + n:,}: {exc.message} The task was decided on the rows "
                    "read before the predictions of every row stopped fitting the memory budget.",
                    hint=exc.hint or "State the task and classes (--task, --classes) or raise --memory-budget.",
                ) from None
        if self.task.is_classification:
            assert predictions.proba is not None and predictions.label is not None
            if y is not None:
                self._add_classification(y, predictions.proba, predictions.label, cell)
        elif y is not None:
            assert predictions.value is not None
            self._add_regression(y, predictions.value, cell)
        self.rows += n

    def _check_outputs(self, outputs: np.ndarray, first_row: int) -> None:
        if not self.task.is_classification or self.task.output == "logits":
            return
        seen = classify_outputs(outputs, None, self.task.kind)
        if seen != self.task.output and self.decided.declared_output is None:
            raise DataError(
                f"The model's outputs read as {self.task.output.replace('_', '-')} on the rows before data row "
                f"{first_row + 1:,}, but not on data rows {first_row + 1:,}-{first_row + outputs.shape[0]:,} "
                f"(there they read as {seen.replace('_', '-')}).",
                hint="Declare how to read them (\"output\" in the model's metadata) or raise --memory-budget so that "
                "every row's outputs are kept and judged together.",
            )

    def _add_classification(self, y: np.ndarray, proba: np.ndarray, label: np.ndarray, cell: np.ndarray) -> None:
        assert self.confusion is not None
        k = proba.shape[1]
        n_cells = len(self.cell_keys)
        if self.confusion.shape[0] < n_cells:
            grown = np.zeros((n_cells, k, k), dtype=np.int64)
            grown[: self.confusion.shape[0]] = self.confusion
            self.confusion = grown
        flat = np.bincount((cell * k + y) * k + label, minlength=n_cells * k * k)
        self.confusion += flat.reshape(n_cells, k, k)
        columns = (1,) if k == 2 else range(k)
        for bins, c in zip(self.scores, columns):
            bins.add(y == c, proba[:, c])
        loss = row_log_loss(y, proba)
        self._add_sum("log_loss", float(loss.sum()))
        self._add_sum("log_loss_sq", float(np.dot(loss, loss)))
        if k == 2:
            brier = row_brier(y, proba)
            self._add_sum("brier", float(brier.sum()))
            self._add_sum("brier_sq", float(np.dot(brier, brier)))

    def _add_regression(self, y: np.ndarray, pred: np.ndarray, cell: np.ndarray) -> None:
        if self.shift is None:
            self.shift = float(y.mean())
        error = pred - y
        absolute = np.abs(error)
        square = error * error
        d = y - self.shift
        d2 = d * d
        for name, values in (("abs_error", absolute), ("abs_error_sq", square), ("prediction", pred),
                             ("prediction_sq", pred * pred), ("target", y)):
            self._per_cell(name, cell, values)
        self._add_sum("abs_error", float(absolute.sum()))
        self._add_sum("sq_error", float(square.sum()))
        self._add_sum("sq_error_sq", float(np.dot(square, square)))
        self.sums["max_error"] = max(self.sums.get("max_error", 0.0), float(absolute.max()))
        for power, values in ((1, d), (2, d2), (3, d2 * d), (4, d2 * d2)):
            self._add_sum(f"target_d{power}", float(values.sum()))
        self._add_sum("sq_error_d1", float(np.dot(square, d)))
        self._add_sum("sq_error_d2", float(np.dot(square, d2)))
        zero = y == 0
        self._add_sum("target_zeros", float(zero.sum()))
        if not zero.all():
            ape = absolute[~zero] / np.abs(y[~zero])
            self._add_sum("ape", float(ape.sum()))
            self._add_sum("ape_sq", float(np.dot(ape, ape)))

    # --- the result ----------------------------------------------------------------------------

    def result(self, sample: np.ndarray) -> Tallies:
        """The contract's :class:`Tallies`, with the cells' group codes in the report's order."""
        n_cells = len(self.cell_keys)
        cells = np.zeros((n_cells, len(self.coders)), dtype=np.int64)
        keys = np.array(self.cell_keys, dtype=np.int64)
        for j, coder in reversed(list(enumerate(self.coders))):
            _, remap = coder.final()
            cells[:, j] = remap[keys & ((1 << _GROUP_BITS) - 1)]
            keys = keys >> _GROUP_BITS
        by_cell = {name: _padded(values, n_cells) for name, values in self.by_cell.items()}
        confusion = None
        if self.confusion is not None:
            k = self.confusion.shape[1]
            confusion = np.zeros((n_cells, k, k), dtype=np.int64)
            confusion[: self.confusion.shape[0]] = self.confusion
        sums = dict(self.sums)
        if self.shift is not None:
            sums["target_shift"] = self.shift
        return Tallies(rows=self.rows, sample=sample, cells=cells, confusion=confusion, scores=self.scores,
                       sums=sums, by_cell=by_cell)


def _padded(values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[: values.size] = values
    return out


def describe(tallies: Tallies, switched_at: int) -> dict[str, Any]:
    """What the report's ``run.engine.data.binned`` says of the tallies."""
    from auditor.stats.binned import BINS, LOGIT_RANGE

    return {
        "rows": tallies.rows, "sample_rows": int(tallies.sample.size), "from_row": switched_at,
        "cells": int(tallies.cells.shape[0]), "score_bins": BINS,
        "score_bins_cover": f"logit of the score in [-{LOGIT_RANGE:g}, {LOGIT_RANGE:g}], equal steps",
        "why": "every row's outputs, labels and groups exceed a quarter of the memory budget",
    }
