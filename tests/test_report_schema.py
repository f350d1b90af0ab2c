"""report.json's JSON Schema: real reports validate, hand-broken ones are refused naming where,
and the test session itself refuses any report.json it wrote that does not validate."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import compliance_report, sample_report

from auditor.report.document import Report, ReportError
from auditor.report.schema import ReportSchemaError, load_schema, validate

TESTS = Path(__file__).parent


@pytest.fixture
def demo(demo_report):
    """The demo's report.json (the session's, a real process's; tests here must not change it)."""
    return json.loads(json.dumps(demo_report))


def test_the_schema_is_draft_2020_12_and_shipped_in_the_package():
    import jsonschema

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_demo_report_validates(demo):
    validate(demo)


@pytest.mark.parametrize("build", [sample_report, compliance_report])
def test_1_x_reports_and_their_2_0_migration_validate(build):
    validate(build())
    validate(Report.from_dict(build()).to_dict())


def _two(build=compliance_report) -> dict:
    return Report.from_dict(build()).to_dict()


def _set(document: dict, path: tuple, value) -> dict:
    broken = copy.deepcopy(document)
    target = broken
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


BROKEN = {
    "a finding's unknown severity": (("audits", "metrics", "findings", 1, "severity"), "fatal",
                                     "audits.metrics.findings[1].severity"),
    "a metric value as text": (("audits", "metrics", "metrics", "accuracy", "value"), "high",
                               "audits.metrics.metrics.accuracy.value"),
    "an unknown audit status": (("audits", "income_regression", "status"), "great", "audits.income_regression.status"),
    "an unknown top-level key": (("extra",), {"x": 1}, "extra"),
    "a 2.0 report without run": (("run",), KeyError, "run"),
    "an exit code as text": (("outcome", "exit_code"), "1", "outcome.exit_code"),
    "an unknown key in a metric": (("audits", "metrics", "metrics", "f1", "colour"), "red",
                                   "audits.metrics.metrics.f1"),
    "a gate that did not say whether it passed": (("gates", "results", 0, "passed"), "yes",
                                                  "gates.results[0].passed"),
}


@pytest.mark.parametrize("path, value, named", BROKEN.values(), ids=list(BROKEN))
def test_a_hand_broken_report_is_refused_naming_the_path(path, value, named):
    with pytest.raises(ReportSchemaError) as caught:
        validate(_set(_two(), path, value))
    assert caught.value.path == named
    assert f"at {named}:" in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ReportError)


def test_third_party_chart_data_and_table_rows_may_hold_anything():
    document = _two()
    document["audits"]["metrics"]["charts"][0]["data"]["plugin_extra"] = {"nested": [1, {"a": None}]}
    document["audits"]["metrics"]["tables"][0]["rows"].append([{"cell": "object"}, [1, 2], None, True, "x"])
    validate(document)


def test_without_jsonschema_only_the_top_level_is_checked(monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # `import jsonschema` now raises ImportError
    validate(_set(_two(), ("audits", "metrics", "status"), "great"))  # deep problems pass unseen
    for path, value, named in [(("extra",), 1, "extra"), (("run",), KeyError, "run"),
                               (("schema_version",), "3.0", "schema_version")]:
        with pytest.raises(ReportSchemaError) as caught:
            validate(_set(_two(), path, value))
        assert caught.value.path == named


def test_the_session_fails_when_a_test_wrote_a_report_json_that_does_not_validate(tmp_path):
    (tmp_path / "test_writes.py").write_text(
        "import json\n"
        "def test_good(tmp_path):\n"
        "    (tmp_path / 'report.json').write_text(json.dumps({'schema_version': '1.0', 'audits': {}}))\n"
        "def test_bad(tmp_path):\n"
        "    (tmp_path / 'report.json').write_text(json.dumps({'schema_version': '2.0', 'audits': {}}))\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", "--rootdir", str(tmp_path),
         "-c", os.devnull, "--basetemp", str(tmp_path / "base"), str(tmp_path / "test_writes.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert "do not follow" in done.stdout and "test_bad0" in done.stdout and "test_good0" not in done.stdout
    # what it wrote on purpose is not this session's to check
    for path in (tmp_path / "base").rglob("report.json"):
        path.unlink()
