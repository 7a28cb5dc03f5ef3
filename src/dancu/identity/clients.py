"""Relying parties and agency systems registered with the OpenID provider.

A client authenticates at the token endpoint with ``private_key_jwt`` (its public keys given
as a JWKS document or a JWKS URI; the private key never leaves the agency) or
``client_secret_basic`` (a random secret shown once, stored as a SHA-256 digest: it has 256
bits of entropy, so a slow hash buys nothing). Redirect URIs are matched exactly.

Only ministry administrators register, disable and enable clients (the CLI acts as
``OPERATOR``); each of these changes is audited in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Entry, record_change
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.i18n import N_
from dancu.core.timeutil import utcnow
from dancu.identity.models import Client

GRANTS = ("authorization_code", "refresh_token", "client_credentials")
SCOPES = ("openid", "profile", "address", "phone", "email", "registry.lookup", "registry.events")
SENSITIVE_CLAIMS = ("personal_id", "picture")  # released only to clients granted them
JWKS_CACHE_S = 600.0
CLIENT_CACHE_S = 30.0
AUDIT_PURPOSE = "oidc-client-administration"
# Who registers clients from the command line (``dancu identity client add``).
OPERATOR = OfficerContext("operator", Role.MINISTRY, purpose=AUDIT_PURPOSE)
# Reasons built into run-time messages ("<uri>: reason"), marked so the forms translate them.
_REASONS = (
    N_("an absolute URI without a fragment"),
    N_("https (http only for 127.0.0.1 or localhost)"),
    N_("the JWKS is not valid"),
)


Grant = Literal["authorization_code", "refresh_token", "client_credentials"]


def _default_grants() -> list[Grant]:
    return ["client_credentials"]


class ClientRegistration(BaseModel):
    name: str = Field(min_length=2, max_length=120)
    purpose: str = Field(min_length=5, max_length=300)  # in Vietnamese, as citizens read it
    purpose_en: str = Field(default="", max_length=300)  # for the English pages (optional)
    # At most 32 characters: the id is part of audit actors and subjects ("client:<id>").
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{3,32}$")
    auth_method: Literal["private_key_jwt", "client_secret_basic"] = "private_key_jwt"
    jwks: dict[str, Any] | None = None
    jwks_uri: str = Field(default="", max_length=300)
    redirect_uris: list[str] = Field(default_factory=list)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    grant_types: list[Grant] = Field(default_factory=_default_grants, min_length=1)
    scopes: list[str] = Field(default_factory=lambda: ["openid"])
    claims: list[str] = Field(default_factory=list)
    sector: str = ""

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _redirects(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            parts = urlsplit(uri)
            local = parts.hostname in ("127.0.0.1", "localhost", "::1")
            if parts.fragment or not parts.netloc:
                raise ValueError(f"{uri}: an absolute URI without a fragment")
            if parts.scheme != "https" and not (parts.scheme == "http" and local):
                raise ValueError(f"{uri}: https (http only for 127.0.0.1 or localhost)")
        return uris

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, uri: str) -> str:
        if (
            uri
            and urlsplit(uri).scheme != "https"
            and urlsplit(uri).hostname
            not in (
                "127.0.0.1",
                "localhost",
            )
        ):
            raise ValueError("the JWKS URI must use https")
        return uri

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
        return scopes

    @field_validator("claims")
    @classmethod
    def _claims(cls, claims: list[str]) -> list[str]:
        unknown = sorted(set(claims) - set(SENSITIVE_CLAIMS))
        if unknown:
            raise ValueError(f"claims granted one by one are {', '.join(SENSITIVE_CLAIMS)}")
        return claims


class ClientOut(BaseModel):
    client_id: str
    name: str
    purpose: str
    purpose_en: str = ""
    auth_method: str
    grant_types: list[str]
    scopes: list[str]
    claims: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    jwks: dict[str, Any] | None = None  # public keys only
    jwks_uri: str = ""
    sector: str = ""
    created_at: datetime | None = None
    disabled_at: datetime | None = None
    client_secret: str | None = None  # only when just created


class ClientRegistry:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._clients: dict[str, tuple[float, Client, KeySet]] = {}
        self._lock = threading.Lock()

    def register(self, data: ClientRegistration, ctx: OfficerContext = OPERATOR) -> ClientOut:
        """Register a client; a ``client_secret_basic`` client gets its secret once, here.
        Everything is checked before anything is written; the client and its audit entry
        commit together."""
        _require_admin(ctx)
        secret = None
        if data.auth_method == "private_key_jwt":
            if bool(data.jwks) == bool(data.jwks_uri):
                raise Invalid("give the client's public keys: a JWKS or a JWKS URI", "jwks")
            if data.jwks is not None:
                _public_keyset(data.jwks)
        else:
            secret = secrets.token_urlsafe(32)
        if set(data.grant_types) & {"authorization_code"} and not data.redirect_uris:
            raise Invalid("the authorization code flow needs a redirect URI", "redirect_uris")
        client_id = data.client_id or f"c-{secrets.token_hex(8)}"
        sector = data.sector or _sector(data.redirect_uris) or client_id
        with self.factory() as session, session.begin():
            if session.get(Client, client_id) is not None:
                raise Conflict("a client with this id exists", "client_id")
            client = Client(
                client_id=client_id,
                name=data.name,
                purpose=data.purpose,
                purpose_en=data.purpose_en,
                auth_method=data.auth_method,
                secret_hash=digest(secret) if secret else "",
                jwks=data.jwks,
                jwks_uri=data.jwks_uri,
                redirect_uris=data.redirect_uris,
                post_logout_redirect_uris=data.post_logout_redirect_uris,
                grant_types=list(data.grant_types),
                scopes=data.scopes,
                claims=data.claims,
                sector=sector,
                created_at=utcnow(),
            )
            session.add(client)
            detail = (
                f"client_id={client_id} name={data.name!r} auth={data.auth_method} "
                f"grants={','.join(data.grant_types)} scopes={','.join(data.scopes)} "
                f"claims={','.join(data.claims)}"
            )
            record_change(session, _entry(ctx, "oidc.client.register", client_id, detail))
            return _out(client, secret)

    def details(self, client_id: str) -> ClientOut:
        """A registered client, disabled or not (for administrators; never its secret)."""
        with self.factory() as session:
            client = session.get(Client, client_id)
            if client is None:
                raise NotFound("no such client", "client_id")
            return _out(client, None)

    def set_disabled(self, client_id: str, disabled: bool, ctx: OfficerContext) -> ClientOut:
        """Disable a client (it can no longer sign citizens in or obtain tokens: at once in
        this process, within ``CLIENT_CACHE_S`` in others; tokens already issued live until
        they expire) or enable it again. Audited when the state changes."""
        _require_admin(ctx)
        with self.factory() as session, session.begin():
            client = session.get(Client, client_id)
            if client is None:
                raise NotFound("no such client", "client_id")
            if (client.disabled_at is not None) != disabled:
                client.disabled_at = utcnow() if disabled else None
                action = "oidc.client.disable" if disabled else "oidc.client.enable"
                record_change(session, _entry(ctx, action, client_id, f"client_id={client_id}"))
            out = _out(client, None)
        self._clients.pop(client_id, None)
        return out

    def get(self, client_id: str) -> Client:
        with self.factory() as session:
            client = session.get(Client, client_id)
            if client is None or client.disabled_at is not None:
                raise NotFound("no such client", "client_id")
            session.expunge(client)
            return client

    def resolve(self, client_id: str) -> tuple[Client, KeySet]:
        """The client and its public keys, from a cache refreshed every ``CLIENT_CACHE_S``
        (a disabled client stops working within that time)."""
        cached = self.cached(client_id)
        if cached is not None:
            return cached
        client = self.get(client_id)
        keyset = self.keyset(client) if client.auth_method == "private_key_jwt" else KeySet([])
        self._clients[client_id] = (time.monotonic(), client, keyset)
        return client, keyset

    def cached(self, client_id: str) -> tuple[Client, KeySet] | None:
        """The cached client, when fresh (no database or network access)."""
        entry = self._clients.get(client_id)
        if entry is None or time.monotonic() - entry[0] > CLIENT_CACHE_S:
            return None
        return entry[1], entry[2]

    def list(self) -> list[ClientOut]:
        with self.factory() as session:
            return [_out(c, None) for c in session.scalars(select(Client).order_by(Client.name))]

    def keyset(self, client: Client) -> KeySet:
        """The client's public keys (from its JWKS URI, cached for ten minutes)."""
        if client.jwks is not None:
            return _public_keyset(client.jwks)
        cached = self._jwks_cache.get(client.jwks_uri)
        if cached is None or time.monotonic() - cached[0] > JWKS_CACHE_S:
            with urllib.request.urlopen(client.jwks_uri, timeout=5) as response:  # noqa: S310
                document = json.loads(response.read(1 << 20))
            with self._lock:
                self._jwks_cache[client.jwks_uri] = cached = (time.monotonic(), document)
        return _public_keyset(cached[1])


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(client: Client, secret: str) -> bool:
    return bool(client.secret_hash) and hmac.compare_digest(client.secret_hash, digest(secret))


