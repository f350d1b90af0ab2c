"""What one run is asked to do (:class:`RunConfig`) and how it reports progress
(:class:`Progress`, drawn for people by :class:`RichProgress`): plain data and a protocol,
importable without torch, so that the command line and :func:`auditor.audit` can build a
run and hand it to the process that executes it.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator


@dataclass
class RunConfig:
    """One run's inputs and settings (the command line's options, resolved).

    ``model`` is a path, or (only for a run in the caller's process, :func:`auditor.audit`) a
    ``torch.nn.Module`` object, whose metadata is then ``model_metadata``. ``data_label`` and
    ``train_data_label`` name data the caller gave as an object ("<in-memory DataFrame>"):
    the report shows them instead of the temporary Parquet file the run read it from.
    """

    model: Any
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
    transform: str | None = None  # --transform pkg.module:function, in front of the model
    trust_model: bool = False
    device: str = "auto"
    batch_size: int | None = None
    memory_budget: str | None = None  # bytes with a unit, as AUDITOR_MEMORY_BUDGET takes them
    engine: str = "stream"  # "stream" (this machine) or "ray" (Ray Data actors; see auditor.run.ray_engine)
    ray_address: str | None = None  # a Ray cluster to join ("auto", "ray://host:10001"); None: RAY_ADDRESS, else local
    seed: int = 0
    audit_timeout: float | None = None
    audits: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    command: str = ""
    model_args: dict[str, Any] | None = None
    model_metadata: dict[str, Any] | None = None
    data_label: str | None = None
    train_data_label: str | None = None
    labels: Path | None = None  # an image folder's labels table (file, label, sensitive columns...)
    image_size: str | None = None  # HEIGHTxWIDTH images are resized to
    image_mode: str | None = None  # L, LA, RGB or RGBA images are converted to
    allow_symlinks: bool = False
    skip_unreadable: bool = False  # leave out (and count) the few images of a folder that do not decode
    text: str | None = None  # a text column, given to the model as token ids
    tokenizer: Path | None = None  # the tokenizers-library JSON that encodes it
    max_tokens: int | None = None  # the ids a text is truncated and padded to


class Progress:
    """What the pipeline reports while it works; the CLI draws it with rich."""

    def step(
        self, description: str, total: int | None = None, guard: str | None = None
    ) -> ContextManager[Callable[[int], None]]:
        """A step of the run; ``guard="model"`` marks the steps that run the model itself
        (loading it, the inference passes) and ``guard="audit"`` each audit: a contained run
        bounds both in time from outside (``--inference-timeout``, ``--audit-timeout``)."""
        return nullcontext(lambda advance: None)


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: an ETA for people."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class RichProgress(Progress):
    """Progress bars on stderr for people (rich); drawn only when ``enabled`` (the command
    line: not with --quiet and only on a terminal; :func:`auditor.audit`: ``progress=True``)."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars

        self._progress = Bars(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True, highlight=False),
            transient=True,
            disable=not enabled,
        )

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    @contextmanager  # type: ignore[override]
    def step(
        self, description: str, total: int | None = None, guard: str | None = None
    ) -> Iterator[Callable[[int], None]]:
        rows = guard == "model" and total is not None  # a pass over the data: rows/s and time left
        task = self._progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            self._progress.advance(task, n)
            if not rows:
                return
            state = next(t for t in self._progress.tasks if t.id == task)
            if state.speed:
                left = max((state.total or 0) - state.completed, 0) / state.speed
                self._progress.update(task, rate=f"{state.speed:,.0f} rows/s, about {_duration(left)} left")

        try:
            yield advance
        finally:
            self._progress.update(task, completed=total or 1, total=total or 1)
            self._progress.remove_task(task)
