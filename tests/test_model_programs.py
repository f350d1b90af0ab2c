"""The static check of compiled programs: what a TorchScript archive's code or a torch.export
graph calls is read from the file, and a program that touches files, the terminal, custom
code or Python is refused before torch runs any of it (auditor.loading.programs).

Every payload is a real model built here whose code really does what it says when torch
runs it (``test_the_payloads_are_live``); through ``audit`` each is refused with exit 2 and
one line naming what it calls, and its marker file never appears.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report
from torch import nn

from auditor.contract.errors import ModelLoadError, UntrustedModelError
from auditor.loading import programs
from auditor.loading.model import load_model

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


# --- payloads: TorchScript ---------------------------------------------------------------------

class SavesItsInput(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.linear = nn.Linear(30, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.marker)
        return self.linear(x)


class CopiesASecret(nn.Module):
    def __init__(self, secret: str, marker: str) -> None:
        super().__init__()
        self.secret = secret
        self.marker = marker
        self.linear = nn.Linear(30, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stolen = torch.from_file(self.secret, shared=False, size=6, dtype=torch.uint8)
        torch.save(stolen, self.marker)
        return self.linear(x)


class SavesWhenLoaded(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.weight = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.weight, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        self.weight = state[0]
        self.marker = state[1]
        self.training = state[2]
        torch.save(self.weight, self.marker)


class Prints(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("PRINTED-BY-THE-MODEL", x.sum())
        return x[:, :1]


@torch.library.custom_op("auditor_tests::touch", mutates_args=())
def _touch(x: torch.Tensor, marker: str) -> torch.Tensor:
    Path(marker).write_text("the custom operator ran")
    return x.clone()


@_touch.register_fake
def _(x: torch.Tensor, marker: str) -> torch.Tensor:
    return torch.empty_like(x)


class CallsACustomOperator(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.auditor_tests.touch(x, self.marker)[:, :1]


# --- payloads: torch.export ---------------------------------------------------------------------

class FillsABuffer(nn.Module):
    """An honest program whose first node the tests turn into aten.from_file(victim, shared=True)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scratch = torch.empty(4, dtype=torch.uint8)
        scratch.fill_(65)
        return x[:, :1] + 0 * scratch.sum()


def rezip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None] = lambda n, d: d,
          add: dict[str, bytes] | None = None) -> Path:
    """A copy of the zip ``src`` with each member passed through ``edit`` (None drops it)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            data = edit(info.filename, old.read(info))
            if data is not None:
                new.writestr(info, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return dst


def edit_graph(src: Path, dst: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the .pt2 ``src`` whose program JSON ``change`` edited in place."""
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("/models/model.json"):
            program = json.loads(data)
            change(program)
            return json.dumps(program).encode()
        return data

    return rezip(src, dst, edit)


def export(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes=({0: batch},)), str(path))
    return path


