"""Load a model file safely, by content, onto a device.

| format | how it loads | trust |
|---|---|---|
| state_dict / safetensors + ``--model-class`` | class imported by name, ``weights_only=True`` | tensors only |
| TorchScript archive | code and pickles checked first, then ``torch.jit.load`` | code, no arbitrary Python |
| ``torch.export`` program (.pt2) | graph and pickles checked first, then ``torch.export.load`` | as TorchScript |
| whole pickled module | only with ``--trust-model`` | executes code in the file |

A pickle is never unpickled without ``--trust-model``: we never fall back to
``weights_only=False`` on our own, and never pass torch's advice to do so on to users.
Compiled programs call tensor operators only (:mod:`auditor.loading.programs`), unless
``--trust-model``; every zip member the checks read is bounded (:mod:`auditor.loading.sniff`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from auditor.contract.errors import ModelLoadError, UntrustedModelError, UsageError
from auditor.loading import programs
from auditor.loading.hashing import sha256_file
from auditor.loading.sniff import (
    UNREADABLE,
    MemberReader,
    ModelFormat,
    persistent_ids,
    pickle_globals,
    qualified_global,
    shown,
    sniff_model_format,
)
from auditor.run.inference import first_tensor

METADATA_NAME = "auditor.json"

TRUST_NOTES: dict[str, str] = {
    "torchscript": "TorchScript archive: it contains compiled code, loaded with torch.jit.load, "
    "which runs TorchScript only and refuses unknown Python globals; its code was checked to "
    "call tensor operators only (no files, terminal, network or custom code) before loading.",
    "export": "torch.export program: a graph of standard operators, checked to call tensor "
    "operators only before loading; its pickled members were checked to hold tensors only.",
    "state_dict": "Weights only (state_dict), loaded with weights_only=True into the class named "
    "by --model-class: no code from the file was run.",
    "safetensors": "safetensors weights loaded into the class named by --model-class: the format "
    "holds tensors only.",
    "pickle": "A whole pickled nn.Module, loaded because --trust-model was given: loading it ran "
    "code from the file.",
}

_CONVERT = (
    "Convert it in the environment that made it: torch.jit.save(torch.jit.script(model), 'model.pt'), "
    "or torch.save(model.state_dict(), 'weights.pt') and pass --model-class pkg.module:Class. "
    "Only if you trust the file's author, pass --trust-model."
)


@dataclass
class LoadedModel:
    """A model ready to run, with what the report says about it."""

    module: Any
    format: str
    path: Path
    sha256: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    trust: str = ""

    @property
    def name(self) -> str:
        """The name the model's metadata declares, else the file's stem."""
        declared = self.metadata.get("name")
        return declared if isinstance(declared, str) and declared.strip() else self.path.stem


def _allowed_globals() -> set[str]:
    """The globals torch's ``weights_only`` unpickler allows (its defaults plus any a user
    registered with ``torch.serialization.add_safe_globals``)."""
    from torch import _weights_only_unpickler as wou

    return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())


def _not_allowed(found: list[str], *, torchscript: bool = False) -> list[str]:
    """The globals in ``found`` that torch would not load with ``weights_only=True``; for a
    TorchScript archive the ``__torch__`` classes its own code defines are allowed too."""
    allowed = _allowed_globals()

    def ok(name: str) -> bool:
        if name in allowed:
            return True
        return torchscript and name.startswith(_TORCHSCRIPT_GLOBALS)

    return [g for g in dict.fromkeys(found) if not ok(g)]


# Globals a TorchScript data.pkl / constants.pkl legitimately holds: the archive's own compiled
# classes (``__torch__.*``) and the helpers torch's TorchScript unpickler resolves itself.
_TORCHSCRIPT_GLOBALS = ("__torch__.", "torch.jit._pickle.", "torch._utils._rebuild_")


def _zip_pickle_globals(
    archive: zipfile.ZipFile, reader: MemberReader, *, suffixes: tuple[str, ...] = (".pkl",)
) -> list[str]:
    """Every global the pickles (``*.pkl``) inside a zip archive would import, unpickling none."""
    found: list[str] = []
    for info in archive.infolist():
        if info.filename.endswith(suffixes):
            found += pickle_globals(reader.read(archive, info))
    return found


def _unsafe_globals(path: Path) -> list[str]:
    """The globals a zip ``torch.save`` checkpoint would import that ``weights_only=True``
    does not allow, found without unpickling it: by torch's own scanner, else (a pickle
    opcode torch's scanner does not know) by walking every ``.pkl`` member's opcodes."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        # torch names globals as written; protocol-2 pickles use Python 2 names (commands.Popen)
        return list(dict.fromkeys(qualified_global(*g.rpartition(".")[::2]) for g in found))
    except Exception:  # noqa: BLE001 - torch's scanner gave up: walk the opcodes ourselves
        pass
    reader = MemberReader(shown(path.name))
    try:
        with reader.open(path, path.stat().st_size) as archive:
            found = _zip_pickle_globals(archive, reader)
    except ModelLoadError:
        raise
    except Exception:  # noqa: BLE001 - an archive we cannot read at all is unsafe to unpickle
        found = [UNREADABLE]
    return _not_allowed(found) or ([] if found else ["<no pickle found>"])


