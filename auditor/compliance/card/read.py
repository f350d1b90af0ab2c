"""Reading a model card: a TOML or YAML file, read safely and checked against the schema.

Wrong types (a number where text is expected, a table where a list is expected) and files
that do not parse are :class:`~auditor.contract.errors.UsageError` naming the field or the line. A
card holds at most 16 MiB (less with a small memory budget), nests at most
:data:`~auditor.loading.inputs.MAX_DEPTH` deep and uses no YAML aliases (``*name``: a few
nested ones make billions of fields); a FIFO or a device is refused, never waited on.

Values are text or lists of text. A date written unquoted (TOML ``2024-05-01``, YAML
``2024-05-01``) is read as that text; a single string where a list is expected is a
one-item list; surrounding whitespace is stripped and empty strings count as missing. Keys
the schema does not know are kept as dotted paths, for "Additional information".
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from auditor.compliance.card.schema import _INIT_HINT, _SECTIONS, FORMATS, SCHEMA, Section, Value
from auditor.compliance.card.section import Card
from auditor.contract.errors import UsageError
from auditor.loading.inputs import check_depth, read_bytes, small_limit, too_deep


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


@functools.cache
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
        problem = _one_line(str(getattr(exc, "problem", None) or exc))
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
