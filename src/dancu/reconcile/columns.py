"""Which column of an extract holds which canonical field (``fields.FIELDS``): proposed from
the headers (a saved profile, the vocabularies of ``fields.HEADER_SYNONYMS``) and, for the
fields the headers leave out, from the values (``recognise``); checked before staging.

The proposal (``ColumnMapping``) is what the officer confirms on the upload page and what
``dancu reconcile run`` prints: each field's column and how it was found.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from dancu.reconcile import recognise
from dancu.reconcile.encodings import ExtractError
from dancu.reconcile.fields import FIELDS, HEADER_SYNONYMS, header_key

# How a field's column was found: the agency's saved profile, a header of the vocabulary
# (exactly, or by its start), the column's values, or named by the caller (--column).
MappingSource = Literal["profile", "exact", "prefix", "values", "given"]

# How the fields are named to an officer, in the words of the agency's own forms.
FIELD_LABELS: Final[dict[str, str]] = {
    "agency_key": "agency record key (mã hồ sơ)",
    "full_name": "full name (họ và tên)",
    "birth_date": "date of birth (ngày sinh)",
    "sex": "sex (giới tính)",
    "personal_id": "personal ID number (số định danh cá nhân / số CCCD)",
    "old_id": "old ID card number (số CMND)",
    "address": "address (địa chỉ)",
    "province": "province (tỉnh/thành phố)",
}
# The fields of which a usable extract has at least one besides the name: they tell apart
# people of the same name.
IDENTIFYING: Final = ("personal_id", "old_id", "birth_date")
# Synonym keys shorter than this ("id", "ten") guess too much as prefixes ("tendem", "idcard").
_MIN_PREFIX: Final = 3


@dataclass(frozen=True)
class ColumnMapping:
    """A proposed mapping for the officer to confirm: the header that holds each field."""

    fields: dict[str, str]  # canonical field -> header, in FIELDS order
    unmapped: list[str]  # headers no field took, in file order
    sources: dict[str, MappingSource]  # how each field was found
    # Fields left out because several columns' values fit them about as well: the headers.
    ambiguous: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # What else the values told, by field: full_name -> "given_first" (names written given
    # name first) or "family_first".
    details: dict[str, str] = dataclasses.field(default_factory=dict)


def propose_mapping(
    headers: Sequence[str],
    saved: Mapping[str, str] | None = None,
    probe: Sequence[Sequence[str]] | None = None,
    *,
    today: date | None = None,
) -> ColumnMapping:
    """Guess the header of each canonical field: a saved profile first (where its headers are
    present), then an exact synonym key, then a header whose key starts with a synonym's key
    (longest synonym first), then, for the fields still missing, the values of the columns
    still free (``probe``: the first rows, as ``readers.Sniffed.probe``). Each header goes to
    at most one field. A field ``saved`` as "" is not in the file: its values are not looked
    for."""
    keys = [header_key(h) for h in headers]
    taken: dict[str, int] = {}
    sources: dict[str, MappingSource] = {}

    def take(field: str, index: int, source: MappingSource) -> None:
        taken[field], sources[field] = index, source

    for field, header in (saved or {}).items():
        if field not in FIELDS or field in taken:
            continue
        # The profile was found by the header keys' signature: "HO TEN" matches "Họ tên".
        index = _index(headers, header, taken)
        if index is None:
            index = _index(keys, header_key(header), taken)
        if index is not None:
            take(field, index, "profile")
    for field in FIELDS:
        for synonym in HEADER_SYNONYMS[field] if field not in taken else ():
            index = _index(keys, header_key(synonym), taken)
            if index is not None:
                take(field, index, "exact")
                break
    guesses = sorted(
        (-len(skey), order, i, field)
        for order, field in enumerate(FIELDS)
        if field not in taken
        for skey in {header_key(s) for s in HEADER_SYNONYMS[field]}
        if len(skey) >= _MIN_PREFIX
        for i, key in enumerate(keys)
        if key.startswith(skey)
    )
    for _, _, i, field in guesses:
        if field not in taken and i not in taken.values():
            take(field, i, "prefix")
    found = _from_values(headers, taken, saved or {}, probe or [], today)
    for field, index in found.fields.items():
        take(field, index, "values")
    mapping: dict[str, str] = {f: headers[taken[f]] for f in FIELDS if f in taken}
    used = set(taken.values())
    unmapped = [h for i, h in enumerate(headers) if i not in used]
    return ColumnMapping(
        mapping,
        unmapped,
        {f: sources[f] for f in mapping},
        {f: [headers[i] for i in found.ambiguous[f]] for f in FIELDS if f in found.ambiguous},
        found.details,
    )


def _from_values(
    headers: Sequence[str],
    taken: dict[str, int],
    saved: Mapping[str, str],
    probe: Sequence[Sequence[str]],
    today: date | None,
) -> recognise.Recognised:
    wanted = [f for f in FIELDS if f not in taken and saved.get(f) != ""]
    if not probe or not wanted:
        return recognise.Recognised()
    used = set(taken.values())
    columns = {
        i: [row[i] if i < len(row) else "" for row in probe]
        for i in range(len(headers))
        if i not in used
    }
    return recognise.recognise(columns, wanted, today)


def _index(values: Sequence[str], wanted: str, taken: dict[str, int]) -> int | None:
    used = set(taken.values())
    return next((i for i, v in enumerate(values) if v == wanted and i not in used), None)


def check_mapping(mapping: ColumnMapping | Mapping[str, str], headers: Sequence[str]) -> None:
    """Refuse a mapping that names an unknown field, a header the file does not have or one
    header twice (``extract-mapping``), or lacks the full name or every identifying field
    (``extract-columns-missing``, naming the columns that might hold it when a
    ``ColumnMapping`` left it out as ambiguous)."""
    fields = as_dict(mapping)
    ambiguous = mapping.ambiguous if isinstance(mapping, ColumnMapping) else {}
    for field, header in fields.items():
        if field not in FIELDS:
            raise ExtractError("extract-mapping", f"{field!r} is not a field of an extract")
        if header not in headers:
            raise ExtractError("extract-mapping", f"the file has no column {header!r}")
    repeated = sorted({h for h in fields.values() if list(fields.values()).count(h) > 1})
    if repeated:
        raise ExtractError(
            "extract-mapping", f"the column {repeated[0]!r} is mapped to more than one field"
        )
    missing = []
    if "full_name" not in fields:
        missing.append(f"a column for the {FIELD_LABELS['full_name']}")
    if not any(f in fields for f in IDENTIFYING):
        labels = [FIELD_LABELS[f] for f in IDENTIFYING]
        missing.append(f"a column for at least one of {', '.join(labels[:-1])} or {labels[-1]}")
    if missing:
        lacking = ["full_name"] if "full_name" not in fields else []
        lacking += list(IDENTIFYING) if len(missing) > len(lacking) else []
        unsure = [
            f"{_all(ambiguous[f])} look like the {FIELD_LABELS[f]}"
            for f in lacking
            if f in ambiguous
        ]
        advice = (
            f": {'; '.join(unsure)}; map the one that holds it"
            if unsure
            else "; map the column that holds it, or ask the agency to include it"
        )
        raise ExtractError(
            "extract-columns-missing", f"the extract needs {' and '.join(missing)}{advice}"
        )


def _all(headers: Sequence[str]) -> str:
    """ "the columns 'a' and 'b' both", "the columns 'a', 'b' and 'c' all"."""
    quoted = [repr(h) for h in headers]
    both = "both" if len(quoted) == 2 else "all"
    return f"the columns {', '.join(quoted[:-1])} and {quoted[-1]} {both}"


def as_dict(mapping: ColumnMapping | Mapping[str, str]) -> dict[str, str]:
    """The field → header pairs of a mapping, proposed or given."""
    return dict(mapping.fields if isinstance(mapping, ColumnMapping) else mapping)


def signature(headers: Sequence[str]) -> str:
    """A stable key for a set of columns (order, case, accents and punctuation aside), under
    which the service keeps the agency's confirmed mapping."""
    keys = sorted(header_key(h) for h in headers)
    return hashlib.sha256("\x1f".join(keys).encode()).hexdigest()
