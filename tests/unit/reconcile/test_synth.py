"""The synthetic extract generator: each defect transform on hand-worked values; an extract
drawn from a small synthetic population (row counts, verdict shares, the verdict rules checked
against the population itself, same seed same bytes); every output format, encoding and header
style read back; bad options."""

from __future__ import annotations

import csv
import random
import unicodedata
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from dancu.core.names import fold, search_key
from dancu.reconcile.fields import DIFFERENCES, FIELDS, HEADER_SYNONYMS, SEX_VALUES, header_key
from dancu.reconcile.reference import commune_provinces
from dancu.reconcile.synth_extract import generate_extract
from dancu.registry.synth_population import generate_population
from dancu.synth import cast, defects
from dancu.synth import extract as synth
from dancu.synth.extract import HEADERS

AS_OF = date(2026, 1, 1)
ROWS = 1500
NAMES = st.sampled_from(
    ["Nguyễn Văn Hòa", "Trần Thị Thủy", "Lê Thúy Hoà", "Đặng Khỏe", "Quý Hoàng", "Phạm Ngọc Ánh"]
)


# -- transforms, by hand ----------------------------------------------------------------------
def test_leading_zeros_are_lost_like_a_spreadsheet_loses_them() -> None:
    assert defects.drop_leading_zeros("001090012345") == "1090012345"
    assert defects.drop_leading_zeros("079185000001") == "79185000001"