def _from_file(victim: Path) -> Callable[[dict[str, Any]], None]:
    def change(program: dict[str, Any]) -> None:
        node = program["graph_module"]["graph"]["nodes"][0]
        assert node["target"] == "torch.ops.aten.empty.memory_format"
        node["target"] = "torch.ops.aten.from_file.default"
        node["inputs"] = [
            {"name": "filename", "arg": {"as_string": str(victim)}, "kind": 1},
            {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
            {"name": "size", "arg": {"as_int": 4}, "kind": 1},
            {"name": "dtype", "arg": {"as_scalar_type": 1}, "kind": 2},
        ]
    return change


def _writes(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def _guards(marker: Path) -> Callable[[dict[str, Any]], None]:
    def change(program: dict[str, Any]) -> None:
        program["guards_code"] = [f"{_writes(marker)} > 0"]
    return change


def _sympy(marker: Path) -> Callable[[dict[str, Any]], None]:
    """The batch size's symbolic expression, which torch hands to sympy.sympify at load."""
    def change(program: dict[str, Any]) -> None:
        pending: list[Any] = [program]
        while pending:
            item = pending.pop()
            if isinstance(item, dict) and isinstance(item.get("expr_str"), str):
                item["expr_str"] += f" + 0*len(str({_writes(marker)}))"
                return
            pending.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else [])
        raise AssertionError("the exported program has no symbolic size")
    return change


def _input_name(marker: Path) -> Callable[[dict[str, Any]], None]:
    """The input's name becomes a default argument in the source torch generates and runs."""
    evil = f"x={_writes(marker)}"

    def rename(item: Any) -> None:
        if isinstance(item, dict):
            if item.get("name") == "x" and len(item) == 1:
                item["name"] = evil
            for value in item.values():
                rename(value)
        elif isinstance(item, list):
            for value in item:
                rename(value)

    def change(program: dict[str, Any]) -> None:
        rename(program)
        values = program["graph_module"]["graph"]["tensor_values"]
        values[evil] = values.pop("x")
    return change


class Payload(NamedTuple):
    model: Path
    marker: Path  # must never appear (or, for a victim file, never change)
    expect: tuple[str, ...]  # fragments of the one-line refusal


VICTIM_TEXT = "export PATH=$HOME/bin:$PATH\n"


def build(kind: str, folder: Path) -> Payload:
    """The payload model ``kind``, built in ``folder``."""
    marker = folder / "marker"
    scripted = {
        "forward saves its input": lambda: SavesItsInput(str(marker)),
        "forward copies a secret file": lambda: CopiesASecret(str(folder / "secret.txt"), str(marker)),
        "__setstate__ saves while loading": lambda: SavesWhenLoaded(str(marker)),
        "forward prints": Prints,
        "forward calls a custom operator": lambda: CallsACustomOperator(str(marker)),
    }
    expect = {
        "forward saves its input": ("aten::save", "writes files"),
        "forward copies a secret file": ("aten::from_file", "reads files"),
        "__setstate__ saves while loading": ("__setstate__", "while loading"),
        "forward prints": ("prim::Print", "prints to the terminal"),
        "forward calls a custom operator": ("auditor_tests::touch", "custom operator"),
        "graph maps a file and fills it": ("aten::from_file", "reads files"),
        "guards_code runs Python": ("guards_code",),
        "expr_str runs Python": ("expr_str",),
        "an input name is Python": ("a name that is not an identifier", "Python source"),
    }
    (folder / "secret.txt").write_text("s3cret-password\n")
    if kind in scripted:
        model = folder / "model.pt"
        torch.jit.save(torch.jit.script(scripted[kind]()), str(model))
        return Payload(model, marker, (f"Refusing to run {model.name}", *expect[kind], "--trust-model"))
    honest = export(FillsABuffer(), torch.zeros(4, 30), folder / "honest.pt2")
    if kind == "graph maps a file and fills it":
        victim = folder / ".bashrc"
        victim.write_text(VICTIM_TEXT)
        change = _from_file(victim)
        marker = victim
    else:
        change = {"guards_code runs Python": _guards, "expr_str runs Python": _sympy,
                  "an input name is Python": _input_name}[kind](marker)
    model = edit_graph(honest, folder / "model.pt2", change)
    return Payload(model, marker, (f"Refusing to run {model.name}", *expect[kind], "--trust-model"))


def untouched(payload: Payload) -> bool:
    if payload.marker.name == ".bashrc":
        return payload.marker.read_text() == VICTIM_TEXT
    return not payload.marker.exists()


TORCHSCRIPT_PAYLOADS = [
    "forward saves its input",
    "forward copies a secret file",
    "__setstate__ saves while loading",
    "forward prints",
    "forward calls a custom operator",
]
EXPORT_PAYLOADS = [
    "graph maps a file and fills it",
    "guards_code runs Python",
    "expr_str runs Python",
    "an input name is Python",
]


@pytest.mark.parametrize("kind", TORCHSCRIPT_PAYLOADS + EXPORT_PAYLOADS)
def test_the_payloads_are_live(kind, tmp_path, capfd):
    """Run by torch itself, each payload does what the refusal says it would."""
    payload = build(kind, tmp_path)
    x = torch.ones(2, 30)
    logging.disable(logging.CRITICAL)  # torch.export logs its own failures at length
    try:
        if payload.model.suffix == ".pt":
            torch.jit.load(str(payload.model))(x)
        else:
            try:
                torch.export.load(str(payload.model)).module()(x)
            except Exception:  # noqa: BLE001 - the payload ran before torch failed on it
                pass
    finally:
        logging.disable(logging.NOTSET)
    if kind == "forward prints":
        assert "PRINTED-BY-THE-MODEL" in capfd.readouterr().out
    else:
        assert not untouched(payload), kind
    if kind == "forward copies a secret file":
        assert bytes(torch.load(payload.marker).tolist()) == b"s3cret"


@pytest.mark.parametrize("kind", TORCHSCRIPT_PAYLOADS + EXPORT_PAYLOADS)
def test_payload_is_refused_by_audit_naming_what_it_calls(kind, breast_cancer, tmp_path):
    payload = build(kind, tmp_path)
    out = tmp_path / "out"
    result = invoke(payload.model, "--data", breast_cancer.folder / "test.csv", "--out", out,
                    "--quiet", "--format", "json")
    assert_clean_input_error(result, *payload.expect)
    assert "PRINTED-BY-THE-MODEL" not in result.output
    assert untouched(payload)
    assert not out.exists()


def test_export_package_with_a_pickle_named_json_is_refused(breast_cancer, tmp_path):
    """torch.export.load falls back to the format before 2.8, which unpickles
    ``serialized_state_dict.json`` with weights_only=False when weights_only=True fails."""
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    pickled = io.BytesIO()
    torch.save({"weight": Payload()}, pickled)
    with zipfile.ZipFile(breast_cancer.folder / "exported.pt2") as real:
        program = real.read(next(n for n in real.namelist() if n.endswith("/models/model.json")))
    model = tmp_path / "model.pt2"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("model/archive_format", "pt2")
        archive.writestr("version", "8.0")
        archive.writestr("serialized_exported_program.json", program)
        archive.writestr("serialized_state_dict.json", pickled.getvalue())
        archive.writestr("serialized_constants.pt", b"")
        archive.writestr("serialized_example_inputs.pt", b"")
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", tmp_path / "out",
                    "--quiet", "--format", "json")
    assert_clean_input_error(result, "Refusing to load model.pt2", "serialized_state_dict.json", "builtins.exec")
    assert not marker.exists()


