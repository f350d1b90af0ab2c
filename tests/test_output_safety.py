"""Names from files cannot command a terminal, a CI runner or a pull request.

A model file, a column or a group value may hold a newline, an escape sequence, a GitHub
Actions command (``::warning ...``), an ``@mention``, a bare link or an ``:emoji:`` shortcode.
Through a real run: nothing on stdout or stderr carries a control character, no line starts
with ``::`` (but auditor's own annotations under GitHub Actions), the Markdown report and the
job summary show those names as inert text, and a model called ``...pt`` still writes its
reports inside ``reports/``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from cli_helpers import invoke, read_report

from auditor.report.markdown import escape
from auditor.report.numbers import folder_name, log_safe, one_line

#: In a file name: no "/" possible, so the link is a www. one.
MODEL_NAME = "evil\n::warning file=a.py::pwned\x1b[31m @octocat www.evil.example :rocket:\r"
COLUMN = "grp ::warning::col @octocat :rocket: \x1b]0;title\x07"
GROUPS = ["a\n::error::b", "@someone", "https://evil.example/x", ":fire:", "\x1b[2Jclear", "plain"]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def assert_inert(text: str, allowed: str | None = None) -> None:
    """No control character, and no line that a CI runner reads as a command (``::`` first,
    after leading spaces), unless it matches ``allowed``."""
    assert not CONTROL.search(text), repr(CONTROL.search(text))
    for line in text.splitlines():
        if line.lstrip().startswith("::"):
            assert allowed is not None and re.match(allowed, line), line


@pytest.fixture
def hostile(breast_cancer, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The breast cancer model under a hostile file name, and its data with a hostile
    sensitive column; the working folder is tmp_path (reports go to ./reports/)."""
    monkeypatch.chdir(tmp_path)
    model = tmp_path / f"{MODEL_NAME}.pt"
    shutil.copy(breast_cancer.folder / "model.pt", model)
    frame = breast_cancer.frame.copy()
    frame[COLUMN] = [GROUPS[i % len(GROUPS)] for i in range(len(frame))]
    data = tmp_path / "hostile.csv"
    frame.to_csv(data, index=False)
    return model, data


def _run(model: Path, data: Path, *extra: object):
    return invoke(model, "--data", data, "--sensitive", COLUMN, "--format", "md,json",
                  "--audits", "metrics,fairness", "-o", "fairness.min_group_size=5",
                  "-o", "fairness.n_resamples=100", *extra)


