"""What renderers show from the report document: the choices every format shares.

Renderers receive the report as the plain dict stored in report.json. Third-party audits
may fill it with any names and strings, and older files may lack optional parts, so it is
read here, in one place and defensively: which audits there are and in what order, which
metrics are headlines, the gate results, and the labelled facts shown about the model, the
data and the run.

The gates section (``report["gates"]``, absent or null without ``--policy``/``--baseline``) is
read as ``{"policy", "baseline", "results": [{"name", "kind", "passed", "message", "noise",
"noisy", ...}]}`` (the shape :mod:`auditor.ci.gates` documents); the other fields of a result
(rule, value, threshold, delta...) are already said in its message.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.report.json_report import all_audits
from auditor.report.numbers import (
    MISSING,
    format_bytes,
    format_cell,
    format_count,
    format_number,
    format_seconds,
    is_number,
)

#: Status words as shown to readers; any other status is shown as written.
STATUS_WORDS: dict[str, str] = {
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "not assessed": "NOT ASSESSED",
    "skipped": "SKIPPED",
    "error": "ERROR",
}

#: A symbol for each status, shown next to its word (never instead of it).
STATUS_SYMBOLS: dict[str, str] = {
    "pass": "✓",
    "warn": "!",
    "fail": "✗",
    "not assessed": "?",
    "skipped": "–",
    "error": "‼",
}

#: Finding severities, most serious first.
SEVERITY_ORDER: tuple[str, ...] = ("error", "warning", "info")

#: How many metrics stand for an audit in summaries when it flags none as a headline.
DEFAULT_HEADLINES = 3

Facts = list[tuple[str, str]]


def section(report: dict[str, Any], key: str) -> dict[str, Any]:
    """A top-level section of the report (``model``, ``data``, ``run``...), empty if absent."""
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _list(mapping: dict[str, Any], key: str) -> list[Any]:
    value = mapping.get(key)
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else format_cell(value)


def model_name(report: dict[str, Any]) -> str:
    """The audited model's name, or its path."""
    model = section(report, "model")
    return _text(model.get("name") or model.get("path"))


def data_path(report: dict[str, Any]) -> str:
    """The audited data file."""
    return _text(section(report, "data").get("path"))


def tool_name(report: dict[str, Any]) -> str:
    """The tool and version that wrote the report (``auditor 0.1.0``)."""
    tool = section(report, "tool")
    return f"{format_cell(tool.get('name') or 'auditor')} {format_cell(tool.get('version') or '')}".strip()


def status_word(status: Any) -> str:
    """The word shown for a status or verdict (``PASS``, ``WARN``...); others as written."""
    return STATUS_WORDS.get(str(status), str(status))


def status_class(status: Any) -> str:
    """A CSS-safe name for a status: the status itself if known (spaces as ``-``: ``not-assessed``),
    else ``unknown``."""
    return status.replace(" ", "-") if isinstance(status, str) and status in STATUS_WORDS else "unknown"


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    """The run's one verdict as :func:`auditor.run.runner.outcome` stored it (``verdict``,
    ``exit_code``, ``reasons``, ``failed_gates``, ``not_assessed``); for a report without
    an ``outcome`` (written by an older version, or by the Python API without gates) the
    stored ``verdict`` with no reasons."""
    found = report.get("outcome")
    found = found if isinstance(found, dict) else {}
    reasons = found.get("reasons")
    return {
        "verdict": found.get("verdict", report.get("verdict")),
        "exit_code": found.get("exit_code") if is_number(found.get("exit_code")) else None,
        "reasons": [format_cell(r) for r in reasons] if isinstance(reasons, list) else [],
        "failed_gates": [format_cell(g) for g in found.get("failed_gates") or [] if isinstance(g, str)],
        "not_assessed": [format_cell(a) for a in found.get("not_assessed") or [] if isinstance(a, str)],
    }


