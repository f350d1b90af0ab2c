"""Recognise a model file's format from its content, never from its extension.

A CSV renamed ``.pt``, an empty file or random bytes get a clear message here instead
of torch's ``EOFError`` or ``IndexError`` later.
"""

from __future__ import annotations

import _compat_pickle
import io
import json
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Literal

from auditor.contract.errors import ModelLoadError

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


def shown(name: str, limit: int = 120) -> str:
    """A name from inside a model file (a zip member, an operator) as it may appear in a
    one-line message: control characters made visible (newlines and tabs too), cut short."""
    from auditor.report.numbers import clean_text

    text = clean_text(name).replace("\n", "\u240a").replace("\t", "\u2409")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


#: What marks a TorchScript error's message: a traceback of the compiled code follows its first line.
TORCHSCRIPT_TRACEBACK = "Traceback of TorchScript"


def meaningful_line(exc: BaseException | str, limit: int = 300) -> str:
    """The one line of an exception's message worth showing a user. TorchScript errors
    (``torch.jit.Error``) carry a multi-line traceback of the compiled and the original code
    and end with the real error (``builtins.RuntimeError: input.size(-1) must be equal to
    input_size. Expected 5, got 40``): that last line, without the ``builtins.`` prefix.
    Anything else: its first non-empty line. Never the traceback."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    if TORCHSCRIPT_TRACEBACK in text or text.startswith("The following operation failed in the TorchScript"):
        line = lines[-1].removeprefix("builtins.")
    else:
        line = lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


# --- zip archives read within bounds ----------------------------------------------------------
#
# A zip's central directory declares every member's size before anything is decompressed,
# and Python's zipfile never inflates a member past its declared size; so a zip bomb is
# refused from the directory alone. torch stores tensors uncompressed and deflates only code
# text and small pickles, which stay under 20x.

#: A compressed member may declare at most this many times its compressed size...
MAX_RATIO = 100
#: ...unless it declares less than this (a small member of zeros is harmless at any ratio).
SMALL_MEMBER = 1 << 20
#: The most members an archive may hold (a model saves one per tensor).
MAX_MEMBERS = 200_000
#: What the model checks may read (decompressed) from one model file, all members together.
READ_BUDGET = 1 << 30


def check_zip_sizes(label: str, infos: list[zipfile.ZipInfo], archive_size: int) -> None:
    """Refuse an archive whose declared sizes describe a zip bomb, before anything is read:
    too many members, a stored member whose size differs from the bytes it occupies, a
    compressed member that would inflate more than :data:`MAX_RATIO` times, or compressed
    members that would inflate to more than :data:`MAX_RATIO` times the whole archive."""
    hint = "Save the model again with torch.jit.save or torch.export.save (they store tensors uncompressed)."
    if len(infos) > MAX_MEMBERS:
        raise ModelLoadError(
            f"The model file {label} holds {len(infos)} zip members, more than the {MAX_MEMBERS} "
            "a model file can need.",
            hint=hint,
        )
    inflated = 0
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise ModelLoadError(
                    f"The model file {label} is corrupt: its member {shown(info.filename)} declares "
                    f"{info.file_size} bytes but occupies {info.compress_size}.",
                    hint=hint,
                )
            continue
        inflated += info.file_size
        if info.file_size > SMALL_MEMBER and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ModelLoadError(
                f"Refusing to read {label}: its member {shown(info.filename)} would inflate from "
                f"{info.compress_size} to {info.file_size} bytes (more than {MAX_RATIO}x: a zip bomb?).",
                hint=hint,
            )
    if inflated > MAX_RATIO * archive_size + SMALL_MEMBER:
        raise ModelLoadError(
            f"Refusing to read {label}: its compressed members would inflate to {inflated} bytes, "
            f"more than {MAX_RATIO}x the {archive_size}-byte file (a zip bomb?).",
            hint=hint,
        )


class MemberReader:
    """Reads members of one model file's zip archives for the static checks: every read is
    checked against the declared size first and counted against one :data:`READ_BUDGET`
    shared by every archive (nested ones too) the checks open in that file."""

    def __init__(self, label: str, budget: int = READ_BUDGET) -> None:
        self.label = label
        self.left = budget

    def open(self, source: str | Path | BinaryIO, size: int) -> zipfile.ZipFile:
        """Open a zip archive (a path or a file object of ``size`` bytes), its declared sizes
        checked by :func:`check_zip_sizes`."""
        archive = zipfile.ZipFile(source)
        try:
            check_zip_sizes(self.label, archive.infolist(), size)
        except BaseException:
            archive.close()
            raise
        return archive

    def read(self, archive: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> bytes:
        """A member's bytes, refused (:class:`ModelLoadError`) when its declared size would
        take the checks past their budget."""
        info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
        if info.file_size > self.left:
            raise ModelLoadError(
                f"Refusing to read {self.label}: checking it would read more than "
                f"{READ_BUDGET >> 20} MiB of code, metadata and pickles "
                f"(its member {shown(info.filename)} declares {info.file_size} bytes).",
                hint="A model's code and pickled structure are far smaller; save the model again "
                "with torch.jit.save or torch.export.save.",
            )
        self.left -= info.file_size
        with archive.open(info) as handle:  # zipfile inflates no further than the declared size
            return handle.read()


def zip_members(path: Path) -> list[str]:
    """The member names of a zip model file whose every member passes its CRC-32 check.

    torch reads its archives without checking CRCs, and a damaged TorchScript archive can
    abort the whole process from inside torch's C++ (an error raised while reporting an
    error); checking first turns any damage into a clear message. The declared sizes are
    checked first (:func:`check_zip_sizes`): checking a zip bomb's CRCs would inflate it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            check_zip_sizes(shown(path.name), archive.infolist(), path.stat().st_size)
            damaged = archive.testzip()
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError, EOFError, zlib.error...
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"The model file {path.name} starts like a zip archive but cannot be read ({detail}).",
            hint="The file is probably truncated or corrupt; save it again.",
        ) from None
    if damaged is not None:
        raise ModelLoadError(
            f"The model file {path.name} is corrupt: its member {shown(damaged)!r} fails its CRC-32 check.",
            hint="The file was damaged after it was saved (an incomplete copy or download?); "
            "copy or save it again.",
        )
    return names


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
        names = [name.lower() for name in zip_members(path)]  # torch ignores case in names
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


