"""The model card: what the ethics board reads beside the numbers, read exactly as written.

A card is TOML or YAML; both give the same report section. A required field that is missing
or empty is a gap, never filled in; keys the schema does not know are kept; a wrong type or
a file that does not parse is one line naming the field or the line (exit 2 on the CLI).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from cli_helpers import assert_clean_input_error, invoke

from auditor.compliance.card import SCHEMA, card_section, load_card, template
from auditor.contract.errors import UsageError

COMPLETE_TOML = '''\
[model]
name = "adult-income-mlp"
version = "1.2.0"
description = """
A two-layer MLP that predicts whether yearly income exceeds $50K.
"""
license = "CC-BY-4.0"
date = 2024-05-01            # an unquoted TOML date reads as the same text

[[owners]]
name = "Dr. Ada Lovelace"
contact = "ada@example.edu"
role = "Principal investigator"

[[owners]]
name = "Charles Babbage"
contact = "charles@example.edu"

[intended_use]
primary_uses = ["Research on the fairness of income classifiers"]
primary_users = ["The project's researchers"]
out_of_scope_uses = ["Decisions about real people", "Populations other than the 1994 US census"]

[training_data]
description = "32,561 adults from the 1994 US census."
source = "UCI Adult, doi:10.24432/C5XW20"
consent_or_legal_basis = "Public, de-identified dataset (CC BY 4.0)."
preprocessing = "Rows with missing values dropped."

[evaluation_data]
description = "16,281 held-out adults from the same census."
source = "UCI Adult (adult.test)"

[ethical_considerations]
considerations = ["The data holds sex and race."]
risks = ["Unequal error rates between groups."]
mitigations = ["Fairness audited across sex and race."]

[caveats_and_recommendations]
caveats = ["The data is from 1994."]
recommendations = ["Re-audit on current data before any other use."]

[review]
board = "University Research Ethics Committee"
reviewers = ["Prof. Grace Hopper", "Dr. Alan Turing"]
approval_number = "REC-2024-117"
date = "2024-06-15"
'''

COMPLETE_YAML = '''\
model:
  name: adult-income-mlp
  version: "1.2.0"
  description: |
    A two-layer MLP that predicts whether yearly income exceeds $50K.
  license: CC-BY-4.0
  date: 2024-05-01
owners:
  - name: Dr. Ada Lovelace
    contact: ada@example.edu
    role: Principal investigator
  - name: Charles Babbage
    contact: charles@example.edu
intended_use:
  primary_uses:
    - Research on the fairness of income classifiers
  primary_users: ["The project's researchers"]
  out_of_scope_uses:
    - Decisions about real people
    - Populations other than the 1994 US census
training_data:
  description: "32,561 adults from the 1994 US census."
  source: "UCI Adult, doi:10.24432/C5XW20"
  consent_or_legal_basis: Public, de-identified dataset (CC BY 4.0).
  preprocessing: Rows with missing values dropped.
evaluation_data:
  description: 16,281 held-out adults from the same census.
  source: UCI Adult (adult.test)
ethical_considerations:
  considerations: [The data holds sex and race.]
  risks: [Unequal error rates between groups.]
  mitigations: [Fairness audited across sex and race.]
caveats_and_recommendations:
  caveats: [The data is from 1994.]
  recommendations: [Re-audit on current data before any other use.]
review:
  board: University Research Ethics Committee
  reviewers: [Prof. Grace Hopper, Dr. Alan Turing]
  approval_number: REC-2024-117
  date: "2024-06-15"
'''

REQUIRED = [(s.key, f.key) for s in SCHEMA for f in s.fields if f.required]
#: with no owner given, the required fields of owner 1 are the gaps
REQUIRED_GAPS = [(s, f"1.{f}" if s == "owners" else f) for s, f in REQUIRED]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def section(path: Path) -> dict:
    return card_section(load_card(path))


def values(card: dict) -> dict[tuple[str, str], object]:
    return {(s["key"], f["key"]): f["value"] for s in card["sections"] for f in s["fields"]}


def gaps(card: dict) -> list[tuple[str, str]]:
    return [(g["section"], g["field"]) for g in card["gaps"]]


def load_error(path: Path) -> str:
    """The one-line message (with its hint) load_card raises for a bad card."""
    with pytest.raises(UsageError) as caught:
        load_card(path)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- a complete card ----------------------------------------------------------------------------

def test_a_complete_card_reads_the_same_from_toml_and_yaml(tmp_path):
    toml_path = write(tmp_path / "model-card.toml", COMPLETE_TOML)
    yaml_path = write(tmp_path / "model-card.yaml", COMPLETE_YAML)
    from_toml, from_yaml = section(toml_path), section(yaml_path)

    assert from_toml["sections"] == from_yaml["sections"]
    assert from_toml["gaps"] == from_yaml["gaps"] == []
    assert (from_toml["format"], from_yaml["format"]) == ("toml", "yaml")
    assert (from_toml["source"], from_yaml["source"]) == ("model-card.toml", "model-card.yaml")
    assert from_toml["sha256"] == hashlib.sha256(toml_path.read_bytes()).hexdigest()
    assert from_yaml["sha256"] == hashlib.sha256(yaml_path.read_bytes()).hexdigest()

    got = values(from_toml)
    assert got["model", "name"] == "adult-income-mlp"
    assert got["model", "description"] == "A two-layer MLP that predicts whether yearly income exceeds $50K."
    assert got["model", "date"] == "2024-05-01"
    assert got["owners", "2.contact"] == "charles@example.edu"
    assert got["owners", "2.role"] is None  # optional and not given: empty, not invented
    assert got["intended_use", "out_of_scope_uses"] == [
        "Decisions about real people", "Populations other than the 1994 US census"]
    assert got["review", "reviewers"] == ["Prof. Grace Hopper", "Dr. Alan Turing"]


def test_the_section_is_plain_json_in_schema_order_and_the_same_every_time(tmp_path):
    path = write(tmp_path / "card.toml", COMPLETE_TOML)
    card = section(path)
    assert json.loads(json.dumps(card)) == card
    assert json.dumps(card) == json.dumps(section(path))
    assert list(card) == ["source", "sha256", "format", "sections", "gaps"]
    assert [s["key"] for s in card["sections"]] == [
        "model", "owners", "intended_use", "training_data", "evaluation_data",
        "ethical_considerations", "caveats_and_recommendations", "review"]
    assert [s["title"] for s in card["sections"]][:3] == ["Model", "Owners", "Intended use"]
    for s in card["sections"]:
        for f in s["fields"]:
            assert list(f) == ["key", "label", "value", "required"]
    owners = card["sections"][1]["fields"]
    assert [(f["key"], f["label"], f["required"]) for f in owners[:3]] == [
        ("1.name", "Owner 1: Name", True), ("1.contact", "Owner 1: Contact", True),
        ("1.role", "Owner 1: Role", False)]


# --- gaps: nothing is ever filled in ------------------------------------------------------------

def test_missing_or_empty_required_fields_are_gaps_and_nothing_is_invented(tmp_path):
    card = section(write(tmp_path / "card.toml", '''\
[model]
name = "adult-income-mlp"
version = "   "

[[owners]]
name = "Dr. Ada Lovelace"

[intended_use]
primary_uses = []
out_of_scope_uses = ["", "Decisions about real people"]

[training_data]
description = "32,561 adults from the 1994 US census."
'''))
    assert gaps(card) == [
        ("model", "version"),
        ("owners", "1.contact"),
        ("intended_use", "primary_uses"),
        ("training_data", "consent_or_legal_basis"),
        ("evaluation_data", "description"),
        ("ethical_considerations", "considerations"),
        ("review", "board"),
    ]
    assert card["gaps"][1] == {"section": "owners", "field": "1.contact", "label": "Owner 1: Contact"}
    got = values(card)
    assert got["model", "version"] is None and got["model", "license"] is None
    assert got["intended_use", "out_of_scope_uses"] == ["Decisions about real people"]
    # every field the file does not give is None, and each is still listed for the board
    given = {("model", "name"), ("owners", "1.name"), ("intended_use", "out_of_scope_uses"),
             ("training_data", "description")}
    assert {k for k, v in got.items() if v is not None} == given
    assert len(got) == sum(len(s.fields) for s in SCHEMA)


@pytest.mark.parametrize("name, text", [("empty.yaml", ""), ("empty.toml", ""), ("comments.yml", "# nothing yet\n")])
def test_an_empty_card_lists_every_required_field_as_a_gap(tmp_path, name, text):
    card = section(write(tmp_path / name, text))
    assert gaps(card) == REQUIRED_GAPS
    assert all(v is None for v in values(card).values())


def test_yaml_keys_without_a_value_are_gaps(tmp_path):
    card = section(write(tmp_path / "card.yaml", "model:\n  name:\n  version: '2'\nreview:\n"))
    assert ("model", "name") in gaps(card) and ("model", "version") not in gaps(card)
    assert ("review", "board") in gaps(card)


# --- unknown keys are kept ----------------------------------------------------------------------

def test_keys_the_schema_does_not_know_are_kept_as_additional_information(tmp_path):
    toml_card = section(write(tmp_path / "card.toml", '''\
funding = "ERC grant 101010"

[model]
name = "m"
framework = "PyTorch 2.3"

[[owners]]
name = "Ada"
orcid = "0000-0002-1825-0097"

[datasheet]
url = "https://example.edu/datasheet"
pages = 12
tags = ["census", "income"]
'''))
    yaml_card = section(write(tmp_path / "card.yaml", '''\
model:
  name: m
  framework: PyTorch 2.3
owners:
  - name: Ada
    orcid: 0000-0002-1825-0097
datasheet:
  url: https://example.edu/datasheet
  pages: 12
  tags: [census, income]
funding: ERC grant 101010
'''))
    extra = toml_card["sections"][-1]
    assert extra["key"] == "additional" and extra["title"] == "Additional information"
    assert [(f["key"], f["value"]) for f in extra["fields"]] == [
        ("datasheet.pages", "12"),
        ("datasheet.tags", ["census", "income"]),
        ("datasheet.url", "https://example.edu/datasheet"),
        ("funding", "ERC grant 101010"),
        ("model.framework", "PyTorch 2.3"),
        ("owners.1.orcid", "0000-0002-1825-0097"),
    ]
    assert all(f["label"] == f["key"] and f["required"] is False for f in extra["fields"])
    assert toml_card["sections"] == yaml_card["sections"]


def test_a_card_without_unknown_keys_has_no_additional_section(tmp_path):
    card = section(write(tmp_path / "card.toml", COMPLETE_TOML))
    assert "additional" not in [s["key"] for s in card["sections"]]


# --- wrong types: one line naming the field -----------------------------------------------------

@pytest.mark.parametrize("name, text, fragments", [
    ("card.toml", '[model]\nversion = 1.0\n', ("model.version must be text", "the number 1.0", 'version = "1.0"')),
    ("card.yaml", 'model:\n  version: 1.10\n', ("model.version must be text", "the number 1.1", 'version: "1.1"')),
    ("card.yaml", 'model:\n  name: yes\n', ("model.name must be text", "true/false")),
    ("card.toml", '[model]\nname = ["a", "b"]\n', ("model.name must be text", "a list")),
    ("card.toml", '[intended_use]\nprimary_uses = {first = "x"}\n',
     ("intended_use.primary_uses must be a list of text", "a table")),
    ("card.yaml", 'intended_use:\n  primary_uses:\n    first: x\n',
     ("intended_use.primary_uses must be a list of text", "a mapping")),
    ("card.toml", '[review]\nreviewers = ["Ada", 2]\n', ("review.reviewers must be a list of text", "item 2")),
    ("card.toml", 'model = "adult-income-mlp"\n', ("model must be a table of fields", "name, version")),
    ("card.toml", '[owners]\nname = "Ada"\n', ("owners must be a list of people", "[[owners]]")),
    ("card.yaml", 'owners:\n  name: Ada\n', ("owners must be a list of people", "- name: ...")),
    ("card.yaml", 'owners:\n  - Ada <ada@example.edu>\n', ("owners entry 1 must be a mapping", "text")),
    ("card.toml", '[[owners]]\nname = "Ada"\n[[owners]]\ncontact = 3\n', ("owners.2.contact must be text",)),
    ("card.yaml", '- model\n- owners\n', ("must hold a mapping of sections", "a list")),
])
def test_a_wrong_type_names_the_field(tmp_path, name, text, fragments):
    message = load_error(write(tmp_path / name, text))
    assert name in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- files that do not parse: one line naming the line ------------------------------------------

@pytest.mark.parametrize("name, text, fragments", [
    ("card.toml", '[model]\nname = "m"\nversion 1.0\n', ("not valid TOML", "line 3", "Expected '='")),
    ("card.toml", '[model]\nname = adult-income-mlp\n', ("not valid TOML", "line 2", "quotes")),
    ("card.toml", '[model]\nname = "m"\nname = "n"\n', ("not valid TOML", "line 3")),
    ("card.yaml", 'model:\n  name: m\n  version: 1: 2\n', ("not valid YAML", "line 3", "mapping values are not allowed")),
    ("card.yaml", 'model:\n  name: "m\n', ("not valid YAML", "quoted scalar that starts on line 2")),
    ("card.yml", 'model:\n  name: m\n  name: n\n', ("not valid YAML", "line 3", "'name' is given twice")),
])
def test_a_file_that_does_not_parse_names_the_line(tmp_path, name, text, fragments):
    message = load_error(write(tmp_path / name, text))
    assert name in message and "audit card init" in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_card_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "card.toml"
    path.write_bytes('[model]\nname = "Caf\u00e9"\n'.encode("latin-1"))
    assert "not UTF-8" in load_error(path)


def test_an_unknown_extension_is_refused(tmp_path):
    message = load_error(write(tmp_path / "card.json", "{}"))
    assert "card.json" in message and ".toml, .yaml or .yml" in message


def test_a_missing_card_is_refused(tmp_path):
    message = load_error(tmp_path / "nowhere.toml")
    assert "nowhere.toml" in message and "does not exist" in message and "audit card init" in message


# --- the template and `audit card init` ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_init_writes_a_template_that_loads_back_with_every_required_field_a_gap(tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    result = invoke("card", "init", *(["--format", fmt] if fmt == "yaml" else []))
    assert result.exit_code == 0, result.stderr
    path = tmp_path / f"model-card.{fmt}"
    assert f"model-card.{fmt}" in result.stdout
    assert f"audit model.pt --data test.csv --card model-card.{fmt}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    card = section(path)
    assert card["format"] == fmt
    assert gaps(card) == REQUIRED_GAPS
    assert all(v is None for v in values(card).values())


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_the_template_explains_every_field_and_marks_the_required_ones(fmt):
    text = template(fmt)
    assign = " = " if fmt == "toml" else ": "
    for s in SCHEMA:
        for f in s.fields:
            marker = "REQUIRED" if f.required else "optional"
            assert f"# {f.label} ({marker}," in text
            assert f"# Example: {f.key}{assign}" in text
    assert text.count("(REQUIRED,") == len(REQUIRED)


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_the_template_examples_are_valid_and_fill_every_gap(tmp_path, fmt):
    """Replace each empty value with the example above it: a complete card, no gaps."""
    lines = template(fmt).splitlines()
    for i, line in enumerate(lines[:-1]):
        example = re.fullmatch(r"(\s*)# Example: (.*)", line)
        if example:
            indent = re.match(r"\s*(- )?", lines[i + 1]).group(0)
            lines[i + 1] = indent + example.group(2)
    card = section(write(tmp_path / f"filled.{fmt}", "\n".join(lines)))
    assert card["gaps"] == []
    examples = {(s.key, f"1.{f.key}" if s.repeated else f.key): f.example for s in SCHEMA for f in s.fields}
    assert values(card) == {k: list(v) if isinstance(v, tuple) else v for k, v in examples.items()}


def test_the_toml_and_yaml_templates_are_the_same_card(tmp_path):
    from_toml = section(write(tmp_path / "a.toml", template("toml")))
    from_yaml = section(write(tmp_path / "a.yaml", template("yaml")))
    assert (from_toml["sections"], from_toml["gaps"]) == (from_yaml["sections"], from_yaml["gaps"])


def test_init_takes_the_format_from_the_path(tmp_path):
    path = tmp_path / "docs" / "card.yml"
    result = invoke("card", "init", path)
    assert result.exit_code == 0, result.stderr
    assert load_card(path).format == "yaml"


def test_init_refuses_to_overwrite_without_force_and_overwrites_with_it(tmp_path):
    path = write(tmp_path / "model-card.toml", COMPLETE_TOML)
    assert_clean_input_error(invoke("card", "init", path), "model-card.toml", "already exists", "--force")
    assert path.read_text(encoding="utf-8") == COMPLETE_TOML

    result = invoke("card", "init", path, "--force")
    assert result.exit_code == 0, result.stderr
    assert path.read_text(encoding="utf-8") == template("toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-card.toml"]


@pytest.mark.parametrize("args, fragments", [
    (["card.txt"], ("card.txt", ".toml, .yaml or .yml")),
    (["card.toml", "--format", "yaml"], ("--format yaml", "card.toml")),
])
def test_init_refuses_a_path_whose_format_it_cannot_tell(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    assert_clean_input_error(invoke("card", "init", *args), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_init_help_teaches_with_an_example():
    result = invoke("card", "init", "--help")
    assert result.exit_code == 0
    for text in ("audit card init", "--format", "--force", "audit model.pt --data test.csv --card model-card.toml"):
        assert text in result.stdout
    assert "card" in invoke("--help").stdout
