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
default none, see :mod:`auditor.runner` for where it can be enforced). ``--trust-model`` is deliberately
not settable from a file: a repository must not be able to trust a model on the user's behalf.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import UsageError
from .plugin import Option

#: Keys accepted in [tool.auditor] and --config files, with their expected Python type.
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "target": str,
    "features": (list, str),
    "sensitive": (list, str),
    "history": str,
    "train_data": str,
    "fail_on": str,
    "classes": (list, str),
    "task": str,
    "input_shape": (list, str),
    "model_class": str,
    "model_path": str,
    "trainer": str,
    "card": str,
    "device": str,
    "batch_size": int,
    "seed": int,
    "audit_timeout": (int, float),
    "out": str,
    "format": (list, str),
    "audits": (list, str),
    "skip": (list, str),
}


#: Sub-tables of [tool.auditor] that hold CI gates (see auditor.gates), not audit options.
POLICY_TABLES = ("gates", "regression")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"The config file {str(path)!r} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"The config file {path.name} is not valid TOML: {exc}.") from None


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


def load_settings(config_file: Path | None, cwd: Path) -> dict[str, Any]:
    """Merged settings from ./pyproject.toml's [tool.auditor] and --config."""
    merged: dict[str, Any] = {}
    pyproject = cwd / "pyproject.toml"
    files = [(pyproject, True)] if pyproject.is_file() else []
    if config_file is not None:
        files.append((config_file, False))
    for path, is_pyproject in files:
        section = _section(read_toml(path), path, pyproject=is_pyproject)
        for key, value in section.items():
            if isinstance(value, Mapping):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged


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


def audit_timeout(value: Any) -> float | None:
    """``audit_timeout`` in seconds as a float (None: no timeout), or a UsageError."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not seconds > 0 or seconds == float("inf"):
        raise UsageError(
            f"audit_timeout must be a positive number of seconds; got {value!r}.",
            hint="For example: audit_timeout = 600 in [tool.auditor], or --audit-timeout 600.",
        )
    return seconds


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
