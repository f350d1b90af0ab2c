"""The built-in "privacy" audit: every column of the data file that looks like personal data
is found, by its name and by the values of the first rows, and told apart by whether the
model is fed it; common non-identifier columns are left alone; and the report never shows a
value from the data, only column names, kinds, counts and shares.

The data is generated from small lists of real first and last names, with e-mail addresses,
phone numbers in several national formats, SSN- and National-Insurance-like numbers,
student numbers, addresses, dates of birth, IP addresses from the documentation ranges,
usernames and free-text comments.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import random
import re
import types
import unicodedata
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import assert_clean_input_error, invoke, read_report
from sklearn import datasets

from auditor.contract.context import AuditContext, Dataset, Groups, Predictions, Task
from auditor.loading.bundled import demo_files
from auditor.run.pipeline import RunConfig, execute
from auditor.testing import check_audit
from auditor_plugins.privacy.audit import PrivacyAudit, read_sample
from auditor_plugins.privacy.patterns import KINDS, detect, match_name, scan_values, tokens

AUDIT = PrivacyAudit()
DEFAULTS = PrivacyAudit.defaults()

FIRST = ("Ada", "Alan", "Grace", "Mary", "John", "Amira", "Kenji", "Olga", "Sven", "Fatima", "Luis", "Priya",
         "Chen", "Aisha", "Tom", "Nina", "Omar", "Sofia", "Lars", "Yuki", "Zoë", "Łukasz", "Siobhán", "José")
LAST = ("Lovelace", "Turing", "Hopper", "Smith", "Nguyen", "Müller", "O'Brien", "García", "Kowalski", "Okafor",
        "Schmidt", "Rossi", "Tanaka", "Ivanova", "Hansen", "Dubois", "Silva", "Khan", "Jones", "Patel",
        "van der Berg", "Fernández", "Andersson", "Wiśniewska")
STREETS = ("High", "Station", "Church", "Mill", "Park", "Victoria", "Green", "Manor", "Kings", "Queens")
DOMAINS = ("example.org", "student.example.ac.uk", "mail.example.com", "uni-example.de")
REMARKS = ("the lab ran over time again", "please share the slides before the lecture",
           "my flatmate and I could not open the quiz", "the reading list for week four is missing",
           "I was ill and missed the second assessment", "the feedback on my essay was very helpful")


def _ascii(text: str) -> str:
    return re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode())


def _phone(r: random.Random) -> str:
    """Phone numbers as people write them: UK drama numbers (Ofcom), US 555-01xx numbers."""
    return r.choice([
        f"+44 20 7946 {r.randint(0, 999):04d}",
        f"020 7946 {r.randint(0, 999):04d}",
        f"07700 900{r.randint(0, 999):03d}",
        f"({r.randint(201, 989)}) 555-01{r.randint(0, 99):02d}",
        f"{r.randint(201, 989)}-555-01{r.randint(0, 99):02d}",
        f"+1-{r.randint(201, 989)}-555-01{r.randint(0, 99):02d}",
        f"+49 30 {r.randint(100000, 999999)}",
    ])


def _ssn(r: random.Random) -> str:
    return f"{r.randint(100, 665):03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def _ni(r: random.Random) -> str:
    prefix = r.choice(["AB", "CE", "GH", "JK", "LM", "PR", "ST", "WX", "YZ"])
    return f"{prefix} {r.randint(0, 99):02d} {r.randint(0, 99):02d} {r.randint(0, 99):02d} {r.choice('ABCD')}"


def people(n: int = 400, seed: int = 0) -> dict[str, list[str]]:
    """``n`` generated people: one column per kind of identifier, as text."""
    r = random.Random(seed)
    columns: dict[str, list[str]] = {kind: [] for kind in
                                     ("name", "email", "phone", "ssn", "ni", "student_number", "address",
                                      "postcode", "birth_date", "ip", "username", "pseudonym", "free_text")}
    for _ in range(n):
        first, last = r.choice(FIRST), r.choice(LAST)
        columns["name"].append(f"{first} {r.choice('ABCDEFGHJKLMNPRSTW')}. {last}" if r.random() < 0.7
                               else f"{first} {last}")
        columns["email"].append(f"{_ascii(first)}.{_ascii(last)}{r.randint(1, 99)}@{r.choice(DOMAINS)}")
        columns["phone"].append(_phone(r))
        columns["ssn"].append(_ssn(r))
        columns["ni"].append(_ni(r))
        columns["student_number"].append(f"S{r.randint(1_000_000, 9_999_999)}")
        columns["address"].append(f"{r.randint(1, 250)} {r.choice(STREETS)} "
                                  f"{r.choice(['Street', 'Road', 'Avenue', 'Lane'])}, Leeds")
        columns["postcode"].append(f"{r.choice(['LS', 'SW', 'NW', 'EC', 'M', 'B'])}{r.randint(1, 20)} "
                                   f"{r.randint(1, 9)}{r.choice('ABDEFGHJLNP')}{r.choice('QRSTUWXYZ')}")
        year, month, day = r.randint(1945, 2004), r.randint(1, 12), r.randint(1, 28)
        columns["birth_date"].append(f"{year}-{month:02d}-{day:02d}" if r.random() < 0.5
                                     else f"{day:02d}/{month:02d}/{year}")
        columns["ip"].append(r.choice([f"192.0.2.{r.randint(1, 254)}", f"198.51.100.{r.randint(1, 254)}",
                                       f"203.0.113.{r.randint(1, 254)}", f"2001:db8::{r.randint(1, 65535):x}"]))
        columns["username"].append(f"{_ascii(first)}_{_ascii(last)}{r.randint(1, 999)}")
        columns["pseudonym"].append(str(uuid.UUID(int=r.getrandbits(128), version=4)))
        columns["free_text"].append(f"{first} wrote in week {r.randint(1, 12)} that {r.choice(REMARKS)}")
    return columns


# Which kind each generated column is found as, by its values alone.
VALUE_KINDS = {
    "name": "name", "email": "email", "phone": "phone", "ssn": "national_id", "ni": "national_id",
    "student_number": "id_code", "address": "address", "postcode": "address", "birth_date": "birth_date",
    "ip": "ip", "username": "username", "pseudonym": "code", "free_text": "free_text",
}


def identifier_strings(columns: dict[str, list[str]]) -> set[str]:
    return {value for values in columns.values() for value in values}


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("column, kind", [
    ("first_name", "name"), ("lastName", "name"), ("Surname", "name"), ("full_name", "name"), ("name", "name"),
    ("Vorname", "name"), ("Email", "email"), ("e_mail", "email"), ("E-Mail", "email"),
    ("emailAddress", "email"), ("phoneNumber", "phone"), ("telephone", "phone"), ("mobile_number", "phone"),
    ("Tel", "phone"), ("student_id", "id_code"), ("StudentNumber", "id_code"), ("matrikelnummer", "id_code"),
    ("Matrikel-Nr", "id_code"), ("employee_id", "id_code"), ("participant_id", "id_code"), ("ID", "id_code"),
    ("ssn", "national_id"), ("social_security_number", "national_id"), ("national_insurance_number", "national_id"),
    ("NI_number", "national_id"), ("passport_no", "national_id"), ("dob", "birth_date"),
    ("date_of_birth", "birth_date"), ("BirthDate", "birth_date"), ("postcode", "address"),
    ("zip_code", "address"), ("street_address", "address"), ("home_address", "address"), ("ip_address", "ip"),
    ("clientIp", "ip"), ("IPAddress", "ip"), ("username", "username"), ("user_id", "username"),
    ("userID", "username"), ("login", "username"), ("uuid", "code"), ("pseudonym", "code"),
    ("comments", "free_text"), ("free_text", "free_text"),
    ("notes", "free_text"),
])
def test_a_column_name_that_names_an_identifier_is_found_by_its_whole_words(column, kind):
    found = match_name(column)
    assert found is not None and found.kind == kind, (column, found)


def test_names_are_split_into_words_at_separators_case_changes_and_digits():
    assert tokens("phoneNumber") == ("phone", "number")
    assert tokens("E-Mail") == ("e", "mail")
    assert tokens("student_ID") == ("student", "id")
    assert tokens("IPAddress") == ("ip", "address")
    assert tokens("address1") == ("address", "1")
    assert tokens("mean radius") == ("mean", "radius")


UCI_ADULT = ("age", "workclass", "fnlwgt", "education", "education_num", "education-num", "marital_status",
             "marital-status", "occupation", "relationship", "race", "sex", "capital_gain", "capital-gain",
             "capital_loss", "capital-loss", "hours_per_week", "hours-per-week", "native_country",
             "native-country", "income")


def sklearn_columns() -> list[str]:
    return [name for load in (datasets.load_breast_cancer, datasets.load_diabetes, datasets.load_wine)
            for name in load().feature_names]


@pytest.mark.parametrize("column", UCI_ADULT + tuple(sklearn_columns()) + (
    "target", "label", "file_name", "feature_name", "country_name", "birth_weight", "mac_address", "mobile",
    "cell_count", "sin_hour", "grid_size", "fluid_volume", "idx", "hidden", "paid", "num_children",
))
def test_common_non_identifier_column_names_are_not_flagged(column):
    assert match_name(column) is None, column


@pytest.mark.parametrize("which, rows", [("data", 15_060), ("train_data", 20_000)])
def test_no_column_of_the_bundled_demo_is_flagged_by_name_or_values(which, rows):
    demo = getattr(demo_files(), which)  # the demo's audit data and its training data (25,638 rows)
    columns = pacsv.open_csv(pa.CompressedInputStream(pa.OSFile(str(demo)), "gzip")).schema.names
    sample = read_sample(demo, columns, DEFAULTS["sample_rows"])
    assert sample.rows == rows and not sample.problem
    assert sample.layout == "gzipped CSV, comma-delimited, UTF-8"
    assert len(columns) == 43 and {"age", "sex", "race", "capital-gain", "education-num"} <= set(columns)
    assert [c for c, s in zip(columns, sample.scans) if detect(c) or (s and s.match)] == []


@pytest.mark.parametrize("load", [datasets.load_breast_cancer, datasets.load_diabetes, datasets.load_wine])
def test_no_column_of_scikit_learns_bundled_data_is_flagged_by_name_or_values(load):
    bunch = load()
    for j, column in enumerate(bunch.feature_names):
        values = [repr(float(v)) for v in bunch.data[:, j]]
        assert detect(column, values) is None, column
    assert detect("target", [str(v) for v in bunch.target]) is None


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("generated, kind", sorted(VALUE_KINDS.items()))
def test_each_kind_is_found_by_its_values_alone_under_an_uninformative_name(generated, kind):
    values = people()[generated]
    found = detect("column_7", values)
    assert found is not None and found.kind == kind, (generated, found)
    assert found.by_name is None
    assert found.by_values.share >= 0.5 and found.by_values.values == 400
    assert found.label == KINDS[kind]


def test_the_evidence_gives_counts_shares_and_pattern_names_but_never_a_value():
    columns = people()
    for generated, values in columns.items():
        found = detect(generated, values)
        text = found.evidence()
        assert "sampled non-empty values" in text and "distinct" in text, text
        assert not [v for v in values if v in text], generated
        assert not [part for v in values for part in v.split() if len(part) > 3 and part in text], (generated, text)


def test_values_flag_a_column_only_when_at_least_min_share_of_the_non_empty_ones_match():
    emails = people(500)["email"]
    values = emails[:200] + ["n/a"] * 100 + [str(i) for i in range(300, 600)] + [""] * 50
    scan = scan_values(values)  # 200 e-mails of 500 non-empty values: 40%
    assert scan.values == 500 and scan.match is None
    scan = scan_values(values, min_share=0.4)
    assert scan.match.kind == "email" and scan.match.matched == 200 and scan.match.share == pytest.approx(0.4)


@pytest.mark.parametrize("values", [
    [str(4_155_550_000 + 37 * i) for i in range(400)],             # 10-digit readings
    [f"{1000 + 7.3 * i:.2f}" for i in range(400)],                 # decimals
    [str(v) for v in np.random.default_rng(0).normal(size=400)],   # measurements, some in 1e-05 form
    [str(10_000_000 + i) for i in range(400)],                     # a running number
])
def test_numeric_measurement_columns_are_never_flagged_by_their_values(values):
    scan = scan_values(values)
    assert scan.numeric and scan.match is None
    assert detect("reading", values) is None


def test_categories_event_dates_and_short_answers_are_not_identifiers():
    r = random.Random(1)
    cases = {
        "country": [r.choice(["United-States", "Mexico", "Germany", "India", "Philippines"]) for _ in range(400)],
        "city": [r.choice(["New York", "Los Angeles", "San Francisco", "Las Vegas"]) for _ in range(400)],
        "enrolled_on": [f"20{r.randint(19, 21)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}" for _ in range(400)],
        "answer": [r.choice(["Strongly agree with the statement above", "I do not agree with this at all"])
                   for _ in range(400)],
        "grade": [r.choice(["A", "B", "C", "D", "E", "F"]) for _ in range(400)],
        "started": [f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}" for _ in range(400)],
        "score_text": [r.choice(["Low", "Medium", "High"]) for _ in range(400)],
    }
    for column, values in cases.items():
        assert detect(column, values) is None, column


def test_dates_of_birth_are_told_from_event_dates_by_how_their_years_spread():
    found = detect("column_3", people()["birth_date"])
    assert found.kind == "birth_date" and found.by_values.year_iqr >= 8
    assert "the middle half of their years spans" in found.evidence()


def test_codes_with_leading_zeros_and_plus_signs_are_text_not_numbers():
    r = random.Random(2)
    codes = [f"00{r.randint(100_000, 999_999)}" for _ in range(400)]
    assert detect("column_1", codes).kind == "id_code"
    phones = [f"+4477009{r.randint(10_000, 99_999)}" for _ in range(400)]
    assert detect("column_2", phones).kind == "phone"


def test_court_case_numbers_and_hashes_are_codes_but_file_names_are_not_usernames():
    r = random.Random(3)
    cases = [f"{r.randint(10, 16)}0{r.randint(10_000, 99_999)}CF10A" for _ in range(400)]
    assert detect("c_case_number", cases).kind == "code"
    assert detect("column_4", [f"{r.getrandbits(48):012x}" for _ in range(400)]).kind == "code"
    assert detect("column_5", [f"img_{i:05d}.png" for i in range(400)]) is None
    assert detect("column_6", [f"scan-{i % 12}" for i in range(400)]) is None  # repeated: not an identifier


def test_missing_values_are_not_counted():
    values = people(100)["email"] + [None, "", "  ", "NA", "null", "?"] * 50
    scan = scan_values(values)
    assert scan.values == 100 and scan.match.kind == "email" and scan.match.share == 1.0


# --------------------------------------------------------------------------- the audit, end to end


def write_table(columns: dict[str, list], path: Path) -> Path:
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".gz":
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(table, buffer)
        path.write_bytes(gzip.compress(buffer.getvalue().to_pybytes(), mtime=0))
    else:
        pacsv.write_csv(table, path)
    return path


class PassModel(torch.nn.Module):
    """Logistic regression on standardised inputs."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = torch.nn.Linear(mean.numel(), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)