def test_transposition_swaps_two_adjacent_digits_and_avoids_other_peoples_numbers() -> None:
    number = "001090012345"
    swaps = {number[:i] + number[i + 1] + number[i] + number[i + 2 :] for i in range(11)}
    swaps.discard(number)  # "00" and "01"... swapping equal digits changes nothing
    free = "001090012354"
    taken = swaps - {free}
    assert defects.damage_id(number, "id_transposed", random.Random(1), taken.__contains__) == free
    assert (
        defects.damage_id(number, "id_transposed", random.Random(1), swaps.__contains__) == number
    )
    for seed in range(30):
        out = defects.damage_id(number, "id_transposed", random.Random(seed), lambda _: False)
        diff = [i for i in range(12) if out[i] != number[i]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1
        assert (out[diff[0]], out[diff[1]]) == (number[diff[1]], number[diff[0]])


def test_a_wrong_digit_is_one_digit_and_never_someone_elses_number() -> None:
    number = "001090012345"
    taken = {number[:11] + d for d in "0123456789"}  # the last digit is spoken for
    for seed in range(30):
        out = defects.damage_id(number, "id_typo", random.Random(seed), taken.__contains__)
        assert sum(a != b for a, b in zip(out, number, strict=True)) == 1
        assert out not in taken


@given(NAMES)
def test_tone_placement_is_formatting_only(name: str) -> None:
    assert search_key(defects.swap_tone_placement(name)) == search_key(name)
    assert defects.swap_tone_placement(defects.swap_tone_placement(name)) == name


def test_tone_placement_by_hand() -> None:
    assert defects.swap_tone_placement("Nguyễn Văn Hòa") == "Nguyễn Văn Hoà"
    assert defects.swap_tone_placement("Nguyễn Văn Hoà") == "Nguyễn Văn Hòa"
    assert defects.swap_tone_placement("Lê Thị Thủy") == "Lê Thị Thuỷ"
    assert defects.swap_tone_placement("Khỏe") == "Khoẻ"
    assert defects.swap_tone_placement("HÒA") == "HOÀ"
    # Nothing to move: qu + y, a closed syllable, three vowels, no tone.
    for name in ("Quý", "Toàn", "Hoài", "Hoa", "Thuyết"):
        assert defects.swap_tone_placement(name) == name


def test_names_without_marks_in_other_order_and_variants() -> None:
    for defect, name, out in (
        (defects.strip_diacritics, "Đặng Thị Hòa", "Dang Thi Hoa"),
        (defects.strip_diacritics, "NGUYỄN NGỌC ÁNH", "NGUYEN NGOC ANH"),
        (defects.given_name_first, "Nguyễn Văn Hùng", "Hùng Nguyễn Văn"),
        (defects.swap_variant, "Hoàng Văn Nam", "Huỳnh Văn Nam"),
        (defects.swap_variant, "Huỳnh Thị Mai", "Hoàng Thị Mai"),
        (defects.swap_variant, "Vũ Thị Lan", "Võ Thị Lan"),
        (defects.swap_variant, "Võ Hoàng Long", "Vũ Hoàng Long"),  # the first only
        (defects.swap_variant, "Lê Văn An", "Lê Văn An"),
    ):
        assert defect(name) == out, name
    nfd = unicodedata.normalize("NFD", "Trần Thị Thủy")
    assert nfd != "Trần Thị Thủy" and unicodedata.normalize("NFC", nfd) == "Trần Thị Thủy"


def test_a_typo_is_one_letter_outside_the_first_word_and_a_middle_name_can_go() -> None:
    for seed in range(60):
        out = defects.typo_name("Nguyễn Văn Hùng", random.Random(seed))
        words = out.split(" ")
        assert words[0] == "Nguyễn" and len(words) == 3
        assert fold(out) != "nguyen van hung"
        assert abs(len(out) - len("Nguyễn Văn Hùng")) <= 1
    dropped = {defects.drop_middle("Nguyễn Thị Thu Hà", random.Random(s)) for s in range(20)}
    assert dropped == {"Nguyễn Thu Hà", "Nguyễn Thị Hà"}
    assert defects.drop_middle("Lê An", random.Random(1)) == "Lê An"


def test_date_formats_and_swapped_days() -> None:
    d = date(1990, 1, 5)
    assert defects.format_date(d, "") == "05/01/1990"
    assert defects.format_date(d, "fmt_date_iso") == "1990-01-05"
    assert defects.format_date(d, "fmt_date_short") == "5/1/1990"
    assert defects.format_date(d, "dob_year_only") == "1990"
    assert defects.swap_day_month(date(1990, 3, 5)) == date(1990, 5, 3)
    assert defects.swap_day_month(date(1990, 5, 13)) is None
    assert defects.swap_day_month(date(1990, 4, 4)) is None
    day = date(1996, 1, 1)
    while day.year == 1996:  # every swap of a leap year's day is a real date
        swapped = defects.swap_day_month(day)
        assert swapped is None or (swapped.day, swapped.month) == (day.month, day.day)
        day += timedelta(days=1)


def test_a_date_typo_is_a_real_date_one_digit_away() -> None:
    rnd = random.Random(3)
    for d in (date(1990, 1, 5), date(2000, 2, 29), date(1985, 12, 31), date(2025, 12, 30)):
        for _ in range(20):
            out = defects.date_typo(d, rnd, latest=date(2026, 1, 1))
            assert out is not None and out != d and out <= date(2026, 1, 1)
            a, b = defects.format_date(d, ""), defects.format_date(out, "")
            assert [i for i in range(10) if a[i] != b[i]] in ([0], [1], [9])


def test_cp1258_form_encodes_and_reads_back_as_the_same_name() -> None:
    for name in ("Nguyễn Thị Hường", "Đặng Khỏe", unicodedata.normalize("NFD", "Ngô Quốc Việt")):
        raw = defects.cp1258_form(name).encode("cp1258")
        assert unicodedata.normalize("NFC", raw.decode("cp1258")) == unicodedata.normalize(
            "NFC", name
        )


def test_every_header_style_is_recognised_by_the_readers_synonyms() -> None:
    def field_of(header: str) -> str | None:
        key = header_key(header)
        return next((f for f in FIELDS if key in map(header_key, HEADER_SYNONYMS[f])), None)

    for style, headers in HEADERS.items():
        assert [field_of(h) for h in headers] == list(FIELDS), style


def test_provinces_outdated_by_the_merger_and_the_pre_2025_province_of_a_new_commune() -> None:
    places = cast.Places.load()
    binh_duong = next(c for c, (p, _) in places.legacy.items() if p == "74")
    old, new, _, name = places.residence(binh_duong, date(2020, 1, 1))
    assert (old, new, name) == ("74", "79", "Tỉnh Bình Dương")
    assert ("74", "79") in places.renamed and ("01", "01") not in places.renamed
    assert ("27", "24") not in places.renamed  # Bắc Ninh keeps its name in the 2025 scheme
    new_commune = places.successor[binh_duong]
    assert places.residence(new_commune, date(2025, 8, 1))[:2] == ("74", "79")


# -- a generated extract ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pop") / "people.parquet"
    generate_population(2000, 11, path, as_of=AS_OF)
    return path


@pytest.fixture(scope="module")
def people(population: Path) -> dict[str, dict[str, Any]]:
    return {p["personal_id"]: p for p in pq.read_table(population).to_pylist()}


@pytest.fixture(scope="module")
def extract(
    population: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict[str, str]], list[dict[str, Any]], synth.ExtractStats]:
    out = tmp_path_factory.mktemp("extract") / "bhxh.csv"
    stats = generate_extract(population, ROWS, out, seed=3)
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, pq.read_table(stats.truth).to_pylist(), stats


