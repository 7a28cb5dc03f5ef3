"""Bulk import of the population register (DESIGN "Bulk work is set-based").

An import runs in three phases, each recorded so that a crash resumes where it stopped:

1. **Prepare** (one transaction): stream the file into a staging table (PostgreSQL ``COPY``,
   SQLite ``executemany``), validate it with SQL, write the error report, create the job row
   (``import_job``), its civil event and the merge table of new rows. A crash here rolls
   everything back; the next run starts again.
2. **Merge** (one transaction per batch of households): write persons, versions, identifiers,
   ID allocations, households, members, residences and the ``person_current`` projection, and
   advance ``import_job.rows_done`` in the same transaction. A crash loses at most the batch
   in flight; the next run continues after the last committed batch.
3. **Finish** (one transaction): drop the merge table, mark the job done. Running the same
   file again is then a no-op (the job is found by the file's fingerprint), and a different
   file with the same people skips them (people already in the register are never changed).

People are written exactly as the registry service writes them (see ``sql_merge.merge_steps``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.orm import Session

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.ids import mask_text
from dancu.core.timeutil import today, utcnow
from dancu.registry.bulk.db import bind_values, exclusive, is_pg, may_skip_fk_triggers, transaction
from dancu.registry.bulk.io import (
    ImportFileError,
    Progress,
    SourceFile,
    csv_bytes,
    default_error_path,
    read_batches,
    scan,
    write_error_file,
)
from dancu.registry.bulk.sql_merge import merge_steps
from dancu.registry.bulk.sql_rules import err_rules
from dancu.registry.bulk.sql_tables import Dialect, Tables, copy_stage, create_stage, insert_stage
from dancu.registry.bulk.sql_validate import (
    counts,
    create_check,
    create_dup,
    create_err,
    create_fwd,
    create_hh,
    create_imp,
    create_ref,
    create_rows,
    err_references,
    err_states,
    index_dup,
    index_fwd,
    index_hh,
    index_imp,
    index_ref,
    read_err,
)
from dancu.registry.models import CivilEvent, ImportJob

__all__ = ["ImportReport", "import_population"]

# The merge writes random keys into the register's indexes: a larger cache for the main
# database keeps more of them in memory (the temporary database is idle by then).
SQLITE_MERGE_CACHE_KIB = 196_608
# Rows per merge transaction unless told otherwise. Each commit writes every index page the
# batch touched, so larger batches write far less; a crash loses at most one batch.
DEFAULT_BATCH = {"sqlite": 250_000, "postgresql": 250_000}
IMPORT_ACTOR = Actor("system", "system", "", "bulk-import")
_COUNTS = re.compile(r"loaded=(\d+) skipped=(\d+) warnings=(\d+)")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import job did, over all its runs."""

    job_id: int
    source: str
    rows_total: int
    loaded: int
    skipped: int
    rejected: int
    warnings: int
    error_path: Path
    resumed: bool = False
    already_done: bool = False

    def summary(self) -> str:
        if self.already_done:
            return (
                f"{self.source} was already imported (job {self.job_id}): "
                f"{self.loaded:,} people loaded then; nothing to do"
            )
        return (
            f"job {self.job_id}{' (resumed)' if self.resumed else ''}: "
            f"{self.rows_total:,} rows, {self.loaded:,} people loaded, "
            f"{self.skipped:,} already in the register, {self.rejected:,} rejected, "
            f"{self.warnings:,} warnings; report in {self.error_path}"
        )


@dataclass(slots=True)
class _Job:
    id: int
    status: str
    rows_total: int
    rows_done: int
    rows_rejected: int
    message: str

    def counts(self) -> tuple[int, int, int]:
        found = _COUNTS.search(self.message)
        return (int(found[1]), int(found[2]), int(found[3])) if found else (0, 0, 0)


def import_population(
    engine: Engine,
    path: Path | str,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    error_path: Path | str | None = None,
    actor: Actor | None = None,
) -> ImportReport:
    """Import a population file (CSV or Parquet, docs/formats.md) into the register.

    Rejected rows are reported in ``error_path`` (default ``<file>.errors.csv``) with their
    line, column, value (ID numbers masked) and reason, and are not loaded; the rest are.
    Whole-file problems (missing columns, not UTF-8, malformed CSV) raise ``ImportFileError``
    before anything is written. Re-running after a crash resumes; re-running a finished file
    does nothing. ``progress(stage, done, total)`` is called as the stages advance
    (``scan``, ``stage``, ``validate``, ``merge``).

    The finished job is recorded in the durable audit (action ``registry.import``, subject
    ``import_job:<id>``) in the same transaction that marks it done, with the file's name,
    SHA-256 and the counts, as done by ``actor`` (default: the system).
    """
    if batch_size is None:
        batch_size = DEFAULT_BATCH.get(engine.dialect.name, 50_000)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    src = scan(Path(path), progress)
    errors_to = Path(error_path) if error_path else default_error_path(src.path)
    with exclusive(engine, src.fingerprint):
        job = _find_job(engine, src.fingerprint)
        if job is not None and job.status == "done":
            return _report(job, src, errors_to, resumed=False, already_done=True)
        resumed = job is not None
        if job is None:
            job = _prepare(engine, src, errors_to, progress)
        try:
            _merge(engine, job, src, batch_size, progress)
            _finish(engine, job, src, actor or IMPORT_ACTOR)
        except Exception as exc:
            _mark_failed(engine, job, exc)
            raise
    return _report(job, src, errors_to, resumed=resumed, already_done=False)


