"""Identity use cases: level-1 self-registration, phone confirmation, passcode sign-in with
lockout, an optional authenticator app (TOTP, RFC 6238) as second factor, the devices signed
in with and their revocation, passcode reset, level-2 activation by an officer, suspension
(Decree 69/2024) and reinstatement, the citizen's requests to correct the register, and the
officers' side of accounts: the account's state, suspension on a report, turning off a lost
authenticator app, and the correction requests of their commune.

Every refusal is a ``DancuError`` with a stable code (``face-mismatch``, ``too-young``,
``locked``…) and, where an input is at fault, the field, so clients can tell the citizen
exactly what to do. Changes are audited in the same transaction; sign-ins and failures are
kept as account events (the citizen's login history).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import NoReturn, TypeVar

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import ids
from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Actor, Entry, record_change
from dancu.core.db import write_session
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid, NotFound
from dancu.core.sealing import Sealer, Unsealable
from dancu.core.timeutil import today, utcnow
from dancu.identity import schemas as s
from dancu.identity.devices import cookie_digest, describe_agent, mask_ip
from dancu.identity.models import (
    Account,
    AccountEvent,
    AuthorizationCode,
    CorrectionRequest,
    Device,
    OtpChallenge,
    RefreshToken,
    RevokedToken,
)
from dancu.identity.ports import (
    FaceMatcher,
    FingerprintScanner,
    PortraitStore,
    SmsSender,
    mask_phone,
)
from dancu.registry.schemas import PersonPublic
from dancu.registry.service import RegistryService

# Argon2id for 6-digit passcodes: OWASP's minimum (19 MiB, 2 passes, 1 lane) costs ~25 ms of
# one core here. A passcode has only a million values, so the hash alone cannot stop an
# offline attack on a stolen database; what protects it is the lockout below and keeping
# the hashes out of reach. The cost is kept low enough that a login stays far under 100 ms.
PASSCODE_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = PASSCODE_HASHER.hash("000000")

FREE_FAILURES = 4  # failures before the first lockout
FIRST_LOCK = timedelta(minutes=5)  # then 5, 10, 20 … minutes, at most a day
MAX_LOCK = timedelta(hours=24)
OTP_TTL = timedelta(minutes=5)
OTP_ATTEMPTS = 5
SELF_REGISTRATION_AGE = 14  # younger: a guardian registers them (Decree 69/2024)
LEVEL2_AGE = 6  # level 2 from 6 years old on request
REGISTRY_CONTEXT = OfficerContext("identity", Role.MINISTRY, purpose="identity-verification")
# TOTP: 6 digits, 30-second steps, a step of clock drift either way; the issuer names the
# account in the authenticator app. After a right passcode the ticket for the code step
# lasts 5 minutes; a device's last-seen time is refreshed at most every 15 minutes.
TOTP_ISSUER = "dancu"
TOTP_DRIFT = 1
TICKET_TTL = timedelta(minutes=5)
SEEN_EVERY = timedelta(minutes=15)
# Officers' side: why they suspend an account (a death does it by itself: "deceased"); how
# long an access token may still be in use when its account is suspended (they live 10
# minutes; the revocation list keeps them an hour to be safe); how many events they see.
SUSPENSION_REASONS = ("reported-lost-card", "reported-fraud", "citizen-request", "court-order")
DECEASED = "deceased"
# The register merged the person's record into another (a duplicate): the number now answers
# as the surviving record, so its account is suspended until the merge is undone; the citizen
# signs in with the surviving record's number (docs/merge.md).
MERGED = "merged"
ACCESS_HORIZON = timedelta(hours=1)
OFFICER_EVENTS = 20

E = TypeVar("E", bound=DancuError)


def refuse(kind: type[E], code: str, message: str, field: str | None = None) -> E:
    """A domain error with a specific, stable code."""
    error = kind(message, field)
    error.code = code
    return error


class Locked(DancuError):
    status = 429
    code = "locked"


class SecondFactorRequired(DancuError):
    """The passcode was right and the account has an authenticator app: the sign-in goes on
    with ``login_otp(ticket, code)``. Callers that do not know the step fail safe."""

    status = 401
    code = "otp-required"
    ticket = ""


class IdentityService:
    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: RegistryService,
        *,
        secret_key: str,
        sms: SmsSender,
        portraits: PortraitStore,
        faces: FaceMatcher,
        fingerprints: FingerprintScanner,
        face_threshold: float = 0.8,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.sms, self.portraits, self.faces = sms, portraits, faces
        self.fingerprints = fingerprints
        self.face_threshold = face_threshold
        self._otp_key = hashlib.sha256(b"dancu.identity-otp:" + secret_key.encode()).digest()
        self._ticket_key = hashlib.sha256(b"dancu.identity-mfa:" + secret_key.encode()).digest()
        self._totp_box = Sealer(secret_key, "identity-totp")

    # -- level 1: self-registration ----------------------------------------------------------

    def start_registration(self, data: s.Registration) -> s.Challenge:
        """Check the person in the register, their age and status, and their face against the
        portrait on record; then create a pending level-1 account and text a code to the
        phone. Nothing is created when any check fails."""
        person = self._person(data.personal_id)
        self._require_alive(person)
        if _age(person.birth_date) < SELF_REGISTRATION_AGE:
            raise refuse(
                Invalid,
                "too-young",
                f"under {SELF_REGISTRATION_AGE}: a parent or guardian registers you with their "
                "level-2 account",
                "personal_id",
            )
        portrait = self.portraits.portrait(person.personal_id)
        if portrait is None:
            raise refuse(
                Invalid,
                "no-portrait",
                "no portrait is on record for this number: activate your account in person "
                "at the commune police",
                "selfie",
            )
        try:
            similarity = self.faces.similarity(data.selfie, portrait)
        except ValueError as exc:  # an image the matcher cannot use (identity.faces)
            self._audit_refusal(person.personal_id, "identity.face_unusable")
            if getattr(exc, "image", "selfie") == "portrait":
                raise refuse(
                    Invalid,
                    "portrait-unusable",
                    "the portrait on record cannot be compared: activate your account in "
                    "person at the commune police",
                    "selfie",
                ) from None
            raise refuse(
                Invalid,
                "face-unreadable",
                "no single clear face was found in the photo: take it again facing the "
                "camera, in good light, with only your face in it",
                "selfie",
            ) from None
        if similarity < self.face_threshold:
            self._audit_refusal(person.personal_id, "identity.face_mismatch")
            raise refuse(
                Invalid,
                "face-mismatch",
                "the face in the photo does not match the portrait on record",
                "selfie",
            )
        with write_session(self.factory) as session:
            account = self._account(session, person.personal_id)
            if account is not None and account.status != "pending":
                raise refuse(
                    Conflict,
                    "account-exists",
                    "an account already exists for this number: sign in, or reset the passcode",
                    "personal_id",
                )
            if account is None:
                account = Account(personal_id=person.personal_id, level=1, status="pending")
                session.add(account)
            account.phone, account.email = data.phone, data.email
            session.flush()
            challenge, code = self._new_challenge(session, account, "register")
            self._event(session, account, "registration.started", mask_phone(data.phone))
            record_change(session, self._entry("identity.register", account))
            out = self._challenge_out(challenge, account)
        self.sms.send(data.phone, f"dancu: ma xac thuc {code} (hieu luc 5 phut)")
        return out

    def confirm_registration(
        self, data: s.Confirmation, device: s.DeviceSeen | None = None
    ) -> s.AccountOut:
        """The code from the SMS confirms the phone; the chosen passcode activates level 1.
        The citizen is signed in on ``device`` (recorded like a sign-in's)."""
        _require_strong(data.passcode)
        with write_session(self.factory) as session:
            found = self._use_challenge(session, data.challenge_id, data.code, "register")
            if not isinstance(found, DancuError):
                _challenge, account = found
                now = utcnow()
                account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.status, account.activated_at = "active", now
                row = self._see_device(session, account, now, device)
                self._event(
                    session, account, "registration.completed", device=row, level=account.level
                )
                record_change(session, self._entry("identity.activate", account))
                return self._signed_in_out(account, ["pwd"], row)
        raise found  # after the commit: a wrong code counts although the call fails

    # -- sign-in --------------------------------------------------------------------------

    def login(self, data: s.Login, device: s.DeviceSeen | None = None) -> s.AccountOut:
        """Passcode sign-in. A wrong passcode and an unknown number get the same answer.
        After ``FREE_FAILURES`` failures the account locks for 5 minutes, doubling with each
        further failure; a success clears the count. With an authenticator app enrolled the
        code is needed too: given as ``data.otp``, or else the answer is
        ``SecondFactorRequired`` with a ticket for ``login_otp``. Wrong codes count towards
        the same lockout. A success records the device (``device``) and returns the factors
        used (``["pwd"]`` or ``["pwd", "otp"]``)."""
        now = utcnow()
        with write_session(self.factory) as session:
            account = self._account(session, data.personal_id, lock=True)
            if account is None or account.passcode_hash is None:
                _verify(_DUMMY_HASH, data.passcode)  # the same time as a real check
                raise _bad_credentials()
            self._require_open(account, now)
            if not _verify(account.passcode_hash, data.passcode):
                failure = self._failed(session, account, now, _bad_credentials(), device)
            else:
                if PASSCODE_HASHER.check_needs_rehash(account.passcode_hash):
                    account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                if account.totp_enabled_at is None:
                    return self._signed_in(session, account, now, ["pwd"], device)
                if not data.otp:
                    failure = refuse(
                        SecondFactorRequired,
                        "otp-required",
                        "enter the 6-digit code from your authenticator app",
                        "otp",
                    )
                    failure.ticket = self._ticket(account, int((now + TICKET_TTL).timestamp()))
                else:
                    wrong = self._check_totp(session, account, data.otp, now, device)
                    if wrong is None:
                        return self._signed_in(session, account, now, ["pwd", "otp"], device)
                    failure = wrong
        raise failure  # after the commit: the failure counts although the call fails

    def login_otp(self, ticket: str, code: str, device: s.DeviceSeen | None = None) -> s.AccountOut:
        """The second step of a sign-in: the authenticator app's code, with the ticket the
        passcode step gave (valid 5 minutes, and only while the passcode and the enrolment
        are those it was given for). A code is accepted for the current 30-second step or
        one either side, and never twice; wrong codes count towards the lockout."""
        code = code.strip().replace(" ", "")
        if not re.fullmatch(r"\d{6}", code):
            raise refuse(Invalid, "otp-format", "the code has 6 digits", "otp")
        now = utcnow()
        account_id, expires = _open_ticket(ticket, now)
        with write_session(self.factory) as session:
            account = session.get(Account, account_id, with_for_update=True)
            if account is None or not hmac.compare_digest(ticket, self._ticket(account, expires)):
                raise _ticket_expired()
            self._require_open(account, now)
            failure = self._check_totp(session, account, code, now, device)
            if failure is None:
                return self._signed_in(session, account, now, ["pwd", "otp"], device)
        raise failure

    # -- the authenticator app (TOTP) -----------------------------------------------------

    def start_totp(self, personal_id: str) -> s.TotpEnrolment:
        """A new secret for the citizen's authenticator app, kept sealed; it takes effect
        when ``confirm_totp`` receives a first right code."""
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id)
            if account.totp_enabled_at is not None:
                raise refuse(
                    Conflict,
                    "totp-enrolled",
                    "an authenticator app is already set up: remove it first",
                )
            secret = pyotp.random_base32()
            account.totp_secret = self._totp_box.seal(secret.encode())
            account.totp_last_step = 0
            return self._enrolment(account, secret)

    def totp_enrolment(self, personal_id: str) -> s.TotpEnrolment | None:
        """The enrolment waiting for its first code, if any."""
        with self.factory() as session:
            account = self._citizen_account(session, personal_id, lock=False)
            if account.totp_enabled_at is not None or account.totp_secret is None:
                return None
            try:
                secret = self._totp_box.open(account.totp_secret).decode()
            except Unsealable:
                return None
            return self._enrolment(account, secret)

    def confirm_totp(
        self, personal_id: str, code: str, device_id: int | None = None
    ) -> s.AccountOut:
        """A right code from the app turns the second factor on (``device_id``: the device
        of the session doing it, for the history)."""
        code = code.strip().replace(" ", "")
        if not re.fullmatch(r"\d{6}", code):
            raise refuse(Invalid, "otp-format", "the code has 6 digits", "code")
        now = utcnow()
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id)
            if account.totp_enabled_at is not None:
                raise refuse(
                    Conflict,
                    "totp-enrolled",
                    "an authenticator app is already set up: remove it first",
                )
            secret = self._open_totp(account)
            if secret is None:
                raise refuse(
                    Invalid,
                    "totp-not-started",
                    "the setup has expired: start again",
                    "code",
                )
            steps = _totp_steps(secret, code, now)
            if not steps:
                raise refuse(Invalid, "otp-wrong", "the code is not right", "code")
            account.totp_enabled_at, account.totp_last_step = now, max(steps)
            where = self._own_device(session, account, device_id)
            self._event(session, account, "totp.enrolled", device=where)
            record_change(session, self._entry("identity.totp_enrol", account))
            return self._account_out(account)

    def remove_totp(
        self, personal_id: str, passcode: str, device_id: int | None = None
    ) -> s.AccountOut:
        """Turn the second factor off; the passcode is needed (a wrong one counts towards
        the lockout like at sign-in)."""
        now = utcnow()
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id)
            self._require_open(account, now)
            if account.totp_enabled_at is None:
                raise refuse(Conflict, "totp-absent", "no authenticator app is set up")
            if account.passcode_hash is None or not _verify(account.passcode_hash, passcode):
                wrong = refuse(Forbidden, "wrong-passcode", "the passcode is not right", "passcode")
                failure = self._failed(session, account, now, wrong, None)
            else:
                account.totp_secret, account.totp_enabled_at = None, None
                account.totp_last_step = 0
                account.failed_logins, account.locked_until = 0, None
                where = self._own_device(session, account, device_id)
                self._event(session, account, "totp.removed", device=where)
                record_change(session, self._entry("identity.totp_remove", account))
                return self._account_out(account)
        raise failure

    # -- devices --------------------------------------------------------------------------

    def devices(self, personal_id: str) -> list[s.DeviceOut]:
        """The devices the citizen is signed in with or was, last used first (revoked ones
        are forgotten)."""
        with self.factory() as session:
            account = self._citizen_account(session, personal_id, lock=False)
            rows = session.scalars(
                select(Device)
                .where(Device.account_id == account.id, Device.revoked_at.is_(None))
                .order_by(Device.last_seen.desc(), Device.id.desc())
            )
            return [
                s.DeviceOut(
                    id=d.id,
                    label=d.label,
                    ip_prefix=d.ip_prefix,
                    first_seen=d.first_seen,
                    last_seen=d.last_seen,
                )
                for d in rows
            ]

    def revoke_device(self, personal_id: str, device_id: int) -> bool:
        """Sign out and forget a device: sessions started on it stop working. False when it
        is not one of the citizen's devices (or already revoked)."""
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id)
            row = session.get(Device, device_id, with_for_update=True)
            if row is None or row.account_id != account.id or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            self._event(session, account, "device.revoked", row.label, device=row)
            record_change(
                session, self._entry("identity.device_revoke", account, f"device:{row.id}")
            )
            return True

    def session_active(self, personal_id: str, device_id: int) -> bool:
        """Whether a session started on this device may go on: the device is the account's
        and not revoked, and the account is active. Refreshes the device's last-seen time
        (at most every ``SEEN_EVERY``)."""
        now = utcnow()
        with write_session(self.factory) as session:
            found = session.execute(
                select(Device, Account.status)
                .join(Account, Account.id == Device.account_id)
                .where(Device.id == device_id, Account.personal_id == personal_id)
            ).first()
            if found is None:
                return False
            row, status = found
            if row.revoked_at is not None or status != "active":
                return False
            if now - row.last_seen > SEEN_EVERY:
                row.last_seen = now
            return True

    def consent_withdrawn(self, personal_id: str, service: str) -> None:
        """Note a withdrawn consent in the citizen's history (the authorizer revokes it)."""
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id, lock=False)
            self._event(session, account, "consent.withdrawn", service)

    # -- correction requests --------------------------------------------------------------

    def request_correction(self, personal_id: str, data: s.CorrectionRequestIn) -> s.CorrectionOut:
        """The citizen asks for a fact of the register to be corrected; the commune police
        of residence handle it with the citizen's documents (the request keeps the commune
        of permanent residence, see ``open_corrections``). One open request per field."""
        person = self._person(personal_id)
        current = _current_value(person, data.field)
        if data.field != "other" and data.proposed.strip().casefold() == current.casefold():
            raise refuse(
                Invalid,
                "correction-same",
                "this is what the register already holds",
                "proposed",
            )
        with write_session(self.factory) as session:
            account = self._citizen_account(session, personal_id)
            already = session.scalars(
                select(CorrectionRequest.id).where(
                    CorrectionRequest.account_id == account.id,
                    CorrectionRequest.field == data.field,
                    CorrectionRequest.status == "open",
                )
            ).first()
            if already is not None and data.field != "other":
                raise refuse(
                    Conflict,
                    "correction-open",
                    "a request to correct this is already open",
                    "field",
                )
            province, commune = self._residence_scope(person)
            row = CorrectionRequest(
                account_id=account.id,
                field=data.field,
                current_value=current[:300],
                proposed=data.proposed,
                reason=data.reason,
                status="open",
                created_at=utcnow(),
                province_code=province,
                commune_code=commune,
            )
            session.add(row)
            session.flush()
            self._event(session, account, "correction.requested", data.field)
            detail = f"request:{row.id} field:{data.field}"
            record_change(session, self._entry("identity.correction_request", account, detail))
            return _correction_out(row)

    def corrections(self, personal_id: str, limit: int = 20) -> list[s.CorrectionOut]:
        """The citizen's correction requests, newest first."""
        with self.factory() as session:
            account = self._citizen_account(session, personal_id, lock=False)
            rows = session.scalars(
                select(CorrectionRequest)
                .where(CorrectionRequest.account_id == account.id)
                .order_by(CorrectionRequest.created_at.desc(), CorrectionRequest.id.desc())
                .limit(limit)
            )
            return [_correction_out(r) for r in rows]

    # -- passcode reset -------------------------------------------------------------------

    def start_reset(self, data: s.ResetRequest) -> s.Challenge | None:
        """Text a code to the phone on file when it is the one given. The caller answers the
        same whether or not a code was sent (no probing for accounts or phones)."""
        with write_session(self.factory) as session:
            account = self._account(session, data.personal_id)
            if account is None or account.status not in ("active", "pending"):
                return None
            if not hmac.compare_digest(account.phone, data.phone):
                self._event(session, account, "reset.refused", "another phone")
                return None
            challenge, code = self._new_challenge(session, account, "reset")
            self._event(session, account, "reset.started")
            out = self._challenge_out(challenge, account)
        self.sms.send(data.phone, f"dancu: ma dat lai mat khau {code} (hieu luc 5 phut)")
        return out

    def finish_reset(self, data: s.Confirmation) -> s.AccountOut:
        _require_strong(data.passcode)
        with write_session(self.factory) as session:
            found = self._use_challenge(session, data.challenge_id, data.code, "reset")
            if not isinstance(found, DancuError):
                _challenge, account = found
                account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.failed_logins, account.locked_until = 0, None
                if account.status == "pending":
                    account.status, account.activated_at = "active", utcnow()
                self._event(session, account, "passcode.reset")
                record_change(session, self._entry("identity.passcode_reset", account))
                return self._account_out(account)
        raise found

    @staticmethod
    def refuse_unsent_reset(data: s.Confirmation, tries: int, started: float) -> NoReturn:
        """Answer the code of a reset for which no code was sent (no such account, or not
        its phone) as a wrong code would be answered, so the pages tell nothing apart:
        ``tries`` wrong codes so far, the reset asked for at ``started`` (epoch seconds)."""
        _require_strong(data.passcode)
        if time.time() - started > OTP_TTL.total_seconds():
            raise refuse(Invalid, "otp-expired", "the code has expired: ask for a new one", "code")
        if tries >= OTP_ATTEMPTS:
            raise refuse(
                Invalid, "otp-exhausted", "too many wrong codes: ask for a new one", "code"
            )
        raise refuse(Invalid, "otp-wrong", "the code is not right", "code")

    # -- level 2, in person ---------------------------------------------------------------

    def activate_level2(self, ctx: OfficerContext, data: s.Level2Activation) -> s.AccountOut:
        """At any commune police or card office, whatever the person's residence: the officer
        reads the chip card, scans fingerprints and approves. A person without an account
        gets one at level 2 and sets the passcode with a code sent to the phone given."""
        if not ctx.can_write:
            raise Forbidden("only commune police officers activate level 2")
        person = self._person(data.personal_id)
        self._require_alive(person)
        if data.card_personal_id != person.personal_id:
            raise refuse(
                Invalid,
                "card-mismatch",
                "the card read is not this person's current card",
                "card_personal_id",
            )
        if _age(person.birth_date) < LEVEL2_AGE:
            raise refuse(
                Invalid, "too-young", f"level 2 is from {LEVEL2_AGE} years old", "personal_id"
            )
        try:
            reference = self.fingerprints.enrol(person.personal_id, data.fingerprint_scan)
        except ValueError as exc:
            raise refuse(Invalid, "fingerprint-unreadable", str(exc), "fingerprint_scan") from None
        code = None
        with write_session(self.factory) as session:
            account = self._account(session, person.personal_id)
            if account is None:
                if data.phone is None:
                    raise Invalid("a phone number is needed for a new account", "phone")
                account = Account(personal_id=person.personal_id, status="pending", phone="")
                session.add(account)
            if account.status in ("suspended", "closed"):
                raise refuse(Conflict, "suspended", f"the account is {account.status}")
            if data.phone is not None:
                account.phone = data.phone
            now = utcnow()
            account.level, account.level2_at = 2, now
            account.level2_by, account.level2_unit = ctx.username, ctx.commune_code
            account.fingerprint_ref = reference
            session.flush()
            if account.passcode_hash is None:
                _challenge, code = self._new_challenge(session, account, "reset")
            self._event(session, account, "level2", f"by {ctx.username} at {ctx.unit_label}")
            record_change(
                session,
                Entry(ctx.actor("identity-level2"), "identity.level2", f"account:{account.id}"),
            )
            out = self._account_out(account)
            phone = account.phone
        if code is not None:
            self.sms.send(phone, f"dancu: ma dat mat khau {code} (hieu luc 5 phut)")
        return out

    # -- officers: an account's state, suspension, the authenticator app ------------------
    #
    # Like level 2, these are done at any commune police whatever the citizen's residence;
    # province officers read only; ministry administrators do everything. Correction
    # requests, in contrast, belong to the commune of permanent residence.

    def officer_view(self, ctx: OfficerContext, personal_id: str) -> s.OfficerAccountView:
        """The account's state for an officer: level, status and why it is suspended, the
        authenticator app, the devices signed in, the latest events, and who it belongs to
        in the register. Audited as the officer's read."""
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = self._account(session, number)
            if account is None:
                raise _no_account()
            devices = session.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.account_id == account.id, Device.revoked_at.is_(None))
            )
            rows = session.scalars(
                select(AccountEvent)
                .where(AccountEvent.account_id == account.id)
                .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
                .limit(OFFICER_EVENTS)
            )
            view = s.OfficerAccountView(
                account=self._account_out(account),
                suspended_reason=account.suspended_reason,
                level2_unit=account.level2_unit,
                devices=int(devices or 0),
                events=[_event_out(e) for e in rows],
            )
            record_change(
                session,
                Entry(ctx.actor("identity-accounts"), "identity.account_read", _subject(account)),
            )
        person = self._registered(number)
        if person is not None:
            view.full_name, view.birth_date = person.full_name, person.birth_date
            view.person_status, view.current_personal_id = person.status, person.personal_id
        view.reinstatable = (
            view.account.status == "suspended"
            and view.suspended_reason not in (DECEASED, MERGED)
            and view.person_status == "alive"
        )
        return view

    def suspend_reported(
        self, ctx: OfficerContext, personal_id: str, reason: str, note: str = ""
    ) -> s.AccountOut:
        """Suspend an account on a report (a lost card, fraud, the citizen's own request, a
        court order): sign-in stops, every session and refresh token of the account ends.
        ``note``: what was reported, by whom (optional, kept in the history)."""
        self._require_account_writer(ctx)
        if reason not in SUSPENSION_REASONS:
            raise refuse(Invalid, "suspension-reason", "choose one of the reasons", "reason")
        note = _note(note)
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = self._account(session, number, lock=True)
            if account is None:
                raise _no_account()
            if account.status == "suspended":
                raise refuse(Conflict, "already-suspended", "the account is already suspended")
            if account.status == "closed":
                raise refuse(Conflict, "account-closed", "the account is closed")
            self._suspend(session, account, reason, _officer_detail(ctx, reason, note))
            record_change(
                session,
                Entry(
                    ctx.actor("identity-accounts"),
                    "identity.suspend",
                    _subject(account),
                    f"reason:{reason} note:{note}",
                ),
            )
            return self._account_out(account)

    def reinstate(self, ctx: OfficerContext, personal_id: str, note: str) -> s.AccountOut:
        """Lift a suspension, with a note saying why. Never one for a death (only a
        correction of the register undoes a death), nor for a person the register does not
        hold as alive. The citizen signs in again: earlier sessions and tokens stay ended."""
        self._require_account_writer(ctx)
        note = _note(note, required=True)
        number = _number(personal_id)
        with self.factory() as session:
            account = self._account(session, number)
            if account is None:
                raise _no_account()
            _require_reinstatable(account)
        person = self._registered(number)
        if person is None or person.status != "alive":
            raise refuse(
                Conflict,
                "person-not-alive",
                "the register does not hold this person as alive: correct the register first",
            )
        if person.personal_id != number:
            raise refuse(
                Conflict,
                "number-replaced",
                "the register answers this number with another record's: the account of "
                "the current number is the one to use",
            )
        with write_session(self.factory) as session:
            account = self._account(session, number, lock=True)
            assert account is not None
            _require_reinstatable(account)
            reason = account.suspended_reason
            account.status = "active" if account.activated_at is not None else "pending"
            account.suspended_reason = ""
            self._event(session, account, "reinstated", _officer_detail(ctx, reason, note))
            record_change(
                session,
                Entry(
                    ctx.actor("identity-accounts"),
                    "identity.reinstate",
                    _subject(account),
                    f"was:{reason} note:{note}",
                ),
            )
            return self._account_out(account)

    def reset_second_factor(
        self, ctx: OfficerContext, personal_id: str, note: str = ""
    ) -> s.AccountOut:
        """Turn the authenticator app off for a citizen who lost the phone, after the officer
        checked the citizen's card in person: sign-in then asks for the passcode only. The
        lockout count is cleared and every device is signed out (the lost phone may be one)."""
        self._require_account_writer(ctx)
        note = _note(note)
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = self._account(session, number, lock=True)
            if account is None:
                raise _no_account()
            if account.totp_enabled_at is None:
                raise refuse(Conflict, "totp-absent", "no authenticator app is set up")
            account.totp_secret, account.totp_enabled_at = None, None
            account.totp_last_step = 0
            account.failed_logins, account.locked_until = 0, None
            self._sign_out_devices(session, account, utcnow())
            self._event(session, account, "totp.reset", _officer_detail(ctx, note))
            record_change(
                session,
                Entry(
                    ctx.actor("identity-accounts"),
                    "identity.totp_reset",
                    _subject(account),
                    f"note:{note}",
                ),
            )
            return self._account_out(account)

    # -- officers: correction requests ----------------------------------------------------

    def open_corrections(self, ctx: OfficerContext, limit: int = 200) -> list[s.OpenCorrection]:
        """The open correction requests of people whose permanent residence is in the
        officer's area (commune officers: their commune; province officers: their province;
        ministry: all), oldest first. Audited as the officer's read."""
        stmt = (
            select(CorrectionRequest, Account.personal_id)
            .join(Account, Account.id == CorrectionRequest.account_id)
            .where(CorrectionRequest.status == "open")
        )
        if ctx.role is not Role.MINISTRY:
            stmt = stmt.where(CorrectionRequest.province_code == ctx.province_code)
        if ctx.role is Role.COMMUNE:
            stmt = stmt.where(CorrectionRequest.commune_code == ctx.commune_code)
        stmt = stmt.order_by(CorrectionRequest.created_at, CorrectionRequest.id).limit(limit)
        with write_session(self.factory) as session:
            out = [
                s.OpenCorrection(
                    **_correction_out(row).model_dump(),
                    personal_id=number,
                    province_code=row.province_code,
                    commune_code=row.commune_code,
                )
                for row, number in session.execute(stmt)
            ]
            record_change(
                session,
                Entry(
                    ctx.actor("identity-corrections"),
                    "identity.corrections_read",
                    f"unit:{ctx.unit_label}",
                    f"{len(out)} open",
                ),
            )
        return out

    def resolve_correction(
        self, ctx: OfficerContext, request_id: int, outcome: str, note: str = ""
    ) -> s.CorrectionOut:
        """Close a request of the officer's area: ``done`` once the register was corrected
        (with the register's own correction or residence event), or ``refused`` with a note
        telling the citizen why."""
        self._require_account_writer(ctx)
        if outcome not in ("done", "refused"):
            raise refuse(
                Invalid,
                "correction-outcome",
                "choose whether the register was corrected or the request refused",
                "outcome",
            )
        note = _note(note, required=outcome == "refused", limit=300)
        with write_session(self.factory) as session:
            row = session.get(CorrectionRequest, request_id, with_for_update=True)
            if row is None or not ctx.covers(row.province_code, row.commune_code):
                raise refuse(NotFound, "no-correction", "no such correction request in your area")
            if row.status != "open":
                raise refuse(Conflict, "correction-closed", "this request was already closed")
            row.status, row.resolved_at = outcome, utcnow()
            row.resolved_by, row.resolution_note = ctx.username, note
            account = session.get(Account, row.account_id)
            assert account is not None
            self._event(session, account, f"correction.{outcome}", row.field)
            record_change(
                session,
                Entry(
                    ctx.actor("identity-corrections"),
                    "identity.correction_resolve",
                    _subject(account),
                    f"request:{row.id} outcome:{outcome} note:{note}",
                ),
            )
            return _correction_out(row)

    # -- provisioning (demos, tests, pilots) ----------------------------------------------

    def provision(
        self, personal_id: str, phone: str, passcode: str, level: int, email: str = ""
    ) -> s.AccountOut:
        """An active account for a person of the register, made by an operator without the
        face check, the SMS code or the officer visit (``dancu identity account create``).
        Eligibility still holds: a living person, old enough for the level."""
        data = s.Provisioning(
            personal_id=personal_id, phone=phone, passcode=passcode, level=level, email=email
        )
        person = self._person(data.personal_id)
        self._require_alive(person)
        youngest = LEVEL2_AGE if data.level == 2 else 0
        if _age(person.birth_date) < youngest:
            raise refuse(Invalid, "too-young", f"level 2 is from {LEVEL2_AGE} years old", "level")
        _require_strong(data.passcode)
        now = utcnow()
        with write_session(self.factory) as session:
            if self._account(session, data.personal_id) is not None:
                raise refuse(Conflict, "account-exists", "an account already exists", "personal_id")
            account = Account(
                personal_id=data.personal_id,
                level=data.level,
                status="active",
                phone=data.phone,
                email=data.email,
                passcode_hash=PASSCODE_HASHER.hash(data.passcode),
                activated_at=now,
                level2_at=now if data.level == 2 else None,
                level2_by="provisioned" if data.level == 2 else "",
            )
            session.add(account)
            session.flush()
            self._event(session, account, "provisioned", f"level {data.level}")
            record_change(
                session,
                Entry(_OPERATOR_ACTOR, "identity.provision", f"account:{account.id}"),
            )
            return self._account_out(account)

    # -- suspension -----------------------------------------------------------------------

    def suspend(self, personal_id: str, reason: str, actor: Actor) -> bool:
        """Suspend the person's account (a death, a report); True when one was suspended.
        A death also takes over an earlier suspension's reason: only a correction of the
        register undoes it."""
        with write_session(self.factory) as session:
            account = self._account(session, personal_id, lock=True)
            if account is None or account.status == "closed":
                return False
            if account.status == "suspended" and (
                account.suspended_reason == reason or reason != DECEASED
            ):
                return False
            self._suspend(session, account, reason, reason)
            record_change(session, Entry(actor, "identity.suspend", _subject(account), reason))
            return True

    def _suspend(self, session: Session, account: Account, reason: str, detail: str) -> None:
        account.status, account.suspended_reason = "suspended", reason[:60]
        now = utcnow()
        self._sign_out_devices(session, account, now)
        _revoke_tokens(session, account, now)
        self._event(session, account, "suspended", detail)

    @staticmethod
    def _sign_out_devices(session: Session, account: Account, now: datetime) -> None:
        """Forget every device of the account: sessions started on them end at their next
        request, and stay ended whatever happens to the account later."""
        for row in session.scalars(
            select(Device).where(Device.account_id == account.id, Device.revoked_at.is_(None))
        ):
            row.revoked_at = now

    def on_registry_event(self, topic: str, payload: dict[str, object]) -> None:
        """Consumer of the register's events: a death suspends the account, and so does a
        merge of the record into another (undoing the merge lifts that); a move of permanent
        residence moves the person's open correction requests to the new commune's
        officers."""
        if topic == "registry.person.died":
            self.suspend(str(payload["personal_id"]), DECEASED, _SYSTEM_ACTOR)
        elif topic == "registry.person.merged":
            self.suspend(str(payload["merged_personal_id"]), MERGED, _SYSTEM_ACTOR)
        elif topic == "registry.person.unmerged":
            self._lift_merge(str(payload["merged_personal_id"]))
        elif topic == "registry.residence.changed" and payload.get("kind") == "permanent":
            self._move_corrections(str(payload["personal_id"]), str(payload["commune_code"]))

    def _lift_merge(self, personal_id: str) -> None:
        """The merge of the record was undone: lift the suspension it caused, when the
        register holds the person again under this number and alive (idempotent)."""
        person = self._registered(personal_id)
        if person is None or person.personal_id != personal_id or person.status != "alive":
            return
        with write_session(self.factory) as session:
            account = self._account(session, personal_id, lock=True)
            if account is None or (account.status, account.suspended_reason) != (
                "suspended",
                MERGED,
            ):
                return
            account.status = "active" if account.activated_at is not None else "pending"
            account.suspended_reason = ""
            self._event(session, account, "reinstated", "merge undone")
            record_change(
                session, Entry(_SYSTEM_ACTOR, "identity.reinstate", _subject(account), MERGED)
            )

    def _move_corrections(self, personal_id: str, commune_code: str) -> None:
        unit = self.registry.units.get("2025", "commune", commune_code)
        province = unit.province_code if unit is not None else ""
        with write_session(self.factory) as session:
            account = self._account(session, personal_id)
            if account is None:
                return
            for row in session.scalars(
                select(CorrectionRequest).where(
                    CorrectionRequest.account_id == account.id,
                    CorrectionRequest.status == "open",
                )
            ):
                row.province_code, row.commune_code = province, commune_code

    # -- reads ----------------------------------------------------------------------------

    def account(self, personal_id: str) -> s.AccountOut:
        with self.factory() as session:
            account = self._account(session, personal_id)
            if account is None:
                raise NotFound("no account for this number", "personal_id")
            return self._account_out(account)

    def history(
        self, personal_id: str, limit: int = 50, offset: int = 0
    ) -> list[s.AccountEventOut]:
        """The account's events, newest first, ``limit`` of them after the first ``offset``
        (the citizen's login history, page by page)."""
        with self.factory() as session:
            account = self._account(session, personal_id)
            if account is None:
                raise NotFound("no account for this number", "personal_id")
            rows = session.scalars(
                select(AccountEvent)
                .where(AccountEvent.account_id == account.id)
                .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
                .offset(max(offset, 0))
                .limit(limit)
            )
            return [_event_out(e) for e in rows]

    def profile(self, personal_id: str) -> PersonPublic:
        """What the register holds about the signed-in citizen (read-only for them; audited
        as the citizen's own read)."""
        ctx = OfficerContext(f"citizen:{personal_id[:4]}…", Role.MINISTRY, purpose="self-view")
        return self.registry.get_person(ctx, personal_id, purpose="self-view")

    # -- helpers --------------------------------------------------------------------------

    def _person(self, personal_id: str) -> PersonPublic:
        """The person as the register holds them today; an old number is refused, so that
        accounts always carry the current one."""
        try:
            person = self.registry.get_person(REGISTRY_CONTEXT, personal_id)
        except NotFound:
            raise refuse(
                Invalid, "unknown-person", "no person with this ID number", "personal_id"
            ) from None
        if person.personal_id != personal_id:
            raise refuse(
                Invalid,
                "replaced-number",
                "this number was replaced: use the number on your current card",
                "personal_id",
            )
        return person

    @staticmethod
    def _require_alive(person: PersonPublic) -> None:
        if person.status != "alive":
            raise refuse(
                Invalid,
                f"person-{person.status}",
                f"the register records this person as {person.status}",
                "personal_id",
            )

    def _registered(self, personal_id: str) -> PersonPublic | None:
        """The person as the register holds them (old numbers resolve), or None."""
        try:
            return self.registry.get_person(REGISTRY_CONTEXT, personal_id)
        except NotFound:
            return None

    def _residence_scope(self, person: PersonPublic) -> tuple[str, str]:
        """The province and commune codes (2025 scheme) of the permanent residence, or
        blanks when the register holds none."""
        for r in person.residences:
            if r.kind == "permanent" and r.valid_to is None:
                unit = self.registry.units.get(
                    r.current_unit.scheme, "commune", r.current_unit.code
                )
                if unit is not None:
                    return unit.province_code, unit.code
        return "", ""

    @staticmethod
    def _require_account_writer(ctx: OfficerContext) -> None:
        if not ctx.can_write:
            raise refuse(
                Forbidden,
                "officer-read-only",
                "your role may read electronic-identity accounts but not change them",
            )

    @staticmethod
    def _account(session: Session, personal_id: str, *, lock: bool = False) -> Account | None:
        stmt = select(Account).where(Account.personal_id == personal_id)
        return session.scalars(stmt.with_for_update() if lock else stmt).first()

    def _otp_hash(self, challenge_id: int, code: str) -> str:
        return hmac.new(self._otp_key, f"{challenge_id}:{code}".encode(), "sha256").hexdigest()

    def _new_challenge(
        self, session: Session, account: Account, purpose: str
    ) -> tuple[OtpChallenge, str]:
        """A fresh code; earlier unused codes of the account stop working."""
        now = utcnow()
        for old in session.scalars(
            select(OtpChallenge).where(
                OtpChallenge.account_id == account.id, OtpChallenge.used_at.is_(None)
            )
        ):
            old.used_at = now
        code = f"{secrets.randbelow(1_000_000):06d}"
        challenge = OtpChallenge(
            account_id=account.id,
            purpose=purpose,
            code_hash="",
            created_at=now,
            expires_at=now + OTP_TTL,
        )
        session.add(challenge)
        session.flush()
        challenge.code_hash = self._otp_hash(challenge.id, code)
        return challenge, code

    def _use_challenge(
        self, session: Session, challenge_id: int, code: str, purpose: str
    ) -> tuple[OtpChallenge, Account] | DancuError:
        """The challenge and its account, the code now used up; or the refusal (a wrong
        code is counted in the session, so the caller commits before raising it)."""
        challenge = session.scalars(
            select(OtpChallenge).where(OtpChallenge.id == challenge_id).with_for_update()
        ).first()
        if challenge is None or challenge.purpose != purpose or challenge.used_at is not None:
            return refuse(
                Invalid, "otp-used", "this code was used or replaced: ask for a new one", "code"
            )
        if challenge.expires_at <= utcnow():
            return refuse(Invalid, "otp-expired", "the code has expired: ask for a new one", "code")
        if challenge.attempts >= OTP_ATTEMPTS:
            return refuse(
                Invalid, "otp-exhausted", "too many wrong codes: ask for a new one", "code"
            )
        if not hmac.compare_digest(challenge.code_hash, self._otp_hash(challenge.id, code)):
            challenge.attempts += 1
            return refuse(Invalid, "otp-wrong", "the code is not right", "code")
        challenge.used_at = utcnow()
        account = session.get(Account, challenge.account_id)
        assert account is not None
        return challenge, account

    @staticmethod
    def _event(
        session: Session,
        account: Account,
        kind: str,
        detail: str = "",
        *,
        device: Device | None = None,
        seen: s.DeviceSeen | None = None,
        level: int | None = None,
        factors: Sequence[str] = (),
    ) -> None:
        """An account event; with the device it happened on (a recorded one, or what is
        known of an unrecorded one), and for sign-ins the level and factors used."""
        where = ""
        if device is not None:
            where = _device_text(device.label, device.ip_prefix)
        elif seen is not None:
            where = _device_text(describe_agent(seen.user_agent), mask_ip(seen.ip))
        session.add(
            AccountEvent(
                account_id=account.id,
                kind=kind,
                detail=detail[:200],
                device_id=device.id if device is not None else None,
                device=where[:140],
                level=level,
                factors=" ".join(factors),
            )
        )

    @staticmethod
    def _entry(action: str, account: Account, detail: str = "") -> Entry:
        citizen = Actor(f"citizen:{account.id}", "citizen", "", "identity")
        return Entry(citizen, action, f"account:{account.id}", detail)

    def _citizen_account(self, session: Session, personal_id: str, *, lock: bool = True) -> Account:
        """The signed-in citizen's account, which must be active."""
        account = self._account(session, personal_id, lock=lock)
        if account is None:
            raise NotFound("no account for this number", "personal_id")
        if account.status == "suspended":
            raise refuse(Forbidden, "suspended", "this account is suspended")
        if account.status != "active":
            raise refuse(Conflict, "account-inactive", "this account is not active")
        return account

    @staticmethod
    def _require_open(account: Account, now: datetime) -> None:
        """Refusals before any factor is checked: a suspended, inactive or locked account."""
        if account.status == "suspended":
            raise refuse(Forbidden, "suspended", "this account is suspended")
        if account.status != "active":
            raise _bad_credentials()
        if account.locked_until is not None and account.locked_until > now:
            raise _locked(account.locked_until)

    def _failed(
        self,
        session: Session,
        account: Account,
        now: datetime,
        failure: DancuError,
        seen: s.DeviceSeen | None,
        kind: str = "login.failed",
    ) -> DancuError:
        """Count a wrong passcode or code: past ``FREE_FAILURES`` the account locks, for
        twice as long with each further failure. Returns the refusal to raise after the
        commit."""
        account.failed_logins += 1
        over = account.failed_logins - FREE_FAILURES
        if over > 0:
            account.locked_until = now + min(FIRST_LOCK * 2 ** (over - 1), MAX_LOCK)
            self._event(session, account, "locked", f"until {account.locked_until:%H:%M}")
            failure = _locked(account.locked_until)
        known = self._known_device(session, account, seen)
        self._event(session, account, kind, device=known, seen=seen)
        return failure

    def _check_totp(
        self,
        session: Session,
        account: Account,
        code: str,
        now: datetime,
        seen: s.DeviceSeen | None,
    ) -> DancuError | None:
        """None when ``code`` is the app's for now (one step of drift either way) and its
        step is newer than the last accepted; else the counted refusal."""
        secret = self._open_totp(account)
        if secret is None:
            return refuse(
                Conflict,
                "totp-unavailable",
                "the authenticator app cannot be checked: ask the commune police to turn it off",
                "otp",
            )
        steps = _totp_steps(secret, code, now)
        fresh = [step for step in steps if step > account.totp_last_step]
        if fresh:
            account.totp_last_step = fresh[0]
            return None
        wrong = refuse(Forbidden, "otp-wrong", "the code is not right", "otp")
        if steps:  # the right code, but already used
            wrong = refuse(
                Forbidden,
                "otp-replayed",
                "this code was already used: wait for the next one",
                "otp",
            )
        return self._failed(session, account, now, wrong, seen, "totp.failed")

    def _open_totp(self, account: Account) -> str | None:
        if account.totp_secret is None:
            return None
        try:
            return self._totp_box.open(account.totp_secret).decode()
        except Unsealable:
            return None

    @staticmethod
    def _enrolment(account: Account, secret: str) -> s.TotpEnrolment:
        name = account.personal_id[:3] + "•" * 7 + account.personal_id[-2:]
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)
        return s.TotpEnrolment(secret=secret, uri=uri)

    def _ticket(self, account: Account, expires: int) -> str:
        """The passcode step's ticket: the account, when it expires, and a MAC that also
        covers the passcode hash and the enrolment, so a reset or a change voids it."""
        body = f"{account.id}.{expires}"
        bound = f"{body}|{account.passcode_hash}|{account.totp_enabled_at}|{account.totp_secret!r}"
        mac = hmac.new(self._ticket_key, bound.encode(), "sha256").hexdigest()
        return f"{body}.{mac}"

    def _signed_in(
        self,
        session: Session,
        account: Account,
        now: datetime,
        factors: list[str],
        seen: s.DeviceSeen | None,
    ) -> s.AccountOut:
        account.failed_logins, account.locked_until = 0, None
        row = self._see_device(session, account, now, seen)
        self._event(session, account, "login", device=row, level=account.level, factors=factors)
        return self._signed_in_out(account, factors, row)

    def _signed_in_out(
        self, account: Account, factors: list[str], device: Device | None
    ) -> s.AccountOut:
        out = self._account_out(account)
        out.factors, out.device_id = factors, device.id if device is not None else None
        return out

    @staticmethod
    def _own_device(session: Session, account: Account, device_id: int | None) -> Device | None:
        row = session.get(Device, device_id) if device_id is not None else None
        return row if row is not None and row.account_id == account.id else None

    @staticmethod
    def _known_device(
        session: Session, account: Account, seen: s.DeviceSeen | None
    ) -> Device | None:
        if seen is None:
            return None
        return session.scalars(
            select(Device).where(
                Device.account_id == account.id,
                Device.cookie_hash == cookie_digest(seen.cookie),
                Device.revoked_at.is_(None),
            )
        ).first()

    def _see_device(
        self, session: Session, account: Account, now: datetime, seen: s.DeviceSeen | None
    ) -> Device | None:
        """The device row of a sign-in, created on the first one from this device (or the
        first since it was revoked), its description and last-seen time brought up to date."""
        if seen is None:
            return None
        row = self._known_device(session, account, seen)
        if row is None:
            row = Device(
                account_id=account.id, cookie_hash=cookie_digest(seen.cookie), first_seen=now
            )
            session.add(row)
        row.label, row.ip_prefix, row.last_seen = (
            describe_agent(seen.user_agent),
            mask_ip(seen.ip),
            now,
        )
        session.flush()
        return row

    def _audit_refusal(self, personal_id: str, action: str) -> None:
        with write_session(self.factory) as session:
            actor = Actor("anonymous", "citizen", "", "identity-registration")
            record_change(session, Entry(actor, action, "person", f"id {personal_id[:4]}…"))

    @staticmethod
    def _challenge_out(challenge: OtpChallenge, account: Account) -> s.Challenge:
        return s.Challenge(
            challenge_id=challenge.id,
            phone_hint=mask_phone(account.phone),
            expires_at=challenge.expires_at,
        )

    @staticmethod
    def _account_out(account: Account) -> s.AccountOut:
        return s.AccountOut(
            personal_id=account.personal_id,
            level=account.level,
            status=account.status,
            phone_hint=mask_phone(account.phone),
            email=account.email,
            created_at=account.created_at,
            activated_at=account.activated_at,
            level2_at=account.level2_at,
            locked_until=account.locked_until,
            totp_since=account.totp_enabled_at,
        )


