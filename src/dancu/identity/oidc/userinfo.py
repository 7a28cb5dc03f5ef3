"""The userinfo endpoint (OpenID Connect Core 1.0 section 5.3): the claims the citizen agreed
to release to an access token's client, read from the register and audited (``release``)."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.identity import claims as released
from dancu.identity.keys import ALG, KeyRing
from dancu.identity.models import Account, AuthorizationCode, Client, RefreshToken, RevokedToken
from dancu.identity.oidc.refresh import family_code
from dancu.identity.oidc.release import Release
from dancu.identity.oidc.tokens import OAuthError


class UserInfo:
    def __init__(self, factory: sessionmaker[Session], keys: KeyRing, release: Release) -> None:
        self.factory, self.keys, self.release = factory, keys, release

    def userinfo(self, token: str, issuer: str, dpop_jkt: str | None = None) -> dict[str, Any]:
        """The claims the citizen agreed to release to the token's client. ``dpop_jkt`` is
        the key a DPoP proof with the request proved (None: a plain bearer request)."""
        try:
            verified = jwt.decode(token, self.keys.keyset(), algorithms=[ALG])
        except (JoseError, ValueError):
            raise OAuthError("invalid_token", "the access token is not valid", 401) from None
        claims = verified.claims
        if verified.header.get("typ") != "at+jwt" or claims.get("iss") != issuer:
            raise OAuthError("invalid_token", "not an access token of this provider", 401)
        if int(claims.get("exp", 0)) < time.time():
            raise OAuthError("invalid_token", "the access token has expired", 401)
        bound = (claims.get("cnf") or {}).get("jkt")
        if bound and dpop_jkt != bound:
            raise OAuthError("invalid_token", "the token is DPoP-bound: prove its key", 401)
        with self.factory() as session, session.begin():
            if session.get(RevokedToken, claims.get("jti", "")) is not None:
                raise OAuthError("invalid_token", "the access token was revoked", 401)
            jti = claims.get("jti")
            code = session.scalars(
                select(AuthorizationCode).where(AuthorizationCode.access_jti == jti)
            ).first()
            refreshed = (
                None
                if code
                else session.scalars(
                    select(RefreshToken).where(RefreshToken.access_jti == jti)
                ).first()
            )
            if refreshed is not None:  # the claims request stays with the first code
                code = family_code(session, refreshed.family)
            request = dict(code.claims.get("request", {})) if code is not None else {}
            if refreshed is not None:
                account_id, client_id = refreshed.account_id, refreshed.client_id
                attributes = list(refreshed.attributes)
            elif code is not None:
                account_id, client_id = code.account_id, code.client_id
                attributes = list(code.claims.get("attributes", []))
            else:
                raise OAuthError("invalid_token", "the access token carries no citizen", 401)
            account = session.get(Account, account_id)
            client = session.get(Client, client_id)
            assert account is not None and client is not None
            scopes = str(claims.get("scope", "")).split()
            asked = released.ClaimsRequest.parse(request)
            proven = asked.verified.get("userinfo", frozenset())
            # Claims asked for only as verified claims are not repeated as plain claims.
            plain = [
                a
                for a in attributes
                if a not in proven or a in asked.plain.get("userinfo", frozenset())
                or any(a in c for s, c in released.SCOPE_CLAIMS.items() if s in scopes)
            ]  # fmt: skip
            subject = self.release.subject(account, client, set(plain) | proven, bool(proven))
            out = {"sub": claims["sub"], **released.release(subject, attributes, plain, proven)}
            self.release.audit(session, client, account, out, "userinfo")
        return out
