"""DPoP at the pushed authorization request (RFC 9449 section 10.1), over real HTTP with
Authlib's client (the DPoP client of the demo relying party, tools/demo_rp.py): a relying
party that sends only a ``DPoP`` header with its PAR, as certified libraries do, gets a code
bound to that key; the code and the refresh tokens it leads to are refused with another key
or with no proof at all; a bad proof at the PAR endpoint is refused there. Both databases."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError as ClientError
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from tools.demo_rp import DPoPOAuth2Client

from dancu.bootstrap import Container
from dancu.core import audit
from tests.functional.test_oidc import (
    _browser_signs_in,
    _metadata,
    _proof,
    _query,
    _rp,
    register_app,
)


@pytest.fixture
def app(container: Container) -> tuple[str, ECKey, str]:
    """A relying party that keeps citizens signed in (refresh tokens), and a citizen."""
    from dancu.demo import ba_dinh_family

    father = ba_dinh_family(container.registry)["father"]
    container.identity.provision(father, "0912345678", "482915", 1)
    key = ECKey.generate_key("P-256", parameters={"kid": "app-1"}, private=True)
    register_app(container, key)
    return "app", key, father


def _push(
    rp: DPoPOAuth2Client, meta: dict[str, Any], verifier: str, **extra: Any
) -> httpx.Response:
    """The relying party pushes its authorization request, authenticated with
    private_key_jwt; ``headers`` (a DPoP proof, say) and parameters as given."""
    headers = extra.pop("headers", None)
    url, _state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, scope="openid profile", **extra
    )
    return rp.post(
        meta["pushed_authorization_request_endpoint"],
        data=dict(parse_qsl(urlsplit(url).query)),
        auth=rp.client_auth(rp.token_endpoint_auth_method),
        headers=headers,
    )


def _pushing(provider: str) -> tuple[dict[str, Any], str, str, ECKey, str]:
    """What a relying party needs to push a request bound to a key: the provider's metadata,
    its pushed authorization request and token endpoints, the DPoP key and a PKCE verifier."""
    meta = _metadata(provider)
    par, token_url = meta["pushed_authorization_request_endpoint"], meta["token_endpoint"]
    holder = ECKey.generate_key("P-256", private=True)
    return meta, par, token_url, holder, secrets.token_urlsafe(48)


def _refused(response: httpx.Response, error: str = "invalid_dpop_proof") -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return str(body["error_description"])


def test_a_code_pushed_with_a_dpop_header_is_bound_to_its_key(
    provider: str, app: tuple[str, ECKey, str], container: Container
) -> None:
    client_id, key, citizen = app
    meta, par, token_url, holder, verifier = _pushing(provider)
    thief = ECKey.generate_key("P-256", private=True)
    with _rp(client_id, key, dpop_key=holder) as rp:
        # Only the header, no dpop_jkt: as openid-client and other certified RPs send it.
        pushed = _push(rp, meta, verifier, headers=rp.dpop_headers(par))
        assert pushed.status_code == 201, pushed.text
        query = urlencode({"client_id": client_id, "request_uri": pushed.json()["request_uri"]})
        back = _browser_signs_in(provider, f"/oidc/authorize?{query}", citizen, "482915")
        code = _query(back.headers["location"])["code"]

        def redeem(headers: dict[str, str] | None) -> dict[str, Any]:
            return dict(
                rp.fetch_token(token_url, code=code, code_verifier=verifier, headers=headers)
            )

        # Another key, or no proof at all (a bearer token would come back): refused, and the
        # code stays for its holder.
        with pytest.raises(ClientError) as stolen:
            redeem({"DPoP": _proof(thief, "POST", token_url)})
        assert stolen.value.error == "invalid_dpop_proof"
        with pytest.raises(ClientError) as bare:
            redeem(None)
        assert bare.value.error == "invalid_dpop_proof"
        assert "DPoP" in str(bare.value.description)
        token = redeem(rp.dpop_headers(token_url))
        assert token["token_type"] == "DPoP"
        keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
        access = jwt.decode(token["access_token"], keys, algorithms=["ES256"]).claims
        assert access["cnf"] == {"jkt": holder.thumbprint()}
        assert rp.get(meta["userinfo_endpoint"]).json()["name"] == "Nguyễn Văn An"

        # The refresh token is bound to the same key: refused without it.
        refresh = token["refresh_token"]
        with pytest.raises(ClientError) as bare:
            rp.refresh_token(token_url, refresh_token=refresh)
        assert bare.value.error == "invalid_dpop_proof"
        with pytest.raises(ClientError) as stolen:
            rp.refresh_token(
                token_url, refresh_token=refresh, headers={"DPoP": _proof(thief, "POST", token_url)}
            )
        assert stolen.value.error == "invalid_dpop_proof"
        renewed = rp.refresh_token(
            token_url, refresh_token=refresh, headers=rp.dpop_headers(token_url)
        )
        assert renewed["token_type"] == "DPoP"
        access = jwt.decode(renewed["access_token"], keys, algorithms=["ES256"]).claims
        assert access["cnf"] == {"jkt": holder.thumbprint()}

    # The header and a dpop_jkt that agree: accepted and bound the same way.
    with _rp(client_id, key, dpop_key=holder) as rp:
        both = _push(rp, meta, verifier, dpop_jkt=rp.dpop_jkt(), headers=rp.dpop_headers(par))
        assert both.status_code == 201, both.text
    with container.sessions() as session:
        assert audit.verify(session).ok


def test_bad_dpop_proofs_at_the_par_endpoint_are_refused(
    provider: str, app: tuple[str, ECKey, str]
) -> None:
    client_id, key, _citizen = app
    meta, par, token_url, holder, verifier = _pushing(provider)
    other = ECKey.generate_key("P-256", private=True)

    def unsigned_alg_none() -> str:
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        header = {"typ": "dpop+jwt", "alg": "none", "jwk": holder.as_dict(private=False)}
        return f"{part(header)}.{part({'htm': 'POST', 'htu': par, 'iat': int(time.time())})}."

    def private_key_in_header() -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": holder.as_dict(private=True)}
        claims = {"htm": "POST", "htu": par, "iat": int(time.time()), "jti": "j" * 16}
        return jwt.encode(header, claims, holder)

    def plain_jwt() -> str:
        claims = {"htm": "POST", "htu": par, "iat": int(time.time()), "jti": "k" * 16}
        return jwt.encode({"alg": "ES256", "jwk": holder.as_dict(private=False)}, claims, holder)

    bad = {
        "garbage": "not-a-jwt",
        "empty": "",
        "unsigned": unsigned_alg_none(),
        "typ not dpop+jwt": plain_jwt(),
        "a private key": private_key_in_header(),
        "the token endpoint's URL": _proof(holder, "POST", token_url),
        "another method": _proof(holder, "GET", par),
        "too old": _proof(holder, "POST", par, iat=int(time.time()) - 3600),
        "from the future": _proof(holder, "POST", par, iat=int(time.time()) + 3600),
        "no jti": _proof(holder, "POST", par, jti=None),
    }
    with _rp(client_id, key, dpop_key=holder) as rp:
        for name, proof in bad.items():
            answer = _push(rp, meta, verifier, headers={"DPoP": proof})
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["error"] == "invalid_dpop_proof", name

        # Two DPoP headers (RFC 9449 4.3: not more than one).
        twice = [("DPoP", _proof(holder, "POST", par)), ("DPoP", _proof(holder, "POST", par))]
        two = _push(rp, meta, verifier, headers=twice)
        assert "one DPoP" in _refused(two)

        # A dpop_jkt that contradicts the header's key.
        contradicted = _push(
            rp, meta, verifier, dpop_jkt=other.thumbprint(), headers=rp.dpop_headers(par)
        )
        assert "dpop_jkt" in _refused(contradicted)

        # A proof is single use: the same one again is a replay.
        proof = _proof(holder, "POST", par)
        assert _push(rp, meta, verifier, headers={"DPoP": proof}).status_code == 201
        assert "already used" in _refused(_push(rp, meta, verifier, headers={"DPoP": proof}))

        # Without a header, a dpop_jkt alone still binds the request (unchanged).
        alone = _push(rp, meta, verifier, dpop_jkt=other.thumbprint())
        assert alone.status_code == 201, alone.text

    # An unauthenticated client learns nothing about its proof: client authentication first.
    anonymous = httpx.post(par, data={"client_id": client_id}, headers={"DPoP": "not-a-jwt"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
