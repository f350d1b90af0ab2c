"""Whether a pickled model file is safe to unpickle, and the refusal that explains it when not.

A pickle is safe when every global it would import is one torch's ``weights_only`` unpickler
allows (found without unpickling: torch's own scanner, else a walk of the pickle opcodes).
Otherwise it is refused unless ``--trust-model``, saying what it would import; a model whose
class was defined in the script that saved it (``__main__``) cannot be loaded by any other
program, so the message says how to save it so that auditor can load it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from auditor.contract.errors import ModelLoadError, UntrustedModelError
from auditor.loading.sniff import UNREADABLE, MemberReader, pickle_globals, qualified_global, shown

_CONVERT = (
    "Convert it in the environment that made it: torch.jit.save(torch.jit.script(model), 'model.pt'), "
    "or torch.save(model.state_dict(), 'weights.pt') and pass --model-class pkg.module:Class. "
    "Only if you trust the file's author, pass --trust-model."
)


def _allowed_globals() -> set[str]:
    """The globals torch's ``weights_only`` unpickler allows (its defaults plus any a user
    registered with ``torch.serialization.add_safe_globals``)."""
    from torch import _weights_only_unpickler as wou

    return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())


def not_allowed(found: list[str], *, torchscript: bool = False) -> list[str]:
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


def zip_pickle_globals(
    archive: zipfile.ZipFile, reader: MemberReader, *, suffixes: tuple[str, ...] = (".pkl",)
) -> list[str]:
    """Every global the pickles (``*.pkl``) inside a zip archive would import, unpickling none."""
    found: list[str] = []
    for info in archive.infolist():
        if info.filename.endswith(suffixes):
            found += pickle_globals(reader.read(archive, info))
    return found


def unsafe_globals(path: Path) -> list[str]:
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
            found = zip_pickle_globals(archive, reader)
    except ModelLoadError:
        raise
    except Exception:  # noqa: BLE001 - an archive we cannot read at all is unsafe to unpickle
        found = [UNREADABLE]
    return not_allowed(found) or ([] if found else ["<no pickle found>"])


def main_classes(globals_: list[str]) -> list[str]:
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


def pickled_in_main(path: Path, main: list[str]) -> ModelLoadError:
    return ModelLoadError(
        f"{shown(path.name)} holds a whole model saved with torch.save(model), and it cannot be "
        f"loaded: {_main_problem(main)}; the file is not corrupt.",
        hint=_main_fix(main),
    )


def refuse_pickle(path: Path, what: str, globals_: list[str]) -> UntrustedModelError:
    named = [g for g in dict.fromkeys(globals_) if not g.startswith("<")]
    notes = [g for g in dict.fromkeys(globals_) if g.startswith("<")]
    imports = ""
    if named:
        more = f" and {len(named) - 8} more" if len(named) > 8 else ""
        imports = f" It would import: {', '.join(named[:8])}{more}."
    elif notes:
        imports = " What it would import cannot be read without running it."
    main = main_classes(globals_)
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
