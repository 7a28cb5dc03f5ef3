"""Electronic identity accounts (tài khoản định danh điện tử, VNeID-style; Decree 69/2024).

An account belongs to one person of the register, named by their personal ID number. Level 1
is self-registered (ID number, phone, email, a face compared with the portrait on record);
level 2 is activated in person by an officer (card checked, fingerprints captured). Accounts
are never deleted: they are suspended (death, a report) or closed, and every security event
stays in ``identity_account_event`` (the citizen's login history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
)
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
    # The optional second factor, TOTP (RFC 6238): the secret sealed with a key derived from
    # the server secret (dancu.core.sealing); ``totp_enabled_at`` stays empty until the
    # citizen has confirmed enrolment with a first code. ``totp_last_step`` is the time step
    # of the last code accepted: a code is never accepted twice.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)


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


class Device(Base):
    """A browser a citizen signed in with, named by a random long-lived cookie (only its
    digest is kept). Revoking it ("sign out and forget") ends the sessions started on it;
    a later sign-in there makes a new row."""

    __tablename__ = "identity_device"
    __table_args__ = (Index("ix_identity_device_account", "account_id", "cookie_hash"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    cookie_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the device cookie
    label: Mapped[str] = mapped_column(String(80), default="")  # "Chrome · Android"
    ip_prefix: Mapped[str] = mapped_column(String(50), default="")  # masked to /24 or /48
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccountEvent(Base):
    """What happened to an account and when: sign-ins (and failures), lockouts, level changes,
    passcode resets, second-factor changes, revoked devices, withdrawn consents, suspensions.
    The citizen sees these as their login history: a sign-in with the device it came from,
    the level and the factors used (``pwd``, ``otp``)."""

    __tablename__ = "identity_account_event"
    __table_args__ = (Index("ix_identity_account_event_account", "account_id", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(String(200), default="")
    device_id: Mapped[int | None] = mapped_column(ForeignKey("identity_device.id"))
    device: Mapped[str] = mapped_column(String(140), default="")  # label and network then
    level: Mapped[int | None] = mapped_column(SmallInteger)  # of a sign-in
    factors: Mapped[str] = mapped_column(String(20), default="")  # "pwd otp"


class CorrectionRequest(Base):
    """A citizen's request to correct what the register holds about them ("my profile" is
    read-only): the field, its value when asked, the value proposed and why. The commune
    police of residence check it with the citizen's documents and correct the register.

    ``province_code``/``commune_code`` are the (2025-scheme) units of the citizen's permanent
    residence, copied when the request is made and kept up to date when the register records
    a move, so officers' lists are scoped without reading the register for every request."""

    __tablename__ = "identity_correction_request"
    __table_args__ = (
        Index("ix_identity_correction_request_scope", "status", "province_code", "commune_code"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"), index=True)
    field: Mapped[str] = mapped_column(String(30))
    current_value: Mapped[str] = mapped_column(String(300), default="")
    proposed: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done | refused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    province_code: Mapped[str] = mapped_column(String(2), default="")
    commune_code: Mapped[str] = mapped_column(String(5), default="")
    resolved_by: Mapped[str] = mapped_column(String(80), default="")  # officer username
    resolution_note: Mapped[str] = mapped_column(String(300), default="")


# -- the OpenID provider --------------------------------------------------------------------


class SigningKey(Base):
    """A key the provider signs tokens with. One is active; retired keys stay published in the
    JWKS until every token they signed has expired (``published_until``). The private key is
    stored encrypted with a key derived from the server secret."""

    __tablename__ = "identity_signing_key"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_pem: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Client(Base):
    """A relying party or agency system registered with the provider."""

    __tablename__ = "identity_client"

    client_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # Shown on the consent screen: in Vietnamese (the citizens' language), and in English
    # for the English pages when given (otherwise they show the Vietnamese).
    purpose: Mapped[str] = mapped_column(String(300))
    purpose_en: Mapped[str] = mapped_column(String(300), default="", server_default="")
    auth_method: Mapped[str] = mapped_column(String(30))  # private_key_jwt | client_secret_basic
    secret_hash: Mapped[str] = mapped_column(String(64), default="")
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    jwks_uri: Mapped[str] = mapped_column(String(300), default="")
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)  # what it may ask for
    claims: Mapped[list[str]] = mapped_column(JSON, default=list)  # sensitive claims granted
    sector: Mapped[str] = mapped_column(String(120))  # pairwise subject sector
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsedAssertion(Base):
    """Client assertions already presented (``jti``), kept until they expire: a replayed
    assertion is refused (RFC 7523 section 3, OpenID Connect Core 9)."""

    __tablename__ = "identity_used_assertion"
    __table_args__ = (Index("ix_identity_used_assertion_expires", "expires_at"),)

    client_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    jti: Mapped[str] = mapped_column(String(120), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushedRequest(Base):
    """An authorization request pushed by the client (PAR, RFC 9126), or one received at the
    authorization endpoint and waiting for the citizen to sign in and consent."""

    __tablename__ = "identity_pushed_request"

    request_uri: Mapped[str] = mapped_column(String(100), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_client.client_id"))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuthorizationCode(Base):
    """A code issued to the client after sign-in and consent; single use (a second use
    revokes what the first one issued). Only its SHA-256 digest is stored."""

    __tablename__ = "identity_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_client.client_id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(300))
    claims: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the claims parameter
    nonce: Mapped[str] = mapped_column(String(200), default="")
    code_challenge: Mapped[str] = mapped_column(String(128))
    acr: Mapped[str] = mapped_column(String(60))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    access_jti: Mapped[str] = mapped_column(String(64), default="")
    dpop_jkt: Mapped[str] = mapped_column(String(64), default="")  # the key tokens bind to


class Consent(Base):
    """What a citizen agreed to release to a client; revocable from "my consents"."""

    __tablename__ = "identity_consent"
    __table_args__ = (Index("ix_identity_consent_account_client", "account_id", "client_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_client.client_id"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    claims: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RevokedToken(Base):
    """Access tokens revoked before they expire (a replayed code, a revoked consent)."""

    __tablename__ = "identity_revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """A refresh token (only its digest), one per use: each use gives a new one in the same
    family; using an old one again revokes the whole family (RFC 9700 4.14.2)."""

    __tablename__ = "identity_refresh_token"
    __table_args__ = (Index("ix_identity_refresh_token_family", "family"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_client.client_id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id"))
    scope: Mapped[str] = mapped_column(String(300))
    attributes: Mapped[list[str]] = mapped_column(JSON)
    acr: Mapped[str] = mapped_column(String(60))
    dpop_jkt: Mapped[str] = mapped_column(String(64), default="")
    access_jti: Mapped[str] = mapped_column(String(64), default="")  # the token issued with it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
