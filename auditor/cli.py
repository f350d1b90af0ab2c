"""The ``audit`` command line: the one place that turns errors into exit codes.

Exit codes (like pytest and ruff): 0 every gate passed (with no policy: no audit failed);
1 a gate failed, a metric regressed against the baseline, or a finding of the --fail-on
severity; 2 usage or input error (one line, no traceback unless --debug); 3 an audit or the
tool itself broke (an audit raised, returned a malformed result or ran past --audit-timeout,
or an installed plugin failed to load: the report names it and the other audits still run);
130 interrupted by Ctrl-C (SIGINT), 143 terminated by SIGTERM: one line, "Interrupted: no
report written.", and nothing left in the report folder (reports are written only once every
audit has finished, each file whole; a signal that arrives while they are being written
waits until they are).

A plugin that fails to load is reported as an ``error`` result under its entry-point name,
whether the run selects it by default or ``--audits`` names it (exit 3 either way); with
``--audits`` naming other audits only, or ``--skip`` naming it, it is left out of the run.

The run itself is :func:`auditor.api.run` (the Python API's): this module parses, turns
``[tool.auditor]`` settings into Click's defaults (:class:`RunCommand`), prints and writes.

One concept: the ``audit`` command line (its commands, options, help text, signals and the
mapping of errors to exit codes); most of its length is the options' help, which reads best
beside the options.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import click
from click.core import ParameterSource

from auditor import __version__
from auditor.contract.errors import AuditorError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 128 + 2, 128 + 15


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run, raised in the main thread like Ctrl-C's KeyboardInterrupt, so
    that the same clean-up runs and the run ends with one line and exit 143."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a run works, SIGTERM raises :class:`Terminated` (main thread, POSIX)."""
    if not _in_main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C or SIGTERM while the reports are being written takes effect once they are all
    written, so a signal never leaves a partial set of reports behind."""
    if not _in_main_thread():
        yield
        return
    caught: list[int] = []
    wanted = [s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None]
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    for number in caught:
        if previous.get(number) is signal.SIG_IGN:
            continue
        if number == getattr(signal, "SIGTERM", None):
            raise Terminated()
        raise KeyboardInterrupt()


DEFAULT_FORMATS = ("html", "md", "json")

EXAMPLES = """\b
Examples:
  audit model.pt --data test.csv
      audit a TorchScript model on a CSV whose target column is
      named target/label/y/class; reports go to reports/model/
  audit model.pt --data test.parquet --target income --classes '<=50K,>50K'
      name the target and which model output is which class
  audit model.pt --data test.csv --sensitive sex --sensitive race
      fairness across sex, race and their intersection
  audit model.pt --data test.csv --history metrics.csv --train-data train.csv
      overfitting: where validation loss turned, and the train-vs-test gap
  audit weights.safetensors --model-class mypkg.nets:Net --data test.csv
      weights only: name the class to load them into
  audit cnn.pt --data digits.csv --input-shape 1,8,8
      reshape each flat CSV row for an image model
  audit model.pt --data test.csv -o metrics.n_resamples=2000 --format json
  audit model.pt --data test.csv -o carbon.country=DEU -o carbon.train_power=300
      energy and CO2 of this run (codecarbon, offline) and of the training
  audit model.pt --data test.csv --sensitive sex --history log.csv --card model-card.toml --format html,pdf,md
      the compliance report for a review board ('audit card init' writes the card)
  audit model.pt --data test.csv --policy audit.toml --baseline main.json --format html,json,junit
      gate a merge: exit 1 when a gate fails or a metric regresses
  audit compare main/report.json branch/report.json
  audit demo                  audit the bundled UCI Adult example
  audit plugins               list installed audits and their options
  audit render reports/model/report.json --format html
