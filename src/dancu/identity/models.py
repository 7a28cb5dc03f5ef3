"""Electronic identity accounts (tài khoản định danh điện tử, VNeID-style; Decree 69/2024).

An account belongs to one person of the register, named by their personal ID number. Level 1
is self-registered (ID number, phone, email, a face compared with the portrait on record);
level 2 is activated in person by an officer (card checked, fingerprints captured). Accounts
are never deleted: they are suspended (death, a report) or closed, and every security event
stays in ``identity_account_event`` (the citizen's login history).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from dancu.core.db import Base, UTCDateTime
from dancu.core.models import BigID
from dancu.core.timeutil import utcnow


class Account(Base):
    __tablename__ = "identity_account"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    personal_id: Mapped[str] = mapped_column(String(12), unique=True)
    level: Mapped[int] = mapped_column(SmallInteger)  # 1 or 2
    # pending (registered, phone not yet confirmed) | active | suspended | closed
    status: Mapped[str] = mapped_column(String(12))
    phone: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(120), default="")
    passcode_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    level2_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    level2_by: Mapped[str] = mapped_column(String(80), default="")  # officer username
    level2_unit: Mapped[str] = mapped_column(String(5), default="")  # where, 2025 unit code
    # Reference of the fingerprints captured at level 2 (the templates live in the
    # biometric system behind the FingerprintScanner port, never here).
    fingerprint_ref: Mapped[str] = mapped_column(String(64), default="")
    suspended_reason: Mapped[str] = mapped_column(String(60), default="")
    # A guardian's level-2 account registers and acts for a minor or ward (Decree 69/2024).
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("identity_account.id"))


class OtpChallenge(Base):
    """A one-time code sent by SMS: confirms the phone at registration and passcode reset."""

    __tablename__ = "identity_otp"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # register | reset
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 with the server key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccountEvent(Base):
    """What happened to an account and when: sign-ins (and failures), lockouts, level changes,
    passcode resets, suspensions. The citizen sees these as their login history."""

    __tablename__ = "identity_account_event"
    __table_args__ = (Index("ix_identity_account_event_account", "account_id", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(String(200), default="")
