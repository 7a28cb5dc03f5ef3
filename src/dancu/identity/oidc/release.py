"""What releasing claims reads and records, for the ID token and userinfo alike: the register
record of the account's person (an audited read for the client) and an audit entry naming
every claim released. Every release of claims is audited."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy.orm import Session

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Actor, Entry, record_change
from dancu.identity import claims as released
from dancu.identity.models import Account, Client
from dancu.identity.ports import PortraitStore
from dancu.registry.service import RegistryService


class Release:
    def __init__(self, registry: RegistryService, portraits: PortraitStore | None) -> None:
        self.registry, self.portraits = registry, portraits

    def subject(
        self, account: Account, client: Client, names: AbstractSet[str], provenance: bool
    ) -> released.Subject:
        """What releasing ``names`` needs to know of the account's person: the register
        record (an audited read for the client), and only when asked for, the time the
        register last changed it and the portrait."""
        ctx = OfficerContext(f"client:{client.client_id}", Role.MINISTRY, purpose="oidc-claims")
        person = self.registry.get_person(ctx, account.personal_id, purpose="oidc-claims")
        updated = None
        if provenance or "updated_at" in names:
            history = self.registry.history(ctx, account.personal_id)
            updated = max((v.recorded_at for v in history.versions), default=None)
        portrait = None
        if "picture" in names and self.portraits is not None:
            portrait = self.portraits.portrait(account.personal_id)
        return released.Subject(
            person, account.phone, account.email, account.level, updated, portrait
        )

    @staticmethod
    def audit(
        session: Session, client: Client, account: Account, out: dict[str, Any], where: str
    ) -> None:
        """Record that ``out`` (an ID token's or userinfo's claims) went to ``client``."""
        names = sorted(set(out) - {"sub", "verified_claims"})
        names += [f"verified:{n}" for n in sorted(out.get("verified_claims", {}).get("claims", {}))]
        record_change(
            session,
            Entry(
                Actor(f"client:{client.client_id}", "client", "", f"oidc-{where}"),
                "oidc.release",
                f"account:{account.id}",
                " ".join(names),
            ),
        )