def _date(text: str) -> date | None:
    for parts in (text.split("/"), text.split("-")[::-1]):
        if len(parts) == 3:
            return date(int(parts[2]), int(parts[1]), int(parts[0]))
    return None


def test_every_row_has_its_truth_and_the_counts_add_up(extract: Any) -> None:
    rows, truth, stats = extract
    assert len(rows) == len(truth) == stats.rows == ROWS
    assert [t["row_no"] for t in truth] == list(range(1, ROWS + 1))
    assert len({r["ma_ho_so"] for r in rows}) == ROWS and stats.duplicate_keys == 0
    verdicts = Counter(t["expected_verdict"] for t in truth)
    assert verdicts == {v: n for v, n in stats.verdicts.items() if n}
    codes = Counter(c for t in truth for c in t["defects"].split("|") if c)
    assert codes == stats.defects
    year_kinds = {"dob_placeholder", "dob_year_off"}  # the pipeline: dob_year_only, dob_typo
    assert set(codes) <= set(DIFFERENCES) | year_kinds | {c for c in codes if c.startswith("fmt_")}
    # Paper records: LEGACY_SHARE of the rows, 45 % placeholder dates, 20 % a year off.
    legacy = synth.LEGACY_SHARE
    for code, share in (("dob_placeholder", 0.45 * legacy), ("dob_year_off", 0.20 * legacy)):
        assert share * 0.5 < codes[code] / ROWS < share * 1.6, code
    duplicates = round(ROWS * cast.DUPLICATE_SHARE)
    assert verdicts["duplicate"] == duplicates
    assert verdicts["not_found"] == round((ROWS - duplicates) * cast.INVENTED_SHARE)
    assert 0.40 < verdicts["matched"] / ROWS < 0.65
    assert 0.30 < verdicts["matched_with_differences"] / ROWS < 0.55
    for code, share in (("id_missing", 0.08), ("name_no_diacritics", 0.12), ("fmt_upper", 0.16)):
        assert share * 0.6 < codes[code] / ROWS < share * 1.5, code


def test_duplicates_follow_their_first_row_and_invented_people_are_no_one(
    extract: Any, people: dict[str, dict[str, Any]]
) -> None:
    rows, truth, _ = extract
    first_seen: dict[str, int] = {}
    for row, t in zip(rows, truth, strict=True):
        pid = t["true_personal_id"]
        if t["duplicate_of"] is not None:
            assert t["expected_verdict"] == "duplicate"
            assert truth[t["duplicate_of"] - 1]["true_personal_id"] == pid
            assert t["duplicate_of"] < t["row_no"]
            assert pid is None or first_seen[pid] == t["duplicate_of"]
        elif pid is None:
            assert t["expected_verdict"] == "not_found"
            digits = "".join(c for c in row["so_dinh_danh"] if c.isdigit())
            assert digits.zfill(12) not in people
        else:
            assert pid in people and pid not in first_seen
            first_seen[pid] = t["row_no"]


def test_id_defects_against_the_register(extract: Any, people: dict[str, dict[str, Any]]) -> None:
    rows, truth, _ = extract
    for row, t in zip(rows, truth, strict=True):
        pid, given_id, codes = t["true_personal_id"], row["so_dinh_danh"], t["defects"]
        if pid is None:
            continue
        if "id_leading_zeros" in codes:
            assert given_id != pid and given_id.zfill(12) == pid
        elif "id_transposed" in codes:
            assert given_id != pid and sorted(given_id) == sorted(pid) and given_id not in people
        elif "id_typo" in codes:
            assert sum(a != b for a, b in zip(given_id, pid, strict=True)) == 1
            assert given_id not in people
        elif "id_old_cmnd" in codes:
            assert given_id == "" and row["so_cmnd"] == people[pid]["old_id_number"]
        elif "id_missing" in codes:
            assert given_id == "" == row["so_cmnd"]
        else:
            assert "".join(c for c in given_id if c.isdigit()) == pid
        if row["so_cmnd"]:
            assert row["so_cmnd"] == people[pid]["old_id_number"]


