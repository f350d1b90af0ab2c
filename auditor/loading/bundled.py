"""Where the bundled demo's files live (package data, so ``audit demo`` works after pip install)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from auditor.contract.errors import UsageError


@dataclass(frozen=True)
class DemoFiles:
    model: Path
    data: Path
    history: Path
    train_data: Path


def demo_files() -> DemoFiles:
    """The demo's model, test data, recorded training history and training data."""
    folder = Path(str(files("auditor").joinpath("demo")))
    found = DemoFiles(
        model=folder / "model.pt",
        data=folder / "test.csv.gz",
        history=folder / "history.csv",
        train_data=folder / "train.csv.gz",
    )
    if not all(path.is_file() for path in (found.model, found.data, found.history, found.train_data)):
        raise UsageError(
            "The bundled demo files are missing from this installation.",
            hint="Rebuild them with 'python scripts/build_demo.py' from a source checkout.",
        )
    return found


def image_demo_files() -> DemoFiles:
    """The image demo's CNN, its test and training image folders and its recorded history."""
    folder = Path(str(files("auditor").joinpath("demo"))) / "images"
    found = DemoFiles(model=folder / "cnn.pt", data=folder / "test", history=folder / "history.csv",
                      train_data=folder / "train")
    if not (found.model.is_file() and found.data.is_dir() and found.train_data.is_dir() and found.history.is_file()):
        raise UsageError(
            "The bundled image demo files are missing from this installation.",
            hint="Rebuild them with 'python scripts/build_image_demo.py' from a source checkout.",
        )
    return found
