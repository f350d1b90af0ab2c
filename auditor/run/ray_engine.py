"""One concept: the pass on Ray (``--engine ray``), run by the Ray driver.

The data file is cut into slices of whole batches (rows ``k * batch`` to ``(k + m) * batch``),
so each batch holds the same rows as in the stream engine and the outputs are the same
numbers, bit for bit. The slices are a Ray Dataset (``ray.data.from_items``) mapped with
``map_batches`` over an actor pool of :class:`auditor.run.ray_worker.SliceScorer`: each actor
reads its slices of the Parquet file, checks them as the stream engine checks a chunk, and
runs them through the model in its own confined helper process. The driver merges the
results in row order: every row's outputs and kept columns, and the features of every row or
the same seeded sample as the stream engine (:class:`auditor.run.stream.FeatureKeeper`).

The driver is the ``audit`` command's own process (it needs the network; the run that holds
the model may have none): the confined run asks it for the pass and reads the result from
files (:mod:`auditor.run.handoff`). A local Ray instance is started (and stopped) unless
``--ray-address`` or ``RAY_ADDRESS`` names a cluster to join.

Reading is Parquet only: slices need row positions, which a Parquet footer gives and a CSV
file does not without reading it first (convert it, or use the stream engine).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa

from auditor.contract.errors import AuditorError, DataError, UsageError
from auditor.loading.columns import plan_read
from auditor.loading.data import check_number_features, no_rows
from auditor.loading.inputs import budget_of
from auditor.run.handoff import write_pass
from auditor.run.ray_worker import ScorerSpec, SliceScorer
from auditor.run.stream import Budget, FeatureKeeper, StreamFacts, check_compact, encoded, plan_chunks

#: A slice holds whole row groups where they are no larger than this many chunks.
_MAX_CHUNKS_A_SLICE = 8


class RayWorkerError(AuditorError):
    """A Ray worker (or the process that ran the model in it) died mid-pass."""

    exit_code = 3


@dataclass(frozen=True)
class PassRequest:
    """What the confined run asks of the driver (a JSON message: checked, never trusted)."""

    target: str
    features: list[str]
    sensitive: list[str]
    named: dict[str, str]
    batch_size: int | None
    default_batch: int
    input_shape: list[int] | None
    device: str

    def message(self) -> dict[str, Any]:
        return {"kind": "ray-pass", **self.__dict__}

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> PassRequest:
        def names(value: Any) -> list[str]:
            if not isinstance(value, list) or len(value) > 100_000 or not all(isinstance(v, str) for v in value):
                raise ValueError("names")
            return list(value)

        def whole(value: Any, empty: bool = True) -> int | None:
            if value is None and empty:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("count")
            return value

        named = message.get("named")
        shape = message.get("input_shape")
        if not isinstance(named, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in named.items()):
            raise ValueError("named")
        if not isinstance(message.get("target"), str) or not isinstance(message.get("device"), str):
            raise ValueError("target")
        return cls(
            target=message["target"], features=names(message.get("features")),
            sensitive=names(message.get("sensitive")), named=dict(named),
            batch_size=whole(message.get("batch_size")), default_batch=int(whole(message.get("default_batch"), False) or 1),
            input_shape=None if shape is None else [int(whole(v, False) or 1) for v in names_or_ints(shape)],
            device=message["device"],
        )


def names_or_ints(value: Any) -> list[Any]:
    if not isinstance(value, list) or len(value) > 16:
        raise ValueError("shape")
    return value


def slices(handle: Any, rows_per_chunk: int, batch: int) -> list[tuple[int, int]]:
    """Row ranges of whole batches: about a row group each when row groups are at most
    :data:`_MAX_CHUNKS_A_SLICE` chunks (a row group is read once), else a chunk each."""
    meta = handle.metadata
    n = meta.num_rows
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    typical = int(np.median(sizes)) if sizes else n
    rows = typical if typical <= _MAX_CHUNKS_A_SLICE * rows_per_chunk else rows_per_chunk
    rows = max(batch, -(-rows // batch) * batch)
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no call home
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray Data, which is not installed.",
            hint="pip install 'auditor[ray]' (or ray[data]), or use --engine stream.",
        ) from None
    return ray


def _connect(ray: Any, address: str | None) -> tuple[bool, str]:
    """Join ``address`` (else ``RAY_ADDRESS``), or start a local instance; whether this call
    started Ray (and so stops it), and which Ray it is, for the report."""
    if ray.is_initialized():
        return False, "the Ray instance this process was already connected to"
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, configure_logging=True,
                 **({"num_cpus": os.cpu_count() or 1} if address is None else {}))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        raise UsageError(f"Ray could not start or join {where}: {str(exc).splitlines()[0][:200]}.",
                         hint="Check --ray-address (or RAY_ADDRESS), or use --engine stream.") from None
    return True, "a local instance started for this run" if address is None else "a cluster joined at its address"


def _quiet(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    for name in ("ray", "ray.data"):  # its errors become ours, in one line
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _cause(exc: BaseException) -> BaseException | None:
    """The error an actor raised, under Ray's wrapping (RayTaskError and its cause)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, AuditorError):
            return current
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
        seen += 1
    return None


