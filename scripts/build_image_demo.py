"""Build the bundled image demo (``audit demo --images``) under ``auditor/demo/images/``.

The data are scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten
Digits" test set (1,797 8x8 images of digits, grey levels 0-16; E. Alpaydin and C. Kaynak,
1998; CC BY 4.0), shipped with scikit-learn (BSD-3-Clause), so nothing is downloaded. Each
image is written as an 8-bit grey PNG (level * 255 / 16, rounded) into class folders:
``test/<digit>/<n>.png`` (30%, stratified, seed 0) and ``train/<digit>/<n>.png`` (the rest).
A small CNN (conv 1->8 3x3, ReLU, max-pool 2, linear 128->10) is trained on the training
PNGs as auditor reads them (float32 in [0, 1]), 250 epochs of full-batch Adam, with a
validation split of the training images recorded per epoch in ``history.csv``; it is saved
as TorchScript ``cnn.pt`` with ``auditor.json`` (class names, image mode and size).

Run from the repository root: ``python scripts/build_image_demo.py``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn import datasets
from sklearn.model_selection import train_test_split

OUT = Path(__file__).resolve().parents[1] / "auditor" / "demo" / "images"
EPOCHS = 250


class DigitsCNN(torch.nn.Module):
    """8x8 grey digits in [0, 1] -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.head = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _write(folder: Path, pixels: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
    for n, (image, label) in enumerate(zip(pixels, labels)):
        where = folder / str(int(label))
        where.mkdir(parents=True, exist_ok=True)
        (where / f"{int(index[n]):04d}.png").write_bytes(_png(image))


def _read(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The PNGs back, as auditor reads them (sorted class folders, sorted files, / 255)."""
    X, y = [], []
    for where in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(where.iterdir()):
            X.append(np.asarray(Image.open(file), dtype=np.float32) / np.float32(255))
            y.append(int(where.name))
    return np.stack(X)[:, None], np.array(y)


def _strip_debug_info(path: Path) -> None:
    with zipfile.ZipFile(path) as source:
        members = [(i, source.read(i)) for i in source.infolist() if not i.filename.endswith(".debug_pkl")]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for info, data in members:
            info.date_time = (1980, 1, 1, 0, 0, 0)
            target.writestr(info, data)


def main() -> None:
    digits = datasets.load_digits()
    pixels = np.round(digits.images * 255 / 16).astype(np.uint8)
    index = np.arange(len(digits.target))
    train_idx, test_idx = train_test_split(index, test_size=0.3, random_state=0, stratify=digits.target)
    if OUT.exists():
        shutil.rmtree(OUT)
    _write(OUT / "test", pixels[test_idx], digits.target[test_idx], test_idx)
    _write(OUT / "train", pixels[train_idx], digits.target[train_idx], train_idx)

    X, y = _read(OUT / "train")
    fit, val = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    torch.manual_seed(0)
    model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    rows = []
    for epoch in range(1, EPOCHS + 1):
        started = time.perf_counter()
        model.train()
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt[fit]), yt[fit])
        loss.backward()
        optimiser.step()
        model.eval()
        with torch.no_grad():
            out_fit, out_val = model(Xt[fit]), model(Xt[val])
            rows.append({
                "epoch": epoch,
                "train_loss": float(torch.nn.functional.cross_entropy(out_fit, yt[fit])),
                "val_loss": float(torch.nn.functional.cross_entropy(out_val, yt[val])),
                "train_accuracy": float((out_fit.argmax(1) == yt[fit]).float().mean()),
                "val_accuracy": float((out_val.argmax(1) == yt[val]).float().mean()),
                "seconds": time.perf_counter() - started,
            })
    with open(OUT / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    meta = {
        "class_names": [str(i) for i in range(10)],
        "target": "label",
        "task": "multiclass",
        "output": "logits",
        "image": {"mode": "L", "size": [8, 8]},
        "intended_use": "A teaching example: a small CNN for 8x8 handwritten digits.",
        "training_data": "scikit-learn's copy of the UCI Optical Recognition of Handwritten Digits test set "
                         "(70% of 1,797 images, stratified, seed 0).",
        "citation": "E. Alpaydin and C. Kaynak (1998), Optical Recognition of Handwritten Digits, UCI Machine "
                    "Learning Repository, https://doi.org/10.24432/C50P49 (CC BY 4.0).",
    }
    scripted = torch.jit.script(model.eval())
    path = OUT / "cnn.pt"
    torch.jit.save(scripted, str(path), _extra_files={"auditor.json": json.dumps(meta, indent=2)})
    _strip_debug_info(path)
    Xtest, ytest = _read(OUT / "test")
    with torch.no_grad():
        accuracy = float((torch.jit.load(str(path))(torch.tensor(Xtest)).argmax(1).numpy() == ytest).mean())
    (OUT / "README.md").write_text(README.format(train=len(y), test=len(ytest), accuracy=accuracy,
                                                 epochs=EPOCHS, bytes=path.stat().st_size), encoding="utf-8")
    print(f"wrote {OUT}: {len(y)} training and {len(ytest)} test images; test accuracy {accuracy:.3f}",
          file=sys.stderr)


README = """# The bundled image demo: a small CNN on handwritten digits

Generated by `python scripts/build_image_demo.py` (run from the repository root); do not edit
by hand. `audit demo --images` audits `cnn.pt` on `test/`, with `train/` as the training data
and `history.csv` as its training history.

**Data.** scikit-learn's bundled copy of the UCI *Optical Recognition of Handwritten Digits*
test set: 1,797 images of 8x8 pixels, grey levels 0-16 (E. Alpaydin and C. Kaynak, 1998, UCI
Machine Learning Repository, https://doi.org/10.24432/C50P49, licensed CC BY 4.0; shipped with
scikit-learn under BSD-3-Clause). Each image is an 8-bit grey PNG (level x 255 / 16, rounded),
named by its index in scikit-learn's data, in a folder named by its digit: `test/<digit>/` holds
{test} images (30%, stratified, seed 0), `train/<digit>/` the other {train}.

**Model.** `cnn.pt`, TorchScript ({bytes:,} bytes): conv 1->8 (3x3, padding 1), ReLU, max-pool
2, linear 128->10 logits; trained on 80% of the training images as auditor reads them (float32
in [0, 1]), {epochs} epochs of full-batch Adam (learning rate 0.01, seed 0), the other 20%
recorded as validation in `history.csv` (its `seconds` column is measured at each build).
Its `auditor.json` gives the class names, the image mode and size (L, 8x8), intended use,
training data and citation. Test accuracy when built: {accuracy:.3f}. There are no sensitive
attributes in this data set, so the fairness audit is skipped.
"""


if __name__ == "__main__":
    main()
