"""Token ids: which tokens move the output, by occlusion (captum's Feature Ablation).

Gradients do not flow through integer ids, and a compiled model (TorchScript) runs no hooks
on its embedding layer, so each token of a text is replaced by the padding id, one at a
time, and the change in the explained output is its attribution: ``f(text) − f(text with
that token padded)``, captum's ``FeatureAblation`` with the padding id as the baseline. A
model that masks padding sees the token removed; one that does not sees a padding token in
its place. Padding positions get no attribution. Each row costs one forward pass per token of
its text (padding positions are not ablated one by one: they share a feature with the text's
first token, whose ablation changes them from padding to padding).

Then, per token of the vocabulary (over the sample's non-padding positions): how often it
occurs and its mean and mean absolute attribution; and a deletion check: padding each row's
:data:`DELETED` tokens of largest attribution must lower the explained output more than
padding as many tokens chosen at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import torch

    from auditor.contract.context import Task

#: Rows explained by occlusion at most (one forward pass per token each): ``samples`` is capped to it.
TOKEN_SAMPLES = 200
#: A token is ranked only when it occurs at least this often in the sample.
MIN_OCCURRENCES = 3
#: Tokens padded per row by the deletion check (rows with fewer than twice as many are left out).
DELETED = 3


@dataclass
class TokenAttributions:
    """Occlusion attributions of some rows: ``values`` rows x positions (0 at padding),
    ``outputs`` the explained output of each row as it is, ``passes`` rows run through the model."""

    values: np.ndarray
    outputs: np.ndarray
    passes: int


def occlusion(
    module: torch.nn.Module, task: Task, ids: np.ndarray, targets: np.ndarray, outputs: np.ndarray, pad_id: int,
    device: torch.device, batch_rows: int, on_progress: Callable[[int], None] | None = None,
) -> TokenAttributions:
    """Occlusion attributions of ``ids`` (rows x positions, exact integers) to the explained
    output of each row's ``targets`` class; ``outputs``: those explained outputs, from the
    run's one inference pass (not run again); ``batch_rows`` rows per forward pass."""
    import torch

    from auditor_plugins.explain.attribution import Explained
    from auditor_plugins.explain.captum_attr import attr

    explained = Explained(module, task, None, summed=False, ids=True)
    n, width = ids.shape
    text = ids != pad_id
    values = np.zeros((n, width), dtype=np.float64)
    passes = 0
    ablation = attr.FeatureAblation(explained)
    longest = int(text.sum(axis=1).max()) if n else 0
    per_eval = max(1, min(longest, batch_rows))
    chunk = max(1, batch_rows // per_eval)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        x = torch.from_numpy(ids[rows].astype(np.float32)).to(device)
        t = torch.from_numpy(targets[rows].astype(np.int64)).to(device)
        # each text token its own feature (numbered in text order); padding joins the first token's
        mask = np.where(text[rows], np.cumsum(text[rows], axis=1) - 1, 0)
        with torch.no_grad():
            found = ablation.attribute(
                x, baselines=float(pad_id), additional_forward_args=(t,),
                feature_mask=torch.from_numpy(mask).to(device), perturbations_per_eval=per_eval,
            )
        values[rows] = np.where(text[rows], found.double().cpu().numpy(), 0.0)
        count = rows.stop - rows.start
        passes += count * (1 + int(text[rows].sum(axis=1).max(initial=0)))
        if on_progress is not None:
            on_progress(count)
    return TokenAttributions(values=values, outputs=np.asarray(outputs, dtype=np.float64), passes=passes)


@dataclass
class TokenImportance:
    """Per token id of the vocabulary, over the sample's text positions."""

    count: np.ndarray  # occurrences
    mean: np.ndarray  # mean attribution (NaN where it never occurs)
    mean_abs: np.ndarray  # mean |attribution|
    share: np.ndarray  # share of the total |attribution|
    order: np.ndarray  # ids occurring at least MIN_OCCURRENCES times, by mean |attribution|, largest first


def token_importance(ids: np.ndarray, values: np.ndarray, pad_id: int, vocabulary_size: int) -> TokenImportance:
    text = ids != pad_id
    flat_ids = ids[text].astype(np.int64)
    flat = values[text]
    size = max(vocabulary_size, int(flat_ids.max(initial=-1)) + 1)
    count = np.bincount(flat_ids, minlength=size)
    total = np.bincount(flat_ids, weights=flat, minlength=size)
    total_abs = np.bincount(flat_ids, weights=np.abs(flat), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        mean_abs = total_abs / count
    grand = float(total_abs.sum())
    share = total_abs / grand if grand > 0 else np.zeros(size)
    ranked = np.flatnonzero(count >= MIN_OCCURRENCES)
    order = ranked[np.lexsort((ranked, -mean_abs[ranked]))]
    return TokenImportance(count=count, mean=mean, mean_abs=mean_abs, share=share, order=order)


@dataclass
class Deletion:
    """The deletion check: mean drop of the explained output when each row's top tokens, or
    as many random ones, are padded; over ``rows`` rows of at least 2 x DELETED tokens."""

    rows: int
    top: float | None
    random: float | None


def deletion_check(
    explained_of: Callable[[np.ndarray, np.ndarray], np.ndarray], ids: np.ndarray, values: np.ndarray,
    outputs: np.ndarray, targets: np.ndarray, pad_id: int, seed: int,
) -> Deletion:
    """``explained_of(ids, targets)`` gives the explained output of rows of ids."""
    text = ids != pad_id
    kept = np.flatnonzero(text.sum(axis=1) >= 2 * DELETED)
    if kept.size == 0:
        return Deletion(0, None, None)
    rng = np.random.default_rng([seed, 0xDE1E7E])
    top, random = ids[kept].copy(), ids[kept].copy()
    for i, row in enumerate(kept):
        positions = np.flatnonzero(text[row])
        ranked = positions[np.argsort(-values[row, positions], kind="stable")]
        top[i, ranked[:DELETED]] = pad_id
        random[i, rng.choice(positions, DELETED, replace=False)] = pad_id
    base = outputs[kept]
    return Deletion(
        rows=int(kept.size),
        top=float(np.mean(base - explained_of(top, targets[kept]))),
        random=float(np.mean(base - explained_of(random, targets[kept]))),
    )