STUDENT_FEATURES = ["hours_studied", "attendance", "student_id"]


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Course data of 400 students: a model trained (badly: the way it happens) on two real
    features and the numeric student ID, and a file that also holds every kind of identifier."""
    folder = tmp_path_factory.mktemp("students")
    rng = np.random.default_rng(0)
    n = 400
    hours = rng.gamma(4.0, 2.5, n).round(1)
    attendance = rng.uniform(0.4, 1.0, n).round(2)
    student_id = rng.choice(np.arange(2_100_000, 2_400_000), n, replace=False)
    passed = (hours / 10 + attendance + rng.normal(0, 0.3, n) > 1.5).astype(np.int64)
    X = np.column_stack([hours, attendance, student_id]).astype(np.float32)
    torch.manual_seed(0)
    Xt = torch.tensor(X)
    module = PassModel(Xt.mean(0), Xt.std(0))
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(100):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(
            module(Xt)[:, 0], torch.tensor(passed, dtype=torch.float32)).backward()
        optimiser.step()
    meta = {"feature_names": STUDENT_FEATURES, "target": "outcome", "class_names": ["failed", "passed"]}
    torch.jit.save(torch.jit.script(module.eval()), str(folder / "model.pt"),
                   _extra_files={"auditor.json": json.dumps(meta)})
    identifiers = people(n)
    outcome = np.where(passed == 1, "passed", "failed")
    columns = {"hours_studied": hours, "attendance": attendance, "student_id": student_id, "outcome": outcome,
               **{f"contact_{name}" if name in {"phone"} else name: values for name, values in identifiers.items()}}
    data = write_table(columns, folder / "course.csv")
    return types.SimpleNamespace(folder=folder, model=folder / "model.pt", data=data, identifiers=identifiers,
                                 columns=columns)


@pytest.fixture(scope="module")
def student_report(students, tmp_path_factory):
    out = tmp_path_factory.mktemp("student_report")
    result = invoke(students.model, "--data", students.data, "--out", out, "-q", "--audits", "privacy",
                    "--format", "json,md,html")
    assert result.exit_code == 0, result.output
    return out, read_report(out)["audits"]["privacy"]


def scanned_files(privacy) -> list[dict]:
    table = next(t for t in privacy["tables"] if t["name"] == "scanned_files")
    assert table["title"] == "Data files scanned"
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


def table_rows(privacy) -> list[dict]:
    table = next(t for t in privacy["tables"] if t["name"] == "personal_data_columns")
    assert table["title"] == "Columns that look like personal data"
    assert table["columns"] == ["Column", "Looks like", "Evidence", "Role", "Fed to the model", "File"]
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


def test_an_identifier_fed_to_the_model_warns_and_says_how_to_fix_it(student_report):
    _, privacy = student_report
    assert privacy["status"] == "warn"
    warnings = [f for f in privacy["findings"] if f["severity"] == "warning"]
    assert [f["code"] for f in warnings] == ["identifier-fed-to-model"]
    message = warnings[0]["message"]
    assert "'student_id'" in message and "student/staff or other ID number" in message
    assert "--features" in message and "retrain" in message
    assert privacy["metrics"]["flagged_fed_to_model"]["value"] == 1


def test_every_identifier_column_the_model_does_not_see_is_one_info_finding(student_report, students):
    _, privacy = student_report
    infos = [f for f in privacy["findings"] if f["severity"] == "info"]
    assert [f["code"] for f in infos] == ["identifier-in-data"]
    message = infos[0]["message"]
    assert "pseudonymise" in message and "13 columns" in message
    rows = table_rows(privacy)
    assert len(rows) == 14 == privacy["metrics"]["flagged_columns"]["value"]
    by_column = {row["Column"]: row for row in rows}
    assert by_column["'student_id'"]["Role"] == "fed to the model"
    assert by_column["'student_id'"]["Fed to the model"] == "yes"
    expected = {"name": "personal name", "email": "e-mail address", "contact_phone": "phone number",
                "ssn": "national ID number", "ni": "national ID number", "birth_date": "date of birth",
                "student_number": "student/staff or other ID number", "address": "postal address or postcode",
                "postcode": "postal address or postcode", "ip": "IP address", "username": "username or user ID",
                "pseudonym": "other ID code or pseudonymous key", "free_text": "free text"}
    for column, label in expected.items():
        row = by_column[f"'{column}'"]
        assert (row["Looks like"], row["Role"], row["Fed to the model"]) == (label, "not used", "no"), column
    assert "'hours_studied'" not in by_column and "'outcome'" not in by_column


def test_the_summary_names_the_column_fed_to_the_model_and_the_rows_checked(student_report):
    _, privacy = student_report
    summary = privacy["summary"]
    assert summary.startswith("14 of 17 columns look like personal data")
    assert "'student_id'" in summary and "all 400 rows" in summary
    assert privacy["metrics"]["columns_scanned"]["value"] == 17
    assert privacy["metrics"]["rows_sampled"]["value"] == 400


def as_read(name: str, text: str) -> str:
    """A written report as its reader sees it: JSON strings decoded, HTML entities and
    Markdown escapes undone (``O&#39;Brien``, ``ada\\_lovelace``, ``Zo\\u00eb`` are leaks too)."""
    if name.endswith(".json"):
        return json.dumps(json.loads(text), ensure_ascii=False)
    text = html.unescape(text)
    return re.sub(r"\\(.)", r"\1", text) if name.endswith(".md") else text


def test_no_value_from_the_data_appears_anywhere_in_the_written_report(student_report, students):
    out, _ = student_report
    written = {path.name: as_read(path.name, path.read_text(encoding="utf-8"))
               for path in sorted(out.rglob("*")) if path.is_file()}
    assert {"report.json", "report.md", "report.html"} <= set(written)
    values = identifier_strings(students.identifiers)
    assert len(values) > 3_000
    for name, text in written.items():
        leaked = sorted(v for v in values if v in text)
        assert not leaked, (name, leaked[:5])
        # the student IDs fed to the model, as whole numbers (not inside longer figures)
        ids = [str(v) for v in students.columns["student_id"]
               if re.search(rf"(?<![\w.]){v}(?![\w])", text)]
        assert not ids, (name, ids[:5])
    assert all("'student_id'" in written[name] for name in ("report.json", "report.md", "report.html"))


def test_an_email_column_next_to_the_features_gives_only_the_info_finding(tmp_path, breast_cancer):
    frame = breast_cancer.frame.copy()
    frame["email"] = people(len(frame))["email"]
    data = tmp_path / "with_email.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", data, "--features", ",".join(breast_cancer.features),
                    "--out", out, "-q", "--audits", "privacy", "--format", "json")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    assert privacy["status"] == "pass"
    assert [(f["severity"], f["code"]) for f in privacy["findings"]] == [("info", "identifier-in-data")]
    assert "'email' (e-mail address; not used)" in privacy["findings"][0]["message"]
    assert [row["Column"] for row in table_rows(privacy)] == ["'email'"]


