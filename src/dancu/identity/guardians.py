"""Accounts for children, held by a parent (Decree 69/2024: a guardian uses their own level-2
account to register a minor or ward and acts for them).

- Who may: a parent with an active level-2 account, for a living child under 14 whom the
  register records with that parent as father or mother. (Guardianship of adults and of
  children by non-parents is decided by a court or the commune and is not in the register
  yet; it is refused with ``not-guardian`` until it is.)
- What the child gets: a level-1 account without a passcode of its own (nobody signs in as
  the child); the parent signs in as themselves and picks the child on the consent screen of
  a service. Level 2 for a child of 6 or more still takes the in-person visit.
- What a service sees: the child's claims, a subject of the child, and the parent as the
  actor (``act`` claim, RFC 8693 section 4.1) in the ID token and the access token.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.identity.models import Account
from dancu.identity.service import IdentityService
from dancu.identity.usecases.registration import SELF_REGISTRATION_AGE
from dancu.identity.usecases.shared import (
    People,
    add_event,
    find_account,
    refuse,
    require_alive,
)
from dancu.identity.usecases.shared import age as age_of


@dataclass(frozen=True)
class Ward:
    account_id: int
    personal_id: str
    full_name: str
    age: int
    level: int
    status: str


class GuardianService:
    def __init__(self, factory: sessionmaker[Session], identity: IdentityService) -> None:
        self.factory, self.identity = factory, identity
        self.people = People(identity.registry)

    def register_child(self, guardian_personal_id: str, child_personal_id: str) -> Ward:
        """An account for the guardian's child, held by the guardian."""
        child = self.people.person(child_personal_id)
        require_alive(child)
        guardian_ids = {p.personal_id for p in (child.father, child.mother) if p is not None}
        if guardian_personal_id not in guardian_ids:
            raise refuse(
                Forbidden,
                "not-guardian",
                "the register does not record you as this child's parent",
                "personal_id",
            )
        age = age_of(child.birth_date)
        if age >= SELF_REGISTRATION_AGE:
            raise refuse(
                Invalid,
                "old-enough",
                "from 14 the citizen registers their own account",
                "personal_id",
            )
        now = utcnow()
        with self.factory() as session, session.begin():
            guardian = self._guardian(session, guardian_personal_id)
            existing = find_account(session, child_personal_id)
            if existing is not None:
                raise refuse(
                    Conflict, "account-exists", "this child already has an account", "personal_id"
                )
            account = Account(
                personal_id=child_personal_id,
                level=1,
                status="active",
                phone=guardian.phone,
                email="",
                passcode_hash=None,  # nobody signs in as the child
                activated_at=now,
                guardian_id=guardian.id,
            )
            session.add(account)
            session.flush()
            add_event(session, account, "registered.by_guardian")
            add_event(session, guardian, "ward.registered", child.full_name)
            record_change(
                session,
                Entry(
                    Actor(f"citizen:{guardian.id}", "citizen", "", "identity"),
                    "identity.ward_register",
                    f"account:{account.id}",
                    f"guardian account:{guardian.id}",
                ),
            )
            return Ward(account.id, child_personal_id, child.full_name, age, 1, "active")

    def wards(self, guardian_personal_id: str) -> list[Ward]:
        """The accounts the guardian holds for children, youngest first."""
        with self.factory() as session:
            guardian = find_account(session, guardian_personal_id)
            if guardian is None:
                return []
            rows = list(
                session.scalars(
                    select(Account)
                    .where(Account.guardian_id == guardian.id)
                    .order_by(Account.personal_id)
                )
            )
        out = []
        for row in rows:
            person = self.people.person(row.personal_id)
            out.append(
                Ward(
                    row.id,
                    row.personal_id,
                    person.full_name,
                    age_of(person.birth_date),
                    row.level,
                    row.status,
                )
            )
        return sorted(out, key=lambda w: w.age)

    def ward_for(self, guardian_account_id: int, ward_account_id: int) -> Account:
        """The ward's account when the guardian may act for it now (active, still a minor)."""
        with self.factory() as session:
            ward = session.get(Account, ward_account_id)
            if ward is None or ward.guardian_id != guardian_account_id:
                raise NotFound("no such child account", "on_behalf")
            if ward.status != "active":
                raise refuse(Forbidden, "ward-inactive", "this child's account is not active")
            session.expunge(ward)
        person = self.people.person(ward.personal_id)
        if age_of(person.birth_date) >= SELF_REGISTRATION_AGE:
            raise refuse(
                Forbidden,
                "ward-of-age",
                "from 14 the citizen uses their own account",
                "on_behalf",
            )
        return ward

    def _guardian(self, session: Session, personal_id: str) -> Account:
        guardian = find_account(session, personal_id, lock=True)
        if guardian is None or guardian.status != "active":
            raise refuse(Forbidden, "no-account", "sign in with an active account first")
        if guardian.level < 2:
            raise refuse(
                Forbidden,
                "level2-required",
                "registering a child needs a level-2 account (Decree 69/2024)",
            )
        return guardian