def test_matched_rows_agree_with_the_register_but_for_formatting(
    extract: Any, people: dict[str, dict[str, Any]]
) -> None:
    rows, truth, _ = extract
    matched = [
        (r, t) for r, t in zip(rows, truth, strict=True) if t["expected_verdict"] == "matched"
    ]
    assert matched
    for row, t in matched:
        person = people[t["true_personal_id"]]
        assert person["status"] != "deceased"
        assert all(c.startswith("fmt_") for c in t["defects"].split("|") if c)
        assert search_key(row["ho_ten"]) == search_key(person["full_name"])
        assert _date(row["ngay_sinh"]) == person["birth_date"]
        assert SEX_VALUES.get(fold(row["gioi_tinh"]), person["sex"]) == person["sex"]


def test_deceased_people_are_deceased_unless_a_prior_rule_applies(
    extract: Any, people: dict[str, dict[str, Any]]
) -> None:
    _, truth, _ = extract
    for t in truth:
        person = people.get(t["true_personal_id"] or "")
        if person and t["expected_verdict"] not in ("duplicate", "ambiguous"):
            assert (t["expected_verdict"] == "deceased") == (person["status"] == "deceased")


def test_rows_without_a_usable_id_are_ambiguous_when_someone_else_fits_as_well(
    tmp_path: Path,
) -> None:
    # Make 400 "twins": person 2k+1 takes person 2k's name, birth date and sex.
    generate_population(1000, 5, tmp_path / "p.parquet", as_of=AS_OF)
    table = pq.read_table(tmp_path / "p.parquet")
    columns = {c: table[c].to_pylist() for c in ("full_name", "birth_date", "sex")}
    for k in range(0, 800, 2):
        for values in columns.values():
            values[k + 1] = values[k]
    for c, values in columns.items():
        i = table.schema.get_field_index(c)
        table = table.set_column(i, c, pa.array(values, table.schema.field(c).type))
    pq.write_table(table, tmp_path / "twins.parquet")
    stats = generate_extract(tmp_path / "twins.parquet", 1000, tmp_path / "x.parquet", seed=8)
    truth = pq.read_table(stats.truth).to_pylist()
    given = pq.read_table(tmp_path / "x.parquet")["tinh_thanh"].to_pylist()
    by_scheme = {(s, c): p for s, c, p in commune_provinces()}

    def place(p: dict[str, Any]) -> str:
        scheme = "legacy" if p["residence_since"] < date(2025, 7, 1) else "2025"
        code = p["residence_commune_code"]
        return by_scheme.get((scheme, code)) or by_scheme.get(("2025", code), "")

    def keys(p: dict[str, Any]) -> dict[tuple[bool, bool], tuple[str, ...]]:
        """The look-alike key for each (row keeps the marks, row gives the province)."""
        base = (p["birth_date"], p["sex"])
        return {
            (False, False): ("fold", fold(p["full_name"]), *base),
            (True, False): ("marked", p["full_name"].lower(), *base),
            (False, True): ("fold", fold(p["full_name"]), place(p), *base),
            (True, True): ("marked", p["full_name"].lower(), place(p), *base),
        }

    everyone = [keys(p) for p in table.to_pylist()]
    count = Counter(k for ks in everyone for k in ks.values())
    person = {p["personal_id"]: ks for p, ks in zip(table.to_pylist(), everyone, strict=True)}
    shared = Counter(x for x in table["old_id_number"].to_pylist() if x)
    olds = dict(zip(*(table[c].to_pylist() for c in ("personal_id", "old_id_number")), strict=True))
    for t in truth:
        pid, codes = t["true_personal_id"], set(t["defects"].split("|"))
        if pid is None or t["duplicate_of"] is not None:
            continue
        unusable = bool(codes & {"id_missing", "id_transposed", "id_typo"}) or (
            "id_old_cmnd" in codes and shared[olds[pid]] > 1
        )
        marked = "name_no_diacritics" not in codes
        placed = bool(given[t["row_no"] - 1]) and "province_wrong" not in codes
        fits_two = count[person[pid][(marked, placed)]] > 1
        assert (t["expected_verdict"] == "ambiguous") == (unusable and fits_two), t
    assert stats.verdicts["ambiguous"] > 10


