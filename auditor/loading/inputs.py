"""Whether a path is an input auditor may read, and reading one within a bound.

Every file a run reads (the model and its ``<stem>.auditor.json``, the data and the training
data, the training history, the card, the policy, the baseline, ./pyproject.toml and
``--config``) is checked with :func:`check_input` in the command line's own process before
the run starts, with ``lstat``/``stat`` calls only:

- a **symbolic link whose target leaves the link's folder** is refused unless
  ``--allow-symlinks``: a link committed to a repository (``card.yaml`` pointing at
  ``~/.config/gh/hosts.yml``) would otherwise put another file's contents into the report;
  a link to a file in the same folder or below it is followed;
- a **FIFO, socket or device** is refused, links or not: reading one blocks forever (a FIFO
  waits for a writer) or never ends (``/dev/zero``);
- anything under **/proc or /sys** is refused: those files describe the machine and its
  processes (``/proc/self/environ`` holds the environment), they are never an input.

A path that does not exist passes: its reader says so, in its own words.

The readers then bound what they read by the memory budget (:func:`memory_budget`, which
``AUDITOR_MEMORY_BUDGET`` sets): :func:`read_bytes` opens without blocking, refuses anything
but a regular file (the same check again, on the file it opened) and a file larger than
:func:`read_limit`; :func:`loads_json` and :func:`check_depth` refuse nesting deeper than
:data:`MAX_DEPTH` (a ``[[[[...`` file would otherwise overflow Python's recursion);
:class:`BoundedStream` stops a decompressing stream (gzip) once it has given more than its
bound, whatever the gzip trailer claims. Messages about a file never quote its bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from auditor.contract.errors import AuditorError, DataError, UsageError

ErrorType = Callable[..., AuditorError]

#: How many times its size a parsed text file (JSON, TOML, YAML, CSV history) may take in
#: memory, at most: a file may take up to the budget divided by this.
PARSE_FACTOR = 16
#: The most a small settings-like file (config, policy, card, model metadata) may hold.
SMALL_FILE = 16 << 20
#: The longest line of a data file (a row, or the header): beyond it a row is refused.
MAX_LINE = 64 << 20
#: The least those two bounds come down to, however small the budget (it bounds the data).
MIN_BOUND = 1 << 20
#: The deepest nesting of lists and tables a JSON, TOML or YAML input may have.
MAX_DEPTH = 100

#: Pseudo-filesystems whose files describe the machine and its processes.
_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"))
_ALLOW_SYMLINKS_HINT = "Pass the file itself, or --allow-symlinks if you made the link yourself."


# --- the memory budget ---------------------------------------------------------------------------

MEMORY_BUDGET_VARIABLE = "AUDITOR_MEMORY_BUDGET"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def human_size(n: float) -> str:
    """Bytes for a message: ``512 bytes``, ``1.5 MiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _cgroup_available() -> int | None:
    """What the container's memory limit leaves, where a cgroup (v2 or v1) sets one."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return max(int(limit) - usage, 0)
    return None


def parse_size(raw: str | int, what: str) -> int:
    """Bytes in ``"500MB"``, ``"8G"``, ``"2GiB"``, ``"1048576"`` (K/M/G/T are powers of 1024)."""
    match = _SIZE.match(str(raw))
    if not match:
        raise UsageError(
            f"{what}={str(raw)!r} is not a size.",
            hint="Write bytes with an optional unit, e.g. 500MB, 8G or 2GiB (K/M/G/T are powers of 1024).",
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def checked_budget(raw: str | int | None) -> str | None:
    """``--memory-budget`` (or ``memory_budget``) as given, once it reads as a size (else exit 2)."""
    if raw is None or str(raw).strip() == "":
        return None
    if parse_size(raw, "--memory-budget") <= 0:
        raise UsageError(f"--memory-budget must be more than 0 bytes; got {raw!r}.")
    return str(raw).strip()


@contextmanager
def budget_of(raw: str | None) -> Iterator[None]:
    """Within it, :func:`memory_budget` is ``raw`` (when given): the run's stated budget,
    set for this process only and restored after (an in-process run leaves no trace)."""
    if raw is None:
        yield
        return
    before = os.environ.get(MEMORY_BUDGET_VARIABLE)
    os.environ[MEMORY_BUDGET_VARIABLE] = raw
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MEMORY_BUDGET_VARIABLE, None)
        else:
            os.environ[MEMORY_BUDGET_VARIABLE] = before


def memory_budget() -> tuple[int, str]:
    """The bytes the data may take, and where that figure comes from (for messages)."""
    raw = os.environ.get(MEMORY_BUDGET_VARIABLE, "").strip()
    if raw:
        return parse_size(raw, MEMORY_BUDGET_VARIABLE), f"the budget stated with --memory-budget or {MEMORY_BUDGET_VARIABLE}"
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil is optional
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 1 << 62, "unknown"
    cgroup = _cgroup_available()
    if cgroup is not None and cgroup < available:
        return cgroup, "available (container limit)"
    return available, "available"


def read_limit(cap: int | None = None, *, floor: int = 1) -> int:
    """The most bytes a text input may hold: the memory budget over :data:`PARSE_FACTOR`,
    at least ``floor`` and at most ``cap``."""
    budget, _ = memory_budget()
    limit = max(budget // PARSE_FACTOR, floor)
    return limit if cap is None else min(limit, cap)


def small_limit() -> int:
    """The most a settings-like file (config, policy, card, model metadata) may hold:
    :data:`SMALL_FILE`, less with a small budget, never under :data:`MIN_BOUND`."""
    return read_limit(SMALL_FILE, floor=MIN_BOUND)


def line_limit() -> int:
    """The longest line (or CSV field) a data file may have: :data:`MAX_LINE`, less with a
    small budget, never under :data:`MIN_BOUND`."""
    return read_limit(MAX_LINE, floor=MIN_BOUND)


def too_large(what: str, path: Path, limit: int, error: ErrorType = DataError) -> AuditorError:
    """The error for an input that holds more than its bound, ``limit`` bytes."""
    budget, source = memory_budget()
    return error(
        f"{what} {path.name!r} holds more than {human_size(limit)}, more than auditor reads "
        f"from it with {human_size(budget)} of memory ({source}).",
        hint=f"Check that it is the file you meant; {MEMORY_BUDGET_VARIABLE} (e.g. 16GB) raises the bound.",
    )


# --- which paths may be read --------------------------------------------------------------------


def _special(mode: int) -> str | None:
    """What a file that is not a regular file or a folder is, for a message; None otherwise."""
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_input(
    path: Path | str,
    what: str,
    *,
    allow_symlinks: bool = False,
    folder: bool = False,
    within: Path | None = None,
) -> None:
    """Raise :class:`UsageError` when ``path`` is not an input auditor may read (see the
    module's docstring); ``what`` names it in the message ("The model card").

    ``folder``: a folder is an input too (a TensorBoard log): every event file under it is
    checked, and a link among them must stay inside it. ``within``: the folder a link must
    stay in (default: the link's own folder).
    """
    path = Path(path)
    shown = repr(str(path))
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # the reader says it does not exist
    except OSError as exc:
        raise UsageError(f"{what} {shown} cannot be read ({exc.strerror or exc}).") from None
    real = Path(os.path.realpath(path))
    absolute = Path(os.path.abspath(path))
    if any(_inside(p, root) for p in (real, absolute) for root in _SYSTEM_ROOTS):
        raise UsageError(
            f"{what} {shown} is a file under /proc or /sys, which describe this machine and its processes; "
            "it is not an input.",
            hint="Pass a regular file.",
        )
    if stat.S_ISLNK(info.st_mode) and not allow_symlinks:
        home = Path(os.path.realpath(within if within is not None else absolute.parent))
        if not _inside(real, home):
            raise UsageError(
                f"{what} {shown} is a symbolic link that leads out of its folder; auditor does not follow "
                "such links on its own, so that a link cannot put another file (a key, a token) into the report.",
                hint=_ALLOW_SYMLINKS_HINT,
            )
    try:
        target = os.stat(path)
    except OSError:
        return  # a dangling link: the reader says the file does not exist
    kind = _special(target.st_mode)
    if kind is not None:
        raise UsageError(
            f"{what} {shown} is {kind}, not a regular file: reading it would block or never end.",
            hint="Pass a regular file (save what the stream gives to a file first).",
        )
    if folder and stat.S_ISDIR(target.st_mode):
        root = within if within is not None else path
        for inner in sorted(path.rglob("*tfevents*")):
            check_input(inner, what, allow_symlinks=allow_symlinks, within=root)


# --- what a data file that is not a table is ------------------------------------------------------

#: What auditor reads as data, and what to do with images until it reads them.
TABLES_ONLY = (
    "auditor reads tables (CSV, CSV.gz, Parquet), folders of images (in class sub-folders, or flat with "
    "--labels), NumPy archives (np.savez) and dicts of tensors (torch.save)"
)
#: The inputs that are data files (a folder or a binary file there gets :data:`TABLES_ONLY`).
DATA_INPUTS = ("The data file", "The training data")

# (magic bytes at offset 0, what the file is); longer and more specific signatures first.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO image"),
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"%PDF-", "a PDF document"),
    (b"ARROW1", "an Arrow/Feather file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document (.xls)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)


def binary_kind(path: Path | str, head: bytes) -> str | None:
    """What a data file whose first bytes are ``head`` (512 or more) is, when its magic bytes
    say it is an image, an array, an archive or a document, never a table; None otherwise.
    A zip is told apart by its member names (NumPy .npz, Excel .xlsx, a torch.save model)."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00" and len(head) > 26:
        return "a BMP image"
    if head[257:262] == b"ustar":
        return "a tar archive"
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()[:10_000]
        except (OSError, zipfile.BadZipFile, ValueError):
            return "a ZIP archive"
        if any(n.endswith(("data.pkl", "/version", "/.data/version")) or "/code/" in n for n in names):
            return "a saved model (torch.save or torch.jit.save)"
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy archive (.npz)"
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook (.xlsx)"
        images = sum(n.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")) for n in names)
        return "a ZIP archive of images" if images else "a ZIP archive"
    return None


def not_a_table(what: str, path: Path | str, kind: str) -> DataError:
    """The one message for a data file (``what``) that is ``kind`` ("a PNG image", "a folder")."""
    path = Path(path)
    name = repr(str(path)) if kind == "a folder" else path.name
    if kind.startswith("a saved model"):
        return DataError(
            f"{what} {name} looks like {kind}, not data: auditor reads tables (CSV, CSV.gz, Parquet).",
            hint="Did you swap the model and --data arguments? The model comes first: audit model.pt --data test.csv.",
        )
    if "Excel" in kind or ".xls" in kind:
        hint = "Save the sheet as 'CSV UTF-8' (Excel: File > Save As), or as Parquet."
    elif "image" in kind:
        hint = "Point --data at the folder of images (data/<class>/<image>), not at one image."
    else:
        hint = ("Save arrays with np.savez(path, X=inputs, y=labels), or a table with one row an example: "
                "its values as columns, then the target column.")
    return DataError(f"{what} {name} is {kind}. {TABLES_ONLY}.", hint=hint)


# --- reading within a bound ---------------------------------------------------------------------


def open_regular(path: Path | str, what: str, error: ErrorType = DataError) -> BinaryIO:
    """``path`` opened for reading in binary, without blocking on a FIFO; ``error`` when it
    is not a regular file. ``OSError`` (FileNotFoundError...) is left to the caller."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _special(mode) or ("a folder" if stat.S_ISDIR(mode) else "not a regular file")
            if kind == "a folder" and what in DATA_INPUTS:
                raise not_a_table(what, path, kind)
            raise error(f"{what} {path.name!r} is {kind}, not a regular file.", hint="Pass a regular file.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path | str, what: str, *, limit: int, error: ErrorType = DataError) -> bytes:
    """The bytes of the regular file ``path``; ``error`` when it holds more than ``limit``."""
    path = Path(path)
    with open_regular(path, what, error) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large(what, path, limit, error)
    return data


def check_depth(value: Any, what: str, error: ErrorType = DataError, *, limit: int = MAX_DEPTH) -> Any:
    """``value`` (parsed JSON, TOML or YAML), or ``error`` when its lists and tables nest
    deeper than ``limit``; walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, (list, tuple)) else ()
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                if depth + 1 > limit:
                    raise too_deep(what, limit, error)
                stack.append((child, depth + 1))
    return value


def too_deep(what: str, limit: int = MAX_DEPTH, error: ErrorType = DataError) -> AuditorError:
    return error(
        f"{what} nests lists or tables more than {limit} levels deep; no input auditor reads needs that.",
        hint="Check that it is the file you meant.",
    )


def loads_json(text: str | bytes, what: str, error: ErrorType = DataError) -> Any:
    """``json.loads(text)``, with nesting deeper than :data:`MAX_DEPTH` an ``error``.
    ``json.JSONDecodeError`` is left to the caller, which knows what the file should hold."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep(what, MAX_DEPTH, error) from None
    return check_depth(value, what, error)


class InputTooLarge(Exception):
    """Raised by :class:`BoundedStream` past its bound (readers turn it into their error)."""


class BoundedStream(io.RawIOBase):
    """A read-only stream over ``inner`` that raises :class:`InputTooLarge` once more than
    ``limit`` bytes have been read from it: a decompressing stream whose output has no
    bound of its own (a gzip bomb, a trailer that lies) stops there."""

    def __init__(self, inner: Any, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self.limit = limit
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise InputTooLarge(self.limit)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


# --- option values given as JSON -----------------------------------------------------------------

_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "true/false", type(None): "null"}
_MODEL_ARGS_EXAMPLE = "--model-args '{\"hidden\": 64, \"dropout\": 0.1}'"


def model_args(value: Any) -> dict[str, Any] | None:
    """``--model-args`` (setting ``model_args``): a JSON object of keyword arguments for the
    class ``--model-class`` names, as a dict (None stays None); a :class:`UsageError` when it
    is not JSON or not an object whose keys are Python identifiers."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        parsed: Any = value
    else:
        text = str(value)
        try:
            parsed = loads_json(text, "--model-args", UsageError)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"--model-args must be a JSON object of keyword arguments; got {text[:80]!r}, which is not "
                f"JSON ({exc.msg} at character {exc.pos + 1}).",
                hint=f"For example {_MODEL_ARGS_EXAMPLE} (JSON: double quotes, true/false/null).",
            ) from None
    if not isinstance(parsed, dict):
        raise UsageError(
            f"--model-args must be a JSON object of keyword arguments; got a JSON {_JSON_TYPES.get(type(parsed), 'value')}.",
            hint=f"For example {_MODEL_ARGS_EXAMPLE}.",
        )
    bad = [key for key in parsed if not str(key).isidentifier()]
    if bad:
        raise UsageError(
            f"--model-args: {bad[0]!r} is not a parameter name (keys are the constructor's keyword arguments).",
            hint=f"For example {_MODEL_ARGS_EXAMPLE}.",
        )
    return dict(parsed)
