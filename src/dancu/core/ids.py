"""Personal ID numbers (số định danh cá nhân): codec, masking and allocation.

Structure ``PPP G YY RRRRRR`` (Decree 137/2015 Art. 13, Circular 07/2016 Art. 7, Circular
59/2021 Art. 4; Decree 70/2024 no longer states it, so dancu treats it as a convention):

- ``PPP``: code of the province where the birth was registered (001-096) or a country code;
- ``G``: century and sex: 1900s male 0 / female 1, 2000s 2/3, 2100s 4/5, 2200s 6/7, 2300s 8/9;
- ``YY``: last two digits of the birth year;
- ``RRRRRR``: six random digits. There is no checksum.

Allocation (DESIGN "Allocating personal ID numbers"): the suffix is drawn at random so numbers
do not leak registration order, and uniqueness comes from the primary key of
``personal_id_allocation`` with insert-and-retry on conflict, never from read-then-write.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.core.errors import Invalid
from dancu.core.i18n import N_
from dancu.core.models import PersonalIdAllocation

log = logging.getLogger(__name__)

Sex = Literal["M", "F"]

# Circular 07/2016 Appendix 1: birth-registration province codes (statistics-office codes
# zero-padded to three digits). Numbers keep their code after the 2025 merger.
PROVINCE_CODES: frozenset[str] = frozenset(
    f"{c:03d}"
    for c in (
        1,
        2,
        4,
        6,
        8,
        10,
        11,
        12,
        14,
        15,
        17,
        19,
        20,
        22,
        24,
        25,
        26,
        27,
        30,
        31,
        33,
        34,
        35,
        36,
        37,
        38,
        40,
        42,
        44,
        45,
        46,
        48,
        49,
        51,
        52,
        54,
        56,
        58,
        60,
        62,
        64,
        66,
        67,
        68,
        70,
        72,
        74,
        75,
        77,
        79,
        80,
        82,
        83,
        84,
        86,
        87,
        89,
        91,
        92,
        93,
        94,
        95,
        96,
    )
)
SUFFIX_SPACE = 1_000_000
MAX_ATTEMPTS = 40
WARN_FILL = 0.8

INVALID_ID = N_("invalid personal ID number")

_ID_RE = re.compile(r"^\d{12}$")
_SPACE_RE = re.compile(r"\s")
_ANY_ID_RE = re.compile(r"(?<!\d)(\d{4})\d{3,6}(\d{2})(?!\d)")


class InvalidPersonalID(ValueError):
    """The text is not a well-formed personal ID number; ``reason`` says why."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{mask(value)}: {reason}")
        self.reason = reason

    @property
    def message(self) -> str:
        """The register's refusal: "invalid personal ID number: <reason>"."""
        return f"{INVALID_ID}: {self.reason}"


class PrefixExhausted(RuntimeError):
    """A prefix (place + century/sex + year) has too few free numbers left to allocate."""


@dataclass(frozen=True, slots=True)
class PersonalID:
    number: str
    place_code: str
    sex: Sex
    birth_year: int
    serial: str

    @property
    def prefix(self) -> str:
        return self.number[:6]

    @property
    def is_country_code(self) -> bool:
        return self.place_code[0] != "0"


def century_sex_digit(sex: Sex, birth_year: int) -> int:
    century = birth_year // 100
    if not 19 <= century <= 23:
        raise ValueError(f"birth year {birth_year} is outside 1900-2399")
    return (century - 19) * 2 + (1 if sex == "F" else 0)


def make_prefix(place_code: str, sex: Sex, birth_year: int) -> str:
    if not re.fullmatch(r"\d{3}", place_code):
        raise ValueError(f"place code {place_code!r} must be three digits")
    return f"{place_code}{century_sex_digit(sex, birth_year)}{birth_year % 100:02d}"


def parse(value: str) -> PersonalID:
    """Decode and validate a 12-digit personal ID number (whitespace is tolerated)."""
    number = _SPACE_RE.sub("", value)
    if not _ID_RE.fullmatch(number):
        raise InvalidPersonalID(value, "must be exactly 12 digits")
    place, g, yy = number[:3], int(number[3]), int(number[4:6])
    if place[0] == "0" and place not in PROVINCE_CODES:
        raise InvalidPersonalID(value, f"unknown province code {place}")
    if place == "000":
        raise InvalidPersonalID(value, "province code 000 is not assigned")
    year = 1900 + 100 * (g // 2) + yy
    return PersonalID(number, place, "F" if g % 2 else "M", year, number[6:])


def parse_issued(value: str, today: date | None = None) -> PersonalID:
    """``parse``, and a number someone can hold today: the birth year it encodes is not
    in the future (the codec itself spans 1900–2399). Inputs that name a person use this,
    so an impossible number is a malformed one (422), never an unknown one (404)."""
    pid = parse(value)
    if pid.birth_year > (today or date.today()).year:
        raise InvalidPersonalID(value, f"it encodes the birth year {pid.birth_year}")
    return pid


def issued_number(value: str, field: str = "personal_id") -> str:
    """The number of ``parse_issued``, or ``Invalid`` naming ``field``: how every input that
    names a person (the API, the forms, the async lookup) reads a personal ID number."""
    try:
        return parse_issued(value).number
    except InvalidPersonalID as exc:
        raise Invalid(exc.message, field) from None


def is_well_formed(value: str) -> bool:
    """Exactly twelve digits, as ``parse`` wants them before decoding (no whitespace, no
    province check): enough to refuse a typing slip early or to name a file after it."""
    return _ID_RE.fullmatch(value) is not None


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except InvalidPersonalID:
        return False
    return True


def mask(value: str) -> str:
    """``001090012345`` -> ``0010******45``: enough to tell records apart in a log."""
    return value[:4] + "*" * max(len(value) - 6, 0) + value[-2:] if len(value) > 6 else "***"


def mask_text(text: str) -> str:
    """Mask every 9- to 12-digit run (personal IDs, CMND numbers) inside free text."""
    return _ANY_ID_RE.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 6) + m.group(2), text)


def allocate(session: Session, place_code: str, sex: Sex, birth_year: int) -> PersonalID:
    """Reserve a fresh personal ID number inside the caller's transaction.

    Each attempt inserts a random candidate inside a SAVEPOINT; a primary-key conflict (another
    process won that number) rolls back only the savepoint and tries another. Collisions are
    rare until a prefix fills; after ``MAX_ATTEMPTS`` we count the prefix and fail loudly.
    """
    prefix = make_prefix(place_code, sex, birth_year)
    for _ in range(MAX_ATTEMPTS):
        candidate = f"{prefix}{secrets.randbelow(SUFFIX_SPACE):06d}"
        try:
            with session.begin_nested():
                session.add(PersonalIdAllocation(number=candidate, prefix=prefix))
        except IntegrityError:
            continue
        return parse(candidate)
    used = prefix_usage(session, prefix)
    raise PrefixExhausted(
        f"prefix {prefix}: {MAX_ATTEMPTS} random candidates were all taken "
        f"({used:,} of {SUFFIX_SPACE:,} numbers used)"
    )


def prefix_usage(session: Session, prefix: str) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(PersonalIdAllocation)
        .where(PersonalIdAllocation.prefix == prefix)
    )
    used = int(count or 0)
    if used >= WARN_FILL * SUFFIX_SPACE:
        log.warning("personal ID prefix %s is %.0f%% full", prefix, 100 * used / SUFFIX_SPACE)
    return used