def test_same_seed_same_bytes_and_csv_and_parquet_populations_agree(
    population: Path, tmp_path: Path
) -> None:
    csv_population = tmp_path / "people.csv"
    pacsv.write_csv(pq.read_table(population), csv_population)

    def run(source: Path, name: str, seed: int = 4) -> tuple[bytes, bytes]:
        stats = generate_extract(source, 300, tmp_path / name, seed=seed)
        return stats.out.read_bytes(), stats.truth.read_bytes()

    for ext in (".csv", ".xlsx"):  # the .xlsx too: openpyxl's timestamps are pinned
        assert run(population, "a" + ext) == run(population, "b" + ext)
    assert run(population, "a.parquet") == run(csv_population, "c.parquet")
    assert run(population, "a.csv") != run(population, "d.csv", seed=5)


def test_duplicate_agency_keys_when_asked(population: Path, tmp_path: Path) -> None:
    stats = generate_extract(population, 500, tmp_path / "k.csv", duplicate_keys=0.1)
    with stats.out.open(encoding="utf-8") as f:
        keys = [r["ma_ho_so"] for r in csv.DictReader(f)]
    assert stats.duplicate_keys == len(keys) - len(set(keys)) == 50


# -- formats read back ------------------------------------------------------------------------
def _nfc(rows: list[list[str]]) -> list[list[str]]:
    return [[unicodedata.normalize("NFC", v) for v in r] for r in rows]


@pytest.fixture(scope="module")
def plain(population: Path, tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    stats = generate_extract(population, 300, tmp_path_factory.mktemp("plain") / "e.csv", seed=2)
    with stats.out.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize(
    ("encoding", "delimiter", "headers", "bom"),
    [
        ("utf-8-sig", ";", "vi-display", b"\xef\xbb\xbf"),
        ("utf-16", "\t", "en", b"\xff\xfe"),
        ("cp1258", ",", "vi", b"ma_ho_so"),
    ],
)
def test_csv_encodings_delimiters_and_headers_read_back(
    population: Path,
    tmp_path: Path,
    plain: list[list[str]],
    encoding: str,
    delimiter: str,
    headers: str,
    bom: bytes,
) -> None:
    out = tmp_path / "e.csv"
    generate_extract(
        population, 300, out, seed=2, headers=headers, encoding=encoding, delimiter=delimiter
    )
    assert out.read_bytes().startswith(bom)
    with out.open(encoding=encoding, newline="") as f:
        back = list(csv.reader(f, delimiter=delimiter))
    assert back[0] == list(HEADERS[headers])
    assert _nfc(back[1:]) == _nfc(plain[1:])


def test_parquet_and_excel_hold_strings_with_their_leading_zeros(
    population: Path, tmp_path: Path, plain: list[list[str]]
) -> None:
    parquet = generate_extract(population, 300, tmp_path / "e.parquet", seed=2).out
    table = pq.read_table(parquet)
    assert table.column_names == list(HEADERS["vi"])
    assert all(t == pa.string() for t in table.schema.types)
    assert [list(r.values()) for r in table.to_pylist()] == plain[1:]
    assert pc.any(pc.starts_with(table["so_dinh_danh"], "0")).as_py()
    xlsx = generate_extract(population, 300, tmp_path / "e.xlsx", seed=2).out
    book = load_workbook(xlsx, read_only=True)
    cells = [[c.value or "" for c in r] for r in book.active.iter_rows()]
    book.close()
    assert cells == plain
    assert pq.read_table(tmp_path / "e.truth.parquet").schema == synth._TRUTH


# -- bad options ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 0}, "at least 1"),
        ({"rows": 5000}, "the population has 2,000"),
        ({"out": "e.txt"}, "an extract is"),
        ({"headers": "fr"}, "headers 'fr'"),
        ({"encoding": "latin-1"}, "encoding 'latin-1'"),
        ({"delimiter": "|"}, "delimiter '|'"),
        ({"out": "e.parquet", "encoding": "cp1258"}, "CSV extracts only"),
        ({"duplicate_keys": 0.9}, "from 0 to 0.5"),
        ({"truth": "t.csv"}, "the truth file"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    population: Path, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    rows = kwargs.pop("rows", 10)
    out = tmp_path / kwargs.pop("out", "e.csv")
    if "truth" in kwargs:
        kwargs["truth"] = tmp_path / kwargs["truth"]
    with pytest.raises(ValueError, match=message):
        generate_extract(population, rows, out, **kwargs)
    assert not out.exists()


def test_a_population_without_the_needed_columns_is_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"personal_id": ["001090012345"]}), tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="no column birth_date"):
        generate_extract(tmp_path / "p.parquet", 1, tmp_path / "e.csv")
