"""``make_context``: a real :class:`~auditor.contract.context.AuditContext` built from arrays.

A plugin author's unit test needs a context without writing a model file and a CSV: the
labels, the model's predictions (probabilities, predicted labels or regression values), the
features, the sensitive groups and, when the audit runs the model on new inputs, the model
itself. Everything is checked the way the loader checks a file (one row per example, class
indices in range, probability rows summing to 1, ...) and a mistake raises a one-line
:class:`~auditor.contract.errors.UsageError` naming the argument, what it got and the fix.

The objects are the real ones the run builds, made the same way:

- sensitive groups go through :func:`auditor.loading.groups.groups_from_column`, so a numeric
  column with many values is cut at its quartiles and missing values form ``"(missing)"``;
- the target is encoded by :func:`auditor.run.task.encode_target` (class indices, or values
  found in ``class_names``), as the training data's target is in a run;
- with ``model=`` and no predictions given, the predictions come from one batched pass of the
  model over ``X`` (:func:`auditor.run.inference.run_inference`) read by
  :func:`auditor.run.task.infer_task`, exactly as ``audit`` computes them; ``ctx.infer`` runs
  the model over new rows the same way. Without a model ``ctx.infer`` is None (the runner then
  skips audits that need ``model``) and ``ctx.model.module`` is a module that refuses to run.

torch is imported only when a context is built, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor.contract.context import (
    AuditContext,
    Dataset,
    Groups,
    History,
    Predictions,
    Task,
    TaskKind,
    TrainData,
)
from auditor.contract.errors import UsageError

if TYPE_CHECKING:
    from auditor.loading.model import LoadedModel

#: How far a row of ``proba`` may sum from 1 (float32 probabilities are accepted).
PROBA_TOLERANCE = 1e-4
#: ``Dataset.path`` and the model's path in a context that no file stands behind.
IN_MEMORY = "<in-memory>"
#: ``LoadedModel.format`` of a module given as an object (the Python API uses the same words).
MODULE_FORMAT = "in-memory module"
#: The name of the target column in a context built from arrays.
TARGET = "target"

_TASKS = ("binary", "multiclass", "regression")


def _bad(argument: str, expected: str, got: str, fix: str) -> UsageError:
    """The one message template: what the argument must be, what it was, how to fix it."""
    return UsageError(f"make_context: {argument!r} must be {expected}; got {got}.", hint=fix)


def _shape(array: np.ndarray) -> str:
    return f"an array of shape {tuple(array.shape)}"


def _array(argument: str, value: Any, *, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    """``value`` as a numpy array of one of the allowed dimensions."""
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if array.ndim not in ndim:
        wanted = " or ".join(f"{d}-D" for d in ndim)
        raise _bad(argument, f"a {wanted} array (one entry per row)", _shape(array),
                   "Pass one value per row, e.g. a list or a numpy array.")
    return array


def _numeric(argument: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "iufb":
        raise _bad(argument, "numbers", f"values of dtype {array.dtype}", "Pass a numeric array.")
    as_float = array.astype(np.float64)
    if not np.all(np.isfinite(as_float)):
        bad = int(np.argmax(~np.isfinite(as_float.reshape(len(as_float), -1)).any(axis=1)))
        raise _bad(argument, "finite numbers", f"NaN or infinity at row {bad}",
                   "Drop or fill the rows without a value, as the loader requires of a data file.")
    return array


def _rows(counts: Mapping[str, int]) -> int:
    """The one row count every per-row argument shares, or an error naming two that differ."""
    if not counts:
        raise UsageError(
            "make_context: no rows: give at least one of y, proba, labels, values or X.",
            hint="Pass the model's predictions (proba=, labels= or values=) and usually the target (y=).",
        )
    (first, n), *rest = counts.items()
    for name, m in rest:
        if m != n:
            raise UsageError(
                f"make_context: {name!r} has {m:,} rows but {first!r} has {n:,}; every per-row argument needs one "
                "entry per row.",
                hint="Pass arrays of the same length (the same rows, in the same order).",
            )
    if n == 0:
        raise UsageError(f"make_context: {first!r} has no rows; a context needs at least one.",
                         hint="Pass at least one row.")
    return n


def _class_names(class_names: Sequence[Any] | None, k: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(i) for i in range(k))
    names = tuple(str(c) for c in class_names)
    if len(names) != k:
        raise _bad("class_names", f"{k} names, one per class (column of proba)", f"{len(names)}: {names[:6]}",
                   "Give one name per class, in the order of proba's columns.")
    if len(set(names)) != k:
        raise _bad("class_names", "distinct names", repr(names[:10]), "Give each class its own name.")
    return names


def _check_task(task: str | None, inferred: TaskKind) -> TaskKind:
    if task is None:
        return inferred
    if task not in _TASKS:
        raise _bad("task", "binary, multiclass, regression or None (inferred)", repr(task),
                   "Leave it out: it is inferred from proba's width, or regression from values.")
    if task != inferred:
        why = {
            "binary": "proba with 2 columns (or a 1-D positive-class probability)",
            "multiclass": "proba with 3 or more columns (or class_names with 3 or more names)",
            "regression": "values= (the predicted numbers) instead of proba=/labels=",
        }[task]
        raise _bad("task", f"consistent with the predictions given ({inferred}, from their shape)", repr(task),
                   f"A {task} context needs {why}.")
    return inferred


def _probabilities(proba: Any) -> np.ndarray:
    """``proba`` as float64 (rows x K, K >= 2), checked like a model's probability outputs."""
    array = _numeric("proba", _array("proba", proba, ndim=(1, 2))).astype(np.float64)
    if array.ndim == 1 or array.shape[1] == 1:
        p1 = array.reshape(-1)
        array = np.column_stack([1.0 - p1, p1])
    if np.any(array < 0) or np.any(array > 1):
        row = int(np.argmax(((array < 0) | (array > 1)).any(axis=1)))
        raise _bad("proba", "probabilities between 0 and 1", f"{array[row].tolist()} at row {row}",
                   "Pass probabilities (apply softmax or a sigmoid to logits first).")
    sums = array.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBA_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise _bad("proba", "rows that sum to 1 (one probability per class)", f"a row summing to {sums[row]:.6g} "
                   f"at row {row}", "Normalise each row, or pass a 1-D positive-class probability for binary.")
    return array / sums[:, None]


