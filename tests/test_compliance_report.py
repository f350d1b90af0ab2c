"""The compliance report a review board files: ``--card`` adds the model card, every input's
SHA-256, limitations written from the findings and a sign-off block, in the order the board
reads them, in HTML and as a Markdown model card whose front matter model-card tooling reads.
Checked against independent computations (hashlib, yaml) and in real headless Chromium."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from cli_helpers import assert_clean_input_error, invoke, read_report
from report_fixtures import INJECTED_ID, PWNED, compliance_report, hostile_compliance_report, sample_report
from test_html_in_browser import Dom

from auditor.ci.github import publish
from auditor.compliance.card import SCHEMA
from auditor.loading.bundled import demo_files
from auditor.report import view
from auditor.report.html import render_html
from auditor.report.markdown import render_markdown
from auditor.report.numbers import clean_strings


def toml_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value)


def complete_card(path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """A card with every field filled from the schema's own examples, less ``drop``
    ("section.field")."""
    lines = []
    for section in SCHEMA:
        lines.append(f"[[{section.key}]]" if section.repeated else f"[{section.key}]")
        for field in section.fields:
            if f"{section.key}.{field.key}" not in drop:
                lines.append(f"{field.key} = {toml_text(field.example)}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def filed(tmp_path_factory):
    """The demo audited as a review board asks: sensitive columns, history, training data,
    a complete card; html, md and json."""
    folder = tmp_path_factory.mktemp("compliance")
    card = complete_card(folder / "model-card.toml")
    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--history", demo.history, "--train-data", demo.train_data,
                    "--sensitive", "sex,race", "--card", card, "--out", folder / "out", "-q",
                    "--format", "html,md,json", "--skip", "explain,crossval")
    assert result.exit_code in (0, 1), result.output
    return folder, card, demo, read_report(folder / "out")


def test_every_input_can_be_verified_later_by_its_sha256(filed):
    folder, card, demo, report = filed
    assert report["model"]["sha256"] == sha256(demo.model)
    assert report["data"]["sha256"] == sha256(demo.data)
    assert report["train_data"]["sha256"] == sha256(demo.train_data)
    assert report["history"]["sha256"] == sha256(demo.history)
    assert report["history"]["size_bytes"] == demo.history.stat().st_size
    assert report["card"]["sha256"] == sha256(card)
    files = {f["role"]: f for f in view.input_files(report)}
    assert [files[r]["sha256"] for r in ("Model", "Audit data", "Training data", "Training history", "Model card")] == [
        sha256(demo.model), sha256(demo.data), sha256(demo.train_data), sha256(demo.history), sha256(card)]
    html = (folder / "out" / "report.html").read_text()
    for digest in (sha256(demo.model), sha256(demo.data), sha256(card)):
        assert digest in html


def test_provenance_names_where_every_audit_came_from_and_the_command(filed):
    _, _, _, report = filed
    plugins = report["run"]["plugins"]
    assert set(plugins) == set(report["audits"]) | set(report["measurements"])
    assert all(v.startswith("auditor ") for v in plugins.values())
    assert report["run"]["seed"] == 0 and report["run"]["command"].split()[0] == "audit"


def test_a_complete_card_has_no_gaps_and_is_shown_as_written(filed):
    folder, _, _, report = filed
    assert report["card"]["gaps"] == []
    html = (folder / "out" / "report.html").read_text()
    model = next(s for s in SCHEMA if s.key == "model")
    assert model.fields[0].example in html  # the card's model name
    assert "Missing from the card" not in html


def test_the_html_follows_the_boards_reading_order(filed):
    folder, _, _, _ = filed
    html = (folder / "out" / "report.html").read_text()
    order = ['id="summary-title"', 'id="card"', 'id="provenance"', 'class="card audit"', 'id="limitations"',
             'id="signoff"', "<footer>"]
    positions = [html.index(marker) for marker in order]
    assert positions == sorted(positions), list(zip(order, positions))
    assert "Needs a reviewer" in html


def test_limitations_are_written_from_the_findings(filed):
    _, _, _, report = filed
    limitations = view.limitations(report)
    fairness = report["audits"]["fairness"]
    serious = [f["message"] for f in fairness["findings"] if f["severity"] in ("error", "warning")]
    assert serious, "the demo model breaks the four-fifths rule: the fixture expects findings"
    for message in serious:
        assert any(message in line for line in limitations)
    assert limitations[-1].startswith("Every figure describes this model on test.csv.gz (15,060 rows)")
    assert any("estimat" in line for line in limitations)  # the carbon audit's power is estimated here


def test_the_markdown_is_a_model_card_with_front_matter_tooling_reads(filed):
    folder, _, _, report = filed
    text = (folder / "out" / "report.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    model = next(s for s in SCHEMA if s.key == "model")
    assert meta["model_name"] == model.fields[0].example
    assert meta["model_version"] == model.fields[1].example
    assert meta["auditor"]["model_sha256"] == report["model"]["sha256"]
    results = meta["model-index"][0]["results"]  # one per audit with headline figures, in the file's order
    headlines = [{k: m["value"] for k, m in audit["metrics"].items() if m["headline"] and m["value"] is not None}
                 for _, audit in sorted(report["audits"].items())]
    assert [{m["type"]: m["value"] for m in r["metrics"]} for r in results] == [h for h in headlines if h]
    assert any(set(r) == {"accuracy", "roc_auc", "f1"} for r in headlines)  # the metrics audit's, as before
    for heading in ("## Model card", "## Limitations", "## Provenance", "## Sign-off"):
        assert heading in text


def test_the_job_summary_is_short_with_no_front_matter(tmp_path):
    """The job summary is read at a glance: the verdict and the audits, not the model card
    (that is in report.md and report.html)."""
    summary = tmp_path / "summary.md"
    publish(compliance_report(), {"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("# Model audit") and "## Model card" not in text and "## Sign-off" not in text


def test_without_a_card_the_reports_stay_as_they_were():
    report = sample_report()
    markdown = render_markdown(report)
    assert markdown.startswith("# Model audit") and "## Sign-off" not in markdown
    html = render_html(report)
    assert 'id="signoff"' not in html and 'id="card"' not in html
    assert 'id="limitations"' in html and 'id="provenance"' in html


def test_missing_required_fields_are_gaps_never_invented(tmp_path):
    card = complete_card(tmp_path / "card.toml", drop=("training_data.consent_or_legal_basis", "review.board"))
    demo = demo_files()
    out = tmp_path / "out"
    result = invoke(demo.model, "--data", demo.data, "--card", card, "--out", out, "-q", "--format", "json,md,html",
                    "--audits", "metrics")
    assert result.exit_code == 0, result.output
    report = read_report(out)
    assert [(g["section"], g["field"]) for g in report["card"]["gaps"]] == [
        ("training_data", "consent_or_legal_basis"), ("review", "board")]
    shown = view.card(report)
    assert shown["gaps"] == ["Training data: Consent or legal basis", "Review: Board"]
    assert any("The model card does not say: Training data: Consent or legal basis; Review: Board" in line
               for line in view.limitations(report))
    assert view.signoff(report)["board"] == "—"
    assert "Not given" in (out / "report.html").read_text()


def test_a_card_that_does_not_parse_exits_2_before_any_work(tmp_path):
    bad = tmp_path / "card.toml"
    bad.write_text('[model]\nname = "x\n', encoding="utf-8")
    demo = demo_files()
    out = tmp_path / "out"
    result = invoke(demo.model, "--data", demo.data, "--card", bad, "--out", out)
    assert_clean_input_error(result, "card.toml")
    assert not out.exists()


def test_the_card_can_be_named_in_pyproject(tmp_path, monkeypatch):
    complete_card(tmp_path / "model-card.toml")
    (tmp_path / "pyproject.toml").write_text('[tool.auditor]\ncard = "model-card.toml"\n')
    monkeypatch.chdir(tmp_path)
    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--out", tmp_path / "out", "-q", "--format", "json",
                    "--audits", "metrics")
    assert result.exit_code == 0, result.output
    assert read_report(tmp_path / "out")["card"]["source"] == "model-card.toml"


def test_hostile_card_strings_stay_text_in_markdown_and_front_matter():
    report = hostile_compliance_report()
    text = render_markdown(report)
    front, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    meta = yaml.safe_load(front)  # the payload cannot end the front matter or add keys
    shown = clean_strings(report)  # control characters shown as symbols, as everywhere in the report
    assert meta["model_name"] == shown["card"]["sections"][0]["fields"][0]["value"]
    assert set(meta) == {"model_name", "model_version", "license", "library_name", "tags", "datasets",
                         "model-index", "auditor"}
    assert "<script>" not in body and "<img" not in body


def test_hostile_compliance_report_runs_nothing_in_a_real_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed (apt-get install chromium)"
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile_compliance_report()), encoding="utf-8")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Dom(done.stdout)
    assert dom.title != PWNED and dom.injected() == []
    ids = {attrs.get("id") for _, attrs in dom.elements}
    assert {"signoff", "card", "limitations", INJECTED_ID} & ids == {"signoff", "card", "limitations"}


def test_the_filed_pdf_holds_every_section_in_order(filed, tmp_path):
    """What the board files: report.pdf, printed by the tool itself, read back as text."""
    from pypdf import PdfReader

    folder, _, _, report = filed
    result = invoke("render", folder / "out" / "report.json", "--format", "pdf", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    reader = PdfReader(str(tmp_path / "report.pdf"))
    assert len(reader.pages) > 5
    text = unicodedata.normalize("NFKC", " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages))
    headings = ["Summary", "Needs a reviewer's attention", "Model card", "Provenance",
                *[view.audit_title(n, a) for n, a in view.audits(report)], "Limitations", "Sign-off"]
    position = 0
    for heading in headings:  # each section after the one before it
        position = text.find(heading, position)
        assert position >= 0, (heading, text[:300])
    board = next(f.example for s in SCHEMA if s.key == "review" for f in s.fields if f.key == "board")
    assert board in text and report["model"]["sha256"][:32] in text.replace(" ", "")


HOSTILE_NAMES = [
    "<script>document.title='PWNED'</script>",
    '"><img id="injected" src=x onerror="document.title=\'PWNED\'">',
    "<svg onload=\"document.title='PWNED'\">",
]


def test_a_csv_of_script_payloads_executes_nothing_in_the_browser(breast_cancer, tmp_path):
    """Column names and group values straight from a CSV, through the whole run, into
    report.html opened in real headless Chromium."""
    import pandas as pd

    frame = pd.read_csv(breast_cancer.folder / "test.csv")
    features = [c for c in frame.columns if c != "target"]
    renamed = {name: f"{HOSTILE_NAMES[i % 3]} #{i}" for i, name in enumerate(features)}
    frame = frame.rename(columns=renamed)
    groups = [HOSTILE_NAMES[0], HOSTILE_NAMES[1], HOSTILE_NAMES[2]]
    frame["<b onmouseover=alert(1)>group</b>"] = [groups[i % 3] for i in range(len(frame))]
    data = tmp_path / "hostile.csv"
    frame.to_csv(data, index=False)
    card = complete_card(tmp_path / "card.toml")
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--sensitive", "<b onmouseover=alert(1)>group</b>",
                    "--card", card, "--out", out, "-q", "--format", "html,md,json", "--skip", "explain,crossval")
    assert result.exit_code in (0, 1), result.output
    report = read_report(out)
    assert report["data"]["features"][0] == f"{HOSTILE_NAMES[0]} #0"  # the payloads reached the report
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Dom(done.stdout)
    assert dom.title != PWNED and dom.injected() == []
    assert not [tag for tag, attrs in dom.elements if any(k.startswith("on") for k in attrs)]
    assert "footer" in [tag for tag, _ in dom.elements]  # the whole page was parsed
