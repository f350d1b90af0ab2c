"""What an audit returns: small, plain data that round-trips through JSON.

An audit computes; it never renders. Renderers read these objects (or the JSON they
serialise to) and nothing else, which is what lets ``audit render report.json`` rebuild
every format without the model or the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

Status = Literal["pass", "warn", "fail", "not assessed", "skipped", "error"]
Severity = Literal["info", "warning", "error"]
Direction = Literal["higher", "lower", "none"]

#: Every status an audit may end in. ``not assessed``: the audit ran but could not judge what
#: it exists to judge (every group too small for a disparity, every fold too small, a history
#: too short); its summary says why and what it would need. Distinct from ``pass`` (it judged
#: and found nothing), ``skipped`` (it did not run: an input was missing) and ``error`` (it broke).
STATUSES: tuple[str, ...] = ("pass", "warn", "fail", "not assessed", "skipped", "error")
NOT_ASSESSED = "not assessed"
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


def _clean(value: Any) -> Any:
    """Turn numpy scalars into Python numbers and non-finite floats into None (JSON has no NaN)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
        if isinstance(value, (bool, int, str)):
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Metric:
    """One number, with its confidence interval where one exists.

    ``value`` is never rounded here: rounding happens only when a renderer displays it.
    ``direction`` says which way is better (``none``: neither); ``headline`` puts the metric
    in the report's summary.

    Two flags tell CI gating (:mod:`auditor.ci.gates`) how to treat the figure; they are
    declared by the audit that knows, never guessed from the metric's key:

    ``noisy`` (default False)
        the value varies between identical runs (a timing, an energy or emissions figure): a
        threshold gate on it says so in its message, its gate result carries ``noisy: true``,
        and a regression check on it is expected to allow for that noise. Figures computed from
        the data and a fixed seed are not noisy: identical runs give identical values.
    ``tolerance`` (default None)
        the regression tolerance, absolute, in the metric's units: with ``--baseline`` and no
        ``[regression]`` table in the policy, the metric may get worse than the baseline's
        value by at most this much (``direction`` says which way is worse, so a tolerance needs
        ``higher`` or ``lower``). None: the metric is checked for regression only when the
        policy names it. A non-negative finite number.

    Both are written by :meth:`to_dict` and optional in :meth:`from_dict`; see there for
    reports written before they existed (schema 1.x).
    """

    value: float | None
    label: str = ""
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    direction: Direction = "higher"
    headline: bool = False
    description: str = ""
    noisy: bool = False
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.noisy, bool):
            raise ValueError(f"Metric noisy must be True or False, got {self.noisy!r}")
        tol = self.tolerance
        if tol is not None:
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
                raise ValueError(f"Metric tolerance must be a non-negative finite number or None, got {tol!r}")
            if self.direction not in ("higher", "lower"):
                raise ValueError(
                    f"Metric tolerance needs direction 'higher' or 'lower' (which way is worse), "
                    f"got direction {self.direction!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _clean(self.value),
            "label": self.label,
            "ci": None if self.ci is None else [_clean(self.ci[0]), _clean(self.ci[1])],
            "ci_method": self.ci_method,
            "direction": self.direction,
            "headline": self.headline,
            "description": self.description,
            "noisy": self.noisy,
            "tolerance": _clean(self.tolerance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], key: str | None = None) -> Metric:
        """Read :meth:`to_dict`'s output. ``key`` is the metric's key in its result, used only
        for a metric written before the flags existed (report schema 1.x): see
        :func:`legacy_flags`."""
        ci = data.get("ci")
        noisy, tolerance = legacy_flags(data, key)
        return cls(
            value=data.get("value"),
            label=data.get("label", ""),
            ci=None if ci is None else (ci[0], ci[1]),
            ci_method=data.get("ci_method"),
            direction=data.get("direction", "higher"),
            headline=bool(data.get("headline", False)),
            description=data.get("description", ""),
            noisy=noisy,
            tolerance=tolerance,
        )


#: Legacy (report schema 1.x only): words of a metric key that marked its figure as varying
#: between runs before metrics declared ``noisy``.
NOISY_WORDS: tuple[str, ...] = ("energy", "emissions", "duration", "seconds")
#: Legacy (report schema 1.x only): the regression tolerance every headline metric with a
#: direction got before metrics declared ``tolerance``.
LEGACY_TOLERANCE = 0.01


