"""Weights into a model: the state_dict found in what ``torch.load`` returned (a bare
state_dict, or a checkpoint dict holding one), loaded strictly into the module built from
``--model-class``; weights that do not fit the class are a one-line ``ModelLoadError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from auditor.contract.errors import ModelLoadError


def state_dict_from(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ModelLoadError(
        f"{path.name} holds a {type(obj).__name__} but no state_dict of tensors was found in it.",
        hint="Save model.state_dict() (or a dict with a 'state_dict' key).",
    )


def load_weights_into(
    module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, spec: str
) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ModelLoadError(
            f"The weights in {path.name} do not fit {spec}: {detail[:400]}",
            hint="Check that --model-class names the class these weights were saved from.",
        ) from None
