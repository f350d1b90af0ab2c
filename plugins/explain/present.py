"""What the "explain" audit shows: the tables, charts and sentences built from the numbers an
:class:`~auditor_plugins.explain.audit.ExplainRun` computed (its attributions, importances
and checks), added to the run's result:

- global importance: the feature-importance table and chart (coloured by sign tendency), per
  class for multiclass, permutation importance and the agreement of the two;
- the completeness check's table; the individual explanations (a table, or maps for images);
- maps over the image (``C,H,W``) or over time steps and features (``T,F``);
- the summary sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from auditor.contract.result import Chart, Table
from auditor.contract.vocabulary import METRIC_DEFINITIONS, in_sentence, sentence_number
from auditor_plugins.explain.importance import Importance, downsample, importance
from auditor_plugins.explain.permutation import PermutationImportance

if TYPE_CHECKING:
    from auditor_plugins.explain import attribution
    from auditor_plugins.explain.attribution import Attributions
    from auditor_plugins.explain.audit import ExplainRun

#: A feature's value and its attribution correlating beyond this is a sign tendency.
TENDENCY = 0.3


#: Classes given their own attribution map or column, at most.
MAX_CLASSES = 10
#: Classes given their own importance chart, at most (the most frequent).
CLASS_CHARTS = 4


def number_text(value: float | None) -> str:
    return "undefined" if value is None or not np.isfinite(value) else sentence_number(float(value))


def _signed(value: float) -> str:
    text = number_text(abs(value))
    return f"+{text}" if value >= 0 else f"−{text}"


def tendency_group(value: float) -> int | None:
    """The bar chart's group of a feature: 0 lowers the output (blue, like the negative side of
    the attribution maps), 1 raises it (vermillion), None mixed or flat (grey)."""
    if not np.isfinite(value):
        return None
    if value >= TENDENCY:
        return 1
    if value <= -TENDENCY:
        return 0
    return None


def per_class(run: ExplainRun, values: np.ndarray) -> None:
    """Multiclass: importance within the rows predicted as each class."""
    names = run.layout.names
    labels = run.targets[run.sample]
    classes = [c for c in np.argsort(-np.bincount(labels, minlength=len(run.task.class_names)), kind="stable")
               if np.any(labels == c)][:MAX_CLASSES]
    per_class = {}
    for c in classes:
        rows = labels == c
        per_class[c] = importance(values[rows], run.X[run.sample][rows], run.layout.groups)
    overall = importance(values, run.X[run.sample], run.layout.groups)
    order = overall.order[: min(int(run.options["top"]), len(names))]
    run.tables.append(Table(
        "importance_by_class", "Importance by predicted class",
        ["Feature", *[f"{run.task.class_names[c]} (n={int(np.sum(labels == c))})" for c in classes]],
        [[names[j], *[float(per_class[c].mean_abs[j]) for c in classes]] for j in order],
        caption="Mean |attribution| to the predicted class's probability over the sample rows predicted as "
        "each class (the most frequent classes first).",
    ))
    run.tables.append(Table(
        "tendency_by_class", "Sign tendency by predicted class",
        ["Feature", *[run.task.class_names[c] for c in classes]],
        [[names[j], *[_finite(per_class[c].tendency[j]) for c in classes]] for j in order],
        caption="Correlation of a feature's value with its attribution to the class's probability, over the "
        "rows predicted as that class: positive, higher values raise that class's probability.",
    ))
    top = min(int(run.options["top"]), len(names))
    for c in classes[:CLASS_CHARTS]:
        found = per_class[c]
        shown = found.order[:top]
        name = run.task.class_names[c]
        run.charts.append(Chart(
            f"importance_{c}", f"What drives P({name}): top {top} features", "bar",
            {
                "x_label": "Feature",
                "y_label": f"Mean |attribution| to P({name})",
                "labels": [names[j] for j in shown],
                "values": [float(found.mean_abs[j]) for j in shown],
                "errors": None,
                "groups": [tendency_group(found.tendency[j]) for j in shown],
                "legend": ["higher values lower it", "higher values raise it"],
            },
            caption=f"Over the {int(np.sum(labels == c)):,} sample rows predicted '{name}'. Colour: the sign "
            "tendency (grey: mixed or flat).",
        ))


def row_outcome(run: ExplainRun, row: int) -> tuple[Any, Any, Any]:
    """A row's actual and predicted class (value) and the confidence (absolute error) shown beside it."""
    pred, y = run.ctx.predictions, run.ctx.data.y
    if run.task.is_classification:
        assert pred.label is not None and pred.proba is not None
        actual = run.task.class_names[int(y[row])] if y is not None else None
        return actual, run.task.class_names[int(pred.label[row])], float(pred.proba[row].max())
    assert pred.value is not None
    return (float(y[row]) if y is not None else None, float(pred.value[row]),
            float(abs(pred.value[row] - y[row])) if y is not None else None)


