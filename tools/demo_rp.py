"""A demo relying party for the dancu OpenID provider (``make demo-oidc``).

A small web app, as an agency or a bank would build it with a maintained OIDC client library
(Authlib): "Sign in with dancu" pushes the authorization request (PAR) with PKCE,
``private_key_jwt`` and a DPoP proof (which binds the code to that key: RFC 9449 section
10.1), sends the browser to the provider, exchanges the code with a proof of the same key,
checks the ID token against the provider's JWKS, reads userinfo with the DPoP-bound access
token and shows what it received, including the register's provenance of the claims
(``verified_claims``).

Authlib signs resource requests with bearer tokens only; ``DPoPOAuth2Client`` and
``AsyncDPoPOAuth2Client`` below add RFC 9449 through Authlib's own extension point (the token
auth class), and can be copied by integrators.

    python tools/demo_rp.py --provider http://127.0.0.1:8000 --port 8001

Its key and client id come from ``<DANCU_DATA_DIR>/demo-rp.json``, written by
``dancu demo seed``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import secrets
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Auth, OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo RP</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
a.button{{display:inline-block;background:#a3111e;color:#fff;padding:.7rem 1.2rem;
border-radius:6px;text-decoration:none}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}</style></head>
<body><h1>Dịch vụ mẫu · Demo service</h1>{body}</body></html>"""


# What the demo asks for: the profile with the register's provenance, the address and phone.
CLAIMS = {
    "userinfo": {
        "verified_claims": {
            "verification": {"trust_framework": None},
            "claims": {"name": None, "birthdate": None, "personal_id": None},
        }
    },
    "id_token": {"birthdate": {"essential": True}},
}


def dpop_proof(key: ECKey, method: str, url: str, access_token: str | None = None) -> str:
    """A DPoP proof (RFC 9449 section 4.2) of ``key`` for one request."""
    claims: dict[str, Any] = {
        "htm": method.upper(),
        "htu": url.split("?", 1)[0].split("#", 1)[0],
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
    }
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key)


class DPoPAuth(OAuth2Auth):
    """Authlib's token auth, taught the ``DPoP`` token type: ``Authorization: DPoP <token>``
    and a fresh proof bound to the token (``ath``) on every request."""

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        if str(self.token.get("token_type", "")).lower() != "dpop":
            yield from super().auth_flow(request)
            return
        access = self.token["access_token"]
        request.headers["Authorization"] = f"DPoP {access}"
        request.headers["DPoP"] = dpop_proof(
            self.client.dpop_key, request.method, str(request.url), access
        )
        yield request


class _DPoP:
    token_auth_class = DPoPAuth
    dpop_key: ECKey

    def dpop_jkt(self) -> str:
        """The thumbprint to send with the authorization request (RFC 9449 section 10):
        the code can then only be redeemed with this key. With PAR, a proof
        (``dpop_headers(par_endpoint)``) does the same."""
        return str(self.dpop_key.thumbprint())

    def dpop_headers(self, url: str, method: str = "POST") -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, url)}


class DPoPOAuth2Client(_DPoP, OAuth2Client):
    """Authlib's OAuth2Client with DPoP-bound tokens (``fetch_token`` with
    ``headers=client.dpop_headers(token_endpoint)``)."""

    def __init__(self, *args: Any, dpop_key: ECKey, **kwargs: Any) -> None:
        self.dpop_key = dpop_key
        super().__init__(*args, **kwargs)


class AsyncDPoPOAuth2Client(_DPoP, AsyncOAuth2Client):
    """The asyncio twin of ``DPoPOAuth2Client``."""

    def __init__(self, *args: Any, dpop_key: ECKey, **kwargs: Any) -> None:
        self.dpop_key = dpop_key
        super().__init__(*args, **kwargs)


