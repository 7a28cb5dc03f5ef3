"""Merging two records of one person, and undoing the merge (docs/merge.md).

A person registered twice (found by ``dancu reconcile dedupe`` and confirmed by an officer,
or known to an officer) is made one: the *survivor* keeps its record and the *merged* record
answers as the survivor from now on. Nothing is deleted and nothing of the survivor's is
overwritten:

- the merged person's open version is superseded by one with status ``merged`` (its history
  stays, readable in the survivor's history), and ``person_merge`` points it at the survivor;
- its identifiers (its 12-digit number, old CMND numbers) become the survivor's: the number
  still resolves, to the survivor, and is never issued again (it stays in
  ``personal_id_allocation``);
- its household membership and residences end; the survivor takes them over only where it
  has none (a household it heads with other members must get a new head first, as for a
  move);
- children's parent links and the spouse's link point at the survivor, and the survivor gains
  the parents and the marriage its own record lacks (two different spouses: refused);
- its ``person_current`` row goes (searches and counts list the survivor once).

The merge lists every row it superseded, added or re-pointed (``PersonMerge.changes``), so
``unmerge`` undoes exactly that: rows nobody changed since are believed again as they were
(in transaction time: "as known at" a moment inside the merge still shows it); a person
changed since gets only the merge's links taken back, from the day of the undo. The one undo
refused is that of a merge whose survivor was itself merged since: undo the later one first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.errors import Conflict, Invalid, NotFound
from dancu.core.i18n import N_
from dancu.core.timeutil import utcnow
from dancu.registry import schemas as s
from dancu.registry.merge_queries import LINKS, MergeQueries
from dancu.registry.models import (
    Household,
    HouseholdMember,
    PersonCurrent,
    PersonIdentifier,
    PersonMerge,
    PersonVersion,
    Residence,
)
from dancu.registry.versioning import open_rows, restore, supersede, supersede_rows

NO_MERGE = N_("no such merge in your area")
ALREADY_UNDONE = N_("this merge was already undone")
SURVIVOR_MERGED = N_("the surviving record was merged again since: undo that merge first")
RELATED = N_("these records are each other's parent, child or spouse: they cannot be one person")
TWO_SPOUSES = N_(
    "both records are married, to different people: record the divorce or correct the "
    "marriage first"
)
HEAD_WITH_MEMBERS = N_(
    "the record to merge is the head of a household with other members; record a change of "
    "head first"
)
_Row = PersonVersion | HouseholdMember | Residence
_TABLES: dict[str, type[_Row]] = {
    "version": PersonVersion,
    "member": HouseholdMember,
    "residence": Residence,
}


@dataclass
class _Log:
    """What a merge did, as ``PersonMerge.changes`` keeps it (JSON)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[list[Any]] = field(default_factory=list)  # [id, valid_to before]
    heads: list[list[int]] = field(default_factory=list)  # [household, head before]
    dissolved: list[int] = field(default_factory=list)

    def add(
        self,
        table: str,
        person_id: int,
        superseded: list[Any],
        created: list[Any],
        fields: dict[str, list[Any]] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "table": table,
            "person": person_id,
            "superseded": [r.id for r in superseded],
            "created": [r.id for r in created if r is not None],
        }
        if fields:
            entry["fields"] = fields
        self.rows.append(entry)