def examples_table(
    run: ExplainRun, found: Attributions, position: dict[int, int], examples: list[tuple[str, int]]
) -> None:
    if not examples:
        return
    names = run.layout.names
    classification = run.task.is_classification
    rows = []
    for kind, row in examples:
        i = position[row]
        attr = found.values[i]
        if run.layout.kind == "sequence":
            attr = np.array([attr[g].sum() for g in run.layout.groups])
        top = np.argsort(-np.abs(attr), kind="stable")[:5]
        parts = []
        for j in top:
            if run.layout.kind == "sequence":
                parts.append(f"{names[j]} ({_signed(float(attr[j]))})")
            else:
                parts.append(f"{names[j]} = {_value(run.X[row, j])} ({_signed(float(attr[j]))})")
        actual, predicted, confidence = row_outcome(run, row)
        rows.append([kind, row + 1, actual, predicted, confidence, float(found.outputs[i]), "; ".join(parts)])
    run.tables.append(Table(
        "examples", "Individual explanations",
        ["Example", "Row", "Actual", "Predicted", "Confidence" if classification else "Absolute error",
         f"Explained output ({run.output_name})", "Top features (value: attribution)"],
        rows,
        caption="Rows are numbered from 1 as in the data file. Attributions are in the explained output's "
        "units: + raises it, − lowers it.",
    ))


def sequence_maps(run: ExplainRun, values: np.ndarray) -> None:
    assert run.layout.shape is not None
    steps, width = run.layout.shape
    grid = np.abs(values).reshape(-1, steps, width).mean(axis=0)
    per_step = grid.sum(axis=1)
    run.charts.append(Chart(
        "time_steps", "Importance per time step", "curve",
        {
            "x_label": "Time step", "y_label": "Mean |attribution| (summed over features)",
            "series": [{"name": "mean |attribution|", "x": list(range(steps)), "y": [float(v) for v in per_step]}],
            "diagonal": False, "y_from_zero": True,
        },
        caption="How much each time step moves the output, summed over the features.",
    ))
    shown = downsample(grid)
    run.charts.append(Chart(
        "time_feature_map", "Importance by time step and feature", "heatmap",
        {
            "panels": [{"title": "mean |attribution|", "values": shown.tolist(), "scale": "magnitude"}],
            "x_label": "Feature", "y_label": "Time step",
            "x_ticks": run.layout.names if shown.shape[1] == width else None,
            "y_ticks": [str(t) for t in range(steps)] if shown.shape[0] == steps else None,
        },
        caption="Mean |attribution| of each feature at each time step over the sample.",
    ))
    if per_step.sum() > 0:
        busiest = int(np.argmax(per_step))
        run.busiest_step = (busiest, float(per_step[busiest] / per_step.sum()))
    run.tables.append(Table(
        "time_steps", "Importance per time step", ["Time step", "Mean |attribution|", "Share"],
        [[t, float(v), float(v / per_step.sum()) if per_step.sum() > 0 else None] for t, v in enumerate(per_step)],
    ))


def image_maps(run: ExplainRun, values: np.ndarray, found: Attributions, position: dict[int, int],
                examples: list[tuple[str, int]]) -> None:
    assert run.layout.shape is not None
    channels, height, width = run.layout.shape
    maps = values.reshape(-1, channels, height, width).sum(axis=1)
    panels = [{"title": "mean |attribution|", "values": _clean_grid(downsample(np.abs(maps).mean(axis=0))),
               "scale": "magnitude"}]
    if run.task.kind == "multiclass":
        labels = run.targets[run.sample]
        for c in np.argsort(-np.bincount(labels, minlength=len(run.task.class_names)), kind="stable")[:MAX_CLASSES]:
            if np.any(labels == c):
                panels.append({
                    "title": f"{run.task.class_names[c]}: mean attribution",
                    "values": _clean_grid(downsample(maps[labels == c].mean(axis=0))), "scale": "signed",
                })
    run.charts.append(Chart(
        "attribution_maps", "Where the model looks", "heatmap", {"panels": panels},
        caption="Mean |attribution| per pixel over the sample (summed over channels)"
        + ("; then, per predicted class, the mean signed attribution to that class (orange raises it, "
           "blue lowers it)." if len(panels) > 1 else "."),
    ))
    if not examples:
        return
    example_panels = []
    pred, y = run.ctx.predictions, run.ctx.data.y
    for kind, row in examples:
        image = run.X[row].reshape(channels, height, width)
        attr = found.values[position[row]].reshape(channels, height, width).sum(axis=0)
        if channels == 3:
            picture = {"values": _clean_grid(downsample(np.moveaxis(image, 0, -1).astype(np.float64))), "scale": "rgb"}
        else:
            picture = {"values": _clean_grid(downsample(image.mean(axis=0).astype(np.float64))), "scale": "grey"}
        if run.task.is_classification:
            assert pred.label is not None and pred.proba is not None
            said = run.task.class_names[int(pred.label[row])]
            title = f"row {row + 1}" + (f", true {run.task.class_names[int(y[row])]}" if y is not None else "")
            heading = f"{_SHORT.get(kind, kind)}: {said} ({float(pred.proba[row].max()):.2f})"
        else:
            assert pred.value is not None
            title = f"row {row + 1}" + (f", true {number_text(float(y[row]))}" if y is not None else "")
            heading = f"predicted {number_text(float(pred.value[row]))}"
        example_panels.append({"title": title, **picture})
        example_panels.append({"title": heading, "values": _clean_grid(downsample(attr)), "scale": "signed"})
        example_panels.append({"title": "over the image", "values": _clean_grid(downsample(overlay(image, attr))),
                               "scale": "rgb"})
    run.charts.append(Chart(
        "example_maps", "Individual explanations", "heatmap", {"panels": example_panels, "columns": 3},
        caption=f"Each input, its attribution to {run.output_name} (orange raises it, blue lowers it), and the "
        "attribution drawn over the input in grey (the stronger, the more opaque), titled with the prediction "
        "and its probability: " + " then ".join(dict.fromkeys(f"the {kind} predictions" for kind, _ in examples))
        + ".",
    ))


