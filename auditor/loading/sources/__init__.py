"""Data that are not tables: image folders, NumPy archives, dicts of tensors.

Each is opened as an :class:`~auditor.loading.sources.base.ArraySource`: the model's inputs
as rows of float32 values (each row one example, flattened; ``input_shape`` gives the shape
the model takes), and a small table of the columns beside them (the label, the file name,
columns from a labels table, named 1-D arrays). The streaming pass reads a source chunk by
chunk exactly as it reads a Parquet file, so every audit works on it unchanged, and the same
values read from an image folder, an ``.npz`` file or a CSV file with ``--input-shape`` give
the same report.

Recognised by content (:func:`source_kind`), like model files: a folder of images, a ZIP of
``.npy`` members (``np.savez``), a ``torch.save`` archive, a Hugging Face dataset saved with
``save_to_disk``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor.loading.sources.base import ArraySource, ImageSpec

__all__ = ["ArraySource", "ImageSpec", "open_source", "source_kind"]


def source_kind(path: Path) -> str | None:
    """"hf", "images", "npz" or "tensors" when ``path`` is one of those; None for a table (or
    anything the table reader should judge)."""
    if path.is_dir():
        from auditor.loading.sources.hf import is_saved_dataset

        return "hf" if is_saved_dataset(path) else "images"
    if not path.is_file():  # a FIFO or a device is the table reader's to refuse, never opened here
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return None
    if head != b"PK\x03\x04":
        return None
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()[:10_000]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if names and all(name.endswith(".npy") for name in names):
        return "npz"
    if any("/code/" in name or name.endswith("constants.pkl") for name in names):
        return None  # TorchScript or torch.export: a model, which the table reader names as one
    if any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return "tensors"
    return None


def open_source(path: Path, kind: str, *, labels: Path | None = None, features: list[str] | None = None,
                image: ImageSpec | None = None, allow_symlinks: bool = False, names_only: bool = False,
                skip_unreadable: bool = False) -> ArraySource:
    """The source at ``path`` of ``kind`` (from :func:`source_kind`); ``names_only``: an image
    folder listed but no image opened (for a scan of its columns)."""
    if kind == "images":
        from auditor.loading.sources.images import ImageFolder

        return ImageFolder.open(path, labels=labels, spec=image or ImageSpec(), allow_symlinks=allow_symlinks,
                                names_only=names_only, skip_unreadable=skip_unreadable)
    if kind == "hf" and labels is None:
        from auditor.loading.sources.hf import SavedDataset

        return SavedDataset.open(path, features=features, spec=image)
    if labels is not None:
        from auditor.contract.errors import UsageError

        raise UsageError(f"--labels goes with a folder of images; {path.name} holds its own arrays.",
                         hint="Put the labels and other columns in the file as 1-D arrays of one value a row.")
    from auditor.loading.sources.arrays import Arrays

    return Arrays.open(path, kind, features=features)


def spec_from(metadata: dict[str, Any], size: Any = None, mode: Any = None) -> ImageSpec:
    """How images become tensors: ``--image-size``/``--image-mode``, else the model's metadata
    (``"image": {"size": [H, W], "mode": "RGB", "mean": [...], "std": [...]}``)."""
    return ImageSpec.declared(metadata.get("image"), size, mode)
