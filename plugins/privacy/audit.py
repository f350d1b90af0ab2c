"""The built-in "privacy" audit: columns of the data files that look like personal data.

Every file the run reads as data is scanned: the audit data (``ctx.data``, ``--data``) and,
when the run has it, the training data (``ctx.train.data``, ``--train-data``). Every column
of each file (not only the model's features) is judged by its name and by the values of a
deterministic sample, the file's first ``sample_rows`` rows, read by the loader's own reader
(:func:`auditor.loading.sample_rows.read_table`: the same format, delimiter, encoding and gzip
detection as the run's data, CSV columns as text);
:mod:`auditor_plugins.privacy.patterns` says what looks like personal data. Each flagged
column gets its role in this run: fed to the model, the target, a sensitive attribute, a
column an audit option names, or not used.

For an image folder the columns are the file names and the labels table's columns, and the
images' own metadata (EXIF, text chunks) are counted by the kinds of personal data they hold
(:mod:`auditor_plugins.privacy.image_metadata`), never shown.

The verdict warns when the model is fed a column that looks like an identifier; columns it
does not see are an info finding per file (the file itself holds personal data). The result
holds file and column names, kinds, counts and shares only: never a row or a value. A file
the loader cannot read is judged by its column names only, and the report says so (it is
never reported as scanned). The model is never called, and nothing depends on the clock or
on chance.

Memory and time: only the sample is read (streamed, the rest of the file is never parsed),
one file at a time, and dropped once its columns are scanned; the run's loader reads only
the columns the model needs, as numbers, so keeping every column's text from that read would
cost the whole file's text in memory for a 20,000-row scan.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import AuditResult, Finding, Metric, Table
from auditor.contract.vocabulary import HEADLINE_TOLERANCE

if TYPE_CHECKING:
    import pyarrow as pa

    from auditor.contract.context import AuditContext, Dataset
    from auditor_plugins.privacy.patterns import Detection, ValueScan

# auditor_plugins.privacy.patterns (pyarrow and its compute kernels) is imported when the audit runs, not when
# the audits are discovered: listing them stays fast.

#: Columns named in one finding or sentence before "and N more".
MAX_LISTED = 12

FED = "fed to the model"
#: What each file is to the run, for the report: (the words for it, the option that names it).
ROLES = {"data": ("audit data", "--data"), "train": ("training data", "--train-data"),
         "labels": ("labels table", "--labels")}


def _shown(column: str) -> str:
    """A column name for a sentence or a cell: quoted, control characters (a newline in a
    header) written as escapes so that a name cannot break a line or a table row."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in column)
    return f"'{text}'"


def _listed(items: Sequence[str]) -> str:
    """``a, b and c``, or the first :data:`MAX_LISTED` and how many more."""
    from auditor.report.numbers import join_words

    return join_words(items, limit=MAX_LISTED)


def _a(label: str) -> str:
    """``a phone number``, ``an e-mail address``, ``an IP address``."""
    return f"{'an' if label[0] in 'aeiouAEIOU' or label.startswith('IP') else 'a'} {label}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


@dataclass(frozen=True)
class Sample:
    """The first rows of a data file: one scan per column (None: not scanned), in file order;
    ``layout`` says how the file was read, ``problem`` why it could not be (then no scans)."""

    rows: int
    scans: list[ValueScan | None]
    problem: str = ""
    layout: str = ""


@dataclass(frozen=True)
class Flag:
    """One flagged column of one file."""

    file: str
    shown: str
    found: Detection
    roles: list[str]


@dataclass(frozen=True)
class Scanned:
    """One data file of the run and what its scan found."""

    role: str  # a key of ROLES
    data: Dataset
    sample: Sample
    flags: list[Flag] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.data.path).name


