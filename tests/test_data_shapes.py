"""Data of every shape: an image folder, a NumPy archive and a dict of tensors are audited like
tables.

The same digit images as PNG files in class folders, as ``np.savez`` arrays, as a
``torch.save`` dict and as a CSV file with ``--input-shape`` give the same report; the model's
outputs equal a hand-written Pillow + torch loop over the files; each source's bad inputs are one
line and exit 2 with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tiny_nets
import torch
from PIL import Image
from sklearn import datasets

from auditor.loading.sources import source_kind
from tests.cli_helpers import assert_clean_input_error, invoke, read_report

OPTIONS = ("--format", "json", "-q", "--fail-on", "never", "--skip", "carbon", "-o", "metrics.n_resamples=200",
           "-o", "explain.samples=100")


class Digits:
    """300 test digits written four ways, and a CNN trained on the rest."""

    def __init__(self, root: Path) -> None:
        d = datasets.load_digits()
        pixels = np.round(d.images * 255 / 16).astype(np.uint8)  # scikit-learn's 0..16 as 8-bit grey
        order = np.random.default_rng(0).permutation(len(d.target))
        test, train = order[:300], order[300:]
        torch.manual_seed(0)
        self.module = tiny_nets.DigitsCNN()  # its inputs are divided by 16 inside: it learns the scale
        optimiser = torch.optim.Adam(self.module.parameters(), 1e-2)
        X = torch.tensor(pixels[train] / 255.0, dtype=torch.float32)[:, None]
        for _ in range(200):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(self.module(X), torch.tensor(d.target[train])).backward()
            optimiser.step()
        self.module.eval()
        self.model = root / "cnn.pt"
        meta = {"class_names": [str(i) for i in range(10)]}
        torch.jit.save(torch.jit.script(self.module), str(self.model), _extra_files={"auditor.json": json.dumps(meta)})
        self.folder = root / "images"
        names = []
        for j, i in enumerate(test):
            where = self.folder / str(d.target[i])
            where.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(where / f"{j:04d}.png")
            names.append((str(d.target[i]), f"{j:04d}.png", i))
        names.sort()  # the folder's order: class folders, then files, sorted
        self.files = [self.folder / label / name for label, name, _ in names]
        self.labels = [label for label, _, _ in names]
        self.X = (pixels[[i for *_, i in names]].astype(np.float32) / np.float32(255))[:, None]
        self.npz = root / "test.npz"
        np.savez(self.npz, X=self.X, label=np.array(self.labels))
        self.tensors = root / "test.pt"
        torch.save({"X": torch.tensor(self.X), "label": self.labels}, self.tensors)
        self.csv = root / "test.csv"
        frame = pd.DataFrame({f"c0_y{r}_x{c}": self.X[:, 0, r, c] for r in range(8) for c in range(8)})
        frame["label"] = self.labels
        frame.to_csv(self.csv, index=False, float_format="%.9g")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    return Digits(tmp_path_factory.mktemp("shapes"))


def _audit(digits: Digits, data: Path, out: Path, *extra: object) -> dict:
    result = invoke(digits.model, "--data", data, "--out", out, *OPTIONS, *extra)
    assert result.exit_code == 0, result.stderr
    return read_report(out)


def _figures(report: dict) -> str:
    """Everything but how the run went and the privacy scan (which reads the file's own columns)."""
    report = json.loads(json.dumps(report))
    for key in ("run", "measurements", "data"):
        report.pop(key)
    report["audits"].pop("privacy")
    return json.dumps(report, sort_keys=True)


def test_sources_are_recognised_by_content(digits, tmp_path):
    assert source_kind(digits.folder) == "images"
    assert source_kind(digits.npz) == "npz"
    assert source_kind(digits.tensors) == "tensors"
    assert source_kind(digits.csv) is None
    assert source_kind(digits.model) is None  # TorchScript is a model, not tensors
    renamed = tmp_path / "data.bin"
    renamed.write_bytes(digits.npz.read_bytes())
    assert source_kind(renamed) == "npz"


def test_an_image_folder_npz_tensors_and_csv_give_the_same_report(digits, tmp_path):
    csv = _audit(digits, digits.csv, tmp_path / "csv", "--input-shape", "1,8,8")
    for name, data in (("folder", digits.folder), ("npz", digits.npz), ("tensors", digits.tensors)):
        report = _audit(digits, data, tmp_path / name)
        assert _figures(report) == _figures(csv), name
        assert report["data"]["rows"] == 300 and report["data"]["features"][:2] == ["c0_y0_x0", "c0_y0_x1"]
    accuracy = csv["audits"]["metrics"]["metrics"]["accuracy"]["value"]
    assert accuracy > 0.85  # a real model, not noise
    folder = read_report(tmp_path / "folder")
    assert folder["data"]["size_bytes"] == sum(f.stat().st_size for f in digits.files)
    privacy = folder["audits"]["privacy"]
    assert "by the values of all 300 rows" in privacy["summary"]  # the file names and labels were scanned


def test_the_outputs_equal_a_hand_written_loop_over_the_files(digits, tmp_path):
    report = _audit(digits, digits.folder, tmp_path / "out", "--audits", "metrics")
    with torch.no_grad():
        images = [np.asarray(Image.open(f), dtype=np.float32) / 255 for f in digits.files]
        logits = digits.module(torch.tensor(np.stack(images))[:, None])
    predicted = logits.argmax(1).numpy()
    truth = np.array([int(label) for label in digits.labels])
    assert report["audits"]["metrics"]["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(predicted == truth))


def test_a_flat_folder_takes_its_labels_and_sensitive_columns_from_a_table(digits, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    rows = []
    for k, (file, label) in enumerate(zip(digits.files, digits.labels)):
        name = f"img{k:04d}.png"
        (flat / name).write_bytes(file.read_bytes())
        rows.append({"file": name, "digit": label, "site": "north" if k % 3 else "south"})
    table = flat / "labels.csv"  # kept in the folder it describes, as people do
    pd.DataFrame(rows).to_csv(table, index=False)
    report = _audit(digits, flat, tmp_path / "out", "--labels", table, "--target", "digit", "--sensitive", "site")
    assert report["data"]["target"] == "digit" and report["data"]["rows"] == 300
    table = next(t for t in report["audits"]["fairness"]["tables"] if t["name"] == "groups_site")
    counts = {row[0]: row[2] for row in table["rows"]}
    assert counts == {"north": 200, "south": 100}  # the table's sensitive column, row by row
    scanned = next(t for t in report["audits"]["privacy"]["tables"] if t["name"] == "scanned_files")["rows"]
    assert [(row[0], row[1], row[3], row[4]) for row in scanned] == [
        ("flat", "audit data (--data)", 1, 1), ("labels.csv", "labels table (--labels)", 3, 3)]
    same = _audit(digits, digits.folder, tmp_path / "classes", "--audits", "metrics")
    assert report["audits"]["metrics"]["metrics"]["accuracy"] == same["audits"]["metrics"]["metrics"]["accuracy"]
    # the Python API takes the same keywords as the command line's options
    import auditor

    called = auditor.audit(digits.model, flat, labels=flat / "labels.csv", target="digit", sensitive="site",
                           image_size=(8, 8), image_mode="L", audits="metrics,fairness",
                           options={"metrics.n_resamples": 200}).report.to_dict()
    assert called["audits"]["metrics"]["metrics"]["accuracy"] == report["audits"]["metrics"]["metrics"]["accuracy"]
    assert called["audits"]["fairness"]["tables"] == report["audits"]["fairness"]["tables"]


def test_mixed_sizes_need_a_declared_size_and_then_are_resized(digits, tmp_path):
    folder = tmp_path / "mixed"
    for label in ("0", "1"):
        (folder / label).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "0" / "a.png")
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(folder / "1" / "b.png")
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "not all of one size", "1/b.png is 16x16", "--image-size 8x8")
    assert not (tmp_path / "out").exists()
    report = _audit(digits, folder, tmp_path / "resized", "--image-size", "8x8", "--audits", "metrics")
    assert report["data"]["rows"] == 2


def test_mixed_modes_need_a_declared_mode(digits, tmp_path):
    folder = tmp_path / "modes"
    (folder / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "0" / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "0" / "b.png")
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "not all of one mode", "0/b.png is RGB", "--image-mode L")
    report = _audit(digits, folder, tmp_path / "grey", "--image-mode", "L", "--audits", "metrics")
    assert report["data"]["rows"] == 2


