"""The citizen's own account as they see it: its state, its history of events (sign-ins,
failures, changes, the consents they withdrew), and what the register holds about them.
"""

from __future__ import annotations

from sqlalchemy import select

from dancu.core.access import OfficerContext, Role
from dancu.core.db import write_session
from dancu.identity import schemas as s
from dancu.identity.models import AccountEvent
from dancu.identity.usecases.shared import (
    PeopleUseCase,
    account_out,
    add_event,
    citizen_account,
    event_out,
    find_account,
    missing_account,
)
from dancu.registry.schemas import PersonPublic


class Accounts(PeopleUseCase):
    def account(self, personal_id: str) -> s.AccountOut:
        with self.factory() as session:
            account = find_account(session, personal_id)
            if account is None:
                raise missing_account()
            return account_out(account)

    def history(
        self, personal_id: str, limit: int = 50, offset: int = 0
    ) -> list[s.AccountEventOut]:
        """The account's events, newest first, ``limit`` of them after the first ``offset``
        (the citizen's login history, page by page)."""
        with self.factory() as session:
            account = find_account(session, personal_id)
            if account is None:
                raise missing_account()
            rows = session.scalars(
                select(AccountEvent)
                .where(AccountEvent.account_id == account.id)
                .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
                .offset(max(offset, 0))
                .limit(limit)
            )
            return [event_out(e) for e in rows]

    def consent_withdrawn(self, personal_id: str, service: str) -> None:
        """Note a withdrawn consent in the citizen's history (the authorizer revokes it)."""
        with write_session(self.factory) as session:
            account = citizen_account(session, personal_id, lock=False)
            add_event(session, account, "consent.withdrawn", service)

    def profile(self, personal_id: str) -> PersonPublic:
        """What the register holds about the signed-in citizen (read-only for them; audited
        as the citizen's own read)."""
        ctx = OfficerContext(f"citizen:{personal_id[:4]}…", Role.MINISTRY, purpose="self-view")
        return self.people.registry.get_person(ctx, personal_id, purpose="self-view")
