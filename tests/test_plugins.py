"""Third-party audits arrive through the same entry-point group as the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import install_plugin, invoke, read_report

from auditor.run.registry import discover

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


# --- the contract: metric flags ---------------------------------------------------------------

def test_metric_flags_are_written_and_read_back():
    from auditor.contract.result import Metric

    flagged = Metric(0.8, "Score", noisy=True, tolerance=0.05)
    assert flagged.to_dict()["noisy"] is True and flagged.to_dict()["tolerance"] == 0.05
    assert Metric.from_dict(json.loads(json.dumps(flagged.to_dict())), "score") == flagged
    plain = Metric(0.8, "Score").to_dict()
    assert (plain["noisy"], plain["tolerance"]) == (False, None)
    assert Metric.from_dict(plain, "energy_wh") == Metric(0.8, "Score")  # declared: the key is not read


def test_a_metric_written_before_the_flags_is_read_by_the_legacy_rules():
    from auditor.contract.result import LEGACY_TOLERANCE, Metric

    old = {"value": 0.9, "label": "ROC-AUC", "ci": None, "ci_method": None, "direction": "higher",
           "headline": True, "description": ""}
    assert Metric.from_dict(old, "roc_auc").tolerance == LEGACY_TOLERANCE == 0.01
    timing = Metric.from_dict(old, "inference_seconds")
    assert timing.noisy and timing.tolerance is None
    assert Metric.from_dict({**old, "headline": False}, "roc_auc").tolerance is None
    assert Metric.from_dict({**old, "direction": "none"}, "roc_auc").tolerance is None


@pytest.mark.parametrize("fields, message", [
    ({"tolerance": -0.1}, "Metric tolerance must be a non-negative finite number or None, got -0.1"),
    ({"tolerance": float("nan")}, "Metric tolerance must be a non-negative finite number or None, got nan"),
    ({"tolerance": True}, "Metric tolerance must be a non-negative finite number or None, got True"),
    ({"tolerance": 0.01, "direction": "none"}, "Metric tolerance needs direction 'higher' or 'lower'"),
    ({"noisy": "yes"}, "Metric noisy must be True or False, got 'yes'"),
])
def test_a_metric_with_unusable_flags_is_refused(fields, message):
    from auditor.contract.result import Metric

    with pytest.raises(ValueError) as caught:
        Metric(0.5, **fields)
    assert str(caught.value).startswith(message)


# --- the contract: option types, checked when a plugin registers ---------------------------------

def _with_options(*options):
    from auditor.contract.plugin import Audit

    class WithOptions(Audit):
        name = "with_options"
        title = "With options"
        description = "Declares the options under test."

        def run(self, ctx, options):
            raise AssertionError("not run")

    WithOptions.options = tuple(options)
    return WithOptions()


def test_every_option_type_is_documented_with_its_bounds():
    from auditor.contract import plugin

    assert plugin.OPTION_TYPES == ("int", "float", "bool", "str", "column")
    for kind in plugin.OPTION_TYPES:
        assert f'``"{kind}"``' in plugin.__doc__, kind
    assert "inclusive" in plugin.__doc__ and "``min`` and ``max``" in plugin.__doc__ and "``choices``" in plugin.__doc__


@pytest.mark.parametrize("option, problem", [
    (("n", "integer", 1, "h"), "'n': unknown type 'integer' (known: int, float, bool, str, column)"),
    (("n", "str", "a", "h", None, 0), "'n': min on a str option (bounds apply to int and float options only)"),
    (("n", "column", "", "h", None, None, 3), "'n': max on a column option"),
    (("n", "int", 5, "h", None, 10, 1), "'n': min 10 above max 1"),
    (("n", "float", 0.5, "h", None, float("nan")), "'n': min=nan (a finite number is required)"),
    (("n", "int", 5, "h", None, 10), "'n': default 5, which it refuses: must be >= 10; got 5"),
    (("n", "float", 2.0, "h", None, None, 1.0), "'n': default 2.0, which it refuses: must be <= 1.0; got 2.0"),
    (("n", "str", "c", "h", ("a", "b")), "'n': default 'c', which it refuses: must be one of a, b; got 'c'"),
    (("n", "str", "a", "h", ()), "'n': choices () (a non-empty tuple is required)"),
    (("n", "int", 1, "h", (1, "2")), "'n': choice '2', which is not of its type int"),
    (("n", "float", True, "h"), "'n': default True, which it refuses: must be float; got True"),
    (("N-1", "int", 1, "h"), "'N-1': a name that is not lower-case letters, digits and '_'"),
    (("n", "int", 1, ""), "'n': no help (a non-empty string)"),
])
def test_an_unsound_option_declaration_is_refused_naming_the_plugin(option, problem):
    from auditor.contract.errors import PluginError
    from auditor.contract.plugin import Option
    from auditor.run.registry import validate_audit

    with pytest.raises(PluginError) as caught:
        validate_audit(_with_options(Option(*option)), "'with_options' (my_pkg:WithOptions)")
    assert caught.value.message.startswith(
        f"The audit plugin 'with_options' (my_pkg:WithOptions) declares an unsound option {problem}")


def test_sound_option_declarations_of_every_type_register():
    from auditor.contract.plugin import Option
    from auditor.run.registry import validate_audit

    validate_audit(_with_options(
        Option("n", "int", 3, "h", min=0, max=3), Option("x", "float", 0, "h", min=0.0),
        Option("b", "bool", False, "h"),
        Option("mode", "str", "a", "h", choices=("a", "b")), Option("col", "column", "", "h"),
        Option("level", "float", 0.9, "h", choices=(0.9, 0.95)),
    ), "'with_options' (my_pkg:WithOptions)")


@pytest.mark.parametrize("option, value, message", [
    (("n", "int", 3, "h", None, 1, 5), "5", None),
    (("n", "int", 3, "h", None, 1, 5), "6", "The option a.n must be <= 5; got '6'."),
    (("n", "int", 3, "h", None, 1, 5), "0", "The option a.n must be >= 1; got '0'."),
    (("n", "int", 3, "h"), "3.0", "The option a.n must be int; got '3.0'."),
    (("n", "int", 3, "h"), True, "The option a.n must be int; got True."),
    (("x", "float", 0.5, "h", None, 0.5), "0.5", None),
    (("x", "float", 0.5, "h"), "nan", "The option a.x must be a finite number; got 'nan'."),
    (("x", "float", 0.5, "h"), False, "The option a.x must be float; got False."),
    (("b", "bool", False, "h"), "Yes", None),
    (("b", "bool", False, "h"), "maybe", "The option a.b must be bool; got 'maybe'."),
    (("m", "str", "a", "h", ("a", "b")), "c", "The option a.m must be one of a, b; got 'c'."),
])
def test_option_values_are_converted_or_refused_as_documented(option, value, message):
    from auditor.contract.errors import UsageError
    from auditor.contract.plugin import Option

    declared = Option(*option)
    if message is None:
        declared.convert("a", value)
        return
    with pytest.raises(UsageError) as caught:
        declared.convert("a", value)
    assert caught.value.message == message


def test_a_plugin_with_an_unsound_option_is_listed_as_broken_and_the_others_load(site):
    install_plugin(site, "bad_option", "BadOption", '''
        from auditor.contract.plugin import Audit, Option

        class BadOption(Audit):
            name = "bad_option"
            title = "Bad option"
            description = "Its default is outside its own bounds."
            options = (Option("size", "int", 0, "Group size.", min=5),)

            def run(self, ctx, options):
                raise AssertionError("not run")
    ''')
    from auditor.run.registry import discover_plugins

    found = discover_plugins()
    assert "metrics" in found.audits and "bad_option" not in found.audits
    assert found.broken["bad_option"].reason == (
        "it breaks the plugin contract: it declares an unsound option 'size': default 0, which it refuses: "
        "must be >= 5; got 0")
