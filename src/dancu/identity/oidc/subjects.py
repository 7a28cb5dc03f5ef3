"""Pairwise subjects: ``sub`` differs per client sector, so two clients cannot link a citizen
by it. A guardian acting for a child's account is named the same way, in the ``act`` claim
(RFC 8693 section 4.1), by their own pairwise subject for the client."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.orm import Session

from dancu.identity.models import Account, Client
from dancu.identity.oidc.code_grant import Holder
from dancu.identity.oidc.digests import b64url
from dancu.identity.oidc.tokens import OAuthError


class Pairwise:
    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"dancu.pairwise:" + secret_key.encode()).digest()

    def subject(self, client: Client, personal_id: str) -> str:
        """The pairwise subject of a citizen for a client's sector."""
        mac = hmac.new(self._key, f"{client.sector}|{personal_id}".encode(), "sha256")
        return b64url(mac.digest())

    def act(self, client: Client, guardian: Holder) -> dict[str, str]:
        """The ``act`` claim's value naming ``guardian`` to ``client``."""
        return {"sub": self.subject(client, guardian.personal_id)}

    def actor(self, session: Session, client: Client, actor_id: Any) -> dict[str, Any]:
        """The ``act`` claim, when a guardian (account ``actor_id``) acts for the account;
        raises when their account is no longer active."""
        if not actor_id:
            return {}
        guardian = session.get(Account, int(actor_id))
        if guardian is None or guardian.status != "active":
            raise OAuthError("invalid_grant", "the guardian's account is no longer active")
        return {"act": self.act(client, guardian)}