def test_a_file_without_personal_data_passes_and_says_how_much_was_scanned(tmp_path, breast_cancer):
    out = tmp_path / "out"
    result = invoke(breast_cancer.folder / "model.pt", "--data", breast_cancer.folder / "test.csv", "--out", out,
                    "-q", "--audits", "privacy", "--format", "json")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    assert privacy["status"] == "pass" and privacy["findings"] == []
    assert privacy["summary"] == ("No column looks like personal data: 31 columns judged by name and by the "
                                  "values of all 228 rows.")
    assert [t["name"] for t in privacy["tables"]] == ["scanned_files"]
    assert scanned_files(privacy) == [{
        "File": "test.csv", "Role": "audit data (--data)", "Read as": "CSV, comma-delimited, UTF-8",
        "Columns judged by name": 31, "Columns judged by values": 31, "Rows scanned": 228, "Rows in the file": 228}]


def test_roles_say_whether_a_flagged_column_is_a_feature_the_target_sensitive_or_named(tmp_path):
    generated = people(60)
    rng = np.random.default_rng(0)
    columns = {"student_id": np.arange(1_000_000, 1_000_060), "hours": rng.uniform(0, 20, 60).round(1),
               "home_postcode": generated["postcode"], "date_of_birth": generated["birth_date"],
               "student_number": generated["student_number"], "email": generated["email"]}
    path = write_table(columns, tmp_path / "roles.csv")
    n = 60
    data = Dataset(path=str(path), sha256="0" * 64, n_rows=n, columns=list(columns),
                   feature_names=["student_id", "hours"], X=np.zeros((n, 2), np.float32),
                   target_name="home_postcode", y=np.zeros(n, np.int64),
                   named={"student_number": np.array(generated["student_number"], dtype=object)})
    sensitive = {"date_of_birth": Groups("date_of_birth", np.zeros(n, np.int64), ("all",), binned="quartiles")}
    ctx = AuditContext(model=types.SimpleNamespace(module=torch.nn.Identity()), data=data,
                       task=Task("binary", ("a", "b"), "logits", 1),
                       predictions=Predictions(raw=np.zeros((n, 1), np.float32)), sensitive=sensitive)
    result = check_audit(AUDIT, ctx)
    roles = {row[0]: row[3] for row in result.tables[0].rows}
    assert roles == {"'student_id'": "fed to the model", "'home_postcode'": "target",
                     "'date_of_birth'": "sensitive attribute", "'student_number'": "named by an audit option",
                     "'email'": "not used"}
    assert result.status == "warn"


