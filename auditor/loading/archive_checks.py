"""The checks a TorchScript archive or a ``torch.export`` program (.pt2) passes before torch
loads it, every zip member read bounded (:class:`~auditor.loading.sniff.MemberReader`).

- its pickled members import nothing ``weights_only`` refuses (:mod:`auditor.loading.pickle_safety`),
  beyond a TorchScript archive's own compiled classes;
- its code (TorchScript) or graph (torch.export) calls tensor operators only
  (:mod:`auditor.loading.programs`), unless ``--trust-model``;
- a .pt2 holds no compiled native code (AOTInductor), which loading would run;
- a TorchScript archive's tensor storages are as large as its pickles declare, and its
  ``.debug_pkl`` members are readable (torch would read past a short record, or abort).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from auditor.contract.errors import ModelLoadError, UntrustedModelError
from auditor.loading import programs
from auditor.loading.pickle_safety import not_allowed, refuse_pickle, zip_pickle_globals
from auditor.loading.sniff import UNREADABLE, MemberReader, persistent_ids, pickle_globals, shown

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


def check_export_members(path: Path, trust: bool) -> None:
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
                        found = zip_pickle_globals(inner, reader)
                except ModelLoadError:
                    raise
                except Exception:  # noqa: BLE001 - a nested archive torch could not read either
                    found = [UNREADABLE]
            else:
                found = pickle_globals(data)
            bad = not_allowed(found)
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
        raise refuse_pickle(
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


def check_torchscript_pickles(path: Path, trust: bool) -> None:
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
    unsafe = not_allowed(found, torchscript=True)
    if unsafe:
        raise refuse_pickle(
            path, "a TorchScript archive whose pickled data imports Python objects it does not define", unsafe
        )
    findings += programs.pickled_classes(found, "data.pkl")
    if findings:
        raise _refuse_program(path, "TorchScript code", findings)
