"""Shared steps of the registry's write use cases: the write transaction and its locks,
jurisdiction, unit lookup, civil events, outbox events, change audit, and the
``person_current`` projection.

Concurrency: every use case that supersedes a version runs in ``write_session`` and locks
the people and households it changes (``SELECT … FOR UPDATE`` on their ``person_current``
or ``household`` row; SQLite's single writer is taken at BEGIN) before it reads the rows it
checks. A second writer of the same person waits, then sees the first one's result and
answers with a conflict instead of superseding an already closed version.

Jurisdiction: a civil event is recorded by the officer of the unit the law gives it to
(``jurisdiction.md`` in docs). A person outside the officer's area is reached only with
what the applicant's papers show (full name, date of birth), and every failure to reach
them answers exactly as an unknown number does.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg.errors
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.audit import Entry, record_change
from dancu.core.db import write_session
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.i18n import N_
from dancu.core.models import OutboxEvent
from dancu.core.names import fold
from dancu.core.timeutil import utcnow
from dancu.core.units import NEW, Unit, scheme_at
from dancu.registry import schemas as s
from dancu.registry.lookup import OUT_OF_AREA
from dancu.registry.models import (
    CivilEvent,
    Household,
    HouseholdMember,
    PersonCurrent,
    PersonIdentifier,
    Residence,
)
from dancu.registry.reads import RegistryReads
from dancu.registry.versioning import open_rows, supersede

NO_HOUSEHOLD = N_("no household with this number in your area")
NO_HOUSEHOLD_HERE = N_("no open household with this number in this commune")
NO_PARENT = N_(
    "no person with this ID number in your area; for a parent living elsewhere, "
    "also give their full name as on their card"
)
HOUSEHOLD_ATTEMPTS = 20
MERGED_MEANWHILE = N_(
    "this record was merged into another while this was being recorded; nothing was written"
)
RETRY = N_("the register changed while this was being recorded; nothing was written, try again")
# PostgreSQL's answers to two transactions wanting the same rows at once.
_CONTENDED = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
)


class WriteSteps(RegistryReads):
    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """The use case's transaction (``write_session``). What the database refuses because
        another writer got there first becomes a conflict, never a server error."""
        try:
            with write_session(self.factory) as session:
                yield session
        except IntegrityError:
            raise Conflict(RETRY) from None
        except OperationalError as exc:
            # SQLite: the write lock was not free within busy_timeout; PostgreSQL: a deadlock
            # or a lock timeout between two writers.
            if isinstance(exc.orig, _CONTENDED) or "locked" in str(exc.orig):
                raise Conflict(RETRY) from None
            raise

    @staticmethod
    def _lock(session: Session, person_id: int) -> PersonCurrent:
        """Lock the person's ``person_current`` row for the rest of the transaction and
        return it as the database holds it now (fresh, even if loaded before the lock). A row
        gone meanwhile is a person merged into another by the writer before (``merge.py``)."""
        row = session.scalars(
            select(PersonCurrent)
            .where(PersonCurrent.person_id == person_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            raise Conflict(MERGED_MEANWHILE)
        return row

    def _lock_all(self, session: Session, *person_ids: int) -> None:
        """Lock several people in one order (by id), so two writers never deadlock."""
        for person_id in sorted(set(person_ids)):
            self._lock(session, person_id)

    def _writable_person(
        self, session: Session, ctx: OfficerContext, personal_id: str
    ) -> PersonCurrent:
        """The person an event is about, in the officer's area, locked. Outside the area the
        answer is an unknown number's."""
        current = self._scoped_current(session, ctx, personal_id)
        return self._lock(session, current.person_id)

    def _reach(
        self,
        session: Session,
        ctx: OfficerContext,
        personal_id: str,
        field: str,
        full_name: str | None,
        birth_date: date | None = None,
        *,
        with_birth_date: bool = False,
        message: str = OUT_OF_AREA,
    ) -> tuple[PersonCurrent, bool]:
        """A person an event needs who may live outside the officer's area (a parent, a
        spouse, someone moving in). Returns the row and whether the officer's area covers
        them. Outside the area the person is reached only when the full name (and, with
        ``with_birth_date``, the date of birth) agree with the register, as on the papers
        the applicant brings; otherwise, and for an unknown number, the same ``message``."""
        try:
            row = self._current_row(session, personal_id, field)
        except NotFound:
            raise NotFound(message, field) from None
        if ctx.covers(row.province_code, row.commune_code):
            return row, True
        proven = full_name is not None and fold(full_name) == row.name_key
        if with_birth_date:
            proven = proven and birth_date == row.birth_date
        if not proven:
            raise NotFound(message, field)
        return row, False

    def _require_writer(self, ctx: OfficerContext) -> None:
        if not ctx.can_write:
            raise Forbidden("your role may read the register but not record civil events")

    def _require_scope(self, ctx: OfficerContext, unit: Unit, field: str) -> None:
        if not ctx.covers(unit.province_code, unit.code):
            raise Forbidden("this commune is outside your area", field)

    def _commune(self, code: str, on: date, field: str) -> Unit:
        unit = self.units.commune_at(code, on)
        if unit is None:
            scheme = "63-province" if scheme_at(on) != NEW else "34-province"
            raise Invalid(
                f"no commune {code} in the {scheme} list in force on {on:%d/%m/%Y}", field
            )
        return unit

    def _unit_on(self, unit: Unit, on: date) -> Unit:
        """The unit to record for a fact dated ``on``: today's successor after the reform."""
        return self.units.roll_forward(unit) if scheme_at(on) == NEW else unit

    def _parent(
        self,
        session: Session,
        ctx: OfficerContext,
        personal_id: str | None,
        full_name: str | None,
        sex: str,
        birth: date,
        field: str,
    ) -> tuple[PersonCurrent | None, bool]:
        """A parent named on a birth declaration and whether they live in the officer's
        area. Outside the area every refusal is an unknown number's (NO_PARENT)."""
        if personal_id is None:
            return None, False
        parent, covered = self._reach(
            session, ctx, personal_id, field, full_name, message=NO_PARENT
        )
        if parent.sex != sex or parent.birth_date.year > birth.year - 12:
            if not covered:
                raise NotFound(NO_PARENT, field)
            if parent.sex != sex:
                raise Invalid("the recorded sex of this person does not fit the role", field)
            raise Invalid("this person is too young to be the parent", field)
        return parent, covered

    def _birth_household(
        self,
        session: Session,
        ctx: OfficerContext,
        data: s.BirthRegistration,
        parents: list[PersonCurrent],
    ) -> Household:
        """The household the child joins, locked: the one named (in the officer's area), or
        the household of a parent who lives in the officer's area (Law on Civil Status 2014
        Art. 13: the birth is registered where a parent resides)."""
        if data.household_number:
            household = self._household_in_area(session, ctx, data.household_number)
            if household is None:
                raise NotFound(NO_HOUSEHOLD, "household_number")
            return household
        for parent in parents:
            if parent.household_id is not None:
                household = self._lock_household(session, parent.household_id)
                if household is not None and household.dissolved_on is None:
                    return household
        raise Invalid(
            "the parents have no household; give the household number", "household_number"
        )

    def _household_in_area(
        self, session: Session, ctx: OfficerContext, number: str
    ) -> Household | None:
        """An open household of the officer's area by number, locked; None for an unknown,
        dissolved or out-of-area one alike."""
        found = session.scalar(select(Household.id).where(Household.number == number.strip()))
        household = self._lock_household(session, found) if found is not None else None
        if household is None or household.dissolved_on is not None:
            return None
        today = self.units.roll_forward(self.units.by_id[household.unit_id])
        return household if ctx.covers(today.province_code, today.code) else None

    @staticmethod
    def _lock_household(session: Session, household_id: int) -> Household | None:
        return session.scalars(
            select(Household)
            .where(Household.id == household_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()

    def _new_household(
        self, session: Session, unit: Unit, address: str, on: date, head_id: int
    ) -> Household:
        """A new household numbered by today's commune code and nine random digits: unique by
        the index and a retry, as personal ID numbers are (DESIGN "Allocating personal ID
        numbers"), never by counting rows, which two writers would count alike."""
        commune = self.units.roll_forward(unit).code
        session.flush()  # a refused attempt rolls back only its own savepoint
        for _ in range(HOUSEHOLD_ATTEMPTS):
            household = Household(
                number=f"{commune}{secrets.randbelow(10**9):09d}",
                head_person_id=head_id,
                unit_id=unit.id,
                address_line=address,
                established_on=on,
            )
            try:
                with session.begin_nested():
                    session.add(household)
            except IntegrityError:
                continue
            return household
        raise Conflict(RETRY)

    def _end_open(
        self,
        session: Session,
        model: type[Residence],
        on: date,
        now: Any,
        event_id: int,
        **where: Any,
    ) -> None:
        for row in session.scalars(open_rows(model, **where)):
            supersede(session, row, on, now, event_id, None)

    def _event(
        self,
        session: Session,
        ctx: OfficerContext,
        kind: str,
        on: date,
        person_id: int | None,
        unit: Unit | None,
        reference: str,
        details: dict[str, Any],
    ) -> CivilEvent:
        event = CivilEvent(
            kind=kind,
            occurred_on=on,
            person_id=person_id,
            unit_id=unit.id if unit else None,
            actor=ctx.username,
            source="officer",
            reference=reference,
            details=details,
        )
        session.add(event)
        session.flush()
        return event

    @staticmethod
    def _emit(session: Session, topic: str, key: str, payload: dict[str, Any]) -> None:
        session.add(OutboxEvent(topic=topic, key=key, payload=payload))

    @staticmethod
    def _audit(
        session: Session, ctx: OfficerContext, action: str, person_id: int, detail: str
    ) -> None:
        record_change(session, Entry(ctx.actor(), action, f"person:{person_id}", detail))

    def _conclude(
        self,
        session: Session,
        ctx: OfficerContext,
        person_id: int,
        action: str,
        event_id: int,
        topic: str,
        key: str,
        payload: dict[str, Any],
    ) -> None:
        """The end of a civil event about one person, in the use case's transaction: the rows
        written are flushed, the person's ``person_current`` row is rebuilt from them, the
        outbox event is added and the change is audited (detail ``event <id>``). The payload
        is built by the caller, so it must not read what the rebuild changes."""
        session.flush()
        self._refresh_current(session, person_id)
        self._emit(session, topic, key, payload)
        self._audit(session, ctx, action, person_id, f"event {event_id}")

    def _refresh_current(self, session: Session, person_id: int) -> None:
        """Rebuild the person's row of the ``person_current`` projection from open rows."""
        version = self._open_version(session, person_id)
        number = session.scalar(
            select(PersonIdentifier.value).where(
                PersonIdentifier.person_id == person_id,
                PersonIdentifier.kind == "personal_id",
                PersonIdentifier.valid_to.is_(None),
            )
        )
        residence = session.scalars(
            open_rows(Residence, person_id=person_id, kind="permanent")
        ).first()
        member = session.scalars(open_rows(HouseholdMember, person_id=person_id)).first()
        unit = self.units.roll_forward(self.units.by_id[residence.unit_id]) if residence else None
        row = session.get(PersonCurrent, person_id) or PersonCurrent(person_id=person_id)
        row.personal_id = str(number)
        row.full_name, row.name_key = version.full_name, fold(version.full_name)
        row.birth_date, row.sex, row.status = version.birth_date, version.sex, version.status
        row.household_id = member.household_id if member else None
        row.residence_unit_id = residence.unit_id if residence else None
        row.province_code = unit.province_code if unit else ""
        row.commune_code = unit.code if unit else ""
        row.updated_at = utcnow()
        session.add(row)
