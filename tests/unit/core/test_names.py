"""Vietnamese name keys: NFC/NFD, tone placement (Hòa = Hoà), Đ, case, spacing, order."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.core.names import canonical_name, clean_name, fold, search_key, token_key

SYLLABLES = [
    "Nguyễn",
    "Thị",
    "Hoà",
    "Hòa",
    "Thuỷ",
    "Thủy",
    "Khoẻ",
    "Khỏe",
    "Quỳnh",
    "Giàu",
    "Người",
    "Đặng",
    "Trường",
    "Ngoài",
    "Huỳnh",
    "Võ",
    "Vũ",
    "Ánh",
    "Đức",
    "Yến",
]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hòa", "Hoà"),
        ("Thủy", "Thuỷ"),
        ("Khỏe", "Khoẻ"),
        ("Lê Thị Hoà", "lê   thị HÒA"),
        ("Thụy", "Thuỵ"),
    ],
)
def test_tone_placement_variants_share_a_search_key(a: str, b: str) -> None:
    assert search_key(a) == search_key(b)


def test_distinct_names_stay_distinct() -> None:
    assert search_key("Hoà") != search_key("Hoa")
    assert search_key("Huỳnh") != search_key("Hoàng")


def test_fold_removes_marks_and_maps_d_with_stroke() -> None:
    assert fold("Đặng Văn Đức") == "dang van duc"
    assert fold(unicodedata.normalize("NFD", "Nguyễn Thị Ánh")) == "nguyen thi anh"


def test_clean_name_keeps_the_registered_spelling() -> None:
    nfd = unicodedata.normalize("NFD", "Trần  Thị   Hòa ")
    assert clean_name(nfd) == "Trần Thị Hòa"  # NFC, spacing fixed, tone position untouched


def test_token_key_ignores_order() -> None:
    assert token_key("Nguyễn Văn An") == token_key("An Nguyen Van")


names = st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=4).map(" ".join)


@given(names, st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
def test_keys_independent_of_unicode_normalisation(name: str, form: str) -> None:
    other = unicodedata.normalize(form, name)  # type: ignore[arg-type]
    assert search_key(other) == search_key(name)
    assert fold(other) == fold(name)


@given(names)
def test_canonical_name_is_idempotent(name: str) -> None:
    once = canonical_name(name)
    assert canonical_name(once) == once
    assert fold(once) == fold(name)
