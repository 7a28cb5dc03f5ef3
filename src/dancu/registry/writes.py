"""Shared steps of the registry's write use cases: scope checks, unit lookup, civil events,
outbox events, change audit, and the ``person_current`` projection."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.audit import Entry, record_change
from dancu.core.errors import Forbidden, Invalid
from dancu.core.models import OutboxEvent
from dancu.core.names import fold
from dancu.core.timeutil import utcnow
from dancu.core.units import NEW, Unit, scheme_at
from dancu.registry import schemas as s
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


class WriteSteps(RegistryReads):
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
