"""One concept: the pass handed over as files, from the Ray driver to the run.

Under ``--engine ray`` the pass runs in the parent process (the Ray driver: it needs the
network, which the confined run may not have), and the run, confined, reads what the pass
kept from a folder the parent wrote and the run may only read: the model's outputs and the
features as ``.npy`` (read with ``allow_pickle=False``), the kept columns as an Arrow IPC
file, what the pass did as JSON. The run then builds its dataset exactly as the stream engine
does (:func:`auditor.loading.data.finish`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from auditor.loading.columns import ReadPlan
from auditor.loading.data import finish
from auditor.loading.hashing import sha256_file
from auditor.run.stream import Pass, StreamFacts

_FACTS = ("rows", "chunks", "rows_per_chunk", "batch_size", "budget_bytes", "feature_rows")


def write_pass(folder: Path, outputs: np.ndarray, kept: pa.Table, X: np.ndarray, rows: np.ndarray | None,
               facts: StreamFacts, engine: dict[str, Any]) -> None:
    """Write what the pass kept into ``folder`` (made by the caller, written once)."""
    np.save(folder / "outputs.npy", outputs, allow_pickle=False)
    np.save(folder / "features.npy", np.ascontiguousarray(X), allow_pickle=False)
    if rows is not None:
        np.save(folder / "rows.npy", rows, allow_pickle=False)
    with pa.OSFile(str(folder / "kept.arrow"), "wb") as sink, pa.ipc.new_file(sink, kept.schema) as writer:
        writer.write_table(kept)
    said: dict[str, Any] = {key: int(getattr(facts, key)) for key in _FACTS}
    said.update(budget_source=facts.budget_source, sampled=bool(facts.sampled), seconds=float(facts.seconds))
    (folder / "facts.json").write_text(json.dumps({"facts": said, "engine": engine}), encoding="utf-8")


def read_pass(folder: Path, plan: ReadPlan) -> tuple[Pass, dict[str, Any]]:
    """The pass the driver wrote into ``folder``, and what it says of the engine."""
    said = json.loads((folder / "facts.json").read_text(encoding="utf-8"))
    facts = StreamFacts(**said["facts"])
    outputs = np.load(folder / "outputs.npy", allow_pickle=False)
    X = np.asfortranarray(np.load(folder / "features.npy", allow_pickle=False))
    rows_file = folder / "rows.npy"
    rows = np.load(rows_file, allow_pickle=False) if rows_file.exists() else None
    with pa.memory_map(str(folder / "kept.arrow")) as source:
        kept = pa.ipc.open_file(source).read_all()
    raw = finish(plan, kept, X, facts.rows, sha256_file(plan.path))
    raw.dataset.rows = rows
    return Pass(raw=raw, outputs=outputs, facts=facts), dict(said.get("engine") or {})
