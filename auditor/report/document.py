"""The report as a typed object: :class:`Report`, what report.json holds, and back.

``Report.to_dict()`` is report.json's content (``schema_version`` "2.0"), and
``Report.from_dict(d)`` reads it back, from 2.x and from every 1.x report (see
:func:`Report.from_dict` for what 1.x lacked and how it is filled in). The renderers read
that dict (complete: every section present) or the Report itself.

Typed down to the leaf where the shape is ours and small (the tool, the outcome, every
audit's :class:`~auditor.contract.result.AuditResult`); kept as mappings where the section's
inner shape is rich and documented where it is made, so typing every leaf would only copy
that documentation (and the JSON Schema, ``report.schema.json``, checks it anyway):

- ``model``, ``data``, ``train_data``, ``history``, ``code``, ``run``: :mod:`auditor.run.assemble`;
- ``card``: :mod:`auditor.compliance.card` (``card_section``);
- ``gates``: :func:`auditor.ci.gates.evaluate`;
- ``outcome``: :func:`auditor.run.runner.outcome`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.contract.errors import UsageError
from auditor.contract.result import NOT_ASSESSED, AuditResult

#: The schema version this auditor writes. Minor versions only add fields.
SCHEMA_VERSION = "2.0"
#: The major schema versions this auditor reads: 1.x is migrated on reading (see Report.from_dict).
READABLE_MAJORS: tuple[int, ...] = (1, 2)

#: report.json's top-level keys, in the order :meth:`Report.to_dict` writes them (the file
#: itself is sorted). ``gates`` and ``outcome`` are left out while they are None.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "schema_version", "tool", "verdict", "outcome", "model", "data", "train_data", "card", "code",
    "history", "audits", "measurements", "gates", "run",
)


class ReportError(UsageError):
    """A report document that is not a valid auditor report (exit 2, like any bad input)."""


def major_version(version: Any) -> int | None:
    """The major number of a ``schema_version`` such as "1.1", or None when it is not one."""
    if not isinstance(version, str):
        return None
    major = version.split(".", 1)[0]
    return int(major) if major.isdigit() else None


@dataclass(frozen=True)
class Tool:
    """What wrote the report."""

    name: str = "auditor"
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tool:
        return cls(name=str(data.get("name") or "auditor"), version=str(data.get("version") or ""))


@dataclass(frozen=True)
class ReportOutcome:
    """The run's one verdict and its exit code, as :func:`auditor.run.runner.outcome` computes
    them (its docstring gives each field). ``exit_code`` is None only for a migrated 1.x
    report, which never stored one."""

    verdict: str
    exit_code: int | None
    reasons: list[str] = field(default_factory=list)
    failed_gates: list[str] = field(default_factory=list)
    not_assessed: list[str] = field(default_factory=list)
    not_assessed_as: str | None = None
    fail_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "failed_gates": list(self.failed_gates),
            "not_assessed": list(self.not_assessed),
            "not_assessed_as": self.not_assessed_as,
            "fail_on": self.fail_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportOutcome:
        return cls(
            verdict=data["verdict"],
            exit_code=data.get("exit_code"),
            reasons=list(data.get("reasons") or []),
            failed_gates=list(data.get("failed_gates") or []),
            not_assessed=list(data.get("not_assessed") or []),
            not_assessed_as=data.get("not_assessed_as"),
            fail_on=data.get("fail_on"),
        )


def _results(section: Any, where: str) -> dict[str, AuditResult]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ReportError(f"The report's {where} is a JSON {type(section).__name__}; expected an object of audit results.",
                          hint="Pass a report.json written by `audit`.")
    found = {}
    for name, result in section.items():
        try:
            found[str(name)] = AuditResult.from_dict(result)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ReportError(
                f"The report's {where}.{name} is not an audit result: {type(exc).__name__}: {exc}.",
                hint="Pass a report.json written by `audit`, or fix that entry.",
            ) from None
    return found


@dataclass
class Report:
    """One audit run's report: every section of report.json (module docstring: which are typed)."""

    tool: Tool
    verdict: str
    model: dict[str, Any]
    data: dict[str, Any]
    audits: dict[str, AuditResult]
    run: dict[str, Any]
    measurements: dict[str, AuditResult] = field(default_factory=dict)
    train_data: dict[str, Any] | None = None
    card: dict[str, Any] | None = None
    code: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] | None = None
    gates: dict[str, Any] | None = None
    outcome: ReportOutcome | None = None
    schema_version: str = SCHEMA_VERSION

    # --- reading the results --------------------------------------------------------------

    def all_results(self) -> dict[str, AuditResult]:
        """Every audit's result by name, in the order they ran: ``audits``, then ``measurements``."""
        return {**self.audits, **self.measurements}

    # --- to and from report.json ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """report.json's content: plain JSON values (a deep copy: changing it changes nothing here)."""
        document: dict[str, Any] = {
            "schema_version": self.schema_version,
            "tool": self.tool.to_dict(),
            "verdict": self.verdict,
            "model": copy.deepcopy(self.model),
            "data": copy.deepcopy(self.data),
            "train_data": copy.deepcopy(self.train_data),
            "card": copy.deepcopy(self.card),
            "code": copy.deepcopy(self.code),
            "history": copy.deepcopy(self.history),
            "audits": {name: result.to_dict() for name, result in self.audits.items()},
            "measurements": {name: result.to_dict() for name, result in self.measurements.items()},
            "run": copy.deepcopy(self.run),
        }
        if self.gates is not None:
            document["gates"] = copy.deepcopy(self.gates)
        if self.outcome is not None:
            document["outcome"] = self.outcome.to_dict()
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Read a report document of schema 2.x or 1.x; raise :class:`ReportError` otherwise.

        1.x reports are migrated: 1.0 had no ``measurements`` (energy lived among the audits),
        ``train_data``, ``card``, ``code``, ``history``, ``gates`` or ``outcome``, no
        ``data.sensitive`` and no ``run.plugins``; 1.1 added ``measurements`` and the rest
        over its life. Missing sections are filled with their empty value (``{}``, ``[]``,
        None), and a missing ``outcome`` is rebuilt from the stored verdict, the failed gates
        and the not-assessed audits, with ``exit_code`` None (1.x never stored one). The
        migrated report carries schema_version "2.0". A 2.x report is read as it is.
        """
        if not isinstance(data, Mapping):
            raise ReportError(f"A report document must be a JSON object; got a JSON {type(data).__name__}.",
                              hint="Pass a report.json written by `audit`.")
        version = data.get("schema_version")
        major = major_version(version)
        if major not in READABLE_MAJORS:
            raise ReportError(
                f"The report has schema_version {version!r}; this auditor reads "
                f"{' and '.join(f'{m}.x' for m in READABLE_MAJORS)}.",
                hint="Render it with the auditor version that wrote it (see tool.version), or upgrade auditor.",
            )
        if not isinstance(data.get("audits"), Mapping):
            raise ReportError(f"The report has no audits object (schema_version {version}).",
                              hint="Pass a report.json written by `audit`.")
        audits = _results(data["audits"], "audits")
        measurements = _results(data.get("measurements"), "measurements")
        verdict = data.get("verdict")
        gates = _mapping_or_none(data.get("gates"))
        outcome_data = data.get("outcome")
        if isinstance(outcome_data, Mapping) and "verdict" in outcome_data:
            outcome: ReportOutcome | None = ReportOutcome.from_dict(outcome_data)
        elif major == 1:
            outcome = _migrated_outcome(str(verdict), {**audits, **measurements}, gates)
        else:
            outcome = None
        model, facts, run = (dict(_mapping_or_none(data.get(k)) or {}) for k in ("model", "data", "run"))
        if major == 1:
            facts.setdefault("sensitive", [])
            run.setdefault("plugins", {})
        return cls(
            schema_version=SCHEMA_VERSION if major == 1 else str(version),
            tool=Tool.from_dict(_mapping_or_none(data.get("tool")) or {}),
            verdict=str(verdict) if verdict is not None else (outcome.verdict if outcome else "pass"),
            model=copy.deepcopy(model),
            data=copy.deepcopy(facts),
            train_data=copy.deepcopy(_mapping_or_none(data.get("train_data"))),
            card=copy.deepcopy(_mapping_or_none(data.get("card"))),
            code=copy.deepcopy([dict(c) for c in data.get("code") or [] if isinstance(c, Mapping)]),
            history=copy.deepcopy(_mapping_or_none(data.get("history"))),
            audits=audits,
            measurements=measurements,
            run=copy.deepcopy(run),
            gates=copy.deepcopy(gates),
            outcome=outcome,
        )

    # --- showing and saving ---------------------------------------------------------------

    def _repr_html_(self) -> str:
        """The HTML report's body, for Jupyter: styles scoped to the report, no <html>/<body>."""
        from auditor.report.html import render_html_fragment

        return render_html_fragment(self)

    def save(self, folder: Path | str, formats: Iterable[str] = ("html", "md", "json")) -> list[Path]:
        """Write the report in each of ``formats`` into ``folder``, every file atomically
        (none is written when one fails to render); return the paths written."""
        from auditor.report.write import write_reports

        return write_reports(self, folder, list(formats))


def _mapping_or_none(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _migrated_outcome(verdict: str, results: Mapping[str, AuditResult], gates: Mapping[str, Any] | None) -> ReportOutcome:
    """A 1.x report's outcome, from what it stored: its verdict, failed gates, not-assessed audits."""
    failed = [str(g.get("name")) for g in (gates or {}).get("results") or []
              if isinstance(g, Mapping) and g.get("passed") is not True]
    fail_on = (gates or {}).get("fail_on")
    return ReportOutcome(
        verdict=verdict,
        exit_code=None,
        failed_gates=failed,
        not_assessed=[name for name, r in results.items() if r.status == NOT_ASSESSED],
        fail_on=fail_on if isinstance(fail_on, str) else None,
    )


def as_document(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The dict a renderer reads: a Report's ``to_dict()``, or a report dict as it is given."""
    return report.to_dict() if isinstance(report, Report) else dict(report)
