"""The result parts of the "crossval" audit, built from the numbers
:mod:`auditor_plugins.crossval.audit` computes (the folds' metrics, the noise test, the
retrained models' scores):

- the evaluation part: per-fold metrics, their spread, the judged metrics' findings (a
  coefficient of variation over ``max_cv``, a worst fold over ``max_worst_gap``, both only
  beyond sampling noise), the class balance per fold, the strip charts, notes and summary;
- the retraining part: the retrained models' spread across folds and seeds, the given model
  placed against them, their chart, table, note and summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from auditor.contract.result import Chart, Direction, Finding, Metric, Table
from auditor.contract.result import ResultPart as _Part
from auditor.contract.vocabulary import HEADLINE_TOLERANCE, METRIC_DEFINITIONS, in_sentence, sentence_number
from auditor.stats import fold_metrics as fold_stats
from auditor_plugins.crossval.splits import DESCRIPTIONS, Split
from auditor_plugins.crossval.spread import Spread, place, seed_and_fold_sd, summarise

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext
    from auditor_plugins.crossval.audit import Evaluation, Noise, Retraining

#: Classes shown one column each in the class-balance table, at most (the largest ones).
MAX_BALANCE_CLASSES = 12


def _label(key: str) -> str:
    return METRIC_DEFINITIONS[key][0]


def direction_of(key: str) -> Direction:
    return METRIC_DEFINITIONS[key][1]


def _num(value: float | None) -> str:
    return "undefined" if value is None else sentence_number(value)


def _beyond(p: float | None, noise: Noise | None, options: Mapping[str, Any]) -> bool:
    """Whether a spread exceeds sampling noise (always, when the noise could not be measured)."""
    return noise is None or (p is not None and p <= float(options["noise_level"]))


def _versus_noise(noise: Noise | None, key: str, which: str) -> str:
    """How the spread compares with sampling noise, for a finding's message."""
    if noise is None:
        return ""
    if which == "sd":
        typical, high = noise.sd[key], noise.sd_high[key]
        around = f": random folds of the same sizes give an SD of {_num(typical)} (95% below {_num(high)}); " \
            if typical is not None and high is not None else ": "
        return f"; beyond sampling noise{around}p = {noise.p_sd[key]:.3f}, permutation test"
    return f"; beyond sampling noise: p = {noise.p_gap[key]:.3f}, permutation test"


def _listed_words(items: list[str]) -> str:
    from auditor.report.numbers import join_words

    return join_words(items)


def _fold_name(split: Split, index: int) -> str:
    repeat, fold = divmod(index, split.n_splits)
    return f"fold {fold + 1}" if split.n_repeats == 1 else f"fold {fold + 1} of repeat {repeat + 1}"