class MergeUseCases(MergeQueries):
    def merge_persons(
        self, ctx: OfficerContext, survivor_id: str, merged_id: str, reason: str
    ) -> s.MergeOut:
        """Make two records of one person one: ``merged_id`` (a personal ID number) answers
        as ``survivor_id`` from now on (see the module's text for what moves). The officer
        writes for both people's areas; an unknown or out-of-area number gets the same
        answer. Merging a record with itself or one already merged is a conflict."""
        self._require_writer(ctx)
        reason = _reason(reason)
        now = utcnow()
        with self._writing() as session:
            survivor = self._party(session, ctx, survivor_id, "personal_id")
            merged = self._party(session, ctx, merged_id, "merged_personal_id")
            self._refuse_same(session, survivor, merged, merged_id)
            pair = (survivor.person_id, merged.person_id)
            locked = set(pair)
            self._lock_all(session, *pair, *self._linked(session, merged.person_id))
            # Read again under the locks: someone linked to the record meanwhile is locked
            # too (rarely: a birth registered between the two reads).
            late = set(self._linked(session, merged.person_id)) - locked
            self._lock_all(session, *late)
            survivor = self._lock(session, survivor.person_id)
            merged = self._lock(session, merged.person_id)
            on = now.date()
            event = self._event(
                session,
                ctx,
                "merge",
                on,
                survivor.person_id,
                self._current_unit(survivor),
                "",
                {"merged_person_id": merged.person_id, "reason": reason},
            )
            log = _Log()
            self._merge_versions(
                session, survivor.person_id, merged.person_id, on, now, event.id, log
            )
            self._merge_households(
                session, survivor.person_id, merged.person_id, on, now, event.id, log
            )
            self._move_identifiers(session, survivor.person_id, merged.person_id, on, log)
            record = PersonMerge(
                survivor_id=survivor.person_id,
                merged_id=merged.person_id,
                survivor_number=survivor.personal_id,
                merged_number=merged.personal_id,
                reason=reason,
                event_id=event.id,
                merged_by=ctx.username,
                merged_at=now,
                changes={
                    "rows": log.rows,
                    "identifiers": log.identifiers,
                    "heads": log.heads,
                    "dissolved": log.dissolved,
                    "scope": [merged.province_code, merged.commune_code],
                },
            )
            session.add(record)
            session.delete(merged)  # the projection: the merged record has no current state
            session.flush()
            event.details = {**event.details, "merge_id": record.id}
            self._refresh_current(session, survivor.person_id)
            self._emit(
                session,
                "registry.person.merged",
                survivor.personal_id,
                {
                    "survivor_personal_id": survivor.personal_id,
                    "merged_personal_id": merged.personal_id,
                    "merge_id": record.id,
                    "event_id": event.id,
                },
            )
            detail = f"merge {record.id} event {event.id}"
            for person_id in pair:
                self._audit(session, ctx, "person.merge", person_id, detail)
            return _merge_out(record)

    def unmerge(self, ctx: OfficerContext, merge_id: int, reason: str) -> s.MergeOut:
        """Undo merge ``merge_id``: the merged record is back with its number, identifiers,
        household, residences and links as they were; the survivor loses what the merge gave
        it. Refused (conflict) when already undone, or when the survivor was merged into
        another record since (undo that first)."""
        self._require_writer(ctx)
        reason = _reason(reason)
        now = utcnow()
        with self._writing() as session:
            record = session.get(
                PersonMerge, merge_id, with_for_update=True, populate_existing=True
            )
            survivor = self._merge_in_area(session, ctx, record)
            if record is None or survivor is None:
                raise NotFound(NO_MERGE, "merge_id")
            if record.status != "merged":
                raise Conflict(ALREADY_UNDONE, "merge_id")
            if survivor.person_id != record.survivor_id:
                raise Conflict(SURVIVOR_MERGED, "merge_id")
            changes = record.changes
            people = {e["person"] for e in changes["rows"]} - {record.merged_id}
            current = set(
                session.scalars(
                    select(PersonCurrent.person_id).where(PersonCurrent.person_id.in_(people))
                )
            )
            self._lock_all(session, record.survivor_id, *current)
            survivor = self._lock(session, record.survivor_id)
            event = self._event(
                session,
                ctx,
                "unmerge",
                now.date(),
                record.survivor_id,
                self._current_unit(survivor),
                "",
                {"merge_id": record.id, "merged_person_id": record.merged_id, "reason": reason},
            )
            for entry in reversed(changes["rows"]):
                self._undo_rows(session, entry, now, event.id)
            self._undo_links(session, changes, record.merged_id)
            record.status, record.undo_event_id = "undone", event.id
            record.undone_by, record.undone_at, record.undo_reason = ctx.username, now, reason
            session.flush()
            self._refresh_current(session, record.merged_id)
            self._refresh_current(session, record.survivor_id)
            self._emit(
                session,
                "registry.person.unmerged",
                record.survivor_number,
                {
                    "survivor_personal_id": survivor.personal_id,
                    "merged_personal_id": record.merged_number,
                    "merge_id": record.id,
                    "event_id": event.id,
                },
            )
            detail = f"merge {record.id} event {event.id}"
            for person_id in (record.survivor_id, record.merged_id):
                self._audit(session, ctx, "person.unmerge", person_id, detail)
            return _merge_out(record)

    def merge_record(self, ctx: OfficerContext, merge_id: int) -> s.MergeOut:
        """A merge and whether it was undone, for an officer whose area covers both records
        (as the survivor and the merged record stand today); otherwise an unknown merge's
        answer. Audited as a read of the survivor's record."""
        with self.factory() as session:
            record = session.get(PersonMerge, merge_id)
            survivor = self._merge_in_area(session, ctx, record)
            if record is None or survivor is None:
                raise NotFound(NO_MERGE, "merge_id")
            out = _merge_out(record)
        self._audit_read(ctx, "person.merge_read", survivor.person_id, None, f"merge {merge_id}")
        return out

    # -- the steps -----------------------------------------------------------------------

    def _merge_versions(
        self,
        session: Session,
        survivor_id: int,
        merged_id: int,
        on: date,
        now: datetime,
        event_id: int,
        log: _Log,
    ) -> None:
        vs, vm = self._open_version(session, survivor_id), self._open_version(session, merged_id)
        if {vs.father_id, vs.mother_id, vs.spouse_id} & {merged_id} or {
            vm.father_id,
            vm.mother_id,
            vm.spouse_id,
        } & {survivor_id}:
            raise Conflict(RELATED, "merged_personal_id")
        changes: dict[int, dict[str, Any]] = {merged_id: {"status": "merged"}, survivor_id: {}}
        gained = changes[survivor_id]
        for link in ("father_id", "mother_id"):
            if getattr(vs, link) is None and getattr(vm, link) is not None:
                gained[link] = getattr(vm, link)
        if vm.spouse_id is not None and vs.spouse_id != vm.spouse_id:
            if vs.spouse_id is not None or vs.marital_status == "married":
                raise Conflict(TWO_SPOUSES, "merged_personal_id")
            gained.update(spouse_id=vm.spouse_id, marital_status=vm.marital_status)
        elif vs.marital_status == "single" and vm.marital_status in ("divorced", "widowed"):
            gained["marital_status"] = vm.marital_status
        for other in self._linked(session, merged_id):
            version = self._open_version(session, other)
            relink = {f: survivor_id for f in LINKS if getattr(version, f) == merged_id}
            changes.setdefault(other, {}).update(relink)
        for person_id, change in changes.items():
            if not change:
                continue
            version = self._open_version(session, person_id)
            fields = {f: [getattr(version, f), v] for f, v in change.items()}
            rows = supersede_rows(
                session, version, max(on, version.valid_from), now, event_id, change
            )
            session.flush()
            log.add("version", person_id, [version], list(rows), fields)

    def _merge_households(
        self,
        session: Session,
        survivor_id: int,
        merged_id: int,
        on: date,
        now: datetime,
        event_id: int,
        log: _Log,
    ) -> None:
        """End the merged record's membership and residences; the survivor takes over what
        it has none of."""
        has_member = session.scalars(open_rows(HouseholdMember, person_id=survivor_id)).first()
        for member in list(session.scalars(open_rows(HouseholdMember, person_id=merged_id))):
            joins = has_member is None
            household = self._lock_household(session, member.household_id)
            if member.relationship == "head" and not joins and household is not None:
                others = session.scalar(
                    select(func.count())
                    .select_from(HouseholdMember)
                    .where(
                        HouseholdMember.household_id == member.household_id,
                        HouseholdMember.superseded_at.is_(None),
                        HouseholdMember.valid_to.is_(None),
                        HouseholdMember.person_id != merged_id,
                    )
                )
                if others:
                    raise Invalid(HEAD_WITH_MEMBERS, "merged_personal_id")
                if household.dissolved_on is None:
                    household.dissolved_on = on
                    log.dissolved.append(household.id)
            start = max(on, member.valid_from)
            before, _ = supersede_rows(session, member, start, now, event_id, None)
            if joins:
                has_member = HouseholdMember(
                    household_id=member.household_id,
                    person_id=survivor_id,
                    relationship=member.relationship,
                    valid_from=start,
                    recorded_at=now,
                    event_id=event_id,
                )
                session.add(has_member)
                if household is not None and household.head_person_id == merged_id:
                    log.heads.append([household.id, merged_id])
                    household.head_person_id = survivor_id
            session.flush()
            log.add("member", merged_id, [member], [before])
            if joins:
                log.add("member", survivor_id, [], [has_member])
        kinds = {r.kind for r in session.scalars(open_rows(Residence, person_id=survivor_id))}
        for residence in list(session.scalars(open_rows(Residence, person_id=merged_id))):
            start = max(on, residence.valid_from)
            ended, _ = supersede_rows(session, residence, start, now, event_id, None)
            taken = None
            if residence.kind not in kinds:
                kinds.add(residence.kind)
                taken = Residence(
                    person_id=survivor_id,
                    kind=residence.kind,
                    unit_id=residence.unit_id,
                    address_line=residence.address_line,
                    household_id=residence.household_id,
                    valid_from=start,
                    recorded_at=now,
                    event_id=event_id,
                )
                session.add(taken)
            session.flush()
            log.add("residence", merged_id, [residence], [ended])
            if taken is not None:
                log.add("residence", survivor_id, [], [taken])

    @staticmethod
    def _move_identifiers(
        session: Session, survivor_id: int, merged_id: int, on: date, log: _Log
    ) -> None:
        """Every number the merged record had becomes the survivor's; its personal ID
        number ends today (the survivor's own stays the current one)."""
        for ident in list(
            session.scalars(select(PersonIdentifier).where(PersonIdentifier.person_id == merged_id))
        ):
            before = ident.valid_to.isoformat() if ident.valid_to else None
            log.identifiers.append([ident.id, before])
            ident.person_id = survivor_id
            if ident.kind == "personal_id" and ident.valid_to is None:
                ident.valid_to = on

    def _undo_rows(
        self, session: Session, entry: dict[str, Any], now: datetime, event_id: int
    ) -> None:
        """Rows nobody changed since the merge: believed again as before. A person changed
        since (only the survivor and people linked to it can be): the merge's links are
        taken back on their current version, from today."""
        model = _TABLES[entry["table"]]
        created = [cast("_Row | None", session.get(model, i)) for i in entry["created"]]
        if all(r is not None and r.superseded_at is None for r in created):
            for row in created:
                row.superseded_at = now  # type: ignore[union-attr]
            for old in entry["superseded"]:
                if (kept := cast("_Row | None", session.get(model, old))) is not None:
                    restore(session, kept, now)
            session.flush()
            return
        if entry["table"] != "version":
            return  # the survivor moved since: its later household and residences stand
        version = self._open_version(session, entry["person"])
        back = {
            f: before
            for f, (before, after) in entry.get("fields", {}).items()
            if getattr(version, f) == after and f != "status"
        }
        if back:
            on = max(now.date(), version.valid_from)
            supersede(session, version, on, now, event_id, back)
            session.flush()

    @staticmethod
    def _undo_links(session: Session, changes: dict[str, Any], merged_id: int) -> None:
        for ident_id, before in changes["identifiers"]:
            ident = session.get(PersonIdentifier, ident_id)
            if ident is not None:
                ident.person_id = merged_id
                ident.valid_to = date.fromisoformat(before) if before else None
        for household_id, head in changes["heads"]:
            household = session.get(Household, household_id)
            if household is not None:
                household.head_person_id = head
        for household_id in changes["dissolved"]:
            household = session.get(Household, household_id)
            if household is not None:
                household.dissolved_on = None


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not 3 <= len(text) <= 300:
        raise Invalid("give the reason in 3 to 300 characters", "reason")
    return text


def _merge_out(record: PersonMerge) -> s.MergeOut:
    return s.MergeOut(
        id=record.id,
        survivor_personal_id=record.survivor_number,
        merged_personal_id=record.merged_number,
        status=record.status,
        reason=record.reason,
        merged_by=record.merged_by,
        merged_at=record.merged_at,
        undone_by=record.undone_by,
        undone_at=record.undone_at,
        undo_reason=record.undo_reason,
    )
