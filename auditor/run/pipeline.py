"""One audit run: load, predict once, run the audits, assemble the report document.

The command line and :func:`auditor.audit` build a :class:`RunConfig`; :func:`execute` runs
it in this process (in the confined child of :mod:`auditor.contain`, or in the caller's
process for a model given as an ``nn.Module`` object, see :mod:`auditor.loading.in_memory`).
Nothing here prints or writes files; the gates and the one verdict are judged over the
report afterwards (:func:`auditor.api.judge`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ContextManager, Iterator, Mapping, Sequence

from auditor.contract.context import AuditContext, Dataset, Task, TrainData
from auditor.contract.errors import DataError, UsageError
from auditor.contract.result import AuditResult
from auditor.loading.columns import ReadPlan, plan_read
from auditor.loading.in_memory import UNCONFINED, borrowed, is_module, module_model
from auditor.loading.inputs import budget_of
from auditor.loading.model import LoadedModel, load_model
from auditor.loading.sources import spec_from
from auditor.loading.transform import with_transform
from auditor.run.assemble import build_report
from auditor.run.config import audit_options
from auditor.run.energy import EnergyMeter, MeterError, NullMeter, settings_for
from auditor.run.inference import default_batch, resolve_device, run_inference
from auditor.run.registry import BrokenPlugin, failed_to_load, plugin_versions, select_audits, selected_broken
from auditor.run.retrain import load_trainer
from auditor.run.runconfig import Progress, RunConfig
from auditor.run.runner import AuditRuns, run_audits
from auditor.run.stream import StreamFacts, peak_rss, stream_pass
from auditor.run.tally import Decided
from auditor.run.task import encode_target, infer_task, read_outputs


def named_columns(audits: Mapping[str, Any], options: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The data columns that the selected audits' ``column`` options name, each with the
    first option naming it (``crossval.group``), for messages."""
    named: dict[str, str] = {}
    for name, audit in audits.items():
        for option in audit.options:
            value = options[name].get(option.name)
            if option.type == "column" and value:
                named.setdefault(str(value), f"{name}.{option.name}")
    return named


def _inferrer(model: LoadedModel, device: Any, input_shape: Sequence[int] | None, dtype: str = "float32") -> Any:
    """``infer(X, offset, batch)`` for :func:`stream_pass`: the one pass's model call."""

    seen: dict[str, Any] = {}  # the first batch's output shape, checked against every later chunk's

    def infer(X: Any, offset: int, batch: int) -> Any:
        return run_inference(model.module, X, device=device, batch_size=batch, input_shape=input_shape,
                             offset=offset, seen=seen, dtype=dtype)

    return infer


def _text_spec(cfg: RunConfig, model: LoadedModel) -> Any:
    """How a text column becomes token ids (--text, --tokenizer, --max-tokens, or the metadata's
    ``text``); None when the data are not text."""
    from auditor.loading.sources.text import TextSpec

    return TextSpec.declared(model.metadata, cfg.text, cfg.tokenizer, cfg.max_tokens)


def _default_batch(device: Any, plan: ReadPlan) -> int:
    return default_batch(device, len(plan.feature_names))


def _load_train(
    cfg: RunConfig,
    model: LoadedModel,
    test: Dataset,
    task: Task,
    device: Any,
    input_shape: Sequence[int] | None,
    progress: Progress,
    named: Mapping[str, str],
) -> tuple[TrainData, StreamFacts]:
    """The training data: the audit data's features and target, one more streamed pass."""
    assert cfg.train_data is not None
    image = spec_from(model.metadata, cfg.image_size, cfg.image_mode)
    plan = plan_read(cfg.train_data, target=test.target_name, features=test.feature_names, metadata={}, named=named,
                     image=image, allow_symlinks=cfg.allow_symlinks, skip_unreadable=cfg.skip_unreadable,
                     text=_text_spec(cfg, model))
    dtype = plan.source.input_dtype if plan.source is not None else "float32"
    def decided(outputs: Any, target_values: Any) -> Decided:  # past the budget: the audit data's task
        if outputs.shape[1] != task.n_outputs:
            raise DataError(f"The model gave {outputs.shape[1]} outputs on the training data, {task.n_outputs} on "
                            "the audit data.")
        return Decided(task, declared_output=model.metadata.get("output"), target=test.target_name)

    done = stream_pass(
        plan, infer=_inferrer(model, device, input_shape, dtype), batch_size=cfg.batch_size,
        default_batch=_default_batch(device, plan), seed=cfg.seed,
        progress=lambda label, total: progress.step(label, total=total, guard="model"),
        label="Predicting on the training data (reading included)", decide=decided,
    )
    raw, outputs = done.raw, done.outputs
    if outputs.shape[1] != task.n_outputs:
        raise DataError(f"The model gave {outputs.shape[1]} outputs on the training data, {task.n_outputs} on the audit data.")
    assert raw.target_values is not None
    raw.dataset.y = encode_target(raw.target_values, task, test.target_name or "target")
    return TrainData(data=raw.dataset, predictions=read_outputs(outputs, task), tallies=done.tallies), done.facts