_SYSTEM_ACTOR = Actor("system", "system", "", "registry-events")
_OPERATOR_ACTOR = Actor("operator", "system", "", "identity-provisioning")
_WEAK = {"123456", "654321", "123123", "112233", "121212", "111222", "000000"}


def _require_strong(passcode: str) -> None:
    if (
        passcode in _WEAK
        or len(set(passcode)) == 1
        or passcode in "0123456789"
        or (passcode in "9876543210")
    ):
        raise refuse(
            Invalid,
            "weak-passcode",
            "choose a passcode that is not a simple run or repeat",
            "passcode",
        )


def _verify(hashed: str, passcode: str) -> bool:
    try:
        return PASSCODE_HASHER.verify(hashed, passcode)
    except (VerificationError, InvalidHashError):
        return False


def _bad_credentials() -> DancuError:
    return refuse(Forbidden, "bad-credentials", "the ID number or the passcode is not right")


def _locked(until: datetime) -> DancuError:
    return refuse(Locked, "locked", f"too many wrong passcodes: try again after {until:%H:%M} UTC")


def _ticket_expired() -> DancuError:
    return refuse(
        Forbidden, "otp-ticket-expired", "the sign-in has expired: enter your passcode again"
    )


def _no_account() -> DancuError:
    return refuse(NotFound, "no-account", "no account for this number", "personal_id")