def _main_classes(globals_: list[str]) -> list[str]:
    """The globals a pickle names in ``__main__``: classes (or functions) defined in the script
    that saved it, which no other program can import."""
    return [g for g in dict.fromkeys(globals_) if g.startswith("__main__.")]


def _main_fix(main: list[str]) -> str:
    """How to save a model whose class lived in the training script, so that auditor loads it."""
    cls = main[0].split(".", 1)[1].split(".")[0] or "Net"
    return (
        "In the training script, save TorchScript instead: torch.jit.save(torch.jit.script(model), "
        f"'model.pt'); or put {cls} in a module without top-level training code (mynets.py; "
        f"'from mynets import {cls}' in the training script), save torch.save(model.state_dict(), "
        f"'weights.pt') and pass --model-class mynets:{cls} --model-path . (plus --model-args "
        "'{\"hidden\": 64}' for its constructor's arguments); a whole model saved with the class "
        "imported from that module loads with --trust-model."
    )


def _main_problem(main: list[str]) -> str:
    more = f" (and {len(main) - 1} more)" if len(main) > 1 else ""
    return (
        f"its class {main[0]}{more} was defined in the script that saved it (__main__), and Python can "
        "rebuild a pickled object only where its class can be imported, so no other program (auditor "
        "included, even with --trust-model) can load it"
    )


def _pickled_in_main(path: Path, main: list[str]) -> ModelLoadError:
    return ModelLoadError(
        f"{shown(path.name)} holds a whole model saved with torch.save(model), and it cannot be "
        f"loaded: {_main_problem(main)}; the file is not corrupt.",
        hint=_main_fix(main),
    )


def _refuse_pickle(path: Path, what: str, globals_: list[str]) -> UntrustedModelError:
    named = [g for g in dict.fromkeys(globals_) if not g.startswith("<")]
    notes = [g for g in dict.fromkeys(globals_) if g.startswith("<")]
    imports = ""
    if named:
        more = f" and {len(named) - 8} more" if len(named) > 8 else ""
        imports = f" It would import: {', '.join(named[:8])}{more}."
    elif notes:
        imports = " What it would import cannot be read without running it."
    main = _main_classes(globals_)
    if main:
        return UntrustedModelError(
            f"Refusing to load {shown(path.name)}: it is {what}, and unpickling it can run any code its "
            f"author chose.{imports} Also, {_main_problem(main)}.",
            hint=_main_fix(main),
        )
    return UntrustedModelError(
        f"Refusing to load {shown(path.name)}: it is {what}, and unpickling it can run any code its "
        f"author chose.{imports}",
        hint=_CONVERT,
    )