def create_app(provider: str, config_path: Path, base_url: str) -> Starlette:
    config = json.loads(config_path.read_text())
    key = ECKey.import_key(config["private_jwk"])
    client_id, redirect_uri = config["client_id"], f"{base_url}/callback"
    pending: dict[str, dict[str, Any]] = {}  # state -> verifier, nonce, DPoP key (kept here)

    async def metadata() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{provider}/.well-known/openid-configuration")
            return dict(response.json())

    def client(dpop_key: ECKey) -> AsyncDPoPOAuth2Client:
        auth = PrivateKeyJWT(alg="ES256", headers={"kid": key.kid})
        return AsyncDPoPOAuth2Client(
            client_id,
            key,
            token_endpoint_auth_method=auth,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            dpop_key=dpop_key,
        )

    async def home(request: Request) -> Response:
        body = (
            "<p>Đăng nhập bằng tài khoản định danh điện tử · Sign in with your electronic "
            'identity.</p><p><a class="button" href="/login">Đăng nhập với dancu</a></p>'
        )
        return HTMLResponse(PAGE.format(body=body))

    async def login(request: Request) -> Response:
        meta = await metadata()
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        dpop_key = ECKey.generate_key("P-256", private=True)  # one per sign-in
        async with client(dpop_key) as rp:
            url, state = rp.create_authorization_url(
                meta["authorization_endpoint"],
                code_verifier=verifier,
                nonce=nonce,
                scope="openid profile address phone",
                claims=json.dumps(CLAIMS),
            )
            params = dict(httpx.URL(url).params)
            par = meta["pushed_authorization_request_endpoint"]
            # A DPoP proof with the pushed request binds the code to the key, as certified
            # libraries (openid-client) do; pushing dpop_jkt=rp.dpop_jkt() would do the same.
            pushed = await rp.post(
                par,
                data=params,
                auth=rp.client_auth(rp.token_endpoint_auth_method),
                headers=rp.dpop_headers(par),
            )
        if pushed.status_code != 201:
            return HTMLResponse(PAGE.format(body=f"<p>PAR failed: {html.escape(pushed.text)}</p>"))
        pending[state] = {"verifier": verifier, "nonce": nonce, "dpop_key": dpop_key}
        query = urlencode({"client_id": client_id, "request_uri": pushed.json()["request_uri"]})
        return RedirectResponse(f"{meta['authorization_endpoint']}?{query}", status_code=303)

    async def callback(request: Request) -> Response:
        meta = await metadata()
        state = request.query_params.get("state", "")
        if "error" in request.query_params:
            error = html.escape(request.query_params.get("error_description", ""))
            return HTMLResponse(PAGE.format(body=f"<p>Không đăng nhập được: {error}</p>"))
        flow = pending.pop(state, None)
        if flow is None or request.query_params.get("iss") != meta["issuer"]:
            return HTMLResponse(PAGE.format(body="<p>Unknown or forged response.</p>"), 400)
        async with client(flow["dpop_key"]) as rp:
            token = await rp.fetch_token(
                meta["token_endpoint"],
                code=request.query_params["code"],
                code_verifier=flow["verifier"],
                headers=rp.dpop_headers(meta["token_endpoint"]),
            )
            info = (await rp.get(meta["userinfo_endpoint"])).json()
        async with httpx.AsyncClient() as http:
            keys = KeySet.import_key_set((await http.get(meta["jwks_uri"])).json())
        id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
        if id_token["nonce"] != flow["nonce"] or id_token["aud"] != client_id:
            return HTMLResponse(PAGE.format(body="<p>The ID token is not for us.</p>"), 400)
        cells = (
            (html.escape(str(k)), html.escape(json.dumps(v, ensure_ascii=False)))
            for k, v in {**info, "acr": id_token["acr"], "token_type": token["token_type"]}.items()
        )
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in cells)
        body = f"<p>Đã đăng nhập · Signed in.</p><table>{rows}</table><p><a href='/'>↩</a></p>"
        return HTMLResponse(PAGE.format(body=body))

    return Starlette(
        routes=[Route("/", home), Route("/login", login), Route("/callback", callback)]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", default="http://127.0.0.1:8000")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    data = Path(os.environ.get("DANCU_DATA_DIR", "var"))
    app = create_app(args.provider, data / "demo-rp.json", f"http://127.0.0.1:{args.port}")
    print(f"demo relying party on http://127.0.0.1:{args.port}")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
