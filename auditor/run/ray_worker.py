"""One concept: a Ray Data actor that reads rows of the data file and runs them through the
model, the model confined in a process of its own.

:class:`SliceScorer` is the function class that :mod:`auditor.run.ray_engine` maps over the
slices of a Parquet file (``map_batches``). It reads and checks its slice exactly as the
stream engine checks a chunk (:func:`auditor.loading.data.check_chunk`), and returns the
slice's compact columns, the model's outputs and the features, for the driver to merge.

A Ray worker cannot be confined itself (it talks to the cluster over sockets, and Ray starts
processes in it), so the model never runs there: each actor starts one helper process
(:func:`serve`) that confines itself with the same Landlock and seccomp rules as a local
run's, computed on the worker's own machine, *then* loads the model, and answers batches of
rows over a pipe: raw float32 bytes and a JSON header each way, never a pickle. The actor
trusts nothing the helper sends but outputs of the size asked for.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

#: The largest message the actor accepts from the helper (a header, or one slice's outputs).
_MAX_REPLY = 1 << 31


@dataclass(frozen=True)
class ScorerSpec:
    """What every actor needs, sent by the driver (pickled by Ray, driver to worker)."""

    cfg: Any  # the run's RunConfig: the model and how to load it, the data file
    target: str
    features: list[str]
    sensitive: list[str]
    named: dict[str, str]
    batch: int
    input_shape: list[int] | None
    device: str
    threads: int
    timeout: float | None = None  # --inference-timeout: the most one slice may take in the model


def plan_of(spec: ScorerSpec) -> Any:
    """The read plan of the run, resolved from the names the run resolved."""
    from auditor.loading.columns import plan_read

    return plan_read(Path(spec.cfg.data), target=spec.target, features=spec.features, metadata={},
                     sensitive=spec.sensitive, named=spec.named)


def read_rows(handle: Any, plan: Any, start: int, stop: int) -> pa.Table:
    """Rows ``start..stop-1`` of a Parquet file, the plan's columns: the row groups that hold
    them, read and cut."""
    from auditor.contract.errors import DataError
    from auditor.loading.chunks import undecodable

    meta = handle.metadata
    groups, first, at = [], None, 0
    for index in range(meta.num_row_groups):
        size = meta.row_group(index).num_rows
        if at < stop and at + size > start:
            groups.append(index)
            first = at if first is None else first
        at += size
    try:
        table = handle.read_row_groups(groups, columns=plan.wanted)
    except (pa.ArrowException, OSError) as exc:
        raise undecodable(plan.path, f"in data rows {start + 1:,} to {stop:,} (they do not decode", exc) from None
    table = table.slice(start - (first or 0), stop - start)
    if table.num_rows != stop - start:
        raise DataError(
            f"The Parquet file {plan.path.name} ends before data row {stop:,} (it has fewer rows than its "
            "footer said when reading began: it changed while it was read).",
            hint="Audit a copy that nothing writes to.",
        )
    return table


class ConfinedModel:
    """The actor's side of the helper process that holds the model."""

    def __init__(self, spec: ScorerSpec) -> None:
        from auditor.contain import supervisor
        from auditor.contain.rules import SYSTEM_READ, Allowances, gpu_paths, input_paths, python_installation

        confinement = supervisor.available()
        if not confinement.enforced:
            supervisor._refuse_unconfined(spec.cfg, confinement)  # noqa: SLF001 - the same rule as a local run
        self.scratch = Path(tempfile.mkdtemp(prefix="auditor-ray-"))
        devices, gpu_read = gpu_paths()
        allowances = Allowances(
            inputs=input_paths(spec.cfg), python=python_installation(Path.cwd().resolve()),
            system=[Path(p) for p in SYSTEM_READ] + gpu_read, scratch=self.scratch,
            devices=devices,
        )
        ctx = multiprocessing.get_context("spawn")
        self.spec = spec
        self.conn, theirs = ctx.Pipe()
        with supervisor._main_module_left_alone():  # noqa: SLF001 - the Ray worker's __main__ is not ours
            self.process = ctx.Process(target=serve, args=(spec, allowances, confinement.enforced, theirs),
                                       name="auditor-ray-model", daemon=True)
            self.process.start()
        theirs.close()
        self._answer()

    def _answer(self, during: str = "") -> dict[str, Any]:
        from auditor.contain.supervisor import RunProcessError, _crash_from, _error_from

        try:
            message = json.loads(self.conn.recv_bytes(1 << 20))
        except (EOFError, OSError, ValueError):
            self.process.join(5)
            raise RunProcessError(
                f"The process that ran the model in a Ray worker ended{during} without an answer "
                f"(exit {self.process.exitcode}); no report was written.",
                hint="Run with --engine stream to see whether the model fails on those rows there too.",
            ) from None
        if not isinstance(message, dict):
            raise RunProcessError("The process that ran the model in a Ray worker sent a message that is not an object.")
        if message.get("kind") == "error":
            raise _error_from(message)
        if message.get("kind") == "crash":
            raise _crash_from(message)
        return message

    def infer(self, X: np.ndarray, offset: int) -> np.ndarray:
        from auditor.contain.supervisor import RunProcessError

        rows = X.shape[0]
        self.conn.send_bytes(json.dumps({"rows": rows, "cols": X.shape[1], "offset": offset}).encode())
        self.conn.send_bytes(np.ascontiguousarray(X, dtype=np.float32).data)
        timeout = self.spec.timeout
        if timeout is not None and not self.conn.poll(timeout):  # a model that never returns
            from auditor.contain.supervisor import ModelTimeoutError

            self.process.kill()
            raise ModelTimeoutError(
                f"The model did not finish scoring data rows {offset + 1:,} to {offset + rows:,} within {timeout:g} s "
                "(--inference-timeout) in a Ray worker and was stopped; it may never end. Nothing was written.",
                hint="If the model is only slow, raise --inference-timeout (or inference_timeout in [tool.auditor]).")
        header = self._answer(f" while scoring data rows {offset + 1:,} to {offset + rows:,}")
        width = header.get("width")
        if header.get("rows") != rows or not isinstance(width, int) or width < 1:
            raise RunProcessError("The process that ran the model in a Ray worker answered with the wrong shape.")
        try:
            data = self.conn.recv_bytes(_MAX_REPLY)
        except (EOFError, OSError):
            raise RunProcessError("The process that ran the model in a Ray worker died while answering.") from None
        if len(data) != rows * width * 4:
            raise RunProcessError("The process that ran the model in a Ray worker sent outputs of the wrong size.")
        return np.frombuffer(data, dtype=np.float32).reshape(rows, width)

    def close(self) -> None:
        import shutil

        try:
            self.conn.close()
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
            shutil.rmtree(self.scratch, ignore_errors=True)