def _on_path(folder: str) -> bool:
    """Whether ``folder`` is on ``sys.path`` (the empty entry is the current folder)."""
    here = Path(folder).resolve()
    return any(Path(entry or ".").resolve() == here for entry in sys.path)


def _add_to_path(path: str | None) -> None:
    if path:
        folder = str(Path(path).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)


def _cannot_import(
    module_name: str, option: str, exc: ImportError, path: str | None, kind: str = "class"
) -> UsageError:
    """Why ``module_name`` cannot be imported, and whether the current folder was searched."""
    if path:
        where = f"it was looked for in --model-path {path!r} and the installed packages"
        hint = (f"Check that {module_name.replace('.', '/')}.py is inside {path!r}, or install its package. "
                f"Put the {kind} in a module without top-level training code.")
    else:
        here = "is" if _on_path(".") else "is not"
        where = f"the current folder {here} on the import path and no --model-path was given"
        hint = ("Pass --model-path . (or the folder that holds the module), or install its package. "
                f"Put the {kind} in a module without top-level training code: importing the module runs it.")
    return UsageError(f"Cannot import the module {module_name!r} named by {option} ({exc}): {where}.", hint=hint)


def import_object(spec: str, path: str | None, *, option: str = "--model-class", kind: str = "class") -> Any:
    """The object ``pkg.module:attr`` names, importing from ``path`` too when given; a
    :class:`UsageError` naming ``option`` when it cannot be found. Importing runs the module's
    top level: a module whose top level fails (a training script that trains and saves when
    imported) is a :class:`UsageError` that says so."""
    example = "package.module:ClassName" if kind == "class" else "package.module:function_name"
    if ":" not in spec:
        raise UsageError(
            f"{option} must look like {example!r}; got {spec!r}.",
            hint=f"Separate the module and the {kind} with a colon.",
        )
    module_name, _, attr = spec.partition(":")
    _add_to_path(path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _cannot_import(module_name, option, exc, path, kind) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module's own top-level code failed
        from auditor.loading.sniff import meaningful_line

        raise UsageError(
            f"Importing {module_name!r} for {option} ran its top-level code, which failed: put the {kind} in "
            f"a module without top-level training code ({type(exc).__name__}: {meaningful_line(exc, 200)}).",
            hint=f"{option} imports the module, which runs everything at its top level (a training script "
            "trains again): move the class to mynets.py and import it from the training script.",
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"The module {module_name!r} has no attribute {attr!r} ({option}).")
        target = getattr(target, part)
    return target


def _instantiate(spec: str, model_path: str | None, model_args: dict[str, Any] | None = None) -> torch.nn.Module:
    """The model ``spec`` builds, called with ``model_args`` (``--model-args``) as keyword
    arguments; a constructor that refuses them is a :class:`UsageError` naming the parameter."""
    import inspect

    factory = import_object(spec, model_path)
    args = dict(model_args or {})
    given = f"--model-args {json.dumps(args)}" if args else "no arguments"
    try:
        signature: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: let the call say
        signature = None
    if signature is not None:
        try:
            signature.bind(**args)
        except TypeError as exc:
            params = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
            takes = f"it takes {', '.join(params)}" if params else "it takes no arguments"
            raise UsageError(
                f"Cannot build {spec} with {given}: {exc} ({takes}).",
                hint="Pass the constructor's keyword arguments as JSON, e.g. --model-args "
                "'{\"hidden\": 64}', with the values the weights were trained with.",
            ) from None
    try:
        module = factory(**args)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"Cannot build {spec} with {given}: {type(exc).__name__}: {str(exc)[:300]}",
            hint="Pass the constructor's keyword arguments as JSON, e.g. --model-args '{\"hidden\": 64}'.",
        ) from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"{spec} returned {type(module).__name__}, not a torch.nn.Module.")
    return module


def _state_dict_from(obj: Any, path: Path) -> dict[str, torch.Tensor]:
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


