"""The context an audit that reads features gets when the run kept a sample of them.

When the features of every row exceed the memory budget, :mod:`auditor.run.stream` keeps
those of a seeded sample of rows (``Dataset.rows``). An audit that declares the need
``features`` (it reads ``ctx.data.X``) then runs on a context restricted to those rows: its
``X``, ``y``, named columns, groups and predictions all hold the same rows, so it computes
what it always computes, over fewer rows. Its result says so (summary and notes). Every
other audit reads the compact columns of all rows and stays exact.

When even those exceed the budget the run keeps tallies (:mod:`auditor.run.tally`) and a
sample of rows: the context then holds the sample, and every audit that does not read the
tallies runs on it, its result saying so in the same words.
"""

from __future__ import annotations

from dataclasses import replace

from auditor.contract.context import AuditContext, Dataset, TrainData
from auditor.contract.result import AuditResult


def _restricted(data: Dataset) -> Dataset:
    rows = data.rows
    assert rows is not None
    return replace(
        data, n_rows=int(rows.size), rows=None,
        y=None if data.y is None else data.y[rows],
        named={name: values[rows] for name, values in data.named.items()},
    )


def is_sampled(ctx: AuditContext, needs: tuple[str, ...]) -> bool:
    """Whether an audit with ``needs`` reads features of which the run kept a sample only:
    the audit data's, or the training data's when it needs those."""
    if "features" not in needs:
        return False
    return ctx.data.rows is not None or ("train_data" in needs and ctx.train is not None
                                         and ctx.train.data.rows is not None)


def on_kept_rows(ctx: AuditContext) -> AuditContext:
    """``ctx`` restricted to the rows whose features were kept (audit and training data)."""
    data, predictions, sensitive = ctx.data, ctx.predictions, ctx.sensitive
    if data.rows is not None:
        rows = data.rows
        predictions = predictions.take(rows)
        sensitive = {name: replace(groups, codes=groups.codes[rows]) for name, groups in sensitive.items()}
        data = _restricted(data)
    train = ctx.train
    if train is not None and train.data.rows is not None:
        train = TrainData(data=_restricted(train.data), predictions=train.predictions.take(train.data.rows))
    return replace(ctx, data=data, predictions=predictions, sensitive=sensitive, train=train)


def on_sample_only(ctx: AuditContext, audit: object) -> bool:
    """Whether a run that kept tallies (binned mode) gives this audit a sample only: it does
    not read tallies, and the audit data kept them, or the training data did and it reads those."""
    if getattr(audit, "reads_tallies", False):
        return False
    needs_train = "train_data" in tuple(getattr(audit, "needs", ()))  # (retraining says itself why it did not run)
    return ctx.tallies is not None or (needs_train and ctx.train is not None and ctx.train.tallies is not None)


def _parts(ctx: AuditContext, train: bool) -> list[tuple[str, bool]]:
    """Each sampled data set's words, and whether tallies (not only features) made it a sample."""
    sets = [("the data", ctx.data, ctx.tallies)]
    if train and ctx.train is not None:
        sets.append(("the training data", ctx.train.data, ctx.train.tallies))
    parts = []
    for what, data, tallies in sets:
        if tallies is not None:
            parts.append((f"{tallies.sample.size:,} of the {tallies.rows:,} rows of {what}", True))
        elif data.rows is not None:
            parts.append((f"{data.rows.size:,} of the {data.n_rows:,} rows of {what}", False))
    return parts


def sample_words(ctx: AuditContext, train: bool = True) -> str:
    """What the restricted context holds, for a result: "a seeded sample of 1,000 of 9,000 rows"
    (``train``: the training data's too, for an audit that reads it)."""
    return " and ".join(words for words, _ in _parts(ctx, train))


def say_sampled(result: AuditResult, ctx: AuditContext, train: bool = True) -> AuditResult:
    """The result of an audit run on the kept rows, saying so in its summary and notes."""
    parts = _parts(ctx, train)
    words = " and ".join(w for w, _ in parts)
    what = ("the outputs, labels and groups of every row" if any(t for _, t in parts)
            else "the features of every row")
    note = (f"Computed on a seeded sample of {words}: {what} exceed the memory budget "
            "(run.engine in report.json); raise --memory-budget to compute it on every row.")
    return replace(result, summary=f"{result.summary} (On a seeded sample of {words}.)".strip(),
                   notes=[note, *result.notes])