def test_ignored_columns_are_not_judged_and_the_note_says_so(tmp_path, students):
    out = tmp_path / "out"
    result = invoke(students.model, "--data", students.data, "--out", out, "-q", "--audits", "privacy",
                    "--format", "json", "-o", "privacy.ignore=student_id, email ,no_such_column")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    assert privacy["status"] == "pass"
    flagged = [row["Column"] for row in table_rows(privacy)]
    assert "'student_id'" not in flagged and "'email'" not in flagged and len(flagged) == 12
    note = next(n for n in privacy["notes"] if "privacy.ignore" in n)
    assert "'student_id' and 'email'" in note and "'no_such_column'" in note


def test_only_the_first_sample_rows_are_read(tmp_path):
    generated = people(300)
    columns = {"x": np.arange(300, dtype=np.float64), "target": np.arange(300) % 2,
               "contact": [""] * 150 + generated["email"][:150]}
    path = write_table(columns, tmp_path / "late.csv")
    header = list(columns)
    late = read_sample(path, header, 100)
    assert late.rows == 100 and late.scans[2].values == 0 and late.scans[2].match is None
    whole = read_sample(path, header, 20_000)
    assert whole.rows == 300 and whole.scans[2].match.kind == "email"


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_csv_gzipped_csv_and_parquet_are_scanned_alike(tmp_path, students, suffix):
    path = write_table(students.columns, tmp_path / f"course{suffix}")
    header = list(students.columns)
    sample = read_sample(path, header, 20_000)
    assert not sample.problem and sample.rows == 400
    kinds = {c: (s.match.kind if s.match else None, s.numeric) for c, s in zip(header, sample.scans)}
    assert kinds["student_id"] == (None, True) and kinds["hours_studied"] == (None, True)
    for column, kind in VALUE_KINDS.items():
        assert kinds["contact_phone" if column == "phone" else column] == (kind, False), column