def _folder_with(tmp_path: Path, name: str, content: bytes) -> Path:
    folder = tmp_path / "bad"
    (folder / "3").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "3" / "ok.png")
    (folder / "3" / name).write_bytes(content)
    return folder


@pytest.mark.parametrize(("name", "content", "fragments"), [
    ("notes.txt", b"hello", ("3/notes.txt in bad is not an image file",)),
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ("3/broken.png in bad",)),
    ("cut.png", None, ("3/cut.png in bad is corrupt or truncated",)),
], ids=["not-an-image", "corrupt", "truncated"])
def test_a_bad_file_in_an_image_folder_is_one_line_naming_it(digits, tmp_path, name, content, fragments):
    if content is None:
        import io

        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)).save(buffer, "PNG")
        content = buffer.getvalue()[:-30]
    folder = _folder_with(tmp_path, name, content)
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_a_decompression_bomb_is_refused(digits, tmp_path, monkeypatch):
    folder = _folder_with(tmp_path, "big.png", b"")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "3" / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is then past twice the limit
    from auditor.contract.errors import DataError
    from auditor.loading.sources.images import _decoded

    with pytest.raises(DataError, match="decompression bomb"):
        _decoded(folder / "3" / "big.png", folder)


def test_empty_classes_flat_folders_without_labels_and_missing_files_are_refused(digits, tmp_path):
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    result = invoke(digits.model, "--data", empty, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "The class folder cat in empty holds no image")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "a.png")
    result = invoke(digits.model, "--data", flat, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "has no class sub-folders", "--labels labels.csv")
    table = tmp_path / "labels.csv"
    table.write_text("file,label\na.png,1\nmissing.png,2\n")
    result = invoke(digits.model, "--data", flat, "--labels", table, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "names 1 file(s) not in the folder flat", "'missing.png'")


