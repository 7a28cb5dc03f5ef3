"""Recognising an extract's columns by their values, for headers no vocabulary knows ("col3",
"Surname and forename", "NationalNo"): the first rows of each column the headers left
unmapped (``PROBE_ROWS``) are scored against each field still missing, and a column is given
to a field only when its values clearly fit and no other column fits about as well.

What each field's values look like (the value recognisers, one per field):

- ``personal_id``: 12 digits, possibly grouped by spaces, dots or dashes ("001 234 567 890",
  "001-234-567-890"); 10 or 11 plain digits count too (a spreadsheet dropped the leading
  zeros), but at least half the column must have all 12.
- ``old_id``: 9 digits (an old CMND number), grouped or not.
- ``birth_date``: a date in a form the pipeline reads (``dd/mm/yyyy``, ``d/m/yyyy``,
  ``dd-mm-yyyy``, ``dd.mm.yyyy``, ``d/m/yy``, ``yyyy-mm-dd``, ``yyyymmdd``) or a year alone,
  between 1900 and today.
- ``sex``: Nam/Nữ, M/F, male/female, trai/gái, 1/0 (``fields.SEX_VALUES``), any case, with or
  without marks; a column of digits only when both sexes appear (1/0 is also what a yes/no
  column holds).
- ``province``: a province name of either scheme, a short form ("TP HCM") or a code
  (``reference.province_keys``); a column of numbers only when it has two or more of them.
- ``full_name``: two to five words of letters, not a province, in a column of many distinct
  values where a family name (``core.names.FAMILY_NAMES``) is the first or the last word of
  most values; which end it mostly is tells the name order.
- ``address``: three or more words with a number, a comma or a word such as "thôn", "xã",
  "phường", "đường".
- ``agency_key``: a column that fits nothing else, whose values are short, without spaces,
  nearly all different (``KEY_DISTINCT``: a few repeats are reported when staged), and not a
  row counter (1, 2, 3...).

A column fits a field when at least ``FIT`` of its non-empty values look like it; among the
columns that fit, the strongest (share fitting × share filled) wins unless another reaches
``TIE`` of its strength: then the field is left out and both are named as candidates, so the
officer (or ``--column``) decides. Fields are considered in ``ORDER``; a column goes to one
field at most.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Final, Literal

from dancu.core.names import FAMILY_NAMES, FOLDED_FAMILY_NAMES, fold
from dancu.reconcile.fields import SEX_VALUES
from dancu.reconcile.reference import province_keys, sql_fold

PROBE_ROWS: Final = 1000
MIN_VALUES: Final = 3  # fewer non-empty values than this in the probe tell nothing
FIT: Final = 0.8
TIE: Final = 0.9
KEY_DISTINCT: Final = 0.95  # of an agency key's values, at least this share all different
# The order fields are recognised in: the most distinctive values first, the agency key
# (whatever is left that is unique) last.
ORDER: Final = (
    "personal_id",
    "old_id",
    "birth_date",
    "sex",
    "province",
    "full_name",
    "address",
    "agency_key",
)
NameOrder = Literal["family_first", "given_first"]
_MARKED_FAMILY_NAMES: Final = frozenset(n.lower() for n in FAMILY_NAMES)

_GROUPED_DIGITS = re.compile(r"\d+(?:[ .\-]\d+)*")
_NON_DIGIT = re.compile(r"\D")
_DMY = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})")
_YMD = re.compile(r"(\d{4})([/\-])(\d{1,2})\2(\d{1,2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_YEAR = re.compile(r"\d{4}")
_WORD = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)?")
# Words that name a place in an address, compared with their marks: folded, several are
# names too (phường/Phương, huyện/Huyền, đường/Dương, quận/Quân).
_ADDRESS_WORDS: Final = frozenset(
    ("số", "thôn", "ấp", "xóm", "tổ", "bản", "khu", "khóm", "đường", "phố", "ngõ", "ngách",
     "hẻm", "phường", "xã", "trấn", "quận", "huyện", "tỉnh")
)  # fmt: skip


# -- the value recognisers --------------------------------------------------------------------


def id_digits(value: str) -> str | None:
    """The digits of a number written with or without spaces, dots or dashes between groups
    ("001 234-567.890"), or None when the value is anything else."""
    text = value.strip()
    return _NON_DIGIT.sub("", text) if _GROUPED_DIGITS.fullmatch(text) else None


def is_personal_id(value: str) -> bool:
    """12 digits (grouped or not), or 10-11 plain digits whose leading zeros were lost."""
    digits = id_digits(value)
    if digits is None:
        return False
    return len(digits) == 12 or (len(digits) in (10, 11) and digits == value.strip())


def is_old_id(value: str) -> bool:
    """An old CMND number: 9 digits, grouped or not."""
    digits = id_digits(value)
    return digits is not None and len(digits) == 9


def parse_date(value: str, today: date | None = None) -> date | None:
    """The date in one of the forms the pipeline's ``dc_date`` reads, or None. A two-digit
    year is the latest year ending so that is not after ``today`` (as ``dc_date``)."""
    text = value.strip()
    try:
        if m := _DMY.fullmatch(text):
            day, month, year = int(m[1]), int(m[3]), int(m[4])
            if len(m[4]) == 2:
                now = today or date.today()
                year += 2000
                if date(year, month, day) > now:
                    year -= 100
            return date(year, month, day)
        if m := _YMD.fullmatch(text):
            return date(int(m[1]), int(m[3]), int(m[4]))
        if m := _COMPACT.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:  # 31/02, 13/13
        return None
    return None


def is_birth_date(value: str, today: date | None = None) -> bool:
    """A date (or a year alone) from 1900 to today."""
    now = today or date.today()
    text = value.strip()
    if _YEAR.fullmatch(text):
        return 1900 <= int(text) <= now.year
    parsed = parse_date(text, now)
    return parsed is not None and date(1900, 1, 1) <= parsed <= now


def sex_of(value: str) -> str | None:
    """``M`` or ``F`` for a value of a sex column (``fields.SEX_VALUES``), else None."""
    return SEX_VALUES.get(fold(value).strip())


@cache
def _province_keys() -> frozenset[str]:
    return frozenset(key for key, _code, _legacy in province_keys())


def is_province(value: str) -> bool:
    """A province's name (either scheme, with or without "Tỉnh"/"TP"), short form or code."""
    return sql_fold(value) in _province_keys()


