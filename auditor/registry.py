"""Find installed audits through the ``auditor.audits`` entry-point group and validate them.

Built-in audits are registered through the same group as third-party ones (see
pyproject.toml); nothing here knows their names. ``AUDITOR_PLUGINS=metrics,my_audit``
loads only the named plugins, like datasette's ``DATASETTE_LOAD_PLUGINS``.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping, Sequence

from .errors import PluginError, UsageError
from .plugin import NAME_PATTERN, NEEDS, Option

GROUP = "auditor.audits"
ENV_ONLY = "AUDITOR_PLUGINS"


def validate_audit(audit: Any, origin: str) -> None:
    """Raise PluginError naming the plugin and what is wrong with it."""
    def fail(problem: str) -> PluginError:
        return PluginError(
            f"The audit plugin {origin} {problem}.",
            hint="Fix or uninstall the plugin; see auditor.plugin for the contract.",
        )

    name = getattr(audit, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise fail(f"has name {name!r}; a name of lower-case letters, digits and '_' is required")
    for attr in ("title", "description"):
        if not isinstance(getattr(audit, attr, None), str) or not getattr(audit, attr):
            raise fail(f"has no {attr} (a non-empty string)")
    needs = getattr(audit, "needs", ())
    unknown = [n for n in needs if n not in NEEDS]
    if not isinstance(needs, (tuple, list)) or unknown:
        raise fail(f"declares unknown needs {unknown or needs!r}; known: {', '.join(NEEDS)}")
    options = getattr(audit, "options", ())
    if not isinstance(options, (tuple, list)) or not all(isinstance(o, Option) for o in options):
        raise fail("declares options that are not auditor.plugin.Option instances")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise fail("declares the same option twice")
    for option in options:
        option.convert(name, option.default)
    if not callable(getattr(audit, "run", None)):
        raise fail("has no run(ctx, options) method")


def _load(ep: EntryPoint) -> Any:
    origin = f"{ep.name!r} ({ep.value})"
    try:
        obj = ep.load()
        audit = obj() if isinstance(obj, type) else obj
    except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is reported
        raise PluginError(
            f"The audit plugin {origin} failed to load: {type(exc).__name__}: {exc}.",
            hint="Fix or uninstall the plugin.",
        ) from exc
    validate_audit(audit, origin)
    if audit.name != ep.name:
        raise PluginError(
            f"The audit plugin {origin} is registered as {ep.name!r} but calls itself {audit.name!r}.",
            hint="Make the entry-point name and the audit's name the same.",
        )
    return audit


def discover() -> dict[str, Any]:
    """Every installed audit, by name, in a stable order (entry-point name)."""
    only = {n.strip() for n in os.environ.get(ENV_ONLY, "").split(",") if n.strip()}
    found: dict[str, Any] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if only and ep.name not in only:
            continue
        if ep.name in found:
            continue
        found[ep.name] = _load(ep)
    return found


def select_audits(installed: Mapping[str, Any], wanted: Sequence[str] | None, skip: Sequence[str]) -> dict[str, Any]:
    """The audits to run, in installed order (``wanted``: all when empty, minus ``skip``)."""
    names = list(wanted) if wanted else list(installed)
    unknown = [n for n in [*names, *skip] if n not in installed]
    if unknown:
        raise UsageError(
            f"Unknown audit(s): {', '.join(unknown)}.",
            hint=f"Installed audits: {', '.join(installed) or 'none'} (see 'audit plugins').",
        )
    return {n: installed[n] for n in names if n not in skip}


def plugin_versions(audits: Mapping[str, Any]) -> dict[str, str]:
    """The distribution and version each audit comes from (``auditor 0.1.0``), for provenance."""
    found: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in audits and ep.name not in found:
            dist = getattr(ep, "dist", None)
            found[ep.name] = f"{dist.name} {dist.version}" if dist is not None else "unknown"
    return {name: found.get(name, "not installed (given directly)") for name in audits}
