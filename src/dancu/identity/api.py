"""The OpenID provider's HTTP endpoints: discovery, JWKS and the token endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu.core.web import security_headers
from dancu.identity import claims as released
from dancu.identity.clients import SCOPES
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.keys import ALG
from dancu.identity.oidc.dpop import PROOF_ALGS as DPOP_ALGS
from dancu.identity.oidc.par import LOA_HIGH, LOA_SUBSTANTIAL
from dancu.identity.oidc.tokens import ASSERTION_ALGS, OAuthError

router = APIRouter(tags=["openid"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def issuer(request: Request, configured: str) -> str:
    """The configured issuer, or (development) the URL the server is reached at."""
    return configured or str(request.base_url).rstrip("/")


@router.get("/.well-known/openid-configuration")
def discovery(request: Request, container: IdentityDep) -> dict[str, Any]:
    """OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414)."""
    base = issuer(request, container.settings.issuer)
    return {
        "issuer": base,
        "jwks_uri": f"{base}/oidc/jwks",
        "token_endpoint": f"{base}/oidc/token",
        "authorization_endpoint": f"{base}/oidc/authorize",
        "pushed_authorization_request_endpoint": f"{base}/oidc/par",
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "end_session_endpoint": f"{base}/oidc/logout",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [LOA_SUBSTANTIAL, LOA_HIGH],
        "claims_parameter_supported": True,
        "claims_supported": ["sub", "acr", "auth_time", *released.ALL_CLAIMS],
        # OpenID Connect for Identity Assurance 1.0: provenance of register-held claims.
        "verified_claims_supported": True,
        "trust_frameworks_supported": [released.TRUST_FRAMEWORK],
        "evidence_supported": ["electronic_record"],
        "claims_in_verified_claims_supported": list(released.REGISTER_CLAIMS),
        "authorization_response_iss_parameter_supported": True,
        "dpop_signing_alg_values_supported": DPOP_ALGS,
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ALG],
        "access_token_signing_alg_values_supported": [ALG],
    }


@router.get("/oidc/jwks")
def jwks(container: IdentityDep) -> JSONResponse:
    """The public keys that verify the provider's tokens (current and recently retired)."""
    return JSONResponse(
        container.keyring.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.post("/oidc/token")
async def token(request: Request, container: IdentityDep) -> JSONResponse:
    """The token endpoint (RFC 6749 section 3.2); grants: client_credentials,
    authorization_code (with PKCE)."""
    form = await _form(request)
    base = issuer(request, container.settings.issuer)
    endpoint = f"{base}/oidc/token"
    oidc = container.oidc_tokens
    fast = container.fast_token
    proofs = request.headers.getlist("dpop")  # several: the thread path refuses them
    proof = proofs[0] if len(proofs) == 1 else None
    if fast is not None and len(proofs) < 2 and fast.accepts(form, proof) and fast.serves_here():
        try:
            return JSONResponse(await fast.answer(form, proof, base, endpoint), headers=NO_STORE)
        except OAuthError as exc:
            return _oauth_error(exc)

    def run() -> dict[str, Any]:
        client = oidc.authenticate(form, request.headers.get("authorization"), base, endpoint)
        jkt = _dpop_key(request, container, endpoint)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return oidc.client_credentials(client, form.get("scope"), base, jkt).body()
        if grant == "authorization_code":
            return container.authorizer.exchange(client, form, base, jkt)
        if grant == "refresh_token":
            return container.authorizer.refresh(client, form, base, jkt)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    return await _oauth(container, run)


@router.post("/oidc/par", status_code=201)
async def pushed_authorization_request(request: Request, container: IdentityDep) -> JSONResponse:
    """Pushed authorization requests (RFC 9126): the client authenticates and sends its
    authorization request here first; the browser then carries only the request_uri. With a
    DPoP proof (RFC 9449 section 10.1) the code can only be redeemed with the proof's key."""
    form = await _form(request)
    base = issuer(request, container.settings.issuer)
    endpoint = f"{base}/oidc/par"

    def run() -> dict[str, Any]:
        client = container.oidc_tokens.authenticate(
            form, request.headers.get("authorization"), base, endpoint
        )
        # RFC 9449 section 10.1: a DPoP proof with the pushed request binds the code to its
        # key, as dpop_jkt does (certified clients send only the header).
        return container.authorizer.push(client, form, _dpop_key(request, container, endpoint))

    return await _oauth(container, run, status_code=201)


@router.get("/oidc/userinfo")
async def userinfo(request: Request, container: IdentityDep) -> JSONResponse:
    """The claims the citizen agreed to release, for a bearer access token."""
    return await _userinfo(request, container)


@router.post("/oidc/userinfo")
async def userinfo_post(request: Request, container: IdentityDep) -> JSONResponse:
    """The same as GET (OpenID Connect Core 5.3.1 allows both)."""
    return await _userinfo(request, container)


async def _userinfo(request: Request, container: IdentityNeeds) -> JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    base = issuer(request, container.settings.issuer)
    token, scheme = token.strip(), scheme.lower()
    proof = request.headers.get("dpop")
    if scheme not in ("bearer", "dpop") or not token or (scheme == "dpop" and not proof):
        return JSONResponse(
            {"error": "invalid_token", "error_description": "send the access token"},
            status_code=401,
            headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="dancu", DPoP algs="ES256"'},
        )

    def run() -> dict[str, Any]:
        jkt = None
        if scheme == "dpop" and proof:
            url = f"{base}/oidc/userinfo"
            try:
                jkt = container.dpop.verify(
                    _one_proof(request) or "", request.method, url, access_token=token
                )
            except OAuthError as exc:  # at a resource, a bad proof is a 401 (RFC 9449 7.1)
                raise OAuthError(exc.error, exc.description, 401) from None
        return container.authorizer.userinfo(token, base, jkt)

    return await _oauth(container, run)


def _one_proof(request: Request) -> str | None:
    """The request's DPoP proof (None: no ``DPoP`` header); several are refused (RFC 9449
    section 4.3: not more than one)."""
    proofs = request.headers.getlist("dpop")
    if len(proofs) > 1:
        raise OAuthError("invalid_dpop_proof", "send one DPoP proof, not several")
    return proofs[0] if proofs else None


def _dpop_key(request: Request, container: IdentityNeeds, endpoint: str) -> str:
    """The thumbprint of the key a POST's DPoP proof proves ("" without a proof); a proof
    that is there but wrong (empty included) is refused."""
    proof = _one_proof(request)
    return "" if proof is None else container.dpop.verify(proof, "POST", endpoint)


async def _oauth(
    container: IdentityNeeds, run: Callable[[], dict[str, Any]], status_code: int = 200
) -> JSONResponse:
    """Run a synchronous OAuth step off the event loop, on the provider's few threads of
    its own (``oauth_threads``); errors as RFC 6749 5.2 bodies."""
    try:
        body = await anyio.to_thread.run_sync(run, limiter=container.oauth_limiter)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    challenge = _challenge(exc)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _challenge(exc: OAuthError) -> str:
    """The ``WWW-Authenticate`` header of a 401 answer (none for others)."""
    if exc.status != 401:
        return ""
    scheme = {"invalid_token": "Bearer", "invalid_dpop_proof": "DPoP"}.get(exc.error, "Basic")
    return f'{scheme} realm="dancu", error="{exc.error}"'


async def _form(request: Request) -> dict[str, str]:
    """The form fields of an OAuth request (urlencoded, parsed directly: it is the common
    case and the cheapest)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


class TokenFastPath:
    """Pure ASGI middleware answering the requests ``FastTokenEndpoint.accepts`` (client
    credentials and the code exchange with ``private_key_jwt``) before the framework's
    routing and middleware, as ``registry.api.PersonLookupFastPath`` does for lookups. It
    answers exactly as ``token`` above, which stays the documented route and serves every
    other request (the body read here is handed on to it unchanged)."""

    def __init__(self, app: ASGIApp, container: IdentityNeeds) -> None:
        self.app, self.container = app, container
        self.headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"pragma", b"no-cache"),
            *security_headers("/oidc/token", container.settings.secure_cookies),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.container.fast_token if scope.get("path") == "/oidc/token" else None
        if fast is None or scope["method"] != "POST" or not fast.serves_here():
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        urlencoded = headers.get(b"content-type", b"").startswith(
            b"application/x-www-form-urlencoded"
        )
        proofs = [v for k, v in scope["headers"] if k == b"dpop"]
        if not urlencoded or len(proofs) > 1 or int(headers.get(b"content-length", 0)) > 65536:
            await self.app(scope, receive, send)  # (one DPoP header at most: RFC 9449 4.3)
            return
        proof = proofs[0].decode("latin-1") if proofs else None
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not fast.accepts(form, proof):
            await self.app(scope, _replay(bytes(body)), send)
            return
        base = self.container.settings.issuer or _base_url(scope, headers)
        try:
            answer = await fast.answer(form, proof, base, f"{base}/oidc/token")
            status, extra = 200, []
        except OAuthError as exc:
            answer, status = exc.body(), exc.status
            challenge = _challenge(exc)
            extra = [(b"www-authenticate", challenge.encode())] if challenge else []
        payload = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *self.headers,
                    *extra,
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands on a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _base_url(scope: Scope, headers: dict[bytes, bytes]) -> str:
    host = headers.get(b"host", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"
