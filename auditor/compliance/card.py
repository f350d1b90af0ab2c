"""The model card: what no model or data file can tell an ethics / research-integrity board.

Who owns the model, what it is for and must not be used for, where its training data came
from and on what consent or legal basis, its ethical risks and who reviewed it. A researcher
writes it (``audit card init`` writes a commented template) as TOML or YAML and passes it
with ``audit MODEL --data DATA --card model-card.toml``; the compliance report shows it.

Nothing is ever made up: a required field that is missing or empty is listed as a *gap*,
never filled in. Keys the schema does not know are kept, under "Additional information".
Wrong types (a number where text is expected, a table where a list is expected) and files
that do not parse are :class:`~auditor.contract.errors.UsageError` naming the field or the line. A
card holds at most 16 MiB (less with a small memory budget), nests at most
:data:`~auditor.loading.inputs.MAX_DEPTH` deep and uses no YAML aliases (``*name``: a few
nested ones make billions of fields); a FIFO or a device is refused, never waited on.

Values are text or lists of text. A date written unquoted (TOML ``2024-05-01``, YAML
``2024-05-01``) is read as that text; a single string where a list is expected is a
one-item list; surrounding whitespace is stripped and empty strings count as missing.

:func:`card_section` returns the report's ``card`` section, plain JSON, the same for the same
file, and the same for the same card written in TOML or YAML (but ``format`` and ``sha256``)::

    {
      "source": str,             # the card's file name, without directories
      "sha256": str,             # hex SHA-256 of the file's bytes
      "format": "toml" | "yaml",
      "sections": [              # every schema section, in SCHEMA order, even when absent
        {                        # from the file; "additional" last, only when the file has
          "key":   str,          # keys the schema does not know
          "title": str,          # "Model", "Owners", ..., "Additional information"
          "fields": [
            {
              "key":      str,   # "name"; in "owners": "1.name", "1.contact", "2.name"...
                                 # (at least one owner, all None when none is given);
                                 # in "additional": the key's dotted path as written,
                                 # e.g. "funding" or "model.framework" or "owners.1.orcid"
              "label":    str,   # "Name"; "Owner 1: Name"; in "additional": = key
              "value":    str | [str] | None,   # None: missing or empty
              "required": bool,
            }
          ]
        }
      ],
      "gaps": [                  # required fields whose value is None, in section order
        {"section": str, "field": str, "label": str}    # keys and label as in "sections"
      ]
    }
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from auditor.contract.errors import UsageError
from auditor.loading.inputs import check_depth, read_bytes, small_limit, too_deep

__all__ = [
    "ADDITIONAL",
    "FORMATS",
    "SCHEMA",
    "Card",
    "Field",
    "Section",
    "card_section",
    "default_path",
    "load_card",
    "template",
    "write_template",
]

#: The value of one field: text, a list of text, or None when missing or empty.
Value = Union[str, list[str], None]

#: Card formats, by file extension.
FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}

#: The section that holds the keys the schema does not know.
ADDITIONAL = ("additional", "Additional information")

_INIT_HINT = "Run `audit card init` to write a commented template to start from."


@dataclass(frozen=True)
class Field:
    """One field of a section: ``kind`` is "text" or "list" (a list of text)."""

    key: str
    label: str
    help: str
    example: str | tuple[str, ...]
    required: bool = False
    kind: str = "text"


@dataclass(frozen=True)
class Section:
    """A section of the card; ``person`` names one entry when it is a list of people."""

    key: str
    title: str
    help: str
    fields: tuple[Field, ...]
    person: str | None = None

    @property
    def repeated(self) -> bool:
        return self.person is not None


def _f(key: str, label: str, help: str, example: Any, *, required: bool = False, kind: str = "text") -> Field:
    return Field(key, label, help, tuple(example) if isinstance(example, list) else example, required, kind)


#: The card's sections, in the order the report shows them.
SCHEMA: tuple[Section, ...] = (
    Section("model", "Model", "Which model this card describes.", (
        _f("name", "Name", "The model's name, as the paper, protocol or repository calls it.",
           "adult-income-mlp", required=True),
        _f("version", "Version",
           "The version of this exact model file: a release number, tag or commit. Write it in "
           "quotes, so that 1.10 stays 1.10.", "1.2.0", required=True),
        _f("description", "Description",
           "What the model does, in a sentence or two: its input, its output and the kind of model.",
           "A two-layer MLP that predicts whether a person's yearly income exceeds $50K from "
           "14 census attributes."),
        _f("license", "License",
           "The licence the model is released under (an SPDX identifier where there is one), "
           "or \"not released\".", "CC-BY-4.0"),
        _f("date", "Date", "When this version was trained or released, as YYYY-MM-DD.", "2024-05-01"),
    )),
    Section("owners", "Owners",
            "The people responsible for the model, whom the board can contact about it. One "
            "entry per person.", (
        _f("name", "Name", "The person's full name.", "Dr. Ada Lovelace", required=True),
        _f("contact", "Contact", "An e-mail address (or other way) the board can reach them at.",
           "ada.lovelace@example.edu", required=True),
        _f("role", "Role",
           "Their role for this model: principal investigator, developer, data steward...",
           "Principal investigator"),
    ), person="Owner"),
    Section("intended_use", "Intended use", "What the model is, and is not, for.", (
        _f("primary_uses", "Primary uses",
           "The tasks and settings the model was built and evaluated for.",
           ["Studying the fairness of income classifiers on census data"],
           required=True, kind="list"),
        _f("primary_users", "Primary users", "Who is expected to use the model.",
           ["The project's researchers", "Students of the ML ethics course"], kind="list"),
        _f("out_of_scope_uses", "Out-of-scope uses",
           "Uses the model must not be put to, or was not evaluated for; say why where it helps.",
           ["Decisions about real people (credit, hiring, benefits)",
            "Populations other than the 1994 US census"], required=True, kind="list"),
    )),
    Section("training_data", "Training data", "The data the model was trained on.", (
        _f("description", "Description",
           "What the data is: the population and period it covers, its size, the features and "
           "the target.",
           "32,561 adults from the 1994 US census; 14 demographic and employment attributes; "
           "target: income above $50K.", required=True),
        _f("source", "Source",
           "Where it came from: the dataset's name and citation, URL or DOI, or how and by whom "
           "it was collected.", "UCI Machine Learning Repository, Adult, doi:10.24432/C5XW20"),
        _f("consent_or_legal_basis", "Consent or legal basis",
           "On what basis the data may be used: the consent the people in it gave, or the legal "
           "basis (e.g. GDPR Art. 6(1)(e), public task) and the approval that covers it. Say so "
           "when the data is public and holds no personal data.",
           "Public, de-identified dataset (CC BY 4.0); no new personal data collected.",
           required=True),
        _f("preprocessing", "Preprocessing",
           "How the data was cleaned, filtered, balanced, split or transformed before training.",
           "Rows with missing values dropped; categorical attributes one-hot encoded; "
           "numbers standardised."),
    )),
    Section("evaluation_data", "Evaluation data",
            "The data the model was evaluated on (the file given with --data).", (
        _f("description", "Description",
           "What the data is and how it relates to the training data (a held-out split, "
           "another period or site...).",
           "16,281 adults from the same census, held out before training (the UCI test split).",
           required=True),
        _f("source", "Source", "Where it came from, when not from the training data's source.",
           "UCI Machine Learning Repository, Adult (adult.test)"),
    )),
    Section("ethical_considerations", "Ethical considerations",
            "The ethical questions the model raises, its risks, and what is done about them.", (
        _f("considerations", "Considerations",
           "Sensitive attributes, affected groups, possible harms, dual use: what the board "
           "should weigh.",
           ["The data holds sex and race; predictions may differ between groups."],
           required=True, kind="list"),
        _f("risks", "Risks", "Specific risks of harm, and who would bear them.",
           ["Used for real decisions, it could deny women and minorities opportunities."],
           kind="list"),
        _f("mitigations", "Mitigations", "What was done, or must be done, to reduce each risk.",
           ["Fairness audited across sex and race (see the report)",
            "Released for research only"], kind="list"),
    )),
    Section("caveats_and_recommendations", "Caveats and recommendations",
            "What users of the model and its results should know.", (
        _f("caveats", "Caveats",
           "Known limitations: where the model does worse, what was not tested, its assumptions.",
           ["The data is from 1994; incomes are not adjusted for inflation."], kind="list"),
        _f("recommendations", "Recommendations", "Advice for anyone using the model or its results.",
           ["Re-audit on current data before any other use."], kind="list"),
    )),
    Section("review", "Review", "The ethics or research-integrity review of this model.", (
        _f("board", "Board", "The board or committee that reviews the model.",
           "University Research Ethics Committee", required=True),
        _f("reviewers", "Reviewers", "The names of the reviewers.",
           ["Prof. Grace Hopper", "Dr. Alan Turing"], kind="list"),
        _f("approval_number", "Protocol or approval number",
           "The protocol or approval number the board gave, once it has one.", "REC-2024-117"),
        _f("date", "Date", "The date of the review or approval, as YYYY-MM-DD.", "2024-06-15"),
    )),
)

_SECTIONS = {section.key: section for section in SCHEMA}


@dataclass(frozen=True)
class Card:
    """A loaded model card: each known field's value (None when missing or empty) and the
    keys the schema does not know. Build it with :func:`load_card`."""

    path: Path
    format: str
    sha256: str
    #: section key -> field key -> value; for a list of people (owners): a list of those dicts
    values: Mapping[str, Any]
    #: the unknown keys, as dotted paths ("funding", "model.framework"), in sorted order
    additional: Mapping[str, Value] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.path.name

    def get(self, section: str, key: str) -> Value:
        """The value of a field of a single section (not of owners), or None."""
        return self.values.get(section, {}).get(key)

    @property
    def gaps(self) -> list[dict[str, str]]:
        return card_section(self)["gaps"]


# --- reading ------------------------------------------------------------------------------


def load_card(path: Path | str) -> Card:
    """Read and check a model card (TOML, or YAML by extension .yaml / .yml)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"The model card {str(path)!r} has the extension {path.suffix or '(none)'!r}; "
            "expected .toml, .yaml or .yml.",
            hint="Name the file model-card.toml (or .yaml). " + _INIT_HINT,
        )
    try:  # a FIFO or a device is refused, not waited on; a card is small
        raw = read_bytes(path, "The model card", limit=small_limit(), error=UsageError)
    except FileNotFoundError:
        raise UsageError(
            f"The model card {str(path)!r} does not exist.",
            hint="Check the path, or run `audit card init` to write a template to fill in.",
        ) from None
    except IsADirectoryError:
        raise UsageError(f"The model card {str(path)!r} is a folder, not a file.") from None
    except OSError as exc:
        raise UsageError(f"The model card {str(path)!r} cannot be read: {exc.strerror}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"The model card {path.name} is not UTF-8 text (byte {exc.start + 1} is not).",
            hint="Save it as UTF-8. " + _INIT_HINT,
        ) from None
    data = _parse_toml(text, path) if fmt == "toml" else _parse_yaml(text, path)
    check_depth(data, f"The model card {path.name}", UsageError)
    if data is None:
        data = {}  # an empty YAML file: every required field is a gap
    if not isinstance(data, Mapping):
        raise UsageError(
            f"The model card {path.name} must hold a mapping of sections (model:, owners:, ...); "
            f"it holds {_kind(data, fmt)}.",
            hint=_INIT_HINT,
        )
    values, additional = _check(data, fmt, path.name)
    return Card(path, fmt, hashlib.sha256(raw).hexdigest(), values, additional)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse_toml(text: str, path: Path) -> Any:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise too_deep(f"The model card {path.name}", error=UsageError) from None
    except tomllib.TOMLDecodeError as exc:
        message = _one_line(str(exc))
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where:
            problem = message[: where.start()]
            place = f"line {where.group(1)}, column {where.group(2)}"
        elif message.endswith("(at end of document)"):
            problem = message[: -len("(at end of document)")].rstrip()
            place = f"line {text.count(chr(10)) + 1} (the end of the file)"
        else:
            problem, place = message, "somewhere"
        raise UsageError(
            f"The model card {path.name} is not valid TOML: {place}: {problem}.",
            hint="Text values need quotes (name = \"...\"). " + _INIT_HINT,
        ) from None


