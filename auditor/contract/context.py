"""The audit context: the model, the data and the predictions, computed once and shared.

Audits read what they need from here and never re-run the inference it holds (perturbing
inputs goes through ``infer``). The fields below are the whole public surface for plugin
authors; ``tests/test_conformance.py`` checks that this docstring and the dataclasses agree.

``AuditContext``
    ``model`` (:class:`auditor.loading.model.LoadedModel`), ``data`` (:class:`Dataset`),
    ``task`` (:class:`Task`), ``predictions`` (:class:`Predictions`), ``seed`` (int),
    ``device`` (str, e.g. ``"cpu"`` or ``"cuda:0"``), ``forward_passes`` (int: how many
    times the model was run over the data; one per dataset), ``sensitive`` (dict of
    :class:`Groups` by column name, in the order the user named them; empty when none),
    ``history`` (:class:`History` from ``--history``, or None), ``train`` (:class:`TrainData`
    from ``--train-data``, or None), ``input_shape`` (tuple of int from ``--input-shape`` or
    the model's metadata, or the shape an image folder or array file holds: how each flat row
    is reshaped for the model; None when rows go in flat), ``input_dtype`` (``"float32"``, or
    ``"int64"`` when the model takes token ids: ``X`` then carries them as exact float32 and
    ``infer`` gives them as integers), ``text`` (:class:`TokenText` when the ids come from a text
    column, ``--text``: what each id reads as; else None), ``trainer`` (:class:`auditor.run.retrain.Trainer` from ``--trainer``, or None: the
    user's training function, for audits that retrain), ``progress`` (a callable
    ``progress(description, total)`` returning a context manager that yields
    ``advance(n)``: a progress bar for slow work; silent under ``--quiet`` and in tests),
    ``infer`` (a callable ``infer(X) -> raw outputs`` running the model over *new* rows, float32
    rows x features, with the batching, device and ``input_shape`` of the one pass, for audits
    that must perturb inputs, such as permutation importance; None when no model can be run),
    ``measure`` (a callable ``measure(name)`` returning a context manager: marks a part of an
    audit whose energy is worth its own line, such as retraining; it is measured when an
    audit needing ``energy`` runs, and costs nothing otherwise), ``energy``
    (:class:`auditor.run.energy.Measurement` of the run so far, given only to audits that
    declare the need ``energy``, which run after all the others; else None), ``tallies``
    (:class:`Tallies`, or None: set when every row's predictions exceeded the memory budget;
    ``data``, ``predictions`` and ``sensitive`` then hold a seeded sample of rows, and
    ``tallies`` the mergeable state of every row). And one shared
    computation, not a field: ``ranked_scores`` (classification with a target: the scores the
    ranking metrics read, each split by label and sorted once per run, a tuple of
    :class:`auditor.stats.bootstrap.RankedScores`: the positive class's for binary, every
    class's one-vs-rest for multiclass; the metrics and crossval audits share it).

``Tallies``
    The mergeable state of every row, kept instead of their predictions when those exceed the
    memory budget (:mod:`auditor.run.tally`); only audits that set ``reads_tallies`` read it,
    the others run on the sample and their results say so. ``rows`` (int: every data row),
    ``sample`` (int64: the data rows, ascending, that the context's per-row arrays hold),
    ``cells`` (int64, cells x sensitive columns: each combination of groups that occurs, as
    codes of ``sensitive``'s groups in its order; one cell of no columns when there are no
    sensitive columns), ``confusion`` (int64, cells x K x K, rows = true class, or None for
    regression or without a target), ``scores`` (tuple of
    :class:`auditor.stats.binned.ScoreBins`, one per ranked column as for ``ranked_scores``),
    ``sums`` (dict of float: ``log_loss``, ``brier`` and their ``_sq`` sums of squares;
    regression: ``abs_error``, ``sq_error``, ``sq_error_sq``, ``max_error``, ``ape``,
    ``ape_sq``, ``target_zeros``, and the target's moments about ``target_shift``:
    ``target_d1``..``target_d4``, ``sq_error_d1``, ``sq_error_d2``), ``by_cell`` (dict of
    float64 arrays, one value per cell: ``n``; regression also ``abs_error``,
    ``abs_error_sq``, ``prediction``, ``prediction_sq``, ``target``).

``History``
    A training history, one entry per epoch: ``source`` (the file or folder name),
    ``format`` (``csv``, ``lightning_csv``, ``json``, ``keras_json`` or ``tensorboard``),
    ``epochs`` (int64, ascending), ``series`` (every logged per-epoch quantity by its name
    in the log, float64, NaN where an epoch has no value), ``train_loss`` and ``val_loss``
    (the keys of ``series`` recognised as the training and validation loss, or None),
    ``seconds`` (float64 seconds per epoch when the log has them, else None).

``TrainData``
    The training data run through the same one-pass inference: ``data`` (:class:`Dataset`,
    with ``y`` encoded like the audit data's) and ``predictions`` (:class:`Predictions`), and
    ``tallies`` (:class:`Tallies`, or None: set when every training row's predictions exceeded
    the memory budget; ``data`` and ``predictions`` then hold a seeded sample of its rows).

``TokenText``
    How a model that takes token ids reads its text: ``column`` (the text column's name),
    ``pad_id`` (int: the id that pads every text to the declared length), ``vocabulary``
    (tuple of str: ``vocabulary[i]`` is id i's token as the tokenizer writes it, ``""`` for an
    id it lacks).

``Groups``
    ``column`` (the sensitive column's name), ``codes`` (int64 array, one group index per
    row), ``labels`` (tuple of str: ``labels[i]`` names group i; missing values form the
    group ``"(missing)"``), ``binned`` (str or None: how a numeric column with many values
    was cut into groups, e.g. ``"quartiles"``), ``fed_to_model`` (bool: the column is also
    one of the model's features).

``Dataset``
    ``path``, ``sha256``, ``n_rows``, ``columns`` (every column in the file, in order),
    ``feature_names`` (fed to the model, in order), ``X`` (float32 array, rows x features,
    before any ``--input-shape`` reshape; column-major in memory), ``target_name`` (or None), ``y`` (int64 class
    indices for classification, float64 for regression, or None), ``named`` (dict: the
    columns that audit options of type ``column`` name, e.g. ``crossval.group``, by column
    name, values as the file holds them, numbers or text; empty when none), ``rows`` (None
    when ``X`` holds every row; else the data rows, ascending, whose features ``X`` holds: a
    seeded sample, kept because the features of all rows exceed the memory budget. Only
    audits that declare the need ``features`` read ``X``, and they are given a context
    restricted to those rows, see :func:`auditor.run.runner.run_audits`), ``labels`` (the
    labels table an image folder came with, ``--labels``, or None), ``text`` (the column
    given to the model as token ids, ``--text``, or None).

``Task``
    ``kind`` (``binary``, ``multiclass`` or ``regression``), ``class_names`` (tuple of str,
    index i is the model's output i; empty for regression), ``output`` (how the raw outputs
    were read: ``logits``, ``probabilities``, ``log_probabilities`` or ``values``),
    ``n_outputs`` (the model's output width).

``Predictions``
    ``raw`` (float32, rows x n_outputs, exactly as the model returned them), ``proba``
    (float64, rows x K, class probabilities; binary has K = 2 with column 1 the positive
    class; None for regression), ``label`` (int64 predicted class index, or None),
    ``value`` (float64 regression predictions, or None); ``take(rows)`` gives those of
    some rows only.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable, ContextManager, Literal

import numpy as np

if TYPE_CHECKING:
    from auditor.loading.model import LoadedModel
    from auditor.run.energy import Measurement
    from auditor.run.retrain import Trainer
    from auditor.stats.binned import ScoreBins
    from auditor.stats.bootstrap import RankedScores

#: ``progress(description, total)``: a context manager yielding ``advance(n)``.
ProgressStep = Callable[[str, "int | None"], ContextManager[Callable[[int], None]]]


def _silent_progress(description: str, total: int | None = None) -> ContextManager[Callable[[int], None]]:
    return nullcontext(lambda advance: None)


def _unmeasured(name: str) -> ContextManager[None]:
    return nullcontext()

TaskKind = Literal["binary", "multiclass", "regression"]
OutputKind = Literal["logits", "probabilities", "log_probabilities", "values"]


@dataclass
class Dataset:
    path: str
    sha256: str
    n_rows: int
    columns: list[str]
    feature_names: list[str]
    X: np.ndarray
    target_name: str | None = None
    y: np.ndarray | None = None
    named: dict[str, np.ndarray] = field(default_factory=dict)
    rows: np.ndarray | None = None
    labels: str | None = None  # the labels table an image folder came with (--labels)
    text: str | None = None  # the column given to the model as token ids (--text)


@dataclass(frozen=True)
class Task:
    kind: TaskKind
    class_names: tuple[str, ...]
    output: OutputKind
    n_outputs: int

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"


@dataclass
class Predictions:
    raw: np.ndarray
    proba: np.ndarray | None = None
    label: np.ndarray | None = None
    value: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Predictions:
        """The predictions of ``rows`` only (e.g. a sample)."""
        return Predictions(
            raw=self.raw[rows],
            proba=None if self.proba is None else self.proba[rows],
            label=None if self.label is None else self.label[rows],
            value=None if self.value is None else self.value[rows],
        )


@dataclass(frozen=True)
class TokenText:
    column: str
    pad_id: int
    vocabulary: tuple[str, ...]


@dataclass(frozen=True)
class Groups:
    column: str
    codes: np.ndarray
    labels: tuple[str, ...]
    binned: str | None = None
    fed_to_model: bool = False

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.labels))


@dataclass(frozen=True)
class History:
    source: str
    format: str
    epochs: np.ndarray
    series: dict[str, np.ndarray]
    train_loss: str | None = None
    val_loss: str | None = None
    seconds: np.ndarray | None = None


@dataclass
class Tallies:
    rows: int
    sample: np.ndarray
    cells: np.ndarray
    confusion: np.ndarray | None
    scores: tuple[ScoreBins, ...]
    sums: dict[str, float]
    by_cell: dict[str, np.ndarray]


@dataclass
class TrainData:
    data: Dataset
    predictions: Predictions
    tallies: Tallies | None = None


@dataclass
class AuditContext:
    model: LoadedModel
    data: Dataset
    task: Task
    predictions: Predictions
    seed: int = 0
    device: str = "cpu"
    forward_passes: int = 1
    sensitive: dict[str, Groups] = field(default_factory=dict)
    history: History | None = None
    train: TrainData | None = None
    input_shape: tuple[int, ...] | None = None
    input_dtype: str = "float32"  # "int64": the model takes integers (token ids), carried in X as exact float32
    text: TokenText | None = None
    trainer: Trainer | None = None
    progress: ProgressStep = _silent_progress
    infer: Callable[[np.ndarray], np.ndarray] | None = None
    measure: Callable[[str], ContextManager[None]] = _unmeasured
    energy: Measurement | None = None
    tallies: Tallies | None = None

    @property
    def has_target(self) -> bool:
        return self.data.y is not None

    @cached_property
    def ranked_scores(self) -> tuple[RankedScores, ...]:
        """The class scores split by label and sorted once (see the module); a context made
        by :func:`dataclasses.replace` (another set of rows) ranks its own."""
        from auditor.stats.metrics import ranked_columns

        if self.data.y is None or self.predictions.proba is None:
            raise ValueError("ranked_scores needs a classification target and class probabilities")
        return ranked_columns(np.asarray(self.data.y), self.predictions.proba)