def test_hostile_names_reach_the_terminal_as_one_inert_line_each(hostile, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = _run(*hostile)
    assert result.exit_code in (0, 1), result.output
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "evil␊:\u200b:warning" in result.stdout  # the name is shown, its newline made visible
    folders = [p for p in (tmp_path / "reports").iterdir()]
    assert len(folders) == 1 and not CONTROL.search(folders[0].name) and "\n" not in folders[0].name
    assert (folders[0] / "report.json").is_file()


def test_under_github_actions_only_auditor_s_own_annotations_start_a_line_with_two_colons(hostile, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    policy = tmp_path / "audit.toml"
    policy.write_text('[gates]\n"metrics.roc_auc" = ">= 1.5"\n"fairness.findings" = "no warning"\n')
    result = _run(*hostile, "--policy", policy, "-q")
    assert result.exit_code == 1, result.output
    assert_inert(result.stdout, allowed=r"::error title=auditor ")
    assert_inert(result.stderr)
    assert any(line.startswith("::error title=auditor ") for line in result.stdout.splitlines())
    # The job summary is short (not every hostile name reaches it); what does is inert.
    assert_markdown_inert(summary.read_text(encoding="utf-8"), every_name=False)


def assert_markdown_inert(markdown: str, every_name: bool = True) -> None:
    assert not CONTROL.search(markdown)
    for live in ("@octocat", "@someone", "https://", "www.evil", ":rocket:", ":fire:"):
        assert live not in markdown, live
    escapes = ("@&#8203;octocat", "@&#8203;someone", "https:&#8203;//evil.example", "www&#8203;.evil.example",
               ":&#8203;rocket:", ":&#8203;fire:")
    for escaped in escapes if every_name else escapes[:1]:
        assert escaped in markdown, escaped
    assert not any(line.lstrip().startswith("::") for line in markdown.splitlines())


def test_the_markdown_report_escapes_mentions_links_and_shortcodes(hostile, tmp_path):
    result = _run(*hostile, "-q", "--out", tmp_path / "out")
    assert result.exit_code in (0, 1), result.output
    assert_markdown_inert((tmp_path / "out" / "report.md").read_text(encoding="utf-8"))
    groups = {str(c) for t in read_report(tmp_path / "out")["audits"]["fairness"]["tables"] for r in t["rows"] for c in r}
    assert any("@someone" in g for g in groups)  # report.json keeps the data as it is


def test_an_error_naming_a_hostile_file_is_one_inert_line(tmp_path, breast_cancer):
    model = tmp_path / f"{MODEL_NAME}.pt"
    model.write_text("a,b\n1,2\n")  # a CSV, not a model
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert_inert(result.stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, folder", [("...pt", "model"), ("..pt", "model"), (".pt", "pt"), (" .x.pt", "x")])
def test_a_model_named_with_dots_writes_its_reports_inside_reports(breast_cancer, tmp_path, monkeypatch, name, folder):
    monkeypatch.chdir(tmp_path)
    shutil.copy(breast_cancer.folder / "model.pt", tmp_path / name)
    result = invoke(tmp_path / name, "--data", breast_cancer.folder / "test.csv", "-q", "--format", "json",
                    "--audits", "metrics")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / folder / "report.json").is_file()
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "reports" / "report.json").exists()
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [folder]


def test_compare_shows_hostile_names_inert(breast_cancer, tmp_path):
    out = tmp_path / "base"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out,
                    "-q", "--format", "json", "--audits", "metrics")
    assert result.exit_code == 0, result.output
    report = read_report(out)
    metrics = report["audits"]["metrics"]["metrics"]
    metrics["roc_auc"]["label"] = "AUC\n::warning::x @octocat :rocket: https://evil.example"
    report["audits"]["x\n::error::y"] = report["audits"]["metrics"]
    after = tmp_path / f"after{MODEL_NAME}.json"
    after.write_text(json.dumps(report))
    table = invoke("compare", out / "report.json", after)
    assert table.exit_code == 0, table.output
    assert_inert(table.stdout)
    markdown = invoke("compare", "--markdown", out / "report.json", after)
    assert markdown.exit_code == 0, markdown.output
    assert_inert(markdown.stdout)
    assert "@&#8203;octocat" in markdown.stdout and ":&#8203;rocket:" in markdown.stdout
    assert "https:&#8203;//evil.example" in markdown.stdout


# --- the helpers, one by one --------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("a\nb", "a␊b"),
    ("a\r\n::warning::x", "a␍␊::warning::x"),
    ("tab\there", "tab here"),
    ("\x1b[31mred", "␛[31mred"),
    ("line\u2028sep", "line\ufffdsep"),
    ("bidi\u202eevil", "bidi\ufffdevil"),
])
def test_one_line_makes_control_characters_and_newlines_visible(text, expected):
    assert one_line(text) == expected
    assert len(one_line(text).splitlines()) == 1


def test_log_safe_splits_double_colons_invisibly():
    assert log_safe("x\n::warning::y") == "x␊:\u200b:warning:\u200b:y"
    assert "::" not in log_safe(":::: a :: b")


@pytest.mark.parametrize("stem, expected", [
    ("model", "model"), ("..", "model"), (".", "model"), ("", "model"), (".pt", "pt"), ("...x", "x"),
    ("a\nb", "a_b"), ("a/b\\c", "a_b_c"), ("  spaced  ", "spaced"), ("\x1b[31m", "_[31m"),
])
def test_folder_name_is_never_a_parent_the_current_folder_or_hidden(stem, expected):
    assert folder_name(stem) == expected


@pytest.mark.parametrize("text, expected", [
    ("@octocat", "@&#8203;octocat"),
    ("mail a@b.example", "mail a@&#8203;b.example"),
    ("see https://x.example/a", "see https:&#8203;//x.example/a"),
    ("www.x.example", "www&#8203;.x.example"),
    (":rocket: and :+1:", ":&#8203;rocket: and :&#8203;+1:"),
    (":white_check_mark:", ":&#8203;white\\_check\\_mark:"),
    ("issue #12", "issue #&#8203;12"),
    ("17:00:00", "17:00:00"),
    ("ratio 0.8", "ratio 0.8"),
])
def test_markdown_escape_breaks_what_github_would_make_live(text, expected):
    assert escape(text) == expected