def name_words(value: str) -> list[str] | None:
    """The folded words of a value that looks like a person's name (two to five words of
    letters, a hyphen or apostrophe inside a word allowed, not a province), else None."""
    words = value.split()
    if not 2 <= len(words) <= 5 or not all(_WORD.fullmatch(w) for w in words):
        return None
    if is_province(value):
        return None
    return fold(value).split()


def family_name_end(value: str) -> NameOrder | None:
    """Where a name's family name stands: ``family_first`` when its first word is a family
    name, ``given_first`` when only its last word is, None when neither (or not a name).
    Words are compared with their marks when the name has any (as ``dc_given_first``):
    folded, some given names are family names (Thảo/Thào, Quân/Quan, Hạ/Hà)."""
    folded = name_words(value)
    if folded is None:
        return None
    marked = unicodedata.normalize("NFC", value).lower().split()
    words, families = (
        (marked, _MARKED_FAMILY_NAMES) if marked != folded else (folded, FOLDED_FAMILY_NAMES)
    )
    if words[0] in families:
        return "family_first"
    return "given_first" if words[-1] in families else None


def is_address(value: str) -> bool:
    """Three or more words with a house number, a comma or a word naming a place."""
    words = value.lower().replace(",", " ").split()
    if len(words) < 3:
        return False
    return "," in value or any(ch.isdigit() for ch in value) or bool(_ADDRESS_WORDS & set(words))


# -- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """How one column fits one field: the share of its non-empty values that look like it,
    and the share of the probe's rows that have a value."""

    share: float
    filled: float
    detail: str = ""  # what else the values say (the name order)

    @property
    def strength(self) -> float:
        return self.share * self.filled


# Each test runs once per distinct value (a column of sexes or provinces has a handful),
# weighted by how often the value occurs.
Values = Counter[str]


def _share(values: Values, test: Callable[[str], bool]) -> float:
    return sum(n for v, n in values.items() if test(v)) / values.total()


