"""The person view (``PersonPublic``) and its parts, built in one place for both reads.

The async PostgreSQL lookup (``lookup.py``) reads a current record in one statement; the ORM
reads (``reads.py``) serve "as of" views, SQLite, the history and callers on another loop.
Both hand over their rows in the statement's shapes (below) and these builders decide the
fields, the unit labels and the roll-forward of old units once, so the two answers cannot
drift apart (the test suite compares them byte for byte on PostgreSQL). The builders make
plain values and validate the person once: the lookup is the register's hottest read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from dancu.core.units import Unit, UnitDirectory
from dancu.registry import schemas as s

# The person's own attributes (``person_version`` columns), shown as they are...
ATTRIBUTES = (
    "full_name",
    "birth_date",
    "sex",
    "nationality",
    "ethnicity",
    "religion",
    "marital_status",
    "status",
    "death_date",
)
# ... and all the view reads of the record: those and the units it resolves.
RECORD_FIELDS = (*ATTRIBUTES, "birth_unit_id", "hometown_unit_id")

# Dates may come as ISO text (``json_agg`` in the lookup's statement); validation reads both.
Day = date | str
# kind, unit id, address line, valid from, valid to, household number
ResidenceRow = tuple[str, int, str, Day, Day | None, str | None]
# kind, value, issuer code, valid from, valid to
IdentifierRow = tuple[str, str, str, Day | None, Day | None]
# a parent's or the spouse's personal ID number and full name
RefRow = tuple[str, str]

_IDENTIFIER_KEYS = ("kind", "value", "issuer_code", "valid_from", "valid_to")


def unit_ref(units: UnitDirectory, unit: Unit) -> s.UnitRef:
    return s.UnitRef(code=unit.code, name=unit.name, label=units.label(unit), scheme=unit.scheme)


def unit_by_id(units: UnitDirectory, unit_id: int | None) -> s.UnitRef | None:
    unit = units.by_id.get(unit_id or -1)
    return unit_ref(units, unit) if unit else None


def residence(units: UnitDirectory, row: ResidenceRow) -> dict[str, Any]:
    """A residence as ``ResidenceOut`` holds it: the unit recorded then, and that unit
    today (after mergers of units)."""
    kind, unit_id, address, start, end, household = row
    unit = units.by_id[unit_id]
    return {
        "kind": kind,
        "unit": unit_ref(units, unit),
        "current_unit": unit_ref(units, units.roll_forward(unit)),
        "address_line": address,
        "valid_from": start,
        "valid_to": end,
        "household_number": household,
    }


def residence_out(units: UnitDirectory, row: ResidenceRow) -> s.ResidenceOut:
    return s.ResidenceOut.model_validate(residence(units, row))


def person_public(
    units: UnitDirectory,
    personal_id: str,
    record: Mapping[str, Any],
    *,
    father: RefRow | None,
    mother: RefRow | None,
    spouse: RefRow | None,
    residences: Iterable[ResidenceRow],
    household_number: str | None,
    relationship: str | None,
    identifiers: Iterable[IdentifierRow],
    as_of: date | None,
) -> s.PersonPublic:
    """The person under ``personal_id``: ``record`` holds ``RECORD_FIELDS``, the relatives
    are as they stand today, residences and identifiers in the order shown."""
    view: dict[str, Any] = {f: record[f] for f in ATTRIBUTES}
    view.update(
        personal_id=personal_id,
        birth_unit=unit_by_id(units, record["birth_unit_id"]),
        hometown_unit=unit_by_id(units, record["hometown_unit_id"]),
        father=_ref(father),
        mother=_ref(mother),
        spouse=_ref(spouse),
        residences=[residence(units, r) for r in residences],
        household_number=household_number,
        relationship=relationship,
        identifiers=[dict(zip(_IDENTIFIER_KEYS, i, strict=True)) for i in identifiers],
        as_of=as_of,
    )
    return s.PersonPublic.model_validate(view)


def _ref(ref: RefRow | None) -> dict[str, str] | None:
    return {"personal_id": ref[0], "full_name": ref[1]} if ref else None
