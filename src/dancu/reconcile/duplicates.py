"""The register's likely duplicates (``dancu reconcile dedupe``, ``/reconcile/duplicates``):
the register compared with itself, the pairs listed for province and ministry officers to
review, and a pair found to be one person merged through the register's own use case
(``RegistryService.merge_persons``), never by touching its tables; the merge can be undone
from the pair. Part of ``ReconcileService``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Entry, record_change
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.reconcile import schemas as s
from dancu.reconcile.models import DuplicatePair
from dancu.reconcile.sources import RegisterFiles
from dancu.registry.service import RegistryService


class DuplicateReview:
    factory: sessionmaker[Session]
    registry: RegistryService
    root: Path

    def register_files(self, purpose: str) -> RegisterFiles:
        raise NotImplementedError  # ReconcileService's

    # -- the register's likely duplicates ------------------------------------------------

    def dedupe(self, ctx: OfficerContext) -> int:
        """Compare the register with itself and add the likely duplicate pairs not listed
        yet to the review list; returns how many were added. The ministry only."""
        if ctx.role is not Role.MINISTRY:
            raise Forbidden("only the ministry runs the register's deduplication")
        from dancu.reconcile import dedupe
        from dancu.reconcile.engine import DuckDBEngine
        from dancu.reconcile.pipeline import register_steps

        register = self.register_files("reconciliation:dedupe")
        work = self.root / "dedupe" / f"work-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        engine = DuckDBEngine(work)
        try:
            engine.load_parquet("reg_person", register.persons, register.fingerprint)
            engine.load_parquet("reg_identifier", register.identifiers, register.fingerprint)
            engine.run([*register_steps(), *dedupe.steps()])
            found = engine.query(
                "SELECT personal_id_a, personal_id_b, score, agreement, province_code "
                "FROM duplicates ORDER BY score DESC"
            )
        finally:
            engine.close()
            shutil.rmtree(work, ignore_errors=True)
        added = 0
        with self.factory() as session, session.begin():
            known = set(
                session.execute(
                    select(DuplicatePair.personal_id_a, DuplicatePair.personal_id_b)
                ).all()
            )
            for a, b, score, agreement, province in found:
                if (a, b) in known:
                    continue
                session.add(
                    DuplicatePair(
                        personal_id_a=a,
                        personal_id_b=b,
                        score=float(score),
                        agreement=str(agreement)[:120],
                        province_code=str(province)[:2],
                    )
                )
                added += 1
            record_change(
                session,
                Entry(
                    ctx.actor("reconciliation:dedupe"),
                    "reconcile.dedupe",
                    "register",
                    f"{added} new pairs",
                ),
            )
        return added

    def duplicates(
        self, ctx: OfficerContext, status: str = "open", limit: int = 100
    ) -> list[s.DuplicateOut]:
        """The pairs to review in the officer's area (ministry: all; province: theirs)."""
        self._require_reviewer(ctx)
        stmt = (
            select(DuplicatePair)
            .where(DuplicatePair.status == status)
            .order_by(DuplicatePair.score.desc(), DuplicatePair.id)
            .limit(limit)
        )
        if ctx.role is Role.PROVINCE:
            stmt = stmt.where(DuplicatePair.province_code == ctx.province_code)
        with self.factory() as session:
            return [
                s.DuplicateOut.model_validate(p, from_attributes=True)
                for p in session.scalars(stmt)
            ]

    def decide_duplicate(
        self,
        ctx: OfficerContext,
        pair_id: int,
        decision: str,
        note: str = "",
        survivor: str = "a",
    ) -> s.DuplicateOut:
        """Record an officer's review of a pair: ``same`` person or ``different`` people. The
        same person, decided by an officer who writes the register (the ministry's), is
        merged at once (``merge_duplicate``, ``survivor`` naming the record that stays);
        decided by a province officer, who reads the register but does not write it, the
        pair waits as ``same`` for the ministry to merge."""
        self._require_reviewer(ctx)
        if decision not in ("same", "different"):
            raise Invalid("choose: the same person, or different people", "decision")
        if decision == "same" and ctx.can_write:
            return self.merge_duplicate(ctx, pair_id, survivor, note)
        note = " ".join(note.split())[:300]
        with self.factory() as session, session.begin():
            pair = self._pair(session, ctx, pair_id, lock=True)
            if pair.status != "open":
                raise Conflict("this pair was already reviewed")
            pair.status, pair.note = decision, note
            pair.decided_by, pair.decided_at = ctx.username, utcnow()
            self._audit_pair(session, ctx, "reconcile.duplicate_decide", pair, decision)
            return s.DuplicateOut.model_validate(pair, from_attributes=True)

    def merge_duplicate(
        self, ctx: OfficerContext, pair_id: int, survivor: str = "a", note: str = ""
    ) -> s.DuplicateOut:
        """Merge a pair found to be one person through the register
        (``RegistryService.merge_persons``, which checks the officer writes for both
        people's areas and records the merge): the record ``survivor`` (``a`` or ``b``)
        stays, the other answers as it from now on. The pair then shows the merge, which
        ``undo_duplicate_merge`` undoes."""
        self._require_reviewer(ctx)
        if survivor not in ("a", "b"):
            raise Invalid("choose the record that stays", "survivor")
        note = " ".join(note.split())[:300]
        with self.factory() as session:
            pair = self._pair(session, ctx, pair_id)
            if pair.status not in ("open", "same"):
                raise Conflict("this pair was already reviewed")
            kept, other = pair.personal_id_a, pair.personal_id_b
        if survivor == "b":
            kept, other = other, kept
        # The register's own transaction; the pair follows it (a merge the register refused
        # leaves the pair as it was).
        reason = note if len(note) >= 3 else f"duplicate pair {pair_id} confirmed in review"
        merge = self.registry.merge_persons(ctx, kept, other, reason)
        with self.factory() as session, session.begin():
            pair = self._pair(session, ctx, pair_id, lock=True)
            pair.status, pair.merge_id, pair.survivor_personal_id = "merged", merge.id, kept
            pair.note = note or pair.note
            pair.decided_by, pair.decided_at = ctx.username, utcnow()
            self._audit_pair(session, ctx, "reconcile.duplicate_merge", pair, f"merge {merge.id}")
            return s.DuplicateOut.model_validate(pair, from_attributes=True)

    def undo_duplicate_merge(
        self, ctx: OfficerContext, pair_id: int, reason: str
    ) -> s.DuplicateOut:
        """Undo the register's merge of a pair (``RegistryService.unmerge``): both records
        are back as they were, and the pair waits for review again."""
        self._require_reviewer(ctx)
        with self.factory() as session:
            pair = self._pair(session, ctx, pair_id)
            merge_id = pair.merge_id
        if pair.status != "merged" or merge_id is None:
            raise Conflict("this pair is not merged")
        self.registry.unmerge(ctx, merge_id, reason)
        with self.factory() as session, session.begin():
            pair = self._pair(session, ctx, pair_id, lock=True)
            pair.status, pair.merge_id, pair.survivor_personal_id = "open", None, ""
            pair.decided_by, pair.decided_at = "", None
            pair.note = " ".join(f"merge {merge_id} undone: {reason}".split())[:300]
            self._audit_pair(session, ctx, "reconcile.duplicate_unmerge", pair, f"merge {merge_id}")
            return s.DuplicateOut.model_validate(pair, from_attributes=True)

    @staticmethod
    def _pair(
        session: Session, ctx: OfficerContext, pair_id: int, *, lock: bool = False
    ) -> DuplicatePair:
        pair = session.get(DuplicatePair, pair_id, with_for_update=lock)
        if pair is None or (ctx.role is Role.PROVINCE and pair.province_code != ctx.province_code):
            raise NotFound("no such pair in your area")
        return pair

    @staticmethod
    def _audit_pair(
        session: Session, ctx: OfficerContext, action: str, pair: DuplicatePair, what: str
    ) -> None:
        record_change(
            session,
            Entry(
                ctx.actor("reconciliation:dedupe"),
                action,
                f"duplicate:{pair.id}",
                f"{what} {pair.personal_id_a} {pair.personal_id_b}",
            ),
        )

    @staticmethod
    def _require_reviewer(ctx: OfficerContext) -> None:
        if ctx.role not in (Role.MINISTRY, Role.PROVINCE):
            raise Forbidden("the register's duplicates are reviewed by province and ministry")
