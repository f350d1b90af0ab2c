"""Third-party audits arrive through the same entry-point group as the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from auditor.run.registry import discover
from cli_helpers import install_plugin, invoke, read_report

PLUGINS = {
    "exploding": '''
        from auditor.contract.plugin import Audit

        class Exploding(Audit):
            name = "exploding"
            title = "Always raises"
            description = "An audit with a bug."

            def run(self, ctx, options):
                raise ZeroDivisionError("the plugin divided by zero")
    ''',
    "needs_groups": '''
        from auditor.contract.plugin import Audit

        class NeedsGroups(Audit):
            name = "needs_groups"
            title = "Needs sensitive columns"
            description = "Skipped when no sensitive column is named."
            needs = ("target", "sensitive")

            def run(self, ctx, options):
                raise AssertionError("must not be called")
    ''',
    "badly_named": '''
        class BadlyNamed:
            name = "Bad Name!"
            title = "x"
            description = "y"
            def run(self, ctx, options):
                return None
    ''',
}


def install(site: Path, module: str, cls: str) -> None:
    install_plugin(site, module, cls, PLUGINS[module])


def test_an_audit_that_raises_is_isolated(tmp_path, site, breast_cancer):
    install(site, "exploding", "Exploding")
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, "-q")
    assert result.exit_code == 3
    report = read_report(out)
    assert report["audits"]["exploding"]["status"] == "error"
    assert "ZeroDivisionError: the plugin divided by zero" in report["audits"]["exploding"]["summary"]
    assert report["audits"]["metrics"]["status"] in ("pass", "warn")
    assert report["verdict"] == "error"
    assert (out / "report.html").is_file()


def test_an_audit_whose_needs_are_missing_is_skipped_with_the_reason(tmp_path, site, breast_cancer):
    install(site, "needs_groups", "NeedsGroups")
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    skipped = read_report(out)["audits"]["needs_groups"]
    assert skipped["status"] == "skipped"
    assert "needs sensitive columns (--sensitive)" in skipped["summary"]


def test_a_plugin_breaking_the_contract_is_named_in_the_report_and_the_others_run(tmp_path, site, breast_cancer):
    install(site, "badly_named", "BadlyNamed")
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "-q",
                    "--out", out)
    assert result.exit_code == 3
    report = read_report(out)
    broken = report["audits"]["badly_named"]
    assert broken["status"] == "error"
    assert "The plugin failed to load: it breaks the plugin contract: it has name 'Bad Name!'" in broken["summary"]
    assert report["audits"]["metrics"]["status"] in ("pass", "warn")


def test_auditor_plugins_env_loads_only_the_named_plugins(site, monkeypatch):
    install(site, "exploding", "Exploding")
    assert {"metrics", "exploding"} <= set(discover())
    monkeypatch.setenv("AUDITOR_PLUGINS", "metrics")
    assert list(discover()) == ["metrics"]


def test_builtin_audits_are_registered_as_entry_points_like_any_plugin():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="auditor.audits")}
    assert names["metrics"] == "auditor_plugins.metrics.audit:MetricsAudit"


def test_discovering_the_builtin_audits_does_not_import_torch():
    """``audit plugins`` and the start of every run only list the audits: importing torch
    (over a second) waits until an audit runs, so other work can start in the meantime."""
    script = (
        "import json, sys\n"
        "from importlib.metadata import distribution\n"
        "from auditor.run.registry import discover\n"
        "builtin = [ep.name for ep in distribution('auditor').entry_points if ep.group == 'auditor.audits']\n"
        "found = discover()\n"
        "print(json.dumps({'builtin': builtin, 'found': sorted(found), 'torch': 'torch' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AUDITOR_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert {"metrics", "fairness", "overfitting", "crossval", "explain"} <= set(seen["builtin"])
    assert set(seen["builtin"]) <= set(seen["found"])
    assert seen["torch"] is False
