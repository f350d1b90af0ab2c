"""Settings from ``[tool.auditor]`` in pyproject.toml, ``--config FILE`` and ``-o``.

Precedence, lowest first: built-in defaults, ``[tool.auditor]`` in ./pyproject.toml,
``--config FILE`` (top-level keys, or its own ``[tool.auditor]`` table), command-line
options. An audit's options live in a sub-table named after it::

    [tool.auditor]
    target = "income"
    format = ["html", "json"]

    [tool.auditor.metrics]
    n_resamples = 2000

``-o metrics.n_resamples=2000`` overrides any of them. ``audit_timeout = 600`` stops any
audit still running after 600 seconds and reports it as an ``error`` (``--audit-timeout``;
default none, see :mod:`auditor.run.runner` for where it can be enforced). ``--trust-model`` is deliberately
not settable from a file: a repository must not be able to trust a model on the user's behalf.

For the same reason a config file cannot act on the user's behalf (:func:`refuse_untrusted`):
the settings that import and run code (:data:`CODE_SETTINGS`: ``model_class``,
``model_args``, ``model_path``, ``trainer``, ``transform``) are refused from a file unless the command line gives the
option itself or ``--trust-config`` is passed, and the files whose contents go into the
report (:data:`FILE_SETTINGS`: ``card``, ``history``, ``train_data``) must lie inside the
current folder. Config files are read within a bound (16 MiB), and a NaN or infinite
option value is refused wherever it comes from (:meth:`auditor.contract.plugin.Option.convert`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Option
from auditor.loading.inputs import check_depth, check_input, read_bytes, small_limit, too_deep

#: Keys accepted in [tool.auditor] and --config files, with their expected Python type.
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "target": str,
    "features": (list, str),
    "sensitive": (list, str),
    "history": str,
    "train_data": str,
    "labels": str,
    "fail_on": str,
    "not_assessed": str,
    "classes": (list, str),
    "task": str,
    "input_shape": (list, str),
    "model_class": str,
    "model_args": str,
    "model_path": str,
    "trainer": str,
    "transform": str,
    "card": str,
    "device": str,
    "batch_size": int,
    "memory_budget": (str, int),
    "engine": str,
    "ray_address": str,
    "image_size": str,
    "image_mode": str,
    "text": str,
    "tokenizer": str,
    "max_tokens": int,
    "seed": int,
    "audit_timeout": (int, float),
    "inference_timeout": (int, float),
    "out": str,
    "format": (list, str),
    "audits": (list, str),
    "skip": (list, str),
}


#: Sub-tables of [tool.auditor] that hold CI gates (see auditor.ci.gates), not audit options.
POLICY_TABLES = ("gates", "regression")


#: Settings that import and run code, with the option that gives them on the command line.
CODE_SETTINGS = {
    "model_class": "--model-class", "model_args": "--model-args", "trainer": "--trainer", "model_path": "--model-path",
    "transform": "--transform",
}
#: Settings that send the data and the model to other machines, with their options.
SEND_SETTINGS = {"ray_address": "--ray-address"}
#: Settings naming files whose contents go into the report, with their options.
FILE_SETTINGS = {"card": "--card", "history": "--history", "train_data": "--train-data", "labels": "--labels",
                 "tokenizer": "--tokenizer"}


class Settings(dict[str, Any]):
    """The merged settings; ``origin`` names the file each top-level key came from."""

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[str, str] = {}


def read_toml(path: Path) -> dict[str, Any]:
    what = f"The config file {path.name}"
    try:
        text = read_bytes(path, "The config file", limit=small_limit(), error=UsageError).decode("utf-8")
        return check_depth(tomllib.loads(text), what, UsageError)
    except FileNotFoundError:
        raise UsageError(f"The config file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise UsageError(f"The config file {str(path)!r} is a folder, not a file.") from None
    except OSError as exc:
        raise UsageError(f"The config file {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text (byte {exc.start + 1} is not).", hint="Save it as UTF-8.") from None
    except RecursionError:
        raise too_deep(what, error=UsageError) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} is not valid TOML: {exc}.") from None


def _section(data: Mapping[str, Any], path: Path, *, pyproject: bool) -> dict[str, Any]:
    tool = data.get("tool", {})
    if isinstance(tool, Mapping) and "auditor" in tool:
        section = tool["auditor"]
    elif pyproject:
        return {}
    else:
        section = data
    if not isinstance(section, Mapping):
        raise UsageError(f"[tool.auditor] in {path.name} must be a table.")
    return dict(section)


def load_settings(
    config_file: Path | None, cwd: Path, *, allow_symlinks: bool = False, pyproject: bool = True
) -> Settings:
    """Merged settings from ./pyproject.toml's [tool.auditor] (unless ``pyproject`` is False:
    :func:`auditor.audit` reads only the file it is given) and --config (each file checked
    with :func:`auditor.loading.inputs.check_input` first)."""
    merged = Settings()
    project = cwd / "pyproject.toml"
    files = [(project, True)] if pyproject and project.is_file() else []
    if config_file is not None:
        files.append((config_file, False))
    for path, is_pyproject in files:
        check_input(path, "The config file", allow_symlinks=allow_symlinks)
        section = _section(read_toml(path), path, pyproject=is_pyproject)
        for key, value in section.items():
            if isinstance(value, Mapping):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
                merged.origin[key] = "./pyproject.toml" if is_pyproject else path.name
    return merged


def refuse_untrusted(
    settings: Mapping[str, Any], command_line: Mapping[str, Any], cwd: Path, *, trust: bool = False
) -> None:
    """Raise :class:`UsageError` when a config file asks for what only the user may: a
    setting of :data:`CODE_SETTINGS` the command line does not give itself (it would import
    and run code from wherever the file says), or a file of :data:`FILE_SETTINGS` outside
    ``cwd`` (its contents would go into the report). ``trust``: ``--trust-config``."""
    if trust:
        return
    origin: Mapping[str, str] = getattr(settings, "origin", {})
    for key, option in CODE_SETTINGS.items():
        value = settings.get(key)
        if value in (None, "") or command_line.get(key) not in (None, ""):
            continue  # not set, or the command line's own value is the one used
        source = origin.get(key, "a config file")
        raise UsageError(
            f"{source} sets {key} = {str(value)!r}, which makes auditor import and run code; a config "
            "file may not ask for that on your behalf.",
            hint=f"Pass {option} {str(value)!r} yourself if you mean it, or --trust-config if you trust {source}.",
        )
    for key, option in SEND_SETTINGS.items():
        value = settings.get(key)
        if value in (None, "") or command_line.get(key) not in (None, ""):
            continue
        source = origin.get(key, "a config file")
        raise UsageError(
            f"{source} sets {key} = {str(value)!r}, which sends the data and the model to the machines there; "
            "a config file may not ask for that on your behalf.",
            hint=f"Pass {option} {str(value)!r} yourself if you mean it, or --trust-config if you trust {source}.",
        )
    home = Path(cwd).resolve()
    for key, option in FILE_SETTINGS.items():
        value = settings.get(key)
        if value in (None, "") or command_line.get(key) not in (None, ""):
            continue
        where = (Path(cwd) / str(value)).resolve()
        if where != home and home not in where.parents:
            source = origin.get(key, "a config file")
            raise UsageError(
                f"{source} sets {key} = {str(value)!r}, a file outside this folder; a config file may not "
                "put files from elsewhere into the report.",
                hint=f"Pass {option} {str(value)!r} yourself if you mean it, or --trust-config if you trust {source}.",
            )


def check_settings(settings: Mapping[str, Any], audit_names: Iterable[str]) -> None:
    audits = set(audit_names)
    for key, value in settings.items():
        if isinstance(value, Mapping):
            if key in POLICY_TABLES:
                continue
            if key not in audits:
                raise UsageError(
                    f"[tool.auditor.{key}] names no installed audit.",
                    hint=f"Installed audits: {', '.join(sorted(audits))}.",
                )
            continue
        if key == "trust_model":
            raise UsageError(
                "trust_model cannot be set in a config file: trusting a pickled model must be "
                "asked for on the command line.",
                hint="Pass --trust-model yourself if you trust the file.",
            )
        if key not in SETTINGS:
            raise UsageError(
                f"Unknown setting {key!r} in [tool.auditor].",
                hint=f"Known settings: {', '.join(sorted(SETTINGS))}, and one table per audit.",
            )
        if not isinstance(value, SETTINGS[key]):
            raise UsageError(f"The setting {key!r} has the wrong type: got {value!r}.")
        if key == "audit_timeout":
            audit_timeout(value)
        if key == "inference_timeout":
            inference_timeout(value)


def _seconds(key: str, value: Any, example: int) -> float | None:
    """A positive, finite number of seconds as a float (None stays None), or a UsageError
    naming the setting ``key`` and its command-line flag."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not seconds > 0 or seconds == float("inf"):
        flag = "--" + key.replace("_", "-")
        raise UsageError(
            f"{key} must be a positive number of seconds; got {value!r}.",
            hint=f"For example: {key} = {example} in [tool.auditor], or {flag} {example}.",
        )
    return seconds