class PrivacyAudit(Audit):
    """Columns of the data files that look like personal identifiers, and which reach the model."""

    name = "privacy"
    title = "Privacy"
    description = (
        "Columns of the data files (--data and --train-data) that look like personal data (names, e-mails, "
        "phone numbers, national, student or user IDs, addresses, dates of birth, IP addresses, free text), by "
        "name and sampled values, and whether the model is fed them."
    )
    needs = ()
    # It reads the files themselves (names, and values from their first rows), never the
    # per-row predictions: a run that keeps tallies gives it nothing it lacks.
    reads_tallies = True
    options = (
        Option("sample_rows", "int", 20_000, "Rows read from the start of each data file to check values "
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
        self.check(options)
        ignore = [name.strip() for name in str(options["ignore"]).split(",") if name.strip()]
        data = ctx.data if ctx.tallies is None else replace(ctx.data, n_rows=ctx.tallies.rows)  # the file's rows
        files = [("data", data)] + ([("train", ctx.train.data)] if ctx.train is not None else [])
        files += [("labels", table) for table in [_labels_table(ctx.data)] if table is not None]
        scanned = [_scan_file(ctx, role, data, ignore, options) for role, data in files]
        flagged = [flag for item in scanned for flag in item.flags]
        fed = _by_column([flag for flag in flagged if FED in flag.roles])
        findings = [_fed_finding(flags) for flags in fed.values()]
        findings += [_unseen_finding(item, unseen) for item in scanned
                     if (unseen := [flag for flag in item.flags if FED not in flag.roles])]
        columns = _all_columns(scanned)
        tables = ([_table(flagged)] if flagged else []) + [_files_table(scanned)]
        images = [(item, *_image_metadata(item, int(options["sample_rows"]))) for item in scanned
                  if _image_folder(Path(item.data.path))]
        findings += [_metadata_finding(item, counts, seen) for item, counts, seen in images if counts]
        metrics = _metrics(scanned, len(_by_column(flagged)), len(fed))
        if images:
            metrics["images_with_personal_metadata"] = Metric(
                value=sum(max(counts.values(), default=0) for _, counts, _ in images), direction="lower",
                label="Images whose metadata hold personal data (most of one kind)",
                description="EXIF GPS positions, camera and lens serial numbers, owner, artist and author names, "
                            "free-text comments, counted over the images scanned; never their values.")
        summary = _summary(scanned, _by_column(flagged), fed, len(columns))
        summary += "".join(f" {_metadata_sentence(item, counts, seen)}" for item, counts, seen in images)
        return AuditResult(
            audit=self.name,
            title=self.title,
            status="warn" if fed else "pass",
            summary=summary,
            metrics=metrics,
            findings=findings,
            tables=tables,
            notes=_notes(scanned, options, ignore, columns),
            options=dict(options),
        )


def _image_folder(path: Path) -> bool:
    from auditor.loading.sources import source_kind

    return path.is_dir() and source_kind(path) == "images"


def _labels_table(data: Dataset) -> Dataset | None:
    """An image folder's labels table (--labels) as a data file of its own: its columns are
    judged like any data file's, with their roles in the run (target, sensitive...)."""
    if not data.labels:
        return None
    from dataclasses import replace

    from auditor.loading.layout import csv_layout, format_of, parquet_columns

    path = Path(data.labels)
    try:
        fmt = format_of(path)
        columns = parquet_columns(path) if fmt == "parquet" else csv_layout(path, fmt).columns
    except Exception:  # noqa: BLE001 - the run read it; if it cannot be read now it is judged by the run's names
        columns = [c for c in data.columns if c != "file"]
    return replace(data, path=str(path), columns=list(columns), feature_names=[], labels=None)


def _scan_file(ctx: AuditContext, role: str, data: Dataset, ignore: list[str],
               options: Mapping[str, Any]) -> Scanned:
    """Read one file's sample, judge its every column, and drop the sample (only the scans stay)."""
    from auditor_plugins.privacy.patterns import judge

    columns = list(data.columns)
    if _image_folder(Path(data.path)):  # its file names (and class folders); --labels is its own file
        from dataclasses import replace

        from auditor.loading.sources import open_source

        columns = list(open_source(Path(data.path), "images", names_only=True).columns)
        data = replace(data, columns=columns)
    sample = read_sample(Path(data.path), columns, int(options["sample_rows"]), float(options["min_share"]))
    repeated = {name for name, count in Counter(columns).items() if count > 1}
    item = Scanned(role=role, data=data, sample=sample)
    for position, column in enumerate(columns):
        if column in ignore:
            continue
        found = judge(column, sample.scans[position])
        if found is None:
            continue
        shown = _shown(column) + (f" (column {position + 1})" if column in repeated else "")
        item.flags.append(Flag(item.name, shown, found, _roles(ctx, data, column)))
    return item


def _image_metadata(item: Scanned, limit: int) -> tuple[Counter[str], int]:
    """The kinds of personal metadata in the first ``limit`` images of an image folder."""
    from auditor.loading.sources import open_source
    from auditor_plugins.privacy.image_metadata import scan

    try:
        files = open_source(Path(item.data.path), "images", names_only=True).files()[:limit]
    except Exception:  # noqa: BLE001 - the run read the folder; a listing that fails now scans nothing
        return Counter(), 0
    return scan(files)


def _kinds(counts: Counter[str]) -> str:
    """``10 with a GPS position, 5 with a camera serial number``: most common first, then by name."""
    return _listed([f"{n:,} with {_a(kind)}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))])


def _metadata_sentence(item: Scanned, counts: Counter[str], seen: int) -> str:
    if not counts:
        return f"The metadata of {_plural(seen, 'image')} of {item.name} hold no personal data (EXIF, text chunks)."
    return (f"The metadata of {item.name}'s images hold personal data: of {_plural(seen, 'image')} scanned, "
            f"{_kinds(counts)}.")


def _metadata_finding(item: Scanned, counts: Counter[str], seen: int) -> Finding:
    words, option = ROLES[item.role]
    return Finding(
        "info", "personal-image-metadata",
        f"The {words} images in {item.name} ({option}) carry personal data in their metadata, which the model "
        f"does not see: of {_plural(seen, 'image')} scanned, {_kinds(counts)} (counts of images; no value is "
        "shown). Strip the metadata before sharing the images (e.g. exiftool -all= or Pillow without exif=).",
    )


def _by_column(flags: list[Flag]) -> dict[str, list[Flag]]:
    """Flags grouped by column (as shown), in the order the columns were first flagged."""
    grouped: dict[str, list[Flag]] = {}
    for flag in flags:
        grouped.setdefault(flag.shown, []).append(flag)
    return grouped


def _all_columns(scanned: list[Scanned]) -> list[str]:
    """Every column judged: the first file's, then the names later files add (a name in
    several files counts once; a name a file repeats counts as often as that file has it)."""
    columns = list(scanned[0].data.columns)
    for item in scanned[1:]:
        columns += [name for name in item.data.columns if name not in set(scanned[0].data.columns)]
    return columns


def _roles(ctx: AuditContext, data: Dataset, column: str) -> list[str]:
    roles = []
    if column in data.feature_names or column == data.text:
        roles.append(FED)
    if data.target_name is not None and column == data.target_name:
        roles.append("target")
    if column in ctx.sensitive:
        roles.append("sensitive attribute")
    if column in data.named:
        roles.append("named by an audit option")
    return roles or ["not used"]


def _fed_finding(flags: list[Flag]) -> Finding:
    shown, found = flags[0].shown, flags[0].found
    how = "by its name and values" if found.by_name and found.by_values else (
        "by its values" if found.by_values else "by its name")
    files = _listed(list(dict.fromkeys(flag.file for flag in flags)))
    return Finding(
        "warning", "identifier-fed-to-model",
        f"The model is fed {shown} (a column of {files}), which looks like {_a(found.label)} ({how}). An "
        "identifier lets a model single people out and memorise them, and carries no general signal. Drop it "
        "from the model's features and retrain; if the model does not need it, leave it out of the audit's "
        "--features.",
    )


def _unseen_finding(item: Scanned, unseen: list[Flag]) -> Finding:
    described = [f"{flag.shown} ({flag.found.label}; {', '.join(flag.roles)})" for flag in unseen]
    words, option = ROLES[item.role]
    return Finding(
        "info", "identifier-in-data",
        f"The {words} file {item.name} ({option}) holds {_plural(len(unseen), 'column')} that look like "
        f"personal data but that the model is not fed: {_listed(described)}. The file itself is personal data: "
        "minimise it (drop the columns the audit does not need) or pseudonymise those columns (replace "
        "identifiers with keys) before sharing it.",
    )


def _table(flagged: list[Flag]) -> Table:
    return Table(
        name="personal_data_columns",
        title="Columns that look like personal data",
        columns=["Column", "Looks like", "Evidence", "Role", "Fed to the model", "File"],
        rows=[[flag.shown, flag.found.label, flag.found.evidence(), ", ".join(flag.roles),
               "yes" if FED in flag.roles else "no", flag.file] for flag in flagged],
        caption="Judged by the column's name and by the share of its sampled non-empty values that match a "
                "pattern, file by file. Counts and shares only: no value from the data is shown.",
    )


def _files_table(scanned: list[Scanned]) -> Table:
    rows = []
    for item in scanned:
        words, option = ROLES[item.role]
        sample = item.sample
        read_as = f"not read: {sample.problem}" if sample.problem else sample.layout
        values = sum(scan is not None for scan in sample.scans)
        rows.append([item.name, f"{words} ({option})", read_as, len(item.data.columns), values, sample.rows,
                     item.data.n_rows])
    return Table(
        name="scanned_files",
        title="Data files scanned",
        columns=["File", "Role", "Read as", "Columns judged by name", "Columns judged by values", "Rows scanned",
                 "Rows in the file"],
        rows=rows,
        caption="Each file is read as the run's loader reads it (format, delimiter and encoding detected the "
                "same way); its first rows are scanned, up to privacy.sample_rows. A file that could not be "
                "read has its columns judged by name only, and 0 rows scanned.",
    )


def _rows(sample: Sample, n_rows: int) -> str:
    """``the first 20,000 of 1,000,000 rows`` or ``all 400 rows``."""
    if sample.rows < n_rows:
        return f"the first {sample.rows:,} of {n_rows:,} rows"
    return f"all {_plural(sample.rows, 'row')}"


def _judged(sample: Sample, n_rows: int) -> str:
    """How one file's columns were judged: ``by name and by the values of all 400 rows``."""
    if sample.problem:
        return "by name only (the file could not be read again for its values)"
    return f"by name and by the values of {_rows(sample, n_rows)}{_unvalued(sample)}"


def _unvalued(sample: Sample) -> str:
    """What the sentence must add when some columns had no values to scan (nested or binary
    Parquet columns): the summary then does not claim their values were judged."""
    missing = sum(scan is None for scan in sample.scans)
    return f" (all but {_plural(missing, 'column')}, whose values hold no text to scan)" if missing else ""


def _judged_all(scanned: list[Scanned]) -> str:
    """How the columns of every file were judged: one file's words, or each file's, named
    (``by name and by the values of all 15,060 rows of test.csv.gz and the first 20,000 of
    25,638 rows of train.csv.gz``)."""
    if len(scanned) == 1:
        return _judged(scanned[0].sample, scanned[0].data.n_rows)
    read = [f"{_rows(item.sample, item.data.n_rows)} of {item.name}{_unvalued(item.sample)}"
            for item in scanned if not item.sample.problem]
    unread = [item.name for item in scanned if item.sample.problem]
    parts = [f"by name and by the values of {_listed(read)}"] if read else []
    if unread:
        parts.append(f"by name only in {_listed(unread)} (not readable for its values)")
    return ", and ".join(parts)


def _summary(scanned: list[Scanned], flagged: dict[str, list[Flag]], fed: dict[str, list[Flag]],
             n_columns: int) -> str:
    judged = _judged_all(scanned)
    if not flagged:
        return f"No column looks like personal data: {_plural(n_columns, 'column')} judged {judged}."
    kinds = list(dict.fromkeys(flags[0].found.label for flags in flagged.values()))
    if fed:
        reach = f"the model is fed {len(fed):,} of them: {_listed(list(fed))}"
    else:
        reach = "the model is fed none of them"
    return (f"{len(flagged):,} of {_plural(n_columns, 'column')} look like personal data ({'; '.join(kinds)}), "
            f"judged {judged}; {reach}.")


def _metrics(scanned: list[Scanned], flagged: int, fed: int) -> dict[str, Metric]:
    """The flagged counts over every file (a column flagged in both counts once); what was
    scanned, per file: ``columns_scanned`` and ``rows_sampled`` for --data, ``train_...``
    for --train-data when the run has it (the table ``scanned_files`` holds the same)."""
    metrics = {
        "flagged_columns": Metric(
            value=flagged, label="Columns that look like personal data", direction="lower", headline=True,
            tolerance=HEADLINE_TOLERANCE,
            description="Columns of the data files (--data, and --train-data when given) flagged by their name "
                        "or sampled values (all columns, not only the features; flagged in both files: once)."),
        "flagged_fed_to_model": Metric(
            value=fed, label="Of them fed to the model", direction="lower", headline=True,
            tolerance=HEADLINE_TOLERANCE,
            description="Flagged columns that are among the model's features."),
    }
    for item in scanned:
        prefix, words = ("", "the data file") if item.role == "data" else (f"{item.role}_", "the training data file")
        metrics[f"{prefix}columns_scanned"] = Metric(
            value=len(item.data.columns), label="Columns checked" + (" (training data)" if prefix else ""),
            direction="none", description=f"Every column of {words}, by name and by sampled values.")
        metrics[f"{prefix}rows_sampled"] = Metric(
            value=item.sample.rows, label="Rows sampled" + (" (training data)" if prefix else ""),
            direction="none",
            description=f"Rows read from the start of {words} to check the values (privacy.sample_rows).")
    return metrics


def _notes(scanned: list[Scanned], options: Mapping[str, Any], ignore: list[str], columns: list[str]) -> list[str]:
    from auditor_plugins.privacy.patterns import KINDS

    kinds = "; ".join(KINDS.values())
    share = float(options["min_share"])
    first = scanned[0]
    notes = [
        f"Every column of {first.name} is judged {_judged(first.sample, first.data.n_rows)}. Names are "
        f"matched by whole words ('student_id', 'firstName', 'E-Mail'); values flag a column when at least "
        f"{share:.0%} of its non-empty sampled values match a pattern. Kinds looked for: {kinds}. Plain "
        "numbers are never flagged by value alone, and codes, usernames, names and free text must also be "
        "varied (many distinct values), so that categories are not mistaken for identifiers.",
        "A clean scan is not anonymity: columns that identify no one alone (age, sex, postcode, dates) can "
        "single people out together, and identifiers inside other values or past the sampled rows are not "
        "seen. This report shows column names, counts and shares only, never a value.",
    ]
    for item in scanned[1:]:
        words, option = ROLES[item.role]
        notes.append(f"Every column of {item.name}, the {words} ({option}), is judged the same way, "
                     f"{_judged(item.sample, item.data.n_rows)}.")
    for item in scanned:
        if item.sample.problem:
            notes.append(f"The values of {item.name} could not be sampled ({item.sample.problem}); its columns "
                         "were judged by their names only.")
    if ignore:
        present = [_shown(name) for name in ignore if name in columns]
        absent = [_shown(name) for name in ignore if name not in columns]
        text = []
        if present:
            text.append(f"Not judged on request (privacy.ignore): {_listed(present)}.")
        if absent:
            files = "the data file does not" if len(scanned) == 1 else "no data file"
            text.append(f"privacy.ignore names {_plural(len(absent), 'column')} {files} "
                        f"{'have' if len(scanned) == 1 else 'has'}: {_listed(absent)}.")
        notes.append(" ".join(text))
    return notes


# --------------------------------------------------------------------------- reading the sample

def read_sample(path: Path, columns: list[str], limit: int, min_share: float = 0.5) -> Sample:
    """Scan the first ``limit`` rows of a data file, read as the loader reads it
    (:func:`auditor.loading.sample_rows.read_table`: CSV of any delimiter and encoding the loader
    accepts, gzipped CSV or Parquet): CSV columns as text, Parquet numbers and booleans as
    numbers as stored. A file the loader refuses is not scanned: ``problem`` says why (the
    loader's one-line message, which never quotes a row), every scan is None."""
    from auditor.contract.errors import DataError
    from auditor.loading.sample_rows import read_table

    try:
        read = read_table(path, rows=limit)
    except DataError as exc:
        return Sample(rows=0, scans=[None] * len(columns), problem=exc.message.rstrip("."))
    return _scan_table(read.table, columns, min_share, read.layout)


def _scan_table(table: pa.Table, columns: list[str], min_share: float, layout: str = "") -> Sample:
    """One scan per column of the file, matched by position (a repeated header name keeps
    both copies apart); a table whose header differs from ``columns`` is matched by name."""
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
        scans.append(_scan_column(column, min_share, csv=layout != "Parquet"))
    if layout != "Parquet":
        import pyarrow as pa

        latin1 = sum(pa.types.is_binary(kind) or pa.types.is_large_binary(kind) for kind in table.schema.types)
        if latin1:
            layout += f"; {_plural(latin1, 'column')} not UTF-8, scanned as Latin-1"
    return Sample(rows=table.num_rows, scans=scans, layout=layout)


def _scan_column(column: pa.ChunkedArray, min_share: float, csv: bool = True) -> ValueScan | None:
    """The scan of one column; in a CSV file, bytes that are not UTF-8 are text all the same
    (in Parquet, bytes are bytes: not scanned)."""
    import pyarrow as pa

    from auditor_plugins.privacy.patterns import ValueScan, scan_values

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_decimal(kind):
        return ValueScan(values=len(column) - column.null_count, distinct=None, numeric=True)
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if csv and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        column = _latin1(column)
    try:
        return scan_values(column, min_share)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # nested or binary: no text to match
        return None


def _latin1(column: pa.ChunkedArray) -> pa.Array:
    """Bytes that are not UTF-8 (a CSV column in Latin-1 or Windows-1252, which the loader
    refuses only where it reads text), decoded as Latin-1 for the scan: every byte is a
    character, so an e-mail or a phone number matches whatever the code page; the values
    are only matched, never shown."""
    import pyarrow as pa

    return pa.array([None if value is None else value.decode("latin-1") for value in column.to_pylist()],
                    type=pa.string())