def test_a_link_to_a_folder_is_not_followed(digits, tmp_path):
    folder = tmp_path / "loop"
    (folder / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "0" / "a.png")
    (folder / "0" / "again").symlink_to(folder, target_is_directory=True)
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "is a symbolic link to a folder")


def test_arrays_of_mismatched_length_and_odd_archives_are_refused(digits, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((5, 1, 8, 8), np.float32), label=np.arange(4))
    result = invoke(digits.model, "--data", bad, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "holds the array 'label' of shape (4,)", "inputs 'X' hold 5 examples")
    nan = tmp_path / "nan.npz"
    X = np.zeros((5, 1, 8, 8), np.float32)
    X[3, 0, 2, 2] = np.nan
    np.savez(nan, X=X, label=np.arange(5))
    result = invoke(digits.model, "--data", nan, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "NaN or infinite value in example 4")
    weights = tmp_path / "weights.pt"
    torch.save(digits.module.state_dict(), weights)
    result = invoke(digits.model, "--data", weights, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "looks like a model's weights", "Did you swap")
    assert not (tmp_path / "out").exists()


def test_a_mean_and_std_in_the_metadata_normalise_the_images_as_the_same_arrays_normalised_by_hand(digits, tmp_path):
    model = tmp_path / "normalised.pt"
    meta = {"class_names": [str(i) for i in range(10)], "image": {"mean": [0.25], "std": [0.5]}}
    torch.jit.save(torch.jit.script(digits.module), str(model), _extra_files={"auditor.json": json.dumps(meta)})
    arrays = tmp_path / "normalised.npz"
    np.savez(arrays, X=(digits.X - np.float32(0.25)) / np.float32(0.5), label=np.array(digits.labels))
    only = ("--audits", "metrics", "--format", "json", "-q")
    for data, out in ((digits.folder, "folder"), (arrays, "arrays")):
        assert invoke(model, "--data", data, "--out", tmp_path / out, *only).exit_code == 0
    folder, by_hand = read_report(tmp_path / "folder"), read_report(tmp_path / "arrays")
    assert folder["audits"]["metrics"] == by_hand["audits"]["metrics"]
    plain = _audit(digits, digits.folder, tmp_path / "plain", "--audits", "metrics")
    assert plain["audits"]["metrics"]["metrics"]["log_loss"] != folder["audits"]["metrics"]["metrics"]["log_loss"]


