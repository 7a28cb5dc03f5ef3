"""Signing in and getting back in: passcode sign-in with lockout, the authenticator app's code
as second step (with a short-lived ticket from the passcode step), and the passcode reset by
a code texted to the phone on file. Sign-ins and failures are kept as account events (the
citizen's login history).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import record_change
from dancu.core.db import write_session
from dancu.core.errors import DancuError, Forbidden
from dancu.core.timeutil import utcnow
from dancu.identity import schemas as s
from dancu.identity.models import Account
from dancu.identity.ports import SmsSender
from dancu.identity.usecases.factors import Totp, totp_code
from dancu.identity.usecases.shared import (
    DUMMY_HASH,
    OTP_ATTEMPTS,
    OTP_TTL,
    PASSCODE_HASHER,
    Challenges,
    account_out,
    add_event,
    bad_credentials,
    challenge_out,
    citizen_entry,
    code_exhausted,
    code_expired,
    code_wrong,
    count_failure,
    find_account,
    refuse,
    require_open,
    require_strong,
    see_device,
    signed_in_out,
    verify_passcode,
)

# After a right passcode the ticket for the code step lasts 5 minutes.
TICKET_TTL = timedelta(minutes=5)


class SecondFactorRequired(DancuError):
    """The passcode was right and the account has an authenticator app: the sign-in goes on
    with ``login_otp(ticket, code)``. Callers that do not know the step fail safe."""

    status = 401
    code = "otp-required"
    ticket = ""


class SignIn:
    def __init__(
        self,
        factory: sessionmaker[Session],
        challenges: Challenges,
        totp: Totp,
        *,
        secret_key: str,
        sms: SmsSender,
    ) -> None:
        self.factory, self.challenges, self.totp = factory, challenges, totp
        self.sms = sms
        self._ticket_key = hashlib.sha256(b"dancu.identity-mfa:" + secret_key.encode()).digest()

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
            account = find_account(session, data.personal_id, lock=True)
            if account is None or account.passcode_hash is None:
                verify_passcode(DUMMY_HASH, data.passcode)  # the same time as a real check
                raise bad_credentials()
            require_open(account, now)
            if not verify_passcode(account.passcode_hash, data.passcode):
                failure = count_failure(session, account, now, bad_credentials(), device)
            else:
                if PASSCODE_HASHER.check_needs_rehash(account.passcode_hash):
                    account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                if account.totp_enabled_at is None:
                    return _signed_in(session, account, now, ["pwd"], device)
                if not data.otp:
                    failure = refuse(
                        SecondFactorRequired,
                        "otp-required",
                        "enter the 6-digit code from your authenticator app",
                        "otp",
                    )
                    failure.ticket = self._ticket(account, int((now + TICKET_TTL).timestamp()))
                else:
                    wrong = self.totp.check(session, account, data.otp, now, device)
                    if wrong is None:
                        return _signed_in(session, account, now, ["pwd", "otp"], device)
                    failure = wrong
        raise failure  # after the commit: the failure counts although the call fails

    def login_otp(self, ticket: str, code: str, device: s.DeviceSeen | None = None) -> s.AccountOut:
        """The second step of a sign-in: the authenticator app's code, with the ticket the
        passcode step gave (valid 5 minutes, and only while the passcode and the enrolment
        are those it was given for). A code is accepted for the current 30-second step or
        one either side, and never twice; wrong codes count towards the lockout."""
        code = totp_code(code, "otp")
        now = utcnow()
        account_id, expires = _open_ticket(ticket, now)
        with write_session(self.factory) as session:
            account = session.get(Account, account_id, with_for_update=True)
            if account is None or not hmac.compare_digest(ticket, self._ticket(account, expires)):
                raise _ticket_expired()
            require_open(account, now)
            failure = self.totp.check(session, account, code, now, device)
            if failure is None:
                return _signed_in(session, account, now, ["pwd", "otp"], device)
        raise failure

    def _ticket(self, account: Account, expires: int) -> str:
        """The passcode step's ticket: the account, when it expires, and a MAC that also
        covers the passcode hash and the enrolment, so a reset or a change voids it."""
        body = f"{account.id}.{expires}"
        bound = f"{body}|{account.passcode_hash}|{account.totp_enabled_at}|{account.totp_secret!r}"
        mac = hmac.new(self._ticket_key, bound.encode(), "sha256").hexdigest()
        return f"{body}.{mac}"

    # -- passcode reset -------------------------------------------------------------------

    def start_reset(self, data: s.ResetRequest) -> s.Challenge | None:
        """Text a code to the phone on file when it is the one given. The caller answers the
        same whether or not a code was sent (no probing for accounts or phones)."""
        with write_session(self.factory) as session:
            account = find_account(session, data.personal_id)
            if account is None or account.status not in ("active", "pending"):
                return None
            if not hmac.compare_digest(account.phone, data.phone):
                add_event(session, account, "reset.refused", "another phone")
                return None
            challenge, code = self.challenges.new(session, account, "reset")
            add_event(session, account, "reset.started")
            out = challenge_out(challenge, account)
        self.sms.send(data.phone, f"dancu: ma dat lai mat khau {code} (hieu luc 5 phut)")
        return out

    def finish_reset(self, data: s.Confirmation) -> s.AccountOut:
        require_strong(data.passcode)
        with write_session(self.factory) as session:
            found = self.challenges.use(session, data.challenge_id, data.code, "reset")
            if not isinstance(found, DancuError):
                _challenge, account = found
                account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.failed_logins, account.locked_until = 0, None
                if account.status == "pending":
                    account.status, account.activated_at = "active", utcnow()
                add_event(session, account, "passcode.reset")
                record_change(session, citizen_entry("identity.passcode_reset", account))
                return account_out(account)
        raise found


def refuse_unsent_reset(data: s.Confirmation, tries: int, started: float) -> NoReturn:
    """Answer the code of a reset for which no code was sent (no such account, or not
    its phone) as a wrong code would be answered, so the pages tell nothing apart:
    ``tries`` wrong codes so far, the reset asked for at ``started`` (epoch seconds)."""
    require_strong(data.passcode)
    if time.time() - started > OTP_TTL.total_seconds():
        raise code_expired()
    if tries >= OTP_ATTEMPTS:
        raise code_exhausted()
    raise code_wrong()


def _signed_in(
    session: Session,
    account: Account,
    now: datetime,
    factors: list[str],
    seen: s.DeviceSeen | None,
) -> s.AccountOut:
    account.failed_logins, account.locked_until = 0, None
    row = see_device(session, account, now, seen)
    add_event(session, account, "login", device=row, level=account.level, factors=factors)
    return signed_in_out(account, factors, row)


def _ticket_expired() -> DancuError:
    return refuse(
        Forbidden, "otp-ticket-expired", "the sign-in has expired: enter your passcode again"
    )


def _open_ticket(ticket: str, now: datetime) -> tuple[int, int]:
    """The account id and expiry of a well-formed, unexpired ticket (the MAC is checked
    against the account by the caller)."""
    found = re.fullmatch(r"(\d{1,18})\.(\d{1,12})\.[0-9a-f]{64}", ticket)
    if not found or int(found[2]) < now.timestamp():
        raise _ticket_expired()
    return int(found[1]), int(found[2])
