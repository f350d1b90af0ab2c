"""Benchmark auditing an image folder against a plain torch DataLoader loop over it.

The issue's target: images per second of the whole audit (metrics + fairness + explain on a
sample) at least 0.8x a plain ``torch.utils.data.DataLoader`` + forward loop over the same
folder with the same number of workers, and memory flat in the number of images.

The data: scikit-learn's 8x8 digits, scaled to 8-bit grey and tiled to 28x28 with a seeded
shift and noise per copy, written as PNG files (``--images`` of them, default 20,000) into a
flat folder with ``labels.csv`` (file, label, and a ``device`` column of 3 values as the
sensitive attribute), cached under ``benchmarks/out/``. The model: a small CNN trained for a
few steps (its accuracy does not matter here), saved as TorchScript.

**The floor** (``FLOOR_SOURCE``, in full): a separate Python process that imports torch and
Pillow, loads the model, and runs a ``DataLoader`` (batch 256, ``--workers`` worker
processes) over a Dataset that opens each listed PNG with Pillow and scales it to [0, 1],
with one forward pass per batch; nothing else. The audit: ``audit MODEL --data FOLDER
--labels labels.csv --sensitive device --audits metrics,fairness,explain``. Each is run
``--repeats`` times in ABBA order; wall clock from spawn to exit and peak RSS (``ru_maxrss``
of the child and its waited-for descendants) as in ``bench_audit.py``.

Usage (from the repository root)::

    python benchmarks/bench_images.py --images 20000 --repeats 3 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_audit import OUT_DIR, _run_process_peak_mib, audit_command, machine, run_child  # noqa: E402 - not a package

SIDE = 28

FLOOR_SOURCE = """
import csv, json, sys, time
started = time.perf_counter()
import numpy as np
import torch
from PIL import Image
folder, model_path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(folder + "/labels.csv") as handle:
    files = [row["file"] for row in csv.DictReader(handle)]

class Folder(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        with Image.open(folder + "/" + files[i]) as image:
            return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]

if __name__ == "__main__":
    model = torch.jit.load(model_path).eval()
    loader = torch.utils.data.DataLoader(Folder(), batch_size=256, num_workers=workers)
    outputs = []
    with torch.inference_mode():
        for batch in loader:
            outputs.append(model(batch))
    print(json.dumps({"rows": sum(len(o) for o in outputs), "seconds": time.perf_counter() - started}))
"""


def ensure_data(n: int) -> tuple[Path, Path]:
    """The folder of ``n`` PNG images with labels.csv, and the model; built once and cached."""
    import torch
    from PIL import Image
    from sklearn import datasets

    folder = OUT_DIR / f"digits28_{n}"
    model = OUT_DIR / "digits28_cnn.pt"
    if not (folder / "labels.csv").is_file():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        digits = datasets.load_digits()
        base = np.round(digits.images * 255 / 16).astype(np.uint8)
        rng = np.random.default_rng(0)
        rows = []
        for k in range(n):
            i = int(rng.integers(len(base)))
            canvas = rng.integers(0, 30, (SIDE, SIDE)).astype(np.uint8)
            top, left = (int(v) for v in rng.integers(0, SIDE - 16, 2))
            canvas[top:top + 16, left:left + 16] = np.maximum(canvas[top:top + 16, left:left + 16],
                                                              np.kron(base[i], np.ones((2, 2), np.uint8)))
            name = f"{k:06d}.png"
            Image.fromarray(canvas).save(folder / name)
            rows.append({"file": name, "label": int(digits.target[i]), "device": "abc"[k % 3]})
        with open(folder / "labels.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "label", "device"])
            writer.writeheader()
            writer.writerows(rows)
    if not model.is_file():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10)).eval()
        meta = {"class_names": [str(i) for i in range(10)], "target": "label"}
        torch.jit.save(torch.jit.script(net), str(model), _extra_files={"auditor.json": json.dumps(meta)})
    return folder, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the floor")
    args = parser.parse_args()
    folder, model = ensure_data(args.images)
    floor_script = OUT_DIR / "images_floor.py"
    floor_script.write_text(FLOOR_SOURCE)
    audit_cmd = audit_command()
    floor_cmd = [sys.executable, str(floor_script), str(folder), str(model), str(args.workers)]
    runs: dict[str, list[tuple[float, float]]] = {"floor": [], "audit": []}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        run_child(floor_cmd, logs)  # untimed: page cache, .pyc files
        for r in range(args.repeats):
            order = ("floor", "audit") if r % 2 == 0 else ("audit", "floor")
            for which in order:
                if which == "floor":
                    cmd = floor_cmd
                else:
                    cmd = audit_cmd + [str(model), "--data", str(folder), "--labels", str(folder / "labels.csv"),
                                       "--sensitive", "device", "--audits", "metrics,fairness,explain",
                                       "--out", str(Path(tmp) / f"out{r}"), "--quiet", "--format", "json",
                                       "--fail-on", "never"]
                run = run_child(cmd, logs)
                peak = run.max_rss_mib
                if which == "audit":  # and the process that ran the model (report.json), an upper bound
                    peak += _run_process_peak_mib(Path(tmp) / f"out{r}")
                runs[which].append((run.seconds, peak))
    result: dict[str, object] = {"machine": machine("cpu"), "images": args.images, "workers": args.workers}
    summary: dict[str, dict[str, float]] = {}
    for which, values in runs.items():
        seconds = statistics.median(v[0] for v in values)
        summary[which] = {"median_seconds": seconds, "images_per_second": args.images / seconds,
                          "median_peak_mib": statistics.median(v[1] for v in values)}
        result[which] = {**summary[which], "seconds": [v[0] for v in values], "peak_mib": [v[1] for v in values]}
    floor, audit = summary["floor"], summary["audit"]
    ratio = audit["images_per_second"] / floor["images_per_second"]
    result["throughput_ratio"] = ratio
    (OUT_DIR / "bench_images.json").write_text(json.dumps(result, indent=2))
    print(f"{args.images:,} images, {args.workers} workers: floor {floor['median_seconds']:.1f} s "
          f"({floor['images_per_second']:,.0f} images/s, {floor['median_peak_mib']:,.0f} MiB); "
          f"audit {audit['median_seconds']:.1f} s ({audit['images_per_second']:,.0f} images/s, "
          f"{audit['median_peak_mib']:,.0f} MiB); throughput {ratio:.2f}x the floor (target >= 0.8)")


if __name__ == "__main__":
    main()
