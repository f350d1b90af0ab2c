"""The report in the terminal: one table of every audit, the gates, then the findings that need action.

Strings from the report are put on screen as :class:`rich.text.Text`, never parsed as rich
markup (a column called ``[bold]x[/]`` prints literally), and their control characters,
newlines included, are made visible first (:func:`auditor.report.numbers.log_safe`), so data
cannot send escape sequences to the terminal, and no name or message starts a line of its
own: in a CI log a line ``::warning ...`` is a command to the runner, so ``::`` in data is
split by a zero-width space too. Status is shown by a word and a symbol, colour only adds to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditor.report import view
from auditor.report.document import Report, as_document
from auditor.report.numbers import MISSING, clean_strings, format_metric, log_safe

_STATUS_STYLES: dict[str, str] = {
    "pass": "bold green",
    "warn": "bold yellow",
    "fail": "bold red",
    "not assessed": "bold cyan",
    "skipped": "dim",
    "error": "bold magenta",
}
_SEVERITY_STYLES: dict[str, str] = {"error": "bold red", "warning": "bold yellow"}


def _status(status: Any) -> Text:
    return Text(view.status_label(status), style=_STATUS_STYLES.get(str(status), ""))


def _headlines(audit: dict[str, Any]) -> Text:
    lines = [
        Text.assemble((label, "cyan"), " ", format_metric(metric))
        for label, metric in view.headline_metrics(audit)
    ]
    return Text("\n").join(lines) if lines else Text(MISSING, style="dim")


def _print_gates(report: dict[str, Any], console: Console) -> None:
    """The gates table, failed gates in bold red, when the run had gates."""
    gates = view.gates(report)
    if not gates:
        return
    noise = any(g["noise"] for g in gates)
    failed = not all(g["passed"] for g in gates)
    console.print()
    console.print(Text(view.gate_count(report), style="bold red" if failed else "bold green"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
    table.add_column("Gate", ratio=2, overflow="fold")
    table.add_column("Result", min_width=9, max_width=12, overflow="fold")
    table.add_column("Message", ratio=4, overflow="fold")
    if noise:
        table.add_column("Noise", max_width=14, overflow="fold")
    for gate in gates:
        status = "pass" if gate["passed"] else "fail"
        name = Text(gate["name"], style="" if gate["passed"] else "bold red")
        row = [name, _status(status), Text(gate["message"])]
        if noise:
            row.append(Text(gate["noise"] or MISSING, style="dim" if not gate["noise"] else ""))
        table.add_row(*row)
    console.print(table)


def render_terminal(source: Report | Mapping[str, Any], console: Console) -> None:
    """Print the audit summary table and the warning and error findings to ``console``."""
    report: dict[str, Any] = clean_strings(as_document(source), log_safe)
    console.print(
        Text.assemble(
            ("Verdict ", "bold"),
            _status(report.get("verdict")),
            ("  ", ""),
            (view.model_name(report), "bold"),
            " on ",
            (view.data_path(report), "bold"),
            " · ",
            view.status_counts(report),
        )
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
    table.add_column("Audit", style="bold", ratio=2, overflow="fold")
    table.add_column("Status", min_width=9, max_width=14, overflow="fold")
    table.add_column("Headline (95% CI)", ratio=3, overflow="fold")
    table.add_column("Summary", ratio=3, overflow="fold")
    for name, audit in view.audits(report):
        table.add_row(
            Text(view.audit_title(name, audit)),
            _status(audit.get("status")),
            _headlines(audit),
            Text(view.summary(audit)),
        )
    console.print(table)
    _print_gates(report, console)
    serious = Table.grid(padding=(0, 1))
    serious.add_column(no_wrap=True)
    serious.add_column(overflow="fold")
    for name, audit in view.audits(report):
        for finding in view.findings(audit, ("error", "warning")):
            severity = finding["severity"]
            serious.add_row(
                Text(severity.upper(), style=_SEVERITY_STYLES.get(severity, "")),
                Text.assemble(
                    (view.audit_title(name, audit), "bold"),
                    ": ",
                    finding["message"],
                    (f" ({finding['code']})", "dim"),
                ),
            )
    if serious.row_count:
        console.print()
        console.print(Text("Findings", style="bold"))
        console.print(serious)