"""


#: The longest error line printed: a message may quote a name from the input (a column name
#: of 50 MB is one header line), and one line must stay one screen line, not a flood.
MAX_ERROR_CHARS = 2000


def _short(message: str) -> str:
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return message[:MAX_ERROR_CHARS] + f"… (cut at {MAX_ERROR_CHARS:,} characters)"


class DefaultGroup(click.Group):
    """A group whose default command is ``run``: ``audit MODEL ...`` means ``audit run MODEL ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        ctx.meta["auditor.debug"] = "--debug" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Turn our errors into one line and an exit code; tracebacks only with --debug. The
        names in a message (files, columns) are put on one line, control characters made
        visible, so that they cannot drive the terminal or start a CI runner's command."""

        def _line(text: Any) -> str:
            from auditor.report.numbers import one_line

            return one_line(text)

        debug = ctx.meta.get("auditor.debug", False)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated) during a run
            if debug:
                traceback.print_exc()
            written = ctx.meta.get("auditor.written")
            if written:
                click.echo(f"Interrupted: the reports had been written to {_line(written)}.", err=True)
            else:
                click.echo("Interrupted: no report written.", err=True)
            ctx.exit(EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT)
        except AuditorError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {_short(_line(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            if debug:
                traceback.print_exc()
            click.echo(
                f"Internal error: {_short(_line(f'{type(exc).__name__}: {exc}'))} (run with --debug for the "
                "traceback, and please report it).",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("audit", "MODEL --data PATH [OPTIONS]")
        # the second form under the first, aligned with it, not a second "Usage:" heading
        formatter.write_text(f"{'':{len('Usage: ')}}audit COMMAND [ARGS]...")
        formatter.write_paragraph()
        formatter.write_text(
            "Audit a trained PyTorch model: metrics with 95% confidence intervals and every "
            "installed audit, written as HTML, Markdown and JSON reports. The model runs once "
            "over the data (on the GPU when there is one); every audit shares that pass."
        )
        run = self.commands["run"]
        with click.Context(run, info_name="audit", parent=None) as run_ctx:
            run.format_options(run_ctx, formatter)
        with formatter.indentation():
            formatter.write_dl([("--version", "Show the version and exit.")])
        self.format_commands(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(EXAMPLES)
        formatter.write_paragraph()
        formatter.write_text(
            "Exit codes: 0 passed (warnings and audits 'not assessed' allowed), 1 a gate failed, "
            "a metric regressed or an audit failed (--fail-on; --not-assessed fail), 2 bad usage "
            "or input, 3 an audit or auditor itself broke "
            "(an audit raised, returned a malformed result or timed out, or a plugin failed to "
            "load), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); an interrupted run writes "
            "no report. Settings may also live in [tool.auditor] in ./pyproject.toml."
        )


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _formats(value: str | Sequence[str] | None, *, with_json: bool = True) -> list[str]:
    """The formats to write (see :func:`auditor.api.output_formats`: report.json is always
    among a run's, and a PDF's browser is looked for before any work)."""
    from auditor.api import output_formats

    return output_formats(value, with_json=with_json)


def _path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(value)


# --- [tool.auditor] settings as the run command's defaults --------------------------------------

#: The run command's parameters that a setting of the same meaning gives a default to
#: (setting key -> parameter name; the others are named alike).
_PARAMETER_OF = {"format": "formats"}
#: Settings that hold lists (a TOML array, or text with commas).
_LISTS = ("features", "sensitive", "classes", "input_shape", "format", "audits", "skip")


def _default_map(settings: Mapping[str, Any], command: click.Command, ctx: click.Context) -> dict[str, Any]:
    """The settings as Click's ``default_map`` of ``command``: each value as its option would
    take it (a list as text with commas; a repeatable option's as a list), and checked as
    its option checks it, one line naming the setting and its file when it is wrong."""
    params = {param.name: param for param in command.params if param.name}
    origin: Mapping[str, str] = getattr(settings, "origin", {})
    found: dict[str, Any] = {}
    for key, value in settings.items():
        name = _PARAMETER_OF.get(key, key)
        param = params.get(name)
        if param is None or isinstance(value, Mapping):
            continue  # an audit's table, or [gates]/[regression]: read where they are used
        if key in _LISTS and not isinstance(value, str):
            value = [str(v) for v in value] if getattr(param, "multiple", False) else ",".join(str(v) for v in value)
        elif getattr(param, "multiple", False) and isinstance(value, str):
            value = [value]
        try:
            param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise UsageError(f"{origin.get(key, 'A config file')} sets {key} = {value!r}: {exc.format_message()}",
                             hint=f"See --{name.replace('_', '-')} in `audit run --help`.") from None
        found[name] = value
    return found


class RunCommand(click.Command):
    """``audit run``, whose defaults are the ``[tool.auditor]`` settings (./pyproject.toml,
    then ``--config FILE``): they are loaded before the arguments are parsed and reach Click
    as its ``default_map`` (so ``audit run --help`` shows them), and the command line wins.
    Which file is read (``--config``) and how links are treated (``--allow-symlinks``) come
    from a first look at the arguments; what a file may set is judged in the run
    (:func:`auditor.run.config.refuse_untrusted`, ``--trust-config``), which knows which
    values the command line gave itself."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from auditor.contain import server
        from auditor.run.config import check_settings, load_settings
        from auditor.run.registry import discover_plugins

        server.start()  # the process runs are forked from: its imports overlap all that follows
        try:
            first, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        except click.UsageError:
            first = {}  # the real parse below says what is wrong
        helping = any(a in ("--help", "-h") for a in args)
        try:
            discovery = discover_plugins()
            settings = load_settings(_path(first.get("config_file")), Path.cwd(),
                                     allow_symlinks=bool(first.get("allow_symlinks")))
            check_settings(settings, discovery.names)
            ctx.default_map = {**_default_map(settings, self, ctx), **(ctx.default_map or {})}
            if ctx.default_map and ctx.show_default is None:
                ctx.show_default = True  # the options have no defaults of their own: these are the settings'
        except AuditorError:
            if not helping:  # help is shown whatever the settings say
                raise
        else:
            ctx.meta["auditor.settings"] = settings
            ctx.meta["auditor.discovery"] = discovery
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="auditor")
def cli() -> None:
    """Audit a trained PyTorch model."""


@cli.command("run", cls=RunCommand, epilog=EXAMPLES)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Test data, recognised by content: a table (CSV, CSV.gz or Parquet, with a header row); a folder of images in class sub-folders (data/<class>/*.png), or flat with --labels; a NumPy archive (np.savez: X [N, ...], y [N], more 1-D arrays as columns); or a dict of tensors saved with torch.save (loaded weights_only). Images are read as float32 in [0, 1], channels first, and their shape becomes the model's input shape.")
@click.option("--labels", type=click.Path(path_type=Path), help="For a flat folder of images: a table (CSV or Parquet) whose 'file' column (else its first) names each image relative to the folder, beside its label and other columns (sensitive attributes...). With class sub-folders it adds columns.")
@click.option("--text", metavar="COLUMN", help="A text column of the table, given to the model as token ids (with --tokenizer and --max-tokens; also text.column in the model's metadata).")
@click.option("--tokenizer", type=click.Path(path_type=Path), help="The tokenizers-library JSON file that encodes --text (tokenizer.json; pip install 'auditor[text]').")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Truncate and pad every text to this many token ids (declared, never guessed; also text.max_tokens in the model's metadata).")
@click.option("--image-size", metavar="HxW", help="Resize every image to HEIGHTxWIDTH (bilinear), e.g. 28x28. Default: as the files hold them, all alike (also image.size in the model's metadata).")
@click.option("--skip-unreadable", is_flag=True, default=False, help="Leave out the images of a folder that do not decode (corrupt, truncated), at most 1% of them, and count them in the report (run.engine.data.skipped_unreadable). Without it one such image stops the run (exit 2).")
@click.option("--image-mode", type=click.Choice(["L", "LA", "RGB", "RGBA"]), help="Convert every image to this mode (L: grey, 1 channel; RGB: 3). Default: as the files hold them, all alike (also image.mode in the model's metadata).")
@click.option("--target", help="Target column. Default: the model's declared target, else a column named target, label, y or class.")
@click.option("--features", help="Comma-separated feature columns in the model's input order. Default: the model's declared feature_names, else every other column in file order.")
@click.option("--sensitive", multiple=True, metavar="COL[,COL]", help="Sensitive attribute column(s) for the fairness audit, e.g. --sensitive sex --sensitive race (or sex,race). Never fed to the model unless listed in --features. Default: the model's declared sensitive columns found in the data.")
@click.option("--history", type=click.Path(path_type=Path), help="Training history for the overfitting audit: per-epoch CSV or JSON (Keras history.json, Lightning metrics.csv) or a TensorBoard log folder/file.")
@click.option("--train-data", type=click.Path(path_type=Path), help="The training data (same columns as --data): metrics on it and the train-vs-test gap, through one more inference pass.")
@click.option("--card", type=click.Path(path_type=Path), help="Model card (TOML or YAML; 'audit card init' writes a template): for a review board's compliance report, with the card, every input's SHA-256, limitations and a sign-off block; report.md becomes a model card. Missing required fields are listed as gaps.")
@click.option("--classes", help="Class labels in the model's output order, e.g. '<=50K,>50K'. Default: the model's class_names, else 0..K-1.")
@click.option("--task", type=click.Choice(["auto", "binary", "multiclass", "regression"]), help="Default auto: from the model's output width and the target.")
@click.option("--input-shape", help="Reshape each flat row for the model, e.g. 1,8,8 (CNN) or T,F (LSTM).")
@click.option("--model-class", help="pkg.module:Class (or a factory function) to load state_dict/safetensors weights into. Importing the module runs its top level: put the class in a module without top-level training code.")
@click.option("--model-args", metavar="JSON", help="Keyword arguments for --model-class, as a JSON object, e.g. '{\"hidden\": 64}'.")
@click.option("--model-path", help="Folder to import --model-class, --trainer and --transform from.")
@click.option("--trainer", metavar="PKG.MODULE:FUNCTION", help="Your training function, train_fn(X, y) -> nn.Module: the crossval audit retrains it on every fold (true k-fold cross-validation) and places the given model's score among the retrained ones. Imported like --model-class (see --model-path).")
@click.option("--trust-model", is_flag=True, default=False, help="Allow a pickled model (runs code from the file). Only for files you trust.")
@click.option("--transform", metavar="PKG.MODULE:FUNCTION", help="Your own step between the data as read and the model, for what --image-size, --image-mode and the metadata's mean/std do not cover: fn(batch) -> the model's input, a batch tensor on the model's device ([rows, *input shape]; token ids as int64). Every pass goes through it (inference, attributions, permutation importance), so attributions stay over the data as read. Imported like --model-class (see --model-path); the report's code section records its file and SHA-256.")
@click.option("--trust-config", is_flag=True, default=False, help="Let ./pyproject.toml and --config set what imports and runs code (model_class, model_path, trainer, transform) and name files outside this folder (card, history, train_data). Without it a config file cannot do that on your behalf: give those options on the command line. Only for config files you trust.")
@click.option("--allow-symlinks", is_flag=True, default=False, help="Read input files that are symbolic links out of their folder (git-annex, DVC). Without it such a link is refused, so that a link committed to a repository cannot put another file (a key, a token) into the report. FIFOs, devices and files under /proc or /sys are refused regardless.")
@click.option("--device", help="auto (default: CUDA when present), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows per forward batch (default on CPU: about 262,144 input values a batch, e.g. 8,738 rows of 30 features or 334 images of 28x28, between 64 and 65,536 rows; 262,144 rows on CUDA, halved on out-of-memory).")
@click.option("--memory-budget", metavar="SIZE", help="Memory the data may take, e.g. 2GiB or 500MB (default: the memory available; also AUDITOR_MEMORY_BUDGET and memory_budget in [tool.auditor]). The data are read in chunks of an eighth of it; features of all rows are kept when they fit in half of it, else a seeded sample for the audits that read features (explain), which say so. report.json's run.engine records the chunks and run.peak_rss_bytes the peak.")
@click.option("--engine", type=click.Choice(["stream", "ray"]), help="stream (default): read, predict and keep the compact columns on this machine. ray: read the Parquet file and run the model in Ray Data actors (pip install 'auditor[ray]'), each model in its own confined process, a local Ray instance unless --ray-address; report.json is the same, outside run and measurements. Also engine in [tool.auditor].")
@click.option("--ray-address", metavar="ADDRESS", help="The Ray cluster --engine ray joins (e.g. auto, or ray://head:10001; default: RAY_ADDRESS, else a local instance). The data file and the model must be readable at the same path on every node.")
@click.option("--seed", type=int, help="Seed for resampling (default 0): same inputs and seed, same numbers.")
@click.option("--audit-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Stop any audit still running after SECONDS and report it as an error; the other audits still run (exit 3). Default: none; also audit_timeout in [tool.auditor]. Enforced with SIGALRM on POSIX (Linux, macOS), not on Windows; an audit inside one long native call (a big tensor operation) is stopped when that call returns.")
@click.option("--inference-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Stop the run when loading the model or one inference pass takes longer than SECONDS (default 1800): a model that loops forever ends with exit 2 and no report. Enforced from outside the process that runs the model; also inference_timeout in [tool.auditor].")
@click.option("--out", type=click.Path(path_type=Path), help="Report folder. Default: reports/<model-stem>/.")
@click.option("--format", "formats", help="Comma-separated: html,md,json,junit,pdf (default html,md,json; pdf prints report.html with headless Chromium). report.json is always written: it is what `audit render` and `audit compare` read.")
@click.option("--audits", help="Comma-separated audits to run (default: all installed; see 'audit plugins').")
@click.option("--skip", help="Comma-separated audits not to run.")
@click.option("-o", "--option", "overrides", multiple=True, metavar="AUDIT.OPTION=VALUE", help="Set an audit's option, e.g. -o metrics.n_resamples=2000. Repeatable.")
@click.option("--policy", type=click.Path(path_type=Path), help="Gates for CI: a TOML file with [gates] (e.g. \"metrics.roc_auc\" = \">= 0.9\") and [regression]; also [tool.auditor.gates] in pyproject.toml. A failed gate exits 1.")
@click.option("--baseline", type=click.Path(path_type=Path), help="A previous report.json (e.g. from main) to check for regressions ([regression] tolerances in the policy).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), help="Which findings fail the run (exit 1). Default: error.")
@click.option("--not-assessed", "not_assessed", type=click.Choice(["warn", "fail", "pass"]), help="What an audit that ran but could not judge (status 'not assessed': groups or folds too small, a history too short) counts as: warn (default: exit 0, exit 1 under --fail-on warning), fail (exit 1) or pass.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="A TOML file of settings (same keys as [tool.auditor]).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary table; errors still print.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def run_command(**kw: Any) -> None:
    """Audit MODEL on the data given with --data."""
    with _terminate_as_interrupt():
        code = _run(kw, demo=False)
    click.get_current_context().exit(code)


def _from_settings(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is ParameterSource.DEFAULT_MAP


def _listed(ctx: click.Context, kw: Mapping[str, Any], settings: Mapping[str, Any], name: str,
            key: str | None = None) -> list[str] | None:
    """A list option: as the setting wrote it when it came from the settings (a TOML array
    keeps names with commas whole), else split at commas."""
    from auditor.run.config import split_list

    if _from_settings(ctx, name):
        return split_list(settings.get(key or name))
    value = kw.get(name)
    if isinstance(value, (tuple, list)):  # --sensitive repeats, and each may hold commas
        return [part for item in value for part in split_list(item) or []] or None
    return split_list(value)


def _run(kw: dict[str, Any], *, demo: bool) -> int:
    """Parse -> settings -> :func:`auditor.api.run` -> print and write -> the exit code."""
    from auditor import api
    from auditor.contain import server
    from auditor.loading.inputs import checked_budget, model_args
    from auditor.loading.metadata import parse_input_shape
    from auditor.report.numbers import clean_text, folder_name
    from auditor.report.write import canonical
    from auditor.run.config import audit_timeout, engine_of, inference_timeout, parse_overrides, refuse_untrusted
    from auditor.run.registry import discover_plugins
    from auditor.run.runconfig import RichProgress, RunConfig

    server.start()  # (started already by RunCommand; the demo starts it here)
    ctx = click.get_current_context()
    settings: Mapping[str, Any] = {} if demo else ctx.meta.get("auditor.settings", {})
    discovery = ctx.meta.get("auditor.discovery") or discover_plugins()
    allow_symlinks = bool(kw.get("allow_symlinks"))
    given = {name: value for name, value in kw.items()
             if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    refuse_untrusted(settings, given, Path.cwd(), trust=bool(kw.get("trust_config")))
    model = Path(kw["model"])
    api.check_input_files(model, {
        "The data file": _path(kw.get("data")),
        "The training data": _path(kw.get("train_data")),
        "The labels table": _path(kw.get("labels")),
        "The tokenizer file": _path(kw.get("tokenizer")),
        "The training history": _path(kw.get("history")),
        "The model card": _path(kw.get("card")),
    }, allow_symlinks=allow_symlinks)
    formats = _formats(_listed(ctx, kw, settings, "formats", "format"))
    cfg = RunConfig(
        model=model,
        data=kw["data"],
        target=kw.get("target"),
        features=_listed(ctx, kw, settings, "features"),
        sensitive=_listed(ctx, kw, settings, "sensitive"),
        history=_path(kw.get("history")),
        card=_path(kw.get("card")),
        train_data=_path(kw.get("train_data")),
        classes=_listed(ctx, kw, settings, "classes"),
        task=kw.get("task") or "auto",
        input_shape=parse_input_shape(kw.get("input_shape"), "--input-shape", "comma-separated integers like 1,28,28"),
        model_class=kw.get("model_class"),
        model_path=kw.get("model_path"),
        trainer=kw.get("trainer"),
        transform=kw.get("transform"),
        trust_model=bool(kw.get("trust_model")),
        device=kw.get("device") or "auto",
        batch_size=kw.get("batch_size"),
        memory_budget=checked_budget(kw.get("memory_budget")),
        engine=engine_of(kw.get("engine")),
        labels=_path(kw.get("labels")),
        image_size=kw.get("image_size") or None,
        image_mode=kw.get("image_mode") or None,
        allow_symlinks=allow_symlinks,
        skip_unreadable=bool(kw.get("skip_unreadable")),
        text=kw.get("text") or None,
        tokenizer=_path(kw.get("tokenizer")),
        max_tokens=kw.get("max_tokens"),
        ray_address=kw.get("ray_address") or None,
        seed=int(kw["seed"]) if kw.get("seed") is not None else 0,
        audit_timeout=audit_timeout(kw.get("audit_timeout")),
        audits=_listed(ctx, kw, settings, "audits"),
        skip=_listed(ctx, kw, settings, "skip") or [],
        settings=dict(settings),
        overrides=parse_overrides(kw.get("overrides") or ()),
        command=kw.get("command") or shlex.join(["audit", *sys.argv[1:]]),
        model_args=model_args(kw.get("model_args")),  # checked here, before the run starts
    )
    api.prune_trainer(cfg, discovery)
    out = Path(kw.get("out") or Path("reports") / folder_name(model.stem))  # never "..", "." or empty
    policy, baseline, baseline_path = api.gates_of(_path(kw.get("policy")), _path(kw.get("baseline")), settings,
                                                   cfg.audits or discovery.names, allow_symlinks=allow_symlinks)
    fail_on = kw.get("fail_on") or "error"
    not_assessed = kw.get("not_assessed") or "warn"
    quiet = bool(kw.get("quiet"))
    debug = bool(kw.get("debug"))
    if "html" in formats:  # the page's template compiles while the run goes
        from auditor.report import html

        threading.Thread(target=html.prepare, name="auditor-report-template", daemon=True).start()
    try:
        with RichProgress(enabled=not quiet and sys.stderr.isatty()) as progress:
            outcome = api.run(cfg, discovery, policy=policy, baseline=baseline, baseline_path=baseline_path,
                              fail_on=fail_on, not_assessed=not_assessed,
                              keep_gates=bool(kw.get("fail_on") or kw.get("not_assessed")), progress=progress,
                              inference_timeout=inference_timeout(kw.get("inference_timeout")))
    except BaseException as exc:  # with --debug, the child's traceback and log (what the model printed)
        if debug:
            for attribute, title in (("child_traceback", "traceback in the run's process"),
                                     ("child_log", "the run's log")):
                text = getattr(exc, attribute, "")
                if text:
                    click.echo(f"--- {title} ---\n{clean_text(text)}", err=True)
        raise
    with _interrupts_deferred():
        written = outcome.report.save(out, formats)
        ctx.meta["auditor.written"] = f"{out}{os.sep}"
    document = canonical(outcome.report)
    from auditor.ci.github import publish

    for line in publish(document, written=[str(p) for p in written]):
        click.echo(line)
    if debug:
        if outcome.log:
            click.echo(f"--- the run's log ---\n{clean_text(outcome.log)}", err=True)
        for name, text in outcome.tracebacks.items():
            click.echo(f"--- traceback of audit {name} ---\n{text}", err=True)
    if not quiet:
        from auditor.report.terminal import render_terminal

        console = _console()
        render_terminal(document, console)
        console.print(f"Reports written to {out}{os.sep}: " + ", ".join(p.name for p in written), markup=False)
    return outcome.exit_code


@cli.command("demo")
@click.option("--images", is_flag=True, help="Audit the image demo instead: a small CNN on 8x8 handwritten digits, read from PNG files in class folders (reports/demo-images/ by default).")
@click.option("--out", type=click.Path(path_type=Path), help="Report folder (default reports/demo, or reports/demo-images with --images).")
@click.option("--format", "formats", help="Comma-separated: html,md,json,junit,pdf (default html,md,json); report.json is always written.")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary table.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def demo_command(**kw: Any) -> None:
    """Audit the bundled example: an MLP trained on UCI Adult (census income); with
    --images, a small CNN on handwritten digits read from PNG files in class folders.

    The model, its test data and its training history ship inside the package; see
    auditor/demo/README.md for how they were made and the dataset's licence (CC BY 4.0).
    Fairness is audited across sex and race, which the model declares as sensitive, and
    overfitting from the recorded history and the training data. The fairness verdict is
    FAIL, and that is the point of the demo: the exit code is 0 unless an audit broke (3).
    """
    from auditor.loading.bundled import demo_files, image_demo_files

    images = bool(kw.pop("images", False))
    demo = image_demo_files() if images else demo_files()
    kw.update(
        model=demo.model,
        data=demo.data,
        history=demo.history,
        train_data=demo.train_data,
        command="audit demo --images" if images else "audit demo",
        out=kw.get("out") or Path("reports/demo-images" if images else "reports/demo"),
    )
    with _terminate_as_interrupt():
        code = _run(kw, demo=True)
    # A failing verdict is what the demo is there to show (its model is unfair by sex and
    # race); only a broken audit makes the demo itself fail.
    click.get_current_context().exit(EXIT_OK if code == EXIT_FAILED else code)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins_command(as_json: bool) -> None:
    """List installed audits, what they need and their options.

    A plugin that fails to load is listed too, with the reason ("error"; null for those that
    load), and the command then exits 3.
    """
    import json

    from auditor.run.registry import discover_plugins

    discovery = discover_plugins()
    listing = [
        {
            "name": name,
            "title": audit.title,
            "description": audit.description,
            "needs": list(audit.needs),
            "module": type(audit).__module__,
            "options": [
                {"name": o.name, "type": o.type, "default": o.default, "help": o.help}
                for o in audit.options
            ],
            "error": None,
        }
        for name, audit in discovery.audits.items()
    ] + [
        {
            "name": name,
            "title": None,
            "description": None,
            "needs": [],
            "module": plugin.module,
            "options": [],
            "error": f"The plugin failed to load: {plugin.reason}",
        }
        for name, plugin in discovery.broken.items()
    ]
    listing.sort(key=lambda item: item["name"])
    if as_json:
        click.echo(json.dumps(listing, indent=2, sort_keys=True))
    else:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="Installed audits", show_lines=True)
        for column in ("Audit", "Description", "Needs", "Options (-o AUDIT.OPTION=VALUE)"):
            table.add_column(column)
        for item in listing:
            if item["error"]:
                table.add_row(
                    escape(item["name"]),
                    "[bold magenta]BROKEN[/] " + escape(f"{item['error']} (module {item['module']})"),
                    "-",
                    "-",
                )
                continue
            options = "\n".join(
                f"{o['name']} ({o['type']}, default {o['default']!r}): {o['help']}" for o in item["options"]
            )
            table.add_row(
                escape(item["name"]),
                escape(f"{item['title']}: {item['description']}"),
                escape(", ".join(item["needs"]) or "-"),
                escape(options or "-"),
            )
        _console().print(table)
    if discovery.broken:
        names = ", ".join(discovery.broken)
        count = len(discovery.broken)
        click.echo(
            f"Error: {count} plugin{'s' if count > 1 else ''} failed to load: {names}. "
            "Fix or uninstall them; a run reports them as errors (exit 3).",
            err=True,
        )
        click.get_current_context().exit(EXIT_INTERNAL)


@cli.command("compare")
@click.argument("before", type=click.Path(path_type=Path))
@click.argument("after", type=click.Path(path_type=Path))
@click.option("--changed-only", is_flag=True, help="Show only rows that moved (better, worse, changed, added, removed).")
@click.option("--ignore", "ignore", multiple=True, metavar="PATTERN",
              help="Leave out rows whose audit, metric key, label or a part of the key (split at . and *) "
              "matches this shell-style pattern; repeatable. E.g. --ignore sex (a sensitive column's rows), "
              "--ignore carbon, --ignore 'gap_*'.")
@click.option("--markdown", is_flag=True, help="Print Markdown (for a PR comment) instead of tables.")
def compare_command(before: Path, after: Path, changed_only: bool, ignore: tuple[str, ...], markdown: bool) -> None:
    """Show how every metric changed between two report.json files (e.g. main and a branch).

    The audits' statuses and metrics come first; the measured figures (energy and time), which
    differ on every run whatever changed, come last under their own heading.
    """
    from auditor.ci.compare import compare_markdown, compare_reports, compare_table, report_label, select
    from auditor.report import load_report

    a, b = load_report(before), load_report(after)
    selection = select(compare_reports(a, b), changed_only=changed_only, ignore=ignore)
    label_a, label_b = report_label(before, a), report_label(after, b)
    if markdown:
        click.echo(compare_markdown(selection, label_a, label_b))
    else:
        _console().print(compare_table(selection, label_a, label_b))


@cli.command("render")
@click.argument("report_json", type=click.Path(path_type=Path))
@click.option("--format", "formats", default="html,md", show_default=True, help="Comma-separated formats to write: html,md,json,junit,pdf.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder to write to. Default: the JSON file's folder.")
def render_command(report_json: Path, formats: str, out: Path | None) -> None:
    """Re-render reports from a report.json alone (no model or data needed)."""
    from auditor.report import write_reports
    from auditor.report.json_report import load_report

    report = load_report(report_json)
    written = write_reports(report, out or report_json.parent, _formats(formats, with_json=False))
    click.echo("Wrote " + ", ".join(str(p) for p in written))


CARD_INIT_EXAMPLES = """\b
Examples:
  audit card init
      write model-card.toml, a commented template, in this folder
  audit card init docs/model-card.yaml
      the same template in YAML (the format follows the extension, or --format)
  audit card init --force
      replace an existing model-card.toml with an empty template
  audit model.pt --data test.csv --card model-card.toml
      then audit: the report shows the card, and lists every REQUIRED field
      left empty as a gap (nothing is filled in for you)
"""


@cli.group("card")
def card_group() -> None:
    """Model cards: what no file can tell the ethics board.

    Who owns the model, what it is (not) for, the consent or legal basis for its data, its
    ethical risks and its review: write a template with `audit card init`, fill it in, and
    pass it to the audit with --card.
    """


@card_group.command("init", epilog=CARD_INIT_EXAMPLES)
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["toml", "yaml"]), help="Template format. Default: PATH's extension (.toml, .yaml, .yml), else toml.")
@click.option("--force", is_flag=True, help="Overwrite PATH when it exists.")
def card_init_command(path: Path | None, fmt: str | None, force: bool) -> None:
    """Write a commented model card template to PATH.

    PATH defaults to model-card.toml (model-card.yaml with --format yaml). Every field is
    explained in a comment, with an example; the required ones are marked. Fill it in and
    pass it to the audit with --card.
    """
    from auditor.compliance.card import write_template

    written = write_template(path, fmt, force=force)
    click.echo(f"Wrote a model card template to {written}")
    click.echo(f"Next: fill it in, then run: audit model.pt --data test.csv --card {shlex.quote(str(written))}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``audit`` console script."""
    cli.main(args=argv, prog_name="audit")