def legacy_flags(data: Mapping[str, Any], key: str | None, *, measured: bool = False) -> tuple[bool, float | None]:
    """A serialised metric's ``(noisy, tolerance)``: the declared flags when present, else
    what a report written before they existed (schema 1.x) implied.

    Legacy rules, for a metric dict without the ``noisy`` key: noisy when ``measured`` (its
    audit's result sits in the report's ``measurements`` section: the audit measures the run)
    or when ``key`` contains one of :data:`NOISY_WORDS`. Without the ``tolerance`` key: a
    headline metric with direction ``higher`` or ``lower`` that is not noisy gets
    :data:`LEGACY_TOLERANCE`, as every such metric was gated then; others None.
    """
    if "noisy" in data:
        noisy = bool(data["noisy"])
    else:
        noisy = measured or (key is not None and any(w in key.lower() for w in NOISY_WORDS))
    if "tolerance" in data:
        raw = data["tolerance"]
        tolerance = None if raw is None else float(raw)
    elif data.get("headline") and data.get("direction", "higher") in ("higher", "lower") and not noisy:
        tolerance = LEGACY_TOLERANCE
    else:
        tolerance = None
    return noisy, tolerance


@dataclass(frozen=True)
class Finding:
    """Something a reader should know: ``severity`` feeds the verdict and the gates."""

    severity: Severity
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(severity=data["severity"], code=data["code"], message=data["message"])


