"""The built-in "privacy" audit: columns of the audit data that look like personal data.

Every column of the data file (``ctx.data.columns``, not only the model's features) is
judged by its name and by the values of a deterministic sample, the first ``sample_rows``
rows, streamed from the file with every column read as text (:mod:`auditor_plugins.privacy.patterns` says
what looks like personal data). Each flagged column gets its role in this run: fed to the
model, the target, a sensitive attribute, a column an audit option names, or not used.

The verdict warns when the model is fed a column that looks like an identifier; columns it
does not see are an info finding (the file itself holds personal data). The result holds
column names, kinds, counts and shares only: never a row or a value. The model is never
called, and nothing depends on the clock or on chance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import AuditResult, Finding, Metric, Table

if TYPE_CHECKING:
    import pyarrow as pa

    from auditor.contract.context import AuditContext
    from auditor_plugins.privacy.patterns import Detection, ValueScan

# auditor_plugins.privacy.patterns (pyarrow and its compute kernels) is imported when the audit runs, not when
# the audits are discovered: listing them stays fast.

#: Columns named in one finding or sentence before "and N more".
MAX_LISTED = 12
#: Rows per batch when a Parquet file is streamed.
PARQUET_BATCH = 65_536

FED = "fed to the model"


def _shown(column: str) -> str:
    """A column name for a sentence or a cell: quoted, control characters (a newline in a
    header) written as escapes so that a name cannot break a line or a table row."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in column)
    return f"'{text}'"


