"""The token endpoint: client authentication and the client-credentials grant.

Agency systems (ministries, banks, telcos) get access tokens with the client-credentials
grant, authenticating with ``private_key_jwt`` (RFC 7523: a JWT signed with their own key,
``iss`` = ``sub`` = client id, ``aud`` = this token endpoint or the issuer, a short lifetime
and a unique ``jti``, which is refused when presented twice) or ``client_secret_basic``.
Access tokens are JWTs signed ES256 with the provider's key (RFC 9068 profile, ``typ``
``at+jwt``), so resource servers verify them offline against the published JWKS.

Errors follow RFC 6749 section 5.2: ``{"error": …, "error_description": …}``.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.errors import NotFound
from dancu.core.timeutil import utcnow
from dancu.identity.clients import ClientRegistry, secret_matches
from dancu.identity.keys import KeyRing
from dancu.identity.models import Client, UsedAssertion

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric algorithms only: "none" and HMAC (a shared secret as a key) are refused.
ASSERTION_ALGS = ["ES256", "ES384", "PS256", "RS256", "EdDSA"]
MAX_ASSERTION_LIFE = timedelta(minutes=60)  # FAPI: no longer than 60 minutes
CLOCK_SKEW = 60  # seconds


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type, not a secret)

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def assertion_issuer(assertion: str) -> str:
    """The client an assertion claims to come from (``iss``), before anything is verified:
    it names the client whose keys then verify the signature."""
    try:
        claims = orjson.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError):
        raise OAuthError("invalid_client", "the client assertion is not a JWT", 401) from None
    if not isinstance(claims, dict):
        raise OAuthError("invalid_client", "the client assertion is not a JWT", 401)
    return str(claims.get("iss", ""))


def _authenticating_with(client: Client, method: str) -> Client:
    """``client``, when it registered ``method`` of authentication; refused otherwise."""
    if client.auth_method != method:
        raise OAuthError(
            "invalid_client", f"this client authenticates with {client.auth_method}", 401
        )
    return client


class ReplayStore:
    """Client assertions seen (client id, ``jti``) until they expire, in the database, so a
    replay to any server process is caught. Expired entries are purged as new ones come."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._next_purge = 0.0

    def first_use(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        try:
            with self.factory() as session, session.begin():
                session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        if time.monotonic() > self._next_purge:
            self._next_purge = time.monotonic() + 60
            with self.factory() as session, session.begin():
                session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < utcnow()))
        return True


