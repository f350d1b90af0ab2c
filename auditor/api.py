"""The Python API: ``auditor.audit(model, data, **options) -> Outcome``, the same run as the
``audit`` command, from a notebook, a training script or a test.

    import auditor
    out = auditor.audit("model.pt", "test.csv", sensitive=["sex"], policy="audit.toml")
    out.exit_code          # 0 passed, 1 a gate failed or a metric regressed, 3 an audit broke
    out.report             # a Report: shows itself in Jupyter, out.report.save("reports/x")
    out.save("reports/x", ["html", "json"])

The options are the command line's (``--train-data`` is ``train_data=``, ``-o a.b=v`` is
``options={"a.b": v}``); what is not given takes the same default. Two differences, both
because a Python call is explicit: no ``./pyproject.toml`` is read (``config=PATH`` reads
one, under the same trust rules as ``--config``), and nothing is written or printed unless
asked (``out=``, ``progress=True``).

``model`` is a path, run like the command line runs it: in a confined child process (see
:mod:`auditor.contain`). Or it is a ``torch.nn.Module`` object, which already lives in the
caller's process: confining the run could not keep its code out, so it runs in this process
and the report says so (``run.confinement``); its "sha256" is that of its state_dict tensors.
``data`` and ``train_data`` are paths, or a pandas DataFrame, a NumPy array or a torch tensor
(labels of an array through ``y=``/``train_y=``), written to Parquet in a private temporary
folder and read through the same loader as a file (see :mod:`auditor.loading.in_memory`).

Bad input raises an :class:`~auditor.contract.errors.AuditorError` subclass (``UsageError``,
``DataError``, ``ModelLoadError``...; its ``exit_code`` is the command line's, 2), before
anything is written; it never exits or prints. An audit that breaks is not an exception: its
result is ``error`` and ``Outcome.exit_code`` is 3, as the command line's would be.

:func:`run` (execute, then :func:`judge` the gates and the one verdict) is what the command
line calls too: the gates and regressions are part of the run's outcome, not patched in later.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from auditor.contract.errors import UsageError
from auditor.run.runconfig import Progress, RunConfig

if TYPE_CHECKING:
    from auditor.ci.policy import Policy
    from auditor.report.document import Report
    from auditor.run.registry import Discovery

__all__ = ["DEFAULT_FORMATS", "Outcome", "audit", "judge", "run"]

#: The formats written when none are named (report.json is always among them).
DEFAULT_FORMATS = ("html", "md", "json")


@dataclass
class Outcome:
    """What a run gives back: the report (gates and the one verdict inside it), the gate
    results, the verdict and the exit code the command line would exit with.

    ``gates`` is the report's gates section (:func:`auditor.ci.gates.evaluate`), None when the
    run was asked for no policy, baseline, fail_on or not_assessed rule. ``written``: the
    files ``out=`` wrote. ``tracebacks`` (audit name -> traceback of an audit that broke) and
    ``log`` (what the model printed in a contained run) are for debugging."""

    report: Report
    gates: dict[str, Any] | None
    verdict: str
    exit_code: int
    written: list[Path] = field(default_factory=list)
    tracebacks: dict[str, str] = field(default_factory=dict, repr=False)
    log: str = field(default="", repr=False)

    def __repr__(self) -> str:  # the report is large: its repr would flood a notebook cell
        failed = self.report.outcome.failed_gates if self.report.outcome is not None else []
        return (f"Outcome(verdict={self.verdict!r}, exit_code={self.exit_code}, audits={list(self.report.audits)}, "
                f"failed_gates={failed!r}, written={[str(p) for p in self.written]!r})")

    @property
    def passed(self) -> bool:
        """Whether the run passed (exit code 0: warnings and not-assessed audits allowed)."""
        return self.exit_code == 0

    def save(self, folder: Path | str, formats: Iterable[str] | str | None = None) -> list[Path]:
        """Write the report into ``folder`` in ``formats`` (default html, md, json; report.json
        is always written, as by the command line), each file atomically; return the paths."""
        return self.report.save(folder, output_formats(formats))

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


# --- the shared run: execute, judge --------------------------------------------------------------


def output_formats(value: Iterable[str] | str | None, *, with_json: bool = True) -> list[str]:
    """The formats to write, checked before any work (a PDF needs its browser); report.json
    is added (``with_json``): it is the source every other format is rendered from, and what
    ``audit render`` and ``audit compare`` read."""
    from auditor.report.renderers import check_formats
    from auditor.run.config import split_list

    formats = check_formats(split_list(value) or list(DEFAULT_FORMATS))
    if with_json and "json" not in formats:
        formats.append("json")
    if "pdf" in formats:
        from auditor.report.pdf import require_pdf

        require_pdf()
    return formats


def judge(
    report: dict[str, Any],
    *,
    policy: Policy | None = None,
    baseline: Mapping[str, Any] | None = None,
    baseline_path: str | None = None,
    fail_on: str = "error",
    not_assessed: str = "warn",
    keep_gates: bool = False,
) -> dict[str, Any]:
    """Judge a run's report: the gates, regressions and the fail_on rule
    (:func:`auditor.ci.gates.evaluate`), then THE verdict and its exit code
    (:func:`auditor.run.runner.outcome`), stored in ``report["outcome"]`` and
    ``report["verdict"]``; ``report["gates"]`` too when a policy, a baseline or
    ``keep_gates`` (a fail_on or not_assessed rule asked for) makes them part of the run.
    Returns the gates section."""
    from auditor.ci.gates import evaluate
    from auditor.report.json_report import all_audits
    from auditor.run.runner import outcome

    gates = evaluate(report, policy, dict(baseline) if baseline is not None else None, fail_on=fail_on,
                     not_assessed=not_assessed, baseline_path=baseline_path)
    if policy is not None or baseline is not None or keep_gates:
        report["gates"] = gates
    report["outcome"] = outcome(all_audits(report), gates, not_assessed=not_assessed)
    report["verdict"] = report["outcome"]["verdict"]
    return gates


def run(
    cfg: RunConfig,
    discovery: Discovery,
    *,
    policy: Policy | None = None,
    baseline: Mapping[str, Any] | None = None,
    baseline_path: str | None = None,
    fail_on: str = "error",
    not_assessed: str = "warn",
    keep_gates: bool = False,
    progress: Progress | None = None,
    inference_timeout: float | None = None,
) -> Outcome:
    """Execute ``cfg`` and judge it: a model file in a confined child process
    (:func:`auditor.contain.supervisor.execute_contained`), a module object in this process
    (:func:`auditor.run.pipeline.execute`); then :func:`judge`. Raises the run's
    :class:`~auditor.contract.errors.AuditorError` for bad input."""
    from auditor.loading.in_memory import is_module
    from auditor.report.document import Report

    progress = progress or Progress()
    if is_module(cfg.model):
        from auditor.run.pipeline import execute

        execution = execute(cfg, discovery.audits, progress, discovery.broken)
        report, tracebacks, log = execution.report, dict(execution.runs.tracebacks), ""
    else:
        from auditor.contain.supervisor import DEFAULT_INFERENCE_TIMEOUT, execute_contained

        contained = execute_contained(cfg, discovery.audits, progress,
                                      inference_timeout=inference_timeout or DEFAULT_INFERENCE_TIMEOUT)
        report, tracebacks, log = contained.report, contained.tracebacks, contained.log
    judge(report, policy=policy, baseline=baseline, baseline_path=baseline_path, fail_on=fail_on,
          not_assessed=not_assessed, keep_gates=keep_gates)
    document = Report.from_dict(report)
    return Outcome(
        report=document,
        gates=document.gates,
        verdict=str(report["outcome"]["verdict"]),
        exit_code=int(report["outcome"]["exit_code"]),
        tracebacks=tracebacks,
        log=log,
    )


# --- what the command line and audit() both check before the run -------------------------------


def check_input_files(model: Any, files: Mapping[str, Path | None], *, allow_symlinks: bool = False) -> None:
    """Every input file the run will read, checked before anything reads it: no FIFO,
    device, /proc or /sys file, nor a link out of its folder without ``allow_symlinks``
    (see :mod:`auditor.loading.inputs`). ``model``: its path (a module object has no file);
    ``files``: "The data file" -> path (None: not given). The policy and the baseline are
    checked where they load."""
    from auditor.loading.inputs import check_input

    named: dict[str, Path | None] = {}
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.name or path.is_dir():
            raise UsageError(
                f"The model path '{path}' is a folder, not a model file.",
                hint="Pass the file the model was saved to, e.g. model.pt.",
            )
        named = {"The model file": path, "The model metadata file": path.with_name(path.stem + ".auditor.json")}
    for what, found in {**named, **files}.items():
        if found is not None:
            check_input(found, what, allow_symlinks=allow_symlinks, folder=what == "The training history")


def prune_trainer(cfg: RunConfig, discovery: Discovery) -> None:
    """Forget the trainer when no audit the run selects retrains with it: it is imported
    (its module's top level runs) only when it is used."""
    if not cfg.trainer:
        return
    from auditor.contract.plugin import used
    from auditor.run.registry import select_audits

    if not used(select_audits(discovery.audits, cfg.audits, cfg.skip, discovery.broken), "trainer"):
        cfg.trainer = None


def gates_of(
    policy: Any,
    baseline: Any,
    settings: Mapping[str, Any],
    audit_names: Sequence[str],
    *,
    allow_symlinks: bool = False,
) -> tuple[Policy | None, dict[str, Any] | None, str | None]:
    """The policy (a path, a ``{"gates": ..., "regression": ...}`` mapping, a Policy, or the
    ``gates``/``regression`` tables of the settings), the baseline report (a path, a report
    dict, a Report or an Outcome; else the policy's ``baseline``) and the baseline's path,
    each checked before any work."""
    from auditor.ci.gates import load_baseline
    from auditor.ci.policy import Policy, load_policy, policy_from_tables

    if isinstance(policy, Policy):
        loaded: Policy | None = policy
    elif isinstance(policy, Mapping):
        loaded = policy_from_tables(policy.get("gates"), policy.get("regression"), source="the policy argument")
    elif policy is None or isinstance(policy, (str, Path)):
        loaded = load_policy(None if policy is None else Path(policy), settings, allow_symlinks=allow_symlinks)
    else:
        raise UsageError(f"policy must be a path, a mapping of [gates]/[regression] tables or a Policy; "
                         f"got {type(policy).__name__}.")
    report: dict[str, Any] | None = None
    where: Path | None = None
    if isinstance(baseline, Outcome):
        baseline = baseline.report
    if baseline is None or isinstance(baseline, (str, Path)):
        where = Path(baseline) if baseline is not None else (loaded.baseline if loaded is not None else None)
    elif hasattr(baseline, "to_dict"):
        report = baseline.to_dict()
    elif isinstance(baseline, Mapping):
        from auditor.report.document import Report

        report = Report.from_dict(baseline).to_dict()  # checked (and a 1.x report migrated)
    else:
        raise UsageError(f"baseline must be a report.json path, a report dict, a Report or an Outcome; "
                         f"got {type(baseline).__name__}.")
    if loaded is not None:
        loaded.check_syntax(audit_names, baseline_given=where is not None or report is not None)
    if where is not None:
        report = load_baseline(where, allow_symlinks=allow_symlinks)
    return loaded, report, None if where is None else str(where)


# --- auditor.audit ----------------------------------------------------------------------------


def _overrides(options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``{"audit.option": value}`` and ``{audit: {option: value}}`` as ``{audit: {option: value}}``."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in (options or {}).items():
        if isinstance(value, Mapping):
            for option, inner in value.items():
                found.setdefault(str(key), {})[str(option)] = inner
            continue
        audit_name, dot, option = str(key).partition(".")
        if not dot or not audit_name or not option:
            raise UsageError(f"options keys are 'AUDIT.OPTION' (or {{AUDIT: {{OPTION: value}}}}); got {key!r}.",
                             hint='For example: options={"metrics.n_resamples": 2000}.')
        found.setdefault(audit_name, {})[option] = value
    return found


def _file(value: Any) -> Path | None:
    """A path given as text or a Path (None for an object or nothing)."""
    return Path(value) if isinstance(value, (str, Path)) else None


def _names(value: Any) -> list[str] | None:
    from auditor.run.config import split_list

    return split_list(value)


def _described(value: Any) -> str:
    """How ``run.command`` shows an argument: paths and plain values as written, objects by kind."""
    if isinstance(value, (str, Path, int, float, bool)) or value is None:
        return repr(str(value) if isinstance(value, Path) else value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return repr(list(value))
    if isinstance(value, Mapping):
        return "{...}"
    return f"<{type(value).__name__}>"


def _command(model: Any, data: Any, given: Mapping[str, Any]) -> str:
    shown = [_described(model), _described(data)] + [f"{k}={_described(v)}" for k, v in given.items()]
    return f"auditor.audit({', '.join(shown)})"


def audit(
    model: Any,
    data: Any,
    *,
    target: str | None = None,
    features: Sequence[str] | str | None = None,
    sensitive: Sequence[str] | str | None = None,
    y: Any = None,
    history: str | Path | None = None,
    train_data: Any = None,
    train_y: Any = None,
    card: str | Path | None = None,
    classes: Sequence[str] | str | None = None,
    task: str | None = None,
    input_shape: Sequence[int] | str | None = None,
    labels: str | Path | None = None,
    image_size: str | Sequence[int] | None = None,
    image_mode: str | None = None,
    skip_unreadable: bool = False,
    text: str | None = None,
    tokenizer: str | Path | None = None,
    max_tokens: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_class: str | None = None,
    model_args: Mapping[str, Any] | str | None = None,
    model_path: str | Path | None = None,
    trainer: str | None = None,
    transform: str | None = None,
    trust_model: bool = False,
    device: str | None = None,
    batch_size: int | None = None,
    memory_budget: str | int | None = None,
    engine: str | None = None,
    ray_address: str | None = None,
    seed: int | None = None,
    audits: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    options: Mapping[str, Any] | None = None,
    policy: Any = None,
    baseline: Any = None,
    fail_on: str | None = None,
    not_assessed: str | None = None,
    audit_timeout: float | None = None,
    inference_timeout: float | None = None,
    config: str | Path | None = None,
    trust_config: bool = False,
    allow_symlinks: bool = False,
    out: str | Path | None = None,
    formats: Sequence[str] | str | None = None,
    progress: bool = False,
) -> Outcome:
    """Audit ``model`` on ``data`` and return the :class:`Outcome` (see the module docstring).

    Every keyword is the command line's option of the same name (``audit run --help``), with
    its default when left None: ``target``, ``features`` (the model's input columns, in
    order; for an array, the names of its columns), ``sensitive``, ``history``,
    ``train_data``, ``card``, ``classes``, ``task`` ("auto"), ``input_shape``, ``labels``,
    ``image_size`` ("28x28" or (28, 28)), ``image_mode``, ``skip_unreadable``, ``text``,
    ``tokenizer``, ``max_tokens``,
    ``model_class``/``model_args``/``model_path``/``trust_model`` (a model file),
    ``trainer``, ``transform`` (``"pkg.module:function"``: your step between the data as read and
    the model), ``device`` ("auto"), ``batch_size``, ``memory_budget`` (e.g. "2GiB"; the memory available), ``engine`` ("stream"; "ray": Ray Data actors, a model file only), ``ray_address``, ``seed`` (0), ``audits``, ``skip``,
    ``options`` (``-o``), ``policy``, ``baseline``, ``fail_on`` ("error"), ``not_assessed``
    ("warn"), ``audit_timeout``, ``inference_timeout``, ``config``/``trust_config``,
    ``allow_symlinks``, ``out``/``formats`` (write the reports there; nothing is written
    without ``out``). Only here: ``y``/``train_y`` (the labels of data given as an array),
    ``metadata`` (what a sidecar .auditor.json would declare, for a module object) and
    ``progress`` (progress bars on stderr).
    """
    given = {k: v for k, v in locals().items() if k in _AUDIT_KEYWORDS and v is not None and v is not False}
    from auditor.loading.in_memory import is_module, is_table_object, table_file
    from auditor.loading.inputs import checked_budget
    from auditor.loading.inputs import model_args as parse_model_args
    from auditor.loading.metadata import parse_input_shape
    from auditor.run.config import (
        Settings,
        check_settings,
        engine_of,
        load_settings,
        refuse_untrusted,
    )
    from auditor.run.config import (
        audit_timeout as check_audit_timeout,
    )
    from auditor.run.config import (
        inference_timeout as check_inference_timeout,
    )
    from auditor.run.registry import discover_plugins

    in_memory = is_module(model)
    if not in_memory:
        if not isinstance(model, (str, Path)):
            raise UsageError(f"model must be a path or a torch.nn.Module; got {type(model).__name__}.",
                             hint="Pass the path of a saved model, or the nn.Module itself.")
        from auditor.contain import server

        server.start()  # the process contained runs are forked from: its imports overlap what follows
    if metadata is not None and not in_memory:
        raise UsageError("metadata= is for a model given as an nn.Module; a model file declares its own.",
                         hint="Write it to <model-stem>.auditor.json beside the model file.")
    discovery = discover_plugins()
    settings: Mapping[str, Any] = Settings()
    if config is not None:
        settings = load_settings(Path(config), Path.cwd(), allow_symlinks=allow_symlinks, pyproject=False)
        check_settings(settings, discovery.names)
        refuse_untrusted(settings, given, Path.cwd(), trust=trust_config)

    def pick(value: Any, key: str, default: Any = None) -> Any:
        return value if value is not None else settings.get(key, default)

    history_path = pick(history, "history")
    card_path = pick(card, "card")
    train_given = pick(train_data, "train_data")
    labels_path = pick(labels, "labels")
    tokenizer_path = pick(tokenizer, "tokenizer")
    check_input_files(model, {
        "The data file": _file(data),
        "The training data": _file(train_given),
        "The labels table": None if labels_path is None else Path(labels_path),
        "The tokenizer file": None if tokenizer_path is None else Path(tokenizer_path),
        "The training history": None if history_path is None else Path(history_path),
        "The model card": None if card_path is None else Path(card_path),
    }, allow_symlinks=allow_symlinks)
    size = pick(image_size, "image_size")
    if size is not None and not isinstance(size, str):
        if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) for v in size)):
            raise UsageError(f"image_size must be 'HEIGHTxWIDTH' or (height, width); got {size!r}.")
        size = f"{size[0]}x{size[1]}"
    tokens = pick(max_tokens, "max_tokens")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1):
        raise UsageError(f"max_tokens must be a whole number of at least 1; got {tokens!r}.")
    if y is not None and not is_table_object(data):
        raise UsageError("y= gives the labels of data given as an object; a data file holds its own target column.")
    if train_y is not None and not is_table_object(train_given):
        raise UsageError("train_y= gives the labels of training data given as an object; a file holds its own.")
    for key, value, least in (("batch_size", pick(batch_size, "batch_size"), 1), ("seed", pick(seed, "seed"), 0)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise UsageError(f"{key} must be a whole number of at least {least}; got {value!r}.")
    fail_rule = pick(fail_on, "fail_on", "error")
    assessed = pick(not_assessed, "not_assessed", "warn")
    folder = out if out is not None else pick(None, "out")
    # checked before any work, even without out= (Outcome.save may write them later)
    wanted = output_formats(pick(formats, "format")) if folder is not None or formats is not None else []
    scratch = Path(tempfile.mkdtemp(prefix="auditor-data-")) if is_table_object(data) or is_table_object(
        train_given) else None
    try:
        feature_names = _names(pick(features, "features"))
        cfg = RunConfig(
            model=model if in_memory else Path(model),
            data=_file(data) or Path(),
            target=pick(target, "target"),
            features=feature_names,
            sensitive=_names(pick(sensitive, "sensitive")),
            history=None if history_path is None else Path(history_path),
            card=None if card_path is None else Path(card_path),
            train_data=_file(train_given),
            classes=_names(pick(classes, "classes")),
            task=pick(task, "task", "auto"),
            input_shape=parse_input_shape(pick(input_shape, "input_shape"), "input_shape",
                                          "whole numbers like (1, 28, 28)"),
            labels=None if labels_path is None else Path(labels_path),
            image_size=size or None,
            image_mode=pick(image_mode, "image_mode") or None,
            skip_unreadable=bool(skip_unreadable),
            text=pick(text, "text") or None,
            tokenizer=None if tokenizer_path is None else Path(tokenizer_path),
            max_tokens=tokens,
            model_class=pick(model_class, "model_class"),
            model_path=None if pick(model_path, "model_path") is None else str(pick(model_path, "model_path")),
            trainer=pick(trainer, "trainer"),
            transform=pick(transform, "transform"),
            trust_model=bool(trust_model),
            device=pick(device, "device", "auto"),
            batch_size=pick(batch_size, "batch_size"),
            memory_budget=checked_budget(pick(memory_budget, "memory_budget")),
            engine=engine_of(pick(engine, "engine")),
            ray_address=pick(ray_address, "ray_address"),
            seed=pick(seed, "seed", 0),
            audit_timeout=check_audit_timeout(pick(audit_timeout, "audit_timeout")),
            audits=_names(pick(audits, "audits")),
            skip=_names(pick(skip, "skip")) or [],
            settings=dict(settings),
            overrides=_overrides(options),
            command=_command(model, data, given),
            model_args=parse_model_args(pick(dict(model_args) if isinstance(model_args, Mapping) else model_args,
                                             "model_args")),
            model_metadata=dict(metadata) if metadata is not None else None,
        )
        if scratch is not None:
            if is_table_object(data):
                written = table_file(data, scratch, name="in-memory-data.parquet", y=y, features=feature_names,
                                     target=cfg.target)
                cfg.data, cfg.data_label = written.path, written.label
                if cfg.input_shape is None and written.input_shape is not None:
                    cfg.input_shape = written.input_shape
            if is_table_object(train_given):
                # the training data's columns are the audit data's: the same names, the same target
                written = table_file(train_given, scratch, name="in-memory-train-data.parquet", y=train_y,
                                     features=feature_names, target=cfg.target, what="training data")
                cfg.train_data, cfg.train_data_label = written.path, written.label
        prune_trainer(cfg, discovery)
        loaded_policy, baseline_report, baseline_at = gates_of(
            policy, baseline, settings, cfg.audits or discovery.names, allow_symlinks=allow_symlinks)
        from auditor.run.runconfig import RichProgress

        timeout = check_inference_timeout(pick(inference_timeout, "inference_timeout"))
        rules_asked = any(v is not None for v in (fail_on, not_assessed)) or any(
            k in settings for k in ("fail_on", "not_assessed"))
        with RichProgress(enabled=progress) as drawing:
            result = run(cfg, discovery, policy=loaded_policy, baseline=baseline_report, baseline_path=baseline_at,
                         fail_on=fail_rule, not_assessed=assessed, keep_gates=rules_asked,
                         progress=drawing if progress else None, inference_timeout=timeout)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if folder is not None:
        result.written = result.report.save(Path(folder), wanted)
    return result


#: The keywords of :func:`audit` that ``run.command`` shows (and a config file's trust rules see).
_AUDIT_KEYWORDS = frozenset({
    "target", "features", "sensitive", "y", "history", "train_data", "train_y", "card", "classes", "task",
    "input_shape", "labels", "image_size", "image_mode", "skip_unreadable", "text", "tokenizer", "max_tokens",
    "metadata", "model_class", "model_args", "model_path", "trainer", "transform", "trust_model",
    "device",
    "batch_size", "memory_budget", "engine", "ray_address", "seed", "audits", "skip", "options", "policy", "baseline", "fail_on", "not_assessed",
    "audit_timeout", "inference_timeout", "config", "trust_config", "allow_symlinks", "out", "formats",
})
