"""A newcomer's path from a plain PyTorch model to an audit (issue 17, items 3, 5, 6, 7, 8).

Each test reproduces what a new user saw, with models built the way tutorials build them:
a TorchScript LSTM fed the wrong shape, ``torch.save(model)`` with the class in the training
script, ``--model-class`` pointed at a training script, integer classes that could not be
named, an image folder as ``--data``. The last test runs every command of the README's
"Auditing your own model" section, and its Python snippets, as written.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report

from auditor.run.runner import _run_one
from auditor.testing import make_context

README = Path(__file__).resolve().parents[1] / "README.md"
STEPS, WIDTH = 8, 5

MYNETS = '''
import torch


class Net(torch.nn.Module):
    def __init__(self, n_features: int, hidden: int = 16):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x):
        return self.layers(x)


class Sequence(torch.nn.Module):
    """An LSTM over [N, T, F] inputs, one logit from its last state."""

    def __init__(self, width: int = 5):
        super().__init__()
        self.lstm = torch.nn.LSTM(width, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])
'''


class SequenceNet(torch.nn.Module):
    """The same LSTM as mynets.Sequence, for a test that scripts it in this process."""

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.lstm = torch.nn.LSTM(width, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _python(folder: Path, script: str) -> None:
    """Run a training script the way its author does: ``python train.py`` in its folder."""
    (folder / "script.py").write_text(textwrap.dedent(script))
    done = subprocess.run([sys.executable, "script.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: mynets.py (classes only) and sequence data of 8 steps x 5 features."""
    (tmp_path / "mynets.py").write_text(MYNETS)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, STEPS * WIDTH)).astype(np.float32),
                         columns=[f"t{t}_f{f}" for t in range(STEPS) for f in range(WIDTH)])
    frame["target"] = rng.integers(0, 2, len(frame))
    frame.to_csv(tmp_path / "series.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- item 3: a model that rejects its input is exit 2, never "please report it" -----------------


@pytest.fixture
def lstm(project: Path) -> Path:
    _python(project, """
        import torch
        from mynets import Sequence
        torch.manual_seed(0)
        model = Sequence().eval()
        torch.jit.save(torch.jit.script(model), "lstm.pt")
        torch.save(model.state_dict(), "lstm_weights.pt")
    """)
    return project


@pytest.mark.parametrize("saved", [["lstm.pt"], ["lstm_weights.pt", "--model-class", "mynets:Sequence", "--model-path", "."]],
                         ids=["torchscript", "eager"])
@pytest.mark.parametrize("shape, fed, said", [
    ([], "40 features per row, fed as a (batch, 40) tensor", "Expected 5, got 40"),
    (["--input-shape", "5,8"], "inputs of shape (5, 8) per row", "Expected 5, got 8"),
], ids=["flat-rows", "wrong-shape"])
def test_a_sequence_model_fed_the_wrong_shape_is_a_clean_input_error(
    lstm: Path, saved: list[str], shape: list[str], fed: str, said: str
) -> None:
    result = invoke(*saved, "--data", "series.csv", *shape, "--out", "out")
    assert_clean_input_error(result, f"The model rejected {fed}", said, "--input-shape")
    assert "TorchScript" not in result.stderr and "HERE" not in result.stderr
    assert "please report" not in result.stderr
    assert not (lstm / "out").exists()


def test_the_right_input_shape_audits_the_sequence_model(lstm: Path) -> None:
    result = invoke("lstm.pt", "--data", "series.csv", "--input-shape", "8,5", "--out", "out", "--audits", "metrics")
    assert result.exit_code == 0, result.stderr
    assert read_report(lstm / "out")["audits"]["metrics"]["status"] != "error"


def test_a_torchscript_error_in_an_audit_is_one_line_in_its_summary() -> None:
    """An audit that calls a TorchScript model itself (captum does) and gets torch.jit.Error
    reports the real error, not the compiled code's traceback."""
    scripted = torch.jit.script(SequenceNet().eval())

    class CallsTheModel:
        title, needs = "Calls the model", ()

        def run(self, ctx, options):
            return scripted(torch.zeros(2, 8, 40))

    ctx = make_context(y=[0, 1], proba=[0.2, 0.7])
    tracebacks: dict[str, str] = {}
    result = _run_one(ctx, "calls", CallsTheModel(), {}, tracebacks)
    assert result.status == "error"
    assert result.summary.endswith("RuntimeError: input.size(-1) must be equal to input_size. Expected 5, got 40")
    assert "\n" not in result.summary and "HERE" not in result.summary
    assert "\n" not in result.findings[0].message
    assert "Traceback of TorchScript" in tracebacks["calls"]  # the whole text stays for --debug


# --- item 5: torch.save(model) with the class in the training script --------------------------


@pytest.fixture
def pickled_in_main(project: Path) -> Path:
    _python(project, """
        import torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(40, 1)
            def forward(self, x):
                return self.fc(x)
        model = Net()
        torch.save(model, "model.pt")
    """)
    return project


def test_a_whole_model_whose_class_lived_in_main_says_why_even_when_trusted(pickled_in_main: Path) -> None:
    result = invoke("model.pt", "--data", "series.csv", "--trust-model", "--out", "out")
    assert_clean_input_error(result, "__main__.Net", "defined in the script that saved it", "not corrupt",
                             "torch.jit.save(torch.jit.script(model)", "--model-class mynets:Net",
                             "module without top-level training code", "model.state_dict()")
    assert "may be corrupt" not in result.stderr
    assert not (pickled_in_main / "out").exists()


def test_the_refusal_of_an_untrusted_pickle_mentions_main_too(pickled_in_main: Path) -> None:
    result = invoke("model.pt", "--data", "series.csv", "--out", "out")
    assert_clean_input_error(result, "Refusing to load model.pt", "__main__.Net",
                             "even with --trust-model", "--model-class mynets:Net")


# --- item 6: --model-class, --model-args, and a module that trains when imported ----------------


@pytest.fixture
def weights(project: Path) -> Path:
    _python(project, """
        import torch
        from mynets import Net
        torch.manual_seed(0)
        torch.save(Net(n_features=40, hidden=8).state_dict(), "weights.pt")
    """)
    return project


def test_model_args_reach_the_constructor(weights: Path) -> None:
    result = invoke("weights.pt", "--model-class", "mynets:Net", "--model-args", '{"n_features": 40, "hidden": 8}',
                    "--model-path", ".", "--data", "series.csv", "--out", "out", "--audits", "metrics")
    assert result.exit_code == 0, result.stderr
    report = read_report(weights / "out")
    assert report["model"]["format"] == "state_dict"
    code = json.dumps(report["code"])
    assert "mynets.py" in code  # the class's source file is hashed into the provenance


@pytest.mark.parametrize("args, fragments", [
    ('{n_features: 40}', ("--model-args must be a JSON object", "not JSON")),
    ("[40, 8]", ("--model-args must be a JSON object", "got a JSON array")),
    ('{"n_features": 40, "hiden": 8}', ("Cannot build mynets:Net", "'hiden'", "it takes n_features, hidden")),
    ('{"hidden": 8}', ("Cannot build mynets:Net", "'n_features'")),
    ('{"n_features": 40, "hidden": 16}', ("do not fit mynets:Net", "size mismatch")),
], ids=["not-json", "not-an-object", "unknown-parameter", "missing-parameter", "wrong-value"])
def test_bad_model_args_are_a_clean_input_error_naming_the_parameter(
    weights: Path, args: str, fragments: tuple[str, ...]
) -> None:
    result = invoke("weights.pt", "--model-class", "mynets:Net", "--model-args", args,
                    "--model-path", ".", "--data", "series.csv", "--out", "out")
    assert_clean_input_error(result, *fragments)
    assert not (weights / "out").exists()


def test_a_module_that_cannot_be_imported_says_whether_the_folder_is_on_the_path(weights: Path) -> None:
    result = invoke("weights.pt", "--model-class", "mynets:Net", "--model-args", '{"n_features": 40, "hidden": 8}',
                    "--data", "series.csv", "--out", "out")
    assert_clean_input_error(result, "Cannot import the module 'mynets'", "the current folder is not on the import path",
                             "--model-path .", "module without top-level training code")


def test_a_training_script_as_model_class_is_not_run_to_completion(weights: Path) -> None:
    """Importing train_bc:MLP re-ran the training script and overwrote its files."""
    (weights / "train_bc.py").write_text(textwrap.dedent("""
        import torch
        from mynets import Net as MLP
        model = MLP(n_features=40, hidden=8)
        torch.save(model.state_dict(), "weights.pt")  # the training script's own output
    """))
    before = (weights / "weights.pt").read_bytes()
    result = invoke("weights.pt", "--model-class", "train_bc:MLP", "--model-args", '{"n_features": 40, "hidden": 8}',
                    "--model-path", ".", "--data", "series.csv", "--out", "out")
    assert_clean_input_error(result, "'train_bc'", "put the class in a module without top-level training code")
    assert (weights / "weights.pt").read_bytes() == before


def test_model_args_from_a_config_file_are_refused_like_model_class(weights: Path) -> None:
    (weights / "pyproject.toml").write_text('[tool.auditor]\nmodel_args = \'{"n_features": 40, "hidden": 8}\'\n')
    result = invoke("weights.pt", "--model-class", "mynets:Net", "--model-path", ".", "--data", "series.csv")
    assert_clean_input_error(result, "model_args", "--model-args")
    result = invoke("weights.pt", "--model-class", "mynets:Net", "--model-path", ".", "--data", "series.csv",
                    "--trust-config", "--out", "out", "--audits", "metrics")
    assert result.exit_code == 0, result.stderr


# --- item 7: naming integer classes ----------------------------------------------------------------


def test_classes_name_an_integer_target_by_output_index(breast_cancer, tmp_path: Path) -> None:
    """sklearn's breast cancer target: 0 is malignant, 1 benign; the model's logit is P(1)."""
    named, plain = tmp_path / "named", tmp_path / "plain"
    common = (breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv",
              "--audits", "metrics,explain")
    result = invoke(*common, "--classes", "malignant,benign", "--out", named)
    assert result.exit_code == 0, result.stderr
    assert invoke(*common, "--out", plain).exit_code == 0
    report, baseline = read_report(named), read_report(plain)
    assert report["data"]["class_names"] == ["malignant", "benign"]
    assert "P(benign)" in report["audits"]["explain"]["summary"]
    assert "P(1)" not in json.dumps(report["audits"]) and "class 1" not in json.dumps(report["audits"])
    # the same rows in the same classes: every metric unchanged by the names
    def values(r):
        return {name: m["value"] for name, m in r["audits"]["metrics"]["metrics"].items()}

    assert values(report) == values(baseline)
    markdown = (named / "report.md").read_text()
    assert "benign" in markdown and "P(1)" not in markdown


def test_a_target_the_classes_cannot_cover_names_plain_values(breast_cancer, tmp_path: Path) -> None:
    frame = breast_cancer.frame.copy()
    frame.loc[:5, "target"] = 2
    frame.to_csv(tmp_path / "three.csv", index=False)
    result = invoke(breast_cancer.folder / "model.pt", "--data", tmp_path / "three.csv",
                    "--classes", "malignant,benign", "--out", tmp_path / "out")
    assert_clean_input_error(result, "'0', '1', '2'", "value i is the i-th class name")
    assert "np.str_" not in result.stderr


# --- item 8: images and folders as --data -------------------------------------------------------


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"".join(b"\x00" + bytes(8) for _ in range(8)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def _zip(tmp: Path, members: dict[str, bytes]) -> bytes:
    path = tmp / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


@pytest.mark.parametrize("name, content, kind, hint", [
    ("digit.png", lambda tmp: _png(), "a PNG image", "Point --data at the folder of images"),
    ("digit.jpg", lambda tmp: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64), "a JPEG image",
     "Point --data at the folder of images"),
    ("digit.gif", lambda tmp: b"GIF89a" + bytes(64), "a GIF image", "Point --data at the folder of images"),
    ("digits.zip", lambda tmp: _zip(tmp, {"0/a.png": _png(), "1/b.png": _png()}), "a ZIP archive of images",
     "Point --data at the folder of images"),
    ("paper.pdf", lambda tmp: b"%PDF-1.7\n" + bytes(64), "a PDF document", "np.savez(path, X=inputs, y=labels)"),
], ids=["png", "jpeg", "gif", "zip", "pdf"])
def test_a_binary_file_as_data_names_its_format_and_what_auditor_reads(breast_cancer, tmp_path: Path, name, content,
                                                                       kind, hint) -> None:
    (tmp_path / name).write_bytes(content(tmp_path))
    result = invoke(breast_cancer.folder / "model.pt", "--data", tmp_path / name, "--out", tmp_path / "out")
    assert_clean_input_error(result, f"The data file {name} is {kind}", "auditor reads tables (CSV, CSV.gz, Parquet)",
                             "folders of images", "NumPy archives (np.savez)", hint)
    assert "UTF-16" not in result.stderr and "iconv" not in result.stderr


def test_an_archive_of_arrays_that_do_not_parse_is_one_line(breast_cancer, tmp_path: Path) -> None:
    (tmp_path / "digits.npz").write_bytes(_zip(tmp_path, {"x.npy": b"\x93NUMPY", "y.npy": b"\x93NUMPY"}))
    result = invoke(breast_cancer.folder / "model.pt", "--data", tmp_path / "digits.npz", "--out", tmp_path / "out")
    assert_clean_input_error(result, "The data file digits.npz is not a readable NumPy archive", "np.savez")


@pytest.mark.parametrize("option", ["--data", "--train-data"])
def test_an_image_folder_for_a_tabular_model_says_what_does_not_fit(breast_cancer, tmp_path: Path, option) -> None:
    images = tmp_path / "images"
    (images / "benign").mkdir(parents=True)
    (images / "benign" / "a.png").write_bytes(_png())
    data = ["--data", images] if option == "--data" else ["--data", breast_cancer.folder / "test.csv", "--train-data", images]
    result = invoke(breast_cancer.folder / "model.pt", *data, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    if option == "--data":  # 1x8x8 pixels for a model of 30 features: the model says no
        assert "64" in lines[0] and "30" in lines[0], lines[0]
    else:
        assert "The examples in images are of shape 1x8x8 (64 values)" in lines[0], lines[0]


# --- the README's "Auditing your own model", run as written ---------------------------------------


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Auditing your own model\n")
    return text[start:text.index("\n### ", start)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_every_command_of_the_readme_section_works(breast_cancer, digits, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    section = _section()
    monkeypatch.chdir(tmp_path)
    # the Python snippets: mynets.py and train.py as files, as their first comment names them
    files = {}
    for block in _blocks(section, "python"):
        first = block.splitlines()[0]
        match = re.match(r"# (\w+\.py)", first)
        if match:
            files[match.group(1)] = block
    assert set(files) == {"mynets.py", "train.py"}
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    done = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the data and the other models the commands name
    frame = breast_cancer.frame
    frame.to_csv(tmp_path / "test.csv", index=False)
    income = frame.drop(columns="target").assign(income=np.where(frame["target"] == 1, ">50K", "<=50K"))
    income.to_parquet(tmp_path / "test.parquet")
    (tmp_path / "digits.csv").write_bytes((digits.folder / "test.csv").read_bytes())
    (tmp_path / "cnn.pt").write_bytes((digits.folder / "model.pt").read_bytes())
    (tmp_path / "sequence.py").write_text(MYNETS)
    _python(tmp_path, """
        import numpy as np, pandas as pd, torch
        from sequence import Sequence
        torch.jit.save(torch.jit.script(Sequence().eval()), "lstm.pt")
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(60, 40)), columns=[f"t{t}_f{f}" for t in range(8) for f in range(5)])
        frame["target"] = rng.integers(0, 2, 60)
        frame.to_csv("series.csv", index=False)
    """)
    commands = [line.split("  #")[0].strip() for block in _blocks(section, "bash")
                for line in block.splitlines() if line.startswith("audit ")]
    assert len(commands) >= 8
    for command in commands:
        args = shlex.split(command)[1:]
        result = invoke(*args, "--quiet", "--debug")
        assert result.exit_code == 0, (command, result.stderr)
    # (c): the tutorial's save, the class in the script itself, is refused with the fix
    _python(tmp_path, """
        import torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(30, 1)
            def forward(self, x):
                return self.fc(x)
        torch.save(Net(), "tutorial.pt")
    """)
    result = invoke("tutorial.pt", "--trust-model", "--data", "test.csv")
    assert_clean_input_error(result, "__main__.Net", "torch.jit.save")
