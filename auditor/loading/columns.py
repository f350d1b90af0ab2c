"""Which columns of a data file a run reads, and as what: :func:`plan_read`.

The target (``--target``, the model's metadata, else a column named target, label, y or
class), the sensitive columns, the columns audit options name, and the features (``--features``,
the model's ``feature_names``, else every other column), each checked against the file's
header and, for Parquet, its schema, before a row is read. :mod:`auditor.loading.data` reads
the plan in one go; :mod:`auditor.run.stream` in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa

from auditor.contract.errors import DataError, UsageError
from auditor.loading.layout import CsvLayout, csv_layout, format_of, parquet_columns, read_names

TARGET_NAMES = ("target", "label", "y", "class")


def _check_flat(path: Path, roles: Mapping[str, str]) -> None:
    """A Parquet column the audit reads as labels or groups (``roles``: column -> what it is
    for) must be flat: numbers, text, true/false or dates, not a struct, list or map."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"The Parquet file {path.name} cannot be read: {exc}.") from None
    for name, role in roles.items():
        if name not in schema.names:
            continue
        kind = schema.field(name).type
        value = kind.value_type if pa.types.is_dictionary(kind) else kind
        if pa.types.is_nested(value):
            raise DataError(
                f"The column {name!r} in {path.name} ({role}) holds nested values ({str(kind)[:80]}); "
                "auditor reads flat columns of numbers or text.",
                hint="Flatten it into plain columns (one per field) before auditing, or name another column.",
            )


def _copies(columns: list[str], used: Sequence[str]) -> dict[str, list[str]]:
    """For each used column whose name the header repeats, the read names of its other copies."""
    names = read_names(columns)
    copies: dict[str, list[str]] = {}
    for header, read_as in zip(columns, names):
        if header in used and read_as != header:
            copies.setdefault(header, []).append(read_as)
    return copies


def listing(columns: Sequence[str], limit: int = 20) -> str:
    """Column names for a message: all of them, or the first and last few (targets are often last)."""
    if len(columns) <= limit:
        return ", ".join(repr(c) for c in columns)
    head, tail = columns[: limit - 5], columns[-5:]
    return (", ".join(repr(c) for c in head) + ", ..., " + ", ".join(repr(c) for c in tail)
            + f" ({len(columns)} in all)")


def resolve_target(path: Path, columns: list[str], target: str | None, metadata: dict[str, Any]) -> str:
    if target is not None:
        if target not in columns:
            raise DataError(
                f"The target column {target!r} is not in {path.name}.",
                hint=f"Columns: {listing(columns)}. Name one with --target.",
            )
        return target
    declared = metadata.get("target")
    if isinstance(declared, str) and declared in columns:
        return declared
    lowered = {c.lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"No target column found in {path.name}: none is named {', '.join(TARGET_NAMES)}.",
        hint=f"Columns: {listing(columns)}. Name the target with --target COL.",
    )


def resolve_sensitive(
    path: Path, columns: list[str], requested: Sequence[str] | None, metadata: dict[str, Any]
) -> list[str]:
    """The sensitive columns: those asked for (each must exist), else those the model's
    metadata declares that the file has."""
    if requested:
        missing = [name for name in requested if name not in columns]
        if missing:
            raise DataError(
                f"The sensitive column(s) {listing(missing, 8)} are not in {path.name}.",
                hint=f"Columns: {listing(columns)}. Fix --sensitive (or [tool.auditor] sensitive).",
            )
        return list(dict.fromkeys(requested))
    declared = metadata.get("sensitive") or []
    return [str(name) for name in declared if str(name) in columns]


def resolve_features(
    path: Path,
    columns: list[str],
    features: Sequence[str] | None,
    metadata: dict[str, Any],
    exclude: Sequence[str],
) -> list[str]:
    declared = metadata.get("feature_names")
    if features:
        wanted = list(features)
        if declared and list(declared) != wanted:
            raise UsageError(
                f"--features ({len(wanted)} columns) differs from the feature_names the model "
                f"declares ({len(declared)} columns, starting {listing(declared, 5)}).",
                hint="Leave out --features to use the model's own list, or fix the model's metadata.",
            )
        source = "--features"
    elif declared:
        wanted = [str(name) for name in declared]
        source = "the model's feature_names"
    else:
        wanted = list(dict.fromkeys(c for c in columns if c not in exclude))  # a repeated name once
        source = None
        unnamed = [i for i, c in enumerate(columns) if not c.strip() and c in wanted]
        if unnamed:
            raise DataError(
                f"Column {unnamed[0] + 1} of {path.name} has no name, and every column but the target "
                "would be fed to the model.",
                hint="Name it or drop it (a pandas index saved with to_csv(index=True) looks like this), "
                "or list the model's inputs with --features.",
            )
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"{len(missing)} feature column(s) from {source} are missing from {path.name}: "
            f"{listing(missing, 8)}.",
            hint=f"Columns in the file: {listing(columns)}.",
        )
    if not wanted:
        raise DataError(f"{path.name} has no feature columns besides the target.")
    return wanted


