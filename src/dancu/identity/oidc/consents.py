"""Step 3 of the code flow, remembered: the citizen's standing consents. The citizen sees the
client's name, purpose and the exact attributes asked for, and agrees (remembered unless they
say otherwise) or refuses; a remembered consent that covers a later request spares them the
question. Withdrawing one makes the client ask again and stops its refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.timeutil import utcnow
from dancu.identity.models import Client, Consent, RefreshToken
from dancu.identity.oidc.par import AuthRequest
from dancu.identity.oidc.refresh import RefreshTokens


class Consents:
    def __init__(self, factory: sessionmaker[Session], refresh: RefreshTokens) -> None:
        self.factory, self.refresh = factory, refresh

    def has_consent(self, account_id: int, request: AuthRequest) -> bool:
        if request.prompt == "consent":
            return False
        with self.factory() as session:
            consents = session.scalars(
                select(Consent).where(
                    Consent.account_id == account_id,
                    Consent.client_id == request.client_id,
                    Consent.revoked_at.is_(None),
                )
            )
            return any(
                set(request.scopes) <= set(c.scopes) and set(request.attributes) <= set(c.claims)
                for c in consents
            )

    @staticmethod
    def remember(session: Session, account_id: int, request: AuthRequest, now: datetime) -> None:
        """Keep the consent the citizen gave to ``request`` (in the caller's transaction)."""
        session.add(
            Consent(
                account_id=account_id,
                client_id=request.client_id,
                scopes=request.scopes,
                claims=request.attributes,
                granted_at=now,
            )
        )

    def consents(self, account_id: int) -> list[dict[str, Any]]:
        """The citizen's standing consents, newest first, with the client's name."""
        with self.factory() as session:
            rows = session.execute(
                select(Consent, Client.name, Client.purpose, Client.purpose_en)
                .join(Client, Client.client_id == Consent.client_id)
                .where(Consent.account_id == account_id, Consent.revoked_at.is_(None))
                .order_by(Consent.granted_at.desc())
            ).all()
        return [
            {
                "id": c.id,
                "client": name,
                "purpose": purpose,
                "purpose_en": purpose_en,
                "claims": list(c.claims),
                "granted_at": c.granted_at,
            }
            for c, name, purpose, purpose_en in rows
        ]

    def revoke_consent(self, account_id: int, consent_id: int) -> bool:
        """Withdraw a consent: the client asks again next time, and its refresh tokens for
        this citizen stop working."""
        now = utcnow()
        with self.factory() as session, session.begin():
            consent = session.get(Consent, consent_id)
            if consent is None or consent.account_id != account_id or consent.revoked_at:
                return False
            consent.revoked_at = now
            families = session.scalars(
                select(RefreshToken.family).where(
                    RefreshToken.account_id == account_id,
                    RefreshToken.client_id == consent.client_id,
                )
            ).all()
            for family in set(families):
                self.refresh.revoke_family(session, family, now)
            record_change(
                session,
                Entry(
                    Actor(f"citizen:{account_id}", "citizen", "", "identity"),
                    "oidc.consent_revoked",
                    f"client:{consent.client_id}",
                ),
            )
        return True
