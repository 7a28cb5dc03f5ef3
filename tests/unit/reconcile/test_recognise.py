"""Recognising an extract's columns by their values (dancu.reconcile.recognise, and
columns.propose_mapping where the headers say nothing): one test per value recogniser, most
of them properties (every way of writing a personal ID number, a date, a sex, a province or a
name is recognised, and the Python date reader agrees with the pipeline's dc_date), then the
column-level rules: fit shares, ties left out and named, one column per field at most, the
agency key last, headers before values."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dancu.core.names import FAMILY_NAMES, FOLDED_FAMILY_NAMES, fold
from dancu.reconcile import columns, recognise
from dancu.reconcile.encodings import ExtractError
from dancu.reconcile.reference import province_names
from tests.helpers import duckdb_with_functions

TODAY = date(2026, 12, 1)
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu", "Hữu", "Thanh"]
GIVEN = ["Hùng", "Lan", "An", "Bình", "Hạnh", "Dũng", "Trang", "Sơn", "Nhi", "Phúc", "Thảo"]


_CON = duckdb_with_functions()


# -- value recognisers ------------------------------------------------------------------------

_DIGITS12 = st.text(alphabet="0123456789", min_size=12, max_size=12)


@given(_DIGITS12, st.sampled_from([(3, " "), (3, "-"), (4, " "), (3, "."), (12, "")]))
def test_a_personal_id_is_recognised_however_it_is_grouped(number: str, grouping: tuple) -> None:
    size, sep = grouping
    written = sep.join(number[i : i + size] for i in range(0, 12, size))
    assert recognise.is_personal_id(written)
    assert recognise.id_digits(written) == number
    assert not recognise.is_old_id(written)
    # Leading zeros lost (a spreadsheet's number) still count; letters or 13 digits do not.
    assert recognise.is_personal_id(number[:10]) and not recognise.is_personal_id(number + "1")
    assert not recognise.is_personal_id(number[:6] + "O" + number[7:])


@given(st.text(alphabet="0123456789", min_size=9, max_size=9), st.sampled_from(["", " ", "-"]))
def test_an_old_cmnd_number_is_nine_digits(number: str, sep: str) -> None:
    written = sep.join((number[:3], number[3:6], number[6:]))
    assert recognise.is_old_id(written)
    assert not recognise.is_personal_id(written)
    assert not recognise.is_old_id(number + "0") and not recognise.is_old_id("CMND " + number)


_FORMATS = {
    "dd/mm/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "d/m/yyyy": lambda d: f"{d.day}/{d.month}/{d.year}",
    "d-m-yyyy": lambda d: f"{d.day}-{d.month}-{d.year}",
    "dd-mm-yyyy": lambda d: f"{d.day:02d}-{d.month:02d}-{d.year}",
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "yyyy-mm-dd": lambda d: d.isoformat(),
    "yyyy/m/d": lambda d: f"{d.year}/{d.month}/{d.day}",
    "yyyymmdd": lambda d: d.strftime("%Y%m%d"),
    "d/m/yy": lambda d: f"{d.day}/{d.month}/{d.year % 100:02d}",
}


@settings(max_examples=300, deadline=None)
@given(st.dates(date(1900, 1, 1), date.today()), st.sampled_from(sorted(_FORMATS)))
def test_a_birth_date_is_recognised_in_every_form_the_pipeline_reads(born: date, form: str) -> None:
    written = _FORMATS[form](born)
    expected = born
    if form == "d/m/yy" and born <= date.today().replace(year=date.today().year - 100):
        expected = born.replace(year=born.year + 100)  # two digits: the latest century
    assert recognise.parse_date(written) == expected
    assert recognise.is_birth_date(written)
    # The Python reader and the pipeline's dc_date are twins: what one reads, so does the other.
    found = _CON.execute("SELECT dc_date(?)", [written]).fetchone()
    assert found is not None and found[0] == expected


@given(st.text(alphabet="0123456789/-. ", max_size=12))
def test_the_date_reader_agrees_with_dc_date_on_any_text(text: str) -> None:
    found = _CON.execute("SELECT dc_date(?)", [text]).fetchone()
    assert found is not None and recognise.parse_date(text) == found[0]


def test_years_alone_and_impossible_dates() -> None:
    assert recognise.is_birth_date("1957", TODAY) and recognise.is_birth_date("2026", TODAY)
    assert not recognise.is_birth_date("1850", TODAY) and not recognise.is_birth_date("2030", TODAY)
    assert not recognise.is_birth_date(str(TODAY + timedelta(days=1)), TODAY)  # not born yet
    for text in ("31/02/2020", "13/13/2020", "1/2-2020", "2020-13-01", "ngày 1", "12345"):
        assert not recognise.is_birth_date(text, TODAY), text


_SEXES = [
    ("Nam", "M"),
    ("Nữ", "F"),
    ("nu", "F"),
    ("M", "M"),
    ("F", "F"),
    ("male", "M"),
    ("Female", "F"),
    ("1", "M"),
    ("0", "F"),
    ("trai", "M"),
    ("gái", "F"),
]


@given(
    st.sampled_from(_SEXES),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from(["NFC", "NFD"]),
)
def test_sex_values_in_any_case_with_or_without_marks(
    spelling: tuple[str, str], case: object, form: str
) -> None:
    text, sex = spelling
    assert callable(case)
    written = unicodedata.normalize(form, case(text))
    assert recognise.sex_of(written) == sex
    assert recognise.sex_of(fold(written)) == sex
    assert recognise.sex_of("không rõ") is None


@given(
    st.sampled_from(sorted(province_names().items())),
    st.sampled_from(["name", "short", "upper", "plain", "code"]),
)
def test_provinces_by_name_short_form_or_code(province: tuple[str, str], style: str) -> None:
    code, name = province
    core = name.removeprefix("Thành phố ").removeprefix("Tỉnh ")
    written = {
        "name": name,
        "short": f"TP {core}" if name.startswith("Thành") else core,
        "upper": name.upper(),
        "plain": fold(core),
        "code": code,
    }[style]
    assert recognise.is_province(written)


def test_legacy_provinces_and_what_is_not_a_province() -> None:
    assert recognise.is_province("Bình Dương") and recognise.is_province("TP HCM")
    for text in ("Nguyễn Văn An", "Hà Nam Ninh Thuận", "00", "province", ""):
        assert not recognise.is_province(text), text


_NAMES = st.tuples(
    st.sampled_from(FAMILY_NAMES),
    st.lists(st.sampled_from(MIDDLE), max_size=2),
    st.sampled_from(GIVEN),
)


@given(_NAMES, st.sampled_from(["as is", "upper", "plain"]))
def test_a_name_and_where_its_family_name_stands(parts: tuple, style: str) -> None:
    family, middle, given_name = parts
    styled = {"as is": str, "upper": str.upper, "plain": lambda t: fold(t).upper()}[style]
    vietnamese = styled(" ".join([family, *middle, given_name]))
    western = styled(" ".join([given_name, *middle, family]))
    # "Ninh Bình", "Hà Nam": one value alone cannot be told from a province; the column's
    # share of name-like values decides (test_a_name_column_with_a_province_named_person).
    assume(not recognise.is_province(vietnamese) and not recognise.is_province(western))
    assert recognise.name_words(vietnamese) == fold(vietnamese).split()
    assert recognise.family_name_end(vietnamese) == "family_first"
    # Without marks, a given name that is also a family name (Thảo/Thào) hides the order.
    hidden = style == "plain" and fold(given_name) in FOLDED_FAMILY_NAMES
    assert recognise.family_name_end(western) == ("family_first" if hidden else "given_first")


def test_what_is_not_a_name() -> None:
    for text in (
        "Nguyễn",
        "Nguyễn Văn An Bình Minh Châu",
        "Hà Nội",
        "Thành phố Hồ Chí Minh",
        "Số 12 Lê Lợi",
        "Nguyễn Văn 2",
        "nguyen.van.an@example.vn",
    ):
        assert recognise.name_words(text) is None, text
    assert recognise.name_words("Giàng A Páo") == ["giang", "a", "pao"]
    assert recognise.family_name_end("Giàng A Páo") == "family_first"
    assert recognise.family_name_end("Xuân Thu Hạ") is None  # a name, but whose family?


def test_addresses() -> None:
    for text in (
        "Thôn 3, Xã Tân Phú, Tỉnh Đồng Nai",
        "Số 12 đường Lê Lợi",
        "xóm Bãi Sậy Hưng Yên",
        "12 Nguyen Trai Ha Noi",
    ):
        assert recognise.is_address(text), text
    for text in ("Trần Thị Mai", "Phương Thị Huyền", "Hà Nội", "Thôn 3"):
        assert not recognise.is_address(text), text


# -- columns ----------------------------------------------------------------------------------


def _people(n: int) -> list[list[str]]:
    """``n`` rows: key, name, birth date, sex, personal ID, CMND (a few), address, province."""
    rows = []
    provinces = sorted(province_names().values())
    for i in range(n):
        family, middle, given_name = FAMILY_NAMES[i % 20], MIDDLE[i % 8], GIVEN[i % 11]
        born = date(1940, 1, 1) + timedelta(days=97 * i)
        rows.append(
            [
                f"HS{i * 7919 % 100_000:05d}",
                f"{family} {middle} {given_name}",
                f"{born.day}/{born.month}/{born.year}",
                "Nam" if i % 2 else "Nữ",
                f"0{i % 90 + 1:02d}{i % 4}{i % 100:02d}{i * 37 % 1_000_000:06d}",
                f"{i * 104_729 % 1_000_000_000:09d}" if i % 10 == 0 else "",
                f"Thôn {i % 9 + 1}, Xã Tân Phú, {provinces[i % len(provinces)]}",
                provinces[(i * 3) % len(provinces)],
            ]
        )
    return rows


def _columns(rows: list[list[str]]) -> dict[int, list[str]]:
    return {i: [r[i] for r in rows] for i in range(len(rows[0]))}


def test_every_field_is_recognised_from_its_values_alone() -> None:
    rows = _people(200)
    found = recognise.recognise(_columns(rows), recognise.ORDER, TODAY)
    assert found.fields == {
        "personal_id": 4,
        "old_id": 5,
        "birth_date": 2,
        "sex": 3,
        "province": 7,
        "full_name": 1,
        "address": 6,
        "agency_key": 0,
    }
    assert found.ambiguous == {} and found.details == {"full_name": "family_first"}


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(8))), st.integers(5, 120))
def test_never_one_column_for_two_fields_in_any_column_order(order: list[int], n: int) -> None:
    rows = [[r[i] for i in order] for r in _people(n)]
    found = recognise.recognise(_columns(rows), recognise.ORDER, TODAY)
    taken = [*found.fields.values(), *(c for cs in found.ambiguous.values() for c in cs)]
    assert len(taken) == len(set(taken))
    assert found.fields["full_name"] == order.index(1)
    assert found.fields["personal_id"] == order.index(4)


def test_two_columns_that_fit_alike_are_left_out_and_named() -> None:
    rows = [[*r[:3], r[2]] for r in _people(50)]  # a second column of dates, as full
    found = recognise.recognise(_columns(rows), ["full_name", "birth_date"], TODAY)
    assert "birth_date" not in found.fields and found.ambiguous == {"birth_date": [2, 3]}
    # A sparse one does not tie with a full one: the CMND column's 12-digit cousin.
    rows = [[*r[:5], r[4] if i % 10 == 0 else ""] for i, r in enumerate(_people(50))]
    found = recognise.recognise(_columns(rows), ["personal_id"], TODAY)
    assert found.fields == {"personal_id": 4}


def test_a_name_column_with_a_province_named_person() -> None:
    # A woman called Ninh Bình, a man called Hà Nam: the column is still the names.
    rows = _people(60)
    rows[3][1], rows[17][1] = "Ninh Bình", "HÀ NAM"
    found = recognise.recognise(_columns(rows), ["full_name", "province"], TODAY)
    assert found.fields == {"full_name": 1, "province": 7}


def test_given_name_first_is_told() -> None:
    rows = [[" ".join(reversed(r[1].split()))] for r in _people(60)]
    found = recognise.recognise(_columns(rows), ["full_name"], TODAY)
    assert found.fields == {"full_name": 0} and found.details == {"full_name": "given_first"}


def test_codes_and_counters() -> None:
    fits = recognise.column_fits
    # 1/0 is sex only when both appear (a yes/no column holds 1/0 too).
    assert "sex" in fits(["1", "0", "1", "1"]) and "sex" not in fits(["1", "1", "1", "1"])
    assert "province" in fits(["01", "79", "48", "01"]) and not fits(["01", "01", "01"])
    # A unique code is the agency's key, a row counter is not, nor is a number of another field.
    assert set(fits(["KH-0001", "KH-0917", "KH-0033"])) == {"agency_key"}
    assert fits(["7", "8", "9", "10", "11"]) == {}
    assert set(fits(["001090000001", "001090000002", "001090000003"])) == {"personal_id"}
    # Ten-digit keys are not personal ID numbers that lost their zeros: most IDs keep 12.
    assert set(fits(["0087952806", "6211691257", "9038546903"])) == {"agency_key"}
    assert fits(["", "", "", "x"]) == {}  # too few values to tell


# -- the proposal: headers first, values for the gaps -----------------------------------------

ENGLISH = ["Record", "Surname and forename", "DOB", "Gender", "NationalNo", "Notes"]


def _english_rows(n: int) -> list[list[str]]:
    return [
        [
            r[0],
            " ".join(reversed(r[1].split())),
            r[2],
            r[3],
            r[4][:3] + " " + r[4][3:6] + "-" + r[4][6:],
            "ok" if i % 3 else "",
        ]
        for i, r in enumerate(_people(n))
    ]


def test_headers_win_and_values_fill_the_gaps() -> None:
    rows = _english_rows(80)
    proposed = columns.propose_mapping(ENGLISH, None, rows, today=TODAY)
    assert proposed.fields == {
        "agency_key": "Record",
        "full_name": "Surname and forename",
        "birth_date": "DOB",
        "sex": "Gender",
        "personal_id": "NationalNo",
    }
    assert proposed.sources == {
        "agency_key": "values",
        "full_name": "values",
        "birth_date": "exact",
        "sex": "exact",
        "personal_id": "values",
    }
    assert proposed.details == {"full_name": "given_first"} and proposed.unmapped == ["Notes"]
    # A header that matches is taken even where the values say otherwise.
    headers = ["Record", "ho_ten", "DOB", "Gender", "NationalNo", "Notes"]
    assert columns.propose_mapping(headers, None, rows).fields["full_name"] == "ho_ten"
    # A field given as "" is not looked for.
    kept_out = columns.propose_mapping(ENGLISH, {"personal_id": ""}, rows, today=TODAY)
    assert "personal_id" not in kept_out.fields and "NationalNo" in kept_out.unmapped


def test_a_missing_name_names_the_columns_that_might_hold_it() -> None:
    rows = [[*r[:3], r[1].upper()] for r in _people(40)]
    headers = ["a", "b", "c", "d"]
    proposed = columns.propose_mapping(headers, None, rows, today=TODAY)
    assert proposed.ambiguous == {"full_name": ["b", "d"]} and "full_name" not in proposed.fields
    with pytest.raises(ExtractError) as caught:
        columns.check_mapping(proposed, headers)
    assert caught.value.code == "extract-columns-missing"
    assert "full name (họ và tên)" in caught.value.message
    assert "the columns 'b' and 'd' both look like the full name" in caught.value.message
    # Nothing name-like at all: the plain message.
    nameless = [[r[0], r[2]] for r in _people(40)]
    proposed = columns.propose_mapping(["a", "c"], None, nameless, today=TODAY)
    with pytest.raises(ExtractError) as caught:
        columns.check_mapping(proposed, ["a", "c"])
    assert "needs a column for the full name" in caught.value.message
    assert "could be" not in caught.value.message


def test_keys_may_repeat_a_little() -> None:
    keys = [f"HS{i:04d}" for i in range(100)]
    assert set(recognise.column_fits([*keys, keys[3], keys[7]])) == {"agency_key"}
    assert recognise.column_fits(keys[:50] * 2) == {}  # every key twice: not a key


def test_the_probe_reads_a_thousand_rows_of_a_csv(tmp_path: Path) -> None:
    """The delimiter is chosen on 200 records; the columns are recognised on 1,000."""
    from dancu.reconcile import readers

    rows = "".join(f"HS{i:05d},Nguyễn Văn An\n" for i in range(1500))
    path = tmp_path / "long.csv"
    path.write_text("a,b\n" + rows, encoding="utf-8")
    sniffed = readers.sniff(path)
    assert len(sniffed.sample) == readers.SAMPLE_ROWS and len(sniffed.probe) == 1000
    assert sniffed.probe[-1] == ["HS00999", "Nguyễn Văn An"]
