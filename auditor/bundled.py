"""Where the bundled demo's files live (package data, so ``audit demo`` works after pip install)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import UsageError


def demo_paths() -> tuple[Path, Path]:
    """The demo's model and test data."""
    folder = Path(str(files("auditor").joinpath("demo")))
    model, data = folder / "model.pt", folder / "test.csv.gz"
    if not model.is_file() or not data.is_file():
        raise UsageError(
            "The bundled demo files are missing from this installation.",
            hint="Rebuild them with 'python scripts/build_demo.py' from a source checkout.",
        )
    return model, data