def _balance(ctx: AuditContext, split: Split) -> tuple[Table, list[str]]:
    """The class balance (or target summary) of every fold, and a phrase per fold for messages."""
    y = np.asarray(ctx.data.y)
    k = split.n_splits
    head = ["Repeat", "Fold"] if split.n_repeats > 1 else ["Fold"]
    rows: list[list[Any]] = []
    phrases: list[str] = []

    def lead(index: int) -> list[Any]:
        repeat, fold = divmod(index, k)
        return [repeat + 1, fold + 1] if split.n_repeats > 1 else [fold + 1]

    if ctx.task.is_classification:
        names = list(ctx.task.class_names)
        counts = np.concatenate([fold_stats.class_counts(y, f, k, len(names)) for f in split.folds])
        overall = np.bincount(y, minlength=len(names)) / y.size
        shown = sorted(np.argsort(-overall, kind="stable")[:MAX_BALANCE_CLASSES].tolist())
        columns = [*head, "Rows", *(f"'{names[c]}' rows" for c in shown)]
        positive = 1 if ctx.task.kind == "binary" else None
        if positive is not None:
            columns.append(f"Share '{names[positive]}'")
        for i, row in enumerate(counts):
            total = int(row.sum())
            shares = row / total
            cells = [*lead(i), total, *(int(row[c]) for c in shown)]
            if positive is not None:
                cells.append(float(shares[positive]))
            rows.append(cells)
            c = positive if positive is not None else int(np.argmax(np.abs(shares - overall)))
            phrases.append(f"{shares[c]:.1%} '{names[c]}' against {overall[c]:.1%} overall")
        caption = "Rows of each class in each test fold."
        if len(shown) < len(names):
            caption += f" The {len(shown)} largest of {len(names)} classes are shown."
        title = "Class balance per fold"
    else:
        columns = [*head, "Rows", "Target mean", "Target SD"]
        overall_mean = float(y.mean())
        for i in range(split.n_repeats * k):
            values = y[split.folds[i // k] == i % k]
            sd = float(values.std(ddof=1)) if values.size > 1 else None
            rows.append([*lead(i), int(values.size), float(values.mean()), sd])
            phrases.append(f"target mean {sentence_number(float(values.mean()))} against "
                           f"{sentence_number(overall_mean)} overall")
        caption = "Size and target distribution of each test fold."
        title = "Target per fold"
    return Table(name="fold_balance", title=title, columns=columns, rows=rows, caption=caption), phrases


def _strip(name: str, title: str, key: str, series: list[dict[str, Any]], spread: Spread,
           references: list[dict[str, Any]], caption: str) -> Chart:
    band = None
    if spread.mean is not None and spread.sd is not None:
        band = [spread.mean - spread.sd, spread.mean + spread.sd]
    return Chart(
        name=name,
        title=title,
        kind="strip",
        data={
            "x_label": "Fold",
            "y_label": _label(key),
            "series": series,
            "mean": spread.mean,
            "band": band,
            "band_label": "mean ± 1 SD",
            "references": references,
        },
        caption=caption,
    )


def evaluation_part(
    ctx: AuditContext, options: Mapping[str, Any], ev: Evaluation, judged: list[str], noise: Noise | None = None
) -> _Part:
    split, k, r = ev.split, ev.split.n_splits, ev.split.n_repeats
    part = _Part()
    balance, phrases = _balance(ctx, split)
    n_folds = k * r
    folds_text = f"{k} folds" + (f" × {r} repeats" if r > 1 else "")
    typical = int(np.median(ev.sizes))
    smallest_fold, min_rows = int(ev.sizes.min()), int(options["min_fold_rows"])
    small = smallest_fold < min_rows
    within_noise: list[str] = []

    for i, key in enumerate(judged):
        s, label, direction = ev.spreads[key], _label(key), direction_of(key)
        part.metrics[f"{key}_mean"] = Metric(
            s.mean, f"{label}, mean over folds", direction=direction, headline=i == 0,
            tolerance=HEADLINE_TOLERANCE if i == 0 and direction != "none" else None,
            description=f"Mean of {in_sentence(label)} over the {folds_text}, each fold scored on its own rows.",
        )
        part.metrics[f"{key}_sd"] = Metric(
            s.sd, f"{label}, SD across folds", direction="lower", headline=i == 0,
            tolerance=HEADLINE_TOLERANCE if i == 0 else None,
            description=f"Sample standard deviation of {in_sentence(label)} across the folds.",
        )
        part.metrics[f"{key}_cv"] = Metric(
            s.cv, f"{label}, coefficient of variation", direction="lower",
            description="SD across folds divided by the absolute mean.",
        )
        part.metrics[f"{key}_worst"] = Metric(
            s.worst, f"{label}, worst fold", direction=direction,
            description=f"The worst fold's {in_sentence(label)}.",
        )
        judge = not small
        if judge and s.cv is not None and s.cv > float(options["max_cv"]):
            if _beyond(noise.p_sd[key] if noise else None, noise, options):
                part.findings.append(Finding(
                    "warning", "high-spread",
                    f"{label} varies across the {folds_text}: its SD {_num(s.sd)} is {s.cv:.1%} of its "
                    f"mean {_num(s.mean)} (limit {float(options['max_cv']):.1%}); range {_num(s.low)} to "
                    f"{_num(s.high)}, with about {typical:,} rows a fold{_versus_noise(noise, key, 'sd')}.",
                ))
            else:
                within_noise.append(label)
        gap = s.worst_gap
        if judge and gap is not None and s.worst_index is not None and gap > float(options["max_worst_gap"]):
            j = s.worst_index
            if _beyond(noise.p_gap[key] if noise else None, noise, options):
                part.findings.append(Finding(
                    "warning", "worst-fold",
                    f"{_fold_name(split, j).capitalize()} scores {in_sentence(label)} {_num(s.worst)} against a "
                    f"mean of {_num(s.mean)} over the folds ({gap:.1%} worse; limit "
                    f"{float(options['max_worst_gap']):.0%}); it has {int(ev.sizes[j]):,} rows, {phrases[j]}"
                    f"{_versus_noise(noise, key, 'gap')}.",
                ))
            else:
                within_noise.append(f"{in_sentence(label)} of the worst fold")
        series = [
            {"name": f"repeat {rep + 1}" if r > 1 else "folds",
             "x": list(range(1, k + 1)), "y": ev.values[key][rep * k:(rep + 1) * k].tolist()}
            for rep in range(r)
        ]
        whole = ev.whole[key]
        references = [] if whole is None else [{"y": whole, "label": f"all rows {sentence_number(whole)}"}]
        part.charts.append(_strip(
            f"folds_{key}", f"{label} across folds", key, series, s, references,
            f"Each point is one test fold's {in_sentence(label)}; the band is the mean ± 1 SD.",
        ))

    undefined = {key: s.n_undefined for key, s in ev.spreads.items() if s.n_undefined}
    for key, count in undefined.items():
        if key in judged:
            part.findings.append(Finding(
                "info", "undefined-in-folds",
                f"{_label(key)} is undefined on {count} of {n_folds} folds (a class absent from the "
                "fold, or a constant target); its spread uses the other folds.",
            ))

    lead = ["Repeat", "Fold"] if r > 1 else ["Fold"]
    keys = list(ev.values)
    rows = []
    for i in range(n_folds):
        rep, fold = divmod(i, k)
        head = [rep + 1, fold + 1] if r > 1 else [fold + 1]
        rows.append([*head, int(ev.sizes[i]), *(None if not np.isfinite(ev.values[key][i]) else float(ev.values[key][i]) for key in keys)])
    part.tables.append(Table(
        name="folds", title="Metrics per fold", columns=[*lead, "Rows", *(_label(key) for key in keys)],
        rows=rows, caption="Each test fold scored on its own rows with the model's predictions (no retraining).",
    ))
    part.tables.append(Table(
        name="spread", title="Spread across folds",
        columns=["Metric", "Mean", "SD", "CV", "Min", "Max", "Worst fold", "All rows"]
        + (["SD from noise", "p (SD)"] if noise else []),
        rows=[
            [_label(key), s.mean, s.sd, s.cv, s.low, s.high,
             None if s.worst_index is None else _fold_name(split, s.worst_index), ev.whole[key]]
            + ([noise.sd[key], noise.p_sd[key]] if noise else [])
            for key, s in ev.spreads.items()
        ],
        caption="SD is the sample standard deviation across folds; CV is SD / |mean|."
        + (f" SD from noise: the mean SD over {noise.resamples} random re-partitions into folds of the same sizes; "
           "p: the share of them with an SD at least as large." if noise else ""),
    ))
    part.tables.append(balance)

    strategy = DESCRIPTIONS[split.strategy]
    if split.strategy == "grouped":
        n_groups = np.unique(ctx.data.named[str(options["group"])]).size
        strategy += f" on column '{options['group']}' ({n_groups:,} groups)"
    part.notes.append(
        f"Folds: {strategy}, {folds_text}, seed {split.seed}; every fold is scored with the predictions "
        "of the one inference pass (no retraining)."
    )
    if ctx.task.is_classification and split.strategy == "stratified":
        present = np.bincount(np.asarray(ctx.data.y))
        smallest = int(present[present > 0].min())
        if smallest < k:
            part.findings.append(Finding(
                "info", "class-smaller-than-folds",
                f"The smallest class has {smallest} rows, fewer than the {k} folds: some folds have none of it.",
            ))
    if small:
        part.findings.append(Finding(
            "info", "small-folds",
            f"The smallest fold has {smallest_fold:,} rows, fewer than crossval.min_fold_rows ({min_rows}): metrics on "
            "so few rows are mostly sampling noise, so the spread is shown but not judged (no spread finding). "
            "Use fewer folds (-o crossval.folds=N) or more data.",
        ))
    elif within_noise:
        part.findings.append(Finding(
            "info", "spread-within-noise",
            f"The spread of {_listed_words(within_noise)} exceeds its limit but not sampling noise: random folds "
            f"of the same sizes spread as much (permutation test over {noise.resamples if noise else 0} "
            f"re-partitions, significance {float(options['noise_level']):g}), so it is not a finding.",
        ))
    if noise is not None:
        part.notes.append(
            f"Sampling noise: the spread is compared with {noise.resamples} random re-partitions of the same rows "
            "into folds of the same sizes (fold labels permuted"
            + (" within each class" if ctx.task.is_classification else "")
            + "; the model's predictions unchanged). A spread finding needs both its limit and a spread that "
            f"at most {float(options['noise_level']):.0%} of the re-partitions reach. With shuffled folds the "
            "spread is sampling noise by construction; grouped folds (crossval.group) show whether groups differ."
        )
    elif not small:
        part.notes.append(
            f"Sampling noise was not measured ({ev.sizes.sum():,} rows are too many for the permutation test's "
            "budget); with folds this large it is small, and the spread is judged by its limits alone."
        )

    described = []
    for key in judged:
        s = ev.spreads[key]
        if s.mean is None:
            described.append(f"{in_sentence(_label(key))} undefined")
            continue
        text = f"{in_sentence(_label(key))} {_num(s.mean)} ± {_num(s.sd)}"
        if s.worst is not None:
            text += f" (worst fold {_num(s.worst)})"
        described.append(text)
    flagged = sum(1 for f in part.findings if f.severity == "warning")
    if small:
        verdict = (f"not assessed: the smallest fold has {smallest_fold:,} rows, fewer than crossval.min_fold_rows "
                   f"({min_rows}), too few to tell a spread from sampling noise.")
    elif flagged:
        verdict = f"{flagged} finding{'s' if flagged > 1 else ''} on the spread, beyond sampling noise."
    elif within_noise:
        verdict = "the spread is within sampling noise."
    else:
        verdict = "the spread is within the limits."
    how = "grouped" if split.strategy == "grouped" else ("stratified" if split.strategy == "stratified" else "shuffled")
    sentence = (f"Across {folds_text} ({how}, about {typical:,} rows each), "
                f"{'; '.join(described)} (mean ± SD); {verdict}")
    part.summary = sentence[0].upper() + sentence[1:]
    return part


# ---- retraining spread ----------------------------------------------------------------------


def retraining_part(
    ctx: AuditContext, options: Mapping[str, Any], ev: Evaluation, judged: list[str], rt: Retraining
) -> _Part:
    """The retraining part: the retrained models' spread across folds and seeds, the given
    model placed against them (a finding when it lies outside their prediction interval, or
    when the retrained scores vary beyond ``max_cv``), their chart, table, note and summary."""
    assert ctx.trainer is not None
    trainer = ctx.trainer
    split, folds, seeds, n, on_train = rt.split, rt.folds, rt.seeds, rt.n, rt.on_train
    held_out, on_audit = rt.held_out, rt.on_audit
    k = int(options["folds"])
    total = len(seeds) * k

    part = _Part()
    level = float(options["outlier_level"])
    given_rows = ev.values  # audit-data mode: the given model on the same folds (repeat 1)
    placements = {}
    for key in judged:
        label, direction = _label(key), direction_of(key)
        s = summarise(held_out[key], direction)
        by_seed, by_fold = seed_and_fold_sd(held_out[key])
        part.metrics[f"retrained_{key}_mean"] = Metric(
            s.mean, f"{label}, retrained, held-out mean", direction=direction,
            description=f"Mean held-out {in_sentence(label)} of the {total} retrained models (true k-fold cross-validation).",
        )
        part.metrics[f"retrained_{key}_sd"] = Metric(
            s.sd, f"{label}, retrained, held-out SD", direction="lower",
            description="SD of the held-out scores across every fold and seed.",
        )
        if by_seed is not None:
            part.metrics[f"retrained_{key}_sd_seed"] = Metric(
                by_seed, f"{label}, retrained, SD across seeds", direction="lower",
                description="Typical SD across training seeds on one fold: the training noise alone.",
            )
        if on_train:
            t = summarise(on_audit[key], direction)
            part.metrics[f"retrained_test_{key}_mean"] = Metric(
                t.mean, f"{label}, retrained, on the audit data", direction=direction,
                description=f"Mean {in_sentence(label)} of the retrained models on the audit data.",
            )
            part.metrics[f"retrained_test_{key}_sd"] = Metric(
                t.sd, f"{label}, retrained, SD on the audit data", direction="lower",
                description="SD of the retrained models' scores on the audit data.",
            )
            given = ev.whole[key]
            sample = on_audit[key].ravel()
        else:
            given_folds = given_rows[key][:k]
            given = float(np.nanmean(given_folds)) if np.any(np.isfinite(given_folds)) else None
            # Fold difficulty removed: each retrained score moved by how far the given model's
            # score on that fold lies from its mean over folds.
            sample = (held_out[key] - given_folds[None, :]).ravel() + (given if given is not None else np.nan)
        placement = place(given, sample, level) if given is not None else None
        placements[key] = placement
        if placement is not None:
            part.metrics[f"given_vs_retrained_{key}"] = Metric(
                placement.score - placement.mean, f"{label}, given minus retrained", direction="none",
                description="The given model's score minus the retrained models' mean on the same rows.",
            )
        if s.cv is not None and s.cv > float(options["max_cv"]):
            source_text = (f"across seeds (SD {_num(by_seed)}) more than across folds (SD {_num(by_fold)})"
                           if by_seed is not None and by_fold is not None and by_seed > by_fold else
                           "across the folds")
            part.findings.append(Finding(
                "warning", "unstable-retraining",
                f"Retrained {in_sentence(label)} varies {source_text}: SD {_num(s.sd)} is {s.cv:.1%} of the "
                f"mean {_num(s.mean)} (limit {float(options['max_cv']):.1%}).",
            ))
        if placement is not None and placement.outside:
            better = (placement.score > placement.high) == (direction == "higher")
            rows_text = "the audit data" if on_train else "the same folds"
            message = (
                f"The given model's {in_sentence(label)} {_num(placement.score)} lies outside the "
                f"{level:.0%} prediction interval of the {total} retrained models' scores on {rows_text} "
                f"({_num(placement.low)} to {_num(placement.high)}, mean {_num(placement.mean)}): it is "
                f"{'better' if better else 'worse'} than its training recipe gives."
            )
            if better and not on_train:
                message += (f" The retrained models learned from {(k - 1) / k:.0%} of the audit data only; "
                            "pass --train-data to retrain on the training data.")
                severity = "info"
            elif better:
                message += " Check that the model was not tuned or trained on the audit data, and that the trainer matches its recipe."
                severity = "warning"
            else:
                message += " An unlucky seed, or a recipe different from the trainer's, would explain it."
                severity = "warning"
            part.findings.append(Finding(severity, "given-outside-retrained", message))  # type: ignore[arg-type]

        series = [{"name": f"seed {seed}", "x": list(range(1, k + 1)),
                   "y": (on_audit if on_train else held_out)[key][si].tolist()} for si, seed in enumerate(seeds)]
        references: list[dict[str, Any]] = []
        if on_train and ev.whole[key] is not None:
            references.append({"y": ev.whole[key], "label": f"given model {sentence_number(ev.whole[key])}"})
        if not on_train:
            series.append({"name": "given model", "x": list(range(1, k + 1)), "y": given_rows[key][:k].tolist()})
        shown = summarise((on_audit if on_train else held_out)[key], direction)
        part.charts.append(_strip(
            f"retrained_{key}", f"{label} of retrained models", key, series, shown, references,
            ("Each point is a model retrained without one fold, scored on the audit data; the dashed line is the given model."
             if on_train else
             "Each point is a model retrained without one fold, scored on that fold; the given model is scored on the same folds."),
        ))

    columns = ["Seed", "Fold", "Training rows", "Held-out rows"]
    columns += [f"{_label(key)} held-out" for key in judged]
    columns += [f"{_label(key)} on audit data" for key in judged] if on_train else [
        f"{_label(key)} given model" for key in judged]
    sizes = np.bincount(folds, minlength=k)
    rows = []
    for si, seed in enumerate(seeds):
        for fold in range(k):
            cells: list[Any] = [seed, fold + 1, int(n - sizes[fold]), int(sizes[fold])]
            cells += [_finite(held_out[key][si, fold]) for key in judged]
            cells += ([_finite(on_audit[key][si, fold]) for key in judged] if on_train
                      else [_finite(given_rows[key][fold]) for key in judged])
            rows.append(cells)
    part.tables.append(Table(
        name="retraining", title="Retrained models", columns=columns, rows=rows,
        caption=f"One model per fold and seed, trained by {trainer.spec} without that fold.",
    ))
    data_text = "the training data (--train-data)" if on_train else "the audit data"
    part.notes.append(
        f"Retraining: {trainer.spec} trained {total} models ({k} folds of {data_text} × {len(seeds)} "
        f"seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))}), each with Python's, NumPy's "
        "and torch's generators seeded; the folds are "
        f"{DESCRIPTIONS[split.strategy]} with seed {split.seed}. Prediction intervals assume roughly normal scores."
    )
    described = []
    for key in judged:
        s = summarise(held_out[key], direction_of(key))
        text = f"held-out {in_sentence(_label(key))} {_num(s.mean)} ± {_num(s.sd)}"
        p = placements.get(key)
        if p is not None:
            text += (f", given model {_num(p.score)} ({'outside' if p.outside else 'inside'} the retrained "
                     f"models' {p.level:.0%} prediction interval)")
        described.append(text)
    part.summary = f"Retrained {total} times with {trainer.spec}: {'; '.join(described)}."
    return part


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