#: The attribution map's colours over the image: Okabe-Ito vermillion (raises) and blue (lowers).
_RAISES, _LOWERS = np.array([0.835, 0.369, 0.0]), np.array([0.0, 0.447, 0.698])
#: The opacity of the strongest attribution over the image.
_MOST_OPAQUE = 0.85


def overlay(image: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """``attr`` (H, W) drawn over ``image`` (C, H, W) as an RGB picture (H, W, 3) in [0, 1]: the
    image in grey, stretched to its own range, under the signed colours, each pixel as opaque as
    its |attribution| is large against the image's largest."""
    grey = image.astype(np.float64).mean(axis=0)
    lo, hi = float(grey.min()), float(grey.max())
    base = (grey - lo) / (hi - lo) if hi > lo else np.full_like(grey, 0.5)
    limit = float(np.abs(attr).max())
    alpha = _MOST_OPAQUE * np.abs(attr) / limit if limit > 0 else np.zeros_like(base)
    colour = np.where((attr >= 0)[..., None], _RAISES, _LOWERS)
    return (1.0 - alpha)[..., None] * base[..., None] + alpha[..., None] * colour


def summary_sentence(
    run: ExplainRun, method: attribution.Method, g: Importance, permuted: PermutationImportance | None
) -> str:
    names = run.layout.names
    leading = []
    for j in g.order[:3]:
        phrase = f"{names[j]} ({g.share[j]:.0%}"
        tendency = tendency_group(g.tendency[j]) if run.task.kind != "multiclass" else None
        if tendency == 1:
            phrase += ", higher values raise it"
        elif tendency == 0:
            phrase += ", higher values lower it"
        leading.append(phrase + ")")
    if run.layout.kind == "image":
        tenth = run.metrics["top_tenth_share"].value or 0.0
        text = (
            f"{method.title} attributions of {run.output_name} are mapped over the image: the busiest "
            f"10% of its inputs hold {tenth:.0%} of the attribution"
        )
    else:
        text = f"{run.output_name[0].upper()}{run.output_name[1:]} is driven most by " + _join(leading)
        if run.layout.kind == "sequence":
            text += " (each feature summed over its time steps)"
            if run.busiest_step is not None:
                step, share = run.busiest_step
                text += f"; time step {step} carries the most ({share:.0%})"
    rho = run.metrics.get("agreement")
    if permuted is not None and rho is not None and rho.value is not None:
        verdict = "agree" if rho.value >= float(run.options["min_agreement"]) else "disagree"
        text += (f"; {method.title} and permutation importance {verdict} (Spearman {number_text(rho.value)} over "
                 "the top features)")
    return text + "."


def completeness_table(method: attribution.Method, delta: np.ndarray, p50: float, p95: float, worst: float,
                       tolerance: float, counts: dict[int, int], units: str, max_steps: int) -> Table:
    """The completeness check: the error's quantiles, the rows within tolerance, the steps used."""
    return Table(
        "completeness", "Completeness check",
        ["Statistic", "Value"],
        [
            ["Median error", p50], ["95th percentile", p95], ["Largest", worst],
            ["Tolerance", tolerance],
            ["Rows within tolerance", int(np.sum(delta <= tolerance))],
            *[[f"Rows integrated with {s} steps", c] for s, c in sorted(counts.items())],
        ],
        caption=f"{method.title}'s attributions of a row must sum to its output minus the baseline's "
        f"(in {units}); rows that missed the tolerance were integrated again with twice the steps, "
        f"up to {max_steps}.",
    )


def importance_views(run: ExplainRun, g: Importance, permuted: PermutationImportance | None, top: int) -> None:
    """The feature-importance table (with permutation importance beside it when computed) and
    the chart of the ``top`` features, coloured by their sign tendency."""
    names = run.layout.names
    order = g.order
    binary_like = run.task.kind != "multiclass"
    rows = []
    p_rank = None
    if permuted is not None:
        p_rank = np.empty(len(names), dtype=np.int64)
        p_rank[np.argsort(-permuted.mean, kind="stable")] = np.arange(1, len(names) + 1)
    for rank, j in enumerate(order, start=1):
        row: list[Any] = [rank, names[j], float(g.mean_abs[j]), float(g.share[j])]
        if binary_like:
            row += [float(g.mean[j]), _finite(g.tendency[j])]
        if permuted is not None:
            assert p_rank is not None
            row += [float(permuted.mean[j]), float(permuted.sd[j]), int(p_rank[j])]
        rows.append(row)
    columns = ["Rank", "Feature", "Mean |attribution|", "Share"]
    if binary_like:
        columns += ["Mean attribution", "Value–attribution correlation"]
    if permuted is not None:
        columns += ["Permutation importance", "Permutation SD", "Permutation rank"]
    run.tables.append(Table(
        "importance", "Feature importance", columns, rows,
        caption=f"Mean absolute attribution to {run.output_name} over the sample, and its share of the "
        "total; the correlation of a feature's value with its attribution says whether higher values "
        "raise (positive) or lower (negative) the output."
        + (" Permutation importance: the metric's drop when the feature is shuffled (SD over repeats, "
           "ddof 0 as scikit-learn)." if permuted is not None else ""),
    ))
    shown = order[:top]
    data: dict[str, Any] = {
        "x_label": "Feature",
        "y_label": f"Mean |attribution| to {run.output_name}",
        "labels": [names[j] for j in shown],
        "values": [float(g.mean_abs[j]) for j in shown],
        "errors": None,
    }
    if binary_like:
        data["groups"] = [tendency_group(g.tendency[j]) for j in shown]
        data["legend"] = ["higher values lower it", "higher values raise it"]
    run.charts.append(Chart(
        "importance", f"What drives {run.output_name}: top {top} features", "bar", data,
        caption="Bars: mean |attribution| over the sample. Colour: the sign tendency (grey: mixed or flat).",
    ))


def permutation_chart(names: list[str], permuted: PermutationImportance, p_order: np.ndarray, top: int) -> Chart:
    """The ``top`` features by permutation importance, with ±1 SD over the repeats."""
    return Chart(
        "permutation", f"Permutation importance ({in_sentence(METRIC_DEFINITIONS[permuted.metric][0])})", "bar",
        {
            "x_label": "Feature",
            "y_label": f"Drop in {in_sentence(METRIC_DEFINITIONS[permuted.metric][0])}",
            "labels": [names[j] for j in p_order[:top]],
            "values": [float(permuted.mean[j]) for j in p_order[:top]],
            "errors": [
                [float(permuted.mean[j] - permuted.sd[j]), float(permuted.mean[j] + permuted.sd[j])]
                for j in p_order[:top]
            ],
        },
        caption="Mean drop over the repeats, with ±1 SD.",
    )


def agreement_table(top: int, rho_top: float | None, rho_all: float | None, overlap: float) -> Table:
    """How far the attributions and permutation importance agree on the features' ranks."""
    return Table(
        "agreement", "Agreement of the two importances",
        ["Measure", "Value"],
        [[f"Spearman, top {top} features of either", rho_top], ["Spearman, all features", rho_all],
         [f"Top-{top} overlap", overlap]],
        caption="Gradient attributions and permutation importance measure different things (sensitivity of "
        "the output, the metric's dependence on a feature); features they agree on are what the model "
        "relies on.",
    )


#: Kinds of individual explanation, as a panel title says them.
_SHORT = {"confident and right": "right", "confident and wrong": "wrong", "most confident": "surest",
          "least confident": "least sure"}


def _join(parts: Sequence[str]) -> str:
    from auditor.report.numbers import join_words

    return join_words(parts)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _value(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def _clean_grid(grid: np.ndarray) -> list[Any]:
    """A map for JSON: float32 precision is plenty for a picture, NaN becomes None."""
    rounded = np.round(grid.astype(np.float64), 6)
    return [[_cell(v) for v in row] for row in rounded.tolist()]


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return [_cell(v) for v in value]
    return value if value == value else None
