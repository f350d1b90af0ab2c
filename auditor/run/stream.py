"""One concept: the one streaming pass over a data file, in memory bounded by a budget.

:func:`stream_pass` reads the file in chunks (:mod:`auditor.loading.chunks`), checks each
one as :func:`auditor.loading.data.load_data` checks the whole file, runs every row through
the model once, and keeps what the audits need:

- **every row's compact columns**: the model's raw outputs, the target, the sensitive and
  named columns (a few bytes a row: text is dictionary-encoded as it is read), so exact
  metrics stay exact;
- **the features** of every row when they fit their share of the budget, else a seeded
  sample of rows that does not depend on how the file was cut into chunks: the rows whose
  key (a 64-bit hash of the seed and the row's number) is smallest (bottom-k sampling; the
  same rows for 1, 2 or 7 chunks, and mergeable when chunks are read apart).

Batches are cut at the same rows as one in-memory pass (a batch may straddle two chunks),
so the outputs are the same numbers, bit for bit; the next chunk is read and checked on a
second thread while the model runs on this one.

**The budget** (``--memory-budget``, ``AUDITOR_MEMORY_BUDGET``, else the memory available)
is shared out: a chunk in flight takes at most an eighth (two are in flight: the one the
model reads, the one being read), the features kept at most half, the compact columns at
most a quarter. Without a stated budget a chunk is at most :data:`CHUNK_CAP` and the
features kept :data:`FEATURE_CAP`, whatever memory is free.

**Past the compact share** (:class:`Binning`): when the compact columns of the rows read so
far exceed their quarter, and the caller said how to decide the task (``decide``: the audit
data's pass decides it, the training data's takes the audit data's), the pass switches. The task and the groups are
decided on every row read so far, those rows are counted into a
:class:`auditor.run.tally.Tally`, and so is every later row as its outputs come out; the
compact columns and outputs are kept only for the rows that may be in the feature sample
(whose size is then capped so that its columns fit the compact share). The result holds the
sample as its dataset and the tallies of every row. Without ``decide`` such data are refused
(exit 2) with the figures.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa

from auditor.contract.context import Tallies
from auditor.contract.errors import DataError, UsageError
from auditor.loading.arrow import column_to_numpy
from auditor.loading.chunks import ChunkReader, Reread, estimated_rows
from auditor.loading.columns import ReadPlan
from auditor.loading.data import RawData, check_chunk, check_target, finish, no_rows
from auditor.loading.hashing import sha256_file
from auditor.loading.inputs import MEMORY_BUDGET_VARIABLE, human_size, memory_budget
from auditor.run import heap
from auditor.run.tally import Decided, GroupCoder, Tally, describe

#: Without a stated budget: the most one chunk may take, and the most the features kept may.
CHUNK_CAP = 32 << 20
FEATURE_CAP = 256 << 20
#: Rows the feature sample moves at a time when it is cut back to its k smallest keys.
_COMPACT_BLOCK = 1 << 16
#: Bytes a kept column takes a row, before the first chunk tells (text: offsets and a few characters).
_KEPT_GUESS = 16
#: Binned mode: the sample whose per-row columns are kept takes at most this many bytes a row of
#: the compact share (so the sample is at most compact / this rows, whatever the chunking).
_SAMPLE_ROW_BYTES = 512
#: Binned mode: the rows read before the switch are counted this many at a time.
_PREFIX_SLICE = 1 << 18

#: ``decide(outputs, target_values) -> Decided``: the task, decided as for a whole file (binned mode).
Decide = Callable[[np.ndarray, "np.ndarray | None"], Decided]


@dataclass(frozen=True)
class Budget:
    """The memory the pass may hold, and its shares."""

    total: int
    source: str
    stated: bool  # given by --memory-budget or the environment, not read from the machine

    @classmethod
    def current(cls) -> Budget:
        total, source = memory_budget()
        return cls(total, source, bool(os.environ.get(MEMORY_BUDGET_VARIABLE, "").strip()))

    @property
    def chunk(self) -> int:
        return self.total // 8 if self.stated else min(self.total // 8, CHUNK_CAP)

    @property
    def features(self) -> int:
        return self.total // 2 if self.stated else min(self.total // 2, FEATURE_CAP)

    @property
    def compact(self) -> int:
        return self.total // 4

    def words(self) -> str:
        return f"{human_size(self.total)} ({self.source})"


@dataclass
class StreamFacts:
    """What the pass did, for the report's ``run.engine`` section."""

    rows: int = 0
    chunks: int = 0
    rows_per_chunk: int = 0
    batch_size: int = 0
    budget_bytes: int = 0
    budget_source: str = ""
    feature_rows: int = 0  # rows whose features were kept
    sampled: bool = False
    reread: list[str] = field(default_factory=list)  # kept CSV columns whose type a later block widened
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # examples left out as unreadable (--skip-unreadable)
    binned: dict[str, Any] | None = None  # what the tallies hold, when kept (auditor.run.tally.describe)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "chunks": self.chunks, "rows_per_chunk": self.rows_per_chunk,
            "batch_size": self.batch_size, "memory_budget_bytes": self.budget_bytes,
            "memory_budget_source": self.budget_source, "feature_rows": self.feature_rows,
            "features_sampled": self.sampled, "reread_for_types": list(self.reread),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
            **({"skipped_unreadable": len(self.skipped), "skipped_examples": self.skipped[:20]} if self.skipped else {}),
            **({"binned": dict(self.binned)} if self.binned else {}),
        }


