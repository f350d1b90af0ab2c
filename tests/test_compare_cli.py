"""``audit compare`` as a CI engineer reads it, and the small things around it.

What a user saw (issue 17, item 11): about 300 lines with the noisy energy figures first, no
``--changed-only``, a heading "report.json → report.json", no way to drop one column's rows
short of listing every metric; ``audit --help`` printed "Usage:" twice.

The two reports are real runs of the breast-cancer model: on the whole test set, and on its
first 120 rows (so the metrics move), each with a sensitive column ``site`` for the fairness
audit and the carbon measurement.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from cli_helpers import invoke

AUDITS = "metrics,fairness,carbon"


@pytest.fixture(scope="module")
def pair(tmp_path_factory, breast_cancer):
    folder = tmp_path_factory.mktemp("compare")
    frame = breast_cancer.frame.copy()
    frame["site"] = np.where(np.random.default_rng(0).random(len(frame)) < 0.5, "north", "south")
    reports = []
    for name, rows in (("main", frame), ("branch", frame.iloc[:120])):
        data = folder / f"{name}.csv"
        rows.to_csv(data, index=False)
        out = folder / name
        result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--sensitive", "site",
                        "--audits", AUDITS, "--format", "json", "--out", out, "-q")
        assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
        reports.append(out / "report.json")
    return reports


def compare(*args):
    result = invoke("compare", *args)
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return result.stdout


def markdown_rows(text: str) -> list[list[str]]:
    """The body rows of every Markdown table in ``text``, as cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| Audit |"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def values(path) -> dict[tuple[str, str], float | None]:
    """Every metric of a report.json, read directly: (audit, key) -> value."""
    report = json.loads(path.read_text())
    found = {}
    for section in ("audits", "measurements"):
        for audit, result in (report.get(section) or {}).items():
            for key, metric in result["metrics"].items():
                found[(audit, key)] = metric["value"]
    return found


def test_the_heading_names_both_reports_by_folder_and_model(pair):
    main, branch = pair
    text = compare(main, branch)
    first = " ".join(text.split("→")[0].split())
    assert first.startswith(f"{main.parent} (model, seed 0, ")
    assert "report.json → report.json" not in text
    markdown = compare("--markdown", main, branch)
    assert markdown.splitlines()[0].startswith("**") and "branch (model, seed 0," in markdown.splitlines()[0]


def test_the_audits_come_first_and_the_measured_figures_last_marked_as_varying(pair):
    main, branch = pair
    text = compare("--markdown", main, branch)
    rows = markdown_rows(text)
    audits = [r[0] for r in rows]
    assert audits[0] != "carbon" and "carbon" in audits
    first_carbon = audits.index("carbon")
    assert set(audits[first_carbon:]) == {"carbon"}  # nothing of an audit after the measured figures
    assert text.index("**Measured on each run (energy and time)") < text.index("| carbon |")
    assert all(r[-1] == "varies run to run" for r in rows if r[0] == "carbon" and r[1] != "status")
    terminal = compare(main, branch)
    assert terminal.index("Audits") < terminal.index("Measured on each run") < terminal.rindex("carbon")


def test_changed_only_shows_exactly_the_metrics_that_moved(pair):
    main, branch = pair
    before, after = values(main), values(branch)
    moved = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert moved and len(moved) < len(before)  # some metrics moved, some did not
    text = compare("--markdown", "--changed-only", main, branch)
    rows = markdown_rows(text)
    assert all(r[5] != "same" for r in rows)
    shown = {r[0] for r in rows if r[1] != "status"}
    assert shown <= {audit for audit, _ in moved}
    metric_rows = [r for r in rows if r[1] != "status"]
    assert len(metric_rows) == len(moved)
    hidden = re.search(r"; (\d+) unchanged not shown \(--changed-only\)", text)
    everything = markdown_rows(compare("--markdown", main, branch))
    assert hidden and int(hidden[1]) == len(everything) - len(rows)


def test_ignore_drops_a_columns_rows_by_pattern_and_says_how_many(pair):
    main, branch = pair
    site_keys = [key for audit, key in values(main) if audit == "fairness" and "site" in key.split(".")]
    assert site_keys
    everything = markdown_rows(compare("--markdown", main, branch))
    text = compare("--markdown", "--ignore", "site", "--ignore", "carbon", main, branch)
    rows = markdown_rows(text)
    assert not any(r[0] == "carbon" for r in rows)
    assert "Measured on each run" not in text
    labels = json.loads(main.read_text())["audits"]["fairness"]["metrics"]
    dropped = {labels[k]["label"] for k in site_keys}
    assert not any(r[0] == "fairness" and r[1] in dropped for r in rows)
    assert any(r[0] == "fairness" and r[1] == "status" for r in rows)  # the audit itself stays
    ignored = re.search(r"; (\d+) ignored \(--ignore\)", text)
    assert ignored and int(ignored[1]) == len(everything) - len(rows)
    glob = markdown_rows(compare("--markdown", "--ignore", "*_ratio", main, branch))
    assert not any("ratio" in r[1].lower() for r in glob if r[0] == "fairness") and len(glob) < len(everything)


def test_compare_help_lists_the_new_options():
    result = invoke("compare", "--help")
    assert result.exit_code == 0
    for option in ("--changed-only", "--ignore", "--markdown"):
        assert option in result.stdout


def test_help_says_usage_once():
    result = invoke("--help")
    assert result.exit_code == 0
    assert result.stdout.count("Usage:") == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage: audit MODEL --data PATH [OPTIONS]"
    assert lines[1].strip() == "audit COMMAND [ARGS]..."