def _labels(labels: Any, k: int | None) -> np.ndarray:
    array = _numeric("labels", _array("labels", labels))
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        raise _bad("labels", "class indices (integers)", f"{array[np.mod(array, 1) != 0][0]!r}",
                   "Pass the predicted class's index (0 .. K-1), e.g. proba.argmax(axis=1).")
    out = array.astype(np.int64)
    if out.size and (out.min() < 0 or (k is not None and out.max() >= k)):
        top = "" if k is None else f" .. {k - 1}"
        bad = out[(out < 0) | (out >= (k or np.iinfo(np.int64).max))][0]
        raise _bad("labels", f"class indices 0{top}", f"{int(bad)}",
                   "Pass the index of each predicted class, in the order of class_names.")
    return out


class _NoModel:
    """The model of a context built without one: calling it says how to give one."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UsageError(
            "This context was built by make_context without a model, so nothing can run on new inputs.",
            hint="Pass model=<an nn.Module> (and X=) to make_context, and declare the need 'model' in the audit.",
        )

    def __repr__(self) -> str:
        return "<no model: built by make_context without model=>"


def _state_sha256(module: Any) -> str:
    """sha256 of the module's parameters and buffers (names, dtypes, shapes and bytes), in order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _loaded_model(model: Any) -> LoadedModel:
    from auditor.loading.model import LoadedModel

    if model is None:
        return LoadedModel(module=_NoModel(), format="none", path=Path(IN_MEMORY), sha256=hashlib.sha256().hexdigest(),
                           size_bytes=0, trust="no model: make_context was given none")
    import torch

    if not isinstance(model, torch.nn.Module):
        raise _bad("model", "a torch.nn.Module (or TorchScript module) or None", type(model).__name__,
                   "Pass the model object itself, e.g. make_context(model=net, X=X, y=y).")
    model.eval()
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return LoadedModel(module=model, format=MODULE_FORMAT, path=Path(IN_MEMORY), sha256=_state_sha256(model),
                       size_bytes=int(size), metadata={"name": type(model).__name__},
                       trust="an object in the test's own process: nothing was loaded from a file")


def _features(X: Any, feature_names: Sequence[str] | None, n: int | None) -> tuple[np.ndarray, list[str]]:
    if X is None:
        if feature_names:
            raise _bad("feature_names", "given only with X", f"{len(feature_names)} names and no X",
                       "Pass X (rows x features) too, or leave feature_names out.")
        return np.zeros((n or 0, 0), np.float32), []
    array = _numeric("X", _array("X", X, ndim=(2,)))
    names = [f"f{i}" for i in range(array.shape[1])] if feature_names is None else [str(f) for f in feature_names]
    if len(names) != array.shape[1]:
        raise _bad("feature_names", f"{array.shape[1]} names, one per column of X", f"{len(names)}",
                   "Give one name per feature column, in order.")
    if len(set(names)) != len(names):
        raise _bad("feature_names", "distinct names", repr(names[:10]), "Give each feature its own name.")
    return np.asfortranarray(array, dtype=np.float32), names


