"""Residence use cases: permanent and temporary residence, moves between households, change
of household head (Law on Residence 68/2020/QH14)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.errors import Conflict, Invalid, NotFound
from dancu.core.i18n import N_
from dancu.core.names import fold
from dancu.core.timeutil import utcnow
from dancu.core.units import Unit
from dancu.registry import schemas as s
from dancu.registry.models import (
    CivilEvent,
    Household,
    HouseholdMember,
    PersonCurrent,
    PersonIdentifier,
    PersonVersion,
    Residence,
)
from dancu.registry.versioning import open_rows, supersede
from dancu.registry.writes import NO_HOUSEHOLD, NO_HOUSEHOLD_HERE, WriteSteps

# Civil Code 2015 Art. 20: adults are 18 or older.
ADULT_AGE = 18
NO_MOVER = N_(
    "no person with this ID number in your area; for someone moving in from elsewhere, "
    "also give their full name and date of birth as on their card"
)
APPLICANT_RULE = N_(
    "the applicant must be the person, a parent of a minor, or a guardian with the "
    "guardianship's registration reference"
)


def _number(value: str) -> str:
    """A personal ID number as the register writes it (the schema has validated it)."""
    return "".join(value.split())


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class ResidenceUseCases(WriteSteps):
    def change_residence(self, ctx: OfficerContext, data: s.ResidenceChange) -> str | None:
        """Đăng ký thường trú / tạm trú at a new address, recorded by the destination commune
        on the request of the person (or of a parent or guardian for a minor or a ward), with
        the household head's consent when the person joins someone's household (Law on
        Residence 68/2020 Art. 20–22, 27–28). A permanent move leaves the old household and
        joins the named one, or founds a new household with the person as head; the event
        names the old commune, so the area the person left hears of it. Returns the household
        number joined or founded (None for temporary residence)."""
        self._require_writer(ctx)
        dest = self._commune(data.commune_code, data.moved_on, "commune_code")
        self._require_scope(ctx, self.units.roll_forward(dest), "commune_code")
        now = utcnow()
        with self._writing() as session:
            found, _ = self._reach(
                session,
                ctx,
                data.personal_id,
                "personal_id",
                data.full_name,
                data.birth_date,
                with_birth_date=True,
                message=NO_MOVER,
            )
            current = self._lock(session, found.person_id)
            self._check_papers(current, data)
            if current.status != "alive":
                raise Invalid("only a living person can register a residence", "personal_id")
            version = self._open_version(session, current.person_id)
            applicant = self._check_applicant(session, version, current, data)
            self._refuse_same_day(session, current, data)
            before = (current.commune_code, current.household_id)
            event = self._event(
                session,
                ctx,
                f"residence.{data.kind}",
                data.moved_on,
                current.person_id,
                dest,
                data.reference,
                {
                    "commune_code": dest.code,
                    "scheme": dest.scheme,
                    "applicant_person_id": applicant,
                    "guardianship_reference": data.guardianship_reference,
                },
            )
            # A temporary residence belongs to no household; a permanent one moves the person
            # into the household joined or founded.
            number, household_id = None, None
            if data.kind == "permanent":
                household = self._move_household(
                    session, ctx, current, applicant, dest, data, now, event
                )
                number, household_id = household.number, household.id
            self._end_open(
                session,
                Residence,
                data.moved_on,
                now,
                event.id,
                person_id=current.person_id,
                kind=data.kind,
            )
            session.add(
                Residence(
                    person_id=current.person_id,
                    kind=data.kind,
                    unit_id=dest.id,
                    address_line=data.address_line,
                    household_id=household_id,
                    valid_from=data.moved_on,
                    recorded_at=now,
                    event_id=event.id,
                )
            )
            self._conclude(
                session,
                ctx,
                current.person_id,
                f"residence.{data.kind}",
                event.id,
                "registry.residence.changed",
                current.personal_id,
                {
                    "personal_id": current.personal_id,
                    "kind": data.kind,
                    "moved_on": data.moved_on.isoformat(),
                    "commune_code": self.units.roll_forward(dest).code,
                    "household": number,
                    # The area the person leaves, which takes them off its lists.
                    "previous_commune_code": before[0],
                    "previous_household": self._household_number(session, before[1]),
                    "event_id": event.id,
                },
            )
        return number

    @staticmethod
    def _check_papers(current: PersonCurrent, data: s.ResidenceChange) -> None:
        """The name and date of birth the applicant wrote, where given, are the register's."""
        if data.full_name is not None and fold(data.full_name) != current.name_key:
            raise Invalid("the name differs from the register's for this number", "full_name")
        if data.birth_date is not None and data.birth_date != current.birth_date:
            raise Invalid(
                "the date of birth differs from the register's for this number", "birth_date"
            )

    def _check_applicant(
        self,
        session: Session,
        version: PersonVersion,
        current: PersonCurrent,
        data: s.ResidenceChange,
    ) -> int:
        """Who asked for the registration (CT01 "Người đề nghị"), as a person id: the person
        themself when an adult; a parent on the register for a minor (Civil Code 2015
        Art. 40: a minor lives where the parents do); anyone else only as a guardian whose
        guardianship is registered (its reference given). Unknown applicants get the rule."""
        minor = _age(version.birth_date, data.moved_on) < ADULT_AGE
        if data.applicant_personal_id in (None, current.personal_id):
            if minor and not data.guardianship_reference:
                raise Invalid(
                    "a minor's residence is registered on the request of a parent or "
                    "guardian: give the applicant's personal ID number",
                    "applicant_personal_id",
                )
            return current.person_id
        assert data.applicant_personal_id is not None
        try:
            applicant = self._current_row(
                session, data.applicant_personal_id, "applicant_personal_id"
            )
        except NotFound:
            raise Invalid(APPLICANT_RULE, "applicant_personal_id") from None
        parent = applicant.person_id in (version.mother_id, version.father_id)
        if applicant.status != "alive" or not ((minor and parent) or data.guardianship_reference):
            raise Invalid(APPLICANT_RULE, "applicant_personal_id")
        return applicant.person_id

    @staticmethod
    def _refuse_same_day(session: Session, current: PersonCurrent, data: s.ResidenceChange) -> None:
        """A registration already recorded for this date (a double submission, two officers
        at once) is a conflict, not a second move."""
        same = session.scalars(
            open_rows(Residence, person_id=current.person_id, kind=data.kind).where(
                Residence.valid_from == data.moved_on
            )
        ).first()
        if same is not None:
            raise Conflict(
                "a residence registration of this date is already recorded for this person",
                "moved_on",
            )

    @staticmethod
    def _household_number(session: Session, household_id: int | None) -> str | None:
        if household_id is None:
            return None
        return session.scalar(select(Household.number).where(Household.id == household_id))

    @staticmethod
    def _members_by_number(
        session: Session, members: dict[int, HouseholdMember]
    ) -> dict[str, PersonCurrent]:
        """The household's members by every personal ID number they hold (a re-established
        number still names its person), so a number outside the household is simply absent:
        nothing tells whether it exists elsewhere."""
        rows = session.execute(
            select(PersonIdentifier.value, PersonCurrent)
            .join(PersonCurrent, PersonCurrent.person_id == PersonIdentifier.person_id)
            .where(
                PersonIdentifier.kind == "personal_id",
                PersonIdentifier.person_id.in_(list(members)),
            )
        ).all()
        return {value: current for value, current in rows}

    def _move_household(
        self,
        session: Session,
        ctx: OfficerContext,
        current: PersonCurrent,
        applicant: int,
        dest: Unit,
        data: s.ResidenceChange,
        now: Any,
        event: CivilEvent,
    ) -> Household:
        event_id = event.id
        member = session.scalars(open_rows(HouseholdMember, person_id=current.person_id)).first()
        if member is not None and member.relationship == "head":
            others = session.scalar(
                select(func.count()).select_from(
                    open_rows(HouseholdMember, household_id=member.household_id).subquery()
                )
            )
            if (others or 0) > 1:
                raise Invalid(
                    "the household head cannot move out while other members "
                    "remain; record a change of head first",
                    "personal_id",
                )
        if data.household_number:
            household = self._household_in_area(session, ctx, data.household_number)
            # Unknown, dissolved, elsewhere or in another commune of the area: one answer.
            if household is None or self.units.roll_forward(
                self.units.by_id[household.unit_id]
            ) != self.units.roll_forward(dest):
                raise Invalid(NO_HOUSEHOLD_HERE, "household_number")
            if household.head_person_id != applicant:
                if not data.household_head_consent:
                    raise Invalid(
                        "record the household head's consent to the person joining the household",
                        "household_head_consent",
                    )
                event.details = {
                    **event.details,
                    "household_head_consent": {
                        "head_person_id": household.head_person_id,
                        "reference": data.consent_reference,
                    },
                }
            relationship = data.relationship
        else:
            household = self._new_household(
                session, dest, data.address_line, data.moved_on, current.person_id
            )
            relationship = "head"
        if member is not None:
            supersede(session, member, data.moved_on, now, event_id, None)
            if member.relationship == "head":
                old = session.get(Household, member.household_id)
                if old is not None:
                    old.dissolved_on = data.moved_on
        session.add(
            HouseholdMember(
                household_id=household.id,
                person_id=current.person_id,
                relationship=relationship,
                valid_from=data.moved_on,
                recorded_at=now,
                event_id=event_id,
            )
        )
        return household

    def change_household_head(self, ctx: OfficerContext, data: s.HeadChange) -> None:
        """Thay đổi chủ hộ: a current member becomes the head; restated relationships are
        versioned like any other change."""
        self._require_writer(ctx)
        now = utcnow()
        with self._writing() as session:
            household = self._household_in_area(session, ctx, data.household_number)
            if household is None:
                raise NotFound(NO_HOUSEHOLD, "household_number")
            unit = self.units.by_id[household.unit_id]
            members = {
                m.person_id: m
                for m in session.scalars(open_rows(HouseholdMember, household_id=household.id))
            }
            by_number = self._members_by_number(session, members)
            new_head = by_number.get(_number(data.new_head_personal_id))
            if new_head is None or new_head.status != "alive":
                raise Invalid(
                    "the new head must be a living member of this household", "new_head_personal_id"
                )
            if household.head_person_id == new_head.person_id:
                raise Conflict("this person is already the household head", "new_head_personal_id")
            restated: dict[int, str] = {}
            for pid, rel in data.relationships.items():
                named = by_number.get(_number(pid))
                if named is None:
                    raise Invalid("this person is not a member of this household", "relationships")
                restated[named.person_id] = rel
            event = self._event(
                session,
                ctx,
                "household.head_change",
                data.changed_on,
                new_head.person_id,
                unit,
                data.reference,
                {"household": household.number},
            )
            for person_id, member in members.items():
                relationship = (
                    "head" if person_id == new_head.person_id else restated.get(person_id)
                )
                if member.relationship == "head" and relationship is None:
                    relationship = "other"
                if relationship is not None and relationship != member.relationship:
                    supersede(
                        session,
                        member,
                        data.changed_on,
                        now,
                        event.id,
                        {"relationship": relationship},
                    )
            household.head_person_id = new_head.person_id
            self._emit(
                session,
                "registry.household.head_changed",
                household.number,
                {
                    "household": household.number,
                    "head_personal_id": new_head.personal_id,
                    "event_id": event.id,
                },
            )
            self._audit(
                session, ctx, "household.head_change", new_head.person_id, f"event {event.id}"
            )