# --- what a pickle would import, read without unpickling it ----------------------------------

_STRING_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_NO_PUSH_OPS = frozenset({"PROTO", "FRAME", "STOP", "MEMOIZE", "MARK", "POP", "POP_MARK"}) | _PUT_OPS
UNREADABLE = "<unreadable pickle data>"


def qualified_global(module: str, name: str) -> str:
    """``module.name`` as Python 3's unpickler would import it (``__builtin__`` -> ``builtins``)."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{name}"


def pickle_globals(data: bytes | BinaryIO, *, max_pickles: int = 5) -> list[str]:
    """Every global (``module.name``) the pickles at the start of ``data`` would import, in
    order, found by walking the opcodes (``pickletools.genops``): nothing is unpickled.

    Up to ``max_pickles`` consecutive pickles are read (a legacy ``torch.save`` file is five
    of them before its raw tensor bytes). A global this static walk cannot name (one built
    on the stack by other means, a copyreg extension code) is reported as ``<...>``, and
    data that stops being a pickle as :data:`UNREADABLE` - the caller treats both as unsafe.
    """
    found: list[str] = []
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
    for _ in range(max_pickles):
        if not stream.read(1):
            break
        stream.seek(-1, io.SEEK_CUR)
        pushed: list[str | None] = []  # what the last pushes were, when they were strings
        memo: dict[Any, str | None] = {}
        try:
            for op, arg, _pos in pickletools.genops(stream):
                name = op.name
                if name in ("GLOBAL", "INST"):
                    module, _, attr = str(arg).partition(" ")
                    found.append(qualified_global(module, attr))
                    pushed.append(None)
                elif name == "STACK_GLOBAL":
                    top = pushed[-2:]
                    if len(top) == 2 and all(isinstance(v, str) for v in top):
                        found.append(qualified_global(str(top[0]), str(top[1])))
                    else:
                        found.append("<a global built on the stack (STACK_GLOBAL)>")
                    pushed.append(None)
                elif name in ("EXT1", "EXT2", "EXT4"):
                    found.append(f"<copyreg extension {arg}>")
                    pushed.append(None)
                elif name in _STRING_OPS:
                    pushed.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
                elif name in _GET_OPS:
                    pushed.append(memo.get(arg))
                elif name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif name in _PUT_OPS:
                    memo[arg] = pushed[-1] if pushed else None
                elif name not in _NO_PUSH_OPS:
                    pushed.append(None)
                if len(pushed) > 64:
                    del pushed[:-8]
        except Exception:  # noqa: BLE001 - not (or no longer) a pickle: that is a finding too
            found.append(UNREADABLE)
            break
    return list(dict.fromkeys(found))


def persistent_ids(data: bytes) -> list[tuple[Any, ...]]:
    """The persistent ids (``BINPERSID`` tuples: ``('storage', type, key, location, numel)`` in
    a torch pickle) of one pickle, by simulating only its stack with each opcode's documented
    effect (``pickletools``): nothing is unpickled, nothing imported. Values this does not
    track appear as ``None``; an unreadable pickle raises ``ValueError``."""
    mark = object()
    slot = (pickletools.markobject, pickletools.stackslice)
    stack: list[Any] = []
    memo: dict[Any, Any] = {}
    found: list[tuple[Any, ...]] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            sliced: list[Any] = []
            if pickletools.markobject in op.stack_before:
                while stack and stack[-1] is not mark:
                    sliced.append(stack.pop())
                if stack:
                    stack.pop()
                sliced.reverse()
            popped = [stack.pop() if stack else None for item in op.stack_before if item not in slot]
            popped.reverse()
            if name == "TUPLE":
                stack.append(tuple(sliced))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(tuple(popped))
            elif name == "BINPERSID":
                if popped and isinstance(popped[0], tuple):
                    found.append(popped[0])
                stack.append(None)
            elif name == "GLOBAL":
                stack.append(qualified_global(*str(arg).split(" ", 1)))
            elif name in _GET_OPS:
                stack.append(memo.get(arg))
            elif name in _PUT_OPS:
                memo[arg] = stack[-1] if stack else None
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
            elif name == "MARK":
                stack.append(mark)
            else:
                value = arg if name in _STRING_OPS or name.startswith(("BININT", "INT", "LONG")) else None
                if isinstance(value, bytes):
                    value = value.decode("latin-1")
                stack.extend([value] * len(op.stack_after))
    except Exception as exc:  # noqa: BLE001 - genops' errors on damaged data, as one type
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return found
