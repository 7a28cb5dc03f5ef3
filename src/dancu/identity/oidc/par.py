"""Step 1 of the code flow: the authorization request, pushed (PAR, RFC 9126) or sent to the
authorization endpoint in full, checked before the citizen sees anything: a known client, an
exactly registered redirect URI, ``response_type=code``, ``openid`` among granted scopes, a
PKCE challenge (S256 only, always required; RFC 7636). Until the redirect URI is known to be
the client's, errors are shown to the citizen, never redirected (no open redirector).

Step 2's check lives here too: the account's level gives the ``acr`` (level 1 →
``substantial``, level 2 → ``high``), and a request that requires ``high`` from a level-1
sign-in ends with ``unmet_authentication_requirements``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.errors import NotFound
from dancu.core.timeutil import utcnow
from dancu.identity import claims as released
from dancu.identity.clients import ClientRegistry
from dancu.identity.models import Client, PushedRequest
from dancu.identity.oidc.tokens import OAuthError

LOA_SUBSTANTIAL = "urn:dancu:loa:substantial"
LOA_HIGH = "urn:dancu:loa:high"
ACR_BY_LEVEL = {1: LOA_SUBSTANTIAL, 2: LOA_HIGH}
PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
PAR_TTL = timedelta(seconds=90)
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


def check_level(request: AuthRequest, level: int) -> None:
    """Whether a sign-in at ``level`` meets what the request requires; raises if not."""
    if request.requires_high and level < 2:
        raise AuthorizeError(
            "unmet_authentication_requirements",
            "this service needs a level-2 account",
            request.redirect_uri,
            request.state,
        )


class Requests:
    """Authorization requests: checked, and the pushed ones kept until used."""

    def __init__(self, factory: sessionmaker[Session], clients: ClientRegistry) -> None:
        self.factory, self.clients = factory, clients

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
            request = self.check({**params, "client_id": client.client_id})
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
            return self.check(query)
        with self.factory() as session, session.begin():
            pushed = session.get(PushedRequest, uri, with_for_update=True)
            if pushed is None or pushed.expires_at <= utcnow():
                raise AuthorizeError("invalid_request_uri", "the request has expired: start again")
            if pushed.client_id != query.get("client_id"):
                raise AuthorizeError("invalid_request_uri", "the request belongs to another client")
            session.delete(pushed)
            return AuthRequest.from_dict(pushed.params)

    def check(self, q: dict[str, str]) -> AuthRequest:
        """The request ``q`` makes, checked; raises ``AuthorizeError``."""
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
        request.attributes = _attributes(client, request)
        return request


def _attributes(client: Client, request: AuthRequest) -> list[str]:
    """The claims this request would release, in a stable order."""
    asked = released.ClaimsRequest.parse(request.claims)
    return released.attributes(request.scopes, asked, client.claims)
