"""The gate policy: what a team writes in ``audit.toml`` (or ``[tool.auditor.gates]`` and
``[tool.auditor.regression]`` in pyproject.toml), parsed and checked before any audit runs.

::

    [gates]
    "metrics.roc_auc" = ">= 0.90"
    "metrics.roc_auc.ci_low" = ">= 0.85"
    "fairness.sex.demographic_parity_ratio" = "between 0.8 and 1.25"
    "metrics.status" = "== pass"
    "fairness.status" = "in [pass, warn]"
    "fairness.findings" = "no error"

    [regression]
    baseline = "reports/main/report.json"
    "metrics.roc_auc" = { max_drop = 0.01 }
    "metrics.log_loss" = { max_rise = 0.02 }

Paths are ``<audit>.<metric key>`` (the metric's value; ``.value``, ``.ci_low`` and
``.ci_high`` name a field explicitly), ``<audit>.status`` and ``<audit>.findings``. Metric
keys may contain dots: they are resolved against the report's actual keys when the gates
are evaluated (see :mod:`auditor.ci.gates`), never by splitting. Unquoted TOML keys
(``metrics.roc_auc = ">= 0.9"``, which TOML reads as nested tables) are joined back with dots.

Rules (keywords case-insensitive, spaces free), by the kind of path:

- a metric: ``>= x``, ``> x``, ``<= x``, ``< x``, ``== x``, ``!= x`` (x a decimal number,
  exponent allowed) or ``between a and b`` (inclusive, a <= b);
- ``<audit>.status``: ``== S``, ``!= S`` or ``in [S, S, ...]`` with S one of pass, warn, fail,
  not assessed, skipped, error (optionally quoted; ``not_assessed`` and ``not-assessed`` are
  read as ``not assessed``), e.g. ``"fairness.status" = '!= "not assessed"'``;
- ``<audit>.findings``: ``no error`` (no finding of severity error) or ``no warning`` (none
  of severity warning or error); ``errors``/``warnings`` are accepted too.

A ``[regression]`` entry is ``{ max_drop = d }`` (higher is better) or ``{ max_rise = r }``
(lower is better) on a metric path, d and r non-negative numbers. With a baseline and no
``[regression]`` entries, the metrics that declare a ``tolerance`` are checked with it
(:func:`auditor.ci.gates.default_regressions`); a table replaces that choice entirely. ``baseline`` in the policy
file is relative to the file's folder; in ``[tool.auditor.regression]`` to the working folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Literal, Mapping

from auditor.contract.errors import UsageError
from auditor.contract.result import STATUSES
from auditor.run.config import read_toml

PathKind = Literal["metric", "status", "findings"]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARE = re.compile(rf"^\s*(>=|<=|==|!=|>|<)\s*({_NUM})\s*$")
_BETWEEN = re.compile(rf"^\s*between\s+({_NUM})\s+and\s+({_NUM})\s*$", re.IGNORECASE)
_STATUS_IS = re.compile(r"^\s*(==|!=)\s*['\"]?([A-Za-z][A-Za-z _-]*?)['\"]?\s*$")
_STATUS_IN = re.compile(r"^\s*in\s*\[(.*)\]\s*$", re.IGNORECASE)
_FINDINGS = re.compile(r"^\s*no\s+(error|warning)s?\s*$", re.IGNORECASE)

FORMS: dict[str, str] = {
    "metric": "'>= x', '> x', '<= x', '< x', '== x', '!= x' or 'between a and b'",
    "status": f"'== pass', '!= fail' or 'in [pass, warn]' (statuses: {', '.join(STATUSES)})",
    "findings": "'no error' or 'no warning'",
}
_PATHS = "<audit>.<metric> (optionally .value, .ci_low or .ci_high), <audit>.status or <audit>.findings"


def _status_word(text: str) -> str:
    """A status as written in a rule, normalised: case and the separators of "not assessed"."""
    return " ".join(re.split(r"[\s_-]+", text.strip().lower()))


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``op`` is >=, >, <=, <, ==, !=, between (metrics); ==, !=, in
    (status, ``operand`` a tuple of statuses); no (findings, ``operand`` error|warning)."""

    kind: PathKind
    op: str
    operand: Any
    text: str  # normalised, e.g. ">= 0.9", "between 0.8 and 1.25", "in [pass, warn]", "no error"


