"""A demo relying party for the dancu OpenID provider (``make demo-oidc``).

A small web app, as an agency or a bank would build it with a maintained OIDC client library
(Authlib): "Sign in with dancu" pushes the authorization request (PAR) with PKCE and
``private_key_jwt``, sends the browser to the provider, exchanges the code, checks the ID
token against the provider's JWKS, reads userinfo and shows what it received.

    python tools/demo_rp.py --provider http://127.0.0.1:8000 --port 8001

Its key and client id come from ``<DANCU_DATA_DIR>/demo-rp.json``, written by
``dancu demo seed``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
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


def create_app(provider: str, config_path: Path, base_url: str) -> Starlette:
    config = json.loads(config_path.read_text())
    key = ECKey.import_key(config["private_jwk"])
    client_id, redirect_uri = config["client_id"], f"{base_url}/callback"
    pending: dict[str, dict[str, str]] = {}  # state -> verifier, nonce (a demo keeps it here)

    async def metadata() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{provider}/.well-known/openid-configuration")
            return dict(response.json())

    def client() -> AsyncOAuth2Client:
        auth = PrivateKeyJWT(alg="ES256", headers={"kid": key.kid})
        return AsyncOAuth2Client(
            client_id,
            key,
            token_endpoint_auth_method=auth,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
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
        async with client() as rp:
            url, state = rp.create_authorization_url(
                meta["authorization_endpoint"],
                code_verifier=verifier,
                nonce=nonce,
                scope="openid profile address phone",
            )
            params = dict(httpx.URL(url).params)
            pushed = await rp.post(
                meta["pushed_authorization_request_endpoint"],
                data=params,
                auth=rp.client_auth(rp.token_endpoint_auth_method),
            )
        if pushed.status_code != 201:
            return HTMLResponse(PAGE.format(body=f"<p>PAR failed: {html.escape(pushed.text)}</p>"))
        pending[state] = {"verifier": verifier, "nonce": nonce}
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
        async with client() as rp:
            token = await rp.fetch_token(
                meta["token_endpoint"],
                code=request.query_params["code"],
                code_verifier=flow["verifier"],
            )
            info = (await rp.get(meta["userinfo_endpoint"])).json()
        async with httpx.AsyncClient() as http:
            keys = KeySet.import_key_set((await http.get(meta["jwks_uri"])).json())
        id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
        if id_token["nonce"] != flow["nonce"] or id_token["aud"] != client_id:
            return HTMLResponse(PAGE.format(body="<p>The ID token is not for us.</p>"), 400)
        cells = (
            (html.escape(str(k)), html.escape(json.dumps(v, ensure_ascii=False)))
            for k, v in {**info, "acr": id_token["acr"]}.items()
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
