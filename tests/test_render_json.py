"""report.json: written stably, read back with its schema checked, and files written atomically."""

from __future__ import annotations

import json
import os
import stat

import pytest
from report_fixtures import hostile_report, sample_report

from auditor.contract.errors import UsageError
from auditor.report import FILE_NAMES, RENDERERS, load_report, render_json, write_atomic, write_reports
from auditor.report.document import Report
from auditor.report.json_report import SUPPORTED_MAJOR
from auditor.run.assemble import SCHEMA_VERSION


@pytest.mark.parametrize("build", [sample_report, hostile_report])
def test_json_round_trips_the_report_exactly(build, tmp_path):
    report = build()
    path = tmp_path / f"{build.__name__}.json"  # the hostile one breaks the schema on purpose
    path.write_text(render_json(report), encoding="utf-8")
    assert load_report(path) == report


def test_json_is_stable_sorted_indented_and_ends_with_a_newline():
    text = render_json(sample_report())
    assert text == render_json(sample_report())
    assert text.endswith("}\n")
    assert text.startswith('{\n  "audits": {')
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_json_refuses_nan_because_json_has_none():
    with pytest.raises(ValueError):
        render_json({"schema_version": "1.0", "audits": {}, "value": float("nan")})


BAD_REPORTS = {
    "not JSON": ("{not json", "is not JSON"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "is not JSON"),
    "a JSON list": ("[1, 2]", "is not an auditor report"),
    "an object without schema_version": ('{"verdict": "pass"}', "is not an auditor report"),
    "a future major version": ('{"schema_version": "3.0", "audits": {}}', "schema version 3.0"),
    "a version that is not a version": ('{"schema_version": 1, "audits": {}}', "schema_version 1"),
    "no audits": ('{"schema_version": "1.0"}', "has no audits object"),
}


@pytest.mark.parametrize("content, expected", BAD_REPORTS.values(), ids=list(BAD_REPORTS))
def test_load_report_explains_on_one_line_why_a_file_is_not_a_report(content, expected, tmp_path):
    path = tmp_path / "candidate.json"  # not report.json: the session's schema check would refuse it
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_report(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_load_report_explains_a_missing_file(tmp_path):
    with pytest.raises(UsageError, match="Cannot read the report"):
        load_report(tmp_path / "missing.json")


def test_the_version_written_is_a_version_read():
    assert SCHEMA_VERSION == "2.0"
    assert SCHEMA_VERSION.split(".")[0] == str(SUPPORTED_MAJOR)


@pytest.mark.parametrize("version", ["1.0", "1.1", "2.0", "2.3"])
def test_load_report_reads_every_1x_and_2x_report_as_it_is_stored(version, tmp_path):
    stored = sample_report() if version.startswith("1.") else Report.from_dict(sample_report()).to_dict()
    report = {**stored, "schema_version": version}
    path = tmp_path / "report.json"
    path.write_text(render_json(report), encoding="utf-8")
    assert load_report(path) == report


def test_load_report_accepts_a_newer_minor_version(tmp_path):
    report = sample_report()
    report["schema_version"] = "1.7"
    path = tmp_path / "report.json"
    path.write_text(render_json(report), encoding="utf-8")
    assert load_report(path)["schema_version"] == "1.7"


# ---- writing report files -----------------------------------------------------------------


def test_write_reports_writes_every_requested_format_into_a_new_directory(tmp_path):
    out = tmp_path / "deep" / "reports"
    paths = write_reports(sample_report(), out, ["json", "html", "md"])
    assert paths == [out / "report.json", out / "report.html", out / "report.md"]
    assert load_report(out / "report.json") == sample_report()
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Model audit")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]


def test_every_registered_format_has_a_file_name():
    assert set(RENDERERS) == set(FILE_NAMES)


def test_write_reports_rejects_an_unknown_format_before_writing_anything(tmp_path):
    with pytest.raises(UsageError, match=r"Unknown report format\(s\): docx; expected one of json, html"):
        write_reports(sample_report(), tmp_path / "out", ["json", "docx"])
    assert not (tmp_path / "out").exists()


def test_a_renderer_that_crashes_leaves_no_file_written(tmp_path, monkeypatch):
    def broken(report):
        raise RuntimeError("renderer bug")

    monkeypatch.setitem(RENDERERS, "md", broken)
    (tmp_path / "report.json").write_text("previous", encoding="utf-8")
    with pytest.raises(RuntimeError, match="renderer bug"):
        write_reports(sample_report(), tmp_path, ["json", "html", "md"])
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == "previous"
    (tmp_path / "report.json").unlink()  # not a report: the session's schema check would refuse it


def test_write_reports_explains_an_output_directory_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="Cannot create the report directory"):
        write_reports(sample_report(), tmp_path / "taken", ["json"])


@pytest.mark.parametrize("content", ["text ✓\n", b"\x00bytes"])
def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path, content):
    path = tmp_path / "report.md"
    path.write_text("old", encoding="utf-8")
    write_atomic(path, content)
    expected = content.encode("utf-8") if isinstance(content, str) else content
    assert path.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_write_atomic_creates_files_with_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "written.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "written.json").stat().st_mode) == 0o644


def test_write_atomic_cleans_up_when_the_move_fails(tmp_path):
    target = tmp_path / "a-directory"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_atomic(target, "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory"]