def _public_keyset(document: dict[str, Any]) -> KeySet:
    try:
        keyset = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise Invalid(f"the JWKS is not valid: {exc}", "jwks") from None
    if not keyset.keys:
        raise Invalid("the JWKS holds no key", "jwks")
    if any(k.is_private for k in keyset.keys):
        raise Invalid("the JWKS holds a private key: register public keys only", "jwks")
    return keyset


def _require_admin(ctx: OfficerContext) -> None:
    if ctx.role is not Role.MINISTRY:
        raise Forbidden("only ministry administrators manage the clients of the provider")


def _entry(ctx: OfficerContext, action: str, client_id: str, detail: str) -> Entry:
    # The subject column holds 40 characters; the detail always names the whole client id.
    return Entry(ctx.actor(AUDIT_PURPOSE), action, f"client:{client_id}"[:40], detail)


def _sector(redirect_uris: list[str]) -> str:
    hosts = {urlsplit(u).hostname or "" for u in redirect_uris}
    return hosts.pop() if len(hosts) == 1 else ""


def _out(client: Client, secret: str | None) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        purpose=client.purpose,
        purpose_en=client.purpose_en,
        auth_method=client.auth_method,
        grant_types=list(client.grant_types),
        scopes=list(client.scopes),
        claims=list(client.claims),
        redirect_uris=list(client.redirect_uris),
        post_logout_redirect_uris=list(client.post_logout_redirect_uris),
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
        sector=client.sector,
        created_at=client.created_at,
        disabled_at=client.disabled_at,
        client_secret=secret,
    )