def _report(
    job: _Job, src: SourceFile, errors_to: Path, *, resumed: bool, already_done: bool
) -> ImportReport:
    loaded, skipped, warnings = job.counts()
    return ImportReport(
        job.id,
        src.path.name,
        job.rows_total,
        loaded,
        skipped,
        job.rows_rejected,
        warnings,
        errors_to,
        resumed,
        already_done,
    )


def _find_job(engine: Engine, fingerprint: str) -> _Job | None:
    with engine.connect() as conn:
        row = conn.execute(select(ImportJob).where(ImportJob.fingerprint == fingerprint)).first()
    if row is None:
        return None
    return _Job(row.id, row.status, row.rows_total, row.rows_done, row.rows_rejected, row.message)


# -- phase 1: prepare ------------------------------------------------------------------------


def _prepare(engine: Engine, src: SourceFile, errors_to: Path, progress: Progress | None) -> _Job:
    d = Dialect(is_pg(engine))
    # SQLite: stage into the temporary database first, then take the write lock, so other
    # writers are blocked only while validating, not while the file is read.
    with transaction(engine, immediate=False) as conn:
        stage = Tables(0, src.fingerprint[:16])
        conn.execute(text(f"DROP TABLE IF EXISTS {stage.stage}"))
        conn.execute(text(create_stage(d, stage)))
        staged = _load_stage(conn, d, stage, src, progress)
        created = conn.execute(
            insert(ImportJob).values(
                source=str(src.path)[:400],
                fingerprint=src.fingerprint,
                status="running",
                rows_total=staged,
                rows_done=0,
                rows_rejected=0,
                started_at=utcnow(),
                message="",
            )
        ).inserted_primary_key
        assert created is not None
        job_id = created[0]
        t = Tables(int(job_id), stage.token)
        states = _validate(conn, d, t, progress)
        warnings = states.pop("W", 0)
        rows = conn.execute(text(read_err(t)), execution_options={"yield_per": 10_000})
        write_error_file(errors_to, ((int(r[0]), r[1], r[2], r[3]) for r in rows))
        loaded, rejected = states.get("N", 0), sum(states.get(s, 0) for s in "RDH")
        if loaded:
            _create_event(conn, t.job, src)
        job = _Job(
            t.job,
            "running",
            staged,
            0,
            rejected,
            f"loaded={loaded} skipped={states.get('S', 0)} warnings={warnings}",
        )
        conn.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(rows_rejected=rejected, message=job.message)
        )
        for table in t.scratch:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    return job


def _load_stage(
    conn: Connection, d: Dialect, t: Tables, src: SourceFile, progress: Progress | None
) -> int:
    """Stream the file into the staging table; returns the number of rows."""
    raw = conn.connection.driver_connection
    assert raw is not None  # a live connection from the pool
    staged = 0
    if d.pg:
        with raw.cursor() as cur, cur.copy(copy_stage(t)) as copy:
            for table in read_batches(src):
                copy.write(csv_bytes(table))
                staged += table.num_rows
                if progress:
                    progress("stage", staged, src.rows_estimate)
        conn.execute(text(f"ANALYZE {t.stage}"))
        return staged
    cur = raw.cursor()
    try:
        for table in read_batches(src):
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            cur.executemany(insert_stage(t), zip(*columns, strict=True))
            staged += table.num_rows
            if progress:
                progress("stage", staged, src.rows_estimate)
    finally:
        cur.close()
    return staged


def _validate(conn: Connection, d: Dialect, t: Tables, progress: Progress | None) -> dict[str, int]:
    """Run the validation steps; returns row counts by state (and ``W``: warnings)."""
    extra: dict[str, Any] = {}
    if d.pg:
        extra["seq"] = conn.execute(
            text("SELECT pg_get_serial_sequence('person', 'id')")
        ).scalar_one()
    else:
        # Reserve the id range by writing its top row now (see _reserve_ids).
        extra["base"] = int(
            conn.execute(text("SELECT COALESCE(MAX(id), 0) + 1 FROM person")).scalar_one()
        )
    params = bind_values(conn, **extra)
    rule_sql, rule_params = err_rules(d, t)
    # (name, statements, parameters, table to ANALYZE afterwards on PostgreSQL: the planner
    # must know the work tables' sizes to pick hash joins over nested loops).
    steps: list[tuple[str, list[str], dict[str, Any], str | None]] = [
        ("forward map", [create_fwd(d, t), index_fwd(t)], {}, t.fwd),
        ("duplicates", [create_dup(d, t), index_dup(t)], {}, t.dup),
        ("check", create_check(d, t), params, t.check),
        ("households", [create_hh(d, t), index_hh(t)], {}, t.hh),
        ("states", [create_rows(d, t)], params, t.rows),
        ("references", [create_ref(d, t), index_ref(t)], {}, t.ref),
        ("merge table", [create_imp(d, t), index_imp(t)], {}, t.imp),
        ("report", [create_err(t)], {}, None),
        ("rule errors", [rule_sql], rule_params, None),
        ("row errors", [err_states(t)], {}, None),
        ("warnings", [err_references(d, t)], {}, t.err),
    ]
    for i, (_name, statements, values, analyze) in enumerate(steps, 1):
        for sql in statements:
            conn.execute(text(sql), values)
        if d.pg and analyze:
            conn.execute(text(f"ANALYZE {analyze}"))
        if progress:
            progress("validate", i, len(steps))
    states = {str(s): int(n) for s, n in conn.execute(text(counts(t)))}
    if not d.pg and states.get("N"):
        _reserve_ids(conn, int(extra["base"]) + states["N"] - 1)
    return states