def _number(personal_id: str) -> str:
    """The 12-digit number an officer typed, or a refusal naming the field."""
    try:
        return ids.parse(personal_id).number
    except ids.InvalidPersonalID:
        raise refuse(
            Invalid, "personal-id-invalid", "invalid personal ID number", "personal_id"
        ) from None


def _note(note: str, *, required: bool = False, limit: int = 200) -> str:
    """An officer's note, on one line."""
    note = " ".join(note.split())
    if required and not note:
        raise refuse(Invalid, "note-required", "write a note: what was checked, or why", "note")
    if len(note) > limit:
        raise refuse(Invalid, "note-too-long", "the note is too long", "note")
    return note


def _officer_detail(ctx: OfficerContext, *parts: str) -> str:
    """An account event's detail for an officer's action: what, and who where."""
    return " · ".join([p for p in parts if p] + [f"{ctx.username} ({ctx.unit_label})"])


def _subject(account: Account) -> str:
    return f"account:{account.id}"


def _require_reinstatable(account: Account) -> None:
    if account.status != "suspended":
        raise refuse(Conflict, "not-suspended", "the account is not suspended")
    if account.suspended_reason == DECEASED:
        raise refuse(
            Conflict,
            "suspended-deceased",
            "suspended because the register records a death: only a correction of the "
            "register undoes it",
        )
    if account.suspended_reason == MERGED:
        raise refuse(
            Conflict,
            "suspended-merged",
            "suspended because the register merged this record into another: only undoing "
            "the merge lifts it",
        )


