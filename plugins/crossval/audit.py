"""The built-in "crossval" audit: how much the model's performance moves across folds and
across retraining.

- **Evaluation spread** (needs only a target): the audit data is split into k folds,
  stratified by class for classification, grouped when ``group`` names a column, repeated
  ``repeats`` times (:mod:`auditor_plugins.crossval.splits`: the same folds as scikit-learn's splitters for the
  same seed). Every metric of the metrics audit is computed on every fold at once from the
  context's one inference pass (:mod:`auditor.stats.fold_metrics`): the folds are index sets over
  predictions already made. Reports per-fold metrics, mean, SD, coefficient of variation,
  range and the worst fold, and each fold's class balance.
- **Retraining spread** (with ``--trainer``): the user's training function retrains a model
  on each training split (of ``--train-data`` when given, else of the audit data), for
  ``seeds`` seeds, and each is scored on its held-out fold (true k-fold cross-validation)
  and, with ``--train-data``, on the audit data too. The spread across folds and across
  seeds is reported, and the given model's score is placed against the retrained ones.

Findings: a judged metric whose coefficient of variation across folds exceeds ``max_cv``; a
worst fold more than ``max_worst_gap`` (relative) below the mean; the given model outside
the ``outlier_level`` prediction interval of the retrained models' scores. A spread finding
also needs the spread to exceed sampling noise: a permutation test re-partitions the rows
into folds of the same sizes (within class) and asks how often random folds spread as much
(``noise_level``); with shuffled folds of one model's predictions the spread is noise by
construction, so findings come from grouped folds that really differ. When a fold has fewer
than ``min_fold_rows`` rows nothing is judged, and without retraining the audit is *not
assessed*.

This module computes the numbers (the folds' metrics, the noise test, the retraining) and
the status; :mod:`auditor_plugins.crossval.parts` builds the result parts from them: the
metrics, the findings (the limits above applied), tables, charts, notes and summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor.contract.plugin import Audit, Option
from auditor.contract.result import (
    AuditResult,
    Finding,
    ResultPart,
    status_from_findings,
)
from auditor.contract.vocabulary import (
    HEADLINES,
)
from auditor.stats import fold_metrics as fold_stats
from auditor_plugins.crossval.parts import direction_of, evaluation_part, retraining_part
from auditor_plugins.crossval.splits import FoldError, Split, make_split
from auditor_plugins.crossval.spread import Spread, summarise

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext, Predictions, Task
    from auditor.stats.bootstrap import RankedScores
#: Folds smaller than this make noisy metrics; the audit says so.
SMALL_FOLD = 30
#: Random re-partitions of the rows that give the spread sampling noise alone would give.
NOISE_RESAMPLES = 199
#: Rows x re-partitions at most (the work of the noise check); beyond, fewer re-partitions.
NOISE_BUDGET = 20_000_000
#: Fewer re-partitions than this cannot tell a 5% tail: the spread is judged by its limits alone.
MIN_NOISE_RESAMPLES = 39
#: Row-slots (rows x repeats) of the re-partitions whose metrics are computed at once.
NOISE_BLOCK_ROWS = 2_000_000


def _fold_metrics(task: Task, y: np.ndarray, pred: Predictions, folds: np.ndarray, k: int,
                  ranked: Sequence[RankedScores] | None = None) -> dict[str, np.ndarray]:
    """Every metric on every fold; ``ranked``: the context's ranked scores when ``pred`` are its predictions."""
    if task.is_classification:
        assert pred.proba is not None and pred.label is not None
        return fold_stats.classification(y, pred.proba, pred.label, folds, k, ranked=ranked)
    assert pred.value is not None
    return fold_stats.regression(y, pred.value, folds, k)


