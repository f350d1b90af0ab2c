"""Assemble the report: a :class:`~auditor.report.document.Report` (:func:`build_document`)
and the plain dict that report.json holds (:func:`build_report`, its ``to_dict()``).

Renderers read the Report or that dict and nothing else. The contained run sends the dict
back to the parent process as JSON, which is why :func:`build_report` returns the dict. Everything that varies between identical
runs lives under ``run`` (timings, dates, the machine) and ``measurements`` (the results of
audits that measure the run itself, such as energy and carbon), so the rest is
byte-identical. :func:`auditor.report.json_report.all_audits` gives both kinds of result
together, in the order they ran.

``gates`` (the output of :func:`auditor.ci.gates.evaluate`, whose docstring gives its schema)
and ``outcome`` (:func:`auditor.run.runner.outcome`) are judged after the audits ran, over
this report: they are None here and left out of the dict until they are set.

``code`` is the provenance of the user's code the run imported: one entry for the source
file that defines the model's class (a state_dict or safetensors model, ``--model-class``)
and one for the file that defines the ``--trainer`` function, each
``{"option", "spec", "file", "sha256", "size_bytes"}`` (``file``: its name, without folders;
``sha256``/``size_bytes`` None when there is no source file); an empty list when the run
imported none.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from auditor import __version__
from auditor.contract.context import AuditContext
from auditor.contract.result import AuditResult
from auditor.loading.architecture import summarize
from auditor.loading.hashing import sha256_file
from auditor.report.document import SCHEMA_VERSION, Report, Tool
from auditor.run.runner import verdict

__all__ = ["SCHEMA_VERSION", "build_document", "build_report", "class_balance", "code_provenance"]


def class_balance(y: np.ndarray | None, names: Sequence[str], counts: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Count and share of each class in the target (``counts``: given, from tallies)."""
    if counts is None:
        if y is None or not names:
            return []
        counts = np.bincount(y, minlength=len(names))
    total = int(counts.sum())
    return [
        {"class": name, "count": int(c), "share": float(c) / total if total else None}
        for name, c in zip(names, counts)
    ]


def _tallied_classes(ctx: AuditContext) -> np.ndarray | None:
    """Every row's class counts, when the run kept tallies (the context's ``y`` is a sample's)."""
    tallies = ctx.tallies
    if tallies is None or tallies.confusion is None or not ctx.task.class_names:
        return None
    return tallies.confusion.sum(axis=(0, 2))


def _file_facts(path: Path | None) -> dict[str, Any]:
    """sha256 and size of an input file (a folder, such as a TensorBoard log, has neither)."""
    if path is None or not Path(path).is_file():
        return {"sha256": None, "size_bytes": None}
    return {"sha256": sha256_file(Path(path)), "size_bytes": Path(path).stat().st_size}


def data_size(path: Path) -> int:
    """The bytes of a data file, or of every file under a data folder (links not followed)."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def source_facts(option: str, spec: str, obj: Any) -> dict[str, Any]:
    """Where ``obj`` (a class or function the user's code defines) comes from, hashed."""
    try:
        source = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        source = None
    facts = _file_facts(Path(source)) if source else {"sha256": None, "size_bytes": None}
    return {"option": option, "spec": spec, "file": Path(source).name if source else None, **facts}


def code_provenance(ctx: AuditContext) -> list[dict[str, Any]]:
    """The report's ``code`` section: the source files of ``--model-class``, ``--trainer`` and ``--transform``."""
    from auditor.loading.transform import Transformed, unwrapped

    found = []
    if ctx.model.format in ("state_dict", "safetensors"):  # built from --model-class
        cls = type(unwrapped(ctx.model.module))
        found.append(source_facts("--model-class", f"{cls.__module__}:{cls.__qualname__}", cls))
    if ctx.trainer is not None:
        found.append(source_facts("--trainer", ctx.trainer.spec, ctx.trainer.fn))
    if isinstance(ctx.model.module, Transformed):
        found.append(source_facts("--transform", ctx.model.module.spec, ctx.model.module.fn))
    return found


def _versions() -> dict[str, str]:
    import torch

    versions = {
        "auditor": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    if torch.version.cuda:
        versions["cuda"] = str(torch.version.cuda)
    return versions


def build_document(
    ctx: AuditContext,
    results: Mapping[str, AuditResult],
    *,
    command: str,
    started: float,
    timings: Mapping[str, Any],
    measured: Sequence[str] = (),
    card: Mapping[str, Any] | None = None,
    history_path: Path | None = None,
    plugins: Mapping[str, str] | None = None,
    engine: Mapping[str, Any] | None = None,
) -> Report:
    """The run's :class:`Report`, without gates or outcome (judged afterwards, over it)."""
    model = ctx.model
    data = ctx.data
    from auditor.loading.transform import unwrapped

    structure = summarize(unwrapped(model.module))
    return Report(
        schema_version=SCHEMA_VERSION,
        tool=Tool("auditor", __version__),
        verdict=verdict(results),
        model={
            "path": model.path.name,
            "name": model.name,
            "format": model.format,
            "sha256": model.sha256,
            "size_bytes": model.size_bytes,
            "trust": model.trust,
            "metadata": model.metadata,
            **structure,
        },
        data={
            "path": Path(data.path).name,
            "sha256": data.sha256,
            "size_bytes": data_size(Path(data.path)),
            "rows": ctx.tallies.rows if ctx.tallies is not None else data.n_rows,
            "columns": len(data.columns),
            "features": list(data.feature_names),
            "target": data.target_name,
            "task": ctx.task.kind,
            "output": ctx.task.output,
            "class_names": list(ctx.task.class_names),
            "class_balance": class_balance(data.y, ctx.task.class_names, _tallied_classes(ctx)),
            "sensitive": [
                {
                    "column": groups.column,
                    "groups": len(groups.labels),
                    "binned": groups.binned,
                    "fed_to_model": groups.fed_to_model,
                }
                for groups in ctx.sensitive.values()
            ],
        },
        train_data=None if ctx.train is None else {
            "path": Path(ctx.train.data.path).name,
            "sha256": ctx.train.data.sha256,
            "size_bytes": data_size(Path(ctx.train.data.path)),
            "rows": ctx.train.data.n_rows,
            "class_balance": class_balance(ctx.train.data.y, ctx.task.class_names),
        },
        card=None if card is None else dict(card),
        code=code_provenance(ctx),
        history=None if ctx.history is None else {
            "source": ctx.history.source,
            **_file_facts(history_path),
            "format": ctx.history.format,
            "epochs": len(ctx.history.epochs),
            "series": sorted(ctx.history.series),
            "train_loss": ctx.history.train_loss,
            "val_loss": ctx.history.val_loss,
        },
        audits={name: result for name, result in results.items() if name not in measured},
        measurements={name: result for name, result in results.items() if name in measured},
        run={
            "command": command,
            "started": _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(timespec="seconds"),
            "seed": ctx.seed,
            "device": ctx.device,
            "forward_passes": ctx.forward_passes,
            "versions": _versions(),
            "plugins": dict(plugins or {}),
            "platform": platform.platform(),
            "argv": list(sys.argv),
            "timings": dict(timings),
            **({"engine": dict(engine)} if engine is not None else {}),
        },
    )


def build_report(ctx: AuditContext, results: Mapping[str, AuditResult], **facts: Any) -> dict[str, Any]:
    """:func:`build_document`'s report as the dict report.json holds (``facts``: its keywords)."""
    return build_document(ctx, results, **facts).to_dict()