def test_hostile_column_names_are_reported_as_names_and_break_nothing(tmp_path, students):
    generated = students.identifiers
    columns = {name: students.columns[name] for name in (*STUDENT_FEATURES, "outcome")}
    columns.update({"<script>alert(1)</script>": generated["email"], "a|b": generated["phone"],
                    "first\nname": generated["name"]})
    for path in (write_table(columns, tmp_path / "hostile.parquet"),
                 write_table({k: v for k, v in columns.items() if "\n" not in k}, tmp_path / "hostile.csv")):
        out = tmp_path / path.suffix.lstrip(".")
        result = invoke(students.model, "--data", path, "--out", out, "-q", "--audits", "privacy",
                        "--format", "json,md,html")
        assert result.exit_code == 0, result.output
        privacy = read_report(out)["audits"]["privacy"]
        flagged = {row["Column"]: row["Looks like"] for row in table_rows(privacy)}
        assert flagged["'<script>alert(1)</script>'"] == "e-mail address"
        assert flagged["'a|b'"] == "phone number"
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        markdown = (out / "report.md").read_text(encoding="utf-8")
        assert "| 'a\\|b' | phone number |" in markdown
        if path.suffix == ".parquet":
            assert flagged["'first\\nname'"] == "personal name"  # the newline shown as an escape, on one line
            assert all("first\nname" not in text for text in (html, markdown))


