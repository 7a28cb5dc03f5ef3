"""Read use cases of the registry: lookup, "as of" views, search, history, households.
Every read is scoped to the officer's unit and written to the audit log before it returns."""

from __future__ import annotations

from dataclasses import astuple
from datetime import date, datetime
from functools import partial
from typing import Protocol

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.audit import Entry
from dancu.core.errors import NotFound
from dancu.core.timeutil import utcnow
from dancu.core.units import Unit, UnitDirectory
from dancu.registry import schemas as s
from dancu.registry import search, view
from dancu.registry.lookup import OUT_OF_AREA, PersonLookup
from dancu.registry.models import (
    CivilEvent,
    Household,
    HouseholdMember,
    PersonCurrent,
    PersonIdentifier,
    PersonMerge,
    PersonVersion,
    Residence,
)
from dancu.registry.search import SearchQuery
from dancu.registry.versioning import as_of, open_rows

# What the history names as changed from one believed version to the next.
_TRACKED = (
    *view.ATTRIBUTES,
    "father_id",
    "mother_id",
    "spouse_id",
    "hometown_unit_id",
)


class ReadAuditor(Protocol):
    """Port: where audited reads are written (durably, before the read returns)."""

    def write(self, entry: Entry) -> None: ...


class RegistryReads:
    def __init__(
        self, factory: sessionmaker[Session], units: UnitDirectory, reads_audit: ReadAuditor
    ) -> None:
        self.factory = factory
        self.units = units
        self.reads_audit = reads_audit
        # The async PostgreSQL lookup (``lookup.py``), wired by bootstrap when it applies.
        self.lookup: PersonLookup | None = None

    def get_person(
        self,
        ctx: OfficerContext,
        personal_id: str,
        *,
        valid_on: date | None = None,
        known_at: datetime | None = None,
        purpose: str | None = None,
    ) -> s.PersonPublic:
        """The person's record today, or as it was valid on ``valid_on`` as the register knew
        it at ``known_at``. Old and re-established numbers resolve to the same person."""
        with self.factory() as session:
            current = self._scoped_current(session, ctx, personal_id)
            out = self._person_view(session, current, valid_on, known_at)
        self._audit_read(
            ctx, "person.read", current.person_id, purpose, f"as of {valid_on}" if valid_on else ""
        )
        return out

    async def aget_person(
        self,
        ctx: OfficerContext,
        personal_id: str,
        *,
        valid_on: date | None = None,
        known_at: datetime | None = None,
        purpose: str | None = None,
    ) -> s.PersonPublic:
        """``get_person`` for async callers: the current record through the async lookup
        where it serves this loop, anything else on a worker thread."""
        lookup = self.lookup
        if lookup is not None and valid_on is None and known_at is None and lookup.serves_here():
            return await lookup.get_person(ctx, personal_id, purpose)
        return await anyio.to_thread.run_sync(
            partial(
                self.get_person,
                ctx,
                personal_id,
                valid_on=valid_on,
                known_at=known_at,
                purpose=purpose,
            )
        )

    def search(
        self,
        ctx: OfficerContext,
        query: str = "",
        birth_date: date | None = None,
        birth_year: int | None = None,
        page: int = 1,
        province_code: str | None = None,
        commune_code: str | None = None,
    ) -> s.SearchPage:
        """Search by personal ID, old CMND number, or name (any case, with or without
        diacritics, any tone-mark placement, any word order; whole words), narrowed by date or
        year of birth and by today's province or commune, within the officer's area. Exact
        name matches come first (``search.py``)."""
        q = SearchQuery(query, birth_date, birth_year, page, province_code, commune_code)
        q = q.normalised()
        with self.factory() as session:
            shape, values = search.bind(ctx, q, session.get_bind().dialect.name)
            out = search.page_of(session.execute(search.statement(shape), values), q, self.units)
        self.reads_audit.write(search.audit_entry(ctx, q, len(out.items)))
        return out

    async def asearch(self, ctx: OfficerContext, q: SearchQuery) -> s.SearchPage:
        """``search`` for async callers: through the async PostgreSQL lookup where it serves
        this loop, anything else on a worker thread."""
        lookup = self.lookup
        if lookup is not None and lookup.serves_here():
            return await lookup.search(ctx, q)
        return await anyio.to_thread.run_sync(partial(self.search, ctx, *astuple(q)))

    def history(self, ctx: OfficerContext, personal_id: str) -> s.HistoryOut:
        """Every version of the person's record (including superseded corrections), every
        residence and every civil event, oldest first; and the same of each record merged
        into this one (``merge.py``), as it was."""
        with self.factory() as session:
            current = self._scoped_current(session, ctx, personal_id)
            versions, residences, events = self._history_of(session, current.person_id)
            merged = [
                s.MergedRecordOut(
                    merge_id=m.id,
                    personal_id=m.merged_number,
                    merged_at=m.merged_at,
                    reason=m.reason,
                    **dict(
                        zip(
                            ("versions", "residences", "events"),
                            self._history_of(session, m.merged_id),
                            strict=True,
                        )
                    ),
                )
                for m in self._merged_into(session, current.person_id)
            ]
            out = s.HistoryOut(
                personal_id=current.personal_id,
                versions=versions,
                residences=residences,
                events=events,
                merged=merged,
            )
        self._audit_read(ctx, "person.history", current.person_id, None, "")
        return out

    @staticmethod
    def _merged_into(session: Session, person_id: int) -> list[PersonMerge]:
        """The merges standing into the person, and into the records merged into it."""
        found: list[PersonMerge] = []
        survivors = [person_id]
        while survivors:
            step = list(
                session.scalars(
                    select(PersonMerge)
                    .where(PersonMerge.survivor_id.in_(survivors), PersonMerge.status == "merged")
                    .order_by(PersonMerge.id)
                )
            )
            found += step
            survivors = [m.merged_id for m in step]
        return found

    def _history_of(
        self, session: Session, pid: int
    ) -> tuple[list[s.VersionOut], list[s.ResidenceOut], list[s.EventOut]]:
        versions = list(
            session.scalars(
                select(PersonVersion)
                .where(PersonVersion.person_id == pid)
                .order_by(PersonVersion.valid_from, PersonVersion.recorded_at)
            )
        )
        events = {
            e.id: e
            for e in session.scalars(
                select(CivilEvent)
                .where(
                    CivilEvent.id.in_({v.event_id for v in versions if v.event_id})
                    | (CivilEvent.person_id == pid)
                )
                .order_by(CivilEvent.occurred_on, CivilEvent.id)
            )
        }
        residences = list(
            session.scalars(
                select(Residence)
                .where(Residence.person_id == pid)
                .order_by(Residence.valid_from, Residence.recorded_at)
            )
        )
        return (
            self._version_timeline(versions, events),
            [view.residence_out(self.units, self._residence_row(session, r)) for r in residences],
            [s.EventOut.model_validate(e, from_attributes=True) for e in events.values()],
        )

    def household(self, ctx: OfficerContext, number: str) -> s.HouseholdOut:
        """A household (hộ) with its current members and their relationship to the head."""
        with self.factory() as session:
            household = session.scalars(
                select(Household).where(Household.number == number.strip())
            ).first()
            if household is None:
                raise NotFound("no household with this number in your area", "number")
            unit = self.units.by_id[household.unit_id]
            today_unit = self.units.roll_forward(unit)
            if not ctx.covers(today_unit.province_code, today_unit.code):
                raise NotFound("no household with this number in your area", "number")
            members = session.execute(
                select(HouseholdMember, PersonCurrent)
                .join(PersonCurrent, PersonCurrent.person_id == HouseholdMember.person_id)
                .where(
                    HouseholdMember.household_id == household.id,
                    HouseholdMember.superseded_at.is_(None),
                    HouseholdMember.valid_to.is_(None),
                )
                .order_by(HouseholdMember.relationship != "head", PersonCurrent.birth_date)
            ).all()
            head = next((p for m, p in members if m.relationship == "head"), None)
            out = s.HouseholdOut(
                number=household.number,
                unit=self._unit_ref(unit),
                current_unit=self._unit_ref(today_unit),
                address_line=household.address_line,
                established_on=household.established_on,
                head=s.PersonRef(personal_id=head.personal_id, full_name=head.full_name)
                if head
                else None,
                members=[
                    s.HouseholdMemberOut(
                        personal_id=p.personal_id,
                        full_name=p.full_name,
                        birth_date=p.birth_date,
                        sex=p.sex,
                        relationship=m.relationship,
                        status=p.status,
                        since=m.valid_from,
                    )
                    for m, p in members
                ],
            )
        self._audit_read(ctx, "household.read", household.id, None, "", kind="household")
        return out

    # -- shared helpers (also used by the write side) -------------------------------------

    def _current_row(
        self, session: Session, personal_id: str, field: str = "personal_id"
    ) -> PersonCurrent:
        person_id = self._holder(session, ids.issued_number(personal_id, field))
        row = session.get(PersonCurrent, person_id) if person_id is not None else None
        if row is None:
            # The words an out-of-area person gets too: nobody can tell the two apart.
            raise NotFound(OUT_OF_AREA, field)
        return row

    @staticmethod
    def _holder(session: Session, number: str) -> int | None:
        """Who holds or held the personal ID number (old and re-established numbers too)."""
        return session.scalar(
            select(PersonIdentifier.person_id).where(
                PersonIdentifier.kind == "personal_id", PersonIdentifier.value == number
            )
        )

    def _scoped_current(
        self, session: Session, ctx: OfficerContext, personal_id: str
    ) -> PersonCurrent:
        """The person, if the officer's area covers them. Outside the area the answer is the
        same as for an unknown number, so an officer cannot probe who exists elsewhere."""
        row = self._current_row(session, personal_id)
        if not ctx.covers(row.province_code, row.commune_code):
            raise NotFound(OUT_OF_AREA, "personal_id")
        return row

    @staticmethod
    def _open_version(session: Session, person_id: int) -> PersonVersion:
        version = session.scalars(
            open_rows(PersonVersion, person_id=person_id).order_by(
                PersonVersion.valid_from.desc(), PersonVersion.id.desc()
            )
        ).first()
        if version is None:
            raise NotFound("the person has no current record")
        return version

    def _current_unit(self, current: PersonCurrent) -> Unit | None:
        return self.units.by_id.get(current.residence_unit_id or -1)

    def _audit_read(
        self,
        ctx: OfficerContext,
        action: str,
        subject_id: int,
        purpose: str | None,
        detail: str,
        kind: str = "person",
    ) -> None:
        self.reads_audit.write(Entry(ctx.actor(purpose), action, f"{kind}:{subject_id}", detail))

    def _unit_ref(self, unit: Unit) -> s.UnitRef:
        return view.unit_ref(self.units, unit)

    @staticmethod
    def _residence_row(session: Session, r: Residence) -> view.ResidenceRow:
        number = (
            session.scalar(select(Household.number).where(Household.id == r.household_id))
            if r.household_id
            else None
        )
        return (r.kind, r.unit_id, r.address_line, r.valid_from, r.valid_to, number)

    def _ref(self, session: Session, person_id: int | None) -> view.RefRow | None:
        """A parent or spouse as they stand today: a merged record as its survivor."""
        for _ in range(100):  # a chain of merges, never a loop
            if person_id is None:
                return None
            row = session.get(PersonCurrent, person_id)
            if row is not None:
                return (row.personal_id, row.full_name)
            person_id = session.scalar(
                select(PersonMerge.survivor_id).where(
                    PersonMerge.merged_id == person_id, PersonMerge.status == "merged"
                )
            )
        return None

    def _person_view(
        self,
        session: Session,
        current: PersonCurrent,
        valid_on: date | None,
        known_at: datetime | None,
    ) -> s.PersonPublic:
        pid = current.person_id
        if valid_on is None and known_at is None:
            version = self._open_version(session, pid)
            residences = list(
                session.scalars(
                    open_rows(Residence, person_id=pid).order_by(Residence.valid_from, Residence.id)
                )
            )
            member = session.scalars(
                open_rows(HouseholdMember, person_id=pid).order_by(
                    HouseholdMember.valid_from.desc(), HouseholdMember.id.desc()
                )
            ).first()
        else:
            on, at = valid_on or utcnow().date(), known_at or utcnow()
            found = session.scalars(as_of(PersonVersion, on, at, person_id=pid)).first()
            if found is None:
                raise NotFound(
                    f"the register holds no record of this person on {on:%d/%m/%Y}", "as_of"
                )
            version = found
            residences = list(session.scalars(as_of(Residence, on, at, person_id=pid)))
            member = session.scalars(as_of(HouseholdMember, on, at, person_id=pid)).first()
        household = session.get(Household, member.household_id) if member else None
        idents = session.scalars(
            select(PersonIdentifier)
            .where(PersonIdentifier.person_id == pid)
            .order_by(PersonIdentifier.valid_from, PersonIdentifier.id)
        )
        return view.person_public(
            self.units,
            current.personal_id,
            {f: getattr(version, f) for f in view.RECORD_FIELDS},
            father=self._ref(session, version.father_id),
            mother=self._ref(session, version.mother_id),
            spouse=self._ref(session, version.spouse_id),
            residences=[self._residence_row(session, r) for r in residences],
            household_number=household.number if household else None,
            relationship=member.relationship if member else None,
            identifiers=[
                (i.kind, i.value, i.issuer_code, i.valid_from, i.valid_to) for i in idents
            ],
            as_of=valid_on,
        )

    @staticmethod
    def _version_timeline(
        versions: list[PersonVersion], events: dict[int, CivilEvent]
    ) -> list[s.VersionOut]:
        out: list[s.VersionOut] = []
        previous: PersonVersion | None = None
        for v in versions:
            believed = v.superseded_at is None
            changes = (
                [f for f in _TRACKED if getattr(v, f) != getattr(previous, f)]
                if believed and previous is not None
                else []
            )
            event = events.get(v.event_id or -1)
            out.append(
                s.VersionOut(
                    valid_from=v.valid_from,
                    valid_to=v.valid_to,
                    recorded_at=v.recorded_at,
                    superseded_at=v.superseded_at,
                    event_kind=event.kind if event else None,
                    event_reference=event.reference if event else None,
                    full_name=v.full_name,
                    marital_status=v.marital_status,
                    status=v.status,
                    changes=changes,
                )
            )
            if believed:
                previous = v
        return out
