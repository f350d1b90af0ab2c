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

This module picks the loader for a file's format and says what was trusted. The parts live
beside it: :mod:`~auditor.loading.pickle_safety` (what a pickle would import, and the refusal),
:mod:`~auditor.loading.archive_checks` (TorchScript and torch.export checks before loading),
:mod:`~auditor.loading.user_code` (``--model-class``, ``--model-path``, ``--model-args``) and
:mod:`~auditor.loading.weights` (a state_dict into the module).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from auditor.contract.errors import ModelLoadError, UsageError
from auditor.loading.archive_checks import check_export_members, check_torchscript_pickles
from auditor.loading.hashing import sha256_file
from auditor.loading.pickle_safety import main_classes, not_allowed, pickled_in_main, refuse_pickle, unsafe_globals
from auditor.loading.sniff import ModelFormat, pickle_globals, shown, sniff_model_format
from auditor.loading.user_code import add_to_path, cannot_import, instantiate
from auditor.loading.weights import load_weights_into, state_dict_from
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
            raise ModelLoadError(
                f"The model metadata ({sidecar.name}) is not UTF-8 text.", hint="Save it as UTF-8."
            ) from None
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
            check_torchscript_pickles(path, trust)
            extra = {METADATA_NAME: ""}
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
            embedded = extra[METADATA_NAME] or None
        elif fmt == "export":
            check_export_members(path, trust)
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
            module = instantiate(model_class, model_path, model_args)
            load_weights_into(module, state, path, model_class)
            module = module.to(device)
        else:  # torch_zip or legacy pickle: torch.save output
            if fmt == "torch_zip":
                unsafe = unsafe_globals(path)
            else:  # a plain or legacy pickle: refused without trust, but say what it imports
                with path.open("rb") as handle:
                    unsafe = not_allowed(pickle_globals(handle))
            if not unsafe and fmt == "torch_zip":
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
                if not model_class:
                    raise ModelLoadError(
                        f"{path.name} holds weights only (a state_dict), not a runnable model.",
                        hint="Pass --model-class package.module:ClassName (and --model-path DIR), "
                        "or save the model with torch.jit.save(torch.jit.script(model), 'model.pt').",
                    )
                module = instantiate(model_class, model_path, model_args)
                load_weights_into(module, state_dict_from(obj, path), path, model_class)
                module = module.to(device)
                kind = "state_dict"
            elif not trust:
                what = "a pickled Python object (torch.save of a whole model)"
                if fmt == "pickle":
                    what = "a pickle file (a plain pickle or a legacy non-zip torch.save)"
                raise refuse_pickle(path, what, unsafe)
            else:
                main = main_classes(unsafe)
                if main:  # its class is not importable here: say why, before torch says "corrupt"
                    raise pickled_in_main(path, main)
                add_to_path(model_path)  # the pickle imports its classes: from --model-path too
                try:
                    obj = torch.load(str(path), map_location=device, weights_only=False)
                except ImportError as exc:
                    missing = getattr(exc, "name", None) or str(exc)
                    raise cannot_import(missing, f"the pickle in {shown(path.name)}", exc, model_path) from None
                if isinstance(obj, torch.nn.Module):
                    module = obj
                    kind = "pickle"
                elif model_class:
                    module = instantiate(model_class, model_path, model_args)
                    load_weights_into(module, state_dict_from(obj, path), path, model_class)
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
