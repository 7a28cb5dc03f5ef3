"""The officers' side of accounts: the account's state, suspension on a report (Decree
69/2024) and reinstatement, turning off a lost authenticator app; and the suspension itself,
which the register's events also cause (a death, a merge of records).

Like level 2, these are done at any commune police whatever the citizen's residence;
province officers read only; ministry administrators do everything. Correction requests, in
contrast, belong to the commune of permanent residence (``usecases.corrections``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.audit import Actor, Entry, record_change
from dancu.core.db import insert_or_skip, write_session
from dancu.core.errors import Conflict, DancuError, Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.identity import schemas as s
from dancu.identity.models import (
    Account,
    AccountEvent,
    AuthorizationCode,
    Device,
    RefreshToken,
    RevokedToken,
)
from dancu.identity.usecases.shared import (
    DECEASED,
    MERGED,
    PeopleUseCase,
    account_out,
    add_event,
    clear_second_factor,
    event_out,
    find_account,
    officer_note,
    refuse,
    require_account_writer,
    subject,
)

# Why officers suspend an account (a death does it by itself: "deceased"); how long an
# access token may still be in use when its account is suspended (they live 10 minutes; the
# revocation list keeps them an hour to be safe); how many events they see.
SUSPENSION_REASONS = ("reported-lost-card", "reported-fraud", "citizen-request", "court-order")
ACCESS_HORIZON = timedelta(hours=1)
OFFICER_EVENTS = 20


class OfficerActions(PeopleUseCase):
    def officer_view(self, ctx: OfficerContext, personal_id: str) -> s.OfficerAccountView:
        """The account's state for an officer: level, status and why it is suspended, the
        authenticator app, the devices signed in, the latest events, and who it belongs to
        in the register. Audited as the officer's read."""
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = _officer_account(session, number)
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
                account=account_out(account),
                suspended_reason=account.suspended_reason,
                level2_unit=account.level2_unit,
                devices=int(devices or 0),
                events=[event_out(e) for e in rows],
            )
            record_change(session, _officer_entry(ctx, "identity.account_read", account))
        person = self.people.registered(number)
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
        require_account_writer(ctx)
        if reason not in SUSPENSION_REASONS:
            raise refuse(Invalid, "suspension-reason", "choose one of the reasons", "reason")
        note = officer_note(note)
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = _officer_account(session, number, lock=True)
            if account.status == "suspended":
                raise refuse(Conflict, "already-suspended", "the account is already suspended")
            if account.status == "closed":
                raise refuse(Conflict, "account-closed", "the account is closed")
            _suspend(session, account, reason, _officer_detail(ctx, reason, note))
            detail = f"reason:{reason} note:{note}"
            record_change(session, _officer_entry(ctx, "identity.suspend", account, detail))
            return account_out(account)

    def reinstate(self, ctx: OfficerContext, personal_id: str, note: str) -> s.AccountOut:
        """Lift a suspension, with a note saying why. Never one for a death (only a
        correction of the register undoes a death), nor for a person the register does not
        hold as alive. The citizen signs in again: earlier sessions and tokens stay ended."""
        require_account_writer(ctx)
        note = officer_note(note, required=True)
        number = _number(personal_id)
        with self.factory() as session:
            _require_reinstatable(_officer_account(session, number))
        person = self.people.registered(number)
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
            account = find_account(session, number, lock=True)
            assert account is not None
            _require_reinstatable(account)
            reason = account.suspended_reason
            lift_suspension(session, account, _officer_detail(ctx, reason, note))
            detail = f"was:{reason} note:{note}"
            record_change(session, _officer_entry(ctx, "identity.reinstate", account, detail))
            return account_out(account)

    def reset_second_factor(
        self, ctx: OfficerContext, personal_id: str, note: str = ""
    ) -> s.AccountOut:
        """Turn the authenticator app off for a citizen who lost the phone, after the officer
        checked the citizen's card in person: sign-in then asks for the passcode only. The
        lockout count is cleared and every device is signed out (the lost phone may be one)."""
        require_account_writer(ctx)
        note = officer_note(note)
        number = _number(personal_id)
        with write_session(self.factory) as session:
            account = _officer_account(session, number, lock=True)
            if account.totp_enabled_at is None:
                raise refuse(Conflict, "totp-absent", "no authenticator app is set up")
            clear_second_factor(account)
            _sign_out_devices(session, account, utcnow())
            add_event(session, account, "totp.reset", _officer_detail(ctx, note))
            record_change(
                session, _officer_entry(ctx, "identity.totp_reset", account, f"note:{note}")
            )
            return account_out(account)

    # -- suspension -----------------------------------------------------------------------

    def suspend(self, personal_id: str, reason: str, actor: Actor) -> bool:
        """Suspend the person's account (a death, a report); True when one was suspended.
        A death also takes over an earlier suspension's reason: only a correction of the
        register undoes it."""
        with write_session(self.factory) as session:
            account = find_account(session, personal_id, lock=True)
            if account is None or account.status == "closed":
                return False
            if account.status == "suspended" and (
                account.suspended_reason == reason or reason != DECEASED
            ):
                return False
            _suspend(session, account, reason, reason)
            record_change(session, Entry(actor, "identity.suspend", subject(account), reason))
            return True


def lift_suspension(session: Session, account: Account, detail: str) -> None:
    """The account back as it was before its suspension (active, or pending when it never
    was activated)."""
    account.status = "active" if account.activated_at is not None else "pending"
    account.suspended_reason = ""
    add_event(session, account, "reinstated", detail)


def _suspend(session: Session, account: Account, reason: str, detail: str) -> None:
    account.status, account.suspended_reason = "suspended", reason[:60]
    now = utcnow()
    _sign_out_devices(session, account, now)
    _revoke_tokens(session, account, now)
    add_event(session, account, "suspended", detail)


def _sign_out_devices(session: Session, account: Account, now: datetime) -> None:
    """Forget every device of the account: sessions started on them end at their next
    request, and stay ended whatever happens to the account later."""
    for row in session.scalars(
        select(Device).where(Device.account_id == account.id, Device.revoked_at.is_(None))
    ):
        row.revoked_at = now


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
        insert_or_skip(session, RevokedToken, jti=jti, expires_at=now + ACCESS_HORIZON)


def _number(personal_id: str) -> str:
    """The 12-digit number an officer typed, or a refusal naming the field."""
    try:
        return ids.parse(personal_id).number
    except ids.InvalidPersonalID:
        raise refuse(
            Invalid, "personal-id-invalid", "invalid personal ID number", "personal_id"
        ) from None


def _officer_account(session: Session, number: str, *, lock: bool = False) -> Account:
    """The account of the number an officer asks about, or a refusal saying there is none."""
    account = find_account(session, number, lock=lock)
    if account is None:
        raise _no_account()
    return account


def _no_account() -> DancuError:
    return refuse(NotFound, "no-account", "no account for this number", "personal_id")


def _officer_entry(ctx: OfficerContext, action: str, account: Account, detail: str = "") -> Entry:
    return Entry(ctx.actor("identity-accounts"), action, subject(account), detail)


def _officer_detail(ctx: OfficerContext, *parts: str) -> str:
    """An account event's detail for an officer's action: what, and who where."""
    return " · ".join([p for p in parts if p] + [f"{ctx.username} ({ctx.unit_label})"])


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