def _source_plan(path: Path, source: Any, target: str | None, features: Sequence[str] | None,
                 metadata: dict[str, Any], sensitive: Sequence[str] | None, named: dict[str, str]) -> ReadPlan:
    names = source.feature_names()
    if features and len(features) > 1 and list(features) != names:
        shape = "x".join(str(s) for s in source.input_shape)
        raise DataError(f"The examples in {path.name} are of shape {shape} ({len(names):,} values), which is not "
                        f"the shape of the audit data's ({len(features):,} values).",
                        hint="Give training data of the same shape as the audit data.")
    columns = list(source.columns)
    sensitive = resolve_sensitive(path, columns, sensitive, metadata)
    target_name = resolve_target(path, columns, target, metadata)
    for name, option in named.items():
        if name not in columns:
            raise DataError(f"The column {name!r} named by {option} is not beside the inputs in {path.name}.",
                            hint=f"Columns: {listing(columns)}. Fix -o {option}=COLUMN.")
    every = list(getattr(source, "file_columns", None) or columns)  # a table's text column too, in file order
    return ReadPlan(path, source.kind, None, every, names, target_name, list(sensitive), named, {}, source=source)


@dataclass
class ReadPlan:
    """Which columns of a data file a run reads, and as what: resolved and checked against
    the file's header (and Parquet schema) before a row is read."""

    path: Path
    fmt: str
    layout: CsvLayout | None
    columns: list[str]
    feature_names: list[str]
    target_name: str
    sensitive: list[str]
    named: dict[str, str]
    copies: dict[str, list[str]]
    source: Any = None  # an ArraySource (auditor.loading.sources) for data that are not a table

    @property
    def keep(self) -> list[str]:
        """The columns kept whole besides the features: target, sensitive, named (in that order)."""
        return [self.target_name, *self.sensitive, *self.named]

    @property
    def others(self) -> list[str]:
        """The kept columns that are not also features."""
        return [c for c in dict.fromkeys(self.keep) if c not in self.feature_names]

    @property
    def float_columns(self) -> list[str]:
        """The columns parsed straight to float32: the features and their repeated copies."""
        return self.feature_names + [c for name in self.feature_names for c in self.copies.get(name, [])]

    @property
    def wanted(self) -> list[str]:
        """Every column read, each once: features, kept columns, repeated copies."""
        return list(dict.fromkeys(self.feature_names + self.keep
                                  + [c for others in self.copies.values() for c in others]))


def plan_read(
    path: Path,
    *,
    target: str | None,
    features: Sequence[str] | None,
    metadata: dict[str, Any],
    sensitive: Sequence[str] | None = None,
    named: Mapping[str, str] | None = None,
    labels: Path | None = None,
    image: Any = None,
    allow_symlinks: bool = False,
    skip_unreadable: bool = False,
    text: Any = None,
) -> ReadPlan:
    """Resolve the target, sensitive, named and feature columns of ``path`` (see the module's
    docstring); a column asked for that the file lacks is a ``DataError`` here. Data that are
    not a table (an image folder, ``.npz``, a dict of tensors: :mod:`auditor.loading.sources`)
    are opened as a source, whose columns are those beside the inputs (``labels``: a table of
    them for an image folder; ``image``: how images become tensors)."""
    named = dict(named or {})
    from auditor.loading.sources import open_source, source_kind, spec_from

    if text is not None:  # a text column of a table, as token ids (auditor.loading.sources.text)
        from auditor.loading.sources.text import TextTable

        return _source_plan(path, TextTable.open(path, text), target, features, metadata, sensitive, named)
    kind = source_kind(path)
    if kind is not None:
        chosen = list(features) if features and len(features) == 1 else None
        source = open_source(path, kind, labels=labels, features=chosen,
                             image=image if image is not None else spec_from(metadata),
                             allow_symlinks=allow_symlinks, skip_unreadable=skip_unreadable)
        return _source_plan(path, source, target, features, metadata, sensitive, named)
    if labels is not None:
        raise UsageError(f"--labels goes with a folder of images; {path.name} is a table: put the labels in it.")
    fmt = format_of(path)
    layout = csv_layout(path, fmt) if fmt != "parquet" else None
    columns = parquet_columns(path) if layout is None else layout.columns
    sensitive = resolve_sensitive(path, columns, sensitive, metadata)
    target_name = resolve_target(path, columns, target, metadata)
    for name, option in named.items():
        if name not in columns:
            raise DataError(
                f"The column {name!r} named by {option} is not in {path.name}.",
                hint=f"Columns: {listing(columns)}. Fix -o {option}=COLUMN.",
            )
    feature_names = resolve_features(
        path, columns, features, metadata, exclude=[target_name, *sensitive, *named]
    )
    if fmt == "parquet":
        _check_flat(path, {**{name: f"named by {option}" for name, option in named.items()},
                           **{name: "a sensitive column" for name in sensitive}, target_name: "the target"})
    copies = _copies(columns, [*feature_names, target_name, *sensitive, *named])
    if target_name in feature_names:
        raise UsageError(f"The target column {target_name!r} is also listed as a feature.")
    return ReadPlan(path, fmt, layout, columns, feature_names, target_name, list(sensitive), named, copies)