def test_trust_model_skips_the_static_check(tmp_path, capfd):
    """--trust-model is the user's word that the file's author is trusted (the OS
    confinement, elsewhere, still applies); the program then loads as torch loads it."""
    payload = build("forward prints", tmp_path)
    with pytest.raises(UntrustedModelError, match="prim::Print"):
        load_model(payload.model, device=CPU)
    loaded = load_model(payload.model, device=CPU, trust=True)
    assert loaded.module(torch.ones(2, 30)).shape == (2, 1)
    assert "PRINTED-BY-THE-MODEL" in capfd.readouterr().out


# --- ordinary models pass ------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class LSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


ORDINARY = {"mlp": (MLP, (30,)), "cnn": (CNN, (1, 8, 8)), "lstm": (LSTM, (5, 6))}


@pytest.mark.filterwarnings("ignore:The tensor attributes")  # torch.export on nn.LSTM
@pytest.mark.parametrize("save", ["torchscript", "export"])
@pytest.mark.parametrize("name", list(ORDINARY))
def test_ordinary_models_pass_the_check_and_compute_as_before(name, save, tmp_path):
    torch.manual_seed(0)
    cls, shape = ORDINARY[name]
    module = cls().eval()
    x = torch.randn(7, *shape)
    if save == "torchscript":
        path = tmp_path / "model.pt"
        torch.jit.save(torch.jit.script(module), str(path))
    else:
        path = export(module, torch.randn(4, *shape), tmp_path / "model.pt2")
    loaded = load_model(path, device=CPU)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), module(x))
    assert "checked to call tensor operators only" in loaded.trust


