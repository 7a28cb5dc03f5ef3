"""``dancu reconcile run`` on an extract whose headers no vocabulary knows ("col1".."col8", or
English words of the agency's own: "Surname and forename", "NationalNo"), against a synthetic
register (a population file): the columns are recognised by their values, the mapping is
printed with how each column was found, and the verdicts agree with the ground truth, though
the numbers are spaced or dashed, the dates written d-m-yyyy, two names in five written given
name first, and children are there beside adults. An extract with no column of names stops
with one clear message naming the missing field; two name columns are named as candidates
and --column settles it."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dancu.cli import app
from dancu.reconcile.fields import FIELDS
from dancu.reconcile.synth_extract import generate_extract
from dancu.registry.synth_population import generate_population

runner = CliRunner()
AS_OF = date(2026, 11, 1)
HEADERS = {
    "numbered": tuple(f"col{i}" for i in range(1, 9)),
    "english": (
        "Record",
        "Surname and forename",
        "DOB",
        "Gender",
        "NationalNo",
        "Old card",
        "Home",
        "Region",
    ),
}
# How each field's column is found under each set of headers (DOB and Gender are headers of
# the vocabulary; everything else only the values tell).
FOUND = {
    "numbered": dict.fromkeys(FIELDS, "its values"),
    "english": {
        **dict.fromkeys(FIELDS, "its values"),
        "birth_date": "its header",
        "sex": "its header",
    },
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A register and an extract drawn from it (English headers), with its ground truth."""
    root = tmp_path_factory.mktemp("reconcile-cli")
    population = root / "people.parquet"
    generate_population(900, 8, population, as_of=AS_OF)
    generated = root / "generated.csv"
    generate_extract(population, 300, generated, seed=8, headers="en")
    with generated.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    truth = pq.read_table(root / "generated.truth.parquet").to_pylist()
    return {"root": root, "population": population, "rows": rows, "truth": truth}


def _spaced(number: str, rnd: random.Random) -> str:
    digits = re.sub(r"\D", "", number)
    if len(digits) != 12:
        return number
    return rnd.choice((" ", "-")).join(digits[i : i + 3] for i in range(0, 12, 3))


def _day_month_year(text: str) -> str:
    """A full date as d-m-yyyy (the year alone stays)."""
    if m := re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", text):
        return f"{int(m[3])}-{int(m[2])}-{m[1]}"
    if m := re.fullmatch(r"(\d\d?)/(\d\d?)/(\d{4})", text):
        return f"{int(m[1])}-{int(m[2])}-{m[3]}"
    return text


def _given_name_first(name: str) -> str:
    """ "Nguyễn Văn Hùng" → "Hùng Văn Nguyễn" (the family name last, as in English)."""
    words = name.split()
    return " ".join([words[-1], *words[1:-1], words[0]]) if len(words) > 1 else name