@dataclass(frozen=True)
class Gate:
    path: str
    rule: Rule

    @property
    def kind(self) -> PathKind:
        return self.rule.kind

    @property
    def audit(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def name(self) -> str:
        return f"{self.path} {self.rule.text}"


@dataclass(frozen=True)
class Regression:
    path: str
    bound: Literal["max_drop", "max_rise"]
    tolerance: float

    @property
    def audit(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def name(self) -> str:
        return f"{self.path} vs baseline ({self.bound} {number_text(self.tolerance)})"


@dataclass(frozen=True)
class Policy:
    gates: tuple[Gate, ...] = ()
    regressions: tuple[Regression, ...] = ()
    baseline: Path | None = None
    source: str | None = None

    def check_syntax(self, installed_audits: Collection[str], *, baseline_given: bool | None = None) -> None:
        """Raise :class:`UsageError` for a path naming no installed audit (rules were checked
        when the policy was read). With ``baseline_given=False``, also for [regression]
        tolerances that have no baseline to compare with."""
        installed = set(installed_audits)
        for path, audit in [(g.path, g.audit) for g in self.gates] + [(r.path, r.audit) for r in self.regressions]:
            if audit not in installed:
                raise UsageError(
                    f'The policy path "{path}" names the audit {audit!r}, which is not installed.',
                    hint=f"Installed audits: {', '.join(sorted(installed)) or 'none'}. Paths are {_PATHS}.",
                )
        if baseline_given is False and self.regressions and self.baseline is None:
            raise missing_baseline()


def missing_baseline() -> UsageError:
    return UsageError(
        "The policy has [regression] tolerances but no baseline report to compare with.",
        hint='Set baseline = "reports/main/report.json" in [regression], or pass --baseline.',
    )


def number_text(x: float) -> str:
    return f"{x:g}" if float(x) == float(f"{x:g}") else repr(float(x))




def parse_rule(path: str, written: Any) -> Rule:
    """The rule written for ``path``, or a UsageError naming the path, the text and the forms."""
    kind: PathKind = "status" if path.endswith(".status") else "findings" if path.endswith(".findings") else "metric"
    if not isinstance(written, str):
        raise UsageError(
            f'The gate "{path}" must be a rule written as a string; got {written!r}.',
            hint=f"Write it in quotes, one of: {FORMS[kind]}.",
        )
    text = written.strip()
    rule: Rule | None = None
    if kind == "metric":
        if m := _COMPARE.match(text):
            x = float(m.group(2))
            if math.isfinite(x):
                rule = Rule(kind, m.group(1), x, f"{m.group(1)} {number_text(x)}")
        elif m := _BETWEEN.match(text):
            a, b = float(m.group(1)), float(m.group(2))
            if math.isfinite(a) and math.isfinite(b):
                if a > b:
                    raise UsageError(
                        f'The gate "{path}" = {written!r} has its bounds reversed.',
                        hint=f"Write 'between {number_text(b)} and {number_text(a)}'.",
                    )
                rule = Rule(kind, "between", (a, b), f"between {number_text(a)} and {number_text(b)}")
    elif kind == "status":
        if m := _STATUS_IS.match(text):
            word = _status_word(m.group(2))
            if word in STATUSES:
                rule = Rule(kind, m.group(1), (word,), f"{m.group(1)} {word}")
        elif m := _STATUS_IN.match(text):
            words = tuple(_status_word(w.strip().strip("'\"")) for w in m.group(1).split(","))
            if words and all(w in STATUSES for w in words):
                rule = Rule(kind, "in", words, f"in [{', '.join(words)}]")
    elif m := _FINDINGS.match(text):
        rule = Rule(kind, "no", m.group(1).lower(), f"no {m.group(1).lower()}")
    if rule is None:
        other = {
            "metric": " Status and findings rules go on <audit>.status and <audit>.findings.",
            "status": "",
            "findings": "",
        }[kind]
        raise UsageError(
            f'The gate "{path}" = {written!r} is not a rule for {"a metric" if kind == "metric" else "an audit " + kind}.',
            hint=f"Accepted forms: {FORMS[kind]}.{other}",
        )
    return rule


def _check_path(path: str, table: str) -> None:
    audit, dot, rest = path.partition(".")
    if not audit or not dot or not rest or any(not part for part in path.split(".")):
        raise UsageError(f'The {table} path "{path}" is not a path.', hint=f"Paths are {_PATHS}.")


def _flatten(table: Mapping[str, Any], prefix: str, leaf: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not leaf(value):
            out.extend(_flatten(value, path + ".", leaf))
        else:
            out.append((path, value))
    return out


def _regression(path: str, value: Any) -> Regression:
    example = f'"{path}" = {{ max_drop = 0.01 }} (higher is better) or {{ max_rise = 0.02 }} (lower is better)'
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("max_drop", "max_rise"):
        raise UsageError(
            f'The regression entry "{path}" must be a table with one of max_drop or max_rise; got {value!r}.',
            hint=f"Write {example}.",
        )
    bound, tolerance = next(iter(value.items()))
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
        math.isfinite(tolerance) and tolerance >= 0
    ):
        raise UsageError(
            f'The regression entry "{path}" needs a non-negative number for {bound}; got {tolerance!r}.',
            hint=f"Write {example}.",
        )
    if path.endswith((".status", ".findings")):
        raise UsageError(
            f'The regression entry "{path}" is not a metric: only metrics can regress.',
            hint="Gate a status or findings with [gates] instead, e.g. \"fairness.status\" = \"in [pass, warn]\".",
        )
    return Regression(path, bound, float(tolerance))


def policy_from_tables(
    gates: Any, regression: Any, *, source: str | None, root: Path | None = None
) -> Policy:
    """Parse ``[gates]`` and ``[regression]`` tables (either may be None)."""
    for name, table in (("gates", gates), ("regression", regression)):
        if table is not None and not isinstance(table, Mapping):
            raise UsageError(f"[{name}] in {source or 'the policy'} must be a table; got {table!r}.")
    parsed_gates = []
    for path, written in _flatten(gates or {}, "", lambda v: False):
        _check_path(path, "gate")
        parsed_gates.append(Gate(path, parse_rule(path, written)))
    regression = dict(regression or {})
    baseline = regression.pop("baseline", None)
    if baseline is not None and not isinstance(baseline, str):
        raise UsageError(
            f"baseline in [regression] must be the path of a report.json, as a string; got {baseline!r}.",
            hint='For example: baseline = "reports/main/report.json".',
        )
    regressions = []
    for path, value in _flatten(regression, "", lambda v: bool({"max_drop", "max_rise"} & set(v))):
        _check_path(path, "regression")
        regressions.append(_regression(path, value))
    base = None if baseline is None else (root / baseline if root is not None else Path(baseline))
    return Policy(tuple(parsed_gates), tuple(regressions), base, source)


def load_policy(path: Path | None, settings: Mapping[str, Any], *, allow_symlinks: bool = False) -> Policy | None:
    """The policy from ``path`` (its [gates]/[regression] tables, or those under
    [tool.auditor]), else from the ``gates``/``regression`` sub-tables of ``settings``;
    None when neither has any. ``path`` is checked first with
    :func:`auditor.loading.inputs.check_input`, and read within a bound."""
    if path is not None:
        from auditor.loading.inputs import check_input

        check_input(path, "The policy file", allow_symlinks=allow_symlinks)
        data = read_toml(path)
        tool = data.get("tool")
        if isinstance(tool, Mapping) and isinstance(tool.get("auditor"), Mapping):
            data = tool["auditor"]
        if "gates" not in data and "regression" not in data:
            raise UsageError(
                f"The policy file {path} has no [gates] or [regression] table.",
                hint='Add one, e.g. [gates] "metrics.roc_auc" = ">= 0.9".',
            )
        return policy_from_tables(data.get("gates"), data.get("regression"), source=path.name, root=path.parent)
    if settings.get("gates") is None and settings.get("regression") is None:
        return None
    return policy_from_tables(settings.get("gates"), settings.get("regression"), source="[tool.auditor]")