@dataclass(frozen=True)
class Table:
    """A small table (never raw data rows): per-class figures, a confusion matrix..."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": list(self.columns),
            "rows": _clean(self.rows),
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Table:
        return cls(
            name=data["name"],
            title=data["title"],
            columns=list(data["columns"]),
            rows=[list(r) for r in data["rows"]],
            caption=data.get("caption", ""),
        )


@dataclass(frozen=True)
class Chart:
    """The data behind a chart; the figure itself is drawn at render time.

    ``kind`` tells renderers how to draw ``data``. Kinds the built-in renderers know:

    - ``confusion_matrix``: ``{"labels": [...], "matrix": [[int]]}`` (rows = true class)
    - ``curve``: ``{"x_label", "y_label", "series": [{"name", "x": [...], "y": [...]}],
      "diagonal": bool}`` (ROC, precision-recall, training curves); optional
      ``"y_scale": "linear"|"log"`` (log: base-10 axis ticked at decades; values <= 0 are
      not drawn and split the line, like None) and ``"markers": [{"x": number, "label":
      str}]``, each drawn as a labelled vertical dashed line (e.g. the best epoch), and
      ``"y_from_zero": true`` (a linear y axis that includes 0, for magnitudes such as importance),
      and ``"band": {"name", "x": [...], "low": [...], "high": [...]}``, a shaded region
      between two lines (e.g. the reliability diagram's consistency band; linear axis only)
    - ``scatter``: ``{"x_label", "y_label", "x": [...], "y": [...], "reference": "y=0"|"y=x"|None}``
    - ``bar``: ``{"x_label", "y_label", "labels": [...], "values": [...], "errors": [[low, high]]|None}``
      (``errors`` are absolute interval bounds, like ``Metric.ci``, not offsets); optional
      ``"groups": [int|None]`` (one per label: an index into ``"legend": [str]``, the group
      names) colours each bar by its group, group g in the g-th palette colour (0 blue, 1
      vermillion, 2 green, ...) and None in neutral grey, adds the group's name to the bar's
      tooltip and a legend of the groups that occur (e.g. feature importances coloured by
      whether higher values raise or lower the output)
    - ``heatmap``: ``{"panels": [{"title": str, "values": [[number|None]], "scale":
      "signed"|"magnitude"|"grey"|"rgb"}], "columns": int, "x_label", "y_label", "x_ticks":
      [str], "y_ticks": [str]}`` (small images in a grid, ``columns`` panels per row, default
      up to 4: attribution maps next to their input images, a time x feature importance map);
      ``values`` is rows x columns, at most 256 x 256 (downsample larger maps), and for
      ``"rgb"`` each cell is ``[r, g, b]``. Each panel is scaled to its own values: ``signed``
      blue (negative) - white (0) - vermillion (positive) up to the largest absolute value,
      ``magnitude`` white (0) to dark blue (the largest; negatives count as 0), ``grey`` the
      lowest to the highest value as black to white, ``rgb`` every channel from the panel's
      lowest to its highest value onto 0 to 255 (a constant grey or rgb panel is mid grey);
      None cells are light grey. ``signed`` and ``magnitude`` panels get a colour legend with
      their end values. ``x_ticks`` (one per column) and ``y_ticks`` (one per row, every
      panel the same shape then) label the cells, thinned to at most 12 shown
    - ``tokens``: ``{"examples": [{"title": str, "subtitle": str, "tokens": [str], "values":
      [number|None]}], "value_label": str}`` (highlighted text: each example's tokens in
      reading order, each shaded by its value on one signed scale for the chart, blue
      negative, white 0, vermillion positive; at most 40 examples of 2,048 tokens; token
      attributions of a text model)
    - ``strip``: ``{"x_label", "y_label", "series": [{"name", "x": [...], "y": [...]}],
      "mean": number|None, "band": [low, high]|None, "references": [{"y": number, "label":
      str}]|None}`` (a metric across cross-validation folds: ``x`` is the fold number, one
      series per repeat or seed, each drawn as points in its own colour and marker shape;
      ``mean`` is a solid line, ``band`` a shaded band labelled by the optional
      ``"band_label"``, default ``"mean ± 1 SD"``, and each reference a labelled dashed line)
    """

    name: str
    title: str
    kind: str
    data: dict[str, Any]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "data": _clean(self.data),
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chart:
        return cls(
            name=data["name"],
            title=data["title"],
            kind=data["kind"],
            data=dict(data["data"]),
            caption=data.get("caption", ""),
        )


@dataclass
class ResultPart:
    """What one input of an audit (a history, the training data, a retraining run) adds to
    its result; an audit builds one per input and merges them into an :class:`AuditResult`."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    #: False when this input was too thin to judge (a history too short for a verdict): an
    #: audit whose every part is unassessed is ``not assessed``.
    assessed: bool = True


@dataclass
class AuditResult:
    """Everything one audit found. Plain data: round-trips through ``to_dict``/``from_dict``."""

    audit: str
    title: str
    status: Status
    summary: str
    metrics: dict[str, Metric] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for f in self.findings:
            if f.severity not in SEVERITIES:
                raise ValueError(f"finding severity must be one of {SEVERITIES}, got {f.severity!r}")

    @classmethod
    def from_parts(
        cls, audit: str, title: str, parts: list[ResultPart], *, status: Status, summary: str,
        options: Mapping[str, Any] | None = None,
    ) -> AuditResult:
        """One result from the parts an audit built, one per input, in their order: metrics
        merged (a later part's key wins), findings, tables, charts and notes concatenated. The
        audit words the summary and decides the status (see :attr:`ResultPart.assessed`)."""
        return cls(
            audit=audit,
            title=title,
            status=status,
            summary=summary,
            metrics={key: metric for part in parts for key, metric in part.metrics.items()},
            findings=[finding for part in parts for finding in part.findings],
            tables=[table for part in parts for table in part.tables],
            charts=[chart for part in parts for chart in part.charts],
            notes=[note for part in parts for note in part.notes],
            options=dict(options or {}),
        )

    @classmethod
    def skipped(cls, audit: str, title: str, reason: str) -> AuditResult:
        return cls(audit=audit, title=title, status="skipped", summary=reason)

    @classmethod
    def not_assessed(cls, audit: str, title: str, reason: str, **parts: Any) -> AuditResult:
        """A result for an audit that ran but could not judge: ``reason`` is the summary (say
        why, and the data it would need); ``parts`` are the other fields (metrics, findings...)."""
        return cls(audit=audit, title=title, status="not assessed", summary=reason, **parts)

    @classmethod
    def errored(cls, audit: str, title: str, message: str) -> AuditResult:
        return cls(
            audit=audit,
            title=title,
            status="error",
            summary=f"The audit raised an error: {message}",
            findings=[Finding("error", "audit-error", message)],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit": self.audit,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "findings": [f.to_dict() for f in self.findings],
            "tables": [t.to_dict() for t in self.tables],
            "charts": [c.to_dict() for c in self.charts],
            "notes": list(self.notes),
            "options": _clean(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        return cls(
            audit=data["audit"],
            title=data["title"],
            status=data["status"],
            summary=data["summary"],
            metrics={k: Metric.from_dict(v, k) for k, v in data.get("metrics", {}).items()},
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            tables=[Table.from_dict(t) for t in data.get("tables", [])],
            charts=[Chart.from_dict(c) for c in data.get("charts", [])],
            notes=list(data.get("notes", [])),
            options=dict(data.get("options", {})),
        )


def status_from_findings(findings: list[Finding]) -> Status:
    """The usual verdict: any error finding fails, any warning warns, otherwise pass."""
    severities = {f.severity for f in findings}
    if "error" in severities:
        return "fail"
    if "warning" in severities:
        return "warn"
    return "pass"
