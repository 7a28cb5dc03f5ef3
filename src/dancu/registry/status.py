"""Civil-status use cases: marriage, divorce, name change, ID re-establishment, missing-person
declarations."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.errors import Conflict, Invalid, NotFound
from dancu.core.i18n import N_
from dancu.core.timeutil import utcnow
from dancu.registry import schemas as s
from dancu.registry.models import (
    CivilEvent,
    PersonCurrent,
    PersonIdentifier,
    PersonVersion,
)
from dancu.registry.versioning import copy_fields, supersede
from dancu.registry.writes import WriteSteps

NO_PARTY = N_(
    "no person with this ID number in your area; for a party living elsewhere, also give "
    "their full name as on their card"
)
NOT_MARRIED = N_("these two people are not married to each other")
STATUS_IS = {
    "alive": N_("this person is recorded as alive"),
    "missing": N_("this person is recorded as missing"),
    "deceased": N_("this person is recorded as deceased"),
}

# Law on Marriage and Family 52/2014/QH13 Art. 8: men from 20, women from 18.
MARRIAGE_AGE = {"M": 20, "F": 18}


class CivilStatusUseCases(WriteSteps):
    def register_marriage(self, ctx: OfficerContext, data: s.MarriageRegistration) -> None:
        """Đăng ký kết hôn (Law on Marriage and Family 2014 Art. 8 conditions)."""
        self._require_writer(ctx)
        if data.personal_id == data.spouse_personal_id:
            raise Invalid("a person cannot marry themselves", "spouse_personal_id")
        now = utcnow()
        with self._writing() as session:
            a, a_here = self._reach(
                session, ctx, data.personal_id, "personal_id", data.full_name, message=NO_PARTY
            )
            b, b_here = self._reach(
                session,
                ctx,
                data.spouse_personal_id,
                "spouse_personal_id",
                data.spouse_full_name,
                message=NO_PARTY,
            )
            if not (a_here or b_here):
                # Registered where either party resides (Law on Civil Status 2014 Art. 17).
                raise NotFound(NO_PARTY, "personal_id")
            self._lock_all(session, a.person_id, b.person_id)
            va, vb = (
                self._open_version(session, a.person_id),
                self._open_version(session, b.person_id),
            )
            if va.spouse_id == b.person_id and vb.spouse_id == a.person_id:
                raise Conflict("this marriage is already registered", "spouse_personal_id")
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
            self._announce_couple(
                session, ctx, a, b, "married", "marriage.register", data.married_on, event.id
            )

    def _announce_couple(
        self,
        session: Session,
        ctx: OfficerContext,
        a: PersonCurrent,
        b: PersonCurrent,
        became: str,
        action: str,
        on: date,
        event_id: int,
    ) -> None:
        """The outbox event ``registry.person.<became>`` of a marriage or divorce (keyed by
        the first party) and the change audited for both people."""
        self._emit(
            session,
            f"registry.person.{became}",
            a.personal_id,
            {
                "personal_ids": [a.personal_id, b.personal_id],
                f"{became}_on": on.isoformat(),
                "event_id": event_id,
            },
        )
        for p in (a, b):
            self._audit(session, ctx, action, p.person_id, f"event {event_id}")

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
        with self._writing() as session:
            a = self._scoped_current(session, ctx, data.personal_id)
            try:
                b = self._current_row(session, data.spouse_personal_id, "spouse_personal_id")
            except NotFound:
                raise Invalid(NOT_MARRIED, "spouse_personal_id") from None
            self._lock_all(session, a.person_id, b.person_id)
            va, vb = (
                self._open_version(session, a.person_id),
                self._open_version(session, b.person_id),
            )
            if va.spouse_id != b.person_id or vb.spouse_id != a.person_id:
                if self._divorced_from(session, va, b.person_id):
                    raise Conflict("this divorce is already recorded", "spouse_personal_id")
                # Said alike of a stranger, an unknown number and someone living elsewhere.
                raise Invalid(NOT_MARRIED, "spouse_personal_id")
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
            self._announce_couple(
                session, ctx, a, b, "divorced", "divorce.register", data.divorced_on, event.id
            )

    @staticmethod
    def _divorced_from(session: Session, version: PersonVersion, spouse_id: int) -> bool:
        """The person's open version was made by a divorce from ``spouse_id``."""
        if version.marital_status != "divorced" or version.event_id is None:
            return False
        event = session.get(CivilEvent, version.event_id)
        if event is None or event.kind != "divorce":
            return False
        pair = {event.person_id, (event.details or {}).get("spouse_person_id")}
        return pair == {version.person_id, spouse_id}

    def change_name(self, ctx: OfficerContext, data: s.NameChange) -> None:
        """Thay đổi họ, chữ đệm, tên (Law on Civil Status 2014 Art. 26)."""
        self._require_writer(ctx)
        now = utcnow()
        with self._writing() as session:
            current = self._writable_person(session, ctx, data.personal_id)
            version = self._open_version(session, current.person_id)
            if version.full_name == data.new_name:
                raise Conflict("the register already holds this name", "new_name")
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
            self._conclude(
                session,
                ctx,
                current.person_id,
                "name.change",
                event.id,
                "registry.person.renamed",
                current.personal_id,
                {"personal_id": current.personal_id, "event_id": event.id},
            )

    def reestablish_id(self, ctx: OfficerContext, data: s.IDReestablishment) -> str:
        """Xác lập lại số định danh cá nhân: issue a new number; the old one stays resolvable
        to the same person (Law on Identity 26/2023 Art. 24)."""
        self._require_writer(ctx)
        with self._writing() as session:
            current = self._writable_person(session, ctx, data.personal_id)
            if current.personal_id != data.personal_id:
                # An old number resolves to its person, but re-establishing it again would
                # issue a third number for one request sent twice.
                raise Conflict(
                    "this number has already been replaced by a re-established one",
                    "personal_id",
                )
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
            self._swap_number(session, current, new, data.on, event.id)
            self._conclude(
                session,
                ctx,
                current.person_id,
                "id.reestablish",
                event.id,
                "registry.personal_id.reestablished",
                new,
                {"personal_id": new, "previous_personal_id": old.number, "event_id": event.id},
            )
        return new

    def declare_missing(self, ctx: OfficerContext, data: s.MissingDeclaration) -> None:
        """Record a court's declaration that a person is missing, or its cancellation."""
        self._require_writer(ctx)
        now = utcnow()
        before, after = ("missing", "alive") if data.cancel else ("alive", "missing")
        with self._writing() as session:
            current = self._writable_person(session, ctx, data.personal_id)
            version = self._open_version(session, current.person_id)
            if version.status != before:
                raise Conflict(STATUS_IS[version.status], "personal_id")
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
            self._conclude(
                session,
                ctx,
                current.person_id,
                kind,
                event.id,
                f"registry.person.{kind}",
                current.personal_id,
                {"personal_id": current.personal_id, "event_id": event.id},
            )

    def correct_record(self, ctx: OfficerContext, data: s.Correction) -> str:
        """Correct a fact that was recorded wrongly from the start: every version the register
        believes is superseded by a copy with the corrected value over the same valid time.
        When the birth year or sex changes, the number no longer encodes them, so a new
        personal ID number is issued in the same transaction (Law on Identity 2023 Art. 24).
        Returns the (possibly new) personal ID number."""
        self._require_writer(ctx)
        value = _corrected_value(data)
        now = utcnow()
        with self._writing() as session:
            current = self._writable_person(session, ctx, data.personal_id)
            believed = list(
                session.scalars(
                    select(PersonVersion)
                    .where(
                        PersonVersion.person_id == current.person_id,
                        PersonVersion.superseded_at.is_(None),
                    )
                    .order_by(PersonVersion.valid_from)
                )
            )
            if all(getattr(v, data.field) == value for v in believed):
                raise Conflict("the register already holds this value", "value")
            event = self._event(
                session,
                ctx,
                "correction",
                now.date(),
                current.person_id,
                self._current_unit(current),
                data.reference,
                {"field": data.field, "reason": data.reason},
            )
            changes: dict[str, object] = {data.field: value}
            if data.field == "birth_date":
                changes["valid_from"] = value
            for v in believed:
                v.superseded_at = now
                fields = copy_fields(v)
                start = value if data.field == "birth_date" and v is believed[0] else v.valid_from
                session.add(
                    PersonVersion(
                        **{**fields, data.field: value},
                        valid_from=start,
                        valid_to=v.valid_to,
                        recorded_at=now,
                        event_id=event.id,
                    )
                )
            number = current.personal_id
            old = ids.parse(number)
            sex = value if data.field == "sex" else old.sex
            year = value.year if isinstance(value, date) else old.birth_year
            if (sex, year) != (old.sex, old.birth_year):
                number = self._replace_number(session, current, old, sex, year, event.id)  # type: ignore[arg-type]
            session.flush()
            self._refresh_current(session, current.person_id)
            self._emit(
                session,
                "registry.person.corrected",
                number,
                {
                    "personal_id": number,
                    "field": data.field,
                    "event_id": event.id,
                    "previous_personal_id": current.personal_id
                    if number != current.personal_id
                    else None,
                },
            )
            self._audit(
                session,
                ctx,
                "record.correct",
                current.person_id,
                f"event {event.id} field {data.field}",
            )
        return number

    def _replace_number(
        self,
        session: Session,
        current: PersonCurrent,
        old: ids.PersonalID,
        sex: ids.Sex,
        year: int,
        event_id: int,
    ) -> str:
        new = ids.allocate(session, old.place_code, sex, year).number
        self._swap_number(session, current, new, utcnow().date(), event_id)
        return new

    @staticmethod
    def _swap_number(
        session: Session, current: PersonCurrent, new: str, on: date, event_id: int
    ) -> None:
        """The person's personal ID number ends on ``on`` and ``new`` is theirs from then (the
        old number stays theirs: it still resolves to them)."""
        ident = session.scalars(
            select(PersonIdentifier).where(
                PersonIdentifier.kind == "personal_id",
                PersonIdentifier.value == current.personal_id,
            )
        ).one()
        ident.valid_to = on
        session.add(
            PersonIdentifier(
                person_id=current.person_id,
                kind="personal_id",
                value=new,
                valid_from=on,
                event_id=event_id,
            )
        )


def _corrected_value(data: s.Correction) -> object:
    """Parse and check the corrected value for its field; errors name the ``value`` field."""
    if data.field == "birth_date":
        try:
            value = date.fromisoformat(data.value)
        except ValueError:
            raise Invalid("a date is written YYYY-MM-DD", "value") from None
        if value > utcnow().date() or value.year < 1900:
            raise Invalid("the date is in the future or before 1900", "value")
        return value
    if data.field == "sex":
        if data.value not in ("M", "F"):
            raise Invalid("sex is M or F", "value")
        return data.value
    if data.field == "full_name":
        try:
            return s.check_name(data.value)
        except ValueError as exc:
            raise Invalid(str(exc), "value") from None
    if data.field == "nationality" and not re.fullmatch(r"[A-Z]{2}", data.value):
        raise Invalid("nationality is a two-letter country code", "value")
    return data.value
