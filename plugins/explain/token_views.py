"""What the "explain" audit shows for a text model (token ids): the tokens that move the
output most (a table and a bar chart coloured by their sign), the individual explanations
as highlighted text (the ``tokens`` chart) and as a table, and the summary sentence; from
the numbers :mod:`auditor_plugins.explain.tokens` computed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditor.contract.result import Chart, Table
from auditor_plugins.explain.present import _join, _signed, number_text, row_outcome, tendency_group
from auditor_plugins.explain.tokens import DELETED, MIN_OCCURRENCES, Deletion, TokenAttributions, TokenImportance

if TYPE_CHECKING:
    from auditor.contract.context import TokenText
    from auditor_plugins.explain.audit import ExplainRun

#: Tokens named per example in the individual explanations table (each way).
NAMED = 3
#: Tokens of one text shown as highlighted text, at most: a longer text shows the window around
#: its token of largest |attribution|.
SHOWN = 400


def _window(values: np.ndarray) -> int:
    """The first token of the :data:`SHOWN`-token window centred on the largest |attribution|."""
    if values.size <= SHOWN:
        return 0
    centre = int(np.argmax(np.abs(values)))
    return min(max(0, centre - SHOWN // 2), values.size - SHOWN)


def token_name(text: TokenText, token_id: int) -> str:
    vocabulary = text.vocabulary
    return vocabulary[token_id] if 0 <= token_id < len(vocabulary) and vocabulary[token_id] else f"[id {token_id}]"


def importance_views(run: ExplainRun, g: TokenImportance, text: TokenText, top: int) -> None:
    """The token importance table and the chart of the ``top`` tokens (by mean |attribution|),
    coloured by whether they raise or lower the output."""
    rows = [[rank, token_name(text, int(i)), int(g.count[i]), float(g.mean[i]), float(g.mean_abs[i]), float(g.share[i])]
            for rank, i in enumerate(g.order[:max(top, 25)], start=1)]
    run.tables.append(Table(
        "token_importance", "Token importance",
        ["Rank", "Token", "Occurrences", "Mean attribution", "Mean |attribution|", "Share"], rows,
        caption=f"Over the sample's texts: the change in {run.output_name} when one occurrence of the token is "
        f"replaced by padding (+: the token raises it), averaged over its occurrences; tokens occurring at least "
        f"{MIN_OCCURRENCES} times, by mean |attribution|. Share: of the total |attribution| over every token.",
    ))
    shown = g.order[:top]
    if shown.size == 0:
        return
    run.charts.append(Chart(
        "importance", f"What drives {run.output_name}: top {shown.size} tokens", "bar",
        {
            "x_label": "Token",
            "y_label": f"Mean |attribution| to {run.output_name}",
            "labels": [token_name(text, int(i)) for i in shown],
            "values": [float(g.mean_abs[i]) for i in shown],
            "errors": None,
            "groups": [tendency_group(float(g.mean[i] / g.mean_abs[i]) if g.mean_abs[i] > 0 else 0.0) for i in shown],
            "legend": ["lowers it", "raises it"],
        },
        caption="Bars: mean |attribution| over the token's occurrences in the sample. Colour: vermillion when "
        "the token raises the output on most of its occurrences, blue when it lowers it, grey when mixed.",
    ))


def examples_views(run: ExplainRun, found: TokenAttributions, ids: np.ndarray, position: dict[int, int],
                   examples: list[tuple[str, int]], text: TokenText) -> None:
    """The individual explanations: highlighted text (one example a row of the chart) and a table."""
    if not examples:
        return
    classification = run.task.is_classification
    shown, rows = [], []
    for kind, row in examples:
        i = position[row]
        words = np.flatnonzero(ids[i] != text.pad_id)
        values = found.values[i, words]
        tokens = [token_name(text, int(t)) for t in ids[i, words]]
        actual, predicted, confidence = row_outcome(run, row)
        order = np.argsort(-values, kind="stable")
        up = [f"{tokens[j]} ({_signed(float(values[j]))})" for j in order[:NAMED] if values[j] > 0]
        down = [f"{tokens[j]} ({_signed(float(values[j]))})" for j in order[::-1][:NAMED] if values[j] < 0]
        rows.append([kind, row + 1, actual, predicted, confidence, float(found.outputs[i]),
                     "; ".join(up) or "none", "; ".join(down) or "none"])
        truth = f"actual {actual}, " if actual is not None else ""
        start = _window(values)
        part = f" (tokens {start + 1:,}–{start + SHOWN:,} of {len(tokens):,})" if len(tokens) > SHOWN else ""
        shown.append({
            "title": f"{kind[0].upper()}{kind[1:]}: row {row + 1}{part}",
            "subtitle": f"{truth}predicted {predicted}; {run.output_name} = {number_text(float(found.outputs[i]))}",
            "tokens": tokens[start:start + SHOWN],
            "values": [float(v) for v in values[start:start + SHOWN]],
        })
    run.tables.append(Table(
        "examples", "Individual explanations",
        ["Example", "Row", "Actual", "Predicted", "Confidence" if classification else "Absolute error",
         f"Explained output ({run.output_name})", "Tokens raising it most", "Tokens lowering it most"],
        rows,
        caption="Rows are numbered from 1 as in the data file. Attributions are the change in the explained "
        "output when the token is replaced by padding: + raises it, − lowers it.",
    ))
    run.charts.append(Chart(
        "examples_text", "Individual explanations: each token shaded by its attribution", "tokens",
        {"examples": shown, "value_label": f"attribution to {run.output_name}"},
        caption="Vermillion tokens raise the explained output, blue ones lower it (one scale for every example); "
        f"hover a token for its value. Padding is not shown; a text of more than {SHOWN} tokens shows the {SHOWN} "
        "around its token of largest |attribution|.",
    ))


def summary_sentence(run: ExplainRun, g: TokenImportance, text: TokenText, deletion: Deletion) -> str:
    leading = []
    for i in g.order[:3]:
        way = "raises" if g.mean[i] > 0 else "lowers"
        leading.append(f"'{token_name(text, int(i))}' ({g.share[i]:.0%}, {way} it)")
    if leading:
        sentence = f"{run.output_name[0].upper()}{run.output_name[1:]} is driven most by the tokens {_join(leading)}"
    else:
        sentence = f"No token occurs {MIN_OCCURRENCES} times in the sample's texts to be ranked"
    if deletion.top is not None and deletion.random is not None:
        sentence += (f"; padding each text's {DELETED} tokens of largest attribution changes it by "
                     f"{_signed(-deletion.top)} on average, {DELETED} random tokens by {_signed(-deletion.random)}")
    return sentence + " (occlusion: each token replaced by padding)."