def _listed(items: Sequence[str]) -> str:
    """``a, b and c``, or the first :data:`MAX_LISTED` and how many more."""
    shown = list(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        return f"{', '.join(shown)} and {len(items) - MAX_LISTED} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _a(label: str) -> str:
    """``a phone number``, ``an e-mail address``, ``an IP address``."""
    return f"{'an' if label[0] in 'aeiouAEIOU' or label.startswith('IP') else 'a'} {label}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


@dataclass(frozen=True)
class Sample:
    """The first rows of the data file: one scan per column (None: not scanned), in file order."""

    rows: int
    scans: list[ValueScan | None]
    problem: str = ""


class PrivacyAudit(Audit):
    """Columns of the data file that look like personal identifiers, and which reach the model."""

    name = "privacy"
    title = "Privacy"
    description = (
        "Columns of the data file that look like personal data (names, e-mails, phone numbers, national, "
        "student or user IDs, addresses, dates of birth, IP addresses, free text), by name and sampled values, "
        "and whether the model is fed them."
    )
    needs = ()
    options = (
        Option("sample_rows", "int", 20_000, "Rows read from the start of the data file to check values "
               "against the patterns (names are always checked).", min=100),
        Option("min_share", "float", 0.5, "Share of a column's sampled non-empty values that must match a "
               "pattern for the values to flag it (more than 0, up to 1).", min=0.0, max=1.0),
        Option("ignore", "str", "", "Comma-separated column names never to flag, e.g. a pseudonymous key "
               "the review board approved (names are matched exactly, spaces around commas aside)."),
    )

    def check(self, options: Mapping[str, Any]) -> None:
        if float(options["min_share"]) <= 0:
            raise UsageError(
                f"The option privacy.min_share must be more than 0; got {options['min_share']!r}.",
                hint="E.g. -o privacy.min_share=0.5 (half of the sampled values).",
            )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        from auditor_plugins.privacy.patterns import judge

        self.check(options)
        data = ctx.data
        columns = list(data.columns)
        ignore = [name.strip() for name in str(options["ignore"]).split(",") if name.strip()]
        sample = read_sample(Path(data.path), columns, int(options["sample_rows"]), float(options["min_share"]))
        repeated = {name for name, count in Counter(columns).items() if count > 1}
        flagged: list[tuple[str, Detection, list[str]]] = []
        for position, column in enumerate(columns):
            if column in ignore:
                continue
            found = judge(column, sample.scans[position])
            if found is None:
                continue
            shown = _shown(column) + (f" (column {position + 1})" if column in repeated else "")
            flagged.append((shown, found, _roles(ctx, column)))
        fed = [item for item in flagged if FED in item[2]]
        unseen = [item for item in flagged if FED not in item[2]]
        findings = [_fed_finding(shown, found, roles) for shown, found, roles in fed]
        if unseen:
            findings.append(_unseen_finding(unseen))
        tables = [_table(flagged)] if flagged else []
        notes = _notes(ctx, sample, options, ignore, columns)
        return AuditResult(
            audit=self.name,
            title=self.title,
            status="warn" if fed else "pass",
            summary=_summary(flagged, fed, len(columns), sample, data.n_rows),
            metrics=_metrics(flagged, fed, len(columns), sample),
            findings=findings,
            tables=tables,
            notes=notes,
            options=dict(options),
        )


def _roles(ctx: AuditContext, column: str) -> list[str]:
    data = ctx.data
    roles = []
    if column in data.feature_names:
        roles.append(FED)
    if data.target_name is not None and column == data.target_name:
        roles.append("target")
    if column in ctx.sensitive:
        roles.append("sensitive attribute")
    if column in data.named:
        roles.append("named by an audit option")
    return roles or ["not used"]


def _fed_finding(shown: str, found: Detection, roles: list[str]) -> Finding:
    how = "by its name and values" if found.by_name and found.by_values else (
        "by its values" if found.by_values else "by its name")
    return Finding(
        "warning", "identifier-fed-to-model",
        f"The model is fed {shown}, which looks like {_a(found.label)} ({how}). An identifier lets a model "
        "single people out and memorise them, and carries no general signal. Drop it from the model's "
        "features and retrain; if the model does not need it, leave it out of the audit's --features.",
    )


def _unseen_finding(unseen: list[tuple[str, Detection, list[str]]]) -> Finding:
    described = [f"{shown} ({found.label}; {', '.join(roles)})" for shown, found, roles in unseen]
    return Finding(
        "info", "identifier-in-data",
        f"The data file holds {_plural(len(unseen), 'column')} that look like personal data but that the model "
        f"is not fed: {_listed(described)}. The file itself is personal data: minimise it (drop the columns the "
        "audit does not need) or pseudonymise those columns (replace identifiers with keys) before sharing it.",
    )


def _table(flagged: list[tuple[str, Detection, list[str]]]) -> Table:
    return Table(
        name="personal_data_columns",
        title="Columns that look like personal data",
        columns=["Column", "Looks like", "Evidence", "Role", "Fed to the model"],
        rows=[[shown, found.label, found.evidence(), ", ".join(roles), "yes" if FED in roles else "no"]
              for shown, found, roles in flagged],
        caption="Judged by the column's name and by the share of its sampled non-empty values that match a "
                "pattern. Counts and shares only: no value from the data is shown.",
    )


def _judged(sample: Sample, n_rows: int) -> str:
    """How the columns were judged: ``by name and by the values of the first 20,000 of 1,000,000 rows``."""
    if sample.problem:
        return "by name only (the file could not be read again for its values)"
    if sample.rows < n_rows:
        return f"by name and by the values of the first {sample.rows:,} of {n_rows:,} rows"
    return f"by name and by the values of all {_plural(sample.rows, 'row')}"


def _summary(flagged: list, fed: list, n_columns: int, sample: Sample, n_rows: int) -> str:
    judged = _judged(sample, n_rows)
    if not flagged:
        return f"No column looks like personal data: {_plural(n_columns, 'column')} judged {judged}."
    kinds = list(dict.fromkeys(found.label for _, found, _ in flagged))
    if fed:
        reach = f"the model is fed {len(fed):,} of them: {_listed([shown for shown, _, _ in fed])}"
    else:
        reach = "the model is fed none of them"
    return (f"{len(flagged):,} of {_plural(n_columns, 'column')} look like personal data ({'; '.join(kinds)}), "
            f"judged {judged}; {reach}.")


def _metrics(flagged: list, fed: list, n_columns: int, sample: Sample) -> dict[str, Metric]:
    return {
        "flagged_columns": Metric(
            value=len(flagged), label="Columns that look like personal data", direction="lower", headline=True,
            description="Columns of the data file flagged by their name or sampled values (all columns, not "
                        "only the features)."),
        "flagged_fed_to_model": Metric(
            value=len(fed), label="Of them fed to the model", direction="lower", headline=True,
            description="Flagged columns that are among the model's features."),
        "columns_scanned": Metric(
            value=n_columns, label="Columns checked", direction="none",
            description="Every column of the data file, by name and by sampled values."),
        "rows_sampled": Metric(
            value=sample.rows, label="Rows sampled", direction="none",
            description="Rows read from the start of the data file to check the values (privacy.sample_rows)."),
    }


def _notes(ctx: AuditContext, sample: Sample, options: Mapping[str, Any], ignore: list[str],
           columns: list[str]) -> list[str]:
    from auditor_plugins.privacy.patterns import KINDS

    kinds = "; ".join(KINDS.values())
    share = float(options["min_share"])
    notes = [
        f"Every column of {Path(ctx.data.path).name} is judged {_judged(sample, ctx.data.n_rows)}. Names are "
        f"matched by whole words ('student_id', 'firstName', 'E-Mail'); values flag a column when at least "
        f"{share:.0%} of its non-empty sampled values match a pattern. Kinds looked for: {kinds}. Plain "
        "numbers are never flagged by value alone, and codes, usernames, names and free text must also be "
        "varied (many distinct values), so that categories are not mistaken for identifiers.",
        "A clean scan is not anonymity: columns that identify no one alone (age, sex, postcode, dates) can "
        "single people out together, and identifiers inside other values or past the sampled rows are not "
        "seen. This report shows column names, counts and shares only, never a value.",
    ]
    if sample.problem:
        notes.append(f"The values could not be sampled ({sample.problem} while reading the file again); columns "
                     "were judged by their names only.")
    if ignore:
        present = [_shown(name) for name in ignore if name in columns]
        absent = [_shown(name) for name in ignore if name not in columns]
        text = []
        if present:
            text.append(f"Not judged on request (privacy.ignore): {_listed(present)}.")
        if absent:
            text.append(f"privacy.ignore names {_plural(len(absent), 'column')} the data file does not have: "
                        f"{_listed(absent)}.")
        notes.append(" ".join(text))
    return notes


# --------------------------------------------------------------------------- reading the sample

def read_sample(path: Path, columns: list[str], limit: int, min_share: float = 0.5) -> Sample:
    """Scan the first ``limit`` rows of the data file (CSV, gzipped CSV or Parquet), streamed:
    CSV with every column read as text; Parquet numbers and booleans are numbers as stored."""
    import pyarrow as pa

    try:
        with path.open("rb") as handle:
            head = handle.read(4)
        if head == b"PAR1":
            return _parquet_sample(path, columns, limit, min_share)
        return _csv_sample(path, columns, limit, min_share, gzipped=head[:2] == b"\x1f\x8b")
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:  # a file the loader read, unreadable now
        # The error's type only: parsers quote the offending row, which must not reach the report.
        return Sample(rows=0, scans=[None] * len(columns), problem=type(exc).__name__)


def _csv_sample(path: Path, columns: list[str], limit: int, min_share: float, gzipped: bool) -> Sample:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in columns}, strings_can_be_null=True)
    with pa.OSFile(str(path)) as raw:
        source = pa.CompressedInputStream(raw, "gzip") if gzipped else raw
        reader = pacsv.open_csv(source, convert_options=convert)
        table = _first_rows(reader, reader.schema, limit)
    return _scan_table(table, columns, min_share)


