"""Recognise a model file's format from its content, never from its extension.

A CSV renamed ``.pt``, an empty file or random bytes get a clear message here instead
of torch's ``EOFError`` or ``IndexError`` later.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Literal

from ..errors import ModelLoadError

ModelFormat = Literal["torchscript", "export", "torch_zip", "safetensors", "pickle"]

_HOW_TO_SAVE = (
    "Save the model with torch.jit.save(torch.jit.script(model), 'model.pt'), "
    "or save model.state_dict() and pass --model-class."
)


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable / len(text) > 0.95


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(
            f"The model file {path.name} starts like a zip archive but cannot be read ({exc}).",
            hint="The file is probably truncated or corrupt; save it again.",
        ) from None


def sniff_model_format(path: Path) -> ModelFormat:
    """Return the format of the model file at ``path`` or raise ModelLoadError."""
    if not path.exists():
        raise ModelLoadError(f"The model file {str(path)!r} does not exist.", hint="Check the path.")
    if path.is_dir():
        raise ModelLoadError(
            f"The model path {str(path)!r} is a directory; a model file was expected.",
            hint="Point to the saved model file itself.",
        )
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"The model file {path.name} is empty (0 bytes).", hint=_HOW_TO_SAVE)
    with path.open("rb") as handle:
        head = handle.read(4096)

    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        names = zip_members(path)
        if any(name.endswith("/archive_format") for name in names) or any(
            "/models/" in name and name.endswith(".json") for name in names
        ):
            return "export"
        if any("/code/" in name for name in names) and any(
            name.endswith("constants.pkl") for name in names
        ):
            return "torchscript"
        if any(name.endswith("data.pkl") for name in names):
            return "torch_zip"
        raise ModelLoadError(
            f"The model file {path.name} is a zip archive but not one torch wrote "
            "(no data.pkl, TorchScript code or torch.export program inside).",
            hint=_HOW_TO_SAVE,
        )
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if _is_safetensors(head, size):
        return "safetensors"
    if _looks_like_text(head):
        first_line = head.decode("utf-8", "replace").splitlines()[0][:60] if head.strip() else ""
        kind = "CSV" if "," in first_line else "text"
        try:
            json.loads(head)
            kind = "JSON"
        except ValueError:
            pass
        raise ModelLoadError(
            f"The model file {path.name} holds {kind}, not a saved PyTorch model "
            f"(it begins {first_line!r}).",
            hint="Did you swap the model and --data arguments? " + _HOW_TO_SAVE,
        )
    raise ModelLoadError(
        f"The model file {path.name} is not a format auditor knows "
        "(TorchScript, torch.export .pt2, torch.save, safetensors); its first bytes are "
        f"{head[:8].hex(' ')}.",
        hint=_HOW_TO_SAVE,
    )
