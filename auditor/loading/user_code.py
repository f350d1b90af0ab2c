"""Importing a user's own code for a model: the class or factory ``--model-class`` names
(``package.module:Name``, from ``--model-path`` too), built with ``--model-args``; and the
function ``--trainer`` names. Importing a module runs its top level, so a module whose top
level fails (a training script) is a one-line ``UsageError`` that says so, as is a module
that cannot be found (saying where it was looked for) or a constructor that refuses the
arguments (naming its parameters).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from auditor.contract.errors import UsageError


def _on_path(folder: str) -> bool:
    """Whether ``folder`` is on ``sys.path`` (the empty entry is the current folder)."""
    here = Path(folder).resolve()
    return any(Path(entry or ".").resolve() == here for entry in sys.path)


def add_to_path(path: str | None) -> None:
    if path:
        folder = str(Path(path).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)


def cannot_import(
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
    add_to_path(path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise cannot_import(module_name, option, exc, path, kind) from None
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


def instantiate(spec: str, model_path: str | None, model_args: dict[str, Any] | None = None) -> torch.nn.Module:
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