def _groups(groups: Mapping[str, Any] | None, features: Sequence[str], n: int) -> dict[str, Groups]:
    """Each sensitive column's groups, built by the loader's own function."""
    import pyarrow as pa

    from auditor.loading.groups import groups_from_column

    out: dict[str, Groups] = {}
    for name, values in (groups or {}).items():
        if isinstance(values, Groups):
            built = values
        else:
            array = _array(f"groups[{name!r}]", values)
            try:
                column = pa.chunked_array([pa.array(array, from_pandas=True)])
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise _bad(f"groups[{name!r}]", "one label per row (text, numbers or None)",
                           f"values arrow cannot hold ({exc})", "Pass plain strings or numbers.") from None
            built = groups_from_column(str(name), column, fed_to_model=str(name) in features)
        if len(built.codes) != n:
            raise UsageError(f"make_context: groups[{name!r}] has {len(built.codes):,} rows but the other "
                             f"arguments have {n:,}; every per-row argument needs one entry per row.",
                             hint="Pass one group label per row.")
        out[str(name)] = built
    return out


def _history(history: Any) -> History | None:
    """A :class:`History`, or one built from ``{series name: one value per epoch}``."""
    if history is None or isinstance(history, History):
        return history
    from auditor.loading.history import build_history

    if not isinstance(history, Mapping) or not history:
        raise _bad("history", "a History or a mapping of series name -> one value per epoch",
                   type(history).__name__, 'Pass e.g. {"train_loss": [...], "val_loss": [...]}.')
    series = {str(k): _array(f"history[{k!r}]", v).astype(np.float64) for k, v in history.items()}
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise _bad("history", "series of one common, non-zero length (one value per epoch)",
                   f"lengths {sorted(lengths)}", "Pad a series that lacks an epoch with NaN.")
    epochs = np.arange(1, lengths.pop() + 1)
    return build_history(Path("history"), "json", epochs, {k: (epochs, v) for k, v in series.items()}, list(series))


class _Built:
    """One dataset's predictions, target and features (the audit data's or the training data's)."""

    def __init__(self, predictions: Predictions, task: Task, y: np.ndarray | None, X: np.ndarray) -> None:
        self.predictions, self.task, self.y, self.X = predictions, task, y, X


