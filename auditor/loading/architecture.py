"""A summary of the model's structure for the report: layers and parameter counts."""

from __future__ import annotations

from typing import Any


def _type_name(module: Any) -> str:
    return str(getattr(module, "original_name", None) or type(module).__name__)


def summarize(module: Any) -> dict[str, Any]:
    """Total and trainable parameters, and one row per leaf layer (name, type, parameters)."""
    if not hasattr(module, "named_modules"):
        return {"parameters": None, "trainable_parameters": None, "layers": []}
    params = list(module.parameters())
    total = sum(int(p.numel()) for p in params)
    trainable = sum(int(p.numel()) for p in params if p.requires_grad)
    layers = []
    for name, child in module.named_modules():
        if name == "" or any(True for _ in child.children()):
            continue
        count = sum(int(p.numel()) for p in child.parameters(recurse=False))
        layers.append({"name": name, "type": _type_name(child), "parameters": count})
    return {"parameters": total, "trainable_parameters": trainable, "layers": layers}
