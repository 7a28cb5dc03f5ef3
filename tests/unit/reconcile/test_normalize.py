"""The dc_* normalisation functions on DuckDB, with hand-worked values: folding, the
mark-aware key that ignores where the tone mark sits, word order, the Hoàng/Huỳnh and Vũ/Võ
readings, numbers, dates in the formats agencies use, sex; and a property test that the SQL
fold agrees with dancu.core.names.fold on Vietnamese names."""

from __future__ import annotations

import unicodedata
from datetime import date

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dancu.core.names import fold
from dancu.reconcile.normalize import MARKED
from dancu.reconcile.reference import sql_fold
from tests.helpers import duckdb_with_functions

_SHARED = duckdb_with_functions()


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return _SHARED


def one(con: duckdb.DuckDBPyConnection, expr: str, value: object) -> object:
    found = con.execute(f"SELECT {expr}", [value]).fetchone()
    assert found is not None
    return found[0]


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Nguyễn Văn Hoà", "nguyen van hoa"),
        ("NGUYỄN VĂN HÒA", "nguyen van hoa"),
        ("Đặng  Thị-Huệ", "dang thi hue"),
        ("  Giàng A Páo ", "giang a pao"),
        ("", None),
        ("---", None),
    ],
)
def test_fold(con: duckdb.DuckDBPyConnection, name: str, folded: str | None) -> None:
    assert one(con, "dc_fold(?)", name) == folded


def test_sig_ignores_where_the_tone_sits_but_not_which_tone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    sig = lambda n: one(con, "dc_sig(?)", n)  # noqa: E731
    assert sig("Nguyễn Văn Hoà") == sig("NGUYỄN VĂN HÒA") == "nguyên văn hoa|4  2"
    assert sig("Trần Thị Thuỷ") == sig("Trần Thị Thủy")
    assert sig("Nguyễn Văn Hoa") != sig("Nguyễn Văn Hoà") != sig("Nguyễn Văn Hóa")
    # A syllable without a tone keeps its place: Văn's tone is not Hoà's.
    assert sig("Nguyễn Văn Hoà") != sig("Nguyễn Vằn Hoa")
    assert sig("Nguyen Van Hoa") == "nguyen van hoa|  "


def test_words_and_variants(con: duckdb.DuckDBPyConnection) -> None:
    tokens = lambda n: one(con, "dc_tokens(dc_fold(?))", n)  # noqa: E731
    variant = lambda n: one(con, "dc_variant(dc_fold(?))", n)  # noqa: E731
    assert tokens("Hùng Nguyễn Văn") == tokens("Nguyễn Văn Hùng") == "hung nguyen van"
    assert variant("Huỳnh Võ Ánh") == variant("Hoàng Vũ Ánh") == "anh hoang vu"
    # Only whole words: "Vong" is not "Vung".
    assert variant("Lê Vong") == "le vong"
    assert one(con, "dc_first(dc_fold(?))", "Nguyễn Thị Mai") == "nguyen"
    assert one(con, "dc_last(dc_fold(?))", "Nguyễn Thị Mai") == "mai"
    assert one(con, "dc_marked(?)", "Nguyen Thi Mai") is False
    assert one(con, "dc_marked(?)", "NGUYỄN THỊ MAI") is True


@pytest.mark.parametrize(
    ("text", "parsed", "year"),
    [
        ("01/02/2020", date(2020, 2, 1), 2020),
        ("1/2/2020", date(2020, 2, 1), 2020),
        ("01-02-2020", date(2020, 2, 1), 2020),
        ("1.2.2020", date(2020, 2, 1), 2020),
        ("2020-02-01", date(2020, 2, 1), 2020),
        ("2020/2/1", date(2020, 2, 1), 2020),
        ("20200201", date(2020, 2, 1), 2020),
        ("5/3/85", date(1985, 3, 5), 1985),
        ("05-03-30", date(1930, 3, 5), 1930),  # 2030 is to come: a century back
        ("1.2.20", date(2020, 2, 1), 2020),
        ("29/02/29", None, None),
        ("2020", None, 2020),
        ("31/02/2020", None, None),
        ("13/13/2020", None, None),
        ("x", None, None),
        ("", None, None),
    ],
)
def test_dates(
    con: duckdb.DuckDBPyConnection, text: str, parsed: date | None, year: int | None
) -> None:
    assert one(con, "dc_date(?)", text) == parsed
    assert one(con, "dc_year(?)", text) == year


@pytest.mark.parametrize(
    ("name", "given_first", "family_first"),
    [
        ("Hùng Văn Nguyễn", True, "nguyễn văn hùng"),
        ("HUNG VAN NGUYEN", True, "nguyen van hung"),
        ("Khai Thị Minh Nguyễn", True, "nguyễn thị minh khai"),
        ("Quân Nguyễn", True, "nguyễn quân"),  # Quân is not Quan: the marks tell
        ("QUAN NGUYEN", False, None),  # without them, either could be the family name
        ("Nguyễn Văn Hùng", False, None),
        ("Khổng Thị Mai", False, None),  # both ends family names: left as written
        ("Hùng Nguyễn Văn", False, None),  # given name moved to the front: the words key
        ("Nguyễn", False, None),
        ("", False, None),
    ],
)
def test_names_written_given_name_first(
    con: duckdb.DuckDBPyConnection, name: str, given_first: bool, family_first: str | None
) -> None:
    words = one(con, "dc_words(?)", name)
    assert one(con, "coalesce(dc_given_first(dc_words(?)), false)", name) is given_first
    if family_first:
        assert one(con, "dc_family_first(?)", words) == family_first
    # The Python recogniser tells the order the same way.
    from dancu.reconcile.recognise import family_name_end

    assert (family_name_end(name) == "given_first") is given_first


def test_words_keep_their_marks() -> None:
    assert one(_SHARED, "dc_words(?)", "  ĐẶNG  Thị-Huệ ") == "đặng thị huệ"


@pytest.mark.parametrize(
    ("text", "sex"),
    [("Nam", "M"), ("nữ", "F"), ("NU", "F"), ("m", "M"), ("F", "F"), ("1", "M"), ("0", "F")],
)
def test_sex(con: duckdb.DuckDBPyConnection, text: str, sex: str) -> None:
    assert one(con, "dc_sex(?)", text) == sex
    assert one(con, "dc_sex(?)", "không rõ") is None


def test_digits(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "dc_digits(?)", "001 090-012.345") == "001090012345"
    assert one(con, "dc_digits(?)", "không có") is None


_LETTERS = sorted(set(MARKED + MARKED.upper() + "abcdeghiklmnopqrstuvxyĐ"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=_LETTERS, min_size=1, max_size=7), min_size=1, max_size=5),
    st.sampled_from(["NFC", "NFD"]),
)
def test_sql_fold_agrees_with_python(words: list[str], form: str) -> None:
    name = " ".join(words)
    con = _SHARED
    # The pipeline's inputs are NFC (the readers see to it); Python folds either form.
    nfc = unicodedata.normalize("NFC", name)
    found = con.execute("SELECT dc_fold(?)", [nfc]).fetchone()
    assert found is not None
    assert found[0] == (sql_fold(unicodedata.normalize(form, name)) or None)
    assert sql_fold(name) == " ".join(fold(name).split())