def _partition_metrics(task: Task, y: np.ndarray, pred: Predictions, partitions: np.ndarray, k: int,
                       ranked: Sequence[RankedScores] | None) -> dict[str, np.ndarray]:
    """:func:`_fold_metrics` of many partitions ``(b, n)`` of the same rows: ``{key: (b, k)}``."""
    if task.is_classification:
        assert pred.proba is not None and pred.label is not None
        return fold_stats.classification_partitions(y, pred.proba, pred.label, partitions, k, ranked=ranked)
    assert pred.value is not None
    rows = [fold_stats.regression(y, pred.value, folds, k) for folds in partitions]
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def _sd_and_worst_gap(values: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``(m, folds)`` values, what :func:`summarise` gives as ``sd`` and
    ``worst_gap`` (NaN where it gives None), over the row's defined values."""
    defined = np.isfinite(values)
    count = defined.sum(axis=1)
    kept = np.where(defined, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = kept.sum(axis=1) / count
        squares = np.where(defined, values - mean[:, None], 0.0) ** 2
        sd = np.where(count >= 2, np.sqrt(squares.sum(axis=1) / (count - 1)), np.nan)
        if direction == "higher":
            worst = np.where(defined, values, np.inf).min(axis=1)
        elif direction == "lower":
            worst = np.where(defined, values, -np.inf).max(axis=1)
        else:
            worst = np.full(values.shape[0], np.nan)
        gap = np.where((count > 0) & (mean != 0) & np.isfinite(worst), np.abs(worst - mean) / np.abs(mean), np.nan)
    return sd, gap


def _judged(option: str, kind: str, available: Mapping[str, Any]) -> list[str]:
    names = [part.strip() for part in option.split(",") if part.strip()] or list(HEADLINES[kind])
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"crossval.metrics names {', '.join(map(repr, unknown))}, not a metric of this "
            f"{kind} task; choose from {', '.join(available)}"
        )
    return list(dict.fromkeys(names))


@dataclass
class Evaluation:
    """The evaluation spread's numbers, shared with the retraining part."""

    split: Split
    values: dict[str, np.ndarray]  # key -> (repeats * folds,)
    whole: dict[str, float | None]  # key -> the metric on all rows
    spreads: dict[str, Spread]
    sizes: np.ndarray  # rows per fold, (repeats * folds,)


class CrossValidationAudit(Audit):
    """Spread of the metrics across folds of the audit data, and across retraining."""

    name = "crossval"
    title = "Cross-validation spread"
    description = (
        "How much performance moves across k folds of the data (stratified or grouped, repeated) "
        "and, with --trainer, across retraining on each fold and seed."
    )
    needs = ("target",)
    uses = ("trainer",)
    options = (
        Option("folds", "int", 5, "Number of folds k.", min=2, max=100),
        Option("repeats", "int", 1, "Repeat the k-fold split with fresh shuffles (repeated k-fold).", min=1, max=100),
        Option(
            "group", "column", "",
            "Column whose rows must stay in one fold (a patient, a user, a site): grouped folds. "
            "Empty: rows are independent.",
        ),
        Option("stratify", "bool", True, "Stratify classification folds by class (ignored for regression and grouped folds)."),
        Option("seeds", "int", 1, "Retraining: training seeds per fold; more than one separates training noise from data noise.", min=1, max=50),
        Option(
            "metrics", "str", "",
            "Comma-separated metrics judged for spread (keys of the metrics audit); empty: the headline metrics.",
        ),
        Option(
            "max_cv", "float", 0.05,
            "A judged metric whose SD across folds exceeds this share of its mean is a finding.", min=0.0,
        ),
        Option(
            "max_worst_gap", "float", 0.10,
            "A fold whose judged metric is this much worse than the mean (relative) is a finding.", min=0.0,
        ),
        Option(
            "min_fold_rows", "int", 30,
            "Folds with fewer rows are too small to judge: below it in any fold, the evaluation spread is "
            "reported but not assessed (no spread finding).", min=2,
        ),
        Option(
            "noise_level", "float", 0.05,
            "A spread finding needs the spread to exceed sampling noise at this significance: the share of random "
            "re-partitions (same fold sizes, within class) with as large a spread.", min=0.0001, max=0.5,
        ),
        Option(
            "outlier_level", "float", 0.99,
            "Retraining: the given model is flagged outside this prediction interval of the retrained scores.",
            min=0.5, max=0.9999,
        ),
    )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        if ctx.data.y is None:
            raise ValueError("the crossval audit needs the target column")
        try:
            evaluation = _evaluate(ctx, options)
        except FoldError as exc:
            return AuditResult.skipped(self.name, self.title, f"Skipped: {exc}.")
        judged = _judged(str(options["metrics"]), ctx.task.kind, evaluation.values)
        noise = None if _too_small(evaluation, options) else _noise(ctx, evaluation)
        parts = [evaluation_part(ctx, options, evaluation, judged, noise)]
        sampled = _features_sampled(ctx)
        if ctx.trainer is not None and sampled is None:
            with ctx.measure("retraining"):
                parts.append(retraining_part(ctx, options, evaluation, judged, _retrain(ctx, options, evaluation)))
        if ctx.trainer is not None and sampled is not None:
            parts.append(ResultPart(findings=[Finding("warning", "retraining-not-run", sampled)], summary=sampled))
        findings = [f for p in parts for f in p.findings]
        summary = " ".join(p.summary for p in parts if p.summary)
        unjudged = _too_small(evaluation, options) and ctx.trainer is None
        return AuditResult.from_parts(
            self.name, self.title, parts, options=options, summary=summary,
            status="not assessed" if unjudged else status_from_findings(findings),
        )


def _features_sampled(ctx: AuditContext) -> str | None:
    """Why retraining cannot run here: the run kept the features of a sample of rows only
    (they exceed the memory budget), and retraining needs every row's; else None."""
    for tallies, data in ((ctx.tallies, ctx.data), (ctx.train.tallies if ctx.train else None,
                                                    ctx.train.data if ctx.train is not None else None)):
        if data is not None and tallies is not None:
            return (f"Retraining with --trainer was not run: the outputs of the {tallies.rows:,} rows of "
                    f"{Path(data.path).name} exceed the memory budget, and only a sample of {tallies.sample.size:,} "
                    "rows was kept; retraining needs every row's. Raise --memory-budget to retrain.")
        if data is not None and data.rows is not None:
            return (f"Retraining with --trainer was not run: the features of the {data.n_rows:,} rows of "
                    f"{Path(data.path).name} exceed the memory budget, and only a sample of {data.rows.size:,} "
                    "rows was kept; retraining needs every row's. Raise --memory-budget to retrain.")
    return None


# ---- evaluation spread ----------------------------------------------------------------------


def _groups(ctx: AuditContext, options: Mapping[str, Any], train: bool = False) -> np.ndarray | None:
    column = str(options["group"])
    if not column:
        return None
    data = ctx.train.data if train and ctx.train is not None else ctx.data
    return data.named[column]


def _split(n: int, y: np.ndarray, ctx: AuditContext, options: Mapping[str, Any], groups: np.ndarray | None,
           repeats: int) -> Split:
    stratify = ctx.task.is_classification and bool(options["stratify"]) and groups is None
    return make_split(
        n, int(options["folds"]), n_repeats=repeats, seed=ctx.seed,
        y=y if stratify else None, groups=groups,
    )


def _evaluate(ctx: AuditContext, options: Mapping[str, Any]) -> Evaluation:
    y = np.asarray(ctx.data.y)
    n, k = y.size, int(options["folds"])
    split = _split(n, y, ctx, options, _groups(ctx, options), int(options["repeats"]))
    pred = ctx.predictions
    if ctx.task.is_classification:
        assert pred.proba is not None and pred.label is not None
        # The first repeat's counts, summed, give the metrics on all rows at no extra pass.
        ranked = ctx.ranked_scores  # sorted once per run, shared with the metrics audit
        first = fold_stats.classification(y, pred.proba, pred.label, split.folds[0], k, total=True, ranked=ranked)
        whole_arrays = {key: v[-1:] for key, v in first.items()}
        per_repeat = [{key: v[:-1] for key, v in first.items()}]
        per_repeat += [_fold_metrics(ctx.task, y, pred, folds, k, ranked) for folds in split.folds[1:]]
    else:
        per_repeat = [_fold_metrics(ctx.task, y, pred, folds, k) for folds in split.folds]
        whole_arrays = _fold_metrics(ctx.task, y, pred, np.zeros(n, dtype=np.int64), 1)
    values = {key: np.concatenate([p[key] for p in per_repeat]) for key in per_repeat[0]}
    whole = {key: (float(v[0]) if np.isfinite(v[0]) else None) for key, v in whole_arrays.items()}
    spreads = {key: summarise(v, direction_of(key)) for key, v in values.items()}
    sizes = np.concatenate([np.bincount(folds, minlength=k) for folds in split.folds])
    return Evaluation(split, values, whole, spreads, sizes)


def _too_small(ev: Evaluation, options: Mapping[str, Any]) -> bool:
    """Whether a fold has fewer rows than ``min_fold_rows``: the spread is then not judged."""
    return int(ev.sizes.min()) < int(options["min_fold_rows"])


@dataclass(frozen=True)
class Noise:
    """The spread that sampling noise alone gives: every metric over ``resamples`` random
    re-partitions of the rows into folds of the observed sizes (the fold labels permuted
    within each class for classification, so class balance per fold is kept; across all
    rows for regression; grouped folds lose their groups, which is the point). The model and
    its predictions are the same; only which rows share a fold changes."""

    resamples: int
    sd: dict[str, float | None]  # the mean SD across folds over the re-partitions
    sd_high: dict[str, float | None]  # the 95th percentile of that SD
    p_sd: dict[str, float | None]  # (1 + re-partitions with an SD at least the observed) / (resamples + 1)
    p_gap: dict[str, float | None]  # the same for the worst fold's relative gap


def _noise(ctx: AuditContext, ev: Evaluation) -> Noise | None:
    """A permutation test of the spread against sampling noise, or None when the data is too
    large for :data:`MIN_NOISE_RESAMPLES` re-partitions within :data:`NOISE_BUDGET`."""
    y = np.asarray(ctx.data.y)
    n, k, r = y.size, ev.split.n_splits, ev.split.n_repeats
    m = min(NOISE_RESAMPLES, NOISE_BUDGET // max(n * r, 1))
    if m < MIN_NOISE_RESAMPLES:
        return None
    rng = np.random.default_rng([int(ctx.seed), 0x5EED])
    members = [np.flatnonzero(y == c) for c in np.unique(y)] if ctx.task.is_classification else [np.arange(n)]
    ranked = ctx.ranked_scores if ctx.task.is_classification else None
    # Re-partitions in blocks of a few million row-slots, all of a block's metrics at once.
    block = max(1, min(m, NOISE_BLOCK_ROWS // max(n * r, 1)))
    values: dict[str, list[np.ndarray]] = {key: [] for key in ev.values}
    for start in range(0, m, block):
        count = min(block, m - start)
        per_repeat = []
        for folds in ev.split.folds:
            shuffled = np.empty((count, n), dtype=np.int64)
            for rows in members:  # the fold labels permuted within each class (all rows: regression)
                shuffled[:, rows] = rng.permuted(np.broadcast_to(folds[rows], (count, rows.size)), axis=1)
            per_repeat.append(_partition_metrics(ctx.task, y, ctx.predictions, shuffled, k, ranked))
        for key in ev.values:
            values[key].append(np.concatenate([p[key] for p in per_repeat], axis=1))  # (count, repeats * folds)
    sds: dict[str, np.ndarray] = {}
    gaps: dict[str, np.ndarray] = {}
    for key, blocks in values.items():
        sds[key], gaps[key] = _sd_and_worst_gap(np.concatenate(blocks), direction_of(key))

    def p_value(null: np.ndarray, observed: float | None) -> float | None:
        if observed is None:
            return None
        return float((1 + np.sum(np.asarray(null) >= observed - 1e-12)) / (m + 1))

    def finite(values: np.ndarray, fn: Any) -> float | None:
        kept = np.asarray(values)[np.isfinite(values)]
        return float(fn(kept)) if kept.size else None

    return Noise(
        resamples=m,
        sd={key: finite(v, np.mean) for key, v in sds.items()},
        sd_high={key: finite(v, lambda a: np.quantile(a, 0.95)) for key, v in sds.items()},
        p_sd={key: p_value(sds[key], ev.spreads[key].sd) for key in ev.values},
        p_gap={key: p_value(gaps[key], ev.spreads[key].worst_gap) for key in ev.values},
    )


# ---- retraining -----------------------------------------------------------------------------


def _empty_like(task: Task, n: int) -> dict[str, np.ndarray]:
    if task.is_classification:
        return {"proba": np.empty((n, task.n_outputs if task.n_outputs > 1 else 2)), "label": np.empty(n, np.int64)}
    return {"value": np.empty(n)}


def _as_predictions(task: Task, arrays: dict[str, np.ndarray]) -> Predictions:
    from auditor.contract.context import Predictions

    if task.is_classification:
        return Predictions(raw=np.empty((0, 0), np.float32), proba=arrays["proba"], label=arrays["label"])
    return Predictions(raw=np.empty((0, 0), np.float32), value=arrays["value"])


@dataclass
class Retraining:
    """The retrained models' scores, one model per fold and seed."""

    split: Split  # the folds retrained on (of --train-data, or the evaluation's first repeat)
    folds: np.ndarray  # each row's fold in ``split``
    seeds: list[int]
    n: int  # rows retrained on
    on_train: bool  # retrained on --train-data (and scored on the audit data too)
    held_out: dict[str, np.ndarray]  # key -> (seeds, folds): each model scored on its held-out fold
    on_audit: dict[str, np.ndarray]  # key -> (seeds, folds): on the audit data (only with --train-data)


def _retrain(ctx: AuditContext, options: Mapping[str, Any], ev: Evaluation) -> Retraining:
    """Retrain with the user's trainer on every training split and seed, and score each model
    on its held-out fold (and, with --train-data, on the audit data)."""
    import torch

    from auditor.run import retrain

    assert ctx.trainer is not None
    trainer, task = ctx.trainer, ctx.task
    on_train = ctx.train is not None
    source = ctx.train.data if ctx.train is not None else ctx.data
    X, y = source.X, np.asarray(source.y)
    n, k = y.size, int(options["folds"])
    split = _split(n, y, ctx, options, _groups(ctx, options, train=on_train), 1) if on_train else Split(
        ev.split.folds[:1], ev.split.n_splits, ev.split.strategy, ev.split.seed
    )
    folds = split.folds[0]
    seeds = [ctx.seed + s for s in range(int(options["seeds"]))]
    device = torch.device(ctx.device)
    held_out: dict[str, np.ndarray] = {}
    on_audit: dict[str, np.ndarray] = {}
    total = len(seeds) * k
    with ctx.progress(f"Retraining {trainer.spec}: {k} folds × {len(seeds)} seed(s)", total) as advance:
        for si, seed in enumerate(seeds):
            oof = _empty_like(task, n)
            for fold in range(k):
                where = f"fold {fold + 1}, seed {seed}"
                test_rows = folds == fold
                model = retrain.fit(trainer, X[~test_rows], y[~test_rows], task=task, seed=seed, device=device,
                                    input_shape=ctx.input_shape, where=where)
                pred = retrain.predict(model, X[test_rows], task=task, device=device,
                                       input_shape=ctx.input_shape, where=where)
                for name, array in oof.items():
                    array[test_rows] = getattr(pred, name)
                if on_train:
                    full = retrain.predict(model, ctx.data.X, task=task, device=device,
                                           input_shape=ctx.input_shape, where=where)
                    scores = _fold_metrics(task, np.asarray(ctx.data.y), full,
                                           np.zeros(ctx.data.n_rows, dtype=np.int64), 1)
                    for key, v in scores.items():
                        on_audit.setdefault(key, np.full((len(seeds), k), np.nan))[si, fold] = v[0]
                del model
                advance(1)
            per_fold = _fold_metrics(task, y, _as_predictions(task, oof), folds, k)
            for key, v in per_fold.items():
                held_out.setdefault(key, np.full((len(seeds), k), np.nan))[si] = v
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Retraining(split, folds, seeds, n, on_train, held_out, on_audit)
