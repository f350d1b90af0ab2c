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
``options``
    a tuple of :class:`Option`: each reaches the audit through config files and ``-o``,
    converted to its type and validated before any audit runs (a NaN or infinite number is
    refused: NaN would pass every range check). An option of type
    ``column`` names a data column (empty: none): the run reads that column from
    ``--data`` (and ``--train-data``) with the rest, leaves it out of the default features,
    and the audit finds its values in ``ctx.data.named[name]``.
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

An audit that declares the need ``energy`` reports on the run itself rather than on the
model: the run is then measured with codecarbon from its start (:mod:`auditor.run.energy`), the
audit runs after all the others with the finished measurement in ``ctx.energy``, and its
result goes to report.json's ``measurements`` section, apart from the ``audits`` whose
figures are identical on every run. Options it declares named ``tracking_mode``
(``machine``/``process``), ``cpu_power`` and ``ram_power`` (watts; 0 = detect) set up the
meter.
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


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "int": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else int(str(v), 10),
    "float": lambda v: float(v),
    "bool": _to_bool,
    "str": lambda v: str(v),
    "column": lambda v: str(v),
}


@dataclass(frozen=True)
class Option:
    """A declared option of an audit."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

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


class Audit(ABC):
    """Convenience base class; an audit need not inherit from it, only follow the contract.

    A subclass that does not define ``run`` cannot be instantiated.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    uses: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()

    @abstractmethod
    def run(self, ctx: "AuditContext", options: Mapping[str, Any]) -> "AuditResult":
        """Compute and return this audit's result from the context (never call the model)."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {o.name: o.default for o in cls.options}
