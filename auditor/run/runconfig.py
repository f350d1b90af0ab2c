"""What one run is asked to do (:class:`RunConfig`) and how it reports progress
(:class:`Progress`): plain data and a protocol, importable without torch, so that the
command line can build a run and hand it to the process that executes it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager


@dataclass
class RunConfig:
    model: Path
    data: Path
    target: str | None = None
    features: list[str] | None = None
    sensitive: list[str] | None = None
    history: Path | None = None
    card: Path | None = None
    train_data: Path | None = None
    classes: list[str] | None = None
    task: str = "auto"
    input_shape: list[int] | None = None
    model_class: str | None = None
    model_path: str | None = None
    trainer: str | None = None
    trust_model: bool = False
    device: str = "auto"
    batch_size: int | None = None
    seed: int = 0
    audit_timeout: float | None = None
    audits: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    command: str = ""
    model_args: dict[str, Any] | None = None


class Progress:
    """What the pipeline reports while it works; the CLI draws it with rich."""

    def step(
        self, description: str, total: int | None = None, guard: str | None = None
    ) -> ContextManager[Callable[[int], None]]:
        """A step of the run; ``guard="model"`` marks the steps that run the model itself
        (loading it, the inference passes) and ``guard="audit"`` each audit: a contained run
        bounds both in time from outside (``--inference-timeout``, ``--audit-timeout``)."""
        return nullcontext(lambda advance: None)