def status_label(status: Any) -> str:
    """Symbol and word for a status (``✓ PASS``); unknown statuses get no symbol."""
    symbol = STATUS_SYMBOLS.get(str(status))
    return f"{symbol} {status_word(status)}" if symbol else status_word(status)


def status_counts(report: dict[str, Any]) -> str:
    """How many audits ended in each status, e.g. ``3 audits: 1 pass, 2 warn``."""
    counts: dict[str, int] = {}
    for _, audit in audits(report):
        status = str(audit.get("status"))
        counts[status] = counts.get(status, 0) + 1
    total = sum(counts.values())
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"{total} audit{'s' if total != 1 else ''}" + (f": {parts}" if parts else "")


def audits(report: dict[str, Any], *, measurements: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """Every audit as ``(name, result)``, in the order they ran (those that measure the run,
    from ``measurements``, last; left out with ``measurements=False``)."""
    found = all_audits(report) if measurements else section(report, "audits")
    return [(str(n), a) for n, a in found.items() if isinstance(a, dict)]


def audit_title(name: str, audit: dict[str, Any]) -> str:
    """The audit's display title, falling back to its name."""
    title = audit.get("title")
    return title if isinstance(title, str) and title else name


def summary(audit: dict[str, Any]) -> str:
    """The audit's one-sentence summary (may be empty)."""
    return format_cell(audit.get("summary") or "")


def metrics(audit: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every metric as ``(display label, metric)``: headline metrics first, then the rest.

    Within each group the order is report.json's (keys sorted), so a live render and a
    render from the JSON alone agree.
    """
    found = audit.get("metrics")
    if not isinstance(found, dict):
        return []
    every = [(str(m.get("label") or name), m) for name, m in found.items() if isinstance(m, dict)]
    return sorted(every, key=lambda item: not item[1].get("headline"))


def headline_metrics(audit: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The metrics the audit flags as headlines, or its first few when it flags none."""
    every = metrics(audit)
    flagged = [(label, m) for label, m in every if m.get("headline")]
    return flagged or every[:DEFAULT_HEADLINES]


def ci_methods(audit: dict[str, Any]) -> list[str]:
    """The distinct methods behind the audit's confidence intervals, in order of use."""
    methods: list[str] = []
    for _, metric in metrics(audit):
        method = metric.get("ci_method")
        if metric.get("ci") and isinstance(method, str) and method and method not in methods:
            methods.append(method)
    return methods


def findings(
    audit: dict[str, Any], severities: tuple[str, ...] | None = None
) -> list[dict[str, str]]:
    """The audit's findings as ``{severity, code, message}`` text, most serious first;
    only those of ``severities`` when given."""
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    kept = [
        {
            "severity": format_cell(f.get("severity") or ""),
            "code": format_cell(f.get("code") or ""),
            "message": _text(f.get("message")),
        }
        for f in _list(audit, "findings")
        if isinstance(f, dict) and (severities is None or f.get("severity") in severities)
    ]
    return sorted(kept, key=lambda f: rank.get(f["severity"], len(rank)))


def tables(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The audit's tables that have any column: ``title``, ``caption``, ``columns`` and
    ``rows`` padded to the same width, and ``numeric``: for each column, whether all its
    defined values are numbers (such columns are right-aligned)."""
    result = []
    for table in _list(audit, "tables"):
        if not isinstance(table, dict):
            continue
        columns = [str(c) for c in _list(table, "columns")]
        rows = [r if isinstance(r, list) else [r] for r in _list(table, "rows")]
        width = max([len(columns), *(len(r) for r in rows)])
        if width == 0:
            continue
        rows = [r + [None] * (width - len(r)) for r in rows]
        defined = [[r[i] for r in rows if r[i] is not None] for i in range(width)]
        result.append(
            {
                "title": str(table.get("title") or table.get("name") or ""),
                "caption": str(table.get("caption") or ""),
                "columns": columns + [""] * (width - len(columns)),
                "rows": rows,
                "numeric": [bool(values) and all(map(is_number, values)) for values in defined],
            }
        )
    return result


def charts(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The audit's charts (drawn by the HTML report only)."""
    return [c for c in _list(audit, "charts") if isinstance(c, dict)]


def notes(audit: dict[str, Any]) -> list[str]:
    """The audit's notes as text."""
    return [format_cell(n) for n in _list(audit, "notes")]


def options(audit: dict[str, Any]) -> Facts:
    """The options the audit ran with, as ``(name, value)``, values exactly as given."""
    found = audit.get("options")
    if not isinstance(found, dict):
        return []
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in found.items()
    ]


def gates(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every gate result as display text: ``name``, ``passed`` (True only when the document
    says ``true``: anything else reads as failed), ``message``, ``kind`` and ``noise`` (for a
    regression, whether the change is within or beyond the noise of the two intervals, or
    that the figure varies from run to run; ``None`` when it says nothing of noise).

    Empty when the run had no policy and no baseline (``gates`` absent or null)."""
    rows = []
    for result in _list(section(report, "gates"), "results"):
        if not isinstance(result, dict):
            continue
        noise = result.get("noise")
        if is_number(noise):
            noise = f"±{format_number(noise)}"
        elif isinstance(noise, str) and noise:
            noise = noise
        else:
            noise = "varies run to run" if result.get("noisy") is True else None
        rows.append(
            {
                "name": _text(result.get("name")),
                "passed": result.get("passed") is True,
                "message": _text(result.get("message")),
                "kind": format_cell(result.get("kind") or ""),
                "noise": noise,
            }
        )
    return rows


def gate_count(report: dict[str, Any]) -> str:
    """How many gates passed, e.g. ``3 of 5 gates passed``; empty when there are no gates."""
    found = gates(report)
    if not found:
        return ""
    passed = sum(g["passed"] for g in found)
    return f"{passed} of {len(found)} gate{'s' if len(found) != 1 else ''} passed"


def gate_sources(report: dict[str, Any]) -> Facts:
    """The policy and baseline files the gates came from, those that were given."""
    found = section(report, "gates")
    return [
        (label, format_cell(found[key]))
        for label, key in (("Policy", "policy"), ("Baseline", "baseline"))
        if found.get(key) not in (None, "")
    ]


def model_facts(report: dict[str, Any]) -> Facts:
    """What identifies the audited model, metadata included."""
    model = section(report, "model")
    facts = [
        ("Path", _text(model.get("path"))),
        ("Format", _text(model.get("format"))),
        ("Trust", _text(model.get("trust"))),
        ("SHA-256", _text(model.get("sha256"))),
        ("Size", format_bytes(model.get("size_bytes"))),
        ("Parameters", format_count(model.get("parameters"))),
        ("Trainable parameters", format_count(model.get("trainable_parameters"))),
    ]
    metadata = model.get("metadata")
    if isinstance(metadata, dict):
        facts += [(str(k).replace("_", " ").capitalize(), _text(v)) for k, v in metadata.items()]
    return facts


def layers(report: dict[str, Any]) -> list[dict[str, str]]:
    """The model's layers as display text: ``name``, ``type``, ``parameters``, ``output_shape``."""
    return [
        {
            "name": _text(layer.get("name")),
            "type": _text(layer.get("type")),
            "parameters": format_count(layer.get("parameters")),
            "output_shape": _text(layer.get("output_shape")),
        }
        for layer in _list(section(report, "model"), "layers")
        if isinstance(layer, dict)
    ]


def data_facts(report: dict[str, Any]) -> Facts:
    """What identifies the audited data and how it was read."""
    data = section(report, "data")
    return [
        ("Path", _text(data.get("path"))),
        ("SHA-256", _text(data.get("sha256"))),
        ("Size", format_bytes(data.get("size_bytes"))),
        ("Rows", format_count(data.get("rows"))),
        ("Columns", format_count(data.get("columns"))),
        ("Target", _text(data.get("target"))),
        ("Task", _text(data.get("task"))),
        ("Model output read as", _text(data.get("output"))),
        ("Features", _text(data.get("features"))),
    ]


def class_balance(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The target's class balance as ``class`` and ``count`` text and ``share`` (a fraction
    in [0, 1], or None), if the report has one."""
    rows = []
    for row in _list(section(report, "data"), "class_balance"):
        if isinstance(row, dict):
            share = row.get("share")
            valid = share is not None and is_number(share) and 0 <= share <= 1
            rows.append(
                {
                    "class": _text(row.get("class")),
                    "count": format_count(row.get("count")),
                    "share": share if valid else None,
                }
            )
    return rows


def _engine_facts(run: dict[str, Any]) -> Facts:
    """How the data were read (``run.engine``, reports from 2.0 on) and the peak memory."""
    facts: Facts = []
    engine = run.get("engine")
    for key, what in (("data", "Data"), ("train_data", "Training data")):
        found = engine.get(key) if isinstance(engine, dict) else None
        if not isinstance(found, dict):
            continue
        chunks, rows = found.get("chunks"), found.get("rows")
        read = (f"{format_count(rows)} rows in {format_count(chunks)} chunk(s) of up to "
                f"{format_count(found.get('rows_per_chunk'))} rows, memory budget "
                f"{format_bytes(found.get('memory_budget_bytes'))} ({_text(found.get('memory_budget_source'))})")
        kept = (f"a seeded sample of {format_count(found.get('feature_rows'))} rows (audits that read features "
                "say so)" if found.get("features_sampled") else "every row")
        facts += [(f"{what}: read", read), (f"{what}: features kept", kept)]
        binned = found.get("binned")
        if isinstance(binned, dict):
            facts.append((f"{what}: predictions kept", (
                f"tallies of every row, kept from row {format_count(binned.get('from_row'))} on instead of each row's "
                f"outputs, labels and groups (they passed a quarter of the budget), and each row of a seeded sample of "
                f"{format_count(binned.get('sample_rows'))}: metrics, fairness and overfitting read the tallies "
                f"(ROC-AUC and average precision binned in {format_count(binned.get('score_bins'))} score bins, with "
                "their bounds), privacy the file, the other audits the sample and say so")))
        if found.get("skipped_unreadable"):
            facts.append((f"{what}: left out", f"{format_count(found.get('skipped_unreadable'))} unreadable example(s) "
                                               "(--skip-unreadable)"))
    on_ray = engine.get("ray") if isinstance(engine, dict) and engine.get("name") == "ray" else None
    if isinstance(on_ray, dict):
        workers = on_ray.get("workers")
        facts.append(("Engine", f"Ray ({format_count(workers)} worker(s), {_text(on_ray.get('cluster'))}); "
                                f"{_text(on_ray.get('energy'))}"))
    if run.get("peak_rss_bytes") is not None:
        facts.append(("Peak memory", format_bytes(run.get("peak_rss_bytes"))))
    return facts


def run_facts(report: dict[str, Any]) -> Facts:
    """How the audit was run: command, start time, seed, device, platform and versions."""
    run = section(report, "run")
    versions = run.get("versions")
    facts = [
        ("Command", _text(run.get("command"))),
        ("Started", _text(run.get("started"))),
        ("Seed", _text(run.get("seed"))),
        ("Device", _text(run.get("device"))),
        ("Forward passes", _text(run.get("forward_passes"))),
        *_engine_facts(run),
        ("Platform", _text(run.get("platform"))),
    ]
    if isinstance(versions, dict):
        facts += [(f"Version: {name}", _text(v)) for name, v in versions.items()]
    return facts


def timings(report: dict[str, Any]) -> Facts:
    """Wall-clock time per stage, one row per audit, total last."""
    found = section(report, "run").get("timings")
    if not isinstance(found, dict):
        return []
    rows: Facts = []
    for stage, value in found.items():
        if isinstance(value, dict):
            rows += [(f"Audit: {name}", format_seconds(v)) for name, v in value.items()]
        elif stage != "total":
            label = {"pass": "Reading and inference (one pass)"}.get(str(stage), str(stage).replace("_", " ").capitalize())
            rows.append((label, format_seconds(value)))
    if "total" in found:
        rows.append(("Total", format_seconds(found["total"])))
    return rows


# --- The compliance report: model card, provenance of every input, limitations, sign-off ---


def card(report: dict[str, Any]) -> dict[str, Any] | None:
    """The model card as display text, or None without ``--card``: ``source``, ``sha256``,
    ``sections`` (``title`` and ``fields``: ``label``, ``value`` (text, or a list of text for
    list fields; ``None`` when empty) and ``required``) and ``gaps`` (``"Section: field"``)."""
    found = report.get("card")
    if not isinstance(found, dict):
        return None
    sections = []
    for item in _list(found, "sections"):
        if not isinstance(item, dict):
            continue
        fields = []
        for field in _list(item, "fields"):
            if not isinstance(field, dict):
                continue
            value = field.get("value")
            if isinstance(value, list):
                shown: Any = [format_cell(v) for v in value if v not in (None, "")] or None
            else:
                shown = None if value in (None, "") else format_cell(value)
            fields.append({"label": _text(field.get("label") or field.get("key")), "value": shown,
                           "required": field.get("required") is True})
        sections.append({"title": _text(item.get("title") or item.get("key")), "fields": fields})
    titles = {str(item.get("key")): str(item.get("title") or item.get("key"))
              for item in _list(found, "sections") if isinstance(item, dict)}
    gaps = [
        f"{format_cell(titles.get(str(g.get('section')), g.get('section') or ''))}: "
        f"{format_cell(g.get('label') or g.get('field') or '')}"
        for g in _list(found, "gaps") if isinstance(g, dict)
    ]
    return {"source": _text(found.get("source")), "sha256": _text(found.get("sha256")),
            "sections": sections, "gaps": gaps}


def card_field(report: dict[str, Any], section_word: str, *field_words: str) -> Any:
    """A card field's value, found by words in its section's and its own key (e.g. the
    review section's board), or None."""
    found = report.get("card")
    for item in _list(found if isinstance(found, dict) else {}, "sections"):
        if isinstance(item, dict) and section_word in str(item.get("key") or ""):
            for field in _list(item, "fields"):
                key = str(field.get("key") or "") if isinstance(field, dict) else ""
                if any(word in key for word in field_words) and field.get("value") not in (None, "", []):
                    return field["value"]
    return None


def input_files(report: dict[str, Any]) -> list[dict[str, str]]:
    """Every input the audit read, to verify later: ``role``, ``name``, ``sha256``, ``size``."""
    rows = []
    for role, key in (("Model", "model"), ("Audit data", "data"), ("Training data", "train_data"),
                      ("Training history", "history"), ("Model card", "card")):
        found = report.get(key)
        if not isinstance(found, dict):
            continue
        rows.append({
            "role": role,
            "name": _text(found.get("path") or found.get("source")),
            "sha256": _text(found.get("sha256")),
            "size": format_bytes(found.get("size_bytes")) if found.get("size_bytes") is not None else MISSING,
        })
    code = report.get("code")
    for found in code if isinstance(code, list) else []:  # the user's code the run imported
        if not isinstance(found, dict):
            continue
        rows.append({
            "role": f"Source of {_text(found.get('option'))}",
            "name": f"{_text(found.get('file'))} ({_text(found.get('spec'))})",
            "sha256": _text(found.get("sha256")),
            "size": format_bytes(found.get("size_bytes")) if found.get("size_bytes") is not None else MISSING,
        })
    return rows


def plugin_versions(report: dict[str, Any]) -> Facts:
    """Where each audit came from, ``(audit, "distribution version")``."""
    found = section(report, "run").get("plugins")
    return [(str(k), _text(v)) for k, v in found.items()] if isinstance(found, dict) else []


def _reason(audit: dict[str, Any]) -> str:
    text = str(audit.get("summary") or "").strip().rstrip(".")
    for prefix in ("skipped:", "not assessed:"):
        if text.lower().startswith(prefix):
            return text[len(prefix):].strip()
    return text


def limitations(report: dict[str, Any]) -> list[str]:
    """Limitations written from the report itself, most serious first: what could not be
    assessed (audits that broke, ran but could not judge, or were skipped), every error and
    warning finding, figures that are estimates (findings whose code says so), what the model
    card leaves out, and the scope of every figure."""
    broken, skipped, serious, estimates = [], [], [], []
    for name, audit in audits(report):
        title = audit_title(name, audit)
        status = audit.get("status")
        if status == "error":
            broken.append(f"{title} could not be completed: {_reason(audit)}.")
        elif status == "not assessed":
            broken.append(f"{title} ran but could not judge (not assessed): {_reason(audit)}.")
        elif status == "skipped":
            skipped.append(f"{title} was not assessed: {_reason(audit)}.")
        for f in findings(audit):
            if f["severity"] in ("error", "warning"):
                serious.append(f"{title}: {f['message']}")
            elif "estimat" in f["code"]:
                estimates.append(f"{title}: {f['message']}")
    shown = card(report)
    gaps = [f"The model card does not say: {'; '.join(shown['gaps'])}."] if shown and shown["gaps"] else []
    data = section(report, "data")
    scope = (f"Every figure describes this model on {_text(data.get('path'))} "
             f"({format_count(data.get('rows'))} rows): it may not hold for other data, other populations "
             "or another version of the model.")
    return [*broken, *skipped, *serious, *estimates, *gaps, scope]


def attention(report: dict[str, Any]) -> list[str]:
    """What needs a reviewer's attention, one line each, for the summary page; empty when
    nothing does."""
    lines = [f"Gate failed: {g['name']}." for g in gates(report) if not g["passed"]]
    for name, audit in audits(report):
        found = findings(audit, ("error", "warning"))
        status = audit.get("status")
        if status in ("error", "skipped", "not assessed"):
            lines.append(f"{audit_title(name, audit)}: {status_word(status)} ({_reason(audit)}).")
        elif found:
            errors = sum(f["severity"] == "error" for f in found)
            counts = ", ".join(part for part in (
                f"{errors} error{'s' if errors != 1 else ''}" if errors else "",
                f"{len(found) - errors} warning{'s' if len(found) - errors != 1 else ''}" if len(found) > errors else "",
            ) if part)
            lines.append(f"{audit_title(name, audit)}: {status_word(status)}, {counts} (see its findings).")
    shown = card(report)
    if shown and shown["gaps"]:
        lines.append(f"Model card: {len(shown['gaps'])} required field{'s' if len(shown['gaps']) != 1 else ''} "
                     "left empty (see Limitations).")
    return lines


def signoff(report: dict[str, Any]) -> dict[str, Any]:
    """The sign-off block: the board, reviewers and approval number the card names (empty
    text where it does not), and the decisions a reviewer chooses from."""
    reviewers = card_field(report, "review", "reviewer")
    if isinstance(reviewers, list):
        reviewers = ", ".join(format_cell(r) for r in reviewers)
    return {
        "board": _text(card_field(report, "review", "board")),
        "reviewers": _text(reviewers),
        "approval": _text(card_field(report, "review", "approval", "protocol", "reference")),
        "decisions": ["Approved", "Approved with conditions", "Not approved"],
    }