def audit_timeout(value: Any) -> float | None:
    """``audit_timeout`` in seconds as a float (None: no timeout), or a UsageError."""
    return _seconds("audit_timeout", value, 600)


def inference_timeout(value: Any) -> float | None:
    """``inference_timeout`` in seconds as a float (None: the default), or a UsageError."""
    return _seconds("inference_timeout", value, 3600)


#: What ``--engine`` takes: this machine, or Ray Data actors.
ENGINES = ("stream", "ray")


def engine_of(value: Any) -> str:
    """``--engine`` (or ``engine``) checked: "stream" when not given."""
    if value in (None, ""):
        return "stream"
    if value not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}; got {value!r}.",
                         hint="stream reads on this machine; ray runs the pass in Ray Data actors.")
    return str(value)


def split_list(value: Any) -> list[str] | None:
    """'a,b' or ['a', 'b'] -> ['a', 'b']; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


def parse_overrides(pairs: Iterable[str]) -> dict[str, dict[str, str]]:
    """``-o audit.option=value`` pairs into {audit: {option: value}}."""
    result: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        audit, dot, option = key.strip().partition(".")
        if not sep or not dot or not audit or not option:
            raise UsageError(
                f"-o expects AUDIT.OPTION=VALUE; got {pair!r}.",
                hint="For example: -o metrics.n_resamples=2000.",
            )
        result.setdefault(audit, {})[option] = value
    return result


def audit_options(
    audit: Any, settings: Mapping[str, Any], overrides: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """The audit's options: declared defaults, then config tables, then -o, all converted."""
    declared: dict[str, Option] = {o.name: o for o in audit.options}
    values = {name: option.default for name, option in declared.items()}
    for source in (settings.get(audit.name, {}), overrides.get(audit.name, {})):
        for key, value in source.items():
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise UsageError(
                    f"The audit {audit.name!r} has no option {key!r}.",
                    hint=f"Its options: {known} (see 'audit plugins').",
                )
            values[key] = declared[key].convert(audit.name, value)
    return values