class TokenEndpoint:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clients: ClientRegistry,
        keys: KeyRing,
        replay: ReplayStore,
        access_ttl: timedelta = timedelta(minutes=10),
        audience: str = "dancu",
    ) -> None:
        self.factory, self.clients, self.keys, self.replay = factory, clients, keys, replay
        self.access_ttl, self.audience = access_ttl, audience

    # -- client authentication ----------------------------------------------------------

    def authenticate(
        self, form: dict[str, str], authorization: str | None, issuer: str, endpoint: str
    ) -> Client:
        """The client that sent the request, authenticated by the method it registered."""
        assertion_type = form.get("client_assertion_type")
        if assertion_type is not None or "client_assertion" in form:
            if assertion_type != ASSERTION_TYPE:
                raise OAuthError("invalid_client", "unsupported client_assertion_type", 401)
            return self._by_assertion(form.get("client_assertion", ""), issuer, endpoint)
        if authorization and authorization[:6].lower() == "basic ":
            return self._by_secret(authorization[6:])
        raise OAuthError("invalid_client", "client authentication is required", 401)

    def _by_assertion(self, assertion: str, issuer: str, endpoint: str) -> Client:
        client, jti, expires = self.check_assertion(assertion, issuer, endpoint)
        if not self.replay.first_use(client.client_id, jti, expires):
            raise OAuthError("invalid_client", "the client assertion was already used", 401)
        return client

    def check_assertion(
        self, assertion: str, issuer: str, endpoint: str, client_id: str | None = None
    ) -> tuple[Client, str, datetime]:
        """The client a ``private_key_jwt`` assertion authenticates, with the assertion's
        ``jti`` and expiry, everything checked but its single use (the caller's replay
        store decides that). ``client_id``: ``assertion_issuer(assertion)``, when the caller
        has read it already."""
        client_id = assertion_issuer(assertion) if client_id is None else client_id
        client, keyset = self._client_keys(client_id)
        try:
            token = jwt.decode(assertion, keyset, algorithms=ASSERTION_ALGS)
        except (JoseError, ValueError) as exc:
            raise OAuthError(
                "invalid_client", f"the client assertion's signature does not verify ({exc})", 401
            ) from None
        claims = token.claims
        now = int(time.time())
        if claims.get("sub") != client_id:
            raise OAuthError("invalid_client", "the assertion's sub must be the client id", 401)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not {endpoint, issuer} & set(audiences):
            raise OAuthError("invalid_client", "the assertion's aud is not this provider", 401)
        exp, jti = claims.get("exp"), claims.get("jti")
        if not isinstance(exp, int | float) or exp + CLOCK_SKEW < now:
            raise OAuthError("invalid_client", "the client assertion has expired", 401)
        if exp - now > MAX_ASSERTION_LIFE.total_seconds() + CLOCK_SKEW:
            raise OAuthError("invalid_client", "the client assertion lives too long", 401)
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - CLOCK_SKEW > now:
            raise OAuthError("invalid_client", "the client assertion is not valid yet", 401)
        if not isinstance(jti, str) or not 8 <= len(jti) <= 120:
            raise OAuthError("invalid_client", "the client assertion needs a jti", 401)
        return client, jti, datetime.fromtimestamp(exp, UTC)

    def _client_keys(self, client_id: str) -> tuple[Client, KeySet]:
        try:
            client, keyset = self.clients.resolve(client_id)
        except NotFound:
            raise OAuthError("invalid_client", "unknown client", 401) from None
        return _authenticating_with(client, "private_key_jwt"), keyset

    def _by_secret(self, credentials: str) -> Client:
        try:
            client_id, _, secret = (
                base64.b64decode(credentials, validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed basic credentials", 401) from None
        client = self._client(unquote(client_id), "client_secret_basic")
        if not secret_matches(client, unquote(secret)):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def _client(self, client_id: str, method: str) -> Client:
        try:
            client = self.clients.get(client_id)
        except NotFound:
            raise OAuthError("invalid_client", "unknown client", 401) from None
        return _authenticating_with(client, method)

    # -- grants ---------------------------------------------------------------------------

    def client_credentials(
        self, client: Client, scope: str | None, issuer: str, dpop_jkt: str = ""
    ) -> TokenResponse:
        """An access token for the client itself (no person involved)."""
        if "client_credentials" not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use client_credentials")
        wanted = scope.split() if scope else [s for s in client.scopes if s != "openid"]
        refused = sorted(set(wanted) - set(client.scopes) | ({"openid"} & set(wanted)))
        if refused:
            raise OAuthError("invalid_scope", f"scopes not granted to this client: {refused}")
        granted = " ".join(wanted)
        bound = {"cnf": {"jkt": dpop_jkt}} if dpop_jkt else {}
        token = self.access_token(issuer, client.client_id, client.client_id, granted, **bound)
        kind = "DPoP" if dpop_jkt else "Bearer"
        return TokenResponse(token, int(self.access_ttl.total_seconds()), granted, kind)

    def access_token(
        self, issuer: str, subject: str, client_id: str, scope: str, **extra: Any
    ) -> str:
        """A signed JWT access token (RFC 9068) for ``subject`` held by ``client_id``."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + int(self.access_ttl.total_seconds()),
            "jti": secrets.token_urlsafe(16),
            **extra,
        }
        return self.keys.sign(claims, typ="at+jwt")

    def audit_issue(self, client: Client, grant: str) -> None:
        with self.factory() as session, session.begin():
            actor = Actor(f"client:{client.client_id}", "client", "", grant)
            record_change(session, Entry(actor, "oidc.token", f"client:{client.client_id}"))