def test_a_repeated_header_name_is_judged_copy_by_copy(tmp_path, students):
    generated = students.identifiers
    header = [*STUDENT_FEATURES, "outcome", "email", "email", "notes"]
    rows = zip(*(students.columns[name] for name in (*STUDENT_FEATURES, "outcome")), generated["email"],
               reversed(generated["email"]), ["ok"] * 400)
    path = tmp_path / "repeated.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    out = tmp_path / "out"
    result = invoke(students.model, "--data", path, "--out", out, "-q", "--audits", "privacy", "--format", "json")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    # "notes" holds one repeated word: a name that suggests free text is overruled by such values
    assert [row["Column"] for row in table_rows(privacy)] == ["'student_id'", "'email' (column 5)",
                                                              "'email' (column 6)"]


def test_a_file_that_cannot_be_read_again_is_judged_by_names_and_says_so_without_quoting_it(tmp_path):
    path = tmp_path / "gone.csv"
    path.write_text("email,x\n\"unterminated, quote and a value: ada@example.org\n", encoding="utf-8")
    n = 1
    data = Dataset(path=str(path), sha256="0" * 64, n_rows=n, columns=["email", "x"], feature_names=["x"],
                   X=np.zeros((n, 1), np.float32))
    ctx = AuditContext(model=types.SimpleNamespace(module=torch.nn.Identity()), data=data,
                       task=Task("regression", (), "values", 1), predictions=Predictions(raw=np.zeros((n, 1))))
    result = AUDIT.run(ctx, DEFAULTS)
    assert result.status == "pass" and result.tables[0].rows[0][:2] == ["'email'", "e-mail address"]
    assert "values: not scanned" in result.tables[0].rows[0][2]
    assert "judged by name only (the file could not be read again for its values)" in result.summary
    text = json.dumps(result.to_dict())
    assert ("The values of gone.csv could not be sampled (A row of gone.csv has 1 fields where the header has 2); "
            "its columns were judged by their names only.") in text
    assert "ada@example.org" not in text and "unterminated" not in text
    assert [row[2:] for row in result.tables[-1].rows] == [
        ["not read: A row of gone.csv has 1 fields where the header has 2", 2, 0, 0, 1]]
    assert result.metrics["rows_sampled"].value == 0


@pytest.mark.parametrize("option, fragment", [
    ("privacy.sample_rows=10", "privacy.sample_rows"),
    ("privacy.sample_rows=lots", "privacy.sample_rows"),
    ("privacy.min_share=0", "privacy.min_share"),
    ("privacy.min_share=1.5", "privacy.min_share"),
    ("privacy.min_share=-0.1", "privacy.min_share"),
])
def test_bad_option_values_are_input_errors(tmp_path, students, option, fragment):
    result = invoke(students.model, "--data", students.data, "--out", tmp_path / "out", "-q", "-o", option)
    assert_clean_input_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_the_audit_needs_nothing_and_declares_its_options():
    assert AUDIT.name == "privacy" and AUDIT.needs == ()
    options = {o.name: o for o in AUDIT.options}
    assert set(options) == {"sample_rows", "min_share", "ignore"}
    assert (options["sample_rows"].type, options["sample_rows"].default, options["sample_rows"].min) == ("int", 20_000, 100)
    assert (options["min_share"].type, options["min_share"].default, options["min_share"].max) == ("float", 0.5, 1.0)
    assert (options["ignore"].type, options["ignore"].default) == ("str", "")


