"""Hostile, random and truncated model files: refused or reported cleanly, never executed.

Every hostile file here carries a harmless but live payload: unpickling it would create a
marker file (``pwned``). Each must be refused without ``--trust-model`` - exit 2, one line
that names what the file would import - and the marker must never appear, even when the
environment asks torch to stop loading with ``weights_only=True``.

Random bytes, truncated prefixes and byte-flipped copies of real model files must end in a
clean exit 2 (or, when the damage happens to leave a loadable model, a normal result):
never a traceback, never the internal-error exit 3.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.contract.errors import AuditorError, ModelLoadError, UntrustedModelError
from auditor.loading.model import LoadedModel, load_model

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parent.parent


# --- payloads: each would create `marker` when unpickled --------------------------------------

class SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ExecPayload(SystemPayload):
    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


class PopenPayload(SystemPayload):
    def __reduce__(self):
        return (subprocess.Popen, ([sys.executable, "-c", f"open({self.marker!r}, 'w').close()"],))


PAYLOADS = {
    f"{os.system.__module__}.system": SystemPayload,  # posix.system on Linux
    "builtins.exec": ExecPayload,
    "subprocess.Popen": PopenPayload,
}


def rewrite_zip(source: Path, target: Path, replace: dict) -> Path:
    """Copy a zip archive, replacing each member whose name ends with a key of ``replace``
    (by bytes, or by a function of the old bytes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            for suffix, value in replace.items():
                if info.filename.endswith(suffix):
                    data = value(data) if callable(value) else value
            new.writestr(info, data)
    return target


# --- the five hostile kinds, built at test time -------------------------------------------------

def plain_pickle(folder: Path, payload, real: Path) -> Path:
    path = folder / "model.pt"
    path.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def legacy_torch_save(folder: Path, payload, real: Path) -> Path:
    path = folder / "legacy.pt"
    torch.save({"weight": torch.ones(3), "x": payload}, path, _use_new_zipfile_serialization=False)
    return path


def zip_checkpoint(folder: Path, payload, real: Path) -> Path:
    path = folder / "checkpoint.pt"
    state = dict(torch.jit.load(str(real / "model.pt")).state_dict())
    torch.save({"state_dict": state, "optimizer": payload}, path)
    return path


def torchscript_with_swapped_data_pkl(folder: Path, payload, real: Path) -> Path:
    evil = pickle.dumps(payload, protocol=2)
    return rewrite_zip(real / "model.pt", folder / "scripted.pt", {"/data.pkl": evil, "/constants.pkl": evil})


def export_with_pickled_member(folder: Path, payload, real: Path) -> Path:
    """A .pt2 whose weights config marks the first weight ``use_pickle`` and whose member is
    a torch.save of the payload: torch.export.load would torch.load it with weights_only=False."""

    def mark_pickled(config: bytes) -> bytes:
        loaded = json.loads(config)
        first = next(iter(loaded["config"].values()))
        first["use_pickle"] = True
        return json.dumps(loaded).encode()

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return rewrite_zip(
        real / "exported.pt2", folder / "exported.pt2",
        {"_weights_config.json": mark_pickled, "/data/weights/weight_0": buffer.getvalue()},
    )


KINDS = {
    "plain pickle": plain_pickle,
    "legacy torch.save": legacy_torch_save,
    "zip torch.save checkpoint": zip_checkpoint,
    "TorchScript with a swapped data.pkl": torchscript_with_swapped_data_pkl,
    "torch.export with a use_pickle member": export_with_pickled_member,
}

WEIGHTS_ONLY_OFF = [
    pytest.param({}, id="default-env"),
    pytest.param({"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, id="FORCE_NO_WEIGHTS_ONLY=1"),
    pytest.param({"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "0"}, id="FORCE_WEIGHTS_ONLY=0"),
]


@pytest.fixture
def hostile(tmp_path, breast_cancer):
    """build(kind, global) -> (model file, marker it would create)."""

    def build(kind: str, global_name: str) -> tuple[Path, Path]:
        marker = tmp_path / "pwned"
        path = KINDS[kind](tmp_path, PAYLOADS[global_name](marker), breast_cancer.folder)
        return path, marker

    return build


def test_the_payloads_are_live(tmp_path):
    """Unpickling each payload does create its marker, so 'no marker' below means 'not run'."""
    for global_name, payload in PAYLOADS.items():
        marker = tmp_path / f"pwned-{global_name}"
        result = pickle.loads(pickle.dumps(payload(marker)))
        if isinstance(result, subprocess.Popen):
            result.wait(timeout=30)
        assert marker.exists(), global_name


@pytest.mark.parametrize("env", WEIGHTS_ONLY_OFF)
@pytest.mark.parametrize("global_name", list(PAYLOADS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_hostile_model_is_refused_naming_its_imports_and_never_run(
    kind, global_name, env, hostile, breast_cancer, tmp_path, monkeypatch
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    model, marker = hostile(kind, global_name)

    with pytest.raises(UntrustedModelError) as refused:
        load_model(model, device=CPU)
    assert global_name in str(refused.value)
    assert not marker.exists()

    out = tmp_path / "out"
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", out, "--quiet")
    assert_clean_input_error(result, f"Refusing to load {model.name}", global_name, "--trust-model")
    assert not out.exists()
    assert not marker.exists()


@pytest.mark.parametrize(
    "kind", ["zip torch.save checkpoint", "torch.export with a use_pickle member", "legacy torch.save"]
)
def test_hostile_model_is_refused_by_the_audit_command_whatever_the_torch_env(kind, hostile, breast_cancer, tmp_path):
    """As a user runs it: a fresh interpreter, with both torch variables set to turn the
    weights-only default off before torch is even imported."""
    model, marker = hostile(kind, "builtins.exec")
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONPATH": str(REPO)}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", str(model), "--data", str(breast_cancer.folder / "test.csv"),
         "--out", str(out), "--format", "json", "--quiet"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: Refusing to load"), proc.stderr
    assert "builtins.exec" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
    assert not marker.exists()


def test_every_hostile_kind_is_refused_in_a_fresh_interpreter_with_weights_only_forced_off(hostile, tmp_path):
    """torch reads TORCH_FORCE_* at call time; set before import too, nothing changes."""
    cases = []
    for kind in KINDS:
        folder = tmp_path / kind.replace(" ", "_").replace(".", "_")
        folder.mkdir()
        model, marker = hostile(kind, "subprocess.Popen")
        cases.append((str(model.rename(folder / model.name)), str(marker)))
    script = (
        "import json, sys, torch\n"
        "from pathlib import Path\n"
        "from auditor.contract.errors import UntrustedModelError\n"
        "from auditor.loading.model import load_model\n"
        "refused = []\n"
        "for model, marker in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        load_model(Path(model), device=torch.device('cpu'))\n"
        "    except UntrustedModelError as exc:\n"
        "        refused.append('subprocess.Popen' in str(exc))\n"
        "print(json.dumps(refused))\n"
    )
    for env_name, value in (("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1"), ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0")):
        env = {**os.environ, env_name: value, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == [True] * len(KINDS), env_name
        assert not any(Path(marker).exists() for _, marker in cases)


def test_real_model_files_still_load(breast_cancer):
    """The checks refuse hostile files only: the fixtures' honest files load as before."""
    folder = breast_cancer.folder
    assert load_model(folder / "model.pt", device=CPU).format == "torchscript"
    assert load_model(folder / "exported.pt2", device=CPU).format == "export"
    assert load_model(folder / "weights.pt", device=CPU, model_class="tiny_nets:BreastCancerMLP").format == "state_dict"


def test_hostile_export_sample_inputs_are_refused(tmp_path, breast_cancer):
    """torch.export.load falls back to weights_only=False for sample inputs it cannot load
    safely: a payload there is refused too."""
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save(((torch.zeros(4, 30),), {"x": ExecPayload(marker)}), buffer)
    model = rewrite_zip(breast_cancer.folder / "exported.pt2", tmp_path / "exported.pt2",
                        {"/data/sample_inputs/model.pt": buffer.getvalue()})
    with pytest.raises(UntrustedModelError, match="builtins.exec"):
        load_model(model, device=CPU)
    assert not marker.exists()


# --- random, truncated and damaged files ---------------------------------------------------------

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OUTCOMES = {"loaded": 0, "refused": 0}


def load_or_clean_error(path: Path, **kwargs) -> LoadedModel | None:
    """The loader's contract on any file: a model, or an AuditorError that exits 2."""
    try:
        loaded = load_model(path, device=CPU, **kwargs)
    except AuditorError as exc:
        assert isinstance(exc, ModelLoadError) or exc.exit_code == 2, repr(exc)
        assert exc.exit_code == 2
        message = str(exc)
        assert "\n" not in message and message.strip(), repr(message)
        assert "weights_only=False" not in message, message
        OUTCOMES["refused"] += 1
        return None
    OUTCOMES["loaded"] += 1
    return loaded


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


class RealFiles(dict):
    """The real model files' bytes, by name (a short repr keeps hypothesis' reports readable)."""

    def __repr__(self) -> str:
        return f"RealFiles({sorted(self)})"


@pytest.fixture(scope="module")
def real_files(breast_cancer):
    folder = breast_cancer.folder
    names = ("model.pt", "weights.pt", "exported.pt2", "weights.safetensors")
    return RealFiles({name: (folder / name).read_bytes() for name in names})


@pytest.fixture(scope="module")
def test_csv(breast_cancer) -> Path:
    return breast_cancer.folder / "test.csv"


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    yield
    print(f"\nfuzzed model files: {OUTCOMES['loaded']} loaded, {OUTCOMES['refused']} clean errors")


NEEDS_CLASS = {"weights.pt": "tiny_nets:BreastCancerMLP", "weights.safetensors": "tiny_nets:BreastCancerMLP"}


def fuzz_one(scratch: Path, name: str, content: bytes) -> LoadedModel | None:
    path = scratch / name
    path.write_bytes(content)
    loaded = load_or_clean_error(path, model_class=NEEDS_CLASS.get(name))
    if loaded is not None:
        with torch.no_grad():
            try:
                loaded.module(torch.zeros(2, 30))
            except Exception:  # noqa: BLE001 - running damaged code is the runner's concern
                pass
    return loaded


@FUZZ
@given(content=st.binary(max_size=4096))
def test_random_bytes_never_crash_the_loader(content, scratch):
    fuzz_one(scratch, "random.pt", content)


@FUZZ
@given(content=st.sampled_from([b"\x80\x02", b"\x80\x05", b"PK\x03\x04", b"PK\x05\x06", b"\x10\x00" + bytes(6) + b"{"]),
       tail=st.binary(max_size=2048))
def test_random_bytes_behind_a_model_magic_never_crash_the_loader(content, tail, scratch):
    """Bytes that start like a pickle, a zip or a safetensors header reach torch's parsers."""
    fuzz_one(scratch, "magic.pt", content + tail)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["model.pt", "weights.pt", "exported.pt2", "weights.safetensors"])
def test_truncated_model_file_is_a_clean_error(name, data, real_files, scratch):
    real = real_files[name]
    cut = data.draw(st.integers(min_value=0, max_value=len(real) - 1), label="cut")
    fuzz_one(scratch, name, real[:cut])


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["model.pt", "weights.pt", "exported.pt2", "weights.safetensors"])
def test_model_file_with_flipped_bytes_is_loaded_or_a_clean_error(name, data, real_files, scratch):
    real = bytearray(real_files[name])
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(real) - 1), st.integers(1, 255)), min_size=1, max_size=4),
        label="flips",
    )
    for position, mask in flips:
        real[position] ^= mask
    fuzz_one(scratch, name, bytes(real))


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["model.pt", "weights.pt", "exported.pt2"])
def test_damaged_member_with_a_valid_checksum_is_loaded_or_a_clean_error(name, data, real_files, scratch):
    """A member edited and re-zipped (so its CRC-32 is right again), as a hostile author
    could: torch must never be handed something that crashes the process."""
    with zipfile.ZipFile(io.BytesIO(real_files[name])) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    victim = data.draw(st.sampled_from(sorted(members)), label="member")
    content = bytearray(members[victim])
    if content and data.draw(st.booleans(), label="flip"):
        for position, mask in data.draw(
            st.lists(st.tuples(st.integers(0, len(content) - 1), st.integers(1, 255)), min_size=1, max_size=3),
            label="flips",
        ):
            content[position] ^= mask
    else:
        content = content[: data.draw(st.integers(0, len(content)), label="cut")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, value in members.items():
            archive.writestr(member, bytes(content) if member == victim else value)
    fuzz_one(scratch, name, buffer.getvalue())


def test_torchscript_storage_shorter_than_declared_is_refused_before_torch_reads_past_it(tmp_path, breast_cancer):
    """torch.jit.load trusts the size data.pkl declares and would read past a short record."""
    short = rewrite_zip(breast_cancer.folder / "model.pt", tmp_path / "model.pt",
                        {"/data/2": lambda data: data[:100]})
    with pytest.raises(ModelLoadError, match="tensor storage data/2 holds 100 bytes"):
        load_model(short, device=CPU)


def test_torchscript_with_broken_code_and_unreadable_debug_info_is_a_clean_error(tmp_path, breast_cancer):
    """torch reads .debug_pkl while reporting a compile error; an unreadable one aborts the
    interpreter from C++ (std::terminate), so it must be caught before torch.jit.load."""
    model = rewrite_zip(
        breast_cancer.folder / "model.pt", tmp_path / "model.pt",
        {"/nn/functional.py": b"def relu(input: Tensor) -> Tensor:\n  return (((\n",
         "/nn/functional.py.debug_pkl": b"\x00" * 64},
    )
    proc = subprocess.run(  # in a child: if this regresses, it must not take pytest down with it
        [sys.executable, "-c", "import sys, torch; from pathlib import Path; "
         "from auditor.loading.model import load_model; from auditor.contract.errors import ModelLoadError\n"
         "try:\n    load_model(Path(sys.argv[1]), device=torch.device('cpu'))\n"
         "except ModelLoadError as exc:\n    print(exc)\n", str(model)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is corrupt" in proc.stdout and "functional.py.debug_pkl" in proc.stdout, proc.stdout


@settings(max_examples=6, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", ["model.pt", "exported.pt2"])
def test_damaged_model_through_the_cli_exits_cleanly(name, data, real_files, test_csv, tmp_path_factory):
    real = bytearray(real_files[name])
    if data.draw(st.booleans(), label="truncate"):
        real = real[: data.draw(st.integers(0, len(real) - 1), label="cut")]
    else:
        for position in data.draw(st.lists(st.integers(0, len(real) - 1), min_size=1, max_size=3), label="flips"):
            real[position] ^= 0xFF
    folder = tmp_path_factory.mktemp("cli")
    model = folder / name
    model.write_bytes(bytes(real))
    result = invoke(model, "--data", test_csv, "--out", folder / "out", "--quiet",
                    "--format", "json")
    if result.exit_code in (0, 1):
        assert read_report(folder / "out")
    else:
        assert_clean_input_error(result, name)



def test_export_that_torch_fails_to_read_prints_no_traceback(breast_cancer, monkeypatch, capfd):
    """torch.export.load logs the traceback of its first failure before trying an older
    format; the user must see only our one line."""
    import torch.export.pt2_archive._package as package

    def damaged(*args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed reading zip archive")

    monkeypatch.setattr(package, "load_pt2", damaged)
    with pytest.raises(ModelLoadError, match="torch could not load exported.pt2"):
        load_model(breast_cancer.folder / "exported.pt2", device=CPU)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
