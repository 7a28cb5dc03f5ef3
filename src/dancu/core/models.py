"""Tables owned by the core context: administrative units, ID allocation, audit, outbox,
officer accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dancu.core.db import Base, UTCDateTime
from dancu.core.timeutil import utcnow

# Surrogate keys are 64-bit on PostgreSQL (a national register outgrows int4 in audit rows)
# and plain INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments.
BigID = BigInteger().with_variant(Integer(), "sqlite")


class AdminUnit(Base):
    """A province, district or commune as it existed in one scheme (before or after the
    1 July 2025 reform, Resolution 202/2025/QH15). Codes are the statistics office's and are
    reused across schemes, so (scheme, level, code) is the natural key."""

    __tablename__ = "admin_unit"
    __table_args__ = (UniqueConstraint("scheme", "level", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme: Mapped[str] = mapped_column(String(8))  # "legacy" (63 provinces) or "2025" (34)
    level: Mapped[str] = mapped_column(String(10))  # province | district | commune
    code: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(30))  # Tỉnh, Thành phố, Quận, Phường, Xã, Đặc khu…
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"), index=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class AdminUnitSuccession(Base):
    """Old unit -> new unit. A commune split across several successors has one row per
    successor; ``is_default`` marks the one addresses roll forward to when nothing finer
    (a street address or coordinates) is known."""

    __tablename__ = "admin_unit_succession"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    old_unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"), index=True)
    new_unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # whole | split
    is_default: Mapped[bool] = mapped_column(Boolean)
    effective_on: Mapped[date] = mapped_column(Date)


class PersonalIdAllocation(Base):
    """Every personal ID number ever issued. The primary key is what makes allocation unique
    under concurrency: an insert either wins or conflicts (DESIGN: insert-with-retry)."""

    __tablename__ = "personal_id_allocation"

    number: Mapped[str] = mapped_column(String(12), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(6), index=True)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Officer(Base):
    """A registry officer account, scoped to one administrative unit (of the current scheme)."""

    __tablename__ = "officer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    agency: Mapped[str] = mapped_column(String(40), default="")  # agency officers only
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One audited read or change. Entries form hash chains (``chain``, ``seq``) so that an
    edited, inserted or deleted entry is detectable; see dancu.core.audit."""

    __tablename__ = "audit_entry"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(30))
    unit: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last entry of each chain, written in the same commit as the entries. Verification
    compares the chain's tail against it, which detects truncation."""

    __tablename__ = "audit_chain_head"

    chain: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditCheckpoint(Base):
    """A chain head signed with a key kept outside the database (HMAC). Someone who can write
    the database can recompute every hash of a chain, but cannot forge these signatures."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    signature: Mapped[str] = mapped_column(String(64))


class OutboxEvent(Base):
    """A domain event written in the same transaction as the change it announces; a relay
    publishes it later with the row id as message id (DESIGN: outbox)."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_unpublished", "id", "published_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxCursor(Base):
    """How far an in-process subscriber has read the outbox (``core.outbox.LocalSubscriber``)."""

    __tablename__ = "outbox_cursor"

    consumer: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
