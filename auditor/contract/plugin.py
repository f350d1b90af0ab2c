"""The audit contract: what a plugin (built-in or third-party) provides.

An audit is a class registered under the entry-point group ``auditor.audits``::

    [project.entry-points."auditor.audits"]
    my_audit = "my_package.my_module:MyAudit"

The class is instantiated with no arguments and must have:

``name``
    a short identifier (lower-case letters, digits and ``_``), used in ``--audits``,
    ``-o name.option=value``, ``[tool.auditor.name]`` and report.json paths.
``title``, ``description``
    a display title and a one-line description (``audit plugins`` lists them).
``needs``
    what the audit requires from the context, from :data:`NEEDS`. When something is
    missing the runner marks the audit *skipped* with the reason; it is never called.
``uses`` (optional)
    what the audit reads from the context when the user gives it, without needing it, from
    :data:`USES`: the cross-validation audit declares ``("trainer",)`` and retrains with
    ``--trainer`` when one is given. ``--trainer`` is imported only when an audit the run
    selects declares it.
``reads_tallies`` (optional, default False)
    True when the audit computes its whole-data figures from ``ctx.tallies`` (see
    :class:`auditor.contract.context.Tallies`) when a run keeps mergeable state instead of
    every row's predictions. An audit that leaves it False then runs on the context's
    seeded sample of rows, and the runner adds to its result that it did.
``options``
    a tuple of :class:`Option`: each reaches the audit through config files and ``-o``,
    converted to its type and validated before any audit runs (see *Option types* below).
    ``run`` receives them converted, by name, defaults filled in.
``check(options)`` (optional)
    called with the converted options before anything is loaded; raises
    :class:`auditor.contract.errors.UsageError` for values their type alone cannot rule out (an
    unknown country code), so a bad option exits 2 before any work, like a bad path.
``run(ctx, options) -> AuditResult``
    computes and returns plain data. It reads predictions from the context and never
    re-runs inference the context holds. An audit that must evaluate the model on inputs
    it changes (permuted features, integration paths) declares the need ``model`` and goes
    through ``ctx.infer`` or :mod:`auditor_plugins.explain.attribution`, on a sample. Raising is allowed:
    the runner turns it into an ``error`` result and the other audits still run.

``meter_settings(options) -> MeterSettings`` (optional; audits that need ``energy``)
    how the energy meter is set up, from the audit's converted options: see *Energy* below.

An audit that declares the need ``energy`` reports on the run itself rather than on the
model: the run is then measured with codecarbon from its start (:mod:`auditor.run.energy`), the
audit runs after all the others with the finished measurement in ``ctx.energy``, and its
result goes to report.json's ``measurements`` section, apart from the ``audits`` whose
figures are identical on every run. Its metrics vary between identical runs: declare them
``Metric(..., noisy=True)`` (see :class:`auditor.contract.result.Metric`).

Energy: the meter hook
----------------------

The meter is set up once, before anything loads, by the first selected audit that needs
``energy`` and defines ``meter_settings``: it is called with that audit's converted options
and returns a :class:`MeterSettings` (``tracking_mode`` ``machine`` or ``process``;
``cpu_power``/``ram_power`` in watts replacing codecarbon's detection, None to detect).
When no such audit defines it, the meter uses ``MeterSettings()``. Core never reads an
audit's options itself. The hook may raise :class:`~auditor.contract.errors.UsageError` for
values it cannot use (exit 2); returning anything but a ``MeterSettings``, or raising
anything else, is a :class:`~auditor.contract.errors.PluginError` naming the audit::

    def meter_settings(self, options):
        return MeterSettings(tracking_mode=options["mode"], cpu_power=options["watts"] or None)

Option types
------------

``Option(name, type, default, help, choices=None, min=None, max=None)``. ``name`` is
lower-case letters, digits and ``_`` (it is written ``-o audit.name=value`` and
``[tool.auditor.audit] name = value``). ``type`` is one of :data:`OPTION_TYPES`:

``"int"``
    an integer: a TOML integer, or text of decimal digits with an optional sign (``30``,
    ``-2``). ``3.0``, ``1e3``, ``true`` are refused.
``"float"``
    a finite number: a TOML integer or float, or text Python's ``float`` reads (``0.5``,
    ``1e-3``, ``2``). NaN and infinity are refused (NaN would pass every range check);
    ``true``/``false`` are refused.
``"bool"``
    a TOML boolean, or (case-insensitive) ``true``/``false``, ``yes``/``no``,
    ``on``/``off``, ``1``/``0``.
``"str"``
    any text (a TOML number is taken as its text).
``"column"``
    the name of a data column (empty: none). The run reads that column from ``--data``
    (and ``--train-data``) with the rest, leaves it out of the default features, and the
    audit finds its values in ``ctx.data.named[name]``.

``min`` and ``max`` are inclusive bounds (``min=0.5`` accepts 0.5) on ``int`` and ``float``
options only. ``choices`` is a non-empty tuple of values of the option's type (any type);
a value must equal one of them after conversion. A value that fails is refused before any
work with a one-line usage error, exit 2, e.g.::

    The option fairness.min_group_size must be int; got '3.5'.
    The option carbon.pue must be >= 1.0; got 0.5.
    The option carbon.tracking_mode must be one of machine, process; got 'galaxy'.

The declaration itself is checked when the plugin registers: an unknown type, ``min`` or
``max`` on a ``bool``, ``str`` or ``column`` option, ``min`` above ``max``, empty choices,
a choice or a default that is not of the option's type, and a default outside its own
bounds or choices make the plugin broken (a :class:`~auditor.contract.errors.PluginError`
naming it; ``audit plugins`` shows why).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from auditor.contract.errors import UsageError

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext
    from auditor.contract.result import AuditResult

#: What an audit may declare in ``needs``, with the reason shown when it is missing.
NEEDS: dict[str, str] = {
    "target": "needs a target column (--target)",
    "classification": "needs a classification model",
    "regression": "needs a regression model",
    "sensitive": "needs sensitive columns (--sensitive)",
    "history": "needs a training history (--history)",
    "train_data": "needs training data (--train-data)",
    "model": "needs a model it can run on new inputs (ctx.infer)",
    "energy": "needs the run's energy measurement (ctx.energy)",
    "features": "reads the feature rows (ctx.data.X); over data whose features exceed the memory budget "
                "it runs on the seeded sample of rows the run kept, and says so",
}

#: What an audit may declare in ``uses``: optional parts of the context it reads when given.
USES: dict[str, str] = {
    "trainer": "retrains the model with the user's --trainer when one is given",
}



def used(audits: Mapping[str, Any], part: str) -> bool:
    """Whether one of ``audits`` declares ``part`` (a key of :data:`USES`) in its ``uses``."""
    return any(part in tuple(getattr(audit, "uses", ()) or ()) for audit in audits.values())


NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an int")
    return value if isinstance(value, int) else int(str(value), 10)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a float")
    return float(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": lambda v: str(v),
    "column": lambda v: str(v),
}

#: The option types an :class:`Option` may declare (see the module docstring for what each
#: accepts); ``min``/``max`` apply to :data:`NUMERIC_TYPES` only.
OPTION_TYPES: tuple[str, ...] = tuple(_CONVERTERS)
NUMERIC_TYPES: tuple[str, ...] = ("int", "float")


@dataclass(frozen=True)
class Option:
    """A declared option of an audit: see *Option types* in the module docstring.

    ``min``/``max``: inclusive bounds, ``int`` and ``float`` options only. ``choices``: the
    values allowed (after conversion), any type.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

    def problems(self) -> list[str]:
        """What is wrong with this declaration, as phrases ("min 10 above max 1"); empty when
        it is sound. The registry refuses a plugin with any, naming the plugin and the option
        (:func:`auditor.run.registry.validate_audit`)."""
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            return ["a name that is not lower-case letters, digits and '_'"]
        if self.type not in _CONVERTERS:
            return [f"unknown type {self.type!r} (known: {', '.join(OPTION_TYPES)})"]
        found: list[str] = []
        if not isinstance(self.help, str) or not self.help.strip():
            found.append("no help (a non-empty string)")
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if self.type not in NUMERIC_TYPES:
                found.append(f"{bound} on a {self.type} option (bounds apply to int and float options only)")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                found.append(f"{bound}={value!r} (a finite number is required)")
        if not found and self.min is not None and self.max is not None and self.min > self.max:
            found.append(f"min {self.min} above max {self.max}")
        if self.choices is not None:
            if not isinstance(self.choices, (tuple, list)) or not self.choices:
                found.append(f"choices {self.choices!r} (a non-empty tuple is required)")
            else:
                for choice in self.choices:
                    try:
                        same = _CONVERTERS[self.type](choice) == choice
                    except (ValueError, TypeError):
                        same = False
                    if not same:
                        found.append(f"choice {choice!r}, which is not of its type {self.type}")
        if found:
            return found
        try:
            self.convert("<audit>", self.default)
        except UsageError as exc:
            refusal = exc.message.removeprefix(f"The option <audit>.{self.name} ").rstrip(".")
            found.append(f"default {self.default!r}, which it refuses: {refusal}")
        return found

    def convert(self, audit: str, value: Any) -> Any:
        """Convert a value from the command line or a config file, or raise UsageError."""
        try:
            converted = _CONVERTERS[self.type](value)
        except (ValueError, TypeError):
            raise UsageError(
                f"The option {audit}.{self.name} must be {self.type}; got {value!r}.",
                hint=f"Fix the value, e.g. -o {audit}.{self.name}={self.default!r}.",
            ) from None
        if isinstance(converted, float) and not math.isfinite(converted):
            # NaN compares false with every bound (a range check would let it through and
            # turn a failing comparison into a pass); infinity is no setting either.
            raise UsageError(
                f"The option {audit}.{self.name} must be a finite number; got {value!r}.",
                hint=f"Fix the value, e.g. -o {audit}.{self.name}={self.default!r}.",
            )
        if self.choices is not None and converted not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise UsageError(
                f"The option {audit}.{self.name} must be one of {choices}; got {value!r}."
            )
        if self.min is not None and converted < self.min:
            raise UsageError(f"The option {audit}.{self.name} must be >= {self.min}; got {value!r}.")
        if self.max is not None and converted > self.max:
            raise UsageError(f"The option {audit}.{self.name} must be <= {self.max}; got {value!r}.")
        return converted


@dataclass(frozen=True)
class MeterSettings:
    """How the energy meter's codecarbon tracker is set up (see *Energy* in the module
    docstring). ``cpu_power``/``ram_power`` (watts) replace codecarbon's detection when
    given; ``tracking_mode`` is ``machine`` (the whole machine) or ``process`` (this
    process's share of the CPU, and its memory)."""

    tracking_mode: str = "machine"
    cpu_power: float | None = None
    ram_power: float | None = None


class Audit(ABC):
    """Convenience base class; an audit need not inherit from it, only follow the contract.

    A subclass that does not define ``run`` cannot be instantiated.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    uses: ClassVar[tuple[str, ...]] = ()
    reads_tallies: ClassVar[bool] = False
    options: ClassVar[tuple[Option, ...]] = ()

    @abstractmethod
    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        """Compute and return this audit's result from the context (never call the model)."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {o.name: o.default for o in cls.options}