def _revoke_tokens(session: Session, account: Account, now: datetime) -> None:
    """End what services hold for the account: refresh tokens are revoked (for good, so a
    later reinstatement does not bring them back) and access tokens issued in the last
    ``ACCESS_HORIZON`` go on the revocation list that userinfo checks."""
    since = now - ACCESS_HORIZON
    jtis: set[str] = set()
    for token in session.scalars(
        select(RefreshToken).where(
            RefreshToken.account_id == account.id,
            or_(RefreshToken.revoked_at.is_(None), RefreshToken.created_at >= since),
        )
    ):
        if token.revoked_at is None:
            token.revoked_at = now
        if token.access_jti and token.created_at >= since:
            jtis.add(token.access_jti)
    jtis.update(
        session.scalars(
            select(AuthorizationCode.access_jti).where(
                AuthorizationCode.account_id == account.id,
                AuthorizationCode.used_at >= since,
                AuthorizationCode.access_jti != "",
            )
        )
    )
    for jti in sorted(jtis):
        session.merge(RevokedToken(jti=jti, expires_at=now + ACCESS_HORIZON))


def _event_out(e: AccountEvent) -> s.AccountEventOut:
    return s.AccountEventOut(
        at=e.at,
        kind=e.kind,
        detail=e.detail,
        device=e.device,
        device_id=e.device_id,
        level=e.level,
        factors=e.factors.split(),
    )


