"""The authorization code flow of the OpenID provider (OpenID Connect Core 1.0 section 3.1,
with PAR — RFC 9126 — and PKCE — RFC 7636, S256 only and always required), as the pages and
endpoints call it. Each step is its own module; ``Authorizer`` only hands the calls on.

1. The client pushes its request (``push``) or sends it to the authorization endpoint; either
   way it is checked before the citizen sees anything (``par``).
2. The citizen signs in (passcode; the account's level gives the ``acr``); a request that
   requires ``high`` from a level-1 sign-in ends with ``unmet_authentication_requirements``
   (``check_level``).
3. The citizen sees the client's name, purpose and the exact attributes asked for, and
   agrees (remembered unless they say otherwise: ``consents``) or refuses.
4. The client exchanges the single-use code with its verifier for an ID token and an access
   token (``codes``); a second use of a code revokes the access token the first one issued.
   Then it refreshes (``refresh``) and reads userinfo (``userinfo``).

Subjects are pairwise (``subjects``): ``sub`` differs per client sector, so two clients cannot
link a citizen by it. Every release of claims is audited (``release``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.errors import NotFound
from dancu.identity.clients import ClientRegistry
from dancu.identity.keys import KeyRing
from dancu.identity.models import Account, Client
from dancu.identity.oidc import codes, logout, par
from dancu.identity.oidc.code_grant import FirstUse, Holder, PresentedCode
from dancu.identity.oidc.consents import Consents
from dancu.identity.oidc.par import AuthRequest
from dancu.identity.oidc.refresh import RefreshTokens
from dancu.identity.oidc.release import Release
from dancu.identity.oidc.subjects import Pairwise
from dancu.identity.oidc.tokens import TokenEndpoint
from dancu.identity.oidc.userinfo import UserInfo
from dancu.identity.ports import PortraitStore
from dancu.registry.service import RegistryService


class Authorizer:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clients: ClientRegistry,
        registry: RegistryService,
        keys: KeyRing,
        tokens: TokenEndpoint,
        secret_key: str,
        portraits: PortraitStore | None = None,
    ) -> None:
        self.factory, self.clients, self.registry = factory, clients, registry
        self.keys, self.tokens, self.portraits = keys, tokens, portraits
        self._pairwise = Pairwise(secret_key)
        release = Release(registry, portraits)
        self._requests = par.Requests(factory, clients)
        self._refresh = RefreshTokens(factory, tokens, self._pairwise)
        self._consents = Consents(factory, self._refresh)
        self._codes = codes.Codes(factory, keys, tokens, self._pairwise, release, self._refresh)
        self._userinfo = UserInfo(factory, keys, release)

    # -- 1. the request -------------------------------------------------------------------

    def push(self, client: Client, form: dict[str, str], dpop_jkt: str = "") -> dict[str, Any]:
        """PAR (``par.Requests.push``): the request checked and kept; its ``request_uri``."""
        return self._requests.push(client, form, dpop_jkt)

    def request(self, query: dict[str, str]) -> AuthRequest:
        """The authorization request behind the authorization endpoint's query."""
        return self._requests.request(query)

    # -- 2 and 3. sign-in and consent -----------------------------------------------------

    def check_level(self, request: AuthRequest, level: int) -> None:
        par.check_level(request, level)

    def has_consent(self, account_id: int, request: AuthRequest) -> bool:
        return self._consents.has_consent(account_id, request)

    def account_id(self, personal_id: str) -> int:
        with self.factory() as session:
            found = session.scalars(
                select(Account.id).where(Account.personal_id == personal_id)
            ).first()
        if found is None:
            raise NotFound("no account for this number", "personal_id")
        return int(found)

    def approve(
        self,
        account_id: int,
        level: int,
        auth_time: int,
        request: AuthRequest,
        remember: bool,
        issuer: str,
        actor_account_id: int | None = None,
        amr: list[str] | None = None,
    ) -> str:
        """The citizen agreed (``codes.Codes.approve``): where to send the browser."""
        return self._codes.approve(
            account_id, level, auth_time, request, remember, issuer, actor_account_id, amr
        )

    def consents(self, account_id: int) -> list[dict[str, Any]]:
        """The citizen's standing consents, newest first, with the client's name."""
        return self._consents.consents(account_id)

    def revoke_consent(self, account_id: int, consent_id: int) -> bool:
        """Withdraw a consent (``consents.Consents.revoke_consent``)."""
        return self._consents.revoke_consent(account_id, consent_id)

    # -- 4. the code exchange, refresh and userinfo ---------------------------------------

    def exchange(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        """The code exchange on a worker thread (``codes.Codes.exchange``)."""
        return self._codes.exchange(client, form, issuer, dpop_jkt)

    presented = staticmethod(codes.presented)
    check_code = staticmethod(codes.check_code)

    def first_use(
        self,
        client: Client,
        row: PresentedCode,
        dpop_jkt: str,
        now: datetime,
        account: Holder,
        guardian: Holder | None,
    ) -> FirstUse:
        """What the first use of a checked code issues, short of signing."""
        return self._codes.first_use(client, row, dpop_jkt, now, account, guardian)

    def answer(self, client: Client, issuer: str, use: FirstUse) -> dict[str, Any]:
        """The token response to a code's first use (``codes.Codes.answer``)."""
        return self._codes.answer(client, issuer, use)

    def refresh(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        """A refresh token rotated (``refresh.RefreshTokens.refresh``)."""
        return self._refresh.refresh(client, form, issuer, dpop_jkt)

    def userinfo(self, token: str, issuer: str, dpop_jkt: str | None = None) -> dict[str, Any]:
        """The claims released to the token's client (``userinfo.UserInfo.userinfo``)."""
        return self._userinfo.userinfo(token, issuer, dpop_jkt)

    def logout_target(
        self, id_token_hint: str, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """Where to send the browser after signing out (``logout.logout_target``)."""
        return logout.logout_target(
            self.keys, self.clients, id_token_hint, post_logout_redirect_uri, state
        )

    def subject(self, client: Client, personal_id: str) -> str:
        """The pairwise subject of a citizen for a client's sector."""
        return self._pairwise.subject(client, personal_id)
