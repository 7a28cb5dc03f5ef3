"""Registry tables (DESIGN "two clocks on every fact", "identifiers are a history").

A person is a stable surrogate key (``person.id``) plus versioned rows:

- ``person_version``: snapshots of the person's attributes, each with ``valid_from``/``valid_to``
  (when it held in the world) and ``recorded_at``/``superseded_at`` (when the register learned
  it and when a correction replaced it), pointing at the civil event that caused it;
- ``person_identifier``: personal ID numbers (current and re-established), old CMND numbers,
  passports; many identifiers to one person;
- ``residence`` and ``household_member``: where the person lives and in which household, with
  the same two clocks.

``person_current`` is a maintained projection of the current state for fast lookup and scoped
search; it is never the only copy of a fact.

``person_merge`` records that two records were found to be one person (``merge.py``): the
merged person keeps every row, marked by a version with status ``merged`` and the merge's
pointer to the survivor, and the merge lists what it changed so that an undo restores exactly
that.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import TextClause

from dancu.core.db import Base, UTCDateTime
from dancu.core.models import BigID
from dancu.core.timeutil import utcnow

OPEN = text("superseded_at IS NULL")


def _partial(name: str, *columns: str, where: str | TextClause, unique: bool = False) -> Index:
    """An index over the rows matching ``where`` only, partial on SQLite and PostgreSQL alike."""
    clause = text(where) if isinstance(where, str) else where
    return Index(name, *columns, unique=unique, sqlite_where=clause, postgresql_where=clause)


class CivilEvent(Base):
    """A civil-status event or officer action that changed the register."""

    __tablename__ = "civil_event"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    occurred_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    actor: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(20))  # officer | import | chain | system
    reference: Mapped[str] = mapped_column(String(60), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonVersion(Base):
    __tablename__ = "person_version"
    __table_args__ = (_partial("ix_person_version_open", "person_id", "valid_from", where=OPEN),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("civil_event.id"))
    full_name: Mapped[str] = mapped_column(String(120))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    nationality: Mapped[str] = mapped_column(String(2), default="VN")
    ethnicity: Mapped[str] = mapped_column(String(40), default="Kinh")
    religion: Mapped[str] = mapped_column(String(40), default="")
    birth_unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    hometown_unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    marital_status: Mapped[str] = mapped_column(String(12), default="single")
    status: Mapped[str] = mapped_column(String(12), default="alive")
    death_date: Mapped[date | None] = mapped_column(Date)
    father_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    mother_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    spouse_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class PersonIdentifier(Base):
    """Personal ID numbers and old CMND numbers. Personal IDs are unique for all time (a
    re-established number keeps the old one resolvable); CMND numbers are not unique
    nationally, so they are looked up with their issuer where known."""

    __tablename__ = "person_identifier"
    __table_args__ = (
        _partial(
            "uq_person_identifier_personal_id", "value", where="kind = 'personal_id'", unique=True
        ),
        Index("ix_person_identifier_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # personal_id | cmnd9 | cmnd12 | passport
    value: Mapped[str] = mapped_column(String(20))
    issuer_code: Mapped[str] = mapped_column(String(5), default="")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("civil_event.id"))


class PersonMerge(Base):
    """Two records of one person made one: ``merged_id`` now answers as ``survivor_id``
    (``status`` ``merged``) until the merge is undone (``undone``). ``changes`` lists the
    rows the merge superseded, created and re-pointed, for the undo."""

    __tablename__ = "person_merge"
    __table_args__ = (
        # A person is merged into one survivor at a time: the database refuses a second.
        _partial("uq_person_merge_open", "merged_id", where="status = 'merged'", unique=True),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    survivor_number: Mapped[str] = mapped_column(String(12))
    merged_number: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="merged")  # merged | undone
    reason: Mapped[str] = mapped_column(String(300))
    event_id: Mapped[int] = mapped_column(ForeignKey("civil_event.id"))
    merged_by: Mapped[str] = mapped_column(String(80))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    undo_event_id: Mapped[int | None] = mapped_column(ForeignKey("civil_event.id"))
    undone_by: Mapped[str] = mapped_column(String(80), default="")
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undo_reason: Mapped[str] = mapped_column(String(300), default="")


class Household(Base):
    __tablename__ = "household"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    head_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"), index=True)
    address_line: Mapped[str] = mapped_column(String(200), default="")
    established_on: Mapped[date] = mapped_column(Date)
    dissolved_on: Mapped[date | None] = mapped_column(Date)


class TwoClocks:
    """The two clocks of a household membership or a residence: when it held in the world,
    when the register learned it and when a correction replaced it, and the civil event that
    caused it. SQLAlchemy places a mixin's columns after the table's own, which is where these
    tables have them; ``person_version`` has them before its attributes, so it spells them out."""

    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("civil_event.id"))


class HouseholdMember(TwoClocks, Base):
    __tablename__ = "household_member"
    __table_args__ = (_partial("ix_household_member_open", "household_id", where=OPEN),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(20))  # to the head: head, spouse, child…


class Residence(TwoClocks, Base):
    """Permanent (thường trú) or temporary (tạm trú) residence, against the commune valid on
    ``valid_from`` (a legacy commune before 1 July 2025)."""

    __tablename__ = "residence"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # permanent | temporary
    unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"))
    address_line: Mapped[str] = mapped_column(String(200), default="")
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))


class PersonCurrent(Base):
    """Projection of each person's current state, maintained by the service layer in the same
    transaction as the versioned rows. ``province_code``/``commune_code`` are today's (2025
    scheme) units, rolled forward from the residence's unit, for scope checks and search."""

    __tablename__ = "person_current"
    __table_args__ = (
        Index("ix_person_current_name", "name_key", "birth_date"),
        # Name + birth date search: the date narrows first, already in the search's order.
        Index("ix_person_current_birth_name", "birth_date", "name_key", "person_id"),
        # Substring search on folded names ("%van an%") at national scale: a trigram index on
        # PostgreSQL (pg_trgm, a trusted extension); SQLite scans, which is fine at its size.
        Index(
            "ix_person_current_name_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        # Name words on PostgreSQL (migration 0008): a common full name through the index.
        Index(
            "ix_person_current_name_words",
            func.string_to_array(text("name_key"), text("' '")),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
        Index("ix_person_current_scope", "province_code", "commune_code"),
    )

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    personal_id: Mapped[str] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))
    birth_date: Mapped[date] = mapped_column(Date, index=True)
    sex: Mapped[str] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(12))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    residence_unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    province_code: Mapped[str] = mapped_column(String(2))
    commune_code: Mapped[str] = mapped_column(String(5))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(Base):
    """A bulk import's progress, so a crashed import resumes where it stopped."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(400))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12))  # running | done | failed
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(String(400), default="")