def _open_ticket(ticket: str, now: datetime) -> tuple[int, int]:
    """The account id and expiry of a well-formed, unexpired ticket (the MAC is checked
    against the account by the caller)."""
    found = re.fullmatch(r"(\d{1,18})\.(\d{1,12})\.[0-9a-f]{64}", ticket)
    if not found or int(found[2]) < now.timestamp():
        raise _ticket_expired()
    return int(found[1]), int(found[2])


def _totp_steps(secret: str, code: str, now: datetime) -> list[int]:
    """The time steps, around now, whose code is ``code`` (oldest first)."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    return [
        step
        for step in range(current - TOTP_DRIFT, current + TOTP_DRIFT + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]


def _device_text(label: str, network: str) -> str:
    return " · ".join(part for part in (label, network) if part)


def _current_value(person: PersonPublic, field: str) -> str:
    """What the register holds for a correctable field, as the citizen sees it."""
    if field == "full_name":
        return person.full_name
    if field == "birth_date":
        return person.birth_date.strftime("%d/%m/%Y")
    if field == "sex":
        return person.sex
    if field == "permanent_address":
        for r in person.residences:
            if r.kind == "permanent":
                return ", ".join(p for p in (r.address_line, r.current_unit.label) if p)
    return ""


def _correction_out(row: CorrectionRequest) -> s.CorrectionOut:
    return s.CorrectionOut(
        id=row.id,
        field=row.field,
        current_value=row.current_value,
        proposed=row.proposed,
        reason=row.reason,
        status=row.status,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolution_note=row.resolution_note,
    )


def _age(birth: date, on: date | None = None) -> int:
    on = on or today()
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
