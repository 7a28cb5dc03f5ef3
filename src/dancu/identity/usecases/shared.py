"""What the identity use cases share: the refusals with stable codes, the passcode hasher and
lockout, the register as identity sees it, the one-time codes sent by SMS, the account
lookups, the account events (the citizen's login history) and the devices signed in with.

Every refusal is a ``DancuError`` with a stable code and, where an input is at fault, the
field, so clients can tell the citizen exactly what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar, cast, overload

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Actor, Entry
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid, NotFound
from dancu.core.passwords import argon2id, verify
from dancu.core.timeutil import today, utcnow
from dancu.identity import schemas as s
from dancu.identity.devices import cookie_digest, describe_agent, mask_ip
from dancu.identity.models import Account, AccountEvent, Device, OtpChallenge
from dancu.identity.ports import mask_phone
from dancu.registry.schemas import PersonPublic
from dancu.registry.service import RegistryService

# Argon2id for 6-digit passcodes: OWASP's minimum (19 MiB, 2 passes, 1 lane) costs ~25 ms of
# one core here. A passcode has only a million values, so the hash alone cannot stop an
# offline attack on a stolen database; what protects it is the lockout below and keeping
# the hashes out of reach. The cost is kept low enough that a login stays far under 100 ms.
PASSCODE_HASHER = argon2id()
DUMMY_HASH = PASSCODE_HASHER.hash("000000")

FREE_FAILURES = 4  # failures before the first lockout
FIRST_LOCK = timedelta(minutes=5)  # then 5, 10, 20 … minutes, at most a day
MAX_LOCK = timedelta(hours=24)
OTP_TTL = timedelta(minutes=5)
OTP_ATTEMPTS = 5
REGISTRY_CONTEXT = OfficerContext("identity", Role.MINISTRY, purpose="identity-verification")
# Why an account is suspended without an officer: a death ("deceased"), or the register
# merged the person's record into another (a duplicate): the number now answers as the
# surviving record, so its account is suspended until the merge is undone; the citizen
# signs in with the surviving record's number (docs/merge.md).
DECEASED = "deceased"
MERGED = "merged"

E = TypeVar("E", bound=DancuError)
T = TypeVar("T")


class Forwarded(Generic[T]):
    """A facade's attribute that lives on its use cases: read from the first named, and a
    new value set on every one of them (so a swapped port reaches all that use it)."""

    def __init__(self, *holders: str) -> None:
        self.holders = holders
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Forwarded[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Forwarded[T] | T:
        if obj is None:
            return self
        return cast(T, getattr(getattr(obj, self.holders[0]), self.name))

    def __set__(self, obj: object, value: T) -> None:
        for holder in self.holders:
            setattr(getattr(obj, holder), self.name, value)


def refuse(kind: type[E], code: str, message: str, field: str | None = None) -> E:
    """A domain error with a specific, stable code."""
    error = kind(message, field)
    error.code = code
    return error


class Locked(DancuError):
    status = 429
    code = "locked"


def bad_credentials() -> DancuError:
    return refuse(Forbidden, "bad-credentials", "the ID number or the passcode is not right")


def locked(until: datetime) -> DancuError:
    return refuse(Locked, "locked", f"too many wrong passcodes: try again after {until:%H:%M} UTC")


def missing_account() -> DancuError:
    """The citizen's own number has no account."""
    return NotFound("no account for this number", "personal_id")


def code_expired() -> DancuError:
    return refuse(Invalid, "otp-expired", "the code has expired: ask for a new one", "code")


def code_exhausted() -> DancuError:
    return refuse(Invalid, "otp-exhausted", "too many wrong codes: ask for a new one", "code")


def code_wrong(field: str = "code") -> DancuError:
    return refuse(Invalid, "otp-wrong", "the code is not right", field)


# -- passcodes --------------------------------------------------------------------------

_WEAK = {"123456", "654321", "123123", "112233", "121212", "111222", "000000"}


def require_strong(passcode: str) -> None:
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


def verify_passcode(hashed: str, passcode: str) -> bool:
    return verify(PASSCODE_HASHER, hashed, passcode)


# -- the register -----------------------------------------------------------------------


class People:
    """The people of the register, as the identity use cases look them up."""

    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry

    def person(self, personal_id: str) -> PersonPublic:
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

    def registered(self, personal_id: str) -> PersonPublic | None:
        """The person as the register holds them (old numbers resolve), or None."""
        try:
            return self.registry.get_person(REGISTRY_CONTEXT, personal_id)
        except NotFound:
            return None


class PeopleUseCase:
    """A use case over the accounts and the people of the register they belong to."""

    def __init__(self, factory: sessionmaker[Session], people: People) -> None:
        self.factory, self.people = factory, people


def require_alive(person: PersonPublic) -> None:
    if person.status != "alive":
        raise refuse(
            Invalid,
            f"person-{person.status}",
            f"the register records this person as {person.status}",
            "personal_id",
        )


def age(birth: date, on: date | None = None) -> int:
    on = on or today()
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# -- accounts ---------------------------------------------------------------------------


