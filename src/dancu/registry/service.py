"""Registry use cases. Each public method is one transaction: it applies a civil event to the
versioned tables, refreshes the ``person_current`` projection, writes the outbox event and the
audit entry, and commits them together or not at all."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.core import ids
from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Entry
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.models import PersonalIdAllocation
from dancu.core.names import fold
from dancu.core.timeutil import utcnow
from dancu.core.units import Unit
from dancu.registry import schemas as s
from dancu.registry.merge import MergeUseCases
from dancu.registry.models import (
    CivilEvent,
    Household,
    HouseholdMember,
    Person,
    PersonCurrent,
    PersonIdentifier,
    PersonVersion,
    Residence,
)
from dancu.registry.overview import OverviewReads
from dancu.registry.residence import ResidenceUseCases
from dancu.registry.snapshot import Snapshot, write_snapshot
from dancu.registry.status import CivilStatusUseCases
from dancu.registry.versioning import supersede
from dancu.registry.writes import NO_PARENT


class RegistryService(ResidenceUseCases, CivilStatusUseCases, MergeUseCases, OverviewReads):
    """The population register's use cases: births, deaths and registration here; residence
    in ``residence.py``, civil status in ``status.py``, merging two records of one person in
    ``merge.py``, reads in ``reads.py``, area aggregates in ``overview.py``."""

    # -- the whole register, for reconciliation ---------------------------------------------

    def snapshot(self, ctx: OfficerContext, root: Path, purpose: str) -> Snapshot:
        """Everyone in the register now and every number they were known by, as Parquet
        files under ``root`` (``registry.snapshot``), for the reconciliation of an agency's
        extract. The ministry's data centre only; audited as one bulk read naming the purpose
        (which agency, which job)."""
        if ctx.role is not Role.MINISTRY:
            raise Forbidden("only the ministry reads the whole register")
        snap = write_snapshot(self.factory.kw["bind"], root)
        self.reads_audit.write(
            Entry(ctx.actor(purpose), "registry.snapshot", "register", f"{snap.people} people")
        )
        return snap

    # -- births, deaths -------------------------------------------------------------------

    def register_birth(self, ctx: OfficerContext, data: s.BirthRegistration) -> str:
        """Đăng ký khai sinh: create the person, allocate the personal ID number, add the child
        to a household. Returns the new personal ID number.

        Recorded by the commune where the mother or the father resides (Law on Civil Status
        2014 Art. 13): the birth commune is the officer's, a named parent lives in the
        officer's area (the other one may live elsewhere, reached with the full name as
        declared), and the child joins a household of the officer's area, so the officer can
        read the record they create. A foundling joins the named household of the area."""
        self._require_writer(ctx)
        unit = self._commune(data.birth_commune_code, data.birth_date, "birth_commune_code")
        self._require_scope(ctx, self.units.roll_forward(unit), "birth_commune_code")
        hometown = (
            self._commune(data.hometown_commune_code, data.birth_date, "hometown_commune_code")
            if data.hometown_commune_code
            else None
        )
        now = utcnow()
        with self._writing() as session:
            mother, mother_here = self._parent(
                session,
                ctx,
                data.mother_personal_id,
                data.mother_full_name,
                "F",
                data.birth_date,
                "mother_personal_id",
            )
            father, father_here = self._parent(
                session,
                ctx,
                data.father_personal_id,
                data.father_full_name,
                "M",
                data.birth_date,
                "father_personal_id",
            )
            here = [p for p, h in ((mother, mother_here), (father, father_here)) if p and h]
            if (mother or father) and not here:
                # Neither parent lives here: the birth is not this area's to record, and
                # saying so would tell that the numbers exist elsewhere.
                field = "mother_personal_id" if mother else "father_personal_id"
                raise NotFound(NO_PARENT, field)
            household = self._birth_household(session, ctx, data, here)
            self._refuse_second_birth(session, household, data)
            place = "0" + self.units.province(unit).code
            number = ids.allocate(session, place, data.sex, data.birth_date.year).number
            person, event = self._new_person(
                session,
                ctx,
                "birth",
                data.birth_date,
                unit,
                data.reference,
                {"household": household.number},
                now,
            )
            _first_record(
                session,
                person.id,
                data,
                unit,
                number,
                event.id,
                now,
                hometown_unit_id=hometown.id if hometown else None,
                mother_id=mother.person_id if mother else None,
                father_id=father.person_id if father else None,
            )
            home = self._unit_on(self.units.by_id[household.unit_id], data.birth_date)
            self._settle(
                session,
                person.id,
                household,
                home,
                household.address_line,
                data.birth_date,
                data.relationship,
                event.id,
                now,
            )
            self._emit(
                session,
                "registry.person.born",
                number,
                {
                    "personal_id": number,
                    "birth_date": data.birth_date.isoformat(),
                    "sex": data.sex,
                    "household": household.number,
                    "mother_personal_id": mother.personal_id if mother else None,
                    "father_personal_id": father.personal_id if father else None,
                    "commune_code": self.units.roll_forward(home).code,
                    "event_id": event.id,
                },
            )
            self._audit(session, ctx, "birth.register", person.id, f"event {event.id}")
        return number

    @staticmethod
    def _refuse_second_birth(
        session: Session, household: Household, data: s.BirthRegistration
    ) -> None:
        """The same birth sent twice (a double submission, two officers at once): the
        household, locked, already has a member of this name and date of birth."""
        twin = session.scalar(
            select(PersonCurrent.person_id)
            .join(HouseholdMember, HouseholdMember.person_id == PersonCurrent.person_id)
            .where(
                HouseholdMember.household_id == household.id,
                HouseholdMember.superseded_at.is_(None),
                HouseholdMember.valid_to.is_(None),
                PersonCurrent.birth_date == data.birth_date,
                PersonCurrent.name_key == fold(data.full_name),
            )
        )
        if twin is not None:
            raise Conflict(
                "a child of this name and date of birth is already registered in this household",
                "full_name",
            )

    def check_death(self, ctx: OfficerContext, data: s.DeathRegistration) -> s.PersonPublic:
        """The person ``register_death`` would record as deceased, after the checks it would
        make, recording nothing: the officer sees whose death it is before confirming. An
        unknown or out-of-area number gets the words ``register_death`` gives it. Audited
        as a read for the death registration."""
        self._require_writer(ctx)
        with self.factory() as session:
            current = self._scoped_current(session, ctx, data.personal_id)
            _check_death(self._open_version(session, current.person_id), data)
            person = self._person_view(session, current, None, None)
        self._audit_read(ctx, "person.read", current.person_id, "death-registration", "")
        return person

    def register_death(self, ctx: OfficerContext, data: s.DeathRegistration) -> None:
        """Đăng ký khai tử, by the commune of the person's last residence (Law on Civil
        Status 2014 Art. 32): the status becomes deceased from the date of death; a surviving
        spouse becomes widowed. A second registration of the same death is a conflict."""
        self._require_writer(ctx)
        now = utcnow()
        with self._writing() as session:
            current = self._scoped_current(session, ctx, data.personal_id)
            spouse_id = self._open_version(session, current.person_id).spouse_id
            # The person and a spouse who becomes widowed, locked in one order; the locked
            # rows are then read again as they are now.
            self._lock_all(session, current.person_id, *([spouse_id] if spouse_id else []))
            version = self._open_version(session, current.person_id)
            _check_death(version, data)
            unit = self._current_unit(current)
            event = self._event(
                session,
                ctx,
                "death",
                data.death_date,
                current.person_id,
                unit,
                data.reference,
                {"place": data.place, "cause": data.cause},
            )
            supersede(
                session,
                version,
                data.death_date,
                now,
                event.id,
                {"status": "deceased", "death_date": data.death_date},
            )
            if version.spouse_id is not None:
                spouse = self._open_version(session, version.spouse_id)
                if spouse.status == "alive":
                    supersede(
                        session,
                        spouse,
                        data.death_date,
                        now,
                        event.id,
                        {"marital_status": "widowed"},
                    )
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                "registry.person.died",
                current.personal_id,
                {
                    "personal_id": current.personal_id,
                    "death_date": data.death_date.isoformat(),
                    "household_id": current.household_id,
                    "commune_code": current.commune_code,
                    "event_id": event.id,
                },
            )
            self._audit(session, ctx, "death.register", current.person_id, f"event {event.id}")

    def _new_person(
        self,
        session: Session,
        ctx: OfficerContext,
        kind: str,
        on: date,
        unit: Unit,
        reference: str,
        details: dict[str, Any],
        now: datetime,
    ) -> tuple[Person, CivilEvent]:
        """A person new to the register and the event (birth or registration) that enters
        them, both flushed so their ids can be used."""
        person = Person(created_at=now)
        session.add(person)
        session.flush()
        return person, self._event(session, ctx, kind, on, person.id, unit, reference, details)

    def register_person(self, ctx: OfficerContext, data: s.PersonRegistration) -> str:
        """Thu thập dân cư: enter a living person into the register with their residence and
        household (a new household when they are its head). Returns the personal ID number,
        allocated when the person has none."""
        self._require_writer(ctx)
        birth_unit = self._commune(data.birth_commune_code, data.birth_date, "birth_commune_code")
        home = self._commune(
            data.residence_commune_code, data.residence_since, "residence_commune_code"
        )
        self._require_scope(ctx, self.units.roll_forward(home), "residence_commune_code")
        now = utcnow()
        with self._writing() as session:
            person, event = self._new_person(
                session, ctx, "registration", data.residence_since, home, data.reference, {}, now
            )
            number = self._claim_number(session, data, birth_unit)
            _first_record(
                session,
                person.id,
                data,
                birth_unit,
                number,
                event.id,
                now,
                marital_status=data.marital_status,
            )
            if data.old_id_number:
                session.add(
                    PersonIdentifier(
                        person_id=person.id,
                        kind=f"cmnd{len(data.old_id_number)}",
                        value=data.old_id_number,
                        issuer_code=data.old_id_issuer,
                        event_id=event.id,
                    )
                )
            if data.household_number:
                household = self._household_in_commune(session, ctx, data.household_number, home)
            else:
                household = self._new_household(
                    session, home, data.address_line, data.residence_since, person.id
                )
            self._settle(
                session,
                person.id,
                household,
                home,
                data.address_line,
                data.residence_since,
                data.relationship,
                event.id,
                now,
            )
            self._emit(
                session,
                "registry.person.registered",
                number,
                {"personal_id": number, "household": household.number, "event_id": event.id},
            )
            self._audit(session, ctx, "person.register", person.id, f"event {event.id}")
        return number

    def _settle(
        self,
        session: Session,
        person_id: int,
        household: Household,
        unit: Unit,
        address_line: str,
        since: date,
        relationship: str,
        event_id: int,
        now: datetime,
    ) -> None:
        """A new person's permanent residence in ``household`` and their membership of it
        from ``since``; then their row of the ``person_current`` projection."""
        session.add(
            Residence(
                person_id=person_id,
                kind="permanent",
                unit_id=unit.id,
                address_line=address_line,
                household_id=household.id,
                valid_from=since,
                recorded_at=now,
                event_id=event_id,
            )
        )
        session.add(
            HouseholdMember(
                household_id=household.id,
                person_id=person_id,
                relationship=relationship,
                valid_from=since,
                recorded_at=now,
                event_id=event_id,
            )
        )
        session.flush()
        self._refresh_current(session, person_id)

    def _claim_number(self, session: Session, data: s.PersonRegistration, birth_unit: Unit) -> str:
        if data.personal_id is None:
            place = "0" + self.units.province(birth_unit).code
            return ids.allocate(session, place, data.sex, data.birth_date.year).number
        if self._holder(session, data.personal_id) is None:
            # The allocation's primary key decides between two writers of the same number.
            session.flush()
            try:
                with session.begin_nested():
                    session.add(
                        PersonalIdAllocation(
                            number=data.personal_id, prefix=ids.parse(data.personal_id).prefix
                        )
                    )
                return data.personal_id
            except IntegrityError:
                pass
        raise Conflict("this personal ID number is already in the register", "personal_id")


def _first_record(
    session: Session,
    person_id: int,
    data: s.BirthRegistration | s.PersonRegistration,
    birth_unit: Unit,
    number: str,
    event_id: int,
    now: datetime,
    **more: Any,
) -> None:
    """A new person's first version, valid from birth with what ``data`` declares (and
    ``more``), and their personal ID number from the same day."""
    session.add(
        PersonVersion(
            person_id=person_id,
            valid_from=data.birth_date,
            recorded_at=now,
            event_id=event_id,
            full_name=data.full_name,
            birth_date=data.birth_date,
            sex=data.sex,
            nationality=data.nationality,
            ethnicity=data.ethnicity,
            religion=data.religion,
            birth_unit_id=birth_unit.id,
            **more,
        )
    )
    session.add(
        PersonIdentifier(
            person_id=person_id,
            kind="personal_id",
            value=number,
            valid_from=data.birth_date,
            event_id=event_id,
        )
    )


def _check_death(version: PersonVersion, data: s.DeathRegistration) -> None:
    """The rules a death registration meets against the person's record."""
    if version.status == "deceased":
        raise Conflict("this person is already recorded as deceased", "personal_id")
    # A missing person may later be registered dead (Civil Code 2015 Art. 71).
    if data.death_date < version.birth_date:
        raise Invalid("the date of death is before the date of birth", "death_date")
