"""Load a model file safely, by content, onto a device.

| format | how it loads | trust |
|---|---|---|
| state_dict / safetensors + ``--model-class`` | class imported by name, ``weights_only=True`` | tensors only |
| TorchScript archive | ``torch.jit.load`` | code, but no arbitrary Python |
| ``torch.export`` program (.pt2) | pickled members inspected first, then ``torch.export.load`` | as TorchScript |
| whole pickled module | only with ``--trust-model`` | executes code in the file |

A pickle is never unpickled without ``--trust-model``: we never fall back to
``weights_only=False`` on our own, and never pass torch's advice to do so on to users.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError, UntrustedModelError, UsageError
from ..hashing import sha256_file
from ..inference import first_tensor
from .sniff import ModelFormat, sniff_model_format

METADATA_NAME = "auditor.json"

TRUST_NOTES: dict[str, str] = {
    "torchscript": "TorchScript archive: it contains compiled code, loaded with torch.jit.load, "
    "which runs TorchScript only and refuses unknown Python globals.",
    "export": "torch.export program: a graph of standard operators; its pickled members were "
    "checked to hold tensors only before loading.",
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


def _unsafe_globals(data: bytes | Path) -> list[str]:
    """The Python globals a torch.save pickle would import, found without unpickling it."""
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(source))
    except Exception:  # noqa: BLE001 - a file torch cannot even scan is reported as unreadable
        return ["<unreadable pickle>"]


def _refuse_pickle(path: Path, what: str, globals_: list[str]) -> UntrustedModelError:
    imports = f" It would import: {', '.join(globals_[:6])}." if globals_ else ""
    return UntrustedModelError(
        f"Refusing to load {path.name}: it is {what}, and unpickling it can run any code its "
        f"author chose.{imports}",
        hint=_CONVERT,
    )


def import_object(spec: str, path: str | None, *, option: str = "--model-class", kind: str = "class") -> Any:
    """The object ``pkg.module:attr`` names, importing from ``path`` too when given; a
    :class:`UsageError` naming ``option`` when it cannot be found."""
    example = "package.module:ClassName" if kind == "class" else "package.module:function_name"
    if ":" not in spec:
        raise UsageError(
            f"{option} must look like {example!r}; got {spec!r}.",
            hint=f"Separate the module and the {kind} with a colon.",
        )
    module_name, _, attr = spec.partition(":")
    if path:
        folder = str(Path(path).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"Cannot import the module {module_name!r} named by {option} ({exc}).",
            hint="Pass --model-path DIR with the folder that holds it, or install its package.",
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"The module {module_name!r} has no attribute {attr!r} ({option}).")
        target = getattr(target, part)
    return target


def _instantiate(spec: str, model_path: str | None) -> torch.nn.Module:
    factory = import_object(spec, model_path)
    try:
        module = factory()
    except TypeError as exc:
        raise UsageError(
            f"Cannot build {spec} with no arguments ({exc}).",
            hint="Point --model-class at a function that takes no arguments and returns the model.",
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


def _check_export_members(path: Path, trust: bool) -> None:
    """Refuse a .pt2 whose members would be unpickled with weights_only=False."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith("_config.json"):
                config = json.loads(archive.read(name) or b"{}").get("config", {})
                pickled = [k for k, meta in config.items() if meta.get("use_pickle")]
                if pickled and not trust:
                    raise _refuse_pickle(
                        path, f"a torch.export program whose members {pickled[:3]} are pickles", []
                    )
            elif "/sample_inputs/" in name or name.endswith(".pkl"):
                unsafe = _unsafe_globals(archive.read(name))
                if unsafe and not trust:
                    raise _refuse_pickle(path, f"a torch.export program whose {name} is a pickle", unsafe)


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
    meta: dict[str, Any] = {}
    sources = []
    if embedded:
        sources.append(("embedded auditor.json", embedded))
    sidecar = path.with_name(path.stem + ".auditor.json")
    if sidecar.is_file():
        sources.append((sidecar.name, sidecar.read_text(encoding="utf-8")))
    for label, text in sources:
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise ModelLoadError(
                f"The model metadata ({label}) is not valid JSON: {exc}.", hint="Fix or remove it."
            ) from None
        if not isinstance(loaded, dict):
            raise ModelLoadError(f"The model metadata ({label}) must be a JSON object.")
        meta.update(loaded)
    return meta


def load_model(
    path: Path,
    *,
    device: torch.device,
    model_class: str | None = None,
    model_path: str | None = None,
    trust: bool = False,
) -> LoadedModel:
    """Load the model at ``path`` onto ``device``, refusing pickles unless ``trust``."""
    fmt: ModelFormat = sniff_model_format(path)
    embedded: str | None = None
    kind = fmt
    module: Any
    try:
        if fmt == "torchscript":
            extra = {METADATA_NAME: ""}
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
            embedded = extra[METADATA_NAME] or None
        elif fmt == "export":
            _check_export_members(path, trust)
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
            module = _instantiate(model_class, model_path)
            _load_weights_into(module, state, path, model_class)
            module = module.to(device)
        else:  # torch_zip or legacy pickle: torch.save output
            unsafe = _unsafe_globals(path) if fmt == "torch_zip" else ["<legacy pickle: not scanned>"]
            if not unsafe and fmt == "torch_zip":
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
                if not model_class:
                    raise ModelLoadError(
                        f"{path.name} holds weights only (a state_dict), not a runnable model.",
                        hint="Pass --model-class package.module:ClassName (and --model-path DIR), "
                        "or save the model with torch.jit.save(torch.jit.script(model), 'model.pt').",
                    )
                module = _instantiate(model_class, model_path)
                _load_weights_into(module, _state_dict_from(obj, path), path, model_class)
                module = module.to(device)
                kind = "state_dict"
            elif not trust:
                what = "a pickled Python object (torch.save of a whole model)"
                if fmt == "pickle":
                    what = "a legacy (non-zip) torch.save pickle"
                raise _refuse_pickle(path, what, [g for g in unsafe if not g.startswith("<")])
            else:
                obj = torch.load(str(path), map_location=device, weights_only=False)
                if isinstance(obj, torch.nn.Module):
                    module = obj
                    kind = "pickle"
                elif model_class:
                    module = _instantiate(model_class, model_path)
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