@dataclass
class Pass:
    """The result: the dataset (``X`` all rows or a sample, ``rows`` saying which), the
    model's raw outputs for every row, and what the pass did."""

    raw: RawData
    outputs: np.ndarray
    facts: StreamFacts
    tallies: Tallies | None = None  # binned mode: ``raw`` and ``outputs`` hold the sample's rows only


# --- a seeded sample that does not depend on the chunking ---------------------------------------

def row_keys(seed: int, start: int, stop: int) -> np.ndarray:
    """A 64-bit key per data row ``start..stop-1`` (splitmix64 of the row number and the seed):
    the same row always gets the same key, however the file was cut."""
    return _keys_of(seed, np.arange(start, stop, dtype=np.uint64))


class FeatureKeeper:
    """Keeps every row's features while they fit ``capacity`` bytes, then the ``k`` rows with
    the smallest :func:`row_keys` (k: half the capacity's rows), mergeable chunk by chunk.

    Past the switch the capacity is a buffer of ``2k`` candidates: a row enters when its key
    is below the threshold (the k-th smallest key at the last compaction; no later row can
    push a row under it out of the bottom k), and only a full buffer is cut back to its k
    smallest. So the k-selection runs a few times per file, not once per chunk."""

    def __init__(self, n_features: int, capacity: int, seed: int) -> None:
        self.n_features = n_features
        self.seed = seed
        self.row_bytes = 4 * n_features + 16
        self.capacity_rows = max(capacity // self.row_bytes, 1)
        self.k = max(self.capacity_rows // 2, 1)
        self.parts: list[np.ndarray] = []
        self.rows = 0
        self.sample: np.ndarray | None = None  # (2k, F) C-order; its first ``filled`` rows are candidates
        self.keys: np.ndarray | None = None
        self.index: np.ndarray | None = None
        self.filled = 0
        self.threshold: np.uint64 | None = None  # None: every row is a candidate (fewer than k seen)

    def add(self, X: np.ndarray, offset: int) -> None:
        n = X.shape[0]
        if self.sample is None and self.rows + n <= self.capacity_rows:
            self.parts.append(X)
            self.rows += n
            return
        if self.sample is None:
            self._start_sampling()
        self._merge(X, offset)
        self.rows += n

    def _start_sampling(self) -> None:
        """The switch: the sample of every row so far."""
        self.sample = np.empty((2 * self.k, self.n_features), dtype=np.float32)
        self.keys = np.empty(2 * self.k, dtype=np.uint64)
        self.index = np.empty(2 * self.k, dtype=np.int64)
        start = 0
        for part in self.parts:
            self._merge(part, start)
            start += part.shape[0]
        self.parts = []

    def limit(self, k: int) -> None:
        """Keep at most ``k`` rows from now on, a sample even if every row's features would fit
        (binned mode: the other per-row columns are kept for these rows only)."""
        self.k = max(min(self.k, k), 1)
        if self.sample is None:
            self._start_sampling()
        else:
            self._compact()
        assert self.sample is not None and self.keys is not None and self.index is not None
        if self.sample.shape[0] > 2 * self.k:  # give back the room of the larger sample it was (compacted above)
            self.sample = self.sample[: 2 * self.k].copy()
            self.keys, self.index = self.keys[: 2 * self.k].copy(), self.index[: 2 * self.k].copy()

    def below(self, keys: np.ndarray) -> np.ndarray:
        """Which of these keys could still be in the sample (at or under the threshold)."""
        return np.ones(keys.size, dtype=bool) if self.threshold is None else keys <= self.threshold

    def _merge(self, X: np.ndarray, offset: int) -> None:
        """Bring in the rows of ``X`` whose keys are below the threshold, compacting first
        when the buffer has no room for them."""
        assert self.sample is not None and self.keys is not None and self.index is not None
        keys = row_keys(self.seed, offset, offset + X.shape[0])
        chosen = np.arange(X.shape[0]) if self.threshold is None else np.flatnonzero(keys < self.threshold)
        while chosen.size:
            room = 2 * self.k - self.filled
            if room == 0:
                self._compact()
                chosen = chosen[keys[chosen] < self.threshold]
                continue
            enter, chosen = chosen[:room], chosen[room:]
            slots = slice(self.filled, self.filled + enter.size)
            self.sample[slots] = X[enter]
            self.keys[slots] = keys[enter]
            self.index[slots] = enter.astype(np.int64) + offset
            self.filled += enter.size

    def _compact(self) -> None:
        """Cut the candidates back to the ``k`` with the smallest keys; the largest of them is
        the new threshold."""
        assert self.sample is not None and self.keys is not None and self.index is not None
        if self.filled <= self.k:
            if self.filled == self.k and self.threshold is None and self.keys is not None:
                self.threshold = self.keys[: self.k].max()
            return
        best = np.argpartition(self.keys[: self.filled], self.k - 1)[: self.k]
        best.sort()
        # Rows only move forward (best[i] >= i), so copying in ascending blocks never overwrites a
        # row a later block still reads, and no second copy of the sample is made.
        for start in range(0, self.k, _COMPACT_BLOCK):
            rows = best[start:start + _COMPACT_BLOCK]
            self.sample[start:start + rows.size] = self.sample[rows]
        self.keys[: self.k] = self.keys[best]
        self.index[: self.k] = self.index[best]
        self.filled = self.k
        self.threshold = self.keys[: self.k].max()

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The features kept (rows x features) and the data rows they are (None: every row)."""
        if self.sample is None:
            if len(self.parts) == 1:
                return self.parts[0], None
            columns = np.empty((self.n_features, self.rows), dtype=np.float32)
            start = 0
            for part in self.parts:
                columns[:, start:start + part.shape[0]] = part.T
                start += part.shape[0]
            self.parts = []
            return columns.T, None
        self._compact()
        assert self.index is not None and self.sample is not None
        order = np.argsort(self.index[: self.filled], kind="stable")
        return np.asfortranarray(self.sample[order]), self.index[order]


# --- batches cut where one in-memory pass cuts them --------------------------------------------

class Batches:
    """Feeds chunks to ``infer(X, offset, size)`` in whole batches of ``size`` rows at multiples of
    ``size`` from the file's first row; a batch that straddles two chunks is put together."""

    def __init__(self, infer: Callable[[np.ndarray, int, int], np.ndarray], size: int) -> None:
        self.infer = infer
        self.size = size
        self.pending: np.ndarray | None = None
        self.pending_at = 0
        self.outputs: list[np.ndarray] = []
        self.done = 0  # rows whose outputs were handed out by ``take``

    def _run(self, X: np.ndarray, offset: int) -> None:
        # a width that changes between calls is ``infer``'s to refuse (run_inference's ``seen``)
        self.outputs.append(self.infer(X, offset, self.size))

    def take(self) -> tuple[int, np.ndarray] | None:
        """The outputs made since the last ``take`` and the data row of their first (rows
        follow each other), handed over and no longer kept; None when there are none."""
        if not self.outputs:
            return None
        out = self.outputs[0] if len(self.outputs) == 1 else np.concatenate(self.outputs)
        self.outputs = []
        start, self.done = self.done, self.done + out.shape[0]
        return start, out

    def feed(self, X: np.ndarray, offset: int) -> None:
        if self.pending is not None:
            need = self.size - self.pending.shape[0]
            head = np.asfortranarray(np.concatenate([self.pending, X[:need]]))
            X, offset = X[need:], offset + need
            if head.shape[0] < self.size:
                self.pending = head
                return
            self._run(head, self.pending_at)
            self.pending = None
        whole = (X.shape[0] // self.size) * self.size
        if whole:
            self._run(X[:whole], offset)
        if whole < X.shape[0]:
            self.pending = np.asfortranarray(X[whole:])
            self.pending_at = offset + whole

    def flush(self) -> None:
        """Run the last, partial batch."""
        if self.pending is not None:
            self._run(self.pending, self.pending_at)
            self.pending = None

    def close(self) -> np.ndarray:
        self.flush()
        if len(self.outputs) == 1:
            return self.outputs[0]
        return np.concatenate(self.outputs)


# --- the pass ------------------------------------------------------------------------------------

def row_bytes(plan: ReadPlan) -> int:
    """Bytes a row takes in a chunk in flight: its text (CSV), the Arrow table and the float32 matrix."""
    text = int(plan.layout.bytes_per_row) if plan.layout is not None else 0
    return text + 8 * len(plan.feature_names) + _KEPT_GUESS * len(plan.others) + 8


def plan_chunks(plan: ReadPlan, budget: Budget, batch_size: int | None, default_batch: int) -> tuple[int, int]:
    """Rows a chunk and rows a batch: a chunk is an eighth of the budget; a batch asked for
    with --batch-size must fit in one, and the default batch shrinks to one chunk."""
    per_row = row_bytes(plan)
    rows = budget.chunk // per_row
    least = per_row * 8 * (batch_size or 1)
    if rows < (batch_size or 1):
        what = f"one batch of {batch_size:,} rows (--batch-size)" if batch_size else "one row"
        raise UsageError(
            f"A memory budget of {budget.words()} cannot hold {what} of {plan.path.name}: a chunk may take an "
            f"eighth of the budget and a row takes about {per_row:,} bytes in flight.",
            hint=f"Give at least {human_size(least)} (--memory-budget {_size_word(least)})"
            + (", or a smaller --batch-size." if batch_size else "."),
        )
    return rows, batch_size or min(default_batch, rows)


def _size_word(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{-(-n // size)}{unit}"
    return f"{n}B"


def compact_fits(budget: Budget, rows: int, per_row: float) -> bool:
    """Whether the compact columns of ``rows`` rows fit their quarter of the budget."""
    return rows * per_row <= budget.compact


def check_compact(plan: ReadPlan, budget: Budget, rows: int, per_row: float, more: bool, where: str) -> None:
    """The compact columns of ``rows`` rows must fit their quarter of the budget (``where``: the
    pass, which keeps no binned state, e.g. "the training data")."""
    need = rows * per_row
    if compact_fits(budget, rows, per_row):
        return
    so_far = f"the {rows:,} rows read so far" if more else f"its {rows:,} rows"
    raise DataError(
        f"Auditing {plan.path.name} needs about {human_size(need)} to keep the outputs, labels and groups of "
        f"{so_far}, {per_row:,.0f} bytes a row, more than a quarter of the memory budget, {budget.words()}.",
        hint=f"Raise --memory-budget (or {MEMORY_BUDGET_VARIABLE}) to at least {_size_word(int(need * 4))}, or "
        f"audit a sample of the rows: binned state is kept under the stream engine, not for {where}.",
    )


def stream_pass(
    plan: ReadPlan,
    *,
    infer: Callable[[np.ndarray, int, int], np.ndarray],
    batch_size: int | None,
    default_batch: int,
    seed: int,
    progress: Callable[[str, int | None], Any],
    label: str = "Predicting",
    decide: Decide | None = None,
) -> Pass:
    """Read ``plan``'s file in chunks, run each through ``infer(X, offset, batch)`` in batches, and
    keep the compact columns and the features (all, or a seeded sample); see the module.
    ``decide``: how the task is decided, for binned mode; without it, compact columns past their
    share of the budget are refused."""
    budget = Budget.current()
    again = Reread({})
    while True:
        try:
            done = _one_pass(plan, budget, again, infer=infer, batch_size=batch_size, default_batch=default_batch,
                             seed=seed, progress=progress, label=label, decide=decide)
            heap.trim()  # the chunks' memory goes back: peak memory is what the run holds
            return done
        except Reread as more:
            again = more


def encoded(part: pa.Table) -> pa.Table:
    """The kept columns with text dictionary-encoded: a group or label column of 10^7 rows
    takes 40 MB of codes instead of ~300 MB of strings (the groups and labels read it as is)."""
    import pyarrow.compute as pc

    for i, kind in enumerate(part.schema.types):
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            part = part.set_column(i, part.schema.field(i).name, pc.dictionary_encode(part.column(i)))
    return part


def _prefetched(chunks: Iterator[Any], plan: ReadPlan) -> Iterator[tuple[pa.Table, np.ndarray, int]]:
    """Each chunk's kept columns (text encoded), its checked feature matrix and first row, the
    next one read and checked on a second thread while the caller works on this one. ``chunks``: tables of a file, or
    (table, inputs) pairs of a source (:mod:`auditor.loading.sources`), whose inputs are checked."""
    offset = 0
    keep = list(dict.fromkeys(plan.keep))

    def read(start: int) -> tuple[pa.Table, np.ndarray] | None:
        item = next(chunks, None)
        if item is None:
            return None
        if isinstance(item, tuple):
            table, X = item
            check_chunk(plan, table, start, features=False)
        else:
            table, X = item, check_chunk(plan, item, start)
        return encoded(table.select(keep)), X

    with ThreadPoolExecutor(max_workers=1) as pool:
        future: Future[Any] = pool.submit(read, 0)
        while True:
            item = future.result()
            if item is None:
                return
            table, X = item
            future = pool.submit(read, offset + table.num_rows)
            yield table, X, offset
            offset += table.num_rows


def _one_pass(
    plan: ReadPlan,
    budget: Budget,
    again: Reread,
    *,
    infer: Callable[[np.ndarray, int, int], np.ndarray],
    batch_size: int | None,
    default_batch: int,
    seed: int,
    progress: Callable[[str, int | None], Any],
    label: str,
    decide: Decide | None = None,
) -> Pass:
    started = time.perf_counter()
    rows_per_chunk, batch = plan_chunks(plan, budget, batch_size, default_batch)
    reader = ChunkReader(plan, rows_per_chunk, dict(again.types), again.block_size)
    source = plan.source
    keeper = FeatureKeeper(len(plan.feature_names), budget.features, seed)
    batches = Batches(infer, batch)
    kept: list[pa.Table] = []
    facts = StreamFacts(batch_size=batch, budget_bytes=budget.total, budget_source=budget.source,
                        reread=sorted(again.types))
    expected = estimated_rows(plan) if source is None else source.n_rows
    kept_bytes = 0
    binning: Binning | None = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        # a file is hashed on a second read alongside the pass; a source that hashes what it
        # reads (an image folder) says so, and is asked after
        after = source is not None and getattr(source, "hashes_while_reading", False)
        digest = None if after else pool.submit(sha256_file, plan.path) if source is None else pool.submit(source.digest)
        chunks = reader.chunks() if source is None else source.chunks(rows_per_chunk)
        with progress(label, expected) as advance:
            for table, X, offset in _prefetched(chunks, plan):
                n = table.num_rows
                facts.chunks += 1
                facts.rows = offset + n
                if binning is not None:
                    keeper.add(X, offset)
                    binning.chunk(table, offset)
                    batches.feed(X, offset)
                    binning.outputs(batches.take())
                    advance(n)
                    continue
                batches.feed(X, offset)
                keeper.add(X, offset)
                kept.append(table)
                kept_bytes += table.nbytes
                width = batches.outputs[0].shape[1] if batches.outputs else 2
                if facts.rows:  # (an empty chunk, a header and no rows, has nothing to keep yet)
                    per_row = kept_bytes / facts.rows + 4 * width
                    if decide is None:
                        check_compact(plan, budget, facts.rows, per_row, more=True, where="this pass")
                    elif not compact_fits(budget, facts.rows, per_row) and batches.outputs:  # a batch has run
                        binning = Binning.start(plan, decide, keeper, kept, batches.take(), budget)
                        kept, kept_bytes = [], 0
                advance(n)
            if facts.rows == 0:
                raise no_rows(plan.path)
            if binning is None:
                outputs = batches.close()  # the last batch, within the step (an --inference-timeout guards it)
            else:
                batches.flush()
                binning.outputs(batches.take())
        if source is None:
            reader.check_unchanged(facts.rows)
        X_kept, rows = keeper.result()
        sha = digest.result() if digest is not None else source.digest()
        if binning is not None:
            assert rows is not None
            done = binning.finish(X_kept, rows, sha, facts)  # its dataset is the sample (rows None)
        else:
            table = pa.concat_tables(kept) if len(kept) > 1 else kept[0]
            done = Pass(raw=finish(plan, table, X_kept, facts.rows, sha), outputs=outputs, facts=facts)
            done.raw.dataset.rows = rows
    facts.rows_per_chunk = rows_per_chunk if facts.chunks > 1 else facts.rows
    facts.feature_rows = X_kept.shape[0]
    facts.skipped = list(getattr(source, "skipped", None) or [])
    facts.sampled = rows is not None
    facts.seconds = time.perf_counter() - started
    return done


# --- binned mode: mergeable state for every row, per-row columns for a sample --------------------

class Binning:
    """The pass once every row's compact columns stopped fitting their share of the budget:
    each row is counted in a :class:`auditor.run.tally.Tally` as its outputs come out, and the
    kept columns and outputs of the rows that may be in the feature sample are kept with them,
    so that at the end the sample is a dataset of its own (same rows as the features')."""

    def __init__(self, plan: ReadPlan, tally: Tally, keeper: FeatureKeeper, seed: int, switched_at: int) -> None:
        self.plan = plan
        self.tally = tally
        self.keeper = keeper
        self.seed = seed
        self.switched_at = switched_at
        self.queue: list[tuple[int, pa.Table]] = []  # kept columns of rows whose outputs are not out yet
        self.tables: list[tuple[np.ndarray, pa.Table]] = []  # the sample's candidates: data rows, kept columns
        self.outs: list[tuple[np.ndarray, np.ndarray]] = []  # and their outputs
        self.held = 0

    @classmethod
    def start(cls, plan: ReadPlan, decide: Decide, keeper: FeatureKeeper, kept: list[pa.Table],
              done: tuple[int, np.ndarray] | None, budget: Budget) -> Binning:
        """Switch: decide the task and the groups on every row read so far, count them, and go on."""
        table = pa.concat_tables(kept) if len(kept) > 1 else kept[0]
        assert done is not None and done[0] == 0  # a chunk holds at least one batch (plan_chunks)
        outputs = done[1]
        m = outputs.shape[0]
        target_of = _target_reader(plan)
        decided = decide(outputs, target_of(table.slice(0, m), 0) if plan.target_name else None)
        coders = [GroupCoder(name, table.column(name), name in plan.feature_names) for name in plan.sensitive]
        keeper.limit(max(budget.compact // _SAMPLE_ROW_BYTES, 1))
        binning = cls(plan, Tally(decided, coders, target_of), keeper, keeper.seed, table.num_rows)
        binning.chunk(table, 0)
        for start in range(0, m, _PREFIX_SLICE):  # counted a slice at a time: the transients of one slice
            binning.outputs((start, outputs[start:start + _PREFIX_SLICE]))
        return binning

    def _candidates(self, start: int, n: int) -> np.ndarray:
        return np.flatnonzero(self.keeper.below(row_keys(self.seed, start, start + n)))

    def chunk(self, table: pa.Table, offset: int) -> None:
        """A chunk's kept columns: queued until their outputs come, the sample's candidates kept."""
        chosen = self._candidates(offset, table.num_rows)
        self.tables.append((chosen + offset, table.take(chosen)))
        self.queue.append((offset, table))
        self.held += chosen.size
        if self.held > 8 * self.keeper.k:
            self._prune()

    def outputs(self, done: tuple[int, np.ndarray] | None) -> None:
        """Outputs of the rows ``start..``: count those rows (their kept columns are queued)."""
        if done is None:
            return
        start, out = done
        n = out.shape[0]
        parts, at = [], start
        while at < start + n:  # the queue's front tables hold these rows: a batch may straddle two chunks
            offset, table = self.queue[0]
            part = table.slice(at - offset, start + n - at)
            parts.append(part)
            at += part.num_rows
            if at >= offset + table.num_rows:
                self.queue.pop(0)
        rows = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        self.tally.add(rows, out, start)
        chosen = self._candidates(start, n)
        self.outs.append((chosen + start, out[chosen]))

    def _prune(self) -> None:
        """Drop the candidates the sample has since passed over (the threshold only falls)."""
        if self.keeper.threshold is None:
            return
        tables, outs = [], []
        for rows, table in self.tables:
            keep = self.keeper.below(_keys_of(self.seed, rows))
            tables.append((rows[keep], table.filter(pa.array(keep))))
        for rows, out in self.outs:
            keep = self.keeper.below(_keys_of(self.seed, rows))
            outs.append((rows[keep], out[keep]))
        self.tables, self.outs = tables, outs
        self.held = sum(rows.size for rows, _ in self.tables)

    def finish(self, X: np.ndarray, rows: np.ndarray, sha: str, facts: StreamFacts) -> Pass:
        """The sample as a dataset of its own, its outputs, and the tallies of every row."""
        assert not self.queue
        table_rows = np.concatenate([r for r, _ in self.tables])
        at = np.searchsorted(table_rows, rows)  # candidates are kept in file order, and include the sample
        assert np.array_equal(table_rows[at], rows)
        table = pa.concat_tables([t for _, t in self.tables]).take(at)
        out_rows = np.concatenate([r for r, _ in self.outs])
        at = np.searchsorted(out_rows, rows)
        assert np.array_equal(out_rows[at], rows)
        outputs = np.concatenate([o for _, o in self.outs])[at]
        raw = finish(self.plan, table, X, int(rows.size), sha)
        raw.sensitive = {c.name: c.groups(table.column(c.name)) for c in self.tally.coders}
        tallies = self.tally.result(rows)
        facts.binned = describe(tallies, self.switched_at)
        return Pass(raw=raw, outputs=outputs, facts=facts, tallies=tallies)


def _keys_of(seed: int, rows: np.ndarray) -> np.ndarray:
    """:func:`row_keys` of some rows (not a range)."""
    z = rows.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % (1 << 64))
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _target_reader(plan: ReadPlan) -> Callable[[pa.Table, int], np.ndarray]:
    """The target of some rows as the file holds it, missing labels refused naming the row."""
    def target_of(table: pa.Table, first_row: int) -> np.ndarray:
        assert plan.target_name is not None
        check_target(plan.path, plan.fmt, plan.layout, table, plan.target_name, offset=first_row)
        return column_to_numpy(table.column(plan.target_name))
    return target_of


def peak_rss() -> int | None:
    """This process's peak resident memory so far, in bytes (None where unknown: no
    ``resource`` module, as on Windows)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return int(peak) * (1 if sys.platform == "darwin" else 1024)  # Linux reports KiB, macOS bytes