def test_a_real_run_conforms_without_calling_the_model_and_is_deterministic(students):
    ctx = execute(RunConfig(model=students.model, data=students.data, audits=["privacy"]),
                  {"privacy": AUDIT}).context
    first = check_audit(AUDIT, ctx)  # never calls the model; two runs identical; JSON round trip
    again = check_audit(AUDIT, ctx)
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    assert first.status == "warn"


# --------------------------------------------------------------------------- every file, read as the loader reads it


def write_csv(columns: dict[str, list], path: Path, *, delimiter: str = ",", encoding: str = "utf-8",
              gzipped: bool = False) -> Path:
    """A CSV file written with the csv module (not pyarrow), in any delimiter and encoding;
    ``utf-16-le-bom`` is UTF-16 little-endian with its byte-order mark, as Excel writes it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))
    text = buffer.getvalue()
    data = b"\xff\xfe" + text.encode("utf-16-le") if encoding == "utf-16-le-bom" else text.encode(encoding)
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
    return path


def planted(students, n: int = 400) -> dict[str, list]:
    """The students' features and outcome, plus e-mails and personal names (Latin-1 letters
    only, so that a Latin-1 file can hold them) under names that say nothing: only the values
    can flag them."""
    names = [name for name in people(3 * n, seed=5)["name"] if name.encode("latin-1", "ignore").decode("latin-1")
             == name][:n]
    assert len(names) == n and any(ch in "".join(names) for ch in "üéëáí")
    return {**{name: list(students.columns[name]) for name in (*STUDENT_FEATURES, "outcome")},
            "col_a": people(n, seed=6)["email"], "col_b": names}


FORMATS = {  # file name: (how it is written, how the report says it was read)
    "semicolon.csv": (dict(delimiter=";"), "CSV, semicolon-delimited, UTF-8"),
    "tab.tsv": (dict(delimiter="\t"), "CSV, tab-delimited, UTF-8"),
    "pipe.csv": (dict(delimiter="|"), "CSV, pipe-delimited, UTF-8"),
    "utf16.csv": (dict(encoding="utf-16-le-bom"), "CSV, comma-delimited, UTF-16"),
    "bom.csv": (dict(encoding="utf-8-sig", delimiter=";"), "CSV, semicolon-delimited, UTF-8"),
    "latin1.csv": (dict(encoding="latin-1"), "CSV, comma-delimited, UTF-8; 1 column not UTF-8, scanned as Latin-1"),
    "semicolon.csv.gz": (dict(delimiter=";", gzipped=True), "gzipped CSV, semicolon-delimited, UTF-8"),
    "table.parquet": (None, "Parquet"),
}


@pytest.mark.parametrize("file_name", sorted(FORMATS))
def test_every_delimiter_encoding_and_format_the_loader_reads_is_scanned_by_value(tmp_path, students, file_name):
    how, read_as = FORMATS[file_name]
    columns = planted(students)
    path = tmp_path / file_name
    write_table(columns, path) if how is None else write_csv(columns, path, **how)
    # the loader reads it, and the audit's reader sees the same header and rows
    from auditor.loading.data import load_data
    from auditor.loading.sample_rows import read_table

    loaded = load_data(path, target="outcome", features=STUDENT_FEATURES, metadata={}).dataset
    rows = read_table(path)
    assert rows.columns == loaded.columns == list(columns) and rows.table.num_rows == loaded.n_rows == 400
    assert rows.complete and rows.layout == read_as.split(";")[0]

    out = tmp_path / "out"
    result = invoke(students.model, "--data", path, "--out", out, "-q", "--audits", "privacy", "--format", "json")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    flagged = {row["Column"]: row for row in table_rows(privacy)}
    for column, label in (("'col_a'", "e-mail address"), ("'col_b'", "personal name")):
        row = flagged[column]
        assert (row["Looks like"], row["Role"], row["File"]) == (label, "not used", file_name), row
        assert "of 400 sampled non-empty values" in row["Evidence"], row  # found by the values, not the name
    info = next(f for f in privacy["findings"] if f["code"] == "identifier-in-data")
    assert info["message"].startswith(f"The audit data file {file_name} (--data) holds 2 columns")
    assert "'col_a' (e-mail address; not used)" in info["message"]
    assert scanned_files(privacy) == [{
        "File": file_name, "Role": "audit data (--data)", "Read as": read_as, "Columns judged by name": 6,
        "Columns judged by values": 6, "Rows scanned": 400, "Rows in the file": 400}]
    assert privacy["summary"].endswith("judged by name and by the values of all 400 rows; the model is fed 1 of "
                                       "them: 'student_id'.")


def test_a_value_only_in_the_training_data_is_found_and_named_with_its_file(tmp_path, students):
    columns = planted(students)
    test = write_csv({**columns, "col_a": ["ok", "late"] * 200, "col_b": ["x"] * 400}, tmp_path / "course.csv",
                     delimiter=";")
    train = write_csv(columns, tmp_path / "train.tsv", delimiter="\t")
    out = tmp_path / "out"
    result = invoke(students.model, "--data", test, "--train-data", train, "--out", out, "-q",
                    "--audits", "privacy", "--format", "json,md,html")
    assert result.exit_code == 0, result.output
    privacy = read_report(out)["audits"]["privacy"]
    assert [(row["File"], row["Column"], row["Looks like"]) for row in table_rows(privacy)] == [
        ("course.csv", "'student_id'", "student/staff or other ID number"),
        ("train.tsv", "'student_id'", "student/staff or other ID number"),
        ("train.tsv", "'col_a'", "e-mail address"),
        ("train.tsv", "'col_b'", "personal name"),
    ]
    warning, info = privacy["findings"]
    assert warning["code"] == "identifier-fed-to-model"
    assert warning["message"].startswith("The model is fed 'student_id' (a column of course.csv and train.tsv)")
    assert info["code"] == "identifier-in-data" and info["message"].startswith(
        "The training data file train.tsv (--train-data) holds 2 columns that look like personal data but that "
        "the model is not fed: 'col_a' (e-mail address; not used) and 'col_b' (personal name; not used).")
    assert privacy["summary"] == (
        "3 of 6 columns look like personal data (student/staff or other ID number; e-mail address; personal "
        "name), judged by name and by the values of all 400 rows of course.csv and all 400 rows of train.tsv; "
        "the model is fed 1 of them: 'student_id'.")
    assert [(f["File"], f["Role"], f["Read as"], f["Rows scanned"]) for f in scanned_files(privacy)] == [
        ("course.csv", "audit data (--data)", "CSV, semicolon-delimited, UTF-8", 400),
        ("train.tsv", "training data (--train-data)", "CSV, tab-delimited, UTF-8", 400)]
    metrics = {key: metric["value"] for key, metric in privacy["metrics"].items()}
    assert metrics == {"flagged_columns": 3, "flagged_fed_to_model": 1, "columns_scanned": 6, "rows_sampled": 400,
                       "train_columns_scanned": 6, "train_rows_sampled": 400}
    written = (out / "report.md").read_text(encoding="utf-8") + (out / "report.html").read_text(encoding="utf-8")
    assert "train.tsv" in written
    leaked = [value for value in columns["col_a"] + columns["col_b"] if value in html.unescape(written)]
    assert not leaked, leaked[:3]


def test_training_data_the_loader_refuses_stops_the_run_before_any_report(tmp_path, students):
    columns = planted(students)
    test = write_csv(columns, tmp_path / "course.csv")
    train = tmp_path / "train.csv"
    train.write_bytes(test.read_text(encoding="utf-8").encode("utf-16-le"))  # no byte-order mark
    out = tmp_path / "out"
    result = invoke(students.model, "--data", test, "--train-data", train, "--out", out, "-q",
                    "--audits", "privacy", "--format", "json")
    assert_clean_input_error(result, "NUL bytes")
    assert not out.exists()


@pytest.mark.parametrize("content, reason", [
    (lambda text: text.encode("utf-16-le"), "holds NUL bytes"),               # UTF-16 without a byte-order mark
    (lambda text: b"\x89PNG\r\n\x1a\n" + bytes(64), "is a PNG image"),       # an image
    (lambda text: b"", "is empty (0 bytes)"),
    (lambda text: b"\n" + text.encode(), "has no header row"),
])
def test_a_file_the_loader_refuses_is_never_reported_as_scanned(tmp_path, students, content, reason):
    columns = planted(students, 60)
    test = write_csv(columns, tmp_path / "course.csv")
    refused = tmp_path / "train.csv"
    refused.write_bytes(content(test.read_text(encoding="utf-8")))
    from auditor.contract.context import TrainData
    from auditor.contract.errors import DataError
    from auditor.loading.data import load_data

    with pytest.raises(DataError):
        load_data(refused, target="outcome", features=STUDENT_FEATURES, metadata={})

    def dataset(path: Path) -> Dataset:
        return Dataset(path=str(path), sha256="0" * 64, n_rows=60, columns=list(columns),
                       feature_names=STUDENT_FEATURES, X=np.zeros((60, 3), np.float32), target_name="outcome")

    ctx = AuditContext(model=types.SimpleNamespace(module=torch.nn.Identity()), data=dataset(test),
                       task=Task("binary", ("failed", "passed"), "logits", 1),
                       predictions=Predictions(raw=np.zeros((60, 1), np.float32)),
                       train=TrainData(data=dataset(refused), predictions=Predictions(raw=np.zeros((60, 1)))))
    result = check_audit(AUDIT, ctx)
    files = {row[0]: row for row in result.tables[-1].rows}
    assert files["course.csv"][2:] == ["CSV, comma-delimited, UTF-8", 6, 6, 60, 60]
    read_as, by_name, by_values, scanned, _ = files["train.csv"][2:]
    assert read_as.startswith("not read: ") and reason in read_as, read_as
    assert (by_name, by_values, scanned) == (6, 0, 0)
    assert (result.metrics["rows_sampled"].value, result.metrics["train_rows_sampled"].value) == (60, 0)
    assert result.summary.endswith("judged by name and by the values of all 60 rows of course.csv, and by name "
                                   "only in train.csv (not readable for its values); the model is fed 1 of them: "
                                   "'student_id'.")
    assert any(note.startswith("The values of train.csv could not be sampled (") for note in result.notes)
    assert ("Every column of train.csv, the training data (--train-data), is judged the same way, by name only "
            "(the file could not be read again for its values).") in result.notes
    # the refused file's columns are judged by name only: the planted values are not found there
    assert [(row[5], row[0]) for row in result.tables[0].rows] == [
        ("course.csv", "'student_id'"), ("course.csv", "'col_a'"), ("course.csv", "'col_b'"),
        ("train.csv", "'student_id'")]
