"""Run the CLI in-process the way a user would, and check what it left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from auditor.cli import cli


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def read_report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def assert_clean_input_error(result: Result, *fragments: str) -> None:
    """Exit 2, one line on stderr that contains every fragment, and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def install_plugin(site: Path, module: str, cls: str, source: str) -> None:
    """Install a plugin into the folder ``site`` as pip would: the module ``source`` and a
    dist-info whose entry point registers ``module:cls`` under ``auditor.audits``."""
    import textwrap

    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[auditor.audits]\n{module} = {module}:{cls}\n")
