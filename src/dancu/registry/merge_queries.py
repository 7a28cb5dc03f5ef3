"""Finding the records of a merge (docs/merge.md): the two parties in the officer's area,
the refusals for one record given twice or one already merged, the people whose record links
to a person, and a merge as an officer may see it (its survivor followed through later
merges)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext
from dancu.core.errors import Conflict, NotFound
from dancu.core.i18n import N_
from dancu.registry.lookup import OUT_OF_AREA, parse_personal_id
from dancu.registry.models import PersonCurrent, PersonMerge, PersonVersion
from dancu.registry.writes import WriteSteps

SAME_PERSON = N_("these two numbers are one person's record already")
ALREADY_MERGED = N_("this record is already merged into another")
REPLACED = N_("this number was replaced by a re-established one: give the record's current number")
# The links of a person version to other people.
LINKS = ("father_id", "mother_id", "spouse_id")


class MergeQueries(WriteSteps):
    """The look-ups of ``MergeUseCases``."""

    def _party(
        self, session: Session, ctx: OfficerContext, number: str, field: str
    ) -> PersonCurrent:
        row = self._current_row(session, number, field)
        if not ctx.covers(row.province_code, row.commune_code):
            raise NotFound(OUT_OF_AREA, field)
        return row

    @staticmethod
    def _refuse_same(
        session: Session, survivor: PersonCurrent, merged: PersonCurrent, number: str
    ) -> None:
        typed = parse_personal_id(number, "merged_personal_id")
        if merged.personal_id == typed and survivor.person_id != merged.person_id:
            return
        already = session.scalar(
            select(PersonMerge.id).where(
                PersonMerge.merged_number == typed, PersonMerge.status == "merged"
            )
        )
        if already is not None:
            raise Conflict(ALREADY_MERGED, "merged_personal_id")
        if survivor.person_id == merged.person_id:
            raise Conflict(SAME_PERSON, "merged_personal_id")
        raise Conflict(REPLACED, "merged_personal_id")

    @staticmethod
    def _linked(session: Session, person_id: int) -> list[int]:
        """People whose believed record names ``person_id`` as parent or spouse (and who
        are not merged records themselves)."""
        return list(
            session.scalars(
                select(PersonVersion.person_id)
                .join(PersonCurrent, PersonCurrent.person_id == PersonVersion.person_id)
                .where(
                    PersonVersion.superseded_at.is_(None),
                    PersonVersion.valid_to.is_(None),
                    or_(*(getattr(PersonVersion, f) == person_id for f in LINKS)),
                )
            )
        )

    def _merge_in_area(
        self, session: Session, ctx: OfficerContext, record: PersonMerge | None
    ) -> PersonCurrent | None:
        """The survivor's record today (or that of the record it was merged into since),
        when the officer's area covers it and where the merged record lived; else None."""
        if record is None:
            return None
        province, commune = record.changes.get("scope", ["", ""])
        if not ctx.covers(province, commune):
            return None
        person_id = record.survivor_id
        for _ in range(100):  # a chain of merges, never a loop: each merged record is closed
            row = session.get(PersonCurrent, person_id)
            if row is not None:
                return row if ctx.covers(row.province_code, row.commune_code) else None
            later = session.scalar(
                select(PersonMerge.survivor_id).where(
                    PersonMerge.merged_id == person_id, PersonMerge.status == "merged"
                )
            )
            if later is None:
                return None
            person_id = later
        return None
