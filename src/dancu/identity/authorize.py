"""The authorization code flow of the OpenID provider (OpenID Connect Core 1.0 section 3.1,
with PAR — RFC 9126 — and PKCE — RFC 7636, S256 only and always required).

1. The client pushes its request (``push``) or sends it to the authorization endpoint; either
   way it is checked here before the citizen sees anything: a known client, an exactly
   registered redirect URI, ``response_type=code``, ``openid`` among granted scopes, a PKCE
   challenge. Until the redirect URI is known to be the client's, errors are shown to the
   citizen, never redirected (no open redirector).
2. The citizen signs in (passcode; the account's level gives the ``acr``: level 1 →
   ``substantial``, level 2 → ``high``). A request that requires ``high`` from a level-1
   sign-in ends with ``unmet_authentication_requirements``.
3. The citizen sees the client's name, purpose and the exact attributes asked for, and
   agrees (remembered unless they say otherwise) or refuses.
4. The client exchanges the single-use code with its verifier for an ID token and an access
   token; a second use of a code revokes the access token the first one issued.

Subjects are pairwise: ``sub`` differs per client sector, so two clients cannot link a
citizen by it. Every release of claims is audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Actor, Entry, record_change
from dancu.core.errors import NotFound
from dancu.core.timeutil import utcnow
from dancu.identity import claims as released
from dancu.identity.clients import ClientRegistry
from dancu.identity.code_grant import C, FirstUse, Granted, Holder, PresentedCode, id_token_release
from dancu.identity.keys import ALG, KeyRing
from dancu.identity.models import (
    Account,
    AuthorizationCode,
    Client,
    Consent,
    PushedRequest,
    RefreshToken,
    RevokedToken,
)
from dancu.identity.ports import PortraitStore
from dancu.identity.tokens import OAuthError, TokenEndpoint
from dancu.registry.service import RegistryService

LOA_SUBSTANTIAL = "urn:dancu:loa:substantial"
LOA_HIGH = "urn:dancu:loa:high"
ACR_BY_LEVEL = {1: LOA_SUBSTANTIAL, 2: LOA_HIGH}
PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
PAR_TTL = timedelta(seconds=90)
CODE_TTL = timedelta(seconds=60)
ID_TOKEN_TTL = timedelta(minutes=10)
REFRESH_TTL = timedelta(days=30)
_CLIENT_AUTH = ("client_assertion", "client_assertion_type", "client_secret")
_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "acr_values",
    "claims",
    "prompt",
    "dpop_jkt",
)


class AuthorizeError(Exception):
    """A refused authorization request. With ``redirect_uri`` the client learns it by
    redirect (RFC 6749 4.1.2.1); without, the citizen sees it on a page."""

    def __init__(
        self, error: str, description: str, redirect_uri: str = "", state: str = ""
    ) -> None:
        super().__init__(description)
        self.error, self.description = error, description
        self.redirect_uri, self.state = redirect_uri, state

    def location(self, issuer: str) -> str:
        query = {"error": self.error, "error_description": self.description, "iss": issuer}
        if self.state:
            query["state"] = self.state
        return f"{self.redirect_uri}?{urlencode(query)}"


@dataclass
class AuthRequest:
    client_id: str
    client_name: str
    purpose: str
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str
    code_challenge: str
    acr_values: list[str]
    claims: dict[str, Any]
    prompt: str
    dpop_jkt: str = ""  # RFC 9449 section 10: the code can only be redeemed with this key
    attributes: list[str] = field(default_factory=list)  # what the citizen is asked to release
    purpose_en: str = ""  # the purpose for the English pages, when the client gave one

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthRequest:
        return cls(**data)

    @property
    def requires_high(self) -> bool:
        essential = self.claims.get("id_token", {}).get("acr") or {}
        wanted = essential.get("values") or ([essential["value"]] if "value" in essential else [])
        return (bool(essential.get("essential")) and wanted == [LOA_HIGH]) or (
            self.acr_values == [LOA_HIGH]
        )


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
        self._pairwise_key = hashlib.sha256(b"dancu.pairwise:" + secret_key.encode()).digest()

    # -- 1. the request -------------------------------------------------------------------

    def push(self, client: Client, form: dict[str, str], dpop_jkt: str = "") -> dict[str, Any]:
        """PAR: check the request now, keep it for 90 s, answer with its ``request_uri``.
        ``dpop_jkt``: the key a DPoP proof sent with the request proved (RFC 9449 section
        10.1); the code is then bound to it, as by a ``dpop_jkt`` parameter."""
        if form.get("client_id", client.client_id) != client.client_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        if "request_uri" in form:
            raise OAuthError("invalid_request", "request_uri cannot be pushed")
        if dpop_jkt:
            if form.get("dpop_jkt", "") not in ("", dpop_jkt):
                raise OAuthError("invalid_dpop_proof", "dpop_jkt is not the DPoP proof's key")
            form = {**form, "dpop_jkt": dpop_jkt}
        params = {k: v for k, v in form.items() if k not in _CLIENT_AUTH}
        try:
            request = self._check({**params, "client_id": client.client_id})
        except AuthorizeError as exc:
            raise OAuthError(exc.error, exc.description) from None
        uri = PAR_PREFIX + secrets.token_urlsafe(32)
        with self.factory() as session, session.begin():
            session.execute(delete(PushedRequest).where(PushedRequest.expires_at < utcnow()))
            session.add(
                PushedRequest(
                    request_uri=uri,
                    client_id=client.client_id,
                    params=request.as_dict(),
                    expires_at=utcnow() + PAR_TTL,
                )
            )
        return {"request_uri": uri, "expires_in": int(PAR_TTL.total_seconds())}

    def request(self, query: dict[str, str]) -> AuthRequest:
        """The authorization request behind the authorization endpoint's query: a pushed one
        (``request_uri``, single use) or one given in full."""
        uri = query.get("request_uri")
        if uri is None:
            return self._check(query)
        with self.factory() as session, session.begin():
            pushed = session.get(PushedRequest, uri, with_for_update=True)
            if pushed is None or pushed.expires_at <= utcnow():
                raise AuthorizeError("invalid_request_uri", "the request has expired: start again")
            if pushed.client_id != query.get("client_id"):
                raise AuthorizeError("invalid_request_uri", "the request belongs to another client")
            session.delete(pushed)
            return AuthRequest.from_dict(pushed.params)

    def _check(self, q: dict[str, str]) -> AuthRequest:
        unknown = set(q) - set(_PARAMS) - {"request_uri", "response_mode", "ui_locales"}
        try:
            client = self.clients.get(q.get("client_id", ""))
        except NotFound:
            raise AuthorizeError("invalid_client", "unknown client") from None
        redirect = q.get("redirect_uri", "")
        if redirect not in client.redirect_uris:
            raise AuthorizeError("invalid_request", "the redirect URI is not registered")
        state = q.get("state", "")

        def refuse(error: str, description: str) -> AuthorizeError:
            return AuthorizeError(error, description, redirect, state)

        if "authorization_code" not in client.grant_types:
            raise refuse("unauthorized_client", "this client may not use the code flow")
        if q.get("response_type") != "code":
            raise refuse("unsupported_response_type", "only response_type=code")
        scopes = q.get("scope", "").split()
        if "openid" not in scopes:
            raise refuse("invalid_scope", "the scope must include openid")
        if set(scopes) - set(client.scopes):
            raise refuse(
                "invalid_scope", f"not granted: {sorted(set(scopes) - set(client.scopes))}"
            )
        challenge = q.get("code_challenge", "")
        if q.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            raise refuse("invalid_request", "PKCE is required: code_challenge with method S256")
        try:
            claims = orjson.loads(q["claims"]) if q.get("claims") else {}
        except orjson.JSONDecodeError:
            raise refuse("invalid_request", "the claims parameter is not JSON") from None
        if not isinstance(claims, dict):
            raise refuse("invalid_request", "the claims parameter must be a JSON object")
        try:
            released.ClaimsRequest.parse(claims)
        except released.ClaimsRequestError as exc:
            raise refuse("invalid_request", str(exc)) from None
        if unknown:
            raise refuse("invalid_request", f"unknown parameters: {sorted(unknown)}")
        request = AuthRequest(
            client_id=client.client_id,
            client_name=client.name,
            purpose=client.purpose,
            purpose_en=client.purpose_en,
            redirect_uri=redirect,
            scopes=scopes,
            state=state,
            nonce=q.get("nonce", ""),
            code_challenge=challenge,
            acr_values=q.get("acr_values", "").split(),
            claims=claims,
            prompt=q.get("prompt", ""),
            dpop_jkt=q.get("dpop_jkt", ""),
        )
        request.attributes = self._attributes(client, request)
        return request

    @staticmethod
    def _attributes(client: Client, request: AuthRequest) -> list[str]:
        """The claims this request would release, in a stable order."""
        asked = released.ClaimsRequest.parse(request.claims)
        return released.attributes(request.scopes, asked, client.claims)

    # -- 2 and 3. sign-in and consent -----------------------------------------------------

    def check_level(self, request: AuthRequest, level: int) -> None:
        if request.requires_high and level < 2:
            raise AuthorizeError(
                "unmet_authentication_requirements",
                "this service needs a level-2 account",
                request.redirect_uri,
                request.state,
            )

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
        """The citizen agreed: a code for the client; returns where to send the browser.
        ``actor_account_id``: a guardian signed in and acts for ``account_id`` (a child's
        account they hold; see dancu.identity.guardians)."""
        self.check_level(request, level)
        code = secrets.token_urlsafe(32)
        now = utcnow()
        with self.factory() as session, session.begin():
            if remember:
                session.add(
                    Consent(
                        account_id=account_id,
                        client_id=request.client_id,
                        scopes=request.scopes,
                        claims=request.attributes,
                        granted_at=now,
                    )
                )
            session.add(
                AuthorizationCode(
                    code_hash=_digest(code),
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
                    auth_time=_from_epoch(auth_time),
                    expires_at=now + CODE_TTL,
                    dpop_jkt=request.dpop_jkt,
                )
            )
        # RFC 9207: the issuer in the response, so the client can tell providers apart.
        query = {"code": code, "state": request.state, "iss": issuer}
        return f"{request.redirect_uri}?{urlencode({k: v for k, v in query.items() if v})}"

    # -- 4. the code exchange and userinfo ------------------------------------------------

    def exchange(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        now = utcnow()
        # One transaction: the code row, locked, decides between a first use and a replay.
        with self.factory() as session, session.begin():
            row = self.presented(
                client,
                session.get(AuthorizationCode, _digest(form.get("code", "")), with_for_update=True),
            )
            use = None if row.used_at else self._redeem(session, client, row, form, dpop_jkt, now)
            if use is None and row.access_jti:  # a replay: revoke what the first use issued
                expiry = now + self.tokens.access_ttl  # (RFC 6749 section 4.1.2)
                session.merge(RevokedToken(jti=row.access_jti, expires_at=expiry))
                self._revoke_family(session, row.code_hash[:40], now)
        if use is None:  # after the commit of the revocation
            raise OAuthError("invalid_grant", "the code was already used; its tokens are revoked")
        return self.answer(client, issuer, use)

    @staticmethod
    def presented(client: Client, row: C | None) -> C:
        """The code ``client`` presents (its row, used or not); raises when the client may
        not use the code flow or the code is not one of its codes."""
        if "authorization_code" not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use the code flow")
        if row is None or row.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown code")
        return row

    @staticmethod
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
        if not verifier or not hmac.compare_digest(_s256(verifier), row.code_challenge):
            raise OAuthError("invalid_grant", "the PKCE code_verifier does not match")
        if row.dpop_jkt and row.dpop_jkt != dpop_jkt:  # another key, or no proof at all
            raise OAuthError("invalid_dpop_proof", _bound("code", dpop_jkt))
        if account is None or account.status != "active":
            raise OAuthError("invalid_grant", "the account is no longer active")
        if row.claims.get("actor") and (guardian is None or guardian.status != "active"):
            raise OAuthError("invalid_grant", "the guardian's account is no longer active")

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
        self.check_code(row, form, dpop_jkt, now, account, guardian)
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
            bound["act"] = {"sub": self.subject(client, guardian.personal_id)}
        jti = secrets.token_urlsafe(16)
        refresh = refresh_row = None
        if "refresh_token" in client.grant_types:
            refresh, refresh_row = _new_refresh_token(now)
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
        sub = self.subject(client, account.personal_id)
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

    def refresh(
        self, client: Client, form: dict[str, str], issuer: str, dpop_jkt: str = ""
    ) -> dict[str, Any]:
        """A new access token and a new refresh token for a refresh token, which is used up.
        Presenting a used refresh token again revokes its whole family: either the client
        or a thief has it, and the provider cannot tell which."""
        if "refresh_token" not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not refresh tokens")
        now = utcnow()
        digest = _digest(form.get("refresh_token", ""))
        with self.factory() as session, session.begin():
            old = session.get(RefreshToken, digest, with_for_update=True)
            if old is None or old.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown refresh token")
            reused = old.used_at is not None and old.revoked_at is None
            if reused:
                self._revoke_family(session, old.family, now)
        if reused:
            raise OAuthError("invalid_grant", "the refresh token was already used: revoked")
        with self.factory() as session, session.begin():
            old = session.get(RefreshToken, digest, with_for_update=True)
            if old is None or old.used_at is not None or old.revoked_at is not None:
                raise OAuthError("invalid_grant", "the refresh token is no longer valid")
            if old.expires_at <= now:
                raise OAuthError("invalid_grant", "the refresh token has expired")
            if old.dpop_jkt and old.dpop_jkt != dpop_jkt:
                raise OAuthError("invalid_dpop_proof", _bound("refresh token", dpop_jkt))
            account = session.get(Account, old.account_id)
            if account is None or account.status != "active":
                raise OAuthError("invalid_grant", "the account is no longer active")
            wanted = form.get("scope", old.scope).split()
            if set(wanted) - set(old.scope.split()):
                raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            scope = " ".join(wanted)
            jti = secrets.token_urlsafe(16)
            bound: dict[str, Any] = {"cnf": {"jkt": old.dpop_jkt}} if old.dpop_jkt else {}
            first = session.scalars(
                select(AuthorizationCode).where(AuthorizationCode.code_hash.startswith(old.family))
            ).first()
            if first is not None:
                bound |= self._act(session, client, first.claims.get("actor"))
            sub = self.subject(client, account.personal_id)
            access = self.tokens.access_token(
                issuer, sub, client.client_id, scope, jti=jti, acr=old.acr, **bound
            )
            old.used_at = now
            refresh = self._new_refresh(
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
    def _new_refresh(session: Session, row: RefreshToken) -> str:
        token, stamp = _new_refresh_token(utcnow())
        for column, value in stamp.items():
            setattr(row, column, value)
        session.add(row)
        return token

    def _revoke_family(self, session: Session, family: str, now: datetime) -> None:
        expiry = now + self.tokens.access_ttl
        for token in session.scalars(select(RefreshToken).where(RefreshToken.family == family)):
            if token.revoked_at is None:
                token.revoked_at = now
            if token.access_jti:
                session.merge(RevokedToken(jti=token.access_jti, expires_at=expiry))

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
                subject = self._subject(account, client, plain | verified, bool(verified))
                extra = released.release(subject, consented, sorted(plain), sorted(verified))
                self._audit_release(session, client, account, extra, "id_token")
            claims = extra | claims
        return self.keys.sign(claims)

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
                code = session.scalars(
                    select(AuthorizationCode).where(
                        AuthorizationCode.code_hash.startswith(refreshed.family)
                    )
                ).first()
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
            subject = self._subject(account, client, set(plain) | proven, bool(proven))
            out = {"sub": claims["sub"], **released.release(subject, attributes, plain, proven)}
            self._audit_release(session, client, account, out, "userinfo")
        return out

    def _audit_release(
        self, session: Session, client: Client, account: Account, out: dict[str, Any], where: str
    ) -> None:
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

    def _subject(
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
                self._revoke_family(session, family, now)
            record_change(
                session,
                Entry(
                    Actor(f"citizen:{account_id}", "citizen", "", "identity"),
                    "oidc.consent_revoked",
                    f"client:{consent.client_id}",
                ),
            )
        return True

    def logout_target(
        self, id_token_hint: str, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """Where to send the browser after signing out (RP-Initiated Logout 1.0): only to a
        URI the client registered, and only when the hint is an ID token this provider
        signed for that client (expired ones included)."""
        if not id_token_hint or not post_logout_redirect_uri:
            return None
        try:
            claims = jwt.decode(id_token_hint, self.keys.keyset(), algorithms=[ALG]).claims
            client = self.clients.get(str(claims.get("aud", "")))
        except (JoseError, ValueError, NotFound):
            return None
        if post_logout_redirect_uri not in client.post_logout_redirect_uris:
            return None
        query = urlencode({"state": state}) if state else ""
        return f"{post_logout_redirect_uri}{'?' + query if query else ''}"

    def _act(self, session: Session, client: Client, actor_id: Any) -> dict[str, Any]:
        """The ``act`` claim (RFC 8693 section 4.1) naming the guardian, by their own
        pairwise subject for this client, when one acts for the account."""
        if not actor_id:
            return {}
        guardian = session.get(Account, int(actor_id))
        if guardian is None or guardian.status != "active":
            raise OAuthError("invalid_grant", "the guardian's account is no longer active")
        return {"act": {"sub": self.subject(client, guardian.personal_id)}}

    def subject(self, client: Client, personal_id: str) -> str:
        """The pairwise subject of a citizen for a client's sector."""
        mac = hmac.new(self._pairwise_key, f"{client.sector}|{personal_id}".encode(), "sha256")
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _new_refresh_token(now: datetime) -> tuple[str, dict[str, Any]]:
    """A new refresh token, and what its row keeps of it: its digest and lifetime."""
    token = secrets.token_urlsafe(32)
    return token, {"token_hash": _digest(token), "created_at": now, "expires_at": now + REFRESH_TTL}


def _bound(what: str, proved: str) -> str:
    """Why a code or refresh token bound to a DPoP key (RFC 9449 sections 5 and 10) is
    refused: a proof of another key, or none (which would have given a bearer token)."""
    if proved:
        return f"the {what} is bound to another DPoP key"
    return f"the {what} is bound to a DPoP key: send a DPoP proof of that key"


def _amr(methods: list[str]) -> list[str]:
    return [*methods, "mfa"] if len(methods) > 1 else list(methods)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


code_digest = _digest  # what a code is stored as


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