def test_a_dynamically_quantized_model_passes(tmp_path):
    """Its packed weights are torch's own custom classes (torch.classes.quantized, rnn)."""
    import warnings

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(30, 8), nn.ReLU(), nn.Linear(8, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)
    torch.jit.save(torch.jit.script(quantized), str(tmp_path / "q.pt"))
    x = torch.randn(5, 30)
    torch.testing.assert_close(load_model(tmp_path / "q.pt", device=CPU).module(x), quantized(x))


@pytest.mark.parametrize("fixture,name", [
    ("breast_cancer", "model.pt"), ("breast_cancer", "exported.pt2"),
    ("breast_cancer", "exported_fixed_batch.pt2"), ("wine", "model.pt"),
    ("diabetes", "model.pt"), ("digits", "model.pt"),
])
def test_every_fixture_model_passes(fixture, name, request):
    assert load_model(request.getfixturevalue(fixture).folder / name, device=CPU).module is not None


def test_the_bundled_demo_passes():
    assert load_model(REPO / "auditor" / "demo" / "model.pt", device=CPU).format == "torchscript"


def test_an_ordinary_lstm_is_audited_through_the_cli(breast_cancer, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "lstm.pt"
    torch.jit.save(torch.jit.script(LSTM().eval()), str(path))
    out = tmp_path / "out"
    result = invoke(path, "--data", breast_cancer.folder / "test.csv", "--input-shape", "5,6",
                    "--out", out, "--quiet", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    assert read_report(out)


def test_guards_torch_writes_pass(tmp_path):
    """A program whose inputs share a dynamic size carries a guard torch wrote; it passes."""
    class Two(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x[:, :2] * y

    batch = torch.export.Dim("batch", min=2, max=1000)
    program = torch.export.export(Two(), (torch.zeros(4, 5), torch.zeros(4, 2)),
                                  dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, str(tmp_path / "two.pt2"))
    with zipfile.ZipFile(tmp_path / "two.pt2") as archive:
        document = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("model.json"))))
    assert document["guards_code"], "torch wrote no guard: this test no longer tests anything"
    assert programs.export_findings(document, "models/model.json") == []


# --- the policy, against torch's own registry ----------------------------------------------------

def test_every_operator_outside_the_allowed_namespaces_is_refused():
    names = {schema.name for schema in torch._C._jit_get_all_schemas()}
    outside = sorted(n for n in names if n.split("::")[0] not in programs.NAMESPACES)
    assert outside  # debugprims::load_tensor, mkldnn::data_ptr, c10d ops...
    assert all(programs.operator_verdict(n) for n in outside)


def test_every_operator_taking_a_file_name_is_refused():
    file_ops = {
        schema.name for schema in torch._C._jit_get_all_schemas()
        if any(a.name in {"filename", "file", "path"} and str(a.type).startswith("str") for a in schema.arguments)
    }
    assert {"aten::save", "aten::from_file"} <= file_ops
    assert all(programs.operator_verdict(op) for op in file_ops)


@pytest.mark.parametrize("op", sorted(programs.REFUSED))
def test_each_named_operator_is_refused_and_known_to_torch(op):
    assert programs.operator_verdict(op) == programs.REFUSED[op]
    assert torch._C._jit_get_schemas_for_operator(op), f"{op} is no longer an operator: update REFUSED"


# --- damaged and hostile archives ----------------------------------------------------------------