class SliceScorer:
    """The function class of ``map_batches``: one input row ``{start, stop}`` a call."""

    def __init__(self, spec: ScorerSpec) -> None:
        import pyarrow.parquet as pq

        self.spec = spec
        self.plan = plan_of(spec)
        self.handle = pq.ParquetFile(self.plan.path)
        self.keep = list(dict.fromkeys(self.plan.keep))
        self.model = ConfinedModel(spec)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from auditor.contract.errors import AuditorError

        start, stop = int(batch.column("start")[0].as_py()), int(batch.column("stop")[0].as_py())
        try:
            return self._score(start, stop)
        except AuditorError as exc:  # returned, not raised: Ray's wrapping would lose its class and hint
            said = {"type": type(exc).__name__, "exit_code": exc.exit_code, "message": exc.message, "hint": exc.hint}
            return pa.table({"__row": pa.array([start], pa.int64()), "__error": pa.array([json.dumps(said)])})

    def _score(self, start: int, stop: int) -> pa.Table:
        from auditor.loading.data import check_chunk

        table = read_rows(self.handle, self.plan, start, stop)
        X = check_chunk(self.plan, table, start)
        out = self.model.infer(X, start)
        n = table.num_rows
        columns = {
            "__row": pa.array(np.arange(start, stop, dtype=np.int64)),
            "__out": pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1)), out.shape[1]),
            "__x": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(X).reshape(-1)), X.shape[1]),
        }
        columns.update({f"__k{i}": table.column(name) for i, name in enumerate(self.keep)})
        assert all(len(c) == n for c in columns.values())
        return pa.table(columns)

    def __del__(self) -> None:
        model = getattr(self, "model", None)
        if model is not None:
            model.close()


# --- the helper process ---------------------------------------------------------------------------

def serve(spec: ScorerSpec, allowances: Any, confine: bool, conn: Any) -> None:
    """The helper's entry point: confine this process, load the model, answer batches."""
    from auditor.contract.errors import AuditorError

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)  # a model's print goes nowhere
        os.close(fd)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ImportError, ValueError, OSError):
            pass
        import torch

        torch.set_num_threads(max(1, spec.threads))
        from auditor.loading.model import load_model
        from auditor.loading.transform import with_transform
        from auditor.run.inference import resolve_device, run_inference

        device = resolve_device(spec.device)
        if confine:
            from auditor.contain import landlock, seccomp

            allowances.ruleset(os.getpid()).restrict_self(landlock.abi_version())
            seccomp.install()
        cfg = spec.cfg
        model = load_model(cfg.model, device=device, model_class=cfg.model_class, model_path=cfg.model_path,
                           trust=cfg.trust_model, model_args=cfg.model_args)
        model = with_transform(model, getattr(cfg, "transform", None), cfg.model_path)
        conn.send_bytes(json.dumps({"kind": "ready"}).encode())
        seen: dict[str, Any] = {}
        while True:
            try:
                header = json.loads(conn.recv_bytes(1 << 20))
            except EOFError:
                return
            rows, cols, offset = int(header["rows"]), int(header["cols"]), int(header["offset"])
            buffer = bytearray(rows * cols * 4)
            conn.recv_bytes_into(buffer)
            X = np.frombuffer(buffer, dtype=np.float32).reshape(rows, cols)
            out = run_inference(model.module, X, device=device, batch_size=spec.batch, input_shape=spec.input_shape,
                                offset=offset, seen=seen)
            conn.send_bytes(json.dumps({"kind": "outputs", "rows": rows, "width": int(out.shape[1])}).encode())
            conn.send_bytes(np.ascontiguousarray(out, dtype=np.float32).data)
    except AuditorError as exc:
        _send(conn, {"kind": "error", "type": type(exc).__name__, "exit_code": exc.exit_code,
                     "message": exc.message, "hint": exc.hint})
    except BaseException as exc:  # noqa: BLE001 - reported to the actor, which decides
        from auditor.contain.worker import _first_line, _forbidden

        if confine and _forbidden(exc):
            _send(conn, {"kind": "error", "type": "UntrustedModelError", "exit_code": 2,
                         "message": "The model (or code it imported) tried something its confinement forbids, "
                         f"and was stopped: {_first_line(exc)}",
                         "hint": "A model file must not read, write or run anything outside its inputs: ask its "
                         "author what it does. Nothing was written."})
            return
        _send(conn, {"kind": "crash", "type": type(exc).__name__, "message": str(exc)[:2000],
                     "traceback": traceback.format_exc()[-20000:]})


def _send(conn: Any, message: dict[str, Any]) -> None:
    try:
        conn.send_bytes(json.dumps(message).encode())
    except (OSError, ValueError):
        pass
