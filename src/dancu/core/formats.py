"""How the pages read and write dates, times and agency codes for people: dates as
dd/mm/yyyy (typed that way, or ISO 8601 as the API and old links write them), times in
Vietnam's time zone, agencies by their name rather than their code."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dancu.core.errors import Invalid
from dancu.core.i18n import N_, _, current_locale

DATE_FORMAT = N_("Write a date as dd/mm/yyyy")
NO_SUCH_DATE = N_("this date does not exist in the calendar")
# dd/mm/yyyy (also d/m/yyyy and with dots or dashes, as people type them) or yyyy-mm-dd.
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# The pattern the date inputs announce to the browser (the server still checks everything).
DATE_PATTERN = r"\d{1,2}[\/.\-]\d{1,2}[\/.\-]\d{4}|\d{4}-\d{1,2}-\d{1,2}"


def parse_date(raw: str | None, field: str) -> date | None:
    """A date typed in a form: ``None`` when blank; ``Invalid`` naming ``field`` when it is
    not written as a date, and a different message when it is written as one but does not
    exist (31/02/2025), which is a mistake of the day rather than of the format."""
    text = (raw or "").strip()
    if not text:
        return None
    if found := _DMY.fullmatch(text):
        day, month, year = (int(g) for g in found.groups())
    elif found := _ISO.fullmatch(text):
        year, month, day = (int(g) for g in found.groups())
    else:
        raise Invalid(DATE_FORMAT, field)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise Invalid(NO_SUCH_DATE, field)
    try:
        return date(year, month, day)
    except ValueError:
        raise Invalid(NO_SUCH_DATE, field) from None


def dmy(value: date | datetime | str | None) -> str:
    """A date for a page (dd/mm/yyyy); a date already typed by the user stays as typed."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return value.strftime("%d/%m/%Y")


def _vietnam() -> tzinfo:
    try:
        return ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:  # no time zone database: Vietnam keeps UTC+7 all year
        return timezone(timedelta(hours=7), "ICT")


VIETNAM = _vietnam()


def local_time(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A stored timestamp (UTC; naive ones from SQLite are UTC too) in Vietnam time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(VIETNAM).strftime(fmt)


# Sector agencies by the code their officers and grants carry. Unknown codes are shown
# upper-cased, as the agency's own abbreviation.
AGENCY_NAMES = {
    "bhxh": N_("Vietnam Social Security"),
    "gdt": N_("Tax Department"),
    "thue": N_("Tax Department"),
    "bca": N_("Ministry of Public Security"),
    "byt": N_("Ministry of Health"),
    "bgddt": N_("Ministry of Education and Training"),
    "nhnn": N_("State Bank of Vietnam"),
}


def in_page_language(vietnamese: str, english: str = "") -> str:
    """A text given in Vietnamese and, optionally, English (a service's purpose), in the
    page language; the Vietnamese where no English was given."""
    return english if english and current_locale.get() == "en" else vietnamese


def agency_name(code: str | None) -> str:
    """An agency's name in the page language ("Bảo hiểm xã hội Việt Nam" for ``bhxh``)."""
    if not code:
        return ""
    name = AGENCY_NAMES.get(code.strip().lower())
    return _(name) if name else code.upper()