def _zip_bomb(path: Path, members: int, inflated: int) -> Path:
    """A zip (named like a TorchScript archive) whose ``members`` members each inflate to
    ``inflated`` zero bytes from about a thousandth of that: written by hand, so the test
    never holds the inflated bytes itself."""
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = b"".join(packer.compress(zeros) for _ in range(inflated >> 20)) + packer.flush()
    crc = 0
    for _ in range(inflated >> 20):
        crc = zlib.crc32(zeros, crc)
    body, directory = io.BytesIO(), io.BytesIO()
    for i in range(members):
        name = f"bomb/code/__torch__/part{i}.py".encode()
        offset = body.tell()
        fields = (20, 0, 8, 0, 0, crc, len(deflated), inflated, len(name), 0)
        body.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + deflated)
        directory.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, directory.tell(), body.tell(), 0)
    path.write_bytes(body.getvalue() + directory.getvalue() + end)
    return path


def test_a_zip_bomb_is_refused_from_its_declared_sizes_without_inflating_it(breast_cancer, tmp_path):
    """64 members of 64 MiB each (4 GiB) in a file of about 4 MiB."""
    bomb = _zip_bomb(tmp_path / "bomb.pt", members=64, inflated=64 << 20)
    assert bomb.stat().st_size < 8 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ModelLoadError, match="zip bomb"):
            load_model(bomb, device=CPU)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes were allocated: a member was inflated"
    result = invoke(bomb, "--data", breast_cancer.folder / "test.csv", "--out", tmp_path / "out",
                    "--quiet", "--format", "json")
    assert_clean_input_error(result, "bomb.pt", "zip bomb")