def _load_card(path: Path) -> dict[str, Any]:
    """The model card as the report holds it (bad card files exit 2 before any work)."""
    from auditor.compliance.card import card_section, load_card

    return card_section(load_card(path))


@contextmanager
def _together(first: ContextManager[Any], second: ContextManager[Any]) -> Iterator[Any]:
    with first as value, second:
        yield value


def _run_measuring(
    ctx: AuditContext,
    audits: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    meter: EnergyMeter | NullMeter,
    runs: AuditRuns,
    progress: Progress,
    timeout: float | None = None,
) -> None:
    """Stop the meter and run the audits that report on it (they see the whole run)."""
    try:
        ctx.energy = meter.stop()
    except MeterError as exc:
        for name, audit in audits.items():
            runs.results[name] = AuditResult.errored(name, audit.title, f"MeterError: {exc}")
            runs.timings[name] = 0.0
        return
    more = run_audits(ctx, audits, options, step=lambda name: progress.step(f"Audit: {name}", guard="audit"), timeout=timeout)
    runs.results.update(more.results)
    runs.timings.update(more.timings)
    runs.tracebacks.update(more.tracebacks)


@dataclass
class Execution:
    """One run: the report document (no gates or outcome yet), its context and the audits' runs."""

    report: dict[str, Any]
    context: AuditContext
    runs: AuditRuns


def execute(
    cfg: RunConfig,
    installed: Mapping[str, Any],
    progress: Progress | None = None,
    broken: Mapping[str, BrokenPlugin] | None = None,
    remote_pass: Any = None,
) -> Execution:
    """Run everything and return the report document; raises AuditorError on bad input.

    ``remote_pass``: under ``--engine ray``, how the pass is asked of the Ray driver (the
    contained run's :class:`auditor.contain.worker.RemotePass`).

    ``broken``: installed plugins that failed to load; those the run selects are reported
    as ``error`` results (see :mod:`auditor.run.registry`).
    """
    progress = progress or Progress()
    broken = broken or {}
    started = time.time()
    t0 = time.perf_counter()
    audits = select_audits(installed, cfg.audits, cfg.skip, broken)
    failed = selected_broken(broken, cfg.audits, cfg.skip)
    unknown = sorted(set(cfg.overrides) - set(installed) - set(broken))
    if unknown:
        raise UsageError(
            f"-o names unknown audit(s): {', '.join(unknown)}.",
            hint=f"Installed audits: {', '.join(installed)}.",
        )
    options = {name: audit_options(audit, cfg.settings, cfg.overrides) for name, audit in audits.items()}
    for name, audit in audits.items():
        check = getattr(audit, "check", None)
        if callable(check):
            check(options[name])
    named = named_columns(audits, options)
    card = _load_card(cfg.card) if cfg.card is not None else None
    trainer = load_trainer(cfg.trainer, cfg.model_path) if cfg.trainer else None
    device = resolve_device(cfg.device)
    settings = settings_for(audits, options)
    meter = EnergyMeter(settings) if settings is not None else NullMeter()
    try:
        with budget_of(cfg.memory_budget), borrowed(cfg.model, device) if is_module(cfg.model) else nullcontext():
            return _execute(cfg, audits, options, named, trainer, device, meter, progress, started, t0, card, failed,
                            remote_pass)
    finally:
        meter.close()


