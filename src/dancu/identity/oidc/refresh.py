"""Rotating refresh tokens: each refresh uses one up and issues the next of its family (the
tokens descended from one code, named by the code's digest). Presenting a used refresh token
again revokes its whole family: either the client or a thief has it, and the provider cannot
tell which."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.timeutil import utcnow
from dancu.identity.models import Account, AuthorizationCode, Client, RefreshToken, RevokedToken
from dancu.identity.oidc.digests import digest
from dancu.identity.oidc.dpop import refused_binding
from dancu.identity.oidc.subjects import Pairwise
from dancu.identity.oidc.tokens import OAuthError, TokenEndpoint

REFRESH_TTL = timedelta(days=30)


def new_refresh_token(now: datetime) -> tuple[str, dict[str, Any]]:
    """A new refresh token, and what its row keeps of it: its digest and lifetime."""
    token = secrets.token_urlsafe(32)
    return token, {"token_hash": digest(token), "created_at": now, "expires_at": now + REFRESH_TTL}


def family_code(session: Session, family: str) -> AuthorizationCode | None:
    """The code a refresh token family descends from (which keeps the claims request and
    the guardian acting, if any)."""
    return session.scalars(
        select(AuthorizationCode).where(AuthorizationCode.code_hash.startswith(family))
    ).first()


class RefreshTokens:
    def __init__(
        self, factory: sessionmaker[Session], tokens: TokenEndpoint, pairwise: Pairwise
    ) -> None:
        self.factory, self.tokens, self.pairwise = factory, tokens, pairwise

    def refresh(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        """A new access token and a new refresh token for a refresh token, which is used up.
        Presenting a used refresh token again revokes its whole family."""
        if "refresh_token" not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not refresh tokens")
        now = utcnow()
        token_hash = digest(form.get("refresh_token", ""))
        with self.factory() as session, session.begin():
            old = session.get(RefreshToken, token_hash, with_for_update=True)
            if old is None or old.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown refresh token")
            reused = old.used_at is not None and old.revoked_at is None
            if reused:
                self.revoke_family(session, old.family, now)
        if reused:
            raise OAuthError("invalid_grant", "the refresh token was already used: revoked")
        with self.factory() as session, session.begin():
            old = session.get(RefreshToken, token_hash, with_for_update=True)
            if old is None or old.used_at is not None or old.revoked_at is not None:
                raise OAuthError("invalid_grant", "the refresh token is no longer valid")
            if old.expires_at <= now:
                raise OAuthError("invalid_grant", "the refresh token has expired")
            if old.dpop_jkt and old.dpop_jkt != dpop_jkt:
                raise OAuthError("invalid_dpop_proof", refused_binding("refresh token", dpop_jkt))
            account = session.get(Account, old.account_id)
            if account is None or account.status != "active":
                raise OAuthError("invalid_grant", "the account is no longer active")
            wanted = form.get("scope", old.scope).split()
            if set(wanted) - set(old.scope.split()):
                raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            scope = " ".join(wanted)
            jti = secrets.token_urlsafe(16)
            bound: dict[str, Any] = {"cnf": {"jkt": old.dpop_jkt}} if old.dpop_jkt else {}
            first = family_code(session, old.family)
            if first is not None:
                bound |= self.pairwise.actor(session, client, first.claims.get("actor"))
            sub = self.pairwise.subject(client, account.personal_id)
            access = self.tokens.access_token(
                issuer, sub, client.client_id, scope, jti=jti, acr=old.acr, **bound
            )
            old.used_at = now
            refresh = self._add(
                session,
                RefreshToken(
                    family=old.family,
                    client_id=client.client_id,
                    account_id=account.id,
                    scope=scope,
                    attributes=old.attributes,
                    acr=old.acr,
                    dpop_jkt=old.dpop_jkt,
                    access_jti=jti,
                ),
            )
        return {
            "access_token": access,
            "token_type": "DPoP" if old.dpop_jkt else "Bearer",
            "expires_in": int(self.tokens.access_ttl.total_seconds()),
            "refresh_token": refresh,
            "scope": scope,
        }

    @staticmethod
    def _add(session: Session, row: RefreshToken) -> str:
        token, stamp = new_refresh_token(utcnow())
        for column, value in stamp.items():
            setattr(row, column, value)
        session.add(row)
        return token

    def revoke_access(self, session: Session, jti: str, now: datetime) -> None:
        """Revoke the access token ``jti`` (remembered as long as it could live)."""
        session.merge(RevokedToken(jti=jti, expires_at=now + self.tokens.access_ttl))

    def revoke_family(self, session: Session, family: str, now: datetime) -> None:
        """Revoke a family's refresh tokens and the access tokens they issued."""
        for token in session.scalars(select(RefreshToken).where(RefreshToken.family == family)):
            if token.revoked_at is None:
                token.revoked_at = now
            if token.access_jti:
                self.revoke_access(session, token.access_jti, now)