def _declare_more(model: Path, suffix: str, extra: int) -> None:
    """Raise the size the zip's central directory declares for the member ending ``suffix``."""
    data = bytearray(model.read_bytes())
    with zipfile.ZipFile(model) as archive:
        position = archive.start_dir
    while data[position:position + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        name = bytes(data[position + 46:position + 46 + name_length]).decode()
        if name.endswith(suffix):
            size = struct.unpack_from("<I", data, position + 24)[0]
            struct.pack_into("<I", data, position + 24, size + extra)
        position += 46 + name_length + extra_length + comment_length
    model.write_bytes(bytes(data))


def test_a_stored_member_declaring_more_than_it_holds_is_refused(breast_cancer, tmp_path):
    """torch would allocate what the directory declares; zipfile would stop short."""
    model = rezip(breast_cancer.folder / "model.pt", tmp_path / "model.pt")
    _declare_more(model, "/data.pkl", 1 << 30)
    with pytest.raises(ModelLoadError, match="declares .* bytes but occupies"):
        load_model(model, device=CPU)


ESC_NAMES = {
    "a pickled member": lambda root, payload: {f"{root}/data/sample_inputs/\x1b[2Jevil\x1b[0m.pt": payload},
    "a native member": lambda root, payload: {f"{root}/data/aotinductor/model/\x1b]0;owned\x07.so": b"\x7fELF"},
}


@pytest.mark.parametrize("where", list(ESC_NAMES))
def test_member_names_reach_the_terminal_cleaned(where, breast_cancer, tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("pass",))

    pickled = io.BytesIO()
    torch.save(Payload(), pickled)
    src = breast_cancer.folder / "exported.pt2"
    root = zipfile.ZipFile(src).namelist()[0].split("/", 1)[0]
    model = rezip(src, tmp_path / "model.pt2", add=ESC_NAMES[where](root, pickled.getvalue()))
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", tmp_path / "out",
                    "--quiet", "--format", "json")
    assert_clean_input_error(result, "Refusing to load model.pt2", "\u241b")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_an_operator_name_reaches_the_terminal_cleaned(breast_cancer, tmp_path):
    def change(program: dict[str, Any]) -> None:
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.\x1b[31mmyns.op.default"

    model = edit_graph(breast_cancer.folder / "exported.pt2", tmp_path / "model.pt2", change)
    result = invoke(model, "--data", breast_cancer.folder / "test.csv", "--out", tmp_path / "out",
                    "--quiet", "--format", "json")
    assert_clean_input_error(result, "Refusing to run model.pt2", "\u241b[31mmyns::op")
    assert "\x1b" not in result.stderr


def test_torchscript_code_that_does_not_parse_is_a_clean_error(breast_cancer, tmp_path):
    def edit(name: str, data: bytes) -> bytes:
        return b"class (:\n" if "/code/" in name and name.endswith(".py") else data

    model = rezip(breast_cancer.folder / "model.pt", tmp_path / "model.pt", edit)
    with pytest.raises(ModelLoadError, match="does not parse"):
        load_model(model, device=CPU)


def _disguise(src: Path, dst: Path, how: str) -> Path:
    """The archive ``src`` with its code under an upper-case folder name (torch finds records
    without regard to case), or followed by an honest member of the same name (Python's
    zipfile reads the last of two, torch may read either)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if "/code/" in info.filename and how == "an upper-case folder":
                new.writestr(info.filename.replace("/code/", "/CODE/"), data)
                continue
            new.writestr(info, data)
            if "/code/" in info.filename and info.filename.endswith(".py") and how == "a later duplicate":
                with pytest.warns(UserWarning, match="Duplicate name"):
                    new.writestr(info.filename, b"class Nothing(Module):\n  pass\n")
    return dst


@pytest.mark.parametrize("how", ["an upper-case folder", "a later duplicate"])
def test_code_cannot_hide_behind_its_member_name(how, tmp_path):
    payload = build("forward saves its input", tmp_path)
    model = _disguise(payload.model, tmp_path / "disguised.pt", how)
    if how == "an upper-case folder":  # torch itself still finds and runs the code
        torch.jit.load(str(model))(torch.ones(2, 30))
        assert payload.marker.exists()
        payload.marker.unlink()
    with pytest.raises(UntrustedModelError, match="aten::save"):
        load_model(model, device=CPU)
    assert not payload.marker.exists()


def _first_node(program: dict[str, Any]) -> dict[str, Any]:
    return program["graph_module"]["graph"]["nodes"][0]


def _set_spec(program: dict[str, Any], spec: Any) -> None:
    program["graph_module"]["module_call_graph"][0]["signature"]["in_spec"] = json.dumps(spec)


GRAPH_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a target naming a Python function through torch": (
        lambda p: _first_node(p).update(target="torch.os.system"), "torch.os.system"),
    "a target calling any callable": (lambda p: _first_node(p).update(target="_operator.call"), "_operator.call"),
    "an extension operator": (lambda p: _first_node(p).update(target="#ext:op"), "#ext:op"),
    "an operator argument": (
        lambda p: _first_node(p)["inputs"].append({"name": "op", "arg": {"as_operator": "torch.ops.aten.save.default"}}),
        "aten::save"),
    "a string input that closes its quotes": (
        lambda p: p["graph_module"]["graph"]["inputs"].append({"as_string": "a' + open('f').read() + '"}),
        "a string input"),
    "an enum in a tree spec": (
        lambda p: _set_spec(p, [1, {"type": "builtins.dict", "context": json.dumps([{"__enum__": True,
                                "fqn": "os:environ", "name": "HOME"}]), "children_spec": []}]), "in_spec"),
    "a defaultdict whose factory is imported": (
        lambda p: _set_spec(p, [1, {"type": "collections.defaultdict", "context": "{}", "children_spec": []}]),
        "in_spec"),
    "a module path that closes its quotes": (
        lambda p: p["graph_module"]["signature"]["input_specs"][0]["parameter"].update(
            parameter_name='net.0")or print(1)or getattr(self, "weight'), "parameter_name"),
}


@pytest.mark.parametrize("edit", list(GRAPH_EDITS))
def test_graph_constructs_torch_would_run_as_python_are_refused(edit, breast_cancer, tmp_path):
    change, named = GRAPH_EDITS[edit]
    with zipfile.ZipFile(breast_cancer.folder / "exported.pt2") as archive:
        program = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("/models/model.json"))))
    assert programs.export_findings(program, "models/model.json") == []
    change(program)
    findings = programs.export_findings(program, "models/model.json")
    assert any(named in finding.what for finding in findings), findings
