"""``--transform pkg.module:function``: the user's own step between the data as read and the
model, for what the declared options (image size, mode, mean and std, tokens) do not cover.

The function takes a batch of inputs as auditor reads them (a float32 tensor on the model's
device, ``[rows, *input_shape]``; token ids as int64) and returns what the model takes; it is
imported like ``--model-class`` (``--model-path`` too) in the confined run, never from the
model's metadata, and from a config file only under ``--trust-config``. The model is wrapped
(:class:`Transformed`), so every pass goes through it: the inference pass, the explain audit's
attributions, permutation importance (and the Ray workers, which load it the same way: not
tested there yet). Attributions are therefore over the
data as read (pixels, not normalised values). One written with torch operations lets gradients
flow through it; one that leaves torch (``x.numpy()``) cannot be differentiated, and the explain
audit then uses Feature Ablation with its ``perturbation-fallback`` note (tested).
The report's ``code`` section records the function's source file and its SHA-256.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from auditor.contract.errors import DataError, UsageError
from auditor.loading.model import LoadedModel
from auditor.loading.sniff import meaningful_line


class Transformed(nn.Module):
    """The model with the user's transform in front of it."""

    def __init__(self, model: Any, fn: Callable[[torch.Tensor], Any], spec: str) -> None:
        super().__init__()
        self.model = model
        self.fn = fn
        self.spec = spec

    def forward(self, x: torch.Tensor) -> Any:
        try:
            given = self.fn(x)
        except Exception as exc:  # noqa: BLE001 - the user's function: its failure is named as its own
            raise DataError(
                f"--transform {self.spec!r} failed on a batch of shape {tuple(x.shape)} ({x.dtype}): "
                f"{type(exc).__name__}: {meaningful_line(exc, 160)}.",
                hint="It receives a batch of inputs as auditor reads them, [rows, *input shape], on the model's "
                     "device, and must return the model's input.",
            ) from None
        if not isinstance(given, torch.Tensor):
            raise DataError(f"--transform {self.spec!r} returned a {type(given).__name__}, not a tensor.",
                            hint="Return a torch.Tensor (the model's input), computed with torch operations.")
        return self.model(given)


def unwrapped(module: Any) -> Any:
    """The user's model itself, without a transform in front of it."""
    return module.model if isinstance(module, Transformed) else module


def load_transform(spec: str, path: str | None) -> Callable[[torch.Tensor], Any]:
    """The function ``spec`` names; a :class:`UsageError` when it cannot be imported or is not a function."""
    from auditor.loading.user_code import import_object

    fn = import_object(spec, path, option="--transform", kind="function")
    if not callable(fn) or isinstance(fn, type):
        raise UsageError(f"--transform {spec!r} names a {type(fn).__name__}, not a function.",
                         hint="Name a function that takes a batch tensor and returns the model's input: "
                              "package.module:function_name.")
    return fn  # type: ignore[no-any-return]


def with_transform(model: LoadedModel, spec: str | None, path: str | None) -> LoadedModel:
    """``model`` with ``--transform``'s function in front of it (unchanged without one)."""
    if not spec:
        return model
    module = Transformed(model.module, load_transform(spec, path), spec)
    module.training = module.model.training  # the wrapper alone: the model keeps the mode it was saved in
    return dataclasses.replace(model, module=module)