def _predict(
    *,
    y: Any,
    proba: Any,
    labels: Any,
    values: Any,
    X: np.ndarray,
    run: Any,
    task: str | None,
    class_names: Sequence[Any] | None,
    fixed: Task | None,
) -> _Built:
    """Predictions and the task from arrays, or from one pass of the model (``run``) over ``X``.

    ``fixed`` is the audit data's task when these are the training data's: they must agree.
    """
    from auditor.run.task import infer_task, read_outputs

    given = [name for name, v in (("proba", proba), ("labels", labels), ("values", values)) if v is not None]
    if values is not None and given != ["values"]:
        raise _bad(" and ".join(given), "either values (regression) or proba/labels (classification), not both",
                   "both", "Pass values= for a regression model, proba= and/or labels= for a classifier.")
    y_raw = None if y is None else _array("y", y)
    if not given:
        if run is None:
            raise UsageError(
                "make_context: no predictions: give proba= or labels= (a classifier), values= (a regressor), "
                "or model= with X= to compute them.",
                hint="e.g. make_context(y=[0, 1, 1], proba=[0.2, 0.9, 0.6]).",
            )
        if X.shape[1] == 0:
            raise _bad("X", "the features to run the model on", "no X", "Pass X= (rows x features) with model=.")
        outputs = run(X)
        if fixed is not None:  # the training data, read as the audit data was
            if outputs.shape[1] != fixed.n_outputs:
                raise _bad("train['X']", f"rows the model gives {fixed.n_outputs} outputs for, as on X",
                           f"{outputs.shape[1]} outputs", "Give the training data the audit data's features.")
            encoded = None if y_raw is None else _target(y_raw, fixed)
            return _Built(read_outputs(outputs, fixed), fixed, encoded, X)
        names = None if class_names is None else [str(c) for c in class_names]
        found, encoded = infer_task(outputs, y_raw, requested=task or "auto", classes=names, target=TARGET)
        return _Built(read_outputs(outputs, found), found, encoded, X)

    if values is not None:
        kind = _check_task(task if fixed is None else fixed.kind, "regression")
        value = _numeric("values", _array("values", values)).astype(np.float64)
        found = fixed or Task(kind=kind, class_names=(), output="values", n_outputs=1)
        predictions = Predictions(raw=value[:, None].astype(np.float32), value=value)
    else:
        p = None if proba is None else _probabilities(proba)
        if p is not None:
            k: int | None = p.shape[1]
        elif fixed is not None:
            k = len(fixed.class_names)
        else:
            k = None if class_names is None else len(class_names)
        label = _labels(labels, k) if labels is not None else None
        if k is None:  # labels only: as many classes as the labels (and an integer target) show
            assert label is not None
            top = int(label.max())
            if y_raw is not None and y_raw.dtype.kind in "iu" and y_raw.size:
                top = max(top, int(y_raw.max()))
            k = max(3 if task == "multiclass" else 2, top + 1)
        if p is None:
            assert label is not None
            p = np.eye(k)[label]  # hard predictions: probability 1 for the predicted class
        if fixed is not None and p.shape[1] != len(fixed.class_names):
            raise _bad("train", f"predictions over the same {len(fixed.class_names)} classes as the audit data",
                       f"{p.shape[1]} columns", "Give the training data's proba with one column per class.")
        argmax = p.argmax(axis=1)
        if label is None:
            label = argmax
        else:
            top_two = np.sort(p, axis=1)[:, -2:]
            clear = top_two[:, 1] > top_two[:, 0]  # rows whose highest probability is unique
            wrong = clear & (label != argmax)
            if wrong.any():
                row = int(np.argmax(wrong))
                raise _bad("labels", "the class of highest probability in proba, as a run predicts it",
                           f"{int(label[row])} at row {row}, where proba's highest is class {int(argmax[row])}",
                           "Leave labels out (they are proba's argmax), or fix the rows that disagree.")
        kind = _check_task(task if fixed is None else fixed.kind, "binary" if k == 2 else "multiclass")
        found = fixed or Task(kind=kind, class_names=_class_names(class_names, k), output="probabilities",
                              n_outputs=k)
        predictions = Predictions(raw=p.astype(np.float32), proba=p, label=label.astype(np.int64))
    return _Built(predictions, found, None if y_raw is None else _target(y_raw, found), X)


def _target(y_raw: np.ndarray, task: Task) -> np.ndarray:
    """The target encoded for ``task`` as the run encodes one (class indices, or float64)."""
    from auditor.contract.errors import DataError
    from auditor.run.task import encode_target

    if task.kind == "regression":
        _numeric("y", y_raw)
    try:
        return encode_target(y_raw, task, TARGET)
    except DataError as exc:  # a value that is no class, text for regression
        expected = (f"class indices 0 .. {len(task.class_names) - 1} or names from class_names"
                    if task.is_classification else "numbers")
        raise _bad("y", f"the target of a {task.kind} task: {expected}", exc.message,
                   "Check y against the predictions' classes (or pass class_names=).") from None


def _dataset(built: _Built, features: list[str], extra: Sequence[str], named: Mapping[str, np.ndarray]) -> Dataset:
    digest = hashlib.sha256(np.ascontiguousarray(built.X).tobytes())
    if built.y is not None:
        digest.update(np.ascontiguousarray(built.y).tobytes())
    columns = list(dict.fromkeys([*features, *([TARGET] if built.y is not None else []), *extra, *named]))
    return Dataset(path=IN_MEMORY, sha256=digest.hexdigest(), n_rows=len(built.predictions.raw), columns=columns,
                   feature_names=list(features), X=built.X, target_name=TARGET if built.y is not None else None,
                   y=built.y, named=dict(named))


