"""What looks like personal data: a data column's name and a sample of its values.

Two independent kinds of evidence, each a pure function returning small frozen dataclasses
that hold token names, counts and shares, never a value:

:func:`match_name` -> :class:`NameMatch`
    splits a column name into lower-case words (``phoneNumber`` -> ``phone``, ``number``;
    ``E-Mail`` -> ``e``, ``mail``; ``student_id`` -> ``student``, ``id``) and looks them up:
    single words (``email``, ``dob``, ``ssn``, ``surname``, ``id``), pairs (``first`` +
    ``name``, ``student`` + ``id``, ``social`` + ``security``) and distinctive fragments of
    the joined name (``matrikel``, ``postcode``, ``dateofbirth``). Whole words only, so
    ``race``, ``age``, ``fnlwgt`` or ``capital_gain`` never match; ``name`` after ``file``,
    ``feature``, ``country``... is not a person's, nor ``birth`` before ``weight``.
:func:`scan_values` -> :class:`ValueScan`
    matches a column's sampled values (text, as a file holds them) against :data:`PATTERNS`
    with pyarrow's RE2 kernels, over the distinct values only: US SSN and UK National
    Insurance numbers, e-mail addresses, IPv4/IPv6 addresses, phone numbers (written with
    separators, a ``+`` or a trunk ``0``), full dates whose years spread like adults' birth
    years, street addresses and postcodes, student or staff numbers (letters and digits, or
    digits with leading zeros, nearly all distinct), usernames, other codes and pseudonymous
    keys (UUIDs, letters mixed with digits, nearly all distinct), personal names (capitalised
    words, or words in one case, many distinct) and free text (six or more words, varied).
    A kind is found when at least ``min_share`` of the non-empty values match it; kinds are
    tried in :data:`KINDS` order and the first found wins. A column of plain numbers is never
    flagged by its values: measurements are not phone numbers.

:func:`judge` combines both for one column into a :class:`Detection` (:func:`detect` scans
the values first). A name stands whatever the values, except a name suggesting free text
(``score_text``) over numbers or a few repeated categories.

One concept: what looks like personal data. The name vocabulary, the value patterns and
:func:`judge` that weighs one against the other are tuned together, kind by kind.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from auditor.loading.arrow import column_to_numpy

#: Kinds of personal data, in the order value patterns are tried, with display labels.
KINDS: dict[str, str] = {
    "national_id": "national ID number",
    "email": "e-mail address",
    "ip": "IP address",
    "phone": "phone number",
    "birth_date": "date of birth",
    "address": "postal address or postcode",
    "id_code": "student/staff or other ID number",
    "username": "username or user ID",
    "code": "other ID code or pseudonymous key",
    "name": "personal name",
    "free_text": "free text",
}

#: Kinds judged by uniqueness need at least this many non-empty values and distinct values.
MIN_VALUES = 20
#: Full dates are dates of birth when their years spread like adults' birth years: the middle
#: half of the rows spans at least this many years (events cluster within a few years). A
#: cohort born within a few years (a class of students) is found by its column's name only.
MIN_BIRTH_YEAR_IQR = 8

Values: TypeAlias = Sequence[str] | pa.Array | pa.ChunkedArray


# --------------------------------------------------------------------------- names

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+")
_WORDS = re.compile(r"[^\W_]+")

#: Single tokens that mark a kind on their own.
_TOKENS: dict[str, frozenset[str]] = {
    "national_id": frozenset({"ssn", "nino", "passport", "passportnumber", "personnummer", "bsn", "aadhaar",
                              "steuernummer", "steuerid", "sozialversicherungsnummer"}),
    "email": frozenset({"email", "emails", "mail", "emailaddress"}),
    "ip": frozenset({"ip", "ipv4", "ipv6", "ipaddress", "ipaddr"}),
    "phone": frozenset({"phone", "phones", "telephone", "tel", "cellphone", "fax", "telefon", "telefonnummer",
                        "phonenumber", "mobilephone", "handynummer"}),
    "birth_date": frozenset({"dob", "birth", "birthday", "birthdate", "born", "geburtsdatum", "geburtstag",
                             "yob", "dateofbirth"}),
    "address": frozenset({"address", "addresses", "addr", "street", "streetname", "postcode", "postcodes",
                          "zip", "zipcode", "plz", "postleitzahl", "strasse", "straße", "adresse", "anschrift"}),
    "id_code": frozenset({"id", "matric", "matriculation", "matrikel", "matrikelnummer", "matrikelnr",
                          "emplid", "studentid", "studentnumber", "studentno", "employeeid", "staffid"}),
    "username": frozenset({"username", "usernames", "login", "userid", "uid", "screenname", "handle"}),
    "code": frozenset({"uuid", "guid", "pseudonym", "pseudonyms"}),
    "name": frozenset({"name", "names", "firstname", "lastname", "surname", "surnames", "forename",
                       "forenames", "fullname", "givenname", "familyname", "middlename", "maidenname",
                       "nickname", "vorname", "nachname", "prenom", "apellido", "cognome"}),
    "free_text": frozenset({"comment", "comments", "note", "notes", "remark", "remarks", "feedback",
                            "freetext", "narrative", "essay", "bio", "biography", "text", "message",
                            "messages"}),
}

_NUMBER_WORDS = frozenset({"id", "no", "nr", "num", "number", "code", "key"})

#: Pairs of adjacent tokens that mark a kind (first token, set of second tokens).
_PAIRS: dict[str, tuple[tuple[frozenset[str], frozenset[str]], ...]] = {
    "national_id": (
        (frozenset({"social"}), frozenset({"security"})),
        (frozenset({"national"}), frozenset({"insurance", "id", "identity"})),
        (frozenset({"ni", "nhs", "tax", "taxpayer", "steuer", "insurance", "sin", "insee"}),
         frozenset({"id", "no", "nr", "number"})),
        (frozenset({"id"}), frozenset({"card"})),
    ),
    "email": ((frozenset({"e"}), frozenset({"mail", "mails"})),),
    "name": ((frozenset({"first", "last", "given", "family", "full", "middle", "maiden", "nick", "birth"}),
              frozenset({"name", "names"})),),
    "phone": ((frozenset({"mobile", "cell", "fax", "contact"}), frozenset({"no", "nr", "number", "num"})),),
    "ip": ((frozenset({"ip"}), frozenset({"address", "addr"})),),
    "username": (
        (frozenset({"user", "account", "login"}), frozenset({"name", "id", "handle", "login"})),
        (frozenset({"screen"}), frozenset({"name"})),
    ),
    "id_code": (
        (frozenset({"student", "employee", "staff", "personnel", "pupil", "candidate", "matriculation",
                    "patient", "person", "customer", "client", "member", "participant", "subject",
                    "respondent", "applicant", "badge", "record"}), _NUMBER_WORDS),
    ),
    "address": (
        (frozenset({"postal", "post", "zip"}), frozenset({"code"})),
        (frozenset({"house"}), frozenset({"number", "no", "nr"})),
    ),
}

#: Distinctive fragments of the joined lower-case name (no separators).
_FRAGMENTS: dict[str, tuple[str, ...]] = {
    "national_id": ("socialsecurity", "nationalinsurance", "sozialversicherung", "passport"),
    "email": ("email",),
    "phone": ("phonenumber", "telephone", "telefon", "cellphone", "mobilephone", "mobilenumber"),
    "birth_date": ("dateofbirth", "birthdate", "birthday", "geburtsdatum"),
    "address": ("postcode", "zipcode", "postalcode", "streetaddress", "homeaddress", "postleitzahl"),
    "id_code": ("matrikel", "matriculation", "studentid", "studentnumber", "employeeid", "employeenumber",
                "staffid", "staffnumber"),
    "username": ("username", "userid", "screenname"),
    "name": ("firstname", "lastname", "surname", "fullname", "givenname", "familyname", "forename"),
}

#: ``name`` after one of these is not a person's name (``file_name``, ``feature_name``...).
_THING_NAMES = frozenset({
    "file", "path", "feature", "class", "model", "column", "host", "domain", "product", "company", "brand",
    "country", "city", "state", "region", "species", "drug", "course", "dataset", "table", "field", "variable",
    "label", "category", "device", "app", "event", "school", "university", "team", "department", "org",
    "organisation", "organization", "project", "item", "image", "font", "key", "type", "program", "programme",
    "module", "job", "task", "test", "metric", "layer", "sheet", "place", "station", "site", "hospital",
})
#: ``birth`` before one of these is not a date: a measurement (``birth_weight``, ``birth_order``)
#: or something else (``birth_name``).
_NOT_BIRTH_DATE = frozenset({"weight", "wt", "order", "rate", "rates", "count", "length", "size", "cohort",
                             "control", "defect", "defects", "outcome", "type", "name", "names", "place",
                             "country", "city"})
#: ``address`` after one of these is a device's, not a home's (``mac_address``).
_DEVICE = frozenset({"mac", "memory", "hardware", "wallet", "contract", "url", "web", "base"})


def tokens(column: str) -> tuple[str, ...]:
    """The lower-case word tokens of a column name: ``'phoneNumber'`` -> ``('phone', 'number')``,
    ``'E-Mail'`` -> ``('e', 'mail')``, ``'address1'`` -> ``('address', '1')``."""
    out: list[str] = []
    for word in _WORDS.findall(str(column)):
        out.extend(part.lower() for part in _CAMEL.findall(word))
    return tuple(out)


@dataclass(frozen=True)
class NameMatch:
    """A column name that marks a kind: ``because`` names the tokens or fragment that did."""

    kind: str
    because: str

    @property
    def label(self) -> str:
        return KINDS[self.kind]


def _name_hits(parts: tuple[str, ...], joined: str) -> dict[str, str]:
    hits: dict[str, str] = {}

    def hit(kind: str, because: str) -> None:
        hits.setdefault(kind, because)

    for i, token in enumerate(parts):
        after = parts[i + 1] if i + 1 < len(parts) else ""
        for kind, pairs in _PAIRS.items():
            for first, second in pairs:
                if token in first and after in second:
                    hit(kind, f"'{token}' + '{after}'")
    for i, token in enumerate(parts):
        before = parts[i - 1] if i > 0 else ""
        after = parts[i + 1] if i + 1 < len(parts) else ""
        for kind, words in _TOKENS.items():
            if token not in words:
                continue
            if kind == "name" and token in {"name", "names"} and before in _THING_NAMES:
                continue
            if kind == "name" and token in {"name", "names"} and before == "street":
                hit("address", f"'{before}' + '{token}'")
                continue
            if kind == "birth_date" and token == "birth" and after in _NOT_BIRTH_DATE:
                continue
            if kind == "address" and token in {"address", "addr"} and before in _DEVICE:
                continue
            hit(kind, f"'{token}'")
    for kind, fragments in _FRAGMENTS.items():
        for fragment in fragments:
            if fragment in joined:
                hit(kind, f"'{fragment}' in the name")
    return hits


def match_name(column: str) -> NameMatch | None:
    """The kind of personal data a column's name suggests, or None.

    When several kinds match (``email_address`` is an e-mail address and an address), the
    most specific wins: national ID, e-mail, IP, phone, birth date, username (``user_name``
    before ``name``), student or staff number, address, personal name, free text.
    """
    parts = tokens(column)
    if not parts:
        return None
    hits = _name_hits(parts, "".join(parts))
    for kind in ("national_id", "email", "ip", "phone", "birth_date", "username", "id_code", "code", "address",
                 "name", "free_text"):
        if kind in hits:
            return NameMatch(kind, hits[kind])
    return None


# --------------------------------------------------------------------------- values

#: Plain numbers (no leading zeros, which make a code) or missing markers: empty, NA, N/A,
#: NaN, null, None, ?, - or -- (any case, trimmed).
_NUMBER_OR_MISSING = (
    r"(?i)^\s*(-?(0|[1-9]\d*)(\.\d+)?(e[-+]?\d+)?|-?\.\d+(e[-+]?\d+)?|[-+]?inf(inity)?|"
    r"na|n/a|nan|null|none|\?|-{1,2}|)\s*$"
)
_MISSING = r"(?i)^(na|n/a|nan|null|none|\?|-{1,2}|)$"
_MISSING_TRIMMED = r"(?i)^\s*(na|n/a|nan|null|none|\?|-{1,2}|)\s*$"
#: A number a cast accepts that is a code rather than a quantity: a leading zero before a
#: digit (``+44...`` phone numbers are told by their '+').
_LEADING_ZERO = r"^0\d"
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9a-fA-F]{1,4}"
# Letters of the Latin (with accents), Greek and Cyrillic scripts, as explicit ranges: RE2
# compiles \pL into large tables on every call, which would cost more than the matching.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſΑ-ΩА-ЯЁ"
_LOWER = "a-zß-öø-ÿĀ-ſα-ωа-яё"
_LETTER = _UPPER + _LOWER
_NAME_WORD = rf"[{_UPPER}][{_LETTER}'’-]*\.?"
_PARTICLE = "van|von|de|der|den|da|di|du|del|della|la|le|bin|ibn|al|ten|ter|y"
_STREET = ("street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|court|ct|boulevard|blvd|place|pl|close|"
           "crescent|terrace|square|sq|parkway|gardens|row|hill|walk|mews")
_STRASSE = "straße|strasse|str\\.|weg|gasse|platz|allee|damm|laan|straat|gracht|rue|via|calle"

#: kind -> ((pattern name, RE2 regex matched against the trimmed value), ...); a value
#: matches a kind when it matches any of its patterns.
PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "national_id": (
        ("US SSN pattern (ddd-dd-dddd)", r"^\d{3}[- ]\d{2}[- ]\d{4}$"),
        ("UK National Insurance number pattern",
         r"^[A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z][A-CEGHJ-NPR-TW-Za-ceghj-npr-tw-z] ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]$"),
    ),
    "email": (("e-mail address pattern", r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[^@\s.\d]{2,}$"),),
    "ip": (
        ("IPv4 address pattern", rf"^({_OCTET}\.){{3}}{_OCTET}$"),
        ("IPv6 address pattern", rf"^(({_HEX}:){{7}}{_HEX}|({_HEX}(:{_HEX})*)?::({_HEX}(:{_HEX})*)?)$"),
    ),
    "phone": (
        ("international phone number pattern (+...)",
         r"^\+\d{1,3}[ .-]?(\(\d{1,4}\)[ .-]?)?\d{1,4}([ .-]?\d{2,5}){1,4}$"),
        ("phone number pattern with the area code in brackets", r"^(\+\d{1,3} ?)?\(\d{2,5}\) ?\d{3,4}[ .-]?\d{3,5}$"),
        ("North American phone number pattern (ddd-ddd-dddd)", r"^\d{3}[.-]\d{3}[.-]\d{4}$"),
        ("national phone number pattern (trunk 0)", r"^0[1-9]\d{1,3}[ /-]?\d{3,4}[ -]?\d{3,5}$"),
    ),
    "birth_date": (
        ("full date pattern (year first)",
         r"^(19|20)\d\d[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])([ T]00:00(:00(\.0+)?)?)?$"),
        ("full date pattern (day or month first)",
         r"^(0?[1-9]|[12]\d|3[01])[-/.](0?[1-9]|[12]\d|3[01])[-/.](19|20)\d\d$"),
    ),
    "address": (
        ("street address pattern (number first)",
         rf"^\d{{1,5}}[a-zA-Z]?,? ([{_LETTER}'.-]+ ){{1,4}}(?i:{_STREET})\b"),
        ("street address pattern (street first)", rf"^[{_LETTER} .'-]*(?i:{_STRASSE}) ?\d{{1,5}}[a-zA-Z]?\b"),
        ("UK postcode pattern", r"^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$"),
        ("Canadian postal code pattern", r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$"),
        ("US ZIP+4 code pattern", r"^\d{5}-\d{4}$"),
    ),
    "id_code": (
        ("code of letters and 5 or more digits", r"^[A-Za-z]{1,4}[-_/]?\d{5,12}[A-Za-z]?$"),
        ("code of digits with leading zeros", r"^0\d{4,11}$"),
    ),
    "username": (
        ("handle pattern (@...)", r"^@[A-Za-z0-9_.]{2,30}$"),
        ("username pattern (lower case with digits, '.' or '_')", r"^[a-z][a-z0-9]*([._][a-z0-9]+|\d+)[a-z0-9._]*$"),
    ),
    "code": (
        ("UUID pattern", r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"),
        ("code of letters and digits",
         r"^[A-Za-z0-9-]*(\d[A-Za-z0-9-]*[A-Za-z]|[A-Za-z][A-Za-z0-9-]*\d)[A-Za-z0-9-]*$"),
    ),
    "name": (
        ("two to four capitalised words", rf"^{_NAME_WORD}(,? ({_NAME_WORD}|{_PARTICLE})){{1,3}}$"),
        ("single capitalised words", rf"^[{_UPPER}][{_LOWER}]+([-'’][{_UPPER}][{_LOWER}]+)?$"),
        ("two to four words of letters in one case",
         rf"^([{_LOWER}'’-]+( [{_LOWER}'’-]+){{1,3}}|[{_UPPER}'’-]+( [{_UPPER}'’-]+){{1,3}})$"),
    ),
    "free_text": (("free text (six or more words)", r"^\S+(\s+\S+){5,}$"),),
}

#: At most this many distinct values (or this share of the values) make a column of categories.
CATEGORIES = 10
CATEGORY_SHARE = 0.05

#: Kinds whose every pattern needs a digit: skipped when too few values have one.
_NEED_DIGITS = frozenset({"national_id", "ip", "phone", "birth_date", "address", "id_code"})

#: kind -> values that match its patterns but are something else: file names are not usernames.
EXCLUDE: dict[str, str] = {
    "username": r"(?i)\.(png|jpe?g|gif|bmp|tiff?|webp|wav|mp3|mp4|txt|csv|json|xml|pdf|npy|npz|dcm|nii|gz)$",
}

#: kind -> share of distinct values among the non-empty ones that it also needs, so that a
#: category repeated down the column (a country, an occupation) is not an identifier.
UNIQUENESS: dict[str, float] = {"id_code": 0.9, "username": 0.5, "code": 0.9, "name": 0.3, "free_text": 0.3}
#: Single capitalised words, and words all in lower or upper case, are names only when more
#: varied still, like surnames or full names: (share of distinct values, least number).
SINGLE_WORD_NAMES = (0.25, 50)
ONE_CASE_NAMES = (0.5, 50)


@dataclass(frozen=True)
class ValueMatch:
    """Sampled values that match a kind: counts and shares, never the values."""

    kind: str
    pattern: str
    values: int
    matched: int
    distinct: int
    year_iqr: int | None = None

    @property
    def share(self) -> float:
        return self.matched / self.values if self.values else 0.0

    @property
    def label(self) -> str:
        return KINDS[self.kind]

    def evidence(self) -> str:
        text = (f"{self.matched:,} of {self.values:,} sampled non-empty values ({_percent(self.share)}) "
                f"match the {self.pattern}; {self.distinct:,} distinct")
        if self.year_iqr is not None:
            text += f"; the middle half of their years spans {self.year_iqr} years"
        return text


@dataclass(frozen=True)
class ValueScan:
    """What a column's sampled values showed: how many were non-empty, how many distinct
    (None for numbers: not counted), whether all were plain numbers (never flagged by
    value), and the kind they match."""

    values: int
    distinct: int | None
    numeric: bool
    match: ValueMatch | None = None


def _percent(share: float) -> str:
    """A share for a sentence: 100% and 0% only when exact (>99.9%, <0.1% otherwise)."""
    if share in (0.0, 1.0):
        return f"{share:.0%}"
    text = f"{share:.1%}"
    if text == "100.0%":
        return ">99.9%"
    if text == "0.0%":
        return "<0.1%"
    return text.replace(".0%", "%")


def _as_array(values: Values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = _string_array(values)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return values


def _string_array(values: Sequence[str | None]) -> pa.Array:
    """Python strings as an arrow string array, built from its buffers: ``pa.array`` on a
    list imports pandas (a quarter of a second) to check for pandas objects."""
    encoded = [None if v is None else str(v).encode("utf-8") for v in values]
    offsets = [0]
    for item in encoded:
        offsets.append(offsets[-1] + (len(item) if item is not None else 0))
    valid = bytearray((len(encoded) + 7) // 8)
    for i, item in enumerate(encoded):
        if item is not None:
            valid[i // 8] |= 1 << (i % 8)
    return pa.StringArray.from_buffers(
        len(encoded),
        pa.py_buffer(np.asarray(offsets, dtype=np.int32).tobytes()),
        pa.py_buffer(b"".join(item or b"" for item in encoded)),
        pa.py_buffer(bytes(valid)),
    )


class _Counts:
    """The distinct non-empty values of a column with how often each occurs: patterns run
    over the distinct values only, so a column of categories costs next to nothing."""

    def __init__(self, array: pa.Array) -> None:
        counted = pc.value_counts(array)
        values, counts = counted.field("values"), counted.field("counts")
        present = pc.invert(pc.match_substring_regex(values, _MISSING))
        self.values = pc.filter(values, present)
        self.counts = pc.filter(counts, present)
        self.n = int(pc.sum(self.counts).as_py() or 0)
        self.distinct = len(self.values)

    def match(self, regex: str) -> pa.Array:
        return pc.match_substring_regex(self.values, regex)

    def rows(self, mask: pa.Array) -> int:
        return int(pc.sum(pc.filter(self.counts, mask)).as_py() or 0)


def scan_values(values: Values, min_share: float = 0.5) -> ValueScan:
    """Match a column's sampled values (strings as the file holds them; None is missing)
    against :data:`PATTERNS`: the first kind, in :data:`KINDS` order, that at least
    ``min_share`` of the non-empty values match and that passes its uniqueness rule
    (:data:`UNIQUENESS`; dates of birth: years spanning :data:`MIN_BIRTH_YEAR_SPAN` or more).

    Values are trimmed; empty ones and the usual missing markers (``NA``, ``null``, ``?``,
    ``-``) are not counted. A column of plain numbers is numeric, and no pattern flags it.
    """
    array = pc.drop_null(_as_array(values))
    numbers = _numbers(array) if len(array) else None
    if numbers is not None:
        present = len(array) - _rows(pc.is_nan(numbers)) if numbers.type == pa.float64() else \
            len(array) - _rows(pc.match_substring_regex(array, _MISSING_TRIMMED))
        return ValueScan(values=present, distinct=None, numeric=present > 0)
    counts = _Counts(pc.utf8_trim_whitespace(array))
    n = counts.n
    if n == 0:
        return ValueScan(values=0, distinct=0, numeric=False)
    needed = max(1, math.ceil(min_share * n - 1e-9))
    digits = counts.rows(counts.match(r"\d")) >= needed
    at = counts.rows(pc.match_substring(counts.values, "@")) >= needed
    for kind, patterns in PATTERNS.items():
        if (kind in _NEED_DIGITS and not digits) or (kind == "email" and not at):
            continue
        masks = [counts.match(regex) for _, regex in patterns]
        if kind == "name":
            found = _names(counts, masks, needed)
        else:
            found = _kind(kind, counts, masks, needed)
        if found is not None:
            return ValueScan(values=n, distinct=counts.distinct, numeric=False, match=found)
    return ValueScan(values=n, distinct=counts.distinct, numeric=False)


def _numbers(array: pa.Array) -> pa.Array | None:
    """The values as float64 when every one is a plain number (NaN for missing), an array of
    flags when every one is a number or a missing marker, else None. Arrow's cast decides
    fast (once the first values show it can succeed: a failing cast costs as much as a full
    one); a leading '+' (a phone number) or a leading zero before a digit (a code) makes a
    value text."""
    head = array.slice(0, 64)
    if _rows(pc.match_substring_regex(head, _NUMBER_OR_MISSING)) < len(head):
        return None
    try:
        numbers = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        flags = pc.match_substring_regex(array, _NUMBER_OR_MISSING)
        return flags if _rows(flags) == len(array) else None
    if _rows(pc.starts_with(array, "+")):
        return None
    zeros = pc.filter(array, pc.starts_with(array, "0"))
    if len(zeros) and _rows(pc.match_substring_regex(zeros, _LEADING_ZERO)):
        return None
    return numbers


def _rows(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _union(masks: Sequence[pa.Array]) -> pa.Array:
    union = masks[0]
    for mask in masks[1:]:
        union = pc.or_(union, mask)
    return union


def _varied(counts: _Counts, share: float, least: int = MIN_VALUES) -> bool:
    return counts.n >= MIN_VALUES and counts.distinct >= max(least, share * counts.n)


def _kind(kind: str, counts: _Counts, masks: list[pa.Array], needed: int) -> ValueMatch | None:
    if kind in EXCLUDE:
        other = counts.match(EXCLUDE[kind])
        masks = [pc.and_not(mask, other) for mask in masks]
    union = _union(masks)
    matched = counts.rows(union)
    if matched < needed:
        return None
    if kind in UNIQUENESS and not _varied(counts, UNIQUENESS[kind]):
        return None
    iqr = None
    if kind == "birth_date":
        iqr = _year_iqr(pc.filter(counts.values, union), pc.filter(counts.counts, union))
        if iqr is None or iqr < MIN_BIRTH_YEAR_IQR:
            return None
    by_pattern = [counts.rows(mask) for mask in masks]
    pattern = PATTERNS[kind][by_pattern.index(max(by_pattern))][0]
    return ValueMatch(kind, pattern, counts.n, matched, counts.distinct, year_iqr=iqr)


def _names(counts: _Counts, masks: list[pa.Array], needed: int) -> ValueMatch | None:
    """Personal names: capitalised words, many distinct; single words (surnames) and words in
    one case (``ada lovelace``) must be more varied still, which categories rarely are."""
    labels = [label for label, _ in PATTERNS["name"]]
    if counts.n < MIN_VALUES or not _varied(counts, UNIQUENESS["name"]):
        return None
    several, single, one_case = (counts.rows(mask) for mask in masks)
    if several >= needed:
        return ValueMatch("name", labels[0], counts.n, several, counts.distinct)
    either = counts.rows(pc.or_(masks[0], masks[1]))
    if either >= needed and _varied(counts, *SINGLE_WORD_NAMES):
        return ValueMatch("name", labels[1] if single > several else labels[0], counts.n, either, counts.distinct)
    if one_case >= needed and _varied(counts, *ONE_CASE_NAMES):
        return ValueMatch("name", labels[2], counts.n, one_case, counts.distinct)
    return None


def _year_iqr(dates: pa.Array, counts: pa.Array) -> int | None:
    """Years between the first and the third quartile of the dates' years, each date
    weighted by how many rows hold it."""
    years = pc.struct_field(pc.extract_regex(dates, r"(?P<y>(?:19|20)\d\d)"), [0])
    keep = pc.is_valid(years)
    years = column_to_numpy(pa.chunked_array([pc.cast(pc.filter(years, keep), pa.int64())]))
    weights = column_to_numpy(pa.chunked_array([pc.cast(pc.filter(counts, keep), pa.int64())]))
    if len(years) == 0:
        return None
    order = np.argsort(years, kind="stable")
    years, cumulative = years[order], np.cumsum(weights[order])
    total = cumulative[-1]
    first, third = (int(years[np.searchsorted(cumulative, q * total)]) for q in (0.25, 0.75))
    return third - first


# --------------------------------------------------------------------------- both

@dataclass(frozen=True)
class Detection:
    """A column that looks like personal data, and why. ``kind`` is the values' kind when
    they match one (they are the stronger evidence), else the name's. ``scan`` is None when
    no values were looked at."""

    column: str
    kind: str
    by_name: NameMatch | None
    by_values: ValueMatch | None
    scan: ValueScan | None = None

    @property
    def label(self) -> str:
        return KINDS[self.kind]

    def evidence(self) -> str:
        """Why, in words: the name's tokens and the values' counts (never a value)."""
        parts = []
        if self.by_name is not None:
            said = "" if self.by_name.kind == self.kind else f" (suggests {self.by_name.label})"
            parts.append(f"name: {self.by_name.because}{said}")
        scan = self.scan
        if self.by_values is not None:
            parts.append(f"values: {self.by_values.evidence()}")
        elif scan is None:
            parts.append("values: not scanned")
        elif scan.numeric:
            parts.append(f"values: {scan.values:,} sampled, all plain numbers (never flagged by value alone)")
        elif scan.values:
            parts.append(f"values: no pattern fits enough of {scan.values:,} sampled non-empty values "
                         f"({scan.distinct:,} distinct)")
        else:
            parts.append("values: none sampled (all empty)")
        return "; ".join(parts)


def _categories(scan: ValueScan) -> bool:
    """Values that cannot be free text: numbers, or a few categories repeated down the column."""
    if scan.numeric:
        return True
    return scan.values >= MIN_VALUES and scan.distinct is not None and \
        scan.distinct <= max(CATEGORIES, CATEGORY_SHARE * scan.values)


def judge(column: str, scan: ValueScan | None) -> Detection | None:
    """Whether a column looks like personal data, from its name and its values' scan.

    A name that suggests free text (``text``, ``notes``) is overruled by values that are
    numbers or a few repeated categories (``score_text``: Low, Medium, High); other names
    stand whatever the values (a ``student_id`` of plain numbers is still an identifier).
    """
    by_name = match_name(column)
    if by_name is not None and by_name.kind == "free_text" and scan is not None and _categories(scan):
        by_name = None
    by_values = scan.match if scan is not None else None
    if by_values is not None:
        return Detection(column, by_values.kind, by_name, by_values, scan)
    if by_name is not None:
        return Detection(column, by_name.kind, by_name, None, scan)
    return None


def detect(column: str, values: Values | None = None, min_share: float = 0.5) -> Detection | None:
    """Whether a column looks like personal data, by its name and (when given) its values."""
    return judge(column, None if values is None else scan_values(values, min_share))
