"""The one inference pass: batched, under ``torch.inference_mode()``, on the chosen device.

On CUDA out-of-memory the batch is halved and the batch retried. Every audit reads the
outputs from the context; nothing else calls the model.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auditor.contract.errors import DataError, UsageError
from auditor.loading.sniff import TORCHSCRIPT_TRACEBACK, meaningful_line

DEFAULT_BATCH_CPU = 65_536
DEFAULT_BATCH_CUDA = 262_144
#: On a CPU a batch of about this many input values runs fastest: it stays in the caches. Measured
#: on 2 cores (benchmarks/README.md): a 30-feature MLP over 10^6 rows 0.11 s in batches of 8,192
#: rows against 0.17 s in batches of 65,536; a 28x28 CNN over 2x10^4 images 1.7-2.1 s in batches of
#: 128-512 against 2.8 s in batches of 5,315.
CPU_BATCH_VALUES = 1 << 18


def default_batch(device: torch.device | Any, width: int) -> int:
    """Rows a batch when --batch-size is not given: on a CPU about :data:`CPU_BATCH_VALUES`
    input values (at least 64 rows, at most :data:`DEFAULT_BATCH_CPU`); on a GPU a fixed large batch."""
    if getattr(device, "type", "cpu") == "cuda":
        return DEFAULT_BATCH_CUDA
    return max(64, min(DEFAULT_BATCH_CPU, CPU_BATCH_VALUES // max(int(width), 1)))


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a usage error."""
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N; got {spec!r}.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            if os.path.exists("/dev/nvidiactl"):
                # Seen on an H200 (Linux 6.18, Landlock ABI 7): torch saw the GPU outside the
                # confined process and not inside it; which wall keeps CUDA out is not known yet
                # (benchmarks/gpu_confinement_probe.py finds out on a GPU machine).
                raise UsageError(
                    f"--device {spec} was asked for: this machine has an NVIDIA GPU (/dev/nvidiactl), but "
                    "torch cannot reach it from the process that runs the model.",
                    hint="Use --device cpu for now: a model file runs in a confined process, and reaching "
                    "the GPU from it is not proven yet.",
                )
            raise UsageError(
                f"--device {spec} was asked for, but torch sees no CUDA GPU on this machine.",
                hint="Use --device cpu (or auto).",
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: there are only {torch.cuda.device_count()} CUDA device(s)."
            )
        return torch.device("cuda", index)
    if device.type != "cpu":
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N; got {spec!r}.")
    return device


