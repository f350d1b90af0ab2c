"""The third-party plugin example (examples/auditor-example-plugin) works as its README says.

It is installed the way a user installs it, by pip from its own pyproject.toml, into a
private folder (``pip install --target``): installed entry points are global, so the folder
reaches only the subprocesses given it on PYTHONPATH, and this test session's own plugin
discovery never sees it. Then the installed ``audit`` command runs it end to end, ``audit
plugins`` lists it, and the example's own tests (which use auditor's pytest fixtures) pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "auditor-example-plugin"


def _audit_command() -> str:
    return shutil.which("audit") or str(Path(sys.executable).with_name("audit"))


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a subprocess that has the example installed (and nothing else does)."""
    target = tmp_path_factory.mktemp("example_plugin") / "site"
    # A copy, so that building it leaves no build/ or egg-info in the repository.
    source = tmp_path_factory.mktemp("example_source") / "auditor-example-plugin"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "auditor_calibration" / "audit.py").is_file()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("AUDITOR_PLUGINS", None)
    return env


def test_this_session_does_not_see_the_example():
    from auditor.run.registry import discover

    assert "confidence" not in discover()


def test_audit_plugins_lists_it(plugin_env):
    wide = {**plugin_env, "COLUMNS": "400"}  # one line per cell: rich wraps to the terminal's width
    done = subprocess.run([_audit_command(), "plugins"], capture_output=True, text=True, env=wide, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "confidence" in done.stdout
    assert "Does the model's confidence match its accuracy?" in done.stdout
    assert "n_bins" in done.stdout


def test_audit_runs_it_end_to_end(plugin_env, breast_cancer, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [_audit_command(), str(breast_cancer.folder / "model.pt"), "--data", str(breast_cancer.folder / "test.csv"),
         "--audits", "metrics,confidence", "--out", str(out), "--format", "json,md,html", "-q",
         "-o", "confidence.n_bins=8"],
        capture_output=True, text=True, env=plugin_env, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    section = report["audits"]["confidence"]
    assert section["title"] == "Confidence calibration" and section["status"] in ("pass", "warn")
    assert section["options"]["n_bins"] == 8
    # the ECE, recomputed here from the eager model's outputs with a plain loop over 8 bins
    import numpy as np

    p1 = 1 / (1 + np.exp(-breast_cancer.eager_outputs()[:, 0].astype(np.float64)))
    proba = np.column_stack([1 - p1, p1])
    y = breast_cancer.frame[breast_cancer.target].to_numpy()
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, 9)
    ece = sum(abs(correct[(confidence > lo) & (confidence <= hi)].sum() - confidence[(confidence > lo) &
              (confidence <= hi)].sum()) for lo, hi in zip(edges[:-1], edges[1:])) / len(y)
    assert section["metrics"]["ece"]["value"] == pytest.approx(ece, abs=1e-6)
    assert section["charts"][0]["kind"] == "curve" and section["tables"][0]["name"] == "reliability"
    assert report["run"]["plugins"].get("confidence", "").startswith("auditor-calibration")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "## Confidence calibration" in markdown and "Expected calibration error" in markdown
    assert "Reliability diagram" in (out / "report.html").read_text(encoding="utf-8")


def test_the_examples_own_tests_pass(plugin_env, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, env={**plugin_env, "PYTHONDONTWRITEBYTECODE": "1"}, cwd=EXAMPLE, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