def _reserve_ids(conn: Connection, top: int) -> None:
    """SQLite gives a new row the largest id plus one, so a registration made between two
    batches would take an id this import has already handed out. Writing the person row of
    the highest id now moves everyone else above the range."""
    conn.execute(
        text("INSERT INTO person (id, created_at) VALUES (:id, :now)"),
        bind_values(conn, id=top, now=utcnow()),
    )


def _create_event(conn: Connection, job_id: int, src: SourceFile) -> None:
    conn.execute(
        insert(CivilEvent).values(
            kind="import",
            occurred_on=today(),
            recorded_at=utcnow(),
            person_id=None,
            unit_id=None,
            actor=f"import:{job_id}",
            source="import",
            reference="",
            details={"file": src.path.name, "job": job_id},
        )
    )


def _event_id(engine: Engine, job_id: int) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(CivilEvent.id)
            .where(CivilEvent.source == "import", CivilEvent.actor == f"import:{job_id}")
            .order_by(CivilEvent.id)
            .limit(1)
        ).scalar()
    return int(found) if found is not None else None


# -- phase 2: merge --------------------------------------------------------------------------


def _merge(
    engine: Engine, job: _Job, src: SourceFile, batch_size: int, progress: Progress | None
) -> None:
    """Write the new rows batch by batch; each batch and its progress commit together."""
    event = _event_id(engine, job.id)
    t = Tables(job.id, src.fingerprint[:16])
    if event is None:  # nothing new to load
        return
    steps = merge_steps(t)
    skip_fk = may_skip_fk_triggers(engine)
    while job.rows_done < job.rows_total:
        done = min(job.rows_done + batch_size, job.rows_total)
        lo, hi = src.first_line + job.rows_done, src.first_line + done - 1
        with transaction(engine, cache_kib=SQLITE_MERGE_CACHE_KIB) as conn:
            # Claim the batch first: a second process resuming the same job waits on this row
            # and then finds rows_done moved, instead of writing the batch twice.
            claimed = conn.execute(
                update(ImportJob)
                .where(ImportJob.id == job.id, ImportJob.rows_done == job.rows_done)
                .values(rows_done=done, status="running")
            ).rowcount
            if claimed != 1:
                raise ImportFileError(f"import job {job.id} was advanced by another process")
            if skip_fk:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            params = bind_values(conn, lo=lo, hi=hi, now=utcnow(), event=event)
            for _name, sql in steps:
                conn.execute(text(sql), params)
        job.rows_done = done
        if progress:
            progress("merge", done, job.rows_total)


# -- phase 3: finish -------------------------------------------------------------------------


def _finish(engine: Engine, job: _Job, src: SourceFile, actor: Actor) -> None:
    with transaction(engine) as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {Tables(job.id, '').imp}"))
        conn.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(status="done", rows_done=job.rows_total, finished_at=utcnow())
        )
        # The job and its audit entry commit together: a finished import is always audited.
        with Session(bind=conn) as session:
            record_change(session, _audit_entry(job, src, actor))
            session.flush()
    job.status = "done"


def _audit_entry(job: _Job, src: SourceFile, actor: Actor) -> Entry:
    loaded, skipped, warnings = job.counts()
    detail = {
        "file": src.path.name,
        "sha256": src.sha256,
        "size": src.size,
        "rows": job.rows_total,
        "loaded": loaded,
        "skipped": skipped,
        "rejected": job.rows_rejected,
        "warnings": warnings,
    }
    return Entry(actor, "registry.import", f"import_job:{job.id}", orjson.dumps(detail).decode())


def _mark_failed(engine: Engine, job: _Job, exc: Exception) -> None:
    """Record why the merge stopped (best effort: the database may be what failed)."""
    message = f"{job.message}; failed: {mask_text(str(exc))}"[:400]
    try:
        with engine.begin() as conn:
            conn.execute(
                update(ImportJob)
                .where(ImportJob.id == job.id)
                .values(status="failed", message=message)
            )
    except Exception:  # noqa: S110  (the original error is what the caller needs to see)
        pass
