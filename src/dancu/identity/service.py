"""Identity use cases: level-1 self-registration, phone confirmation, passcode sign-in with
lockout, passcode reset, level-2 activation by an officer, suspension (Decree 69/2024).

Every refusal is a ``DancuError`` with a stable code (``face-mismatch``, ``too-young``,
``locked``…) and, where an input is at fault, the field, so clients can tell the citizen
exactly what to do. Changes are audited in the same transaction; sign-ins and failures are
kept as account events (the citizen's login history).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Actor, Entry, record_change
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid, NotFound
from dancu.core.timeutil import today, utcnow
from dancu.identity import schemas as s
from dancu.identity.models import Account, AccountEvent, OtpChallenge
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

E = TypeVar("E", bound=DancuError)


def refuse(kind: type[E], code: str, message: str, field: str | None = None) -> E:
    """A domain error with a specific, stable code."""
    error = kind(message, field)
    error.code = code
    return error


class Locked(DancuError):
    status = 429
    code = "locked"


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
        if self.faces.similarity(data.selfie, portrait) < self.face_threshold:
            self._audit_refusal(person.personal_id, "identity.face_mismatch")
            raise refuse(
                Invalid,
                "face-mismatch",
                "the face in the photo does not match the portrait on record",
                "selfie",
            )
        with self.factory() as session, session.begin():
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

    def confirm_registration(self, data: s.Confirmation) -> s.AccountOut:
        """The code from the SMS confirms the phone; the chosen passcode activates level 1."""
        _require_strong(data.passcode)
        with self.factory() as session, session.begin():
            found = self._use_challenge(session, data.challenge_id, data.code, "register")
            if not isinstance(found, DancuError):
                _challenge, account = found
                account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.status, account.activated_at = "active", utcnow()
                self._event(session, account, "registration.completed")
                record_change(session, self._entry("identity.activate", account))
                return self._account_out(account)
        raise found  # after the commit: a wrong code counts although the call fails

    # -- sign-in --------------------------------------------------------------------------

    def login(self, data: s.Login) -> s.AccountOut:
        """Passcode sign-in. A wrong passcode and an unknown number get the same answer.
        After ``FREE_FAILURES`` failures the account locks for 5 minutes, doubling with each
        further failure; a success clears the count."""
        now = utcnow()
        with self.factory() as session, session.begin():
            account = self._account(session, data.personal_id, lock=True)
            if account is None or account.passcode_hash is None:
                _verify(_DUMMY_HASH, data.passcode)  # the same time as a real check
                raise _bad_credentials()
            if account.status == "suspended":
                raise refuse(Forbidden, "suspended", "this account is suspended")
            if account.status != "active":
                raise _bad_credentials()
            if account.locked_until is not None and account.locked_until > now:
                raise _locked(account.locked_until)
            if not _verify(account.passcode_hash, data.passcode):
                account.failed_logins += 1
                over = account.failed_logins - FREE_FAILURES
                failure = _bad_credentials()
                if over > 0:
                    account.locked_until = now + min(FIRST_LOCK * 2 ** (over - 1), MAX_LOCK)
                    self._event(session, account, "locked", f"until {account.locked_until:%H:%M}")
                    failure = _locked(account.locked_until)
                self._event(session, account, "login.failed")
            else:
                if PASSCODE_HASHER.check_needs_rehash(account.passcode_hash):
                    account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.failed_logins, account.locked_until = 0, None
                self._event(session, account, "login")
                return self._account_out(account)
        raise failure  # after the commit: the failure counts although the call fails

    # -- passcode reset -------------------------------------------------------------------

    def start_reset(self, data: s.ResetRequest) -> s.Challenge | None:
        """Text a code to the phone on file when it is the one given. The caller answers the
        same whether or not a code was sent (no probing for accounts or phones)."""
        with self.factory() as session, session.begin():
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
        with self.factory() as session, session.begin():
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
        with self.factory() as session, session.begin():
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
        with self.factory() as session, session.begin():
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
        """Suspend the person's account (a death, a report); True when one was suspended."""
        with self.factory() as session, session.begin():
            account = self._account(session, personal_id)
            if account is None or account.status in ("suspended", "closed"):
                return False
            account.status, account.suspended_reason = "suspended", reason[:60]
            self._event(session, account, "suspended", reason)
            record_change(session, Entry(actor, "identity.suspend", f"account:{account.id}"))
            return True

    def on_registry_event(self, topic: str, payload: dict[str, object]) -> None:
        """Consumer of the register's events: a death suspends the account."""
        if topic == "registry.person.died":
            self.suspend(str(payload["personal_id"]), "deceased", _SYSTEM_ACTOR)

    # -- reads ----------------------------------------------------------------------------

    def account(self, personal_id: str) -> s.AccountOut:
        with self.factory() as session:
            account = self._account(session, personal_id)
            if account is None:
                raise NotFound("no account for this number", "personal_id")
            return self._account_out(account)

    def history(self, personal_id: str, limit: int = 50) -> list[s.AccountEventOut]:
        """The account's latest events, newest first (the citizen's login history)."""
        with self.factory() as session:
            account = self._account(session, personal_id)
            if account is None:
                raise NotFound("no account for this number", "personal_id")
            rows = session.scalars(
                select(AccountEvent)
                .where(AccountEvent.account_id == account.id)
                .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
                .limit(limit)
            )
            return [s.AccountEventOut(at=e.at, kind=e.kind, detail=e.detail) for e in rows]

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
    def _event(session: Session, account: Account, kind: str, detail: str = "") -> None:
        session.add(AccountEvent(account_id=account.id, kind=kind, detail=detail[:200]))

    @staticmethod
    def _entry(action: str, account: Account) -> Entry:
        citizen = Actor(f"citizen:{account.id}", "citizen", "", "identity")
        return Entry(citizen, action, f"account:{account.id}")

    def _audit_refusal(self, personal_id: str, action: str) -> None:
        with self.factory() as session, session.begin():
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


def _age(birth: date, on: date | None = None) -> int:
    on = on or today()
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