def _named(named: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    return {str(k): _array(f"named[{k!r}]", v) for k, v in (named or {}).items()}


def make_context(
    *,
    y: Any = None,
    proba: Any = None,
    labels: Any = None,
    values: Any = None,
    X: Any = None,
    feature_names: Sequence[str] | None = None,
    groups: Mapping[str, Any] | None = None,
    model: Any = None,
    task: str | None = None,
    class_names: Sequence[Any] | None = None,
    seed: int = 0,
    history: History | Mapping[str, Any] | None = None,
    train: TrainData | Mapping[str, Any] | None = None,
    named: Mapping[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
) -> AuditContext:
    """A validated :class:`AuditContext` from arrays, for an audit's unit tests (no files).

    ``y``
        the target: class indices ``0 .. K-1`` or names from ``class_names`` (classification),
        numbers (regression); None for a context without a target.
    ``proba``
        class probabilities, rows x K (K >= 2; rows sum to 1), or 1-D: the positive class's
        probability of a binary model.
    ``labels``
        predicted class indices; with ``proba`` they must be its argmax (ties aside); alone they
        are hard predictions (probability 1 for the predicted class).
    ``values``
        a regression model's predictions (instead of ``proba``/``labels``).
    ``X``, ``feature_names``
        the features, rows x features (names default to ``f0 .. f{n-1}``); without ``X`` the
        dataset has no feature columns.
    ``groups``
        sensitive columns: name -> one label per row (text, numbers, None for missing), grouped
        as the loader groups a data column; or a ready :class:`Groups`.
    ``model``
        an ``nn.Module``: ``ctx.infer`` runs it over new rows (batched, like the real run); when
        no predictions are given they come from one pass over ``X``. Put in eval mode.
    ``task``
        ``binary``, ``multiclass`` or ``regression``; inferred when None (from ``proba``'s width,
        or ``values``); a task that contradicts the predictions is an error.
    ``class_names``
        one name per class (default ``"0" .. "K-1"``).
    ``seed``
        ``ctx.seed``.
    ``history``
        a :class:`History`, or ``{series name: one value per epoch}`` (``train_loss``/``val_loss``
        and the loader's other names are recognised as the losses).
    ``train``
        the training data: a :class:`TrainData`, or a mapping with the keys ``y``, ``X`` and
        ``proba``/``labels``/``values`` (predictions computed by ``model`` when left out), in
        the audit data's task, classes and features.
    ``named``
        columns that ``column`` options name: name -> values as a file would hold them.
    ``input_shape``
        how each flat row is reshaped for the model (``ctx.input_shape``), e.g. ``(1, 8, 8)``.

    Raises :class:`~auditor.contract.errors.UsageError` (one line: the argument, what it must
    be, what it got) for inconsistent inputs.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _bad("seed", "an int", repr(seed), "Pass e.g. seed=0.")
    loaded = _loaded_model(model)
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    infer = None
    if model is not None:
        import torch

        from auditor.run.inference import run_inference

        infer = partial(run_inference, model, device=torch.device("cpu"), input_shape=shape)
    named_columns = _named(named)
    counts: dict[str, int] = {}
    for name, value in (("y", y), ("proba", proba), ("labels", labels), ("values", values), ("X", X)):
        if value is not None:
            counts[name] = len(_array(name, value, ndim=(1, 2)))
    counts.update({f"named[{k!r}]": len(v) for k, v in named_columns.items()})
    n = _rows(counts)
    X_array, features = _features(X, feature_names, n)
    built = _predict(y=y, proba=proba, labels=labels, values=values, X=X_array, run=infer, task=task,
                     class_names=class_names, fixed=None)
    passes = 1 if infer is not None and proba is None and labels is None and values is None else 0
    sensitive = _groups(groups, features, n)
    train_data: TrainData | None = None
    if isinstance(train, TrainData) or train is None:
        train_data = train
    elif isinstance(train, Mapping):
        unknown = sorted(set(train) - {"y", "X", "proba", "labels", "values"})
        if unknown:
            raise _bad("train", "a mapping with the keys y, X, proba, labels, values", f"the keys {unknown}",
                       "Give the training data's arrays under those keys (or a TrainData).")
        t_X, _ = _features(train.get("X"), features if train.get("X") is not None else None,
                           len(_array("train['y']", train["y"])) if train.get("y") is not None else None)
        if t_X.shape[1] != X_array.shape[1]:
            raise _bad("train['X']", f"{X_array.shape[1]} feature columns, as X has", f"{t_X.shape[1]}",
                       "Give the training data the audit data's features, in the same order.")
        t_built = _predict(y=train.get("y"), proba=train.get("proba"), labels=train.get("labels"),
                           values=train.get("values"), X=t_X, run=infer, task=None, class_names=None,
                           fixed=built.task)
        if train.get("proba") is None and train.get("labels") is None and train.get("values") is None:
            passes += 1
        train_data = TrainData(data=_dataset(t_built, features, [], {}), predictions=t_built.predictions)
    else:
        raise _bad("train", "a TrainData or a mapping of arrays", type(train).__name__,
                   'Pass e.g. train={"y": y_train, "proba": proba_train}.')
    return AuditContext(
        model=loaded,
        data=_dataset(built, features, [g for g in sensitive if g not in features], named_columns),
        task=built.task,
        predictions=built.predictions,
        seed=seed,
        device="cpu",
        forward_passes=max(passes, 1),
        sensitive=sensitive,
        history=_history(history),
        train=train_data,
        input_shape=shape,
        infer=infer,
    )