def test_the_image_demo_audits_a_cnn_from_png_folders(tmp_path):
    result = invoke("demo", "--images", "--out", tmp_path / "out", "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    report = read_report(tmp_path / "out")
    assert report["run"]["command"] == "audit demo --images"
    assert report["data"]["rows"] == 540 and report["train_data"]["rows"] == 1257
    assert report["data"]["features"][:2] == ["c0_y0_x0", "c0_y0_x1"] and len(report["data"]["features"]) == 64
    audits = report["audits"]
    assert audits["metrics"]["metrics"]["accuracy"]["value"] > 0.95
    assert {c["kind"] for c in audits["explain"]["charts"]} == {"heatmap"}
    assert audits["overfitting"]["status"] == "pass" and audits["fairness"]["status"] == "skipped"
    assert report["verdict"] == "pass"


def test_personal_data_in_image_metadata_is_counted_by_kind_never_shown(digits, tmp_path):
    folder = tmp_path / "photos"
    for k, file in enumerate(digits.files[:40]):
        (folder / file.parent.name).mkdir(parents=True, exist_ok=True)
        image = Image.open(file)
        exif = Image.Exif()
        if k % 4 == 0:  # 10 images: an artist's name and a GPS position
            exif[0x013B] = "Jane Doe"
            gps = exif.get_ifd(0x8825)
            gps[1], gps[2] = "N", (52.0, 31.0, 0.0)
        if k % 8 == 0:  # 5 of them also a camera serial number
            exif.get_ifd(0x8769)[0xA431] = "SN-99871"
        image.save(folder / file.parent.name / file.name, exif=exif)
    report = _audit(digits, folder, tmp_path / "out", "--audits", "privacy")
    privacy = report["audits"]["privacy"]
    finding = next(f for f in privacy["findings"] if f["code"] == "personal-image-metadata")
    assert ("of 40 images scanned, 10 with a GPS position, 10 with an artist name and 5 with a camera serial "
            "number") in finding["message"]
    assert privacy["metrics"]["images_with_personal_metadata"]["value"] == 10
    text = json.dumps(report)
    assert "Jane Doe" not in text and "SN-99871" not in text and "52.0" not in text
    clean = _audit(digits, digits.folder, tmp_path / "clean", "--audits", "privacy")["audits"]["privacy"]
    assert clean["metrics"]["images_with_personal_metadata"]["value"] == 0
    assert "hold no personal data" in clean["summary"]


def test_skip_unreadable_leaves_out_a_few_broken_images_and_counts_them(digits, tmp_path):
    folder = tmp_path / "some-broken"
    for file in digits.files:
        (folder / file.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / file.parent.name / file.name).write_bytes(file.read_bytes())
    broken = [digits.files[5], digits.files[150]]
    for file in broken:
        (folder / file.parent.name / file.name).write_bytes(file.read_bytes()[:-40])  # truncated
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "refused", "-q")
    assert_clean_input_error(result, "is corrupt or truncated")
    report = _audit(digits, folder, tmp_path / "out", "--skip-unreadable", "--audits", "metrics")
    facts = report["run"]["engine"]["data"]
    assert facts["skipped_unreadable"] == 2 and report["data"]["rows"] == 298
    assert facts["skipped_examples"] == [f"{f.parent.name}/{f.name}" for f in broken]
    keep = [i for i, f in enumerate(digits.files) if f not in broken]
    with torch.no_grad():
        predicted = digits.module(torch.tensor(digits.X[keep])).argmax(1).numpy()
    truth = np.array([int(digits.labels[i]) for i in keep])
    assert report["audits"]["metrics"]["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(predicted == truth))
    for file in digits.files[10:20]:  # 12 of 300 broken: past 1%, the data need fixing
        (folder / file.parent.name / file.name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = invoke(digits.model, "--data", folder, "--out", tmp_path / "many", "-q", "--skip-unreadable")
    assert_clean_input_error(result, "12 images in some-broken do not decode", "at most 3 of 300")


def test_a_saved_hugging_face_dataset_gives_the_same_report(digits, tmp_path):
    datasets = pytest.importorskip("datasets", reason="writing the fixture needs the datasets library")
    images = [Image.open(f) for f in digits.files]
    names = [str(i) for i in range(10)]
    as_images = datasets.Dataset.from_dict(
        {"image": images, "digit": [int(label) for label in digits.labels]},
        features=datasets.Features({"image": datasets.Image(), "digit": datasets.ClassLabel(names=names)}))
    as_images.save_to_disk(str(tmp_path / "hf_images"))
    as_arrays = datasets.Dataset.from_dict(
        {"pixel_values": digits.X, "label": digits.labels},
        features=datasets.Features({"pixel_values": datasets.Array3D((1, 8, 8), "float32"),
                                    "label": datasets.Value("string")}))
    as_arrays.save_to_disk(str(tmp_path / "hf_arrays"))
    as_lists = datasets.Dataset.from_dict({"X": digits.X.tolist(), "label": digits.labels})
    as_lists.save_to_disk(str(tmp_path / "hf_lists"))
    only = ("--audits", "metrics,explain,privacy")  # outputs and features (every audit: the four-way test above)
    folder = _figures(_audit(digits, digits.folder, tmp_path / "folder", *only))
    for name, extra in (("hf_images", ("--target", "digit")), ("hf_arrays", ()), ("hf_lists", ())):
        report = _audit(digits, tmp_path / name, tmp_path / f"out_{name}", *extra, *only)
        got = _figures(report).replace('"digit"', '"label"')  # the target's name is the dataset's
        assert got == folder, name
    splits = datasets.DatasetDict({"train": as_lists, "test": as_lists})
    splits.save_to_disk(str(tmp_path / "hf_splits"))
    result = invoke(digits.model, "--data", tmp_path / "hf_splits", "--out", tmp_path / "x", "-q")
    assert result.exit_code == 2 and "DatasetDict of 2 split(s) (train, test): name the split" in result.stderr
    state = json.loads((tmp_path / "hf_lists" / "state.json").read_text())
    state["_data_files"] = [{"filename": "../../secret.arrow"}]
    (tmp_path / "hf_lists" / "state.json").write_text(json.dumps(state))
    result = invoke(digits.model, "--data", tmp_path / "hf_lists", "--out", tmp_path / "x", "-q")
    assert_clean_input_error(result, "lists a data file '../../secret.arrow' that is not a plain file name")


# --- text: a column of a table, as token ids -----------------------------------------------------

def test_a_text_column_is_audited_as_the_tokenizers_ids_and_padding_changes_nothing(reviews, tmp_path):
    from tokenizers import Tokenizer

    root, frame, model = reviews
    result = invoke(root / "model.pt", "--data", root / "reviews.csv", "--tokenizer", root / "tokenizer.json",
                    "--sensitive", "site", "--out", tmp_path / "out", "--format", "json", "-q", "--fail-on", "never")
    assert result.exit_code == 0, result.stderr
    report = read_report(tmp_path / "out")
    assert report["data"]["features"][:2] == ["token0", "token1"] and report["data"]["rows"] == 400
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))  # one text at a time, unpadded
    with torch.no_grad():
        one_by_one = [model(torch.tensor([tokenizer.encode(text).ids])).argmax(1).item() for text in frame["review"]]
    expected = float(np.mean(np.array(one_by_one) == frame["label"].to_numpy()))
    assert report["audits"]["metrics"]["metrics"]["accuracy"]["value"] == pytest.approx(expected)
    import auditor  # the Python API takes the same keywords

    called = auditor.audit(root / "model.pt", root / "reviews.csv", text="review", tokenizer=root / "tokenizer.json",
                           max_tokens=16, audits="metrics").report.to_dict()
    assert called["audits"]["metrics"]["metrics"]["accuracy"]["value"] == pytest.approx(expected)
    assert expected > 0.9
    assert report["audits"]["fairness"]["status"] != "error"
    explain = report["audits"]["explain"]  # token attributions: tests/test_explain.py
    assert explain["status"] == "pass" and "occlusion" in explain["summary"]
    privacy = report["audits"]["privacy"]  # the text is scanned, and it is what the model reads
    flagged = {row[0]: row for row in next(t for t in privacy["tables"] if t["name"] == "personal_data_columns")["rows"]}
    assert flagged["'review'"][4] == "yes"


