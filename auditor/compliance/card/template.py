"""The model card template ``audit card init`` writes: every field explained, none filled in."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from auditor.compliance.card.schema import FORMATS, SCHEMA, Field
from auditor.contract.errors import UsageError

_HEADER = (
    "Model card: what no model or data file can tell the ethics / research-integrity board.",
    "Fill it in, then pass it with:  audit model.pt --data test.csv --card {name}",
    "The compliance report shows every field below. A field marked REQUIRED that is left empty "
    "is listed in the report as a gap: nothing is ever filled in for you.",
    "{syntax}",
    "Keys and {tables} not listed here are kept, and shown under \"Additional information\".",
)

_SYNTAX = {
    "toml": 'Every value is text in quotes ("1.0", not 1.0); a list of text is ["first", '
            '"second"]. Long text may span lines between triple quotes: """...""".',
    "yaml": 'Every value is text: quote it when it could read as a number, a date or yes/no '
            '("1.0"), or holds ": ". A list of text is ["first", "second"] or one "- item" '
            'per line. Long text may span lines after "key: |".',
}


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width=88, initial_indent=indent + "# ",
                         subsequent_indent=indent + "# ", break_on_hyphens=False,
                         break_long_words=False)


def _field_lines(f: Field, fmt: str, indent: str, first: str = "") -> list[str]:
    required = "REQUIRED" if f.required else "optional"
    kind = "list of text" if f.kind == "list" else "text"
    example = json.dumps(list(f.example) if f.kind == "list" else f.example, ensure_ascii=False)
    empty = "[]" if f.kind == "list" else '""'
    assign = " = " if fmt == "toml" else ": "
    lines = _comment(f"{f.label} ({required}, {kind}). {f.help}", indent)
    lines.append(f"{indent}# Example: {f.key}{assign}{example}")  # one line, to copy whole
    lines.append(f"{first or indent}{f.key}{assign}{empty}")
    return lines


def template(fmt: str = "toml") -> str:
    """A commented template: every field explained, required ones marked, an example each,
    every value left empty (so that loading it lists every required field as a gap)."""
    if fmt not in ("toml", "yaml"):
        raise UsageError(f"Unknown model card format {fmt!r}.", hint="Choose toml or yaml.")
    words = {"name": default_path(fmt).name, "syntax": _SYNTAX[fmt],
             "tables": "tables" if fmt == "toml" else "mappings"}
    lines: list[str] = []
    for n, paragraph in enumerate(_HEADER):
        text = paragraph.format(**words)
        lines += (["#"] if n else []) + (_comment(text) if n != 1 else [f"# {text}"])
    for section in SCHEMA:
        lines += ["", f"# --- {section.title} " + "-" * max(3, 80 - len(section.title))]
        help = section.help
        if section.repeated:
            help += (f" Copy the [[{section.key}]] table for each further person." if fmt == "toml"
                     else " Copy the entry from '- name' down for each further person.")
        lines += _comment(help)
        if fmt == "toml":
            lines.append(f"[[{section.key}]]" if section.repeated else f"[{section.key}]")
            for f in section.fields:
                lines += ["", *_field_lines(f, fmt, "")]
        else:
            lines.append(f"{section.key}:")
            for n, f in enumerate(section.fields):
                indent = "    " if section.repeated else "  "
                first = "  - " if section.repeated and n == 0 else ""
                if n:
                    lines.append("")
                lines += _field_lines(f, fmt, indent, first)
    return "\n".join(lines) + "\n"


def default_path(fmt: str = "toml") -> Path:
    return Path(f"model-card.{fmt}")


def write_template(path: Path | str | None = None, fmt: str | None = None, *, force: bool = False) -> Path:
    """Write :func:`template` to ``path`` atomically (a temporary file, then a rename) and
    return the path. The format is ``fmt``, else the extension's; ``path`` defaults to
    model-card.toml (model-card.yaml for yaml). An existing file is kept unless ``force``."""
    if path is None:
        path = default_path(fmt or "toml")
    path = Path(path)
    from_suffix = FORMATS.get(path.suffix.lower())
    if from_suffix is None:
        raise UsageError(
            f"The model card path {str(path)!r} must end in .toml, .yaml or .yml "
            "(the card's format is read from its extension).",
            hint=f"For example: audit card init model-card.{fmt or 'toml'}",
        )
    if fmt is not None and fmt != from_suffix:
        raise UsageError(
            f"--format {fmt} does not match the extension of {str(path)!r} ({from_suffix}).",
            hint=f"Name the file model-card.{fmt}, or leave --format out.",
        )
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a folder; give the model card file's path.")
    if path.exists() and not force:
        raise UsageError(
            f"{str(path)!r} already exists; not overwriting it.",
            hint="Pass --force to replace it with an empty template, or give another PATH.",
        )
    text = template(from_suffix)
    from auditor.report.write import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"Cannot write the model card {str(path)!r}: {exc.strerror or exc}.") from None
    return path
