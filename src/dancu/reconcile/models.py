"""Reconciliation jobs, agencies' column profiles, and the register's likely duplicates.

A job is one extract an agency sent: uploaded (``draft``, its columns recognised and shown
for confirmation), ``queued`` once confirmed, ``running`` on a worker (which keeps a
heartbeat, so a job whose worker died is taken up again), then ``done`` or ``failed``. Its
files live in the job's folder under the data directory; the row keeps the state, the
progress and the verdict counts for the pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dancu.core.db import Base, UTCDateTime
from dancu.core.models import BigID
from dancu.core.timeutil import utcnow


class ReconcileJob(Base):
    __tablename__ = "reconcile_job"
    __table_args__ = (Index("ix_reconcile_job_agency", "agency", "created_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))  # the file's name as sent
    created_by: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(12))  # draft|queued|running|done|failed
    stage: Mapped[str] = mapped_column(String(40), default="")
    step: Mapped[str] = mapped_column(String(40), default="")
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    engine: Mapped[str] = mapped_column(String(10), default="duckdb")
    fmt: Mapped[str] = mapped_column(String(10), default="")  # csv | parquet | xlsx
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # How the upload found the file written (readers.Sniffed.dialect: encoding, delimiter,
    # header line): with fmt and headers, what the run reads the file by instead of sniffing
    # it again. Empty for a job uploaded before it was kept.
    dialect: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sample: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    guesses: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # how each was found
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(String(400), default="")
    worker: Mapped[str] = mapped_column(String(80), default="")
    heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ColumnProfile(Base):
    """The column mapping an agency confirmed for files with these headers (by signature),
    proposed again for the next file like it."""

    __tablename__ = "reconcile_profile"
    __table_args__ = (UniqueConstraint("agency", "signature"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuplicatePair(Base):
    """Two people of the register who are likely one, found by ``dancu reconcile dedupe``,
    for an officer to review: ``open``, then ``different``, ``merged`` (the register merged
    them: ``merge_id`` names the register's merge, which can be undone, reopening the pair)
    or ``same`` (confirmed by an officer who may not write the register, for the ministry to
    merge)."""

    __tablename__ = "reconcile_duplicate"
    __table_args__ = (
        UniqueConstraint("personal_id_a", "personal_id_b"),
        Index("ix_reconcile_duplicate_scope", "status", "province_code"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    personal_id_a: Mapped[str] = mapped_column(String(12))
    personal_id_b: Mapped[str] = mapped_column(String(12))
    score: Mapped[float] = mapped_column(Float)
    agreement: Mapped[str] = mapped_column(String(120), default="")  # what agrees, in codes
    province_code: Mapped[str] = mapped_column(String(2), default="")
    status: Mapped[str] = mapped_column(String(12), default="open")
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str] = mapped_column(String(80), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(300), default="")
    # The register's merge (``RegistryService.merge_persons``): an id, never a foreign key
    # into another context's table.
    merge_id: Mapped[int | None] = mapped_column(BigID)
    survivor_personal_id: Mapped[str] = mapped_column(String(12), default="")