def _execute(
    cfg: RunConfig,
    audits: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    named: Mapping[str, str],
    trainer: Any,
    device: Any,
    meter: EnergyMeter | NullMeter,
    progress: Progress,
    started: float,
    t0: float,
    card: dict[str, Any] | None,
    failed: Mapping[str, BrokenPlugin],
    remote_pass: Any = None,
) -> Execution:
    timings: dict[str, Any] = {}
    if getattr(cfg, "engine", "stream") == "ray" and remote_pass is None:
        raise UsageError(
            "--engine ray runs a model file, in the audit command or auditor.audit(); a model given as a "
            "Python object runs in your process, with the stream engine.",
            hint="Save the model (torch.jit.save or torch.save of its state_dict) and audit the file, or drop engine.",
        )

    with progress.step("Loading model", guard="model"), meter.phase("load_model", wait=False):
        t = time.perf_counter()
        if is_module(cfg.model):  # an object of the caller's, already on ``device`` (borrowed)
            model = module_model(cfg.model, cfg.model_metadata)
        else:
            model = load_model(
                cfg.model,
                device=device,
                model_class=cfg.model_class,
                model_path=cfg.model_path,
                trust=cfg.trust_model,
                model_args=cfg.model_args,
            )
        model = with_transform(model, getattr(cfg, "transform", None), cfg.model_path)
        timings["load_model"] = time.perf_counter() - t

    with progress.step("Reading the data's header"):
        image = spec_from(model.metadata, cfg.image_size, cfg.image_mode)
        plan = plan_read(cfg.data, target=cfg.target, features=cfg.features, metadata=model.metadata,
                         sensitive=cfg.sensitive, named=named, labels=cfg.labels, image=image,
                         allow_symlinks=cfg.allow_symlinks, skip_unreadable=cfg.skip_unreadable,
                         text=_text_spec(cfg, model))
    dtype = plan.source.input_dtype if plan.source is not None else "float32"
    # declared (--input-shape, the metadata), else the shape the data hold (an image folder, arrays)
    input_shape = cfg.input_shape or model.metadata.get("input_shape") or (
        list(plan.source.input_shape) if plan.source is not None and len(plan.source.input_shape) > 1 else None)
    if isinstance(meter, EnergyMeter):
        with progress.step("Starting the energy meter (codecarbon)"):
            meter.ready()
    with meter.phase("inference"):
        t = time.perf_counter()
        if remote_pass is not None and getattr(cfg, "engine", "stream") == "ray":
            done, on_ray = remote_pass(plan, batch_size=cfg.batch_size, default_batch=_default_batch(device, plan),
                                       input_shape=list(input_shape) if input_shape else None, device=str(device))
            engine: dict[str, Any] = {"name": "ray", "data": done.facts.to_dict(), "ray": on_ray}
            meter.elsewhere("inference", RAY_ENERGY)
        else:
            decided: list[Decided] = []
            done = stream_pass(
                plan, infer=_inferrer(model, device, input_shape, dtype), batch_size=cfg.batch_size,
                default_batch=_default_batch(device, plan), seed=cfg.seed,
                progress=lambda label, total: progress.step(label, total=total, guard="model"),
                label="Predicting (reading included)", decide=partial(_decide, cfg, model, plan.target_name, decided),
            )
            engine = {"name": "stream", "data": done.facts.to_dict()}
        timings["pass"] = time.perf_counter() - t
    raw, outputs = done.raw, done.outputs
    dataset = raw.dataset

    if done.tallies is not None:  # binned: the task was decided on the rows before the switch
        task = decided[0].task
        target = dataset.target_name or "target"
        y = None if raw.target_values is None else encode_target(raw.target_values, task, target)
    else:
        task, y = infer_task(
            outputs,
            raw.target_values,
            requested=cfg.task,
            metadata=model.metadata,
            classes=cfg.classes,
            target=dataset.target_name or "target",
        )
    dataset.y = y
    raw.target_values = None  # encoded now: the file's own labels (80 MB at 10^7 rows) are not kept
    train = None
    if cfg.train_data is not None:
        with progress.step("Reading training data"), meter.phase("train_data"):
            t = time.perf_counter()
            train, train_facts = _load_train(cfg, model, dataset, task, device, input_shape, progress, named)
            engine["train_data"] = train_facts.to_dict()
            timings["train_data"] = time.perf_counter() - t
    history = None
    if cfg.history is not None:
        from auditor.loading.history import load_history

        with progress.step("Reading training history"):
            history = load_history(cfg.history)

    ctx = AuditContext(
        model=model,
        data=dataset,
        task=task,
        predictions=read_outputs(outputs, task),
        seed=cfg.seed,
        device=str(device),
        forward_passes=1 if train is None else 2,
        sensitive=raw.sensitive,
        history=history,
        train=train,
        input_shape=tuple(int(v) for v in input_shape) if input_shape else None,
        trainer=trainer,
        progress=progress.step,
        infer=partial(run_inference, model.module, device=device, batch_size=cfg.batch_size, input_shape=input_shape,
                      dtype=dtype),
        input_dtype=dtype,
        text=plan.source.token_text() if hasattr(plan.source, "token_text") else None,
        measure=meter.phase,
        tallies=done.tallies,
    )

    def step(name: str) -> Any:
        return _together(progress.step(f"Audit: {name}", guard="audit"), meter.phase(f"audit:{name}"))

    t = time.perf_counter()
    measuring = {n: a for n, a in audits.items() if "energy" in tuple(a.needs)}
    runs = run_audits(
        ctx, {n: a for n, a in audits.items() if n not in measuring}, options, step=step, timeout=cfg.audit_timeout
    )
    for name, plugin in failed.items():
        runs.results[name] = failed_to_load(plugin)
        runs.timings[name] = 0.0
    if measuring:
        _run_measuring(ctx, measuring, options, meter, runs, progress, cfg.audit_timeout)
    timings["audits"] = runs.timings
    timings["audits_total"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report = build_report(
        ctx, runs.results, command=cfg.command, started=started, timings=timings, measured=tuple(measuring),
        card=card, history_path=cfg.history, plugins=plugin_versions({**audits, **failed}), engine=engine,
    )
    report["run"]["peak_rss_bytes"] = peak_rss()  # a contained run's worker measures it again, at the very end
    _say_what_was_in_memory(report, cfg, ctx)
    return Execution(report=report, context=ctx, runs=runs)


def _decide(cfg: RunConfig, model: LoadedModel, target: str | None, decided: list[Decided], outputs: Any,
            target_values: Any) -> Decided:
    """The task, decided as for a whole file on the rows a binned pass read before its switch."""
    task, _ = infer_task(outputs, target_values, requested=cfg.task, metadata=model.metadata, classes=cfg.classes,
                         target=target or "target")
    decided.append(Decided(task, declared_output=model.metadata.get("output"), target=target))
    return decided[-1]


#: What the energy meter is told under --engine ray: the pass ran outside the metered process.
RAY_ENERGY = ("The model ran in Ray workers (--engine ray): the energy meter measured only the process that ran "
              "the audits, so the inference pass's energy is that process waiting for the workers, not the "
              "workers' own. Measure the workers' machines to count the pass.")


#: What ``data.origin`` says of data given as an object (its sha256 and size are the Parquet copy's).
IN_MEMORY_DATA = ("given to auditor.audit() as a Python object and read through the loader from a "
                  "Parquet copy in a private temporary folder, deleted after the run; sha256 and "
                  "size_bytes are that copy's")


def _say_what_was_in_memory(report: dict[str, Any], cfg: RunConfig, ctx: AuditContext) -> None:
    """The report names objects the caller gave as what they were, never as the temporary
    files they went through: ``data.path`` "<in-memory DataFrame>"; and for a module, that
    it ran unconfined in the caller's process and where its class's source is."""
    for key, label in (("data", cfg.data_label), ("train_data", cfg.train_data_label)):
        section = report.get(key)
        if label and isinstance(section, dict):
            section["path"] = label
            section["origin"] = IN_MEMORY_DATA
    if is_module(cfg.model):
        from auditor.run.assemble import source_facts

        run = report.setdefault("run", {})
        run["confinement"] = dict(UNCONFINED)
        model = report.get("model")
        if isinstance(model, dict):
            model["trust"] = f"{model.get('trust', '')} {UNCONFINED['summary']}".strip()
        cls = type(ctx.model.module)
        report.setdefault("code", []).insert(
            0, source_facts("auditor.audit(model=...)", f"{cls.__module__}:{cls.__qualname__}", cls))