@functools.lru_cache(maxsize=None)
def _yaml_loader() -> type:
    """yaml.SafeLoader that refuses a key given twice in one mapping (safe_load keeps the
    last one silently, and a card must not lose what its author wrote)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            # An alias (*name) repeats a whole node: a few of them nested make a card of
            # billions of fields (a "billion laughs"), and a card has no use for them.
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "an alias (*name) repeats another value; write the value out instead",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:
                        continue  # an unhashable key: the constructor reports it
                    if duplicate:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"the key {key!r} is given twice", key_node.start_mark,
                        )
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise too_deep(f"The model card {path.name}", error=UsageError) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = _one_line(getattr(exc, "problem", None) or exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        place = "somewhere" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"
        if context:
            context = _one_line(context)
            if context_mark is not None and (mark is None or context_mark.line != mark.line):
                context += f" that starts on line {context_mark.line + 1}"
            problem += f" ({context})"
        raise UsageError(
            f"The model card {path.name} is not valid YAML: {place}: {problem}.",
            hint="Indent with spaces, and quote text that holds ': ' or starts with a symbol. "
            + _INIT_HINT,
        ) from None


def _kind(value: Any, fmt: str) -> str:
    if isinstance(value, bool):
        return f"the true/false value {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, Mapping):
        return "a table" if fmt == "toml" else "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


def _table(fmt: str) -> str:
    return "table" if fmt == "toml" else "mapping"


def _quoted(key: str, value: Any, fmt: str) -> str:
    written = str(value).lower() if isinstance(value, bool) else str(value)
    return f'{key} = "{written}"' if fmt == "toml" else f'{key}: "{written}"'


def _text(value: Any, where: str, key: str, fmt: str, source: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (datetime.date, datetime.time)):  # an unquoted TOML / YAML date
        return value.isoformat()
    if isinstance(value, (bool, int, float)):
        raise UsageError(
            f"In the model card {source}, {where} must be text; got {_kind(value, fmt)}.",
            hint=f"Put it in quotes, as you mean it to read: {_quoted(key, value, fmt)}.",
        )
    raise UsageError(
        f"In the model card {source}, {where} must be text; got {_kind(value, fmt)}.",
        hint=f"Write one piece of text: {_quoted(key, '...', fmt)}."
        + (" Use a list field, or join the items into one text." if isinstance(value, list) else ""),
    )


def _text_list(value: Any, where: str, key: str, fmt: str, source: str) -> list[str] | None:
    if value is None:
        return None
    example = f'{key} = ["...", "..."]' if fmt == "toml" else f'{key}: ["...", "..."]'
    if isinstance(value, (str, datetime.date, datetime.time)):
        item = _text(value, where, key, fmt, source)
        return None if item is None else [item]
    if not isinstance(value, list):
        raise UsageError(
            f"In the model card {source}, {where} must be a list of text; got {_kind(value, fmt)}.",
            hint=f"Write it as a list: {example}.",
        )
    items = []
    for i, item in enumerate(value, start=1):
        if isinstance(item, (Mapping, list)) or (
            item is not None and not isinstance(item, (str, datetime.date, datetime.time))
        ):
            raise UsageError(
                f"In the model card {source}, {where} must be a list of text; item {i} is "
                f"{_kind(item, fmt)}.",
                hint=f"Quote every item: {example}.",
            )
        text = _text(item, where, key, fmt, source)
        if text is not None:
            items.append(text)
    return items or None


def _fields(section: Section, table: Mapping[str, Any], prefix: str, fmt: str, source: str,
            additional: dict[str, Value]) -> dict[str, Value]:
    known = {f.key: f for f in section.fields}
    values: dict[str, Value] = {}
    for f in section.fields:
        where = f"{prefix}.{f.key}"
        read = _text if f.kind == "text" else _text_list
        values[f.key] = read(table.get(f.key), where, f.key, fmt, source)
    for key, value in table.items():
        if str(key) not in known:
            _flatten(f"{prefix}.{key}", value, additional)
    return values


def _check(data: Mapping[str, Any], fmt: str, source: str) -> tuple[dict[str, Any], dict[str, Value]]:
    values: dict[str, Any] = {}
    additional: dict[str, Value] = {}
    for section in SCHEMA:
        given = data.get(section.key)
        if section.repeated:
            values[section.key] = _people(section, given, fmt, source, additional)
            continue
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise UsageError(
                f"In the model card {source}, {section.key} must be a {_table(fmt)} of fields "
                f"({', '.join(f.key for f in section.fields)}); got {_kind(given, fmt)}.",
                hint=_INIT_HINT,
            )
        values[section.key] = _fields(section, given, section.key, fmt, source, additional)
    for key, value in data.items():
        if str(key) not in _SECTIONS:
            _flatten(str(key), value, additional)
    return values, dict(sorted(additional.items()))


def _people(section: Section, given: Any, fmt: str, source: str,
            additional: dict[str, Value]) -> list[dict[str, Value]]:
    names = ", ".join(f.key for f in section.fields)
    how = (f"one [[{section.key}]] table per person" if fmt == "toml"
           else "a list with one '- name: ...' entry per person")
    if given is None:
        given = []
    if not isinstance(given, list):
        raise UsageError(
            f"In the model card {source}, {section.key} must be a list of people ({names}); got "
            f"{_kind(given, fmt)}.",
            hint=f"Write {how}.",
        )
    people = []
    for i, person in enumerate(given, start=1):
        if person is None:
            person = {}
        if not isinstance(person, Mapping):
            raise UsageError(
                f"In the model card {source}, {section.key} entry {i} must be a {_table(fmt)} "
                f"({names}); got {_kind(person, fmt)}.",
                hint=f"Write {how}.",
            )
        people.append(_fields(section, person, f"{section.key}.{i}", fmt, source, additional))
    # No one named: one empty entry, so that its required fields are listed as gaps.
    return people or [dict.fromkeys((f.key for f in section.fields), None)]


def _flatten(path: str, value: Any, into: dict[str, Value]) -> None:
    """Keep an unknown key as text: tables and lists of tables become dotted paths."""
    if isinstance(value, Mapping):
        if not value:
            into[path] = None
        for key, item in value.items():
            _flatten(f"{path}.{key}", item, into)
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        for i, item in enumerate(value, start=1):
            _flatten(f"{path}.{i}", item, into)
    elif isinstance(value, list):
        items = [t for t in (_scalar(v) for v in value) if t is not None]
        into[path] = items or None
    else:
        into[path] = _scalar(value)


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip() or None
    return str(value)


# --- the report's section -------------------------------------------------------------------


def card_section(card: Card) -> dict[str, Any]:
    """The report's ``card`` section: plain JSON, shape in this module's docstring."""
    sections: list[dict[str, Any]] = []
    gaps: list[dict[str, str]] = []
    for section in SCHEMA:
        fields = []
        entries = card.values[section.key]
        for i, values in enumerate(entries if section.repeated else [entries], start=1):
            for f in section.fields:
                key = f"{i}.{f.key}" if section.repeated else f.key
                label = f"{section.person} {i}: {f.label}" if section.repeated else f.label
                value = values.get(f.key)
                fields.append({"key": key, "label": label,
                               "value": list(value) if isinstance(value, list) else value,
                               "required": f.required})
                if f.required and value is None:
                    gaps.append({"section": section.key, "field": key, "label": label})
        sections.append({"key": section.key, "title": section.title, "fields": fields})
    if card.additional:
        sections.append({
            "key": ADDITIONAL[0],
            "title": ADDITIONAL[1],
            "fields": [
                {"key": key, "label": key, "value": list(value) if isinstance(value, list) else value,
                 "required": False}
                for key, value in card.additional.items()
            ],
        })
    return {"source": card.source, "sha256": card.sha256, "format": card.format,
            "sections": sections, "gaps": gaps}


# --- the template -----------------------------------------------------------------------------


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
