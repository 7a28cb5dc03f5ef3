"""Dates typed in the pages (dd/mm/yyyy or ISO), times in Vietnam's time zone, agencies by
name (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.core import i18n
from dancu.core.errors import Invalid
from dancu.core.formats import DATE_FORMAT, NO_SUCH_DATE, agency_name, local_time, parse_date


@given(st.dates(min_value=date(1000, 1, 1)))
def test_a_date_reads_back_from_both_ways_of_writing_it(day: date) -> None:
    assert parse_date(day.strftime("%d/%m/%Y"), "d") == day
    assert parse_date(day.isoformat(), "d") == day
    assert parse_date(f"{day.day}/{day.month}/{day:%Y}", "d") == day


@pytest.mark.parametrize(
    "typed", ["31/02/2025", "29/02/2025", "2025-02-31", "31/04/2024", "0/1/2020", "12/13/2020"]
)
def test_a_date_that_does_not_exist_is_named_so(typed: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_date(typed, "birth_date")
    assert refused.value.message == NO_SUCH_DATE and refused.value.field == "birth_date"


@pytest.mark.parametrize("typed", ["tomorrow", "2025/02/01x", "1-2", "12345678", "01/02/25"])
def test_a_date_written_wrongly_is_a_format_error(typed: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_date(typed, "d")
    assert refused.value.message == DATE_FORMAT


def test_blank_is_no_date() -> None:
    assert parse_date("  ", "d") is None and parse_date(None, "d") is None


def test_times_are_shown_in_vietnam_time() -> None:
    # 20:30 UTC on 31 December is 03:30 on 1 January in Hà Nội (UTC+7 all year).
    assert local_time(datetime(2025, 12, 31, 20, 30, tzinfo=UTC)) == "01/01/2026 03:30"
    assert local_time(datetime(2025, 12, 31, 20, 30)) == "01/01/2026 03:30"  # naive = UTC
    assert local_time(None) == ""


def test_agencies_are_named_in_the_page_language() -> None:
    token = i18n.current_locale.set("vi")
    try:
        assert agency_name("bhxh") == "Bảo hiểm xã hội Việt Nam"
        assert agency_name("BHXH") == "Bảo hiểm xã hội Việt Nam"
        assert agency_name("vcb") == "VCB"  # unknown codes: the agency's own abbreviation
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert agency_name("bhxh") == "Vietnam Social Security"
    finally:
        i18n.current_locale.reset(token)