def _in_order(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The actors' results by their first row, each once (Ray may deliver them out of order
    or cut in pieces)."""
    waiting: dict[int, pa.Table] = {}
    at = 0
    for table in batches:
        if table.num_rows == 0:
            continue
        waiting[int(table.column("__row")[0].as_py())] = table
        while at in waiting:
            piece = waiting.pop(at)
            yield piece
            at += piece.num_rows
    if waiting:
        raise RayWorkerError(f"The Ray pass returned rows from {min(waiting):,} but none from {at:,}.")


def run_ray_pass(cfg: Any, request: PassRequest, *, folder: Path, progress: Any, seed: int,
                 timeout: float | None) -> None:
    """Run the pass that ``request`` describes on Ray and write it into ``folder``."""
    started = time.perf_counter()
    from auditor.loading.sources import source_kind

    if source_kind(Path(cfg.data)) is not None:  # never opened here: this process runs unconfined
        raise UsageError(f"--engine ray reads Parquet files; {Path(cfg.data).name} is a folder of images or arrays.",
                         hint="Use --engine stream (the default) for images and arrays.")
    plan = plan_read(Path(cfg.data), target=request.target, features=request.features, metadata={},
                     sensitive=request.sensitive, named=request.named)
    if plan.fmt != "parquet":
        raise UsageError(
            f"--engine ray reads Parquet files; {plan.path.name} is {plan.fmt.upper()} (slices need row "
            "positions, which a CSV file gives only once read).",
            hint="Convert it once (pyarrow: pq.write_table(pyarrow.csv.read_csv(path), 'data.parquet')), "
            "or use --engine stream.",
        )
    import pyarrow.parquet as pq

    with budget_of(cfg.memory_budget):
        budget = Budget.current()
    rows_per_chunk, batch = plan_chunks(plan, budget, request.batch_size, request.default_batch)
    try:
        handle = pq.ParquetFile(plan.path)
        check_number_features(plan.path, handle.schema_arrow, plan.feature_names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"The Parquet file {plan.path.name} cannot be read: {str(exc)[:200]}.",
                        hint="It is probably truncated or corrupt; write it again.") from None
    n = handle.metadata.num_rows
    if n == 0:
        raise no_rows(plan.path)
    parts = slices(handle, rows_per_chunk, batch)
    ray = _import_ray()
    ours, cluster = _connect(ray, cfg.ray_address)
    try:
        _quiet(ray)
        resources = ray.cluster_resources()
        gpus = 1 if request.device.startswith("cuda") and resources.get("GPU", 0) >= 1 else 0
        workers = max(1, min(len(parts), int(resources.get("GPU", 0)) if gpus else int(resources.get("CPU", 1))))
        spec = ScorerSpec(cfg=cfg, target=plan.target_name, features=plan.feature_names, sensitive=plan.sensitive,
                          named=plan.named, batch=batch, input_shape=request.input_shape, device=request.device,
                          threads=1, timeout=timeout)
        dataset = ray.data.from_items([{"start": a, "stop": b} for a, b in parts], override_num_blocks=len(parts))
        with warnings.catch_warnings():  # 2.60 deprecates both ways of passing actor options, for 2.64
            warnings.simplefilter("ignore")
            scored = dataset.map_batches(
                SliceScorer, fn_constructor_args=(spec,), batch_size=1, batch_format="pyarrow", concurrency=workers,
                num_cpus=1, num_gpus=gpus, ray_remote_args_fn=_no_retries,
            )
        keeper = FeatureKeeper(len(plan.feature_names), budget.features, seed)
        outputs: list[np.ndarray] = []
        kept: list[pa.Table] = []
        keep = list(dict.fromkeys(plan.keep))
        kept_bytes = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        label = f"Predicting on Ray ({workers} worker{'s' * (workers != 1)}, reading included)"
        with progress.step(label, total=n, guard="model") as advance:
            try:
                for table in _in_order(scored.iter_batches(batch_size=None, batch_format="pyarrow")):
                    if "__error" in table.column_names:
                        from auditor.contain.supervisor import _error_from

                        raise _error_from(json.loads(table.column("__error")[0].as_py()))
                    offset = int(table.column("__row")[0].as_py())
                    out = _matrix(table.column("__out"))
                    if outputs and out.shape[1] != outputs[0].shape[1]:
                        raise DataError(f"The model's output width changed at data row {offset + 1:,} "
                                        f"({outputs[0].shape[1]} before, {out.shape[1]} there).")
                    outputs.append(out)
                    keeper.add(_matrix(table.column("__x")), offset)
                    kept.append(encoded(table.select([f"__k{i}" for i in range(len(keep))]).rename_columns(keep)))
                    kept_bytes += kept[-1].nbytes
                    rows_done = offset + table.num_rows
                    check_compact(plan, budget, rows_done, kept_bytes / rows_done + 4 * out.shape[1], more=rows_done < n,
                                  where="--engine ray")
                    advance(table.num_rows)
                    if deadline is not None and time.monotonic() > deadline:
                        from auditor.contain.supervisor import ModelTimeoutError

                        raise ModelTimeoutError(
                            f"The Ray pass did not finish within {timeout:g} s (--inference-timeout) and was "
                            "stopped. Nothing was written.",
                            hint="If the model is only slow, raise --inference-timeout.")
            except AuditorError:
                raise
            except Exception as exc:  # noqa: BLE001 - Ray's own errors, mapped to ours
                raise _mapped(exc, sum(o.shape[0] for o in outputs), n) from None
    finally:
        if ours:
            ray.shutdown()
    done = sum(o.shape[0] for o in outputs)
    if done != n:
        raise RayWorkerError(f"The Ray pass returned {done:,} rows of {n:,}.")
    X, rows = keeper.result()
    facts = StreamFacts(rows=n, chunks=len(parts), rows_per_chunk=parts[0][1] - parts[0][0], batch_size=batch,
                        budget_bytes=budget.total, budget_source=budget.source, feature_rows=X.shape[0],
                        sampled=rows is not None, seconds=time.perf_counter() - started)
    engine = {"workers": workers, "gpus_per_worker": gpus,
              "cluster": cluster,
              "energy": "the model ran in Ray workers: the energy measured covers the process that ran the "
                        "audits only, not the workers"}
    # one dictionary per text column (an Arrow IPC file holds one per field)
    table = (pa.concat_tables(kept) if len(kept) > 1 else kept[0]).unify_dictionaries()
    write_pass(folder, np.concatenate(outputs) if len(outputs) > 1 else outputs[0], table, X, rows, facts, engine)


def _no_retries() -> dict[str, Any]:
    """An actor that dies is not restarted, nor its slice retried: the pass stops (exit 3)."""
    return {"max_restarts": 0, "max_task_retries": 0}


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column as a (rows, width) float32 matrix."""
    width = column.type.list_size
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, width)


def _mapped(exc: BaseException, done: int, n: int) -> AuditorError:
    """An error out of Ray as ours: an actor's own (bad data, the model's) as it was raised;
    a worker that died as exit 3."""
    cause = _cause(exc)
    if cause is not None:
        return cause  # type: ignore[return-value]
    said = "".join(c for c in (str(exc).splitlines() or [""])[0] if c.isprintable())[:200]
    return RayWorkerError(
        f"A Ray worker died during the pass, with data rows {done + 1:,} to {n:,} not all scored "
        f"({type(exc).__name__}: {said}); no report was written.",
        hint="Run again; if it recurs, see the Ray logs (/tmp/ray/session_latest/logs) for what stopped it.",
    )


def answer(message: Mapping[str, Any]) -> bytes:
    """The driver's reply to the run, as bytes for the pipe."""
    return json.dumps(dict(message)).encode("utf-8")
