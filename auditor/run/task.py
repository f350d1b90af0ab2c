"""Decide the task from the model's outputs and the target, and read the outputs.

- one output and a two-valued target: binary, on a logit or a probability;
- K >= 2 outputs: classification over K classes (binary when K = 2);
- one output and a continuous target: regression.

Whether outputs are logits, probabilities or log-probabilities is detected from their
values (and can be declared in the model's metadata as ``"output"``), never assumed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from auditor.contract.context import OutputKind, Predictions, Task, TaskKind
from auditor.contract.errors import DataError, UsageError

_PROB_TOLERANCE = 1e-3


def _as_labels(values: np.ndarray) -> np.ndarray:
    """Target values as strings, integers printed without a trailing '.0'."""
    if values.dtype.kind in "iub":
        return values.astype(np.int64).astype(str)
    if values.dtype.kind == "f":
        if np.all(np.mod(values, 1) == 0):
            return values.astype(np.int64).astype(str)
        return values.astype(str)
    return values.astype(str)


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iufb"


def classify_outputs(raw: np.ndarray, declared: str | None, kind: TaskKind) -> OutputKind:
    if declared in ("logits", "probabilities", "log_probabilities"):
        return declared  # type: ignore[return-value]
    if declared is not None:
        raise UsageError(
            f"The model's metadata says output={declared!r}; expected logits, probabilities or "
            "log_probabilities."
        )
    if kind == "binary" and raw.shape[1] == 1:
        inside = bool(np.all((raw >= 0) & (raw <= 1)))
        return "probabilities" if inside else "logits"
    if np.all(raw >= 0) and np.allclose(raw.sum(axis=1, dtype=np.float64), 1.0, atol=_PROB_TOLERANCE):
        return "probabilities"
    if np.all(raw <= 0):
        sums = np.exp(raw.astype(np.float64)).sum(axis=1)
        if np.allclose(sums, 1.0, atol=_PROB_TOLERANCE):
            return "log_probabilities"
    return "logits"


def output_kind(raw: np.ndarray, task: Task) -> OutputKind:
    """How to read another model's outputs for this task (a retrained model's): as the
    audited model's when the values can be that (any values can be logits), else as the
    values say."""
    if task.output == "logits":
        return "logits"
    detected = classify_outputs(raw, None, task.kind)
    return task.output if detected == task.output else detected


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (as label strings) and each row's index into them, without stringifying every row."""
    if _is_numeric(values):
        uniques, inverse = np.unique(values, return_inverse=True)
        return _as_labels(uniques), inverse.reshape(-1)
    labels = [str(v) for v in values.tolist()]
    distinct = sorted(set(labels))
    lookup = {label: i for i, label in enumerate(distinct)}
    inverse = np.fromiter((lookup[label] for label in labels), dtype=np.int64, count=len(labels))
    return np.asarray(distinct, dtype=str), inverse


def _indexes(y_raw: np.ndarray, observed: Sequence[str], n_classes: int) -> bool:
    """Whether the target holds class indices: integers (or whole floats) from 0 to
    ``n_classes - 1``, so that value i names the model's i-th output."""
    return _is_numeric(y_raw) and all(label.isdigit() and int(label) < n_classes for label in observed)


def _index_codes(observed: Sequence[str], inverse: np.ndarray) -> np.ndarray:
    """Each row's class index, for a target of class indices (see :func:`_indexes`)."""
    return np.array([int(label) for label in observed], dtype=np.int64)[inverse]


