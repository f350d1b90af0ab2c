"""The model's metadata: which fields the run reads, and the type and value each must have.

Metadata comes from JSON embedded in the model file (TorchScript extra file ``auditor.json``,
safetensors metadata key ``auditor``) or from a sidecar ``<model-stem>.auditor.json``; it is
checked here once, where it is read, so that a wrong type (``"feature_names": 5``,
``"input_shape": "abc"``) is one line and exit 2 naming the field and its source, never a
crash deep in the run. The fields the run reads:

===============  ==============================================================  ==========
field            must be                                                         read by
===============  ==============================================================  ==========
feature_names    a non-empty list of distinct column names                       data
class_names      a non-empty list of distinct class labels, in output order      task
target           a column name                                                   data
sensitive        a list of column names                                          data
task             ``auto``, ``binary``, ``multiclass`` or ``regression``          task
output           ``logits``, ``probabilities`` or ``log_probabilities``          task
input_shape      a non-empty list of whole numbers from 1 to 2**31 - 1           inference
name             text                                                            report
===============  ==============================================================  ==========

A column name or class label may be written as a string or an integer (``[0, 1]``, as
``json.dumps`` writes a pandas frame's integer column labels); it is kept as a string. A
field set to ``null`` counts as not declared. Every other field (``description``,
``intended_use``, ``training_data``...) is free-form and shown in the report as written.

Messages name the field, its source and the type found, never the value: metadata is read
from a file the user did not necessarily write.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from auditor.contract.errors import AuditorError, ModelLoadError, UsageError

TASKS = ("auto", "binary", "multiclass", "regression")
OUTPUTS = ("logits", "probabilities", "log_probabilities")
#: The largest size of one dimension of ``input_shape`` (torch's sizes are int64, but no
#: flat row of a table has more values than this).
MAX_DIMENSION = 2**31 - 1


def describe(value: Any) -> str:
    """What a JSON value is, for a message (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text" if value.strip() else "empty text"
    if isinstance(value, (list, tuple)):
        return "an empty list" if not value else "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_EXAMPLES = {"feature_names": '["age", "income"]', "sensitive": '["sex", "race"]', "class_names": '["no", "yes"]'}


def _names(key: str, value: Any, what: str, fail: Any, *, distinct: bool, empty_ok: bool = False) -> list[str]:
    """A list of names (strings, or integers kept as strings)."""
    example = _EXAMPLES[key]
    if not isinstance(value, list):
        raise fail(key, f"a list of {what}, e.g. {example}", describe(value))
    if not value and not empty_ok:
        raise fail(key, f"a non-empty list of {what}", "an empty list")
    names: list[str] = []
    for i, item in enumerate(value):
        if not (isinstance(item, str) or _is_int(item)) or (isinstance(item, str) and not item.strip()):
            raise fail(key, f"a list of {what} (strings)", f"a list whose item {i + 1} is {describe(item)}")
        names.append(str(item))
    if distinct and len(set(names)) != len(names):
        first = next(i for i, n in enumerate(names) if names.index(n) != i)
        raise fail(key, f"a list of distinct {what}", f"a list whose item {first + 1} repeats an earlier one")
    return names


def parse_input_shape(value: Any, source: str, example: str) -> list[int] | None:
    """An input shape as a user writes it, ``"1,28,28"`` or ``(1, 28, 28)``, checked by
    :func:`input_shape`; None (or nothing written) stays None. ``source`` names where it came
    from (``--input-shape``, ``input_shape``), ``example`` how to write it there."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else [str(p) for p in value]
    if not parts:
        return None
    try:
        shape = [int(p, 10) for p in parts]
    except ValueError:
        raise UsageError(f"{source} must be {example}; got {value!r}.") from None
    return input_shape(shape, source)  # each size from 1 to 2**31 - 1


def input_shape(value: Any, source: str, error: type[AuditorError] = UsageError) -> list[int]:
    """``value`` (a list of whole numbers) as an input shape, or ``error`` naming ``source``
    (``--input-shape`` or the metadata file): every size a whole number from 1 to
    :data:`MAX_DIMENSION`, at least one size."""
    flag = source.startswith("--")
    rule = (f"comma-separated whole numbers from 1 to {MAX_DIMENSION:,}, e.g. 1,28,28" if flag
            else f"a list of whole numbers from 1 to {MAX_DIMENSION:,}, e.g. [1, 28, 28]")
    hint = ("Give the shape of one row as the model takes it; the sizes multiply to the number of features."
            if flag else "Fix input_shape in the metadata, or remove it and pass --input-shape.")

    def fail(message: str) -> AuditorError:
        return error(message, hint=hint)

    if not isinstance(value, (list, tuple)) or not value:
        raise fail(f"The input shape ({source}) must be {rule}; got {describe(value)}.")
    for i, size in enumerate(value):
        if not _is_int(size):
            whole = isinstance(size, float) and math.isfinite(size) and size.is_integer()
            got = "a number with a decimal point" if whole else describe(size)
            if isinstance(size, float) and not math.isfinite(size):
                got = "a number too large to be a size"
            raise fail(f"The input shape ({source}) must be {rule}; size {i + 1} is {got}.")
        if not 1 <= size <= MAX_DIMENSION:
            got = "zero" if size == 0 else "negative" if size < 0 else "too large"
            raise fail(f"The input shape ({source}) must be {rule}; size {i + 1} is {got}.")
    return [int(size) for size in value]


def check_metadata(meta: Mapping[str, Any], label: str) -> dict[str, Any]:
    """``meta`` with every field the run reads checked and normalised (see the module
    docstring); a :class:`~auditor.contract.errors.ModelLoadError` (exit 2) naming the field and
    ``label`` (where the metadata came from) otherwise. Fields set to null are kept as null
    (not declared: a sidecar's null overrides an embedded value)."""

    def fail(key: str, rule: str, got: str) -> ModelLoadError:
        return ModelLoadError(
            f"The field {key} of the model metadata ({label}) must be {rule}; got {got}.",
            hint="Fix the field, or remove it to let the run decide (see the README's Model files).",
        )

    out = dict(meta)
    declared = {key for key, value in out.items() if value is not None}
    for key in ("feature_names", "class_names", "sensitive"):
        if key in declared:
            what = "class labels" if key == "class_names" else "column names"
            out[key] = _names(key, out[key], what, fail, distinct=True, empty_ok=key == "sensitive")
    if "target" in declared:
        target = out["target"]
        if not (isinstance(target, str) and target.strip()) and not _is_int(target):
            raise fail("target", 'a column name, e.g. "income"', describe(target))
        out["target"] = str(target)
    for key, allowed in (("task", TASKS), ("output", OUTPUTS)):
        if key in declared and out[key] not in allowed:
            got = "text that is none of them" if isinstance(out[key], str) else describe(out[key])
            raise fail(key, f"one of {', '.join(allowed)}", got)
    if "input_shape" in declared:
        out["input_shape"] = input_shape(out["input_shape"], f"input_shape in {label}", ModelLoadError)
    if "name" in declared and not isinstance(out["name"], str):
        raise fail("name", "text", describe(out["name"]))
    return out