def find_account(session: Session, personal_id: str, *, lock: bool = False) -> Account | None:
    stmt = select(Account).where(Account.personal_id == personal_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def citizen_account(session: Session, personal_id: str, *, lock: bool = True) -> Account:
    """The signed-in citizen's account, which must be active."""
    account = find_account(session, personal_id, lock=lock)
    if account is None:
        raise missing_account()
    if account.status == "suspended":
        raise refuse(Forbidden, "suspended", "this account is suspended")
    if account.status != "active":
        raise refuse(Conflict, "account-inactive", "this account is not active")
    return account


def require_open(account: Account, now: datetime) -> None:
    """Refusals before any factor is checked: a suspended, inactive or locked account."""
    if account.status == "suspended":
        raise refuse(Forbidden, "suspended", "this account is suspended")
    if account.status != "active":
        raise bad_credentials()
    if account.locked_until is not None and account.locked_until > now:
        raise locked(account.locked_until)


def count_failure(
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
        add_event(session, account, "locked", f"until {account.locked_until:%H:%M}")
        failure = locked(account.locked_until)
    known = known_device(session, account, seen)
    add_event(session, account, kind, device=known, seen=seen)
    return failure


def clear_second_factor(account: Account) -> None:
    """Turn the authenticator app off; the lockout count goes with it."""
    account.totp_secret, account.totp_enabled_at = None, None
    account.totp_last_step = 0
    account.failed_logins, account.locked_until = 0, None


def add_event(
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


def _device_text(label: str, network: str) -> str:
    return " · ".join(part for part in (label, network) if part)


def subject(account: Account) -> str:
    return f"account:{account.id}"


def citizen_entry(action: str, account: Account, detail: str = "") -> Entry:
    """The audit entry of a change the citizen made to their own account."""
    citizen = Actor(f"citizen:{account.id}", "citizen", "", "identity")
    return Entry(citizen, action, subject(account), detail)


def account_out(account: Account) -> s.AccountOut:
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


def event_out(e: AccountEvent) -> s.AccountEventOut:
    return s.AccountEventOut(
        at=e.at,
        kind=e.kind,
        detail=e.detail,
        device=e.device,
        device_id=e.device_id,
        level=e.level,
        factors=e.factors.split(),
    )


# -- devices ----------------------------------------------------------------------------


def known_device(session: Session, account: Account, seen: s.DeviceSeen | None) -> Device | None:
    if seen is None:
        return None
    return session.scalars(
        select(Device).where(
            Device.account_id == account.id,
            Device.cookie_hash == cookie_digest(seen.cookie),
            Device.revoked_at.is_(None),
        )
    ).first()


def see_device(
    session: Session, account: Account, now: datetime, seen: s.DeviceSeen | None
) -> Device | None:
    """The device row of a sign-in, created on the first one from this device (or the
    first since it was revoked), its description and last-seen time brought up to date."""
    if seen is None:
        return None
    row = known_device(session, account, seen)
    if row is None:
        row = Device(account_id=account.id, cookie_hash=cookie_digest(seen.cookie), first_seen=now)
        session.add(row)
    row.label, row.ip_prefix, row.last_seen = (
        describe_agent(seen.user_agent),
        mask_ip(seen.ip),
        now,
    )
    session.flush()
    return row


def signed_in_out(account: Account, factors: list[str], device: Device | None) -> s.AccountOut:
    out = account_out(account)
    out.factors, out.device_id = factors, device.id if device is not None else None
    return out


# -- one-time codes by SMS --------------------------------------------------------------


class Challenges:
    """The 6-digit codes texted to the phone (registration, passcode reset), kept as MACs."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"dancu.identity-otp:" + secret_key.encode()).digest()

    def _hash(self, challenge_id: int, code: str) -> str:
        return hmac.new(self._key, f"{challenge_id}:{code}".encode(), "sha256").hexdigest()

    def new(self, session: Session, account: Account, purpose: str) -> tuple[OtpChallenge, str]:
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
        challenge.code_hash = self._hash(challenge.id, code)
        return challenge, code

    def use(
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
            return code_expired()
        if challenge.attempts >= OTP_ATTEMPTS:
            return code_exhausted()
        if not hmac.compare_digest(challenge.code_hash, self._hash(challenge.id, code)):
            challenge.attempts += 1
            return code_wrong()
        challenge.used_at = utcnow()
        account = session.get(Account, challenge.account_id)
        assert account is not None
        return challenge, account


def challenge_out(challenge: OtpChallenge, account: Account) -> s.Challenge:
    return s.Challenge(
        challenge_id=challenge.id,
        phone_hint=mask_phone(account.phone),
        expires_at=challenge.expires_at,
    )


# -- officers ---------------------------------------------------------------------------


def require_account_writer(ctx: OfficerContext) -> None:
    if not ctx.can_write:
        raise refuse(
            Forbidden,
            "officer-read-only",
            "your role may read electronic-identity accounts but not change them",
        )


def officer_note(note: str, *, required: bool = False, limit: int = 200) -> str:
    """An officer's note, on one line."""
    note = " ".join(note.split())
    if required and not note:
        raise refuse(Invalid, "note-required", "write a note: what was checked, or why", "note")
    if len(note) > limit:
        raise refuse(Invalid, "note-too-long", "the note is too long", "note")
    return note
