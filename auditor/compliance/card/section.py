"""A loaded model card, and the report's ``card`` section it becomes.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.compliance.card.schema import ADDITIONAL, SCHEMA, Value


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