def _write(path: Path, headers: tuple[str, ...], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows(rows)


def _run(extract: Path, world: dict[str, object], *options: str) -> tuple[object, Path]:
    out = extract.with_name(extract.stem + ".result.csv")
    args = ["reconcile", "run", str(extract), "--out", str(out)]
    result = runner.invoke(app, [*args, "--registry", str(world["population"]), *options])
    return result, out


@pytest.fixture(autouse=True)
def _env(world: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DANCU_DATA_DIR", str(world["root"]))
    monkeypatch.setenv("DANCU_SECRET_KEY", "cli-test-secret")


@pytest.mark.parametrize("vocabulary", sorted(HEADERS))
def test_unknown_headers_are_recognised_by_their_values(
    world: dict[str, object], vocabulary: str
) -> None:
    rnd = random.Random(13)
    rows, reversed_rows = [], set()
    generated = world["rows"]
    assert isinstance(generated, list)
    for row_no, row in enumerate(generated, 1):
        name = row["full_name"]
        if rnd.random() < 0.4 and len(name.split()) > 1:
            name = _given_name_first(name)
            reversed_rows.add(row_no)
        values = dict(
            row,
            full_name=name,
            personal_id=_spaced(row["personal_id"], rnd),
            birth_date=_day_month_year(row["birth_date"]),
        )
        rows.append([values[f] for f in FIELDS])
    root = world["root"]
    assert isinstance(root, Path)
    extract = root / f"{vocabulary}.csv"
    _write(extract, HEADERS[vocabulary], rows)

    result, out = _run(extract, world)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    printed = " ".join(result.output.split())
    assert f"columns of {extract.name}" in printed
    for field, header in zip(FIELDS, HEADERS[vocabulary], strict=True):
        how = FOUND[vocabulary][field]
        assert f"{field} ← {header}: {how}" in printed, (field, printed)

    with out.open(encoding="utf-8", newline="") as f:
        got = {int(r["row_no"]): r for r in csv.DictReader(f)}
    truth = world["truth"]
    assert isinstance(truth, list) and len(got) == len(truth) == 300
    # The truth knows nothing of the names turned round: those rows now differ in name_order.
    expected = {
        t["row_no"]: "matched_with_differences"
        if t["row_no"] in reversed_rows and t["expected_verdict"] == "matched"
        else t["expected_verdict"]
        for t in truth
    }
    agree = sum(1 for n, verdict in expected.items() if got[n]["verdict"] == verdict)
    assert agree / len(expected) >= 0.95
    counts, wanted = Counter(r["verdict"] for r in got.values()), Counter(expected.values())
    for verdict in set(counts) | set(wanted):
        assert abs(counts[verdict] - wanted[verdict]) <= 6, (verdict, counts, wanted)
    # Every row linked is linked to the right person, adults and children, either name order.
    linked = [t for t in truth if got[t["row_no"]]["personal_id"]]
    assert all(got[t["row_no"]]["personal_id"] == t["true_personal_id"] for t in linked)
    findable = [t for t in truth if t["true_personal_id"] and t["expected_verdict"] != "ambiguous"]
    assert len(linked) / len(findable) >= 0.97
    turned = [t for t in findable if t["row_no"] in reversed_rows]
    assert turned and sum(1 for t in turned if got[t["row_no"]]["personal_id"]) >= 0.97 * len(
        turned
    )
    assert all(
        "name_order" in (got[t["row_no"]]["differences"] or "")
        for t in turned
        if got[t["row_no"]]["personal_id"]
    )
    born = {n: generated[n - 1]["birth_date"][-4:] for n in got}
    children = [t for t in linked if born[t["row_no"]].isdigit() and int(born[t["row_no"]]) >= 2010]
    assert len(children) >= 20


def test_no_column_of_names_stops_with_the_missing_field(world: dict[str, object]) -> None:
    generated = world["rows"]
    root = world["root"]
    assert isinstance(generated, list) and isinstance(root, Path)
    extract = root / "nameless.csv"
    rows = [[r["agency_key"], r["birth_date"], r["personal_id"], r["sex"]] for r in generated]
    _write(extract, ("c1", "c2", "c3", "c4"), rows)
    result, out = _run(extract, world)
    assert result.exit_code == 2 and "Traceback" not in result.output
    printed = " ".join(result.output.split())
    assert "the extract needs a column for the full name (họ và tên)" in printed
    assert "personal_id ← c3: its values" in printed  # what was found is shown first
    assert not out.exists()


def test_two_name_columns_are_named_and_the_option_settles_it(world: dict[str, object]) -> None:
    generated = world["rows"]
    root = world["root"]
    assert isinstance(generated, list) and isinstance(root, Path)
    extract = root / "two-names.csv"
    # The agency's record and the name of whoever filed it: both columns hold names.
    clerks = ["Nguyễn Thị Lan", "Trần Văn Bảo", "Lê Minh Châu", "Phạm Thu Hà", "Vũ Đức Anh"]
    rows = [
        [r["full_name"], clerks[i % 5] + f" {chr(65 + i % 26)}", r["birth_date"]]
        for i, r in enumerate(generated)
    ]
    _write(extract, ("person", "filed by", "born"), rows)
    result, _out = _run(extract, world)
    assert result.exit_code == 2 and "Traceback" not in result.output
    printed = " ".join(result.output.split())
    assert "the columns 'person' and 'filed by' both look like the full name" in printed
    assert "full_name ? 'person' or 'filed by': both fit" in printed
    settled, out = _run(extract, world, "--column", "full_name=person")
    assert settled.exit_code == 0, settled.output
    assert "full_name ← person: --column" in " ".join(settled.output.split())
    assert out.exists()