def _encode_classes(
    y_raw: np.ndarray, class_names: Sequence[str] | None, n_classes: int, target: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    observed_array, inverse = _factorize(y_raw)
    observed = [str(label) for label in observed_array.tolist()]  # plain str: no numpy repr in messages
    if class_names is None:
        numeric = _is_numeric(y_raw) and all(s.lstrip("-").isdigit() for s in observed)
        if not numeric:
            shown = ", ".join(repr(str(s)) for s in sorted(observed)[:6])
            raise DataError(
                f"The target {target!r} holds text labels ({shown}) and the model does not say "
                "which output is which class.",
                hint="Pass --classes with the labels in output order, e.g. --classes "
                f"'{','.join(sorted(observed)[:n_classes])}', or set class_names in the model's metadata.",
            )
        class_names = [str(i) for i in range(n_classes)]
    names = tuple(str(c) for c in class_names)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise UsageError(
            f"The class names must be distinct, one per model output; {', '.join(repr(n) for n in repeated[:6])} "
            "appears more than once.",
            hint="Give each output its own label in --classes (or class_names in the model's metadata).",
        )
    if len(names) != n_classes:
        raise DataError(
            f"The model has {n_classes} class output(s) but {len(names)} class names were given "
            f"({', '.join(names[:6])}).",
            hint="Give one class name per output, in output order.",
        )
    unknown = sorted(set(observed) - set(names))
    if unknown and _indexes(y_raw, observed, len(names)):
        # --classes malignant,benign on a 0/1 target: value i is the i-th output's class
        return _index_codes(observed, inverse), names
    if unknown:
        raise DataError(
            f"The target {target!r} holds values the model cannot produce: "
            f"{', '.join(repr(str(u)) for u in unknown[:6])} (the model's classes: "
            f"{', '.join(repr(n) for n in names[:10])}).",
            hint="Check --target and --classes, or that this model was trained for these labels. A target of "
            "integers 0..K-1 is read as output indices: value i is the i-th class name.",
        )
    index = {name: i for i, name in enumerate(names)}
    mapping = np.array([index[label] for label in observed], dtype=np.int64)
    return mapping[inverse], names


def infer_task(
    raw: np.ndarray,
    y_raw: np.ndarray | None,
    *,
    requested: str = "auto",
    metadata: dict[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    target: str = "target",
) -> tuple[Task, np.ndarray | None]:
    """The task and the target encoded for it (class indices, or floats for regression)."""
    from auditor.loading.metadata import check_metadata

    # Checked where it is read (auditor.loading.model); again here, for metadata that reaches
    # the run another way (the Python API): a wrong type is exit 2 naming the field.
    metadata = check_metadata(metadata or {}, "the model's metadata")
    if raw.ndim != 2 or raw.shape[1] == 0:
        raise DataError(
            f"The model returned outputs of shape {tuple(raw.shape)}; auditor needs one row of at "
            "least one output per input row (rows x outputs).",
            hint="Make the model's forward return a (batch, outputs) tensor: one logit, one value, or one score per class.",
        )
    n_outputs = raw.shape[1]
    declared_names = classes or metadata.get("class_names")
    kind: str = requested if requested != "auto" else str(metadata.get("task") or "auto")
    if kind not in ("auto", "binary", "multiclass", "regression"):
        raise UsageError(f"The task must be auto, binary, multiclass or regression; got {kind!r}.")

    if kind == "auto":
        if n_outputs >= 3:
            kind = "multiclass"
        elif n_outputs == 2:
            kind = "binary"
        elif declared_names is not None and len(declared_names) == 2:
            kind = "binary"
        elif y_raw is not None and (
            not _is_numeric(y_raw) or set(_as_labels(np.unique(y_raw))) <= {"0", "1"}
        ):
            kind = "binary"
        else:
            kind = "regression"

    if kind == "regression":
        if n_outputs != 1:
            raise UsageError(
                f"--task regression needs a model with one output; this one has {n_outputs}.",
                hint="Use --task multiclass, or audit one output at a time.",
            )
        y = None
        if y_raw is not None:
            if not _is_numeric(y_raw):
                raise DataError(
                    f"The target {target!r} holds text, but the task is regression.",
                    hint="Use a numeric target, or --task binary/multiclass with --classes.",
                )
            y = y_raw.astype(np.float64)
        return Task(kind="regression", class_names=(), output="values", n_outputs=1), y

    if kind == "multiclass" and n_outputs < 3:
        raise UsageError(
            f"--task multiclass needs a model with 3 or more outputs; this one has {n_outputs}.",
            hint="Use --task binary for two classes.",
        )
    n_classes = 2 if kind == "binary" else n_outputs
    if kind == "binary" and n_outputs > 2:
        raise UsageError(f"--task binary needs 1 or 2 outputs; this model has {n_outputs}.")
    output = classify_outputs(raw, metadata.get("output"), kind)  # type: ignore[arg-type]
    y = None
    names: tuple[str, ...]
    if y_raw is not None:
        y, names = _encode_classes(
            y_raw, list(declared_names) if declared_names else None, n_classes, target
        )
    else:
        names = tuple(declared_names) if declared_names else tuple(str(i) for i in range(n_classes))
    return Task(kind=kind, class_names=names, output=output, n_outputs=n_outputs), y  # type: ignore[arg-type]


def read_outputs(raw: np.ndarray, task: Task) -> Predictions:
    """Turn raw model outputs into probabilities and labels (or regression values)."""
    if task.kind == "regression":
        return Predictions(raw=raw, value=raw[:, 0].astype(np.float64))
    if task.n_outputs == 1:
        # computed in place in the probabilities' own column: at 10^7 rows the chained
        # temporaries of 0.5 * (1 + tanh(0.5 * x)) took half a gigabyte
        proba = np.empty((raw.shape[0], 2))
        p1 = proba[:, 1]
        np.copyto(p1, raw[:, 0])
        if task.output == "log_probabilities":
            np.exp(p1, out=p1)
        elif task.output != "probabilities":  # the logistic function, as 0.5 * (1 + tanh(0.5 * x))
            p1 *= 0.5
            np.tanh(p1, out=p1)
            p1 += 1.0
            p1 *= 0.5
        np.subtract(1.0, p1, out=proba[:, 0])
    elif task.output == "probabilities":
        scores = raw.astype(np.float64)
        proba = scores / scores.sum(axis=1, keepdims=True)
    else:
        shifted = raw.astype(np.float64)
        shifted -= shifted.max(axis=1, keepdims=True)
        np.exp(shifted, out=shifted)
        proba = shifted / shifted.sum(axis=1, keepdims=True)
    label = proba.argmax(axis=1).astype(np.int64, copy=False)
    return Predictions(raw=raw, proba=proba, label=label)


def encode_target(y_raw: np.ndarray, task: Task, target: str) -> np.ndarray:
    """Encode another dataset's target (e.g. the training data's) exactly as the audit data's."""
    if task.kind == "regression":
        if not _is_numeric(y_raw):
            raise DataError(f"The target {target!r} holds text, but the task is regression.")
        return y_raw.astype(np.float64)
    y, _ = _encode_classes(y_raw, task.class_names, len(task.class_names), target)
    return y