def test_text_needs_a_real_tokenizer_and_a_declared_length(reviews, tmp_path):
    root, _, _ = reviews
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    result = invoke(root / "model.pt", "--data", root / "reviews.csv", "--tokenizer", bad, "--out", tmp_path / "o", "-q")
    assert_clean_input_error(result, "The tokenizer file tokenizer.json is not a tokenizers JSON file")
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.load(str(root / "model.pt")), str(plain))  # no metadata: nothing declared
    result = invoke(plain, "--data", root / "reviews.csv", "--text", "review", "--tokenizer", root / "tokenizer.json",
                    "--target", "label", "--out", tmp_path / "o", "-q")
    assert_clean_input_error(result, "--max-tokens N", "must be declared")
    assert not (tmp_path / "o").exists()


def test_malformed_saved_datasets_and_one_dimensional_inputs_are_one_line(digits, tmp_path):
    datasets = pytest.importorskip("datasets", reason="writing the fixture needs the datasets library")
    base = tmp_path / "hf"
    datasets.Dataset.from_dict({"X": digits.X[:20].reshape(20, -1).tolist(), "label": digits.labels[:20]}).save_to_disk(
        str(base))
    for name, file, content in (("features", "dataset_info.json", '{"features": {"X": 5, "label": 1}}'),
                                ("state", "state.json", "[1, 2]")):
        broken = tmp_path / name
        import shutil

        shutil.copytree(base, broken)
        (broken / file).write_text(content)
        result = invoke(digits.model, "--data", broken, "--out", tmp_path / "out", "-q")
        assert_clean_input_error(result, f"The saved dataset {name}", "Save it again")
    flat = tmp_path / "flat.npz"
    np.savez(flat, X=np.zeros(5, np.float32), label=np.arange(5))
    result = invoke(digits.model, "--data", flat, "--out", tmp_path / "out", "-q")
    assert_clean_input_error(result, "one number an example", "X.reshape(-1, 1)")
    assert not (tmp_path / "out").exists()
