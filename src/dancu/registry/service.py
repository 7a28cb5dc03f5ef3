"""Registry use cases. Each public method is one transaction: it applies a civil event to the
versioned tables, refreshes the ``person_current`` projection, writes the outbox event and the
audit entry, and commits them together or not at all."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.audit import Entry, record_change
from dancu.core.errors import Forbidden, Invalid, NotFound
from dancu.core.models import OutboxEvent, PersonalIdAllocation
from dancu.core.names import fold
from dancu.core.timeutil import utcnow
from dancu.core.units import NEW, Unit, UnitDirectory, scheme_at
from dancu.registry import schemas as s
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
from dancu.registry.reads import RegistryReads
from dancu.registry.versioning import open_rows, supersede

# Law on Marriage and Family 52/2014/QH13 Art. 8: men from 20, women from 18.
MARRIAGE_AGE = {"M": 20, "F": 18}


class ReadAuditor(Protocol):
    def write(self, entry: Entry) -> None: ...


class RegistryService(RegistryReads):
    """The population register's use cases (reads are in ``RegistryReads``)."""

    def __init__(
        self, factory: sessionmaker[Session], units: UnitDirectory, reads_audit: ReadAuditor
    ) -> None:
        super().__init__(factory, units, reads_audit)

    # -- births, deaths -------------------------------------------------------------------

    def register_birth(self, ctx: OfficerContext, data: s.BirthRegistration) -> str:
        """Đăng ký khai sinh: create the person, allocate the personal ID number, add the child
        to a household. Returns the new personal ID number."""
        self._require_writer(ctx)
        unit = self._commune(data.birth_commune_code, data.birth_date, "birth_commune_code")
        self._require_scope(ctx, self.units.roll_forward(unit), "birth_commune_code")
        hometown = (
            self._commune(data.hometown_commune_code, data.birth_date, "hometown_commune_code")
            if data.hometown_commune_code
            else None
        )
        now = utcnow()
        with self.factory() as session, session.begin():
            mother = self._parent(
                session, data.mother_personal_id, "F", data.birth_date, "mother_personal_id"
            )
            father = self._parent(
                session, data.father_personal_id, "M", data.birth_date, "father_personal_id"
            )
            household = self._birth_household(session, data, mother, father)
            place = "0" + self.units.province(unit).code
            number = ids.allocate(session, place, data.sex, data.birth_date.year).number
            person = Person(created_at=now)
            session.add(person)
            session.flush()
            event = self._event(
                session,
                ctx,
                "birth",
                data.birth_date,
                person.id,
                unit,
                data.reference,
                {"household": household.number},
            )
            session.add(
                PersonVersion(
                    person_id=person.id,
                    valid_from=data.birth_date,
                    recorded_at=now,
                    event_id=event.id,
                    full_name=data.full_name,
                    birth_date=data.birth_date,
                    sex=data.sex,
                    nationality=data.nationality,
                    ethnicity=data.ethnicity,
                    religion=data.religion,
                    birth_unit_id=unit.id,
                    hometown_unit_id=hometown.id if hometown else None,
                    mother_id=mother.person_id if mother else None,
                    father_id=father.person_id if father else None,
                )
            )
            session.add(
                PersonIdentifier(
                    person_id=person.id,
                    kind="personal_id",
                    value=number,
                    valid_from=data.birth_date,
                    event_id=event.id,
                )
            )
            home = self._unit_on(self.units.by_id[household.unit_id], data.birth_date)
            session.add(
                Residence(
                    person_id=person.id,
                    kind="permanent",
                    unit_id=home.id,
                    address_line=household.address_line,
                    household_id=household.id,
                    valid_from=data.birth_date,
                    recorded_at=now,
                    event_id=event.id,
                )
            )
            session.add(
                HouseholdMember(
                    household_id=household.id,
                    person_id=person.id,
                    relationship=data.relationship,
                    valid_from=data.birth_date,
                    recorded_at=now,
                    event_id=event.id,
                )
            )
            session.flush()
            self._refresh_current(session, person.id)
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

    def register_death(self, ctx: OfficerContext, data: s.DeathRegistration) -> None:
        """Đăng ký khai tử: the person's status becomes deceased from the date of death; a
        surviving spouse becomes widowed."""
        self._require_writer(ctx)
        now = utcnow()
        with self.factory() as session, session.begin():
            current = self._scoped_current(session, ctx, data.personal_id)
            version = self._open_version(session, current.person_id)
            if version.status == "deceased":
                raise Invalid("this person is already recorded as deceased", "personal_id")
            # A missing person may later be registered dead (Civil Code 2015 Art. 71).
            if data.death_date < version.birth_date:
                raise Invalid("the date of death is before the date of birth", "death_date")
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
        with self.factory() as session, session.begin():
            person = Person(created_at=now)
            session.add(person)
            session.flush()
            event = self._event(
                session,
                ctx,
                "registration",
                data.residence_since,
                person.id,
                home,
                data.reference,
                {},
            )
            number = self._claim_number(session, data, birth_unit)
            session.add(
                PersonVersion(
                    person_id=person.id,
                    valid_from=data.birth_date,
                    recorded_at=now,
                    event_id=event.id,
                    full_name=data.full_name,
                    birth_date=data.birth_date,
                    sex=data.sex,
                    nationality=data.nationality,
                    ethnicity=data.ethnicity,
                    religion=data.religion,
                    birth_unit_id=birth_unit.id,
                    marital_status=data.marital_status,
                )
            )
            session.add(
                PersonIdentifier(
                    person_id=person.id,
                    kind="personal_id",
                    value=number,
                    valid_from=data.birth_date,
                    event_id=event.id,
                )
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
                household = session.scalars(
                    select(Household).where(Household.number == data.household_number)
                ).first()
                if household is None or household.dissolved_on is not None:
                    raise Invalid("no open household with this number", "household_number")
            else:
                household = self._new_household(
                    session, home, data.address_line, data.residence_since, person.id
                )
            session.add(
                Residence(
                    person_id=person.id,
                    kind="permanent",
                    unit_id=home.id,
                    address_line=data.address_line,
                    household_id=household.id,
                    valid_from=data.residence_since,
                    recorded_at=now,
                    event_id=event.id,
                )
            )
            session.add(
                HouseholdMember(
                    household_id=household.id,
                    person_id=person.id,
                    relationship=data.relationship,
                    valid_from=data.residence_since,
                    recorded_at=now,
                    event_id=event.id,
                )
            )
            session.flush()
            self._refresh_current(session, person.id)
            self._emit(
                session,
                "registry.person.registered",
                number,
                {"personal_id": number, "household": household.number, "event_id": event.id},
            )
            self._audit(session, ctx, "person.register", person.id, f"event {event.id}")
        return number

    def _claim_number(self, session: Session, data: s.PersonRegistration, birth_unit: Unit) -> str:
        if data.personal_id is None:
            place = "0" + self.units.province(birth_unit).code
            return ids.allocate(session, place, data.sex, data.birth_date.year).number
        taken = session.scalar(
            select(PersonIdentifier.id).where(
                PersonIdentifier.kind == "personal_id", PersonIdentifier.value == data.personal_id
            )
        )
        if taken is not None:
            raise Invalid("this personal ID number is already in the register", "personal_id")
        session.add(PersonalIdAllocation(number=data.personal_id, prefix=data.personal_id[:6]))
        return data.personal_id

    def declare_missing(self, ctx: OfficerContext, data: s.MissingDeclaration) -> None:
        """Record a court's declaration that a person is missing, or its cancellation."""
        self._require_writer(ctx)
        now = utcnow()
        before, after = ("missing", "alive") if data.cancel else ("alive", "missing")
        with self.factory() as session, session.begin():
            current = self._scoped_current(session, ctx, data.personal_id)
            version = self._open_version(session, current.person_id)
            if version.status != before:
                raise Invalid(f"this person is recorded as {version.status}", "personal_id")
            kind = "missing.cancel" if data.cancel else "missing.declare"
            event = self._event(
                session,
                ctx,
                kind,
                data.on,
                current.person_id,
                self._current_unit(current),
                data.court_decision,
                {},
            )
            supersede(session, version, data.on, now, event.id, {"status": after})
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                f"registry.person.{kind}",
                current.personal_id,
                {"personal_id": current.personal_id, "event_id": event.id},
            )
            self._audit(session, ctx, kind, current.person_id, f"event {event.id}")

    # -- residence ------------------------------------------------------------------------

    def change_residence(self, ctx: OfficerContext, data: s.ResidenceChange) -> str | None:
        """Đăng ký thường trú / tạm trú at a new address. A permanent move leaves the old
        household and joins the named one, or founds a new household with the person as head.
        Returns the household number joined or founded (None for temporary residence)."""
        self._require_writer(ctx)
        dest = self._commune(data.commune_code, data.moved_on, "commune_code")
        self._require_scope(ctx, self.units.roll_forward(dest), "commune_code")
        now = utcnow()
        with self.factory() as session, session.begin():
            current = self._current_row(session, data.personal_id)
            if current.status != "alive":
                raise Invalid("only a living person can register a residence", "personal_id")
            event = self._event(
                session,
                ctx,
                f"residence.{data.kind}",
                data.moved_on,
                current.person_id,
                dest,
                data.reference,
                {"commune_code": dest.code, "scheme": dest.scheme},
            )
            number = None
            if data.kind == "temporary":
                self._end_open(
                    session,
                    Residence,
                    data.moved_on,
                    now,
                    event.id,
                    person_id=current.person_id,
                    kind="temporary",
                )
                session.add(
                    Residence(
                        person_id=current.person_id,
                        kind="temporary",
                        unit_id=dest.id,
                        address_line=data.address_line,
                        valid_from=data.moved_on,
                        recorded_at=now,
                        event_id=event.id,
                    )
                )
            else:
                household = self._move_household(session, current, dest, data, now, event.id)
                number = household.number
                self._end_open(
                    session,
                    Residence,
                    data.moved_on,
                    now,
                    event.id,
                    person_id=current.person_id,
                    kind="permanent",
                )
                session.add(
                    Residence(
                        person_id=current.person_id,
                        kind="permanent",
                        unit_id=dest.id,
                        address_line=data.address_line,
                        household_id=household.id,
                        valid_from=data.moved_on,
                        recorded_at=now,
                        event_id=event.id,
                    )
                )
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                "registry.residence.changed",
                current.personal_id,
                {
                    "personal_id": current.personal_id,
                    "kind": data.kind,
                    "moved_on": data.moved_on.isoformat(),
                    "commune_code": self.units.roll_forward(dest).code,
                    "household": number,
                    "event_id": event.id,
                },
            )
            self._audit(
                session, ctx, f"residence.{data.kind}", current.person_id, f"event {event.id}"
            )
        return number

    def _move_household(
        self,
        session: Session,
        current: PersonCurrent,
        dest: Unit,
        data: s.ResidenceChange,
        now: Any,
        event_id: int,
    ) -> Household:
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
            household = session.scalars(
                select(Household).where(Household.number == data.household_number)
            ).first()
            if household is None or household.dissolved_on is not None:
                raise Invalid("no open household with this number", "household_number")
            if self.units.roll_forward(
                self.units.by_id[household.unit_id]
            ) != self.units.roll_forward(dest):
                raise Invalid("this household is registered in another commune", "household_number")
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
        with self.factory() as session, session.begin():
            household = session.scalars(
                select(Household).where(Household.number == data.household_number)
            ).first()
            unit = self.units.by_id[household.unit_id] if household else None
            today_unit = self.units.roll_forward(unit) if unit else None
            if (
                household is None
                or today_unit is None
                or not ctx.covers(today_unit.province_code, today_unit.code)
            ):
                raise NotFound("no household with this number in your area", "household_number")
            members = {
                m.person_id: m
                for m in session.scalars(open_rows(HouseholdMember, household_id=household.id))
            }
            new_head = self._current_row(session, data.new_head_personal_id, "new_head_personal_id")
            if new_head.person_id not in members or new_head.status != "alive":
                raise Invalid(
                    "the new head must be a living member of this household", "new_head_personal_id"
                )
            restated = {
                self._current_row(session, pid, "relationships").person_id: rel
                for pid, rel in data.relationships.items()
            }
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

    # -- marriage, divorce, name, ID ------------------------------------------------------

    def register_marriage(self, ctx: OfficerContext, data: s.MarriageRegistration) -> None:
        """Đăng ký kết hôn (Law on Marriage and Family 2014 Art. 8 conditions)."""
        self._require_writer(ctx)
        if data.personal_id == data.spouse_personal_id:
            raise Invalid("a person cannot marry themselves", "spouse_personal_id")
        now = utcnow()
        with self.factory() as session, session.begin():
            a, b = (
                self._current_row(session, data.personal_id),
                self._current_row(session, data.spouse_personal_id),
            )
            if not (
                ctx.covers(a.province_code, a.commune_code)
                or ctx.covers(b.province_code, b.commune_code)
            ):
                raise NotFound("no person with this ID number in your area", "personal_id")
            va, vb = (
                self._open_version(session, a.person_id),
                self._open_version(session, b.person_id),
            )
            for v, field in ((va, "personal_id"), (vb, "spouse_personal_id")):
                self._check_can_marry(v, data.married_on, field)
            event = self._event(
                session,
                ctx,
                "marriage",
                data.married_on,
                a.person_id,
                self._current_unit(a),
                data.reference,
                {"spouse_person_id": b.person_id},
            )
            supersede(
                session,
                va,
                data.married_on,
                now,
                event.id,
                {"marital_status": "married", "spouse_id": b.person_id},
            )
            supersede(
                session,
                vb,
                data.married_on,
                now,
                event.id,
                {"marital_status": "married", "spouse_id": a.person_id},
            )
            self._emit(
                session,
                "registry.person.married",
                a.personal_id,
                {
                    "personal_ids": [a.personal_id, b.personal_id],
                    "married_on": data.married_on.isoformat(),
                    "event_id": event.id,
                },
            )
            for p in (a, b):
                self._audit(session, ctx, "marriage.register", p.person_id, f"event {event.id}")

    @staticmethod
    def _check_can_marry(v: PersonVersion, on: date, field: str) -> None:
        if v.status != "alive":
            raise Invalid("this person is not alive", field)
        if v.marital_status == "married":
            raise Invalid("this person is already married", field)
        age = (
            on.year
            - v.birth_date.year
            - ((on.month, on.day) < (v.birth_date.month, v.birth_date.day))
        )
        if age < MARRIAGE_AGE[v.sex]:
            raise Invalid(f"under the legal marriage age ({MARRIAGE_AGE[v.sex]})", field)

    def register_divorce(self, ctx: OfficerContext, data: s.DivorceRegistration) -> None:
        """Ghi chú ly hôn: both become divorced from the date of the court's decision."""
        self._require_writer(ctx)
        now = utcnow()
        with self.factory() as session, session.begin():
            a = self._scoped_current(session, ctx, data.personal_id)
            b = self._current_row(session, data.spouse_personal_id)
            va, vb = (
                self._open_version(session, a.person_id),
                self._open_version(session, b.person_id),
            )
            if va.spouse_id != b.person_id or vb.spouse_id != a.person_id:
                raise Invalid(
                    "these two people are not married to each other", "spouse_personal_id"
                )
            event = self._event(
                session,
                ctx,
                "divorce",
                data.divorced_on,
                a.person_id,
                self._current_unit(a),
                data.reference,
                {"spouse_person_id": b.person_id},
            )
            for v in (va, vb):
                supersede(
                    session,
                    v,
                    data.divorced_on,
                    now,
                    event.id,
                    {"marital_status": "divorced", "spouse_id": None},
                )
            self._emit(
                session,
                "registry.person.divorced",
                a.personal_id,
                {
                    "personal_ids": [a.personal_id, b.personal_id],
                    "divorced_on": data.divorced_on.isoformat(),
                    "event_id": event.id,
                },
            )
            for p in (a, b):
                self._audit(session, ctx, "divorce.register", p.person_id, f"event {event.id}")

    def change_name(self, ctx: OfficerContext, data: s.NameChange) -> None:
        """Thay đổi họ, chữ đệm, tên (Law on Civil Status 2014 Art. 26)."""
        self._require_writer(ctx)
        now = utcnow()
        with self.factory() as session, session.begin():
            current = self._scoped_current(session, ctx, data.personal_id)
            version = self._open_version(session, current.person_id)
            if version.full_name == data.new_name:
                raise Invalid("the new name is the same as the current one", "new_name")
            event = self._event(
                session,
                ctx,
                "name_change",
                data.changed_on,
                current.person_id,
                self._current_unit(current),
                data.reference,
                {"reason": data.reason},
            )
            supersede(
                session, version, data.changed_on, now, event.id, {"full_name": data.new_name}
            )
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                "registry.person.renamed",
                current.personal_id,
                {"personal_id": current.personal_id, "event_id": event.id},
            )
            self._audit(session, ctx, "name.change", current.person_id, f"event {event.id}")

    def reestablish_id(self, ctx: OfficerContext, data: s.IDReestablishment) -> str:
        """Xác lập lại số định danh cá nhân: issue a new number; the old one stays resolvable
        to the same person (Law on Identity 26/2023 Art. 24)."""
        self._require_writer(ctx)
        with self.factory() as session, session.begin():
            current = self._scoped_current(session, ctx, data.personal_id)
            old = ids.parse(current.personal_id)
            version = self._open_version(session, current.person_id)
            place = old.place_code
            new = ids.allocate(session, place, old.sex, version.birth_date.year).number
            event = self._event(
                session,
                ctx,
                "id_reestablishment",
                data.on,
                current.person_id,
                self._current_unit(current),
                data.reference,
                {"reason": data.reason},
            )
            ident = session.scalars(
                select(PersonIdentifier).where(
                    PersonIdentifier.kind == "personal_id",
                    PersonIdentifier.value == current.personal_id,
                )
            ).one()
            ident.valid_to = data.on
            session.add(
                PersonIdentifier(
                    person_id=current.person_id,
                    kind="personal_id",
                    value=new,
                    valid_from=data.on,
                    event_id=event.id,
                )
            )
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                "registry.personal_id.reestablished",
                new,
                {"personal_id": new, "previous_personal_id": old.number, "event_id": event.id},
            )
            self._audit(session, ctx, "id.reestablish", current.person_id, f"event {event.id}")
        return new

    # -- helpers --------------------------------------------------------------------------

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
        self, session: Session, personal_id: str | None, sex: str, birth: date, field: str
    ) -> PersonCurrent | None:
        if personal_id is None:
            return None
        parent = self._current_row(session, personal_id, field)
        if parent.sex != sex:
            raise Invalid("the recorded sex of this person does not fit the role", field)
        if parent.birth_date.year > birth.year - 12:
            raise Invalid("this person is too young to be the parent", field)
        return parent

    def _birth_household(
        self,
        session: Session,
        data: s.BirthRegistration,
        mother: PersonCurrent | None,
        father: PersonCurrent | None,
    ) -> Household:
        if data.household_number:
            household = session.scalars(
                select(Household).where(Household.number == data.household_number)
            ).first()
            if household is None:
                raise Invalid("no household with this number", "household_number")
            return household
        for parent in (mother, father):
            if parent is not None and parent.household_id is not None:
                household = session.get(Household, parent.household_id)
                if household is not None:
                    return household
        raise Invalid(
            "the parents have no household; give the household number", "household_number"
        )

    def _new_household(
        self, session: Session, unit: Unit, address: str, on: date, head_id: int
    ) -> Household:
        seq = int(session.scalar(select(func.count()).select_from(Household)) or 0) + 1
        number = f"{self.units.roll_forward(unit).code}{seq:09d}"
        household = Household(
            number=number,
            head_person_id=head_id,
            unit_id=unit.id,
            address_line=address,
            established_on=on,
        )
        session.add(household)
        session.flush()
        return household

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
