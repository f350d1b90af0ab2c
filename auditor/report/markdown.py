"""report.md: GitHub-flavoured Markdown sized for a pull-request comment or a job summary.

Every string from the report is escaped so that it reads as literal text: it cannot end a
table cell, start a heading or a list, emphasise, link, or inject HTML. Charts are not
drawn here; the text says they are in report.html.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auditor.report import view
from auditor.report.charts import KINDS
from auditor.report.document import Report, as_document
from auditor.report.numbers import (
    MISSING,
    clean_strings,
    format_cell,
    format_ci,
    format_metric,
    format_number,
    format_share,
)

_STATUS_EMOJI: dict[str, str] = {
    "pass": "✅",
    "warn": "⚠️",
    "fail": "❌",
    "not assessed": "❔",
    "skipped": "⏭️",
    "error": "🛑",
}
_SEVERITY_EMOJI: dict[str, str] = {"error": "🛑", "warning": "⚠️", "info": "ℹ️"}

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
# What opens a block at the start of a line: heading, list item, thematic break, setext
# underline (escaped whatever follows), and an ordered-list number (only before a space).
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d+(?=[.)](?:\s|$)))")
# Where GitHub makes escaped text live again (it links the rendered text, so a backslash
# does not help): after "@" of a mention or an e-mail address, the ":" of "https://", the
# "www" of "www.", the "#" of "#123", the opening ":" of a ":shortcode:" (a name with a letter,
# its "_" already backslash-escaped, or one of the few all-digit ones: a time 17:00:00 stays
# as it is). A zero-width space goes after each.
_ZWSP = "&#8203;"
_LIVE = re.compile(r"@(?=[\w-])|:(?=//)|(?<![\w.])www(?=\.)|#(?=\d)|:(?=(?:[\w+\\-]*[a-z][\w+\\-]*|100|1234|[+-]1):)", re.IGNORECASE)


def _escape_block_start(match: re.Match[str]) -> str:
    marker = match.group()
    return f"\\{marker}" if not marker.isdigit() else f"{marker}\\"


def escape(text: Any) -> str:
    """``text`` as literal Markdown inline text, on one line.

    HTML-significant characters become entities (so ``&amp;`` in data shows as ``&amp;``),
    Markdown punctuation is backslash-escaped, and a leading ``#``, ``-``, ``1.``... is
    escaped so the text cannot open a block. What GitHub turns into something live after
    Markdown (an ``@mention`` that notifies someone, a bare ``https://`` or ``www.`` link, an
    e-mail address, an ``#123`` issue reference, an ``:emoji:`` shortcode) gets a zero-width
    space (``&#8203;``) that breaks the pattern and shows nothing.
    """
    value = _LINE_BREAKS.sub(" ", str(text)).strip()
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _PUNCTUATION.sub(r"\\\1", value)
    value = _BLOCK_START.sub(_escape_block_start, value)
    return _LIVE.sub(lambda m: m.group() + _ZWSP, value)


def _status(status: Any) -> str:
    emoji = _STATUS_EMOJI.get(str(status))
    word = escape(view.status_word(status))
    return f"{emoji} {word}" if emoji else word


def _table(columns: list[str], rows: list[list[str]], right: list[bool] | None = None) -> list[str]:
    """A GFM table of already escaped cells; ``right`` marks right-aligned columns."""
    align = right or [False] * len(columns)
    return [
        "| " + " | ".join(c or " " for c in columns) + " |",
        "|" + "|".join("---:" if r else "---" for r in align) + "|",
        *("| " + " | ".join(c or " " for c in row) + " |" for row in rows),
    ]


def _summary(report: dict[str, Any]) -> list[str]:
    rows = []
    for name, audit in view.audits(report):
        headline = "<br>".join(
            f"{escape(label)} {format_metric(m)}" for label, m in view.headline_metrics(audit)
        )
        rows.append(
            [
                escape(view.audit_title(name, audit)),
                _status(audit.get("status")),
                headline or MISSING,
                escape(view.summary(audit)),
            ]
        )
    return _table(["Audit", "Status", "Headline (95% CI)", "Summary"], rows)


def _gates(report: dict[str, Any]) -> list[str]:
    """The gates table (with a noise column when any regression has a noise level), or nothing."""
    gates = view.gates(report)
    if not gates:
        return []
    noise = any(g["noise"] for g in gates)
    rows = [
        [escape(g["name"]), _status("pass" if g["passed"] else "fail"), escape(g["message"])]
        + ([escape(g["noise"] or MISSING)] if noise else [])
        for g in gates
    ]
    sources = "".join(f" · {key} {escape(value)}" for key, value in view.gate_sources(report))
    return [
        f"**Gates** · {escape(view.gate_count(report))}{sources}",
        "",
        *_table(["Gate", "Result", "Message"] + (["Noise"] if noise else []), rows,
                [False, False, False] + ([False] if noise else [])),
        "",
    ]


def _metrics(audit: dict[str, Any]) -> list[str]:
    methods = view.ci_methods(audit)
    by_row = len(methods) > 1
    columns = ["Metric", "Value", "95% CI"] + (["CI method"] if by_row else [])
    rows = []
    for label, metric in view.metrics(audit):
        row = [escape(label), format_number(metric.get("value")), format_ci(metric.get("ci"))]
        if by_row:
            row.append(escape(metric.get("ci_method") or MISSING) if metric.get("ci") else MISSING)
        rows.append(row)
    lines = _table(columns, rows, [False, True, True] + ([False] if by_row else []))
    if len(methods) == 1:
        lines += ["", f"95% confidence intervals by {escape(methods[0])}."]
    return lines


def _audit(name: str, audit: dict[str, Any]) -> list[str]:
    lines = [f"## {escape(view.audit_title(name, audit))} — {_status(audit.get('status'))}", ""]
    summary = view.summary(audit)
    if summary:
        lines += [escape(summary), ""]
    if view.metrics(audit):
        lines += [*_metrics(audit), ""]
    findings = view.findings(audit)
    if findings:
        lines += ["**Findings**", ""]
        for f in findings:
            severity = f"**{escape(f['severity'].capitalize())}:**" if f["severity"] else ""
            code = f"({escape(f['code'])})" if f["code"] else ""
            parts = [_SEVERITY_EMOJI.get(f["severity"], ""), severity, escape(f["message"]), code]
            lines.append("- " + " ".join(part for part in parts if part))
        lines.append("")
    for table in view.tables(audit):
        if table["title"]:
            lines += [f"**{escape(table['title'])}**", ""]
        if table["caption"]:
            lines += [escape(table["caption"]), ""]
        rows = [[escape(format_cell(v)) for v in row] for row in table["rows"]]
        lines += [*_table([escape(c) for c in table["columns"]], rows, table["numeric"]), ""]
    notes = view.notes(audit)
    if notes:
        lines += ["**Notes**", "", *(f"- {escape(n)}" for n in notes), ""]
    charts = view.charts(audit)
    if charts:
        titles = ", ".join(escape(format_cell(c.get("title") or c.get("name") or "untitled")) for c in charts)
        plural = "s" if len(charts) > 1 else ""
        lines += [f"_{len(charts)} chart{plural} ({titles}) in report.html._", ""]
    for chart in charts:  # a kind only a plugin (or nothing) draws: say what it shows
        kind = chart.get("kind")
        if kind not in KINDS:
            text = format_cell(chart.get("caption") or chart.get("title") or chart.get("name") or "A chart")
            lines += [f"{escape(text)} (chart: {escape(format_cell(kind))}, see report.html)", ""]
    return lines


def _facts(title: str, facts: view.Facts) -> list[str]:
    return [f"**{title}**", "", *_table(["", ""], [[escape(k), escape(v)] for k, v in facts]), ""]


def _provenance(report: dict[str, Any]) -> list[str]:
    lines = ["## Provenance", "", "<details><summary>Model, data and run</summary>", ""]
    lines += _facts("Model", view.model_facts(report))
    data = view.data_facts(report)
    balance = view.class_balance(report)
    if balance:
        shares = ", ".join(f"{r['class']} {r['count']} ({format_share(r['share'])})" for r in balance)
        data.append(("Class balance", shares))
    lines += _facts("Data", data)
    timings = view.timings(report)
    total = [value for stage, value in timings if stage == "Total"]
    lines += _facts("Run", view.run_facts(report) + [("Total time", v) for v in total]
                    + [(f"Audit {name} from", version) for name, version in view.plugin_versions(report)])
    if view.card(report) is not None:  # the model card flavour: every input, to verify later
        lines += ["**Input files**", "", *_table(["Role", "File", "SHA-256", "Size"], [
            [escape(f["role"]), escape(f["name"]), escape(f["sha256"]), escape(f["size"])]
            for f in view.input_files(report)
        ], right=[False, False, False, True]), ""]
    return lines + ["</details>", ""]


def _headline_results(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """An audit's headline metrics with a numeric value, as model-index metrics."""
    found = audit.get("metrics")
    return [
        {"type": str(key), "name": str(metric.get("label") or key), "value": metric.get("value")}
        for key, metric in (found.items() if isinstance(found, dict) else ())
        if isinstance(metric, dict) and metric.get("headline") and view.is_number(metric.get("value"))
    ]


def _front_matter(report: dict[str, Any]) -> list[str]:
    """Model-card metadata as YAML front matter, in the Hugging Face model card's keys plus an
    ``auditor`` block. ``model-index`` holds one result per audit with headline metrics (those
    it flags, with a number), in the order the audits ran; the run's measurements (energy,
    time), which vary from run to run, are left out."""
    import yaml

    data, model = view.section(report, "data"), view.section(report, "model")
    name = view.card_field(report, "model", "name") or view.model_name(report)
    meta: dict[str, Any] = {"model_name": str(name)}
    for key, words in (("model_version", ("version",)), ("license", ("license",))):
        value = view.card_field(report, "model", *words)
        if value:
            meta[key] = value if isinstance(value, str) else ", ".join(map(str, value))
    meta.update({"library_name": "pytorch", "tags": ["model-audit", "auditor"],
                 "datasets": [str(data.get("path") or "")]})
    task = "tabular-regression" if data.get("task") == "regression" else "tabular-classification"
    results = [
        {"task": {"type": task}, "dataset": {"name": str(data.get("path") or ""), "type": "tabular"},
         "metrics": metrics}
        for metrics in (_headline_results(audit) for _, audit in view.audits(report, measurements=False))
        if metrics
    ]
    if results:
        meta["model-index"] = [{"name": str(name), "results": results}]
    meta["auditor"] = {
        "verdict": str(report.get("verdict") or ""),
        "report_schema": str(report.get("schema_version") or ""),
        "model_sha256": str(model.get("sha256") or ""),
        "data_sha256": str(data.get("sha256") or ""),
        "card": str(view.section(report, "card").get("source") or ""),
    }
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return ["---", *text.rstrip("\n").split("\n"), "---", ""]


def _card(report: dict[str, Any]) -> list[str]:
    shown = view.card(report)
    if shown is None:
        return []
    lines = ["## Model card", "", f"From {escape(shown['source'])} · SHA-256 {escape(shown['sha256'])}", ""]
    if shown["gaps"]:
        lines += [f"> **Missing from the card:** {escape('; '.join(shown['gaps']))}.", ""]
    for sec in shown["sections"]:
        rows = []
        for f in sec["fields"]:
            value = f["value"]
            if value is None:
                text = "**Not given**" if f["required"] else MISSING
            elif isinstance(value, list):
                text = "<br>".join(escape(v) for v in value)
            else:
                text = escape(value)
            rows.append([escape(f["label"]), text])
        lines += [f"**{escape(sec['title'])}**", "", *_table(["", ""], rows), ""]
    return lines


def _limitations(report: dict[str, Any]) -> list[str]:
    return ["## Limitations", "", *[f"- {escape(line)}" for line in view.limitations(report)], ""]


def _signoff(report: dict[str, Any]) -> list[str]:
    found = view.signoff(report)
    rows = [["Review board", escape(found["board"])], ["Reviewers named in the card", escape(found["reviewers"])],
            ["Protocol or approval number", escape(found["approval"])], ["Reviewer", " "],
            ["Decision", " · ".join(f"☐ {d}" for d in found["decisions"])], ["Conditions or comments", " "],
            ["Date", " "], ["Signature", " "]]
    return ["## Sign-off", "", *_table(["", ""], rows), ""]


def render_markdown(source: Report | Mapping[str, Any], *, front_matter: bool = True) -> str:
    """The report as GitHub-flavoured Markdown. With a model card (``--card``) it is a model
    card: YAML front matter (unless ``front_matter`` is false, as in a job summary), the card,
    then the audits, limitations and a sign-off block."""
    report: dict[str, Any] = clean_strings(as_document(source))
    compliance = view.card(report) is not None
    lines = [
        *(_front_matter(report) if compliance and front_matter else []),
        f"# Model audit: {_status(report.get('verdict'))}",
        "",
        f"Model **{escape(view.model_name(report))}** on **{escape(view.data_path(report))}** · "
        f"{escape(view.status_counts(report))} · {escape(view.tool_name(report))}",
        "",
        *_summary(report),
        "",
        *_gates(report),
    ]
    lines += _card(report)
    for name, audit in view.audits(report):
        lines += _audit(name, audit)
    if compliance:
        lines += _limitations(report)
    lines += _provenance(report)
    if compliance:
        lines += _signoff(report)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_step_summary(source: Report | Mapping[str, Any], written: list[str] | tuple[str, ...] = ()) -> str:
    """A short Markdown document for ``$GITHUB_STEP_SUMMARY``: the run's one verdict and exit
    code, the table of audits, the gates when any failed, what failed (failed gates, error
    findings, audits that broke) and what could not be judged, then where the full report is
    (``written``: the report files, as the command wrote them; upload the folder as an
    artifact). Never the whole report: a job summary is read at a glance."""
    report: dict[str, Any] = clean_strings(as_document(source))
    shown = view.outcome(report)
    code = shown["exit_code"]
    lines = [
        f"# Model audit: {_status(shown['verdict'])}" + (f" · exit code {code}" if code is not None else ""),
        "",
        f"Model **{escape(view.model_name(report))}** on **{escape(view.data_path(report))}** · "
        f"{escape(view.status_counts(report))} · {escape(view.tool_name(report))}",
        "",
        *_summary(report),
        "",
        *_gates(report),
    ]
    failures = [f"Gate failed: {escape(g['name'])}" for g in view.gates(report) if not g["passed"]]
    unjudged = []
    for name, audit in view.audits(report):
        title = escape(view.audit_title(name, audit))
        status = audit.get("status")
        if status == "error":
            failures.append(f"{title} broke: {escape(view.summary(audit))}")
        elif status == "not assessed":
            unjudged.append(f"{title}: {escape(view.summary(audit))}")
        if status != "error":
            failures += [f"{title}: {escape(f['message'])}" for f in view.findings(audit, ("error",))]
    if failures:
        lines += ["### Failures", "", *(f"- {line}" for line in failures), ""]
    if unjudged:
        lines += ["### Not assessed (ran, but could not judge)", "", *(f"- {line}" for line in unjudged), ""]
    warnings = sum(len(view.findings(audit, ("warning",))) for _, audit in view.audits(report))
    if warnings:
        lines += [f"{warnings} warning finding{'s' if warnings != 1 else ''}: see the full report.", ""]
    if written:
        html = [w for w in written if w.endswith(".html")]
        main = html[0] if html else written[0]
        others = [w.replace("\\", "/").rsplit("/", 1)[-1] for w in written if w != main]
        also = f" (and {', '.join(f'`{escape(o)}`' for o in others)} beside it)" if others else ""
        lines += [f"Full report: `{escape(main)}`{also}; upload its folder as a workflow artifact "
                  "to read it from the run's page.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
