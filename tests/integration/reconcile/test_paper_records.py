"""Rows copied from paper records (issue 13, item 8): 01/01 written when only the year is
known, a birth year off by one (age counted the traditional way), no ID number and an
unaccented upper-case name with a year only. Whether such a row is linked depends on how
rare the agreeing values are (term frequency): a rare name agreeing on year, sex and
province is the person; "Nguyễn Văn Hùng" agreeing on the same is only worth a review."""

from __future__ import annotations

import csv
from datetime import date

import pyarrow.parquet as pq
import pytest

from dancu.reconcile import runner
from dancu.reconcile.sources import population_register
from dancu.registry.synth_population import generate_population

HEADER = ["ma_ho_so", "ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "so_cmnd", "tinh_thanh"]
COMMUNE = {"01": "00004", "79": "26734"}  # Phường Ba Đình (Hà Nội), a ward of TP Hồ Chí Minh
PEOPLE = {
    "vy": ("001178012345", "Đặng Thúy Vy", "1978-07-22", "F", "01"),
    "quan": ("001080023456", "Tôn Thất Quân", "1980-09-13", "M", "01"),
    "khue": ("079165034567", "Lạc Minh Khuê", "1965-04-30", "F", "79"),
    "linh": ("001190045678", "Hà Diệu Linh", "1990-10-10", "F", "01"),
    "thu": ("001180056789", "Tôn Nữ Minh Thư", "1980-03-05", "F", "01"),
}
# Forty men called Nguyễn Văn Hùng, one a year from 1960; only the first lives in Hà Nội.
HUNG = [
    (f"0790{60 + i:02d}{100000 + i:06d}", "Nguyễn Văn Hùng", f"19{60 + i}-0{1 + i % 9}-1{i % 9}")
    for i in range(40)
]
ROWS = [  # (name, birth date, sex, personal ID, CMND, province) -> (verdict, person)
    (["Đặng Thúy Vy", "01/01/1978", "Nữ", "001178012354", "", "Hà Nội"], "vy"),
    (["Tôn Thất Quân", "1979", "Nam", "", "", "Hà Nội"], "quan"),
    (["LAC MINH KHUE", "1965", "Nữ", "", "", "TP Hồ Chí Minh"], "khue"),
    (["Tôn Nữ Minh Thư", "01/01/1979", "Nữ", "", "", "Hà Nội"], "thu"),
    (["Hà Diệu Linh", "1991", "Nữ", "", "", "Đà Nẵng"], "linh"),
    (["NGUYEN VAN HUNG", "1960", "Nam", "", "", "Hà Nội"], "hung"),
]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    root = tmp_path_factory.mktemp("paper")
    population = root / "population.csv"
    generate_population(4000, 11, population, as_of=date(2026, 11, 1))
    with population.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns, people = list(reader.fieldnames or []), list(reader)
    crafted = list(PEOPLE.values())
    crafted += [
        (pid, name, born, "M", "01" if i == 0 else "79") for i, (pid, name, born) in enumerate(HUNG)
    ]
    for pid, name, born, sex, province in crafted:
        people.append(
            {
                **people[0],
                "personal_id": pid,
                "full_name": name,
                "birth_date": born,
                "sex": sex,
                "status": "alive",
                "death_date": "",
                "household_no": f"98{pid[-8:]}",
                "relationship": "head",
                "residence_commune_code": COMMUNE[province],
                "residence_since": "2025-08-01",
                "old_id_number": "",
                "old_id_issuer": "",
                "father_personal_id": "",
                "mother_personal_id": "",
                "spouse_personal_id": "",
            }
        )
    with population.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(people)
    extract = root / "extract.csv"
    with extract.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i, (values, _who) in enumerate(ROWS, 1):
            writer.writerow([f"R{i}", *values])
    register = population_register(population, root / "registers")
    out = root / "result.parquet"
    runner.run(extract, lambda: register, runner.Outputs.beside(out), root / "work")
    return sorted(pq.read_table(out).to_pylist(), key=lambda r: int(str(r["row_no"])))


def _row(verdicts: list[dict[str, object]], who: str) -> dict[str, object]:
    return verdicts[[w for _v, w in ROWS].index(who)]


def test_01_01_is_read_as_the_year_only(verdicts: list[dict[str, object]]) -> None:
    # The placeholder date and a transposed number: the person, the date flagged as year only.
    vy = _row(verdicts, "vy")
    assert (vy["verdict"], vy["personal_id"]) == ("matched_with_differences", PEOPLE["vy"][0])
    assert vy["differences"] == "id_transposed|dob_year_only"
    # The placeholder of a year off by one, and no number at all: still the person.
    thu = _row(verdicts, "thu")
    assert (thu["verdict"], thu["personal_id"]) == ("matched_with_differences", PEOPLE["thu"][0])
    assert str(thu["differences"]).startswith("id_missing")


def test_a_birth_year_off_by_one_without_a_number(verdicts: list[dict[str, object]]) -> None:
    quan = _row(verdicts, "quan")
    assert (quan["verdict"], quan["personal_id"]) == ("matched_with_differences", PEOPLE["quan"][0])
    assert quan["differences"] == "id_missing|dob_typo"


def test_a_rare_name_is_linked_where_a_common_one_is_only_reviewed(
    verdicts: list[dict[str, object]],
) -> None:
    """The same evidence (no number, no marks, a year only, sex and province agreeing with
    exactly one register person): enough for a rare name, not for the commonest one."""
    khue = _row(verdicts, "khue")
    assert (khue["verdict"], khue["personal_id"]) == ("matched_with_differences", PEOPLE["khue"][0])
    assert khue["differences"] == "id_missing|name_no_diacritics|dob_year_only"
    hung = _row(verdicts, "hung")
    assert (hung["verdict"], hung["personal_id"]) == ("needs_review", None)
    best = str(hung["candidates"]).split(";")[0].split(":")
    assert best[0] == HUNG[0][0] and float(best[1]) > 0.5  # the one in Hà Nội, to review


def test_one_uncertain_candidate_needs_review(verdicts: list[dict[str, object]]) -> None:
    """Year off by one and another province: one plausible candidate, not a link."""
    linh = _row(verdicts, "linh")
    assert (linh["verdict"], linh["personal_id"]) == ("needs_review", None)
    assert str(linh["candidates"]).split(":")[0] == PEOPLE["linh"][0]