def _numeric(values: Values) -> bool:
    return all(v.strip().isdigit() for v in values)


def _fit_personal_id(values: Values) -> float:
    if _share(values, lambda v: len(id_digits(v) or "") == 12) < 0.5:
        return 0.0
    return _share(values, is_personal_id)


def _fit_sex(values: Values) -> float:
    sexes = {v: sex_of(v) for v in values}
    if _numeric(values) and not {"M", "F"} <= set(sexes.values()):
        return 0.0
    return _share(values, lambda v: sexes[v] is not None)


def _fit_province(values: Values) -> float:
    if _numeric(values) and len(values) < 2:
        return 0.0
    return _share(values, is_province)


def _fit_name(values: Values) -> tuple[float, str]:
    ends = Counter[NameOrder | None]()
    for v, n in values.items():
        ends[family_name_end(v)] += n
    named = _share(values, lambda v: name_words(v) is not None) * values.total()
    first, last = ends["family_first"], ends["given_first"]
    # Names repeat, but not like a code list: a column of a few values is something else.
    distinct = len(values) / values.total()
    if named == 0 or (first + last) < 0.5 * named or (values.total() >= 20 and distinct < 0.3):
        return 0.0, ""
    return named / values.total(), "given_first" if last > first else "family_first"


def _fit_key(values: Values) -> float:
    # A few repeats are the agency's to fix (staging reports them), not a reason to doubt.
    if len(values) < KEY_DISTINCT * values.total():
        return 0.0
    if any(len(v) > 40 or " " in v.strip() for v in values):
        return 0.0
    if _numeric(values):
        numbers = sorted(int(v) for v in values)
        if numbers[-1] - numbers[0] == len(numbers) - 1:  # 1, 2, 3...: a row counter
            return 0.0
    return 1.0


def column_fits(values: Sequence[str], today: date | None = None) -> dict[str, Fit]:
    """The fields a column's values fit (at least ``FIT`` of the non-empty ones), with how
    well. ``values`` are the column's probe values, "" for empty."""
    filled = Counter(v for v in values if v.strip())
    if not filled or filled.total() < min(MIN_VALUES, len(values)):
        return {}
    cover = filled.total() / len(values)
    shares: dict[str, tuple[float, str]] = {
        "personal_id": (_fit_personal_id(filled), ""),
        "old_id": (_share(filled, is_old_id), ""),
        "birth_date": (_share(filled, lambda v: is_birth_date(v, today)), ""),
        "sex": (_fit_sex(filled), ""),
        "province": (_fit_province(filled), ""),
        "full_name": _fit_name(filled),
        "address": (_share(filled, is_address), ""),
    }
    fits = {f: Fit(s, cover, d) for f, (s, d) in shares.items() if s >= FIT}
    if not fits and _fit_key(filled) >= FIT:
        fits["agency_key"] = Fit(1.0, cover)
    return fits


@dataclass(frozen=True)
class Recognised:
    """What the values say: the column (index) each field was given, the fields left out
    because two or more columns fit them about as well (with those columns), and per field
    what else the values told (``Fit.detail``)."""

    fields: dict[str, int] = field(default_factory=dict)
    ambiguous: dict[str, list[int]] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)


def recognise(
    columns: Mapping[int, Sequence[str]], wanted: Sequence[str], today: date | None = None
) -> Recognised:
    """Give the ``wanted`` fields columns by their values. ``columns``: column index → its
    probe values (only the columns still free)."""
    fits = {i: column_fits(values, today) for i, values in columns.items()}
    out = Recognised()
    used: set[int] = set()
    for name in (f for f in ORDER if f in wanted):
        ranked = sorted(
            ((fit.strength, i) for i, found in fits.items() if i not in used and name in found
             for fit in [found[name]]),
            reverse=True,
        )  # fmt: skip
        if not ranked:
            continue
        best, column = ranked[0]
        rivals = [i for strength, i in ranked[1:] if strength >= TIE * best]
        if rivals:
            out.ambiguous[name] = sorted([column, *rivals])
            used.update(out.ambiguous[name])  # kept for the officer to choose, not reused
            continue
        out.fields[name] = column
        used.add(column)
        if fits[column][name].detail:
            out.details[name] = fits[column][name].detail
    return out
