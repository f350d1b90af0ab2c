"""Find installed audits through the ``auditor.audits`` entry-point group and validate them.

Built-in audits are registered through the same group as third-party ones (see
pyproject.toml); nothing here knows their names. ``AUDITOR_PLUGINS=metrics,my_audit``
loads only the named plugins, like datasette's ``DATASETTE_LOAD_PLUGINS``; a name there that
no installed plugin has is a usage error (exit 2), never a run of fewer audits, or none.

A plugin that fails to load (its module raises on import, its class raises when created,
it breaks the contract, or it calls itself by another name than its entry point) does not
stop anything: :func:`discover_plugins` sets it aside as a :class:`BrokenPlugin` with the
reason, under its entry-point name. A run then reports it as an ``error`` result ("The plugin
failed to load: ...", exit 3) unless ``--audits`` leaves it out or ``--skip`` names it, and
``audit plugins`` lists it with the reason. Naming a broken plugin in ``--audits`` is not a
usage error: it is the same ``error`` result, so the run says what is wrong with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from auditor.contract.errors import PluginError, UsageError
from auditor.contract.plugin import NAME_PATTERN, NEEDS, Option

if TYPE_CHECKING:
    from auditor.contract.result import AuditResult

GROUP = "auditor.audits"
ENV_ONLY = "AUDITOR_PLUGINS"


def validate_audit(audit: Any, origin: str) -> None:
    """Raise PluginError naming the plugin and what is wrong with it."""
    def fail(problem: str) -> PluginError:
        return PluginError(
            f"The audit plugin {origin} {problem}.",
            hint="Fix or uninstall the plugin; see auditor.contract.plugin for the contract.",
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
        raise fail("declares options that are not auditor.contract.plugin.Option instances")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise fail("declares the same option twice")
    for option in options:
        problems = option.problems()
        if problems:
            raise fail(f"declares an unsound option {option.name!r}: " + "; ".join(problems))
    if not callable(getattr(audit, "run", None)):
        raise fail("has no run(ctx, options) method")
    if getattr(audit, "meter_settings", None) is not None and not callable(audit.meter_settings):
        raise fail("has a meter_settings that is not callable (the energy meter hook: options -> MeterSettings)")


def _load(ep: EntryPoint) -> Any:
    origin = f"{ep.name!r} ({ep.value})"
    try:
        obj = ep.load()
        audit = obj() if isinstance(obj, type) else obj
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of a plugin's import is reported
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


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that could not be loaded, and why (one line)."""

    name: str
    value: str
    reason: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()


@dataclass
class Discovery:
    """What :func:`discover_plugins` found: the audits that work and the plugins that don't."""

    audits: dict[str, Any] = field(default_factory=dict)
    broken: dict[str, BrokenPlugin] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Every installed plugin's name, working or not."""
        return [*self.audits, *self.broken]


def _broken(ep: EntryPoint, exc: PluginError) -> BrokenPlugin:
    """The reason, without the plugin's name (the report shows it next to the name)."""
    reason = exc.message.removeprefix(f"The audit plugin {ep.name!r} ({ep.value}) ").rstrip(".")
    if reason.startswith("failed to load: "):
        reason = reason.removeprefix("failed to load: ")
    else:
        reason = f"it breaks the plugin contract: it {reason}"
    return BrokenPlugin(name=ep.name, value=ep.value, reason=" ".join(reason.split()))


def discover_plugins() -> Discovery:
    """Every installed plugin by entry-point name, in a stable order: those that load and
    follow the contract in ``audits``, the others in ``broken`` with the reason."""
    only = {n.strip() for n in os.environ.get(ENV_ONLY, "").split(",") if n.strip()}
    found = Discovery()
    points = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    missing = sorted(only - {ep.name for ep in points})
    if missing:
        from auditor.report.numbers import one_line

        installed = ", ".join(dict.fromkeys(ep.name for ep in points)) or "none"
        raise UsageError(
            f"{ENV_ONLY} names plugin(s) that are not installed: {one_line(', '.join(missing))} "
            f"(installed: {installed}).",
            hint=f"Name installed plugins only, or unset {ENV_ONLY} to load them all.",
        )
    for ep in points:
        if only and ep.name not in only:
            continue
        if ep.name in found.audits or ep.name in found.broken:
            continue
        try:
            found.audits[ep.name] = _load(ep)
        except PluginError as exc:
            found.broken[ep.name] = _broken(ep, exc)
    return found


def discover() -> dict[str, Any]:
    """Every installed audit that loads, by name, in a stable order (entry-point name).

    Broken plugins are left out; :func:`discover_plugins` names them with the reason.
    """
    return discover_plugins().audits


def select_audits(
    installed: Mapping[str, Any],
    wanted: Sequence[str] | None,
    skip: Sequence[str],
    broken: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The audits to run, in installed order (``wanted``: all when empty, minus ``skip``).

    Names of ``broken`` plugins are known names (no usage error) but are never selected:
    :func:`selected_broken` says which of them the run reports.
    """
    broken = broken or {}
    names = list(wanted) if wanted else list(installed)
    unknown = [n for n in [*names, *skip] if n not in installed and n not in broken]
    if unknown:
        raise UsageError(
            f"Unknown audit(s): {', '.join(unknown)}.",
            hint=f"Installed audits: {', '.join([*installed, *broken]) or 'none'} (see 'audit plugins').",
        )
    return {n: installed[n] for n in names if n not in skip and n in installed}


def selected_broken(
    broken: Mapping[str, BrokenPlugin], wanted: Sequence[str] | None, skip: Sequence[str]
) -> dict[str, BrokenPlugin]:
    """The broken plugins a run reports as errors: all of them, or those ``--audits`` names,
    less those ``--skip`` names."""
    names = list(wanted) if wanted else list(broken)
    return {n: broken[n] for n in dict.fromkeys(names) if n in broken and n not in skip}


def plugin_versions(audits: Mapping[str, Any]) -> dict[str, str]:
    """The distribution and version each audit comes from (``auditor 0.1.0``), for provenance."""
    found: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in audits and ep.name not in found:
            dist = getattr(ep, "dist", None)
            found[ep.name] = f"{dist.name} {dist.version}" if dist is not None else "unknown"
    return {name: found.get(name, "not installed (given directly)") for name in audits}


def failed_to_load(plugin: BrokenPlugin) -> AuditResult:
    """The ``error`` result a run reports for a plugin that failed to load."""
    from auditor.contract.result import AuditResult, Finding

    message = f"The plugin failed to load: {plugin.reason}"
    return AuditResult(
        audit=plugin.name,
        title=plugin.name,
        status="error",
        summary=message,
        findings=[Finding("error", "plugin-load-error", message)],
        notes=[f"Entry point {plugin.name} = {plugin.value} (group {GROUP}). Fix or uninstall the plugin."],
    )
