"""Residence use cases: permanent and temporary residence, moves between households, change
of household head (Law on Residence 68/2020/QH14)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.errors import Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.core.units import Unit
from dancu.registry import schemas as s
from dancu.registry.models import (
    Household,
    HouseholdMember,
    PersonCurrent,
    Residence,
)
from dancu.registry.versioning import open_rows, supersede
from dancu.registry.writes import WriteSteps


class ResidenceUseCases(WriteSteps):
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
