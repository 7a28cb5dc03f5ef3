"""The citizen's factors and devices: an optional authenticator app (TOTP, RFC 6238) as second
factor, its secret sealed at rest, set up by a first right code and removed with the
passcode; the devices signed in with, their revocation, and whether a session may go on.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import record_change
from dancu.core.db import write_session
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid
from dancu.core.sealing import Sealer, Unsealable
from dancu.core.timeutil import utcnow
from dancu.identity import schemas as s
from dancu.identity.models import Account, Device
from dancu.identity.usecases.shared import (
    account_out,
    add_event,
    citizen_account,
    citizen_entry,
    clear_second_factor,
    code_wrong,
    count_failure,
    refuse,
    require_open,
    verify_passcode,
)

# TOTP: 6 digits, 30-second steps, a step of clock drift either way; the issuer names the
# account in the authenticator app. A device's last-seen time is refreshed at most every
# 15 minutes.
TOTP_ISSUER = "dancu"
TOTP_DRIFT = 1
SEEN_EVERY = timedelta(minutes=15)


def totp_code(code: str, field: str) -> str:
    """The code as typed, without spaces; refused unless it has 6 digits."""
    code = code.strip().replace(" ", "")
    if not re.fullmatch(r"\d{6}", code):
        raise refuse(Invalid, "otp-format", "the code has 6 digits", field)
    return code


class Totp:
    """The accounts' authenticator-app secrets, sealed at rest, and the check of a code."""

    def __init__(self, secret_key: str) -> None:
        self._box = Sealer(secret_key, "identity-totp")

    def seal(self, secret: str) -> bytes:
        return self._box.seal(secret.encode())

    def open(self, account: Account) -> str | None:
        if account.totp_secret is None:
            return None
        try:
            return self._box.open(account.totp_secret).decode()
        except Unsealable:
            return None

    def check(
        self,
        session: Session,
        account: Account,
        code: str,
        now: datetime,
        seen: s.DeviceSeen | None,
    ) -> DancuError | None:
        """None when ``code`` is the app's for now (one step of drift either way) and its
        step is newer than the last accepted; else the counted refusal."""
        secret = self.open(account)
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
        return count_failure(session, account, now, wrong, seen, "totp.failed")


class Factors:
    def __init__(self, factory: sessionmaker[Session], totp: Totp) -> None:
        self.factory, self.totp = factory, totp

    # -- the authenticator app (TOTP) -----------------------------------------------------

    def start_totp(self, personal_id: str) -> s.TotpEnrolment:
        """A new secret for the citizen's authenticator app, kept sealed; it takes effect
        when ``confirm_totp`` receives a first right code."""
        with write_session(self.factory) as session:
            account = citizen_account(session, personal_id)
            _require_no_app(account)
            secret = pyotp.random_base32()
            account.totp_secret = self.totp.seal(secret)
            account.totp_last_step = 0
            return _enrolment(account, secret)

    def totp_enrolment(self, personal_id: str) -> s.TotpEnrolment | None:
        """The enrolment waiting for its first code, if any."""
        with self.factory() as session:
            account = citizen_account(session, personal_id, lock=False)
            if account.totp_enabled_at is not None:
                return None
            secret = self.totp.open(account)
            return None if secret is None else _enrolment(account, secret)

    def confirm_totp(
        self, personal_id: str, code: str, device_id: int | None = None
    ) -> s.AccountOut:
        """A right code from the app turns the second factor on (``device_id``: the device
        of the session doing it, for the history)."""
        code = totp_code(code, "code")
        now = utcnow()
        with write_session(self.factory) as session:
            account = citizen_account(session, personal_id)
            _require_no_app(account)
            secret = self.totp.open(account)
            if secret is None:
                raise refuse(
                    Invalid,
                    "totp-not-started",
                    "the setup has expired: start again",
                    "code",
                )
            steps = _totp_steps(secret, code, now)
            if not steps:
                raise code_wrong()
            account.totp_enabled_at, account.totp_last_step = now, max(steps)
            where = _own_device(session, account, device_id)
            add_event(session, account, "totp.enrolled", device=where)
            record_change(session, citizen_entry("identity.totp_enrol", account))
            return account_out(account)

    def remove_totp(
        self, personal_id: str, passcode: str, device_id: int | None = None
    ) -> s.AccountOut:
        """Turn the second factor off; the passcode is needed (a wrong one counts towards
        the lockout like at sign-in)."""
        now = utcnow()
        with write_session(self.factory) as session:
            account = citizen_account(session, personal_id)
            require_open(account, now)
            if account.totp_enabled_at is None:
                raise refuse(Conflict, "totp-absent", "no authenticator app is set up")
            if account.passcode_hash is None or not verify_passcode(
                account.passcode_hash, passcode
            ):
                wrong = refuse(Forbidden, "wrong-passcode", "the passcode is not right", "passcode")
                failure = count_failure(session, account, now, wrong, None)
            else:
                clear_second_factor(account)
                where = _own_device(session, account, device_id)
                add_event(session, account, "totp.removed", device=where)
                record_change(session, citizen_entry("identity.totp_remove", account))
                return account_out(account)
        raise failure

    # -- devices --------------------------------------------------------------------------

    def devices(self, personal_id: str) -> list[s.DeviceOut]:
        """The devices the citizen is signed in with or was, last used first (revoked ones
        are forgotten)."""
        with self.factory() as session:
            account = citizen_account(session, personal_id, lock=False)
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
            account = citizen_account(session, personal_id)
            row = session.get(Device, device_id, with_for_update=True)
            if row is None or row.account_id != account.id or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            add_event(session, account, "device.revoked", row.label, device=row)
            record_change(
                session, citizen_entry("identity.device_revoke", account, f"device:{row.id}")
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


def _require_no_app(account: Account) -> None:
    if account.totp_enabled_at is not None:
        raise refuse(
            Conflict,
            "totp-enrolled",
            "an authenticator app is already set up: remove it first",
        )


def _enrolment(account: Account, secret: str) -> s.TotpEnrolment:
    name = account.personal_id[:3] + "•" * 7 + account.personal_id[-2:]
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)
    return s.TotpEnrolment(secret=secret, uri=uri)


def _own_device(session: Session, account: Account, device_id: int | None) -> Device | None:
    row = session.get(Device, device_id) if device_id is not None else None
    return row if row is not None and row.account_id == account.id else None


def _totp_steps(secret: str, code: str, now: datetime) -> list[int]:
    """The time steps, around now, whose code is ``code`` (oldest first)."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    return [
        step
        for step in range(current - TOTP_DRIFT, current + TOTP_DRIFT + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]