def _parquet_sample(path: Path, columns: list[str], limit: int, min_share: float) -> Sample:
    import pyarrow.parquet as pq

    with pq.ParquetFile(str(path)) as handle:
        table = _first_rows(handle.iter_batches(batch_size=min(limit, PARQUET_BATCH)), handle.schema_arrow, limit)
    return _scan_table(table, columns, min_share)


def _first_rows(batches: Any, schema: Any, limit: int) -> Any:
    """The first ``limit`` rows of a stream of record batches, reading no further."""
    import pyarrow as pa

    kept, rows = [], 0
    for batch in batches:
        kept.append(batch)
        rows += batch.num_rows
        if rows >= limit:
            break
    return pa.Table.from_batches(kept, schema=schema).slice(0, limit)


def _scan_table(table: pa.Table, columns: list[str], min_share: float) -> Sample:
    """One scan per column of the file, matched by position (a repeated header name keeps
    both copies apart); a table whose header the reader parsed differently is matched by name."""
    by_position = table.num_columns == len(columns)
    scans: list[ValueScan | None] = []
    for position, name in enumerate(columns):
        if by_position:
            column = table.column(position)
        elif name in table.column_names:
            column = table.column(table.column_names.index(name))
        else:
            scans.append(None)
            continue
        scans.append(_scan_column(column, min_share))
    return Sample(rows=table.num_rows, scans=scans)


def _scan_column(column: pa.ChunkedArray, min_share: float) -> ValueScan | None:
    import pyarrow as pa

    from auditor_plugins.privacy.patterns import ValueScan, scan_values

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_decimal(kind):
        return ValueScan(values=len(column) - column.null_count, distinct=None, numeric=True)
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
    try:
        return scan_values(column, min_share)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # nested or binary: no text to match
        return None
