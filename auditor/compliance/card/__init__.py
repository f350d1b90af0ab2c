"""The model card: what no model or data file can tell an ethics / research-integrity board.

Who owns the model, what it is for and must not be used for, where its training data came
from and on what consent or legal basis, its ethical risks and who reviewed it. A researcher
writes it (``audit card init`` writes a commented template) as TOML or YAML and passes it
with ``audit MODEL --data DATA --card model-card.toml``; the compliance report shows it.

Nothing is ever made up: a required field that is missing or empty is listed as a *gap*,
never filled in. Keys the schema does not know are kept, under "Additional information".
What a card file may hold, and how a wrong one is refused, is :mod:`.read`'s docstring.

The package's modules, one concept each:

- :mod:`.schema`: the card's sections and fields (:data:`SCHEMA`), what the template and the
  report are built from;
- :mod:`.read`: reading a TOML or YAML file safely and checking it against the schema
  (:func:`load_card`);
- :mod:`.section`: the loaded :class:`Card` and the report's ``card`` section it becomes
  (:func:`card_section`; the module's docstring gives that section's JSON shape);
- :mod:`.template`: the commented template ``audit card init`` writes (:func:`template`,
  :func:`write_template`).
"""

from __future__ import annotations

from auditor.compliance.card.read import load_card
from auditor.compliance.card.schema import ADDITIONAL, FORMATS, SCHEMA, Field, Section, Value
from auditor.compliance.card.section import Card, card_section
from auditor.compliance.card.template import default_path, template, write_template

__all__ = [
    "ADDITIONAL",
    "FORMATS",
    "SCHEMA",
    "Card",
    "Field",
    "Section",
    "Value",
    "card_section",
    "default_path",
    "load_card",
    "template",
    "write_template",
]
