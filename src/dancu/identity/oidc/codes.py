"""Authorization codes (OpenID Connect Core 1.0 section 3.1): issued when the citizen agrees,
exchanged by the client with its PKCE verifier for an ID token and an access token.

Codes are single use: a second use of a code revokes the access token the first one issued
(and the refresh tokens descended from it; RFC 6749 section 4.1.2). A code bound to a DPoP
key (``dpop_jkt``) is only redeemed with a proof of that key. The exchange has two paths: this
module's on worker threads, and ``fast_code``'s on the event loop, which asks ``presented``,
``check_code`` and ``Codes.first_use`` the same questions.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.timeutil import utcnow
from dancu.identity import claims as released
from dancu.identity.keys import KeyRing
from dancu.identity.models import Account, AuthorizationCode, Client, RefreshToken
from dancu.identity.oidc.code_grant import (
    C,
    FirstUse,
    Granted,
    Holder,
    PresentedCode,
    id_token_release,
)
from dancu.identity.oidc.consents import Consents
from dancu.identity.oidc.digests import digest, s256
from dancu.identity.oidc.dpop import refused_binding
from dancu.identity.oidc.par import ACR_BY_LEVEL, AuthRequest, check_level
from dancu.identity.oidc.refresh import RefreshTokens, new_refresh_token
from dancu.identity.oidc.release import Release
from dancu.identity.oidc.subjects import Pairwise
from dancu.identity.oidc.tokens import OAuthError, TokenEndpoint

CODE_TTL = timedelta(seconds=60)
ID_TOKEN_TTL = timedelta(minutes=10)


def presented(client: Client, row: C | None) -> C:
    """The code ``client`` presents (its row, used or not); raises when the client may
    not use the code flow or the code is not one of its codes."""
    if "authorization_code" not in client.grant_types:
        raise OAuthError("unauthorized_client", "this client may not use the code flow")
    if row is None or row.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown code")
    return row


def check_code(
    row: PresentedCode,
    form: dict[str, str],
    dpop_jkt: str,
    now: datetime,
    account: Holder | None,
    guardian: Holder | None,
) -> None:
    """Whether a first use of a code may redeem it (the thread path's transaction and the
    event loop's group, ``fast_code``, both ask here); raises the client's answer.
    ``guardian``: the account of the code's ``actor``, when one acted for the account."""
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the code has expired")
    if form.get("redirect_uri") != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    verifier = form.get("code_verifier", "")
    if not verifier or not hmac.compare_digest(s256(verifier), row.code_challenge):
        raise OAuthError("invalid_grant", "the PKCE code_verifier does not match")
    if row.dpop_jkt and row.dpop_jkt != dpop_jkt:  # another key, or no proof at all
        raise OAuthError("invalid_dpop_proof", refused_binding("code", dpop_jkt))
    if account is None or account.status != "active":
        raise OAuthError("invalid_grant", "the account is no longer active")
    if row.claims.get("actor") and (guardian is None or guardian.status != "active"):
        raise OAuthError("invalid_grant", "the guardian's account is no longer active")


class Codes:
    def __init__(
        self,
        factory: sessionmaker[Session],
        keys: KeyRing,
        tokens: TokenEndpoint,
        pairwise: Pairwise,
        release: Release,
        refresh: RefreshTokens,
    ) -> None:
        self.factory, self.keys, self.tokens = factory, keys, tokens
        self.pairwise, self.release, self.refresh = pairwise, release, refresh

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
        """The citizen agreed: a code for the client; returns where to send the browser.
        ``actor_account_id``: a guardian signed in and acts for ``account_id`` (a child's
        account they hold; see dancu.identity.guardians)."""
        check_level(request, level)
        code = secrets.token_urlsafe(32)
        now = utcnow()
        with self.factory() as session, session.begin():
            if remember:
                Consents.remember(session, account_id, request, now)
            session.add(
                AuthorizationCode(
                    code_hash=digest(code),
                    client_id=request.client_id,
                    account_id=account_id,
                    redirect_uri=request.redirect_uri,
                    scope=" ".join(request.scopes),
                    claims={
                        "attributes": request.attributes,
                        "request": request.claims,
                        "amr": amr or ["pwd"],
                        **({"actor": actor_account_id} if actor_account_id else {}),
                    },
                    nonce=request.nonce,
                    code_challenge=request.code_challenge,
                    acr=ACR_BY_LEVEL[level],
                    auth_time=from_epoch(auth_time),
                    expires_at=now + CODE_TTL,
                    dpop_jkt=request.dpop_jkt,
                )
            )
        # RFC 9207: the issuer in the response, so the client can tell providers apart.
        query = {"code": code, "state": request.state, "iss": issuer}
        return f"{request.redirect_uri}?{urlencode({k: v for k, v in query.items() if v})}"

    def exchange(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        now = utcnow()
        # One transaction: the code row, locked, decides between a first use and a replay.
        with self.factory() as session, session.begin():
            row = presented(
                client,
                session.get(AuthorizationCode, digest(form.get("code", "")), with_for_update=True),
            )
            use = None if row.used_at else self._redeem(session, client, row, form, dpop_jkt, now)
            if use is None and row.access_jti:  # a replay: revoke what the first use issued
                self.refresh.revoke_access(session, row.access_jti, now)  # (RFC 6749 4.1.2)
                self.refresh.revoke_family(session, row.code_hash[:40], now)
        if use is None:  # after the commit of the revocation
            raise OAuthError("invalid_grant", "the code was already used; its tokens are revoked")
        return self.answer(client, issuer, use)

    def _redeem(
        self,
        session: Session,
        client: Client,
        row: AuthorizationCode,
        form: dict[str, str],
        dpop_jkt: str,
        now: datetime,
    ) -> FirstUse | None:
        """The first use of a code, its row locked: checked, used up, its refresh token and
        audit entry written in the caller's transaction. None: another request used it
        meanwhile (SQLite locks no row; the use is a conditional update), ``row`` reloaded."""
        account = session.get(Account, row.account_id)
        actor = row.claims.get("actor")
        guardian = session.get(Account, int(actor)) if actor else None
        check_code(row, form, dpop_jkt, now, account, guardian)
        assert account is not None
        use = self.first_use(client, row, dpop_jkt, now, account, guardian)
        taken = session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == row.code_hash, AuthorizationCode.used_at.is_(None)
            )
            .values(used_at=now, access_jti=use.jti)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(row)
            return None
        if use.refresh_row is not None:
            session.add(RefreshToken(**use.refresh_row))
        record_change(session, use.entry)
        return use

    def first_use(
        self,
        client: Client,
        row: PresentedCode,
        dpop_jkt: str,
        now: datetime,
        account: Holder,
        guardian: Holder | None,
    ) -> FirstUse:
        """What the first use of a checked code issues, short of signing: the access token's
        ``jti`` and claims, the refresh token (with its row) and the audit entry."""
        bound: dict[str, Any] = {"cnf": {"jkt": dpop_jkt}} if dpop_jkt else {}
        if guardian is not None:  # RFC 8693 4.1: the guardian by their own pairwise subject
            bound["act"] = self.pairwise.act(client, guardian)
        jti = secrets.token_urlsafe(16)
        refresh = refresh_row = None
        if "refresh_token" in client.grant_types:
            refresh, refresh_row = new_refresh_token(now)
            refresh_row |= {
                "family": row.code_hash[:40],
                "client_id": client.client_id,
                "account_id": account.id,
                "scope": row.scope,
                "attributes": list(row.claims.get("attributes", [])),
                "acr": row.acr,
                "dpop_jkt": dpop_jkt,
                "access_jti": jti,
            }
        actor = row.claims.get("actor")
        entry = Entry(
            Actor(f"client:{client.client_id}", "client", "", "oidc"),
            "oidc.token",
            f"account:{account.id}",
            f"scope {row.scope}" + (f", guardian account:{actor}" if actor else ""),
            now,
        )
        granted = Granted(
            row.nonce, row.auth_time, row.acr, dict(row.claims), account.id, bound.get("act")
        )
        sub = self.pairwise.subject(client, account.personal_id)
        return FirstUse(jti, sub, row.scope, bound, dpop_jkt, granted, refresh, refresh_row, entry)

    def answer(self, client: Client, issuer: str, use: FirstUse) -> dict[str, Any]:
        """The token response to a code's first use: the signed access and ID tokens. Reads
        the register (and audits the release) when the ID token carries its claims
        (``use.reads_register``)."""
        access = self.tokens.access_token(
            issuer, use.sub, client.client_id, use.scope, jti=use.jti, acr=use.granted.acr,
            **use.bound,
        )  # fmt: skip
        body = {
            "access_token": access,
            "token_type": "DPoP" if use.dpop_jkt else "Bearer",
            "expires_in": int(self.tokens.access_ttl.total_seconds()),
            "id_token": self._id_token(issuer, client, use.sub, use.granted),
            "scope": use.scope,
        }
        return body | ({"refresh_token": use.refresh} if use.refresh else {})

    def _id_token(self, issuer: str, client: Client, sub: str, granted: Granted) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": sub,
            "aud": client.client_id,
            "iat": now,
            "exp": now + int(ID_TOKEN_TTL.total_seconds()),
            "auth_time": int(granted.auth_time.timestamp()),
            "acr": granted.acr,
            # How the citizen signed in (RFC 8176): passcode, and an authenticator app code.
            "amr": _amr(granted.claims.get("amr") or ["pwd"]),
        }
        if granted.nonce:
            claims["nonce"] = granted.nonce
        if granted.act:
            claims["act"] = granted.act
        release = id_token_release(granted)
        if release is not None:
            plain, verified = release
            consented = list(granted.claims.get("attributes", []))
            with self.factory() as session, session.begin():
                account = session.get(Account, granted.account_id)
                assert account is not None
                subject = self.release.subject(account, client, plain | verified, bool(verified))
                extra = released.release(subject, consented, sorted(plain), sorted(verified))
                self.release.audit(session, client, account, extra, "id_token")
            claims = extra | claims
        return self.keys.sign(claims)


def _amr(methods: list[str]) -> list[str]:
    return [*methods, "mfa"] if len(methods) > 1 else list(methods)


def from_epoch(seconds: int) -> datetime:
    """A sign-in's ``auth_time`` (seconds since the epoch) as the code's column keeps it."""
    return datetime.fromtimestamp(seconds, UTC)
