"""Personal ID codec (Circular 07/2016 Art. 7 structure) and masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.core import ids

provinces = st.sampled_from(sorted(ids.PROVINCE_CODES))
sexes = st.sampled_from(["M", "F"])
years = st.integers(min_value=1900, max_value=2399)


def test_reference_example_decodes() -> None:
    # vietnam.md sec. 1: 087084000999 = Đồng Tháp, male, born 1984.
    pid = ids.parse("087084000999")
    assert (pid.place_code, pid.sex, pid.birth_year, pid.serial) == ("087", "M", 1984, "000999")


@pytest.mark.parametrize(
    ("digit", "sex", "year"),
    [
        (0, "M", 1990),
        (1, "F", 1990),
        (2, "M", 2090),
        (3, "F", 2090),
        (4, "M", 2190),
        (5, "F", 2190),
        (6, "M", 2290),
        (7, "F", 2290),
        (8, "M", 2390),
        (9, "F", 2390),
    ],
)
def test_century_sex_digit_table(digit: int, sex: str, year: int) -> None:
    pid = ids.parse(f"001{digit}90123456")
    assert (pid.sex, pid.birth_year) == (sex, year)


@given(provinces, sexes, years, st.integers(0, 999_999))
def test_encode_decode_round_trip(place: str, sex: str, year: int, serial: int) -> None:
    number = ids.make_prefix(place, sex, year) + f"{serial:06d}"  # type: ignore[arg-type]
    pid = ids.parse(number)
    assert (pid.place_code, pid.sex, pid.birth_year, int(pid.serial)) == (place, sex, year, serial)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("00109001234", "exactly 12 digits"),
        ("0010900123456", "exactly 12 digits"),
        ("00109001234a", "exactly 12 digits"),
        ("003090012345", "unknown province code 003"),
        ("000090012345", "unknown province code 000"),
    ],
)
def test_invalid_numbers_name_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ids.InvalidPersonalID) as err:
        ids.parse(value)
    assert reason in err.value.reason
    assert value not in str(err.value)  # never echo a full number


def test_whitespace_tolerated_and_country_codes_accepted() -> None:
    assert ids.parse(" 001 090 012345 ").number == "001090012345"
    assert ids.parse("175090012345").is_country_code


def test_year_outside_supported_centuries_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        ids.make_prefix("001", "M", 1899)


@given(st.from_regex(r"\d{12}", fullmatch=True))
def test_mask_keeps_only_ends(number: str) -> None:
    masked = ids.mask(number)
    assert masked[:4] == number[:4] and masked[-2:] == number[-2:] and masked[4:10] == "*" * 6


def test_mask_text_masks_ids_and_cmnd_in_free_text() -> None:
    text = "GET /api/v1/persons/001090012345 cmnd=271450001 port 8000"
    assert ids.mask_text(text) == "GET /api/v1/persons/0010******45 cmnd=2714***01 port 8000"
