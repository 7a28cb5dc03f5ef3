"""Bitemporal bookkeeping shared by the registry's versioned tables (DESIGN "two clocks").

A change valid from date ``on`` never edits a fact in place. The open row (the one valid at
``on`` that nobody superseded) is superseded (``superseded_at = now``, its only permitted
update); a copy ending on ``on`` keeps what was true before, and the new row starts on ``on``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from dancu.core.errors import Invalid
from dancu.registry.models import HouseholdMember, PersonVersion, Residence

Versioned = TypeVar("Versioned", PersonVersion, Residence, HouseholdMember)
_SKIP = {"id", "recorded_at", "superseded_at", "valid_from", "valid_to", "event_id"}


def open_rows(model: type[Versioned], **where: Any) -> Select[Versioned]:
    """Rows the register currently believes (not superseded) and valid today (no end)."""
    stmt = select(model).where(model.superseded_at.is_(None), model.valid_to.is_(None))
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return stmt


def as_of(
    model: type[Versioned], valid_on: date, known_at: datetime, **where: Any
) -> Select[Versioned]:
    """Rows valid on ``valid_on`` as the register knew them at ``known_at``."""
    stmt = select(model).where(
        model.valid_from <= valid_on,
        or_(model.valid_to.is_(None), model.valid_to > valid_on),
        model.recorded_at <= known_at,
        or_(model.superseded_at.is_(None), model.superseded_at > known_at),
    )
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return stmt


def copy_fields(row: PersonVersion | Residence | HouseholdMember) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in _SKIP}


def supersede(
    session: Session,
    row: Versioned,
    on: date,
    now: datetime,
    event_id: int | None,
    changes: dict[str, Any] | None,
) -> Versioned | None:
    """End ``row`` on ``on``; when ``changes`` is given, start a new row from ``on`` with them.

    Returns the new row (or None when the fact simply ends, e.g. leaving a household).
    """
    return supersede_rows(session, row, on, now, event_id, changes)[1]


def supersede_rows(
    session: Session,
    row: Versioned,
    on: date,
    now: datetime,
    event_id: int | None,
    changes: dict[str, Any] | None,
) -> tuple[Versioned | None, Versioned | None]:
    """``supersede``, returning both rows it adds: the copy ending on ``on`` (None when the
    row started that day) and the new row (None without ``changes``). A merge keeps them to
    undo exactly what it did."""
    if on < row.valid_from:
        raise Invalid(
            f"the date {on:%d/%m/%Y} is before the last recorded change "
            f"({row.valid_from:%d/%m/%Y})",
            field="date",
        )
    model = type(row)
    row.superseded_at = now
    base = copy_fields(row)
    before = None
    if on > row.valid_from:
        before = model(
            **base,
            valid_from=row.valid_from,
            valid_to=on,
            recorded_at=now,
            event_id=row.event_id,
        )
        session.add(before)
    if changes is None:
        return before, None
    new = model(**{**base, **changes}, valid_from=on, recorded_at=now, event_id=event_id)
    session.add(new)
    return before, new


def restore(
    session: Session, row: PersonVersion | Residence | HouseholdMember, now: datetime
) -> None:
    """Believe ``row`` again from ``now``: a copy of it, over the same valid time, recorded
    now (an undone merge's way back; ``row`` itself stays superseded)."""
    copy = type(row)(
        **copy_fields(row),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        recorded_at=now,
        event_id=row.event_id,
    )
    session.add(copy)


def overlapping(model: type[Versioned], start: date) -> Any:
    """Condition for rows whose validity reaches past ``start``."""
    return and_(
        model.superseded_at.is_(None), or_(model.valid_to.is_(None), model.valid_to > start)
    )
