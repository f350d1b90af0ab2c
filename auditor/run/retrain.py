"""The user's training function, for audits that retrain the model (true cross-validation).

``--trainer pkg.module:train_fn`` names a function that trains a fresh model::

    def train_fn(X: torch.Tensor, y: torch.Tensor, *, seed: int, device: torch.device,
                 n_outputs: int) -> torch.nn.Module

``X`` is float32 on the audit's device, rows x features (reshaped to ``--input-shape`` when
one is set, exactly as the audited model receives its rows); ``y`` is on the same device:
int64 class indices in the audited model's output order, or float32 regression targets.
``seed``, ``device`` and ``n_outputs`` (the audited model's output width) are passed only
when the function declares them (or ``**kwargs``). It returns a trained ``nn.Module`` whose
outputs have the audited model's width; logits or probabilities are read from the values,
as for the audited model.

Each call runs with Python's, NumPy's and torch's global generators seeded from ``seed``,
and their states are restored afterwards, so a trainer that draws from them (shuffling,
initialisation, dropout) trains the same model for the same seed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auditor.contract.context import Predictions, Task
from auditor.contract.errors import UsageError
from auditor.run.inference import run_inference
from auditor.run.seeding import seeded
from auditor.run.task import output_kind, read_outputs

#: Keyword arguments a trainer may declare; each is passed only when declared.
KEYWORDS = ("seed", "device", "n_outputs")


class TrainerFailed(RuntimeError):
    """The user's trainer raised, or returned something that is not a usable model."""


@dataclass(frozen=True)
class Trainer:
    """A resolved ``--trainer``: its spec as given, the function, and the keywords it takes."""

    spec: str
    fn: Callable[..., Any]
    keywords: frozenset[str]


def load_trainer(spec: str, path: str | None = None) -> Trainer:
    """Import ``pkg.module:function`` (from ``path`` too, when given) and check that it can
    take ``(X, y)``; raise :class:`UsageError` otherwise."""
    from auditor.loading.user_code import import_object

    fn = import_object(spec, path, option="--trainer", kind="function")
    if not callable(fn):
        raise UsageError(f"--trainer {spec} is a {type(fn).__name__}, not a function.")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return Trainer(spec, fn, frozenset())
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty and p.name not in KEYWORDS]
    if (len(positional) < 2 and not variadic) or len(required) > 2:
        shown = ", ".join(p.name for p in params) or "nothing"
        raise UsageError(
            f"--trainer {spec} must take the training features and targets, train_fn(X, y); it takes ({shown}).",
            hint="Define it as def train_fn(X, y, *, seed=0, device=None, n_outputs=None) -> torch.nn.Module.",
        )
    any_keyword = any(p.kind == p.VAR_KEYWORD for p in params)
    declared = {p.name for p in params if p.kind != p.VAR_KEYWORD}
    keywords = frozenset(k for k in KEYWORDS if any_keyword or k in declared)
    return Trainer(spec, fn, keywords)


def _tensor(array: np.ndarray, device: torch.device, shape: Sequence[int] | None) -> torch.Tensor:
    out = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return out.reshape(out.shape[0], *shape) if shape else out


def fit(
    trainer: Trainer,
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    seed: int,
    device: torch.device,
    input_shape: Sequence[int] | None = None,
    where: str = "",
) -> torch.nn.Module:
    """Train one model on ``X``, ``y`` with the user's trainer, seeded; ``where`` (e.g.
    "fold 2, seed 0") goes into the message when the trainer fails."""
    targets = y.astype(np.int64) if task.is_classification else y.astype(np.float32)
    given = {"seed": seed, "device": device, "n_outputs": task.n_outputs}
    kwargs = {k: v for k, v in given.items() if k in trainer.keywords}
    at = f" ({where})" if where else ""
    with seeded(seed, device):
        try:
            model = trainer.fn(_tensor(X, device, input_shape), _tensor(targets, device, None), **kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's code: report it, with where it broke
            raise TrainerFailed(f"the trainer {trainer.spec} raised{at}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise TrainerFailed(
            f"the trainer {trainer.spec} returned {type(model).__name__}{at}, not a torch.nn.Module"
        )
    return model.to(device).eval()


def predict(
    model: torch.nn.Module,
    X: np.ndarray,
    *,
    task: Task,
    device: torch.device,
    input_shape: Sequence[int] | None = None,
    batch_size: int | None = None,
    where: str = "",
) -> Predictions:
    """A retrained model's predictions, read like the audited model's: the same output width
    is required; logits or probabilities are told from the values."""
    raw = run_inference(model, X, device=device, batch_size=batch_size, input_shape=input_shape)
    if raw.shape[1] != task.n_outputs:
        at = f" ({where})" if where else ""
        raise TrainerFailed(
            f"a retrained model gives {raw.shape[1]} outputs per row{at}, the audited model {task.n_outputs}"
        )
    if task.is_classification:
        task = Task(task.kind, task.class_names, output_kind(raw, task), task.n_outputs)
    return read_outputs(raw, task)