def first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        for key in ("logits", "output", "out", "y"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise DataError(
        f"The model returned {type(output).__name__}; auditor needs a tensor of outputs "
        "(or a tuple/dict whose first entry / 'logits' is one).",
        hint="Wrap the model so forward returns the output tensor.",
    )


def _rejected(exc: BaseException, n_features: int, shape: Sequence[int] | None) -> DataError:
    detail = meaningful_line(exc)
    if TORCHSCRIPT_TRACEBACK not in str(exc):
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = next((line for line in lines if "shape" in line or "size" in line), detail)[:300]
    if shape is None:
        given = f"rejected {n_features} features per row, fed as a (batch, {n_features}) tensor"
        hint = ("Check --features: they must be the columns the model was trained on, in order. A "
                "sequence model (LSTM, GRU) needs --input-shape T,F and a CNN --input-shape C,H,W, "
                f"whose product is {n_features}.")
    else:
        dims = ", ".join(str(int(s)) for s in shape)
        given = (f"rejected inputs of shape ({dims}) per row (--input-shape {','.join(str(int(s)) for s in shape)}, "
                 f"or the model's metadata: {n_features} features fed as a (batch, {dims}) tensor)")
        hint = ("Check --input-shape against what the model was trained on: T,F for a sequence model "
                "(steps, then features per step; batch_first), C,H,W for a CNN; and that --features "
                "lists the columns in that order.")
    return DataError(f"The model {given}: {detail}", hint=hint)


def _rows(start: int, stop: int) -> str:
    return f"row {start + 1:,}" if stop - start == 1 else f"rows {start + 1:,}-{stop:,}"


def _checked_shape(
    result: torch.Tensor, start: int, stop: int, first: tuple[int, int, tuple[int, ...]] | None
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The batch's outputs and the shape of one output row, checked on every batch: one
    output row per input row, at least one output, and the same shape as the first batch
    gave (a model whose output narrows in a later batch would otherwise be broadcast into
    wrong numbers). A batch of one row may come back without its batch dimension (a
    forward that ends in ``.squeeze()``)."""
    rows = stop - start
    if rows == 1 and (result.dim() == 0 or result.shape[0] != 1):
        result = result.unsqueeze(0)
    if result.dim() == 0:
        raise DataError(
            f"The model returned a single number (a 0-d tensor) for a batch of {rows:,} rows ({_rows(start, stop)}).",
            hint="Its forward must return one output row per input row: a (batch, outputs) tensor.",
        )
    if result.shape[0] != rows:
        raise DataError(
            f"The model returned {result.shape[0]:,} outputs for a batch of {rows:,} rows "
            f"({_rows(start, stop)}; output shape {tuple(result.shape)}).",
            hint="Its forward must return one output row per input row.",
        )
    shape = tuple(int(s) for s in result.shape[1:])
    if math.prod(shape) == 0:
        raise DataError(
            f"The model returned no outputs for {_rows(start, stop)}: output shape {tuple(result.shape)}.",
            hint="Its forward must return at least one output per row (a logit, a value or one score per class).",
        )
    if first is not None and shape != first[2]:
        begin, end, before = first
        raise DataError(
            f"The model's output shape changed between batches: {_rows(begin, end)} gave {before} per row, "
            f"{_rows(start, stop)} gave {shape} per row (output shape {tuple(result.shape)}).",
            hint="Its forward must return the same number of outputs for every batch: check it for code "
            "that depends on the batch size.",
        )
    return result, shape


def run_inference(
    module: Any,
    X: np.ndarray,
    *,
    device: torch.device,
    batch_size: int | None = None,
    input_shape: Sequence[int] | None = None,
    on_progress: Callable[[int], None] | None = None,
    offset: int = 0,
    seen: dict[str, Any] | None = None,
    dtype: str = "float32",
) -> np.ndarray:
    """Run the model once over every row of ``X``; return its outputs as (rows, outputs) float32.

    ``offset``: the data row of ``X``'s first row in the file (a chunk of a streamed pass), for messages;
    ``dtype``: "int64" gives the model integers (token ids, carried exactly as float32);
    ``seen``: a dict shared by the calls of one pass, holding its first batch's rows and output shape,
    so that a shape that changes in a later chunk is caught like one that changes within a call.
    """
    n, n_features = X.shape
    if input_shape is not None and math.prod(int(s) for s in input_shape) != n_features:
        values = math.prod(int(s) for s in input_shape)
        raise UsageError(
            f"The input shape {','.join(map(str, input_shape))} holds {values:,} values, but each row has "
            f"{n_features:,} features (the shape comes from --input-shape, else input_shape in the model's metadata).",
            hint="The product of the shape must equal the number of feature columns.",
        )
    batch = batch_size or default_batch(device, n_features)
    source = torch.from_numpy(X)
    out: np.ndarray | None = None
    first: tuple[int, int, tuple[int, ...]] | None = (seen or {}).get("first")  # the first batch's rows, shape
    start = 0
    with torch.inference_mode():
        while start < n:
            stop = min(start + batch, n)
            chunk = source[start:stop].to(device, non_blocking=True)
            if dtype == "int64":
                chunk = chunk.long()
            if input_shape is not None:
                chunk = chunk.reshape(stop - start, *input_shape)
            try:
                result = first_tensor(module(chunk))
            except torch.cuda.OutOfMemoryError:
                if batch == 1:
                    raise
                torch.cuda.empty_cache()
                batch = max(1, batch // 2)
                continue
            except DataError:
                raise  # first_tensor's own message: the output is not a tensor
            except Exception as exc:  # noqa: BLE001 - any failure of the model's forward is about its input
                if "Guard failed" in str(exc) and "size()[0]" in str(exc):
                    raise DataError(
                        f"The model was exported for a fixed batch size and rejected a batch of "
                        f"{stop - start} rows ({meaningful_line(exc, 120)}).",
                        hint="Re-export it with a dynamic batch dimension: torch.export.export(model, "
                        "(x,), dynamic_shapes=({0: torch.export.Dim('batch')},)).",
                    ) from None
                raise _rejected(exc, n_features, input_shape) from None
            result, shape = _checked_shape(result, start + offset, stop + offset, first)
            if first is None:
                first = (start + offset, stop + offset, shape)
                if seen is not None:
                    seen["first"] = first
            result = result.reshape(stop - start, -1) if result.dim() != 2 else result
            if out is None:
                out = np.empty((n, result.shape[1]), dtype=np.float32)
            out[start:stop] = result.detach().float().cpu().numpy()
            if on_progress is not None:
                on_progress(stop - start)
            start = stop
    assert out is not None
    bad = ~np.isfinite(out)
    if bad.any():
        rows = np.nonzero(bad.any(axis=1))[0]
        raise DataError(
            f"The model produced NaN or infinity for {rows.size} row(s) (first at data row {offset + rows[0] + 1})"
            + (f" in data rows {offset + 1:,}-{offset + n:,}." if offset else "."),
            hint="Check those rows for extreme values, or the model for numerical problems.",
        )
    return out
