"""The OpenID provider's HTTP endpoints: discovery, JWKS and the token endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dancu.core.api import ContainerDep
from dancu.identity.clients import SCOPES
from dancu.identity.keys import ALG
from dancu.identity.tokens import ASSERTION_ALGS, OAuthError

router = APIRouter(tags=["openid"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def issuer(request: Request, configured: str) -> str:
    """The configured issuer, or (development) the URL the server is reached at."""
    return configured or str(request.base_url).rstrip("/")


@router.get("/.well-known/openid-configuration")
def discovery(request: Request, container: ContainerDep) -> dict[str, Any]:
    """OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414)."""
    base = issuer(request, container.settings.issuer)
    return {
        "issuer": base,
        "jwks_uri": f"{base}/oidc/jwks",
        "token_endpoint": f"{base}/oidc/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ALG],
        "access_token_signing_alg_values_supported": [ALG],
    }


@router.get("/oidc/jwks")
def jwks(container: ContainerDep) -> JSONResponse:
    """The public keys that verify the provider's tokens (current and recently retired)."""
    return JSONResponse(
        container.keyring.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.post("/oidc/token")
async def token(request: Request, container: ContainerDep) -> JSONResponse:
    """The token endpoint (RFC 6749 section 3.2); grants: client_credentials."""
    import anyio

    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    base = issuer(request, container.settings.issuer)
    endpoint = f"{base}/oidc/token"
    oidc = container.oidc_tokens

    def run() -> dict[str, Any]:
        client = oidc.authenticate(form, request.headers.get("authorization"), base, endpoint)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            response = oidc.client_credentials(client, form.get("scope"), issuer=base)
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        return response.body()

    try:
        body = await anyio.to_thread.run_sync(run)
    except OAuthError as exc:
        headers = dict(NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="dancu"'
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
    return JSONResponse(body, headers=NO_STORE)
