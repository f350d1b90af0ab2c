"""Inputs cannot act on the user's behalf.

A config file in the working folder cannot make auditor import code, nor put files from
elsewhere into the report; a link cannot slip a secret into the report; a FIFO, a device, a
/proc file, a gzip bomb, a 100,000-deep JSON or a NaN option ends in one line and exit 2,
promptly, instead of a hang, a killed process, an internal error or a verdict turned over.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report

SECRET = "gho_S3CRETt0ken4f2a"
FAST = ("--audits", "metrics", "-o", "metrics.n_resamples=100", "--format", "json", "-q")

NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x)
"""

TRAINER = """\
import torch


def train(X, y, *, seed=0):
    model = torch.nn.Linear(X.shape[1], 1)
    for _ in range(30):
        model.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(X)[:, 0], y.float()).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= 0.5 * parameter.grad
    return model
"""


class Hung(BaseException):
    """Raised by :func:`deadline`: a BaseException, so the CLI's last line of defence lets it through."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a blocked open() or wait and raises Hung."""
    def fire(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_project(folder: Path) -> Path:
    """A folder holding a TorchScript model (a good linear rule), its weights as a state_dict,
    and test.csv (a, b, c, target), as a user's repository would."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)).astype(np.float32), columns=["a", "b", "c"])
    frame["target"] = (frame["a"] + frame["b"] + 0.3 * rng.normal(size=200) > 0).astype(int)
    frame.to_csv(folder / "test.csv", index=False)
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, 2.0, 0.0]]))
        model.bias.zero_()
    torch.jit.save(torch.jit.script(model), str(folder / "model.pt"))
    torch.save({f"linear.{k}": v for k, v in model.state_dict().items()}, folder / "weights.pt")
    return folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project folder, as the working directory."""
    folder = make_project(tmp_path / "project")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the project that must never reach a report: a GitHub CLI token file."""
    home = tmp_path / "home" / ".config" / "gh"
    home.mkdir(parents=True)
    path = home / "hosts.yml"
    path.write_text(f"github.com:\n  oauth_token: {SECRET}\n  user: someone\n")
    return path


def assert_refused(result, out: Path, *fragments: str) -> None:
    """Exit 2 with one clean line, no report written, and the secret nowhere."""
    assert_clean_input_error(result, *fragments)
    assert SECRET not in result.stdout + result.stderr
    assert not out.exists()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def marker_module(folder: Path, name: str, body: str, marker: Path) -> None:
    """A module that leaves ``marker`` behind when it is imported."""
    write(folder / f"{name}.py", f"open({str(marker)!r}, 'w').write('imported')\n" + body)


# --- settings that import code ------------------------------------------------------------------


CODE_CASES = {
    "trainer": ('trainer = "payload:train"\nmodel_path = "."\n', "model.pt", ("--audits", "crossval"), "trainer"),
    "model_class": ('model_class = "payload:Net"\nmodel_path = "."\n', "weights.pt", (), "model_class"),
    "model_path alone": ('model_path = "."\n', "model.pt", (), "model_path"),
}


@pytest.mark.parametrize("case", list(CODE_CASES))
def test_a_config_file_cannot_make_auditor_import_code(project, tmp_path, case):
    settings, model, audits, key = CODE_CASES[case]
    marker = tmp_path / "imported"
    marker_module(project, "payload", NET + TRAINER, marker)
    write(project / "pyproject.toml", "[tool.auditor]\n" + settings)
    out = project / "out"
    result = invoke(model, "--data", "test.csv", "--out", out, *FAST, *audits)
    assert_refused(result, out, "pyproject.toml", key, "import and run code", "--trust-config")
    assert not marker.exists()


def test_a_setting_from_a_config_file_named_with_the_trust_flag_is_not_imported_when_no_audit_retrains(
        project, tmp_path):
    marker = tmp_path / "imported"
    marker_module(project, "payload", TRAINER, marker)
    write(project / "pyproject.toml", '[tool.auditor]\ntrainer = "payload:train"\nmodel_path = "."\n')
    out = project / "out"
    result = invoke("model.pt", "--data", "test.csv", "--out", out, "--trust-config", *FAST)
    assert result.exit_code == 0, result.stderr
    assert not marker.exists()
    assert read_report(out)["code"] == []  # nothing imported, nothing to account for


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", ["same values on the command line", "--trust-config"])
def test_a_trainer_from_the_config_file_runs_when_the_user_says_so_and_is_hashed(project, how):
    write(project / "trainer_mod.py", TRAINER)
    write(project / "pyproject.toml", '[tool.auditor]\ntrainer = "trainer_mod:train"\nmodel_path = "."\n')
    given = (("--trainer", "trainer_mod:train", "--model-path", ".") if how.startswith("same")
             else ("--trust-config",))
    out = project / "out"
    result = invoke("model.pt", "--data", "test.csv", "--out", out, *given, "--audits", "crossval",
                    "-o", "crossval.folds=2", "--format", "json", "-q")
    assert result.exit_code in (0, 1), result.stderr
    report = read_report(out)
    assert "Retrained" in report["audits"]["crossval"]["summary"]
    assert report["code"] == [{
        "option": "--trainer", "spec": "trainer_mod:train", "file": "trainer_mod.py",
        "sha256": sha256(project / "trainer_mod.py"), "size_bytes": (project / "trainer_mod.py").stat().st_size,
    }]


@pytest.mark.parametrize("how", ["same values on the command line", "--trust-config"])
def test_a_model_class_from_the_config_file_loads_when_the_user_says_so_and_is_hashed(project, how):
    write(project / "nets.py", NET)
    write(project / "pyproject.toml", '[tool.auditor]\nmodel_class = "nets:Net"\nmodel_path = "."\n')
    given = (("--model-class", "nets:Net", "--model-path", ".") if how.startswith("same")
             else ("--trust-config",))
    out = project / "out"
    result = invoke("weights.pt", "--data", "test.csv", "--out", out, *given, *FAST)
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    assert report["model"]["format"] == "state_dict"
    assert report["code"] == [{
        "option": "--model-class", "spec": "nets:Net", "file": "nets.py",
        "sha256": sha256(project / "nets.py"), "size_bytes": (project / "nets.py").stat().st_size,
    }]


# --- files that are not what they claim -----------------------------------------------------------


def test_a_card_named_in_the_config_file_outside_the_folder_is_refused(project, secret):
    write(project / "pyproject.toml", f'[tool.auditor]\ncard = {str(secret)!r}\n')
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--out", out, *FAST), out,
                   "pyproject.toml", "card", "outside this folder", "--trust-config")


def test_the_config_files_card_outside_the_folder_is_read_with_the_trust_flag(project, tmp_path):
    card = write(tmp_path / "model-card.yaml", "model:\n  name: linear\n")
    write(project / "pyproject.toml", f'[tool.auditor]\ncard = {str(card)!r}\n')
    out = project / "out"
    result = invoke("model.pt", "--data", "test.csv", "--out", out, "--trust-config", *FAST)
    assert result.exit_code == 0, result.stderr
    assert read_report(out)["card"]["source"] == "model-card.yaml"


def link(project: Path, name: str, target: Path) -> Path:
    path = project / name
    path.symlink_to(target)
    return path


LINKED = {"--card": "model-card.yaml", "--data": "linked.csv", "--history": "history.csv", "--train-data": "train.csv"}


@pytest.mark.parametrize("option", list(LINKED))
def test_an_input_linked_out_of_its_folder_is_refused_and_the_secret_goes_nowhere(project, secret, option):
    name = LINKED[option]
    link(project, name, secret)
    data = name if option == "--data" else "test.csv"
    extra = () if option == "--data" else (option, name)
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", data, *extra, "--out", out, *FAST), out,
                   repr(name), "symbolic link", "out of its folder", "--allow-symlinks")


def test_an_event_file_linked_out_of_a_tensorboard_folder_is_refused(project, secret):
    logs = project / "logs" / "version_0"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.1.host").symlink_to(secret)
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--history", "logs", "--out", out, *FAST), out,
                   "events.out.tfevents.1.host", "symbolic link", "--allow-symlinks")


def test_a_card_linked_from_the_config_file_is_refused_even_when_trusted(project, secret):
    link(project, "model-card.yaml", secret)
    write(project / "pyproject.toml", '[tool.auditor]\ncard = "model-card.yaml"\n')
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--out", out, *FAST), out,
                   "model-card.yaml", "outside this folder")
    assert_refused(invoke("model.pt", "--data", "test.csv", "--out", out, "--trust-config", *FAST), out,
                   "model-card.yaml", "symbolic link", "--allow-symlinks")


def test_the_config_files_card_inside_the_folder_needs_no_flag(project):
    write(project / "docs-card.toml", '[model]\nname = "linear"\n')
    write(project / "pyproject.toml", '[tool.auditor]\ncard = "docs-card.toml"\n')
    out = project / "out"
    result = invoke("model.pt", "--data", "test.csv", "--out", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert read_report(out)["card"]["source"] == "docs-card.toml"


def test_allow_symlinks_reads_a_linked_input(project, tmp_path):
    shared = make_project(tmp_path / "shared")  # e.g. a DVC cache or a git-annex store
    link(project, "linked.csv", shared / "test.csv")
    card = write(tmp_path / "model-card.toml", '[model]\nname = "linear"\n')
    link(project, "model-card.toml", card)
    out = project / "out"
    result = invoke("model.pt", "--data", "linked.csv", "--card", "model-card.toml", "--out", out,
                    "--allow-symlinks", *FAST)
    assert result.exit_code == 0, result.stderr
    report = read_report(out)
    assert report["data"]["sha256"] == sha256(shared / "test.csv")
    assert report["card"]["sha256"] == sha256(card)


def test_a_link_inside_its_own_folder_is_followed(project):
    link(project, "latest.csv", project / "test.csv")
    out = project / "out"
    result = invoke("model.pt", "--data", "latest.csv", "--out", out, *FAST)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("option", ["--baseline", "--history", "--data", "--card", "--policy", "--config"])
def test_a_fifo_is_refused_promptly(project, option):
    fifo = project / ("input.toml" if option in ("--card", "--policy", "--config") else "input")
    os.mkfifo(fifo)
    data = fifo.name if option == "--data" else "test.csv"
    extra = () if option == "--data" else (option, fifo.name)
    out = project / "out"
    with deadline(60):
        result = invoke("model.pt", "--data", data, *extra, "--out", out, *FAST)
    assert_refused(result, out, "FIFO", "not a regular file")


@pytest.mark.parametrize(("option", "path", "fragment"), [
    ("--baseline", "/dev/zero", "character device"),
    ("--history", "/dev/zero", "character device"),
    ("--history", "/proc/self/environ", "/proc or /sys"),
    ("--card", "/proc/self/environ", "/proc or /sys"),
    ("--data", "/proc/self/environ", "/proc or /sys"),
])
def test_devices_and_proc_files_are_refused(project, option, path, fragment):
    if not Path(path).exists():
        pytest.skip(f"{path} does not exist here")
    data = path if option == "--data" else "test.csv"
    extra = () if option == "--data" else (option, path)
    out = project / "out"
    with deadline(60):
        result = invoke("model.pt", "--data", data, *extra, "--out", out, *FAST)
    assert_refused(result, out, repr(path), fragment)


# --- reads bounded by the memory budget -----------------------------------------------------------


def gzip_stream(path: Path, chunks: Iterator[bytes]) -> Path:
    with gzip.open(path, "wb", compresslevel=9) as handle:
        for chunk in chunks:
            handle.write(chunk)
    return path


def test_a_gzip_header_bomb_is_refused_within_the_budget(project, monkeypatch):
    # 256 MiB of one header line, 250 KiB on disk: auditor used to read it all, and more
    gzip_stream(project / "bomb.csv.gz", (b"a" * (1 << 20) for _ in range(256)))
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", "16MB")
    out = project / "out"
    with deadline(120):
        result = invoke("model.pt", "--data", "bomb.csv.gz", "--out", out, *FAST)
    assert_refused(result, out, "The header of bomb.csv.gz", "longer than 1.0 MiB", "AUDITOR_MEMORY_BUDGET")


def test_a_gzip_whose_trailer_understates_its_text_is_stopped_at_the_budget(project, monkeypatch):
    # Two gzip members: 128 MiB of rows, then a small one whose trailer is the only one read.
    bomb = project / "rows.csv.gz"
    gzip_stream(bomb, [b"a,b,c,target\n", *(b"1,2,3,0\n" * (1 << 17) for _ in range(128))])
    rng = np.random.default_rng(0)
    tail = "".join(f"{x:.6f},{y:.6f},{z:.6f},1\n" for x, y, z in rng.normal(size=(20_000, 3))).encode()
    with bomb.open("ab") as handle:
        handle.write(gzip.compress(tail, compresslevel=1))
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", "16MB")
    out = project / "out"
    with deadline(120):
        result = invoke("model.pt", "--data", bomb.name, "--out", out, *FAST)
    # read in chunks (memory stays within the budget) and, once what every row keeps (its output
    # and label) would pass its share of the budget, counted into tallies: every row is audited
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads((out / "report.json").read_text())
    facts = report["run"]["engine"]["data"]
    rows = 128 * (1 << 17) + 20_000
    assert facts["rows"] == rows and facts["chunks"] > 100
    assert facts["binned"]["rows"] == rows and facts["binned"]["from_row"] < rows // 10
    assert report["audits"]["metrics"]["summary"].endswith(f"on {rows:,} rows.")


def test_a_csv_line_longer_than_the_bound_is_refused(project, monkeypatch):
    # the bound is 64 MiB, less with a small budget: 16 MB of memory allows 1 MiB lines
    write(project / "long.csv", "a,b,c,target\n1,2,3,0\n1,2,3," + "x" * (3 << 20) + "\n1,2,3,1\n")
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", "16MB")
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "long.csv", "--out", out, *FAST), out,
                   "A row of long.csv is longer than 1.0 MiB")


def test_a_baseline_larger_than_the_budget_allows_is_refused(project, monkeypatch):
    write(project / "main.json", '{"schema_version": "1.1", "audits": {}, "pad": "' + "x" * 300_000 + '"}')
    monkeypatch.setenv("AUDITOR_MEMORY_BUDGET", "1MB")  # 1 MB / 16: a 64 KiB JSON at most
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--baseline", "main.json", "--out", out, *FAST),
                   out, "main.json", "more than 64.0 KiB")


DEEP = "[" * 100_000


@pytest.mark.parametrize("where", ["--baseline", "--history", "sidecar"])
def test_json_nested_100000_deep_is_a_clean_error(project, where):
    if where == "sidecar":
        write(project / "model.auditor.json", DEEP)
        extra: tuple[str, ...] = ()
    else:
        write(project / "deep.json", DEEP + "]" * 100_000)
        extra = (where, "deep.json")
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", *extra, "--out", out, *FAST), out,
                   "nests lists or tables more than 100 levels deep")


def test_a_yaml_card_of_aliases_is_refused(project):
    write(project / "model-card.yaml", "model:\n  name: &a [x, x]\n  version: &b [*a, *a]\n")
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--card", "model-card.yaml", "--out", out, *FAST),
                   out, "model-card.yaml", "alias")


# --- NaN and infinite options ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_a_nan_or_infinite_option_on_the_command_line_is_refused(project, value):
    out = project / "out"
    result = invoke("model.pt", "--data", "test.csv", "--out", out, "--audits", "fairness",
                    "-o", f"fairness.four_fifths={value}", "--format", "json", "-q")
    assert_refused(result, out, "fairness.four_fifths", "finite number", repr(value))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_nan_or_infinite_option_in_pyproject_is_refused(project, value):
    write(project / "pyproject.toml", f"[tool.auditor.metrics]\nconfidence = {value}\n")
    out = project / "out"
    assert_refused(invoke("model.pt", "--data", "test.csv", "--out", out, *FAST), out,
                   "metrics.confidence", "finite number")


# --- Parquet columns that are not flat ------------------------------------------------------------


@pytest.fixture
def nested_parquet(project: Path) -> Path:
    frame = pd.read_csv(project / "test.csv")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("place", pa.array([{"city": "x", "zip": i % 3} for i in range(len(frame))]))
    table = table.append_column("tags", pa.array([[i % 2, 1] for i in range(len(frame))]))
    pq.write_table(table, project / "nested.parquet")
    return project / "nested.parquet"


@pytest.mark.parametrize(("extra", "column", "role"), [
    (("--sensitive", "place"), "place", "a sensitive column"),
    (("--sensitive", "tags"), "tags", "a sensitive column"),
    (("--target", "tags"), "tags", "the target"),
    (("-o", "crossval.group=place", "--audits", "crossval,metrics"), "place", "named by crossval.group"),
])
def test_a_nested_parquet_column_is_refused_naming_it(project, nested_parquet, extra, column, role):
    out = project / "out"
    result = invoke("model.pt", "--data", nested_parquet.name, "--features", "a,b,c", "--out", out, *FAST, *extra)
    assert_refused(result, out, repr(column), role, "nested values")


def test_the_help_teaches_both_flags():
    text = invoke("run", "--help").stdout
    assert "--trust-config" in text and "--allow-symlinks" in text


if sys.platform == "win32":  # pragma: no cover - FIFOs, /dev and /proc are POSIX
    pytestmark = pytest.mark.skip("POSIX inputs")


@pytest.mark.parametrize("model", [".", "folder"])
def test_a_folder_given_as_the_model_is_a_usage_error(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "x.csv").write_text("a,target\n1,0\n")
    result = invoke(model, "--data", "x.csv")
    assert_clean_input_error(result, "is a folder, not a model file")


def test_an_error_that_quotes_a_huge_header_stays_one_short_line(breast_cancer, tmp_path):
    data = tmp_path / "big.csv"
    data.write_text("a" * 200_000 + "\n1\n")
    result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--out", tmp_path / "out")
    assert_clean_input_error(result, "No target column found")
    assert len(result.stderr) < 2_200
    assert not (tmp_path / "out").exists()


def test_a_header_longer_than_a_read_block_is_read_not_called_empty(tmp_path):
    # 2 MiB of column names: more than pyarrow's first block (1 MiB here), which it used to
    # report as "Could not skip initial rows", and auditor as a file with no data rows.
    from auditor.loading.data import load_data
    from auditor.loading.sample_rows import read_table

    names = [f"feature_{i:06d}_" + "x" * 40 for i in range(40_000)]
    path = tmp_path / "wide_header.csv"
    path.write_text(",".join([*names, "target"]) + "\n" + ",".join(["1"] * len(names) + ["0"]) + "\n")
    assert path.stat().st_size > 2 << 20
    loaded = load_data(path, target="target", features=names[:3], metadata={})
    assert loaded.dataset.n_rows == 1 and loaded.dataset.X.tolist() == [[1.0, 1.0, 1.0]]
    assert read_table(path, rows=5).table.num_rows == 1


def test_a_header_with_no_rows_after_it_is_still_called_empty(tmp_path):
    from auditor.contract.errors import DataError
    from auditor.loading.data import load_data

    path = tmp_path / "header_only.csv"
    path.write_text("a,b,target\n")
    with pytest.raises(DataError, match="has a header but no data rows"):
        load_data(path, target="target", features=None, metadata={})
