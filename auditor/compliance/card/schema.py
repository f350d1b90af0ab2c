"""The model card's schema: its sections and their fields, in the order the report shows them.

The template (:mod:`.template`) explains every field from its help and example; reading
(:mod:`.read`) checks a file against it; the report's section (:mod:`.section`) lists every
field, required ones that are missing as gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The value of one field: text, a list of text, or None when missing or empty.
Value = str | list[str] | None

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