def _load_weights_into(
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


# Members of a .pt2 archive that torch reads as text or JSON, never unpickles.
_EXPORT_TEXT = frozenset(
    {"archive_format", "archive_version", "version", "byteorder", "serialization_id"}
)
# Folders of compiled native code (AOTInductor .so files and the like): loading runs it.
_EXPORT_NATIVE = ("/data/aotinductor/", "/data/mtia/", "/data/executorch/")


def _export_raw_tensors(path: Path, configs: list[tuple[str, Any]]) -> tuple[set[str], list[str]]:
    """The members a .pt2's payload configs (``data/weights/*_config.json``, parsed) declare
    raw tensor bytes (read as bytes, never unpickled), and the weights/constants they mark
    ``use_pickle`` (torch unpickles those with ``weights_only=False``)."""
    raw: set[str] = set()
    pickled: list[str] = []
    for name, parsed in configs:
        folder, _, base = name.rpartition("/")
        lowered = folder.lower()
        if not base.lower().endswith("_config.json") or not lowered.endswith(("/data/weights", "/data/constants")):
            continue
        try:
            config = (parsed or {}).get("config", {})
            entries = [(str(k), dict(meta)) for k, meta in config.items()]
        except Exception:  # noqa: BLE001 - a config torch could not parse either
            raise ModelLoadError(
                f"The torch.export program {shown(path.name)} has an invalid payload config "
                f"({shown(name.split('/', 1)[-1])}).",
                hint="The file is probably corrupt; export and save the model again.",
            ) from None
        for key, meta in entries:
            member = f"{folder}/{meta.get('path_name', '')}"
            if meta.get("use_pickle"):
                pickled.append(key)
            elif not str(meta.get("path_name", "")).startswith(("custom_obj_", "opaque_obj_")):
                raw.add(member)  # custom_obj_/opaque_obj_ members are pickles whatever the flag
    return raw, pickled


def _is_export_program(name: str) -> bool:
    """A member torch.export.load reads as a program's graph: ``<root>/models/<name>.json``,
    or ``serialized_exported_program.json`` in the format before torch 2.8."""
    name = name.lower()  # torch finds records without regard to case
    inner = name.split("/", 1)[-1]
    return (inner.startswith("models/") and name.endswith(".json")) or name == "serialized_exported_program.json"


def _refuse_program(path: Path, what: str, findings: list[programs.Finding]) -> UntrustedModelError:
    return UntrustedModelError(
        f"Refusing to run {shown(path.name)}: its {what} uses {programs.describe(findings)}.",
        hint="auditor runs programs of tensor operators only; save the model again without that "
        "call, or pass --trust-model if you trust the file's author.",
    )


def _check_export_members(path: Path, trust: bool) -> None:
    """Refuse a .pt2 that torch.export.load would unpickle code from, run native code from, or
    whose graph calls anything but tensor operators (:mod:`auditor.loading.programs`).

    Every member that is not a declared raw tensor, a JSON document or a small text record is
    walked as a pickle (a nested torch.save zip: its ``.pkl`` members), statically: torch loads
    some of them with ``weights_only=False`` (members marked ``use_pickle``, ``opaque_obj_``
    constants, sample inputs or legacy weight files when ``weights_only=True`` fails, and a
    pre-2.8 archive's ``serialized_state_dict.json``, a pickle whatever its name: so a member
    named ``.json`` that is not JSON is walked as a pickle too). Every read is bounded
    (:class:`~auditor.loading.sniff.MemberReader`).
    """
    reader = MemberReader(shown(path.name))
    findings: list[programs.Finding] = []
    with reader.open(path, path.stat().st_size) as archive:
        infos = [info for info in archive.infolist() if not info.filename.endswith("/")]
        names = [info.filename for info in infos]
        documents: list[tuple[str, Any]] = []  # every one: names can repeat in a zip
        not_json: dict[int, bytes] = {}
        for index, info in enumerate(infos):
            if info.filename.lower().endswith(".json"):
                data = reader.read(archive, info)
                try:
                    documents.append((info.filename, json.loads(data)))
                except (ValueError, RecursionError):  # not JSON: walked as a pickle below
                    not_json[index] = data
        raw, pickled = _export_raw_tensors(path, documents)
        native = [n for n in names if any(d in f"/{n}".lower() for d in _EXPORT_NATIVE)]
        if not trust:
            for name, document in documents:
                if _is_export_program(name):
                    findings += programs.export_findings(document, name.split("/", 1)[-1])
        unsafe: list[str] = []
        scanned: list[str] = []
        for index, info in enumerate(infos):
            name = info.filename
            base = name.rsplit("/", 1)[-1]
            is_document = name.lower().endswith(".json") and index not in not_json
            if name in raw or name in native or is_document or base in _EXPORT_TEXT:
                continue
            if "/extra/" in f"/{name}":  # extra files are decoded as UTF-8 text
                continue
            data = not_json[index] if index in not_json else reader.read(archive, info)
            if data[:4] == b"PK\x03\x04":
                try:
                    with reader.open(io.BytesIO(data), len(data)) as inner:
                        found = _zip_pickle_globals(inner, reader)
                except ModelLoadError:
                    raise
                except Exception:  # noqa: BLE001 - a nested archive torch could not read either
                    found = [UNREADABLE]
            else:
                found = pickle_globals(data)
            bad = _not_allowed(found)
            if bad:
                unsafe += bad
                scanned.append(shown(name.split("/", 1)[-1]))
    if trust:
        return
    if native:
        raise UntrustedModelError(
            f"Refusing to load {shown(path.name)}: it is a torch.export package with compiled native "
            f"code ({shown(native[0].split('/', 1)[-1])}), and loading it runs that code.",
            hint="Save the program without AOTInductor artifacts (torch.export.save), "
            "or pass --trust-model if you trust the file's author.",
        )
    if unsafe and not pickled and all(g == UNREADABLE for g in unsafe):
        raise ModelLoadError(
            f"The torch.export program {shown(path.name)} is corrupt: its member {scanned[0]} "
            "is not a readable pickle.",
            hint="Export and save the model again with torch.export.save.",
        )
    if unsafe or pickled:
        members = ", ".join((scanned or [shown(p) for p in pickled])[:3])
        raise _refuse_pickle(
            path, f"a torch.export program whose pickled members ({members}) hold Python objects", unsafe
        )
    if findings:
        raise _refuse_program(path, "torch.export graph", findings)


def _storage_element_size(type_name: Any) -> int | None:
    """Bytes per element of a pickled storage type (``torch.FloatStorage``...), else None."""
    if type_name == "torch.UntypedStorage":
        return 1
    attr = str(type_name).removeprefix("torch.")
    if not isinstance(type_name, str) or not attr.endswith("Storage") or not hasattr(torch, attr):
        return None
    with warnings.catch_warnings():  # "TypedStorage is deprecated"
        warnings.simplefilter("ignore")
        dtype = getattr(getattr(torch, attr), "dtype", None)
    return torch._utils._element_size(dtype) if isinstance(dtype, torch.dtype) else None


def _check_torchscript_storages(path: Path, sizes: dict[str, int], pickles: list[tuple[str, bytes]]) -> None:
    """Every tensor storage data.pkl / constants.pkl declare must be in the archive, as large
    as declared: torch.jit.load trusts the declared size and reads past a short record.
    ``sizes`` is keyed by lower-cased name (torch finds records without regard to case)."""
    for pkl, folder in (("/data.pkl", "data"), ("/constants.pkl", "constants")):
        for name, data in [(n, d) for n, d in pickles if n.lower().endswith(pkl)]:
            root = name.split("/", 1)[0]
            try:
                pids = persistent_ids(data)
            except ValueError as exc:
                raise ModelLoadError(
                    f"The TorchScript archive {shown(path.name)} is corrupt: {shown(name.split('/', 1)[-1])} "
                    f"is not a readable pickle ({exc}).",
                    hint="Save the model again with torch.jit.save.",
                ) from None
            for pid in pids:
                if len(pid) < 5 or pid[0] != "storage":
                    continue
                _, type_name, key, _location, numel = pid[:5]
                record = f"{root}/{folder}/{key}".lower()
                element = _storage_element_size(type_name)
                need = numel * element if isinstance(numel, int) and element else 0
                if record not in sizes or sizes[record] < need:
                    have = "is missing" if record not in sizes else f"holds {sizes[record]} bytes"
                    raise ModelLoadError(
                        f"The TorchScript archive {shown(path.name)} is corrupt: the tensor storage "
                        f"{shown(f'{folder}/{key}')} {have}, but {shown(name.split('/', 1)[-1])} "
                        f"declares {need} bytes.",
                        hint="Save the model again with torch.jit.save.",
                    )


def _torchscript_program(path: Path, archive: zipfile.ZipFile, reader: MemberReader) -> list[programs.Finding]:
    """What the archive's code calls that :mod:`auditor.loading.programs` refuses; a
    :class:`ModelLoadError` when a code member does not parse."""
    names = archive.namelist()
    if programs.is_legacy_torchscript(names):
        return [programs.Finding("model.json", "is the TorchScript format of torch before 1.4, whose "
                                 "code auditor cannot check", "model.json")]
    findings: list[programs.Finding] = []
    for info in archive.infolist():  # every member, duplicated names included
        if not programs.is_code_member(info.filename):
            continue
        try:
            findings += programs.torchscript_findings(info.filename, reader.read(archive, info))
        except programs.UnreadableProgram as exc:
            raise ModelLoadError(
                f"The TorchScript archive {shown(path.name)} is corrupt: its code member "
                f"{shown(info.filename.split('/', 1)[-1])} does not parse ({exc}).",
                hint="Save the model again with torch.jit.save.",
            ) from None
    return findings


def _check_torchscript_pickles(path: Path, trust: bool) -> None:
    """Refuse a TorchScript archive whose data.pkl / constants.pkl import anything but its own
    compiled classes and tensors, or whose code calls anything but tensor operators
    (:mod:`auditor.loading.programs`: files, the terminal, the network, custom operators and
    classes, ``__setstate__``). torch's TorchScript unpickler already rejects unknown globals
    ("Unknown type name"); checking first keeps that true whatever torch version runs, and
    tells the user what the file would have imported. Its ``.debug_pkl`` members (source
    ranges) must be readable pickles too: torch reads them while reporting a compile error,
    and an unreadable one aborts the process from torch's C++. Every read is bounded
    (:class:`~auditor.loading.sniff.MemberReader`)."""
    reader = MemberReader(shown(path.name))
    with reader.open(path, path.stat().st_size) as archive:
        infos = archive.infolist()
        pickles = [  # every one: torch finds records without regard to case, and names can repeat
            (info.filename, reader.read(archive, info))
            for info in infos
            if info.filename.lower().endswith(("/data.pkl", "/constants.pkl")) and info.filename.count("/") == 1
        ]
        found = [g for _, data in pickles for g in pickle_globals(data)]
        sizes: dict[str, int] = {}
        for info in infos:
            key = info.filename.lower()
            sizes[key] = min(sizes.get(key, info.file_size), info.file_size)
        _check_torchscript_storages(path, sizes, pickles)
        for info in infos:
            if info.filename.lower().endswith(".debug_pkl") and UNREADABLE in pickle_globals(
                reader.read(archive, info), max_pickles=1
            ):
                raise ModelLoadError(
                    f"The TorchScript archive {shown(path.name)} is corrupt: its member "
                    f"{shown(info.filename.split('/', 1)[-1])!r} is not a readable pickle.",
                    hint="Save the model again with torch.jit.save.",
                )
        findings = [] if trust else _torchscript_program(path, archive, reader)
    if trust:
        return
    unsafe = _not_allowed(found, torchscript=True)
    if unsafe:
        raise _refuse_pickle(
            path, "a TorchScript archive whose pickled data imports Python objects it does not define", unsafe
        )
    findings += programs.pickled_classes(found, "data.pkl")
    if findings:
        raise _refuse_program(path, "TorchScript code", findings)


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence torch loggers that print a traceback (``exc_info``) before torch raises or
    falls back: the user gets our one-line message instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class FixedBatch(torch.nn.Module):
    """Runs an exported program whose batch dimension was fixed at export (``size`` rows) on
    any number of rows: padded (repeating the last row) to a whole number of batches, run as
    one vectorised call (``torch.func.vmap`` over the batches) or, for a program vmap cannot
    batch, batch by batch; the padding's outputs are dropped. Gradients flow through it."""

    def __init__(self, program: torch.nn.Module, size: int) -> None:
        super().__init__()
        self.program = program
        self.size = size
        self.vectorised: bool | None = None  # None: not tried yet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n == self.size:
            return first_tensor(self.program(x))
        short = -n % self.size
        if short:
            x = torch.cat([x, x[-1:].expand(short, *x.shape[1:])])
        batches = x.reshape(-1, self.size, *x.shape[1:])
        out: torch.Tensor | None = None
        if self.vectorised is not False:
            try:
                out = first_tensor(torch.func.vmap(self.program)(batches))
                self.vectorised = True
            except Exception:  # noqa: BLE001 - an op without a batching rule: go batch by batch
                if self.vectorised:
                    raise
                self.vectorised = False
        if out is None:
            out = torch.stack([first_tensor(self.program(b)) for b in batches])
        return out.reshape(-1, *out.shape[2:])[:n]


def _static_batch(program: Any) -> int | None:
    """The batch size an exported program was fixed to (None when its batch is dynamic)."""
    names = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in names:
            value = node.meta.get("val")
            shape = getattr(value, "shape", None)
            if shape is not None and len(shape) and isinstance(shape[0], int):
                return int(shape[0])
            return None
    return None


def _read_metadata(path: Path, embedded: str | None) -> dict[str, Any]:
    """The model's metadata: embedded, then the sidecar's fields over it, each source checked
    by :func:`auditor.loading.metadata.check_metadata` (a wrong field is exit 2 naming it)."""
    from auditor.loading.metadata import check_metadata, describe

    meta: dict[str, Any] = {}
    sources = []
    if embedded:
        sources.append((f"auditor.json embedded in {path.name}", embedded))
    sidecar = path.with_name(path.stem + ".auditor.json")
    if sidecar.exists():  # a FIFO or a device is refused, not waited on; metadata is small
        from auditor.loading.inputs import read_bytes, small_limit

        raw = read_bytes(sidecar, "The model metadata file", limit=small_limit(), error=ModelLoadError)
        try:
            sources.append((sidecar.name, raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise ModelLoadError(f"The model metadata ({sidecar.name}) is not UTF-8 text.", hint="Save it as UTF-8.") from None
    for label, text in sources:
        from auditor.loading.inputs import loads_json

        try:
            loaded = loads_json(text, f"The model metadata ({label})", ModelLoadError)
        except ValueError as exc:
            raise ModelLoadError(
                f"The model metadata ({label}) is not valid JSON: {exc}.", hint="Fix or remove it."
            ) from None
        if not isinstance(loaded, dict):
            raise ModelLoadError(
                f"The model metadata ({label}) must be a JSON object; got {describe(loaded)}.",
                hint="Fix or remove it.",
            )
        meta.update(check_metadata(loaded, label))  # every field the run reads: type and value
    return {key: value for key, value in meta.items() if value is not None}


def load_model(
    path: Path,
    *,
    device: torch.device,
    model_class: str | None = None,
    model_path: str | None = None,
    trust: bool = False,
    model_args: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load the model at ``path`` onto ``device``, refusing pickles unless ``trust``."""
    fmt: ModelFormat = sniff_model_format(path)
    embedded: str | None = None
    kind: str = fmt  # the format as loaded: a torch_zip or pickle may turn out a state_dict
    module: Any
    try:
        if fmt == "torchscript":
            _check_torchscript_pickles(path, trust)
            extra = {METADATA_NAME: ""}
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
            embedded = extra[METADATA_NAME] or None
        elif fmt == "export":
            _check_export_members(path, trust)
            with _quiet_loggers("torch.export", "torch._export"):  # no tracebacks on stderr
                program = torch.export.load(str(path))
            module = program.module().to(device)
            fixed = _static_batch(program)
            if fixed is not None:
                module = FixedBatch(module, fixed)
        elif fmt == "safetensors":
            import safetensors.torch

            if not model_class:
                raise ModelLoadError(
                    f"{path.name} holds safetensors weights only; auditor needs the model's class.",
                    hint="Pass --model-class package.module:ClassName (and --model-path DIR).",
                )
            state = safetensors.torch.load_file(str(path))
            with safetensors.safe_open(str(path), framework="pt") as handle:
                embedded = (handle.metadata() or {}).get("auditor")
            module = _instantiate(model_class, model_path, model_args)
            _load_weights_into(module, state, path, model_class)
            module = module.to(device)
        else:  # torch_zip or legacy pickle: torch.save output
            if fmt == "torch_zip":
                unsafe = _unsafe_globals(path)
            else:  # a plain or legacy pickle: refused without trust, but say what it imports
                with path.open("rb") as handle:
                    unsafe = _not_allowed(pickle_globals(handle))
            if not unsafe and fmt == "torch_zip":
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
                if not model_class:
                    raise ModelLoadError(
                        f"{path.name} holds weights only (a state_dict), not a runnable model.",
                        hint="Pass --model-class package.module:ClassName (and --model-path DIR), "
                        "or save the model with torch.jit.save(torch.jit.script(model), 'model.pt').",
                    )
                module = _instantiate(model_class, model_path, model_args)
                _load_weights_into(module, _state_dict_from(obj, path), path, model_class)
                module = module.to(device)
                kind = "state_dict"
            elif not trust:
                what = "a pickled Python object (torch.save of a whole model)"
                if fmt == "pickle":
                    what = "a pickle file (a plain pickle or a legacy non-zip torch.save)"
                raise _refuse_pickle(path, what, unsafe)
            else:
                main = _main_classes(unsafe)
                if main:  # its class is not importable here: say why, before torch says "corrupt"
                    raise _pickled_in_main(path, main)
                _add_to_path(model_path)  # the pickle imports its classes: from --model-path too
                try:
                    obj = torch.load(str(path), map_location=device, weights_only=False)
                except ImportError as exc:
                    missing = getattr(exc, "name", None) or str(exc)
                    raise _cannot_import(missing, f"the pickle in {shown(path.name)}", exc, model_path) from None
                if isinstance(obj, torch.nn.Module):
                    module = obj
                    kind = "pickle"
                elif model_class:
                    module = _instantiate(model_class, model_path, model_args)
                    _load_weights_into(module, _state_dict_from(obj, path), path, model_class)
                    module = module.to(device)
                    kind = "state_dict"
                else:
                    raise ModelLoadError(
                        f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module.",
                        hint="Pass --model-class if it holds weights.",
                    )
    except (ModelLoadError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - torch's many failure types become one message
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ModelLoadError(
            f"torch could not load {path.name} as {fmt}: {type(exc).__name__}: {line}",
            hint="The file may be corrupt or saved by an incompatible torch version; save it again.",
        ) from None

    if kind != "export":  # an exported program is already in inference form; it refuses eval()
        module.eval()
    return LoadedModel(
        module=module,
        format=kind,
        path=path,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        metadata=_read_metadata(path, embedded),
        trust=TRUST_NOTES[kind],
    )
