"""One audit run: load, predict once, run the audits, assemble the report document.

The command line builds a :class:`RunConfig` and calls :func:`execute`; nothing here
prints or writes files, so the same run is easy to drive from Python or tests.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ContextManager, Iterator, Mapping, Sequence


from auditor.run.config import audit_options
from auditor.contract.context import AuditContext, Dataset, Task, TrainData
from auditor.run.assemble import build_report
from auditor.run.energy import EnergyMeter, MeterError, NullMeter, settings_for
from auditor.contract.errors import DataError, UsageError
from auditor.run.inference import resolve_device, run_inference
from auditor.loading.data import load_data
from auditor.loading.model import LoadedModel, load_model
from auditor.run.registry import BrokenPlugin, failed_to_load, plugin_versions, select_audits, selected_broken
from auditor.contract.result import AuditResult
from auditor.run.retrain import load_trainer
from auditor.run.runner import RunOutcome, run_audits
from auditor.run.runconfig import Progress, RunConfig
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


def _load_train(
    cfg: RunConfig,
    model: LoadedModel,
    test: Dataset,
    task: Task,
    device: Any,
    input_shape: Sequence[int] | None,
    progress: Progress,
    named: Mapping[str, str],
) -> TrainData:
    """The training data: the audit data's features and target, one more inference pass."""
    assert cfg.train_data is not None
    raw = load_data(
        cfg.train_data, target=test.target_name, features=test.feature_names, metadata={}, named=named
    )
    with progress.step("Predicting on the training data", total=raw.dataset.n_rows, guard="model") as advance:
        outputs = run_inference(
            model.module,
            raw.dataset.X,
            device=device,
            batch_size=cfg.batch_size,
            input_shape=input_shape,
            on_progress=advance,
        )
    if outputs.shape[1] != task.n_outputs:
        raise DataError(f"The model gave {outputs.shape[1]} outputs on the training data, {task.n_outputs} on the audit data.")
    assert raw.target_values is not None
    raw.dataset.y = encode_target(raw.target_values, task, test.target_name or "target")
    return TrainData(data=raw.dataset, predictions=read_outputs(outputs, task))


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
    outcome: RunOutcome,
    progress: Progress,
    timeout: float | None = None,
) -> None:
    """Stop the meter and run the audits that report on it (they see the whole run)."""
    try:
        ctx.energy = meter.stop()
    except MeterError as exc:
        for name, audit in audits.items():
            outcome.results[name] = AuditResult.errored(name, audit.title, f"MeterError: {exc}")
            outcome.timings[name] = 0.0
        return
    more = run_audits(ctx, audits, options, step=lambda name: progress.step(f"Audit: {name}", guard="audit"), timeout=timeout)
    outcome.results.update(more.results)
    outcome.timings.update(more.timings)
    outcome.tracebacks.update(more.tracebacks)


@dataclass
class Execution:
    report: dict[str, Any]
    context: AuditContext
    outcome: RunOutcome


def execute(
    cfg: RunConfig,
    installed: Mapping[str, Any],
    progress: Progress | None = None,
    broken: Mapping[str, BrokenPlugin] | None = None,
) -> Execution:
    """Run everything and return the report document; raises AuditorError on bad input.

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
        return _execute(cfg, audits, options, named, trainer, device, meter, progress, started, t0, card, failed)
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
) -> Execution:
    timings: dict[str, Any] = {}

    with progress.step("Loading model", guard="model"), meter.phase("load_model", wait=False):
        t = time.perf_counter()
        model = load_model(
            cfg.model,
            device=device,
            model_class=cfg.model_class,
            model_path=cfg.model_path,
            trust=cfg.trust_model,
            model_args=cfg.model_args,
        )
        timings["load_model"] = time.perf_counter() - t

    with progress.step("Reading data"), meter.phase("load_data", wait=False):
        t = time.perf_counter()
        raw = load_data(
            cfg.data,
            target=cfg.target,
            features=cfg.features,
            metadata=model.metadata,
            sensitive=cfg.sensitive,
            named=named,
        )
        timings["load_data"] = time.perf_counter() - t
    dataset = raw.dataset
    input_shape = cfg.input_shape or model.metadata.get("input_shape") or None

    if isinstance(meter, EnergyMeter):
        with progress.step("Starting the energy meter (codecarbon)"):
            meter.ready()
    with progress.step("Predicting", total=dataset.n_rows, guard="model") as advance, meter.phase("inference"):
        t = time.perf_counter()
        outputs = run_inference(
            model.module,
            dataset.X,
            device=device,
            batch_size=cfg.batch_size,
            input_shape=input_shape,
            on_progress=advance,
        )
        timings["inference"] = time.perf_counter() - t

    task, y = infer_task(
        outputs,
        raw.target_values,
        requested=cfg.task,
        metadata=model.metadata,
        classes=cfg.classes,
        target=dataset.target_name or "target",
    )
    dataset.y = y
    train = None
    if cfg.train_data is not None:
        with progress.step("Reading training data"), meter.phase("train_data"):
            t = time.perf_counter()
            train = _load_train(cfg, model, dataset, task, device, input_shape, progress, named)
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
        infer=partial(run_inference, model.module, device=device, batch_size=cfg.batch_size, input_shape=input_shape),
        measure=meter.phase,
    )

    def step(name: str) -> Any:
        return _together(progress.step(f"Audit: {name}", guard="audit"), meter.phase(f"audit:{name}"))

    t = time.perf_counter()
    measuring = {n: a for n, a in audits.items() if "energy" in tuple(a.needs)}
    outcome = run_audits(
        ctx, {n: a for n, a in audits.items() if n not in measuring}, options, step=step, timeout=cfg.audit_timeout
    )
    for name, plugin in failed.items():
        outcome.results[name] = failed_to_load(plugin)
        outcome.timings[name] = 0.0
    if measuring:
        _run_measuring(ctx, measuring, options, meter, outcome, progress, cfg.audit_timeout)
    timings["audits"] = outcome.timings
    timings["audits_total"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report = build_report(
        ctx, outcome.results, command=cfg.command, started=started, timings=timings, measured=tuple(measuring),
        card=card, history_path=cfg.history, plugins=plugin_versions({**audits, **failed}),
    )
    return Execution(report=report, context=ctx, outcome=outcome)

