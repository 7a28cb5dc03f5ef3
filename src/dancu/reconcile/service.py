"""Reconciliation use cases: an agency's extract uploaded, its columns confirmed, the job run
by a worker (in the server's process, or ``dancu reconcile worker``), its progress, summary
and files; the profiles that remember an agency's columns; the register's likely duplicates
for officers to review.

Who may do what: an agency's officers (``Role.AGENCY``) send their own agency's extracts and
see only their agency's jobs; the ministry's officers act for any agency. Nobody here reads
the register's tables: a run reads a snapshot through ``RegistryService.snapshot``, audited
with the agency and the job as its purpose, and every upload, download and decision is
audited too.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import SYSTEM_CONTEXT, OfficerContext, Role
from dancu.core.audit import Entry, record_change
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.reconcile import readers, runner
from dancu.reconcile import schemas as s
from dancu.reconcile.duplicates import DuplicateReview
from dancu.reconcile.engine import EngineName
from dancu.reconcile.fields import FIELDS
from dancu.reconcile.models import ColumnProfile, ReconcileJob
from dancu.reconcile.sources import RegisterFiles
from dancu.registry.service import RegistryService

log = logging.getLogger(__name__)

AGENCY_CODE = re.compile(r"[a-z0-9_-]{2,40}")
STALE_AFTER = timedelta(minutes=2)  # a running job without a heartbeat this long is taken up
HEARTBEAT_EVERY = 5.0  # seconds between progress writes to the job's row
MAX_ATTEMPTS = 3
FileKind = Literal["result.csv", "result.parquet", "corrections.csv", "summary.json"]
_EXTENSIONS = {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}


@dataclass(frozen=True)
class JobFiles:
    folder: Path

    @property
    def work(self) -> Path:
        return self.folder / "work"

    def input(self, fmt: str) -> Path:
        return self.folder / f"input{_EXTENSIONS.get(fmt, '.bin')}"

    def output(self, kind: FileKind) -> Path:
        return self.folder / kind


class ReconcileService(DuplicateReview):
    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: RegistryService,
        data_dir: Path,
        *,
        engine: EngineName = "duckdb",
        spark_master: str = "local[2]",
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.root = data_dir / "reconcile"
        self.engine = engine
        self.spark_master = spark_master

    # -- sending an extract ---------------------------------------------------------------

    def upload(
        self,
        ctx: OfficerContext,
        filename: str,
        source: BinaryIO,
        *,
        agency: str = "",
        max_bytes: int = 200 * 1024 * 1024,
    ) -> s.JobOut:
        """Keep the file, recognise its format and columns, and propose a column mapping
        (the agency's saved profile for files with these headers, else the one recognised
        from the headers and, where they say nothing, from the first rows' values).
        A file that cannot be read is refused with the reason and nothing is kept."""
        who = self._agency(ctx, agency)
        label = os.path.basename(filename or "extract")[:200] or "extract"
        incoming = self.root / "incoming" / f"{int(time.time() * 1e6)}-{os.getpid()}"
        incoming.mkdir(parents=True)
        try:
            raw = incoming / "input.bin"
            _copy_limited(source, raw, max_bytes)
            # Sniffed once: the result is kept on the job, and the run reads the file by it.
            sniffed = readers.sniff(raw)
            raw.rename(raw.with_suffix(_EXTENSIONS[sniffed.format]))
            saved = self._profile(who, sniffed.headers)
            proposed = readers.propose_mapping(sniffed.headers, saved, sniffed.probe)
            with self.factory() as session, session.begin():
                job = ReconcileJob(
                    agency=who,
                    label=label,
                    created_by=ctx.username,
                    status="draft",
                    engine=self.engine,
                    fmt=sniffed.format,
                    headers=list(sniffed.headers),
                    dialect=sniffed.dialect,
                    sample=[[str(v) for v in row] for row in sniffed.sample[:5]],
                    mapping=dict(proposed.fields),
                    guesses=dict(proposed.sources),
                )
                session.add(job)
                session.flush()
                folder = self.root / "jobs" / str(job.id)
                folder.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(incoming, folder)
                self._audit(session, ctx, "reconcile.upload", job, f"{label} ({sniffed.format})")
                return self._out(job)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def confirm(self, ctx: OfficerContext, job_id: int, mapping: dict[str, str]) -> s.JobOut:
        """Confirm the columns (field → header) and queue the job; the mapping is kept as the
        agency's profile for the next file with the same headers."""
        with self.factory() as session, session.begin():
            job = self._job(session, ctx, job_id, lock=True)
            if job.status != "draft":
                raise Conflict("this extract was already sent for matching", "mapping")
            chosen = {f: h for f, h in mapping.items() if h}
            readers.check_mapping(chosen, job.headers)
            job.mapping, job.status = chosen, "queued"
            signature = readers.signature(job.headers)
            profile = session.scalars(
                select(ColumnProfile).where(
                    ColumnProfile.agency == job.agency, ColumnProfile.signature == signature
                )
            ).first()
            if profile is None:
                profile = ColumnProfile(agency=job.agency, signature=signature, mapping={})
                session.add(profile)
            profile.mapping, profile.updated_by = chosen, ctx.username
            profile.updated_at = utcnow()
            self._audit(session, ctx, "reconcile.confirm", job, "")
            return self._out(job)

    def discard(self, ctx: OfficerContext, job_id: int) -> None:
        """Delete a job that is not running, with its files (the agency's data is not kept
        longer than needed)."""
        with self.factory() as session, session.begin():
            job = self._job(session, ctx, job_id, lock=True)
            if job.status == "running":
                raise Conflict("the job is running; discard it when it has finished")
            folder = self._files(job).folder
            self._audit(session, ctx, "reconcile.discard", job, "")
            session.delete(job)
        shutil.rmtree(folder, ignore_errors=True)

    # -- reading jobs ---------------------------------------------------------------------

    def job(self, ctx: OfficerContext, job_id: int) -> s.JobOut:
        with self.factory() as session:
            return self._out(self._job(session, ctx, job_id))

    def jobs(self, ctx: OfficerContext, limit: int = 50) -> list[s.JobOut]:
        self._require_role(ctx)
        stmt = select(ReconcileJob).order_by(ReconcileJob.id.desc()).limit(limit)
        if ctx.role is Role.AGENCY:
            stmt = stmt.where(ReconcileJob.agency == ctx.agency)
        with self.factory() as session:
            return [self._out(j) for j in session.scalars(stmt)]

    def summary(self, ctx: OfficerContext, job_id: int) -> runner.Summary:
        path = self.file(ctx, job_id, "summary.json", audit=False)
        return runner.Summary.from_json(path.read_text(encoding="utf-8"))

    def file(self, ctx: OfficerContext, job_id: int, kind: FileKind, *, audit: bool = True) -> Path:
        """A finished job's file; downloads of results are audited (they carry personal ID
        numbers)."""
        with self.factory() as session, session.begin():
            job = self._job(session, ctx, job_id)
            if job.status != "done":
                raise Conflict("the results are not ready")
            path = self._files(job).output(kind)
            if not path.exists():
                raise NotFound("this file was not produced")
            if audit:
                self._audit(session, ctx, "reconcile.download", job, kind)
        return path

    # -- running --------------------------------------------------------------------------

    def claim(self, worker: str) -> int | None:
        """Take the oldest queued job, or a running one whose worker went silent; the update
        only succeeds for one worker, whatever their number."""
        now = utcnow()
        stale = now - STALE_AFTER
        with self.factory() as session, session.begin():
            candidates = session.scalars(
                select(ReconcileJob.id).where(_claimable(stale)).order_by(ReconcileJob.id).limit(5)
            ).all()
        for job_id in candidates:
            with self.factory() as session, session.begin():
                taken = session.execute(
                    update(ReconcileJob)
                    .where(ReconcileJob.id == job_id, _claimable(stale))
                    .values(
                        status="running",
                        worker=worker,
                        heartbeat=now,
                        attempts=ReconcileJob.attempts + 1,
                        started_at=now,
                    )
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return job_id
        return None

    def run_job(self, job_id: int, worker: str) -> None:
        """Run a claimed job to its end: ``done`` with its counts, or ``failed`` with a
        reason an officer can act on (a file problem, or too many crashed attempts). A run
        interrupted earlier resumes from its last finished step."""
        with self.factory() as session:
            job = session.get(ReconcileJob, job_id)
            if job is None or job.status != "running" or job.worker != worker:
                return
            files, mapping, agency = self._files(job), dict(job.mapping), job.agency
            fmt, attempts = job.fmt, job.attempts
            # As the upload recognised it (a job sent before that was kept is sniffed again).
            sniffed = (
                readers.Sniffed.recalled(files.input(fmt), fmt, job.headers, job.dialect)
                if job.dialect
                else None
            )
        if attempts > MAX_ATTEMPTS:
            self._finish(job_id, "failed", error="stopped after repeated crashes")
            return
        last = [0.0]

        def progress(stage: runner.Stage, done: int, total: int, detail: str) -> None:
            now = time.monotonic()
            if stage not in ("match",) or now - last[0] >= HEARTBEAT_EVERY or done == total:
                last[0] = now
                self._progress(job_id, worker, stage, done, total, detail)

        try:
            summary = runner.run(
                files.input(fmt),
                lambda: self.register_files(f"reconciliation:{agency}:job{job_id}"),
                runner.Outputs(
                    files.output("result.csv"),
                    files.output("corrections.csv"),
                    files.output("summary.json"),
                    files.output("result.parquet"),
                ),
                files.work,
                # The confirmed columns exactly: a field the officer left out stays out.
                mapping={f: mapping.get(f, "") for f in FIELDS},
                engine=self.engine,
                spark_master=self.spark_master,
                progress=progress,
                sniffed=sniffed,
            )
        except DancuError as exc:
            self._finish(job_id, "failed", error=exc.message)
            return
        except Exception:
            log.exception("reconciliation job %s failed", job_id)
            self._finish(job_id, "failed", error="an internal error stopped the run")
            return
        shutil.rmtree(files.work, ignore_errors=True)
        counts = {"verdicts": summary.verdicts, "rows": summary.rows}
        self._finish(job_id, "done", counts=counts, rows=summary.rows)

    def job_status(self, job_id: int) -> str:
        """A job's status and error, for the worker's log."""
        with self.factory() as session:
            job = session.get(ReconcileJob, job_id)
            return "gone" if job is None else f"{job.status} {job.error}".strip()

    def register_files(self, purpose: str) -> RegisterFiles:
        """The register as the pipeline reads it: the ministry's snapshot (system read)."""
        snap = self.registry.snapshot(SYSTEM_CONTEXT, self.root / "register", purpose)
        return RegisterFiles(snap.persons, snap.identifiers, snap.people, snap.version)

    def work(self, stop: threading.Event, poll: float = 1.0) -> None:
        """A worker loop: claim, run, repeat until ``stop`` is set."""
        worker = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        while not stop.is_set():
            job_id = self.claim(worker)
            if job_id is None:
                stop.wait(poll)
                continue
            self.run_job(job_id, worker)

    def _progress(
        self, job_id: int, worker: str, stage: str, done: int, total: int, detail: str
    ) -> None:
        values: dict[str, object] = {"stage": stage, "heartbeat": utcnow()}
        if stage == "match":
            values |= {"steps_done": done, "steps_total": total, "step": detail[:40]}
        elif stage == "read" and detail == "rows":
            values["rows"] = done
        with self.factory() as session, session.begin():
            session.execute(
                update(ReconcileJob)
                .where(ReconcileJob.id == job_id, ReconcileJob.worker == worker)
                .values(**values)
            )

    def _finish(
        self,
        job_id: int,
        status: str,
        *,
        error: str = "",
        counts: dict[str, object] | None = None,
        rows: int | None = None,
    ) -> None:
        with self.factory() as session, session.begin():
            job = session.get(ReconcileJob, job_id, with_for_update=True)
            if job is None:
                return
            job.status, job.error, job.finished_at = status, error[:400], utcnow()
            job.stage = "done" if status == "done" else job.stage
            if counts is not None:
                job.counts = counts
            if rows is not None:
                job.rows = rows
            self._audit(session, SYSTEM_CONTEXT, f"reconcile.{status}", job, error)

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _require_role(ctx: OfficerContext) -> None:
        if ctx.role not in (Role.MINISTRY, Role.AGENCY):
            raise Forbidden("reconciliation is for the ministry's and the agencies' officers")

    def _agency(self, ctx: OfficerContext, agency: str) -> str:
        self._require_role(ctx)
        if ctx.role is Role.AGENCY:
            return ctx.agency
        code = agency.strip().lower()
        if not AGENCY_CODE.fullmatch(code):
            raise Invalid("give the agency's code (2-40 letters, digits, '-' or '_')", "agency")
        return code

    def _job(
        self, session: Session, ctx: OfficerContext, job_id: int, *, lock: bool = False
    ) -> ReconcileJob:
        self._require_role(ctx)
        job = session.get(ReconcileJob, job_id, with_for_update=lock)
        # Another agency's job answers like a job that does not exist.
        if job is None or (ctx.role is Role.AGENCY and job.agency != ctx.agency):
            raise NotFound("no such reconciliation job")
        return job

    def _profile(self, agency: str, headers: list[str]) -> dict[str, str] | None:
        with self.factory() as session:
            profile = session.scalars(
                select(ColumnProfile).where(
                    ColumnProfile.agency == agency,
                    ColumnProfile.signature == readers.signature(headers),
                )
            ).first()
            return dict(profile.mapping) if profile else None

    def _files(self, job: ReconcileJob) -> JobFiles:
        return JobFiles(self.root / "jobs" / str(job.id))

    @staticmethod
    def _audit(
        session: Session, ctx: OfficerContext, action: str, job: ReconcileJob, detail: str
    ) -> None:
        actor = ctx.actor(f"reconciliation:{job.agency}")
        record_change(session, Entry(actor, action, f"reconcile_job:{job.id}", detail))

    @staticmethod
    def _out(job: ReconcileJob) -> s.JobOut:
        return s.JobOut(
            id=job.id,
            agency=job.agency,
            label=job.label,
            created_by=job.created_by,
            status=job.status,
            stage=job.stage,
            step=job.step,
            steps_done=job.steps_done,
            steps_total=job.steps_total,
            rows=job.rows,
            format=job.fmt,
            headers=list(job.headers),
            sample=[list(r) for r in job.sample],
            mapping=dict(job.mapping),
            guesses=dict(job.guesses) if job.status == "draft" else {},
            counts=dict(job.counts),
            error=job.error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


def _claimable(stale: datetime) -> ColumnElement[bool]:
    """A job a worker may take: queued, or running with no heartbeat since ``stale``."""
    return or_(
        ReconcileJob.status == "queued",
        (ReconcileJob.status == "running") & (ReconcileJob.heartbeat < stale),
    )


def _copy_limited(source: BinaryIO, target: Path, max_bytes: int) -> None:
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > max_bytes:
                raise Invalid(f"the file is larger than {max_bytes // (1024 * 1024)} MB", "file")
            out.write(chunk)
    if written == 0:
        raise Invalid("the file is empty", "file")
