"""The OpenID provider over real HTTP, driven by a maintained client library (Authlib):
discovery, JWKS and key rotation, the client-credentials grant with private_key_jwt and
client_secret_basic, and every way a client assertion can be wrong; the code flow with PAR,
PKCE, private_key_jwt and DPoP (Authlib's client with the DPoP token auth of the demo relying
party, tools/demo_rp.py), the claims parameter and verified claims. Both databases."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey
from sqlalchemy import select
from tools.demo_rp import DPoPOAuth2Client

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.models import AuditEntry
from dancu.identity.clients import ClientRegistration
from tests.helpers import authorize_query, register_rp

ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def agency(container: Container) -> tuple[str, ECKey]:
    """A ministry system registered with its public key (its private key stays with it)."""
    key = ECKey.generate_key("P-256", parameters={"kid": "bhxh-2026"}, private=True)
    out = container.clients.register(
        ClientRegistration(
            name="Bảo hiểm xã hội Việt Nam",
            purpose="verify insured persons' identity",
            client_id="bhxh",
            jwks={"keys": [key.as_dict(private=False)]},
            scopes=["registry.lookup"],
        )
    )
    return out.client_id, key


def _metadata(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/.well-known/openid-configuration")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _assertion(key: ECKey, client_id: str, aud: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        **overrides,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _token(base: str, assertion: str, **form: str) -> httpx.Response:
    return httpx.post(
        f"{base}/oidc/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION,
            "client_assertion": assertion,
            **form,
        },
    )


def test_client_credentials_with_private_key_jwt_through_authlib(
    provider: str, agency: tuple[str, ECKey], container: Container
) -> None:
    meta = _metadata(provider)
    assert (
        meta["issuer"] == provider
        and "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    )
    client_id, key = agency
    auth = PrivateKeyJWT(meta["token_endpoint"], alg="ES256", headers={"kid": key.kid})
    with OAuth2Client(client_id, key, token_endpoint_auth_method=auth) as rp:
        token = rp.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "registry.lookup"
    assert 0 < token["expires_in"] <= 600

    jwks = httpx.get(meta["jwks_uri"])
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    verified = jwt.decode(
        token["access_token"], KeySet.import_key_set(jwks.json()), algorithms=["ES256"]
    )
    assert verified.header["typ"] == "at+jwt"
    claims = verified.claims
    assert (claims["iss"], claims["sub"], claims["client_id"]) == (provider, client_id, client_id)
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    with container.sessions() as session:
        assert audit.verify(session).ok


def test_bad_client_assertions_are_refused(provider: str, agency: tuple[str, ECKey]) -> None:
    client_id, key = agency
    endpoint = f"{provider}/oidc/token"
    other = ECKey.generate_key("P-256", parameters={"kid": "bhxh-2026"}, private=True)
    now = int(time.time())
    cases = {
        "signed with another key": _assertion(other, client_id, endpoint),
        "another audience": _assertion(key, client_id, "https://elsewhere.example/token"),
        "expired": _assertion(key, client_id, endpoint, iat=now - 900, exp=now - 300),
        "too long-lived": _assertion(key, client_id, endpoint, exp=now + 2 * 3600),
        "sub is not the client": _assertion(key, client_id, endpoint, sub="someone"),
        "no jti": _assertion(key, client_id, endpoint, jti=""),
        "unknown client": _assertion(key, "nobody", endpoint),
        "not a JWT": "abc.def",
    }
    hmac_key = OctKey.import_key(b"k" * 32)
    cases["HMAC instead of a key pair"] = jwt.encode(
        {"alg": "HS256"},
        {"iss": client_id, "sub": client_id, "aud": endpoint, "exp": now + 60, "jti": "j" * 16},
        hmac_key,
    )
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = (
        base64.urlsafe_b64encode(
            f'{{"iss":"{client_id}","sub":"{client_id}","aud":"{endpoint}","exp":{now + 60},'
            f'"jti":"{"n" * 16}"}}'.encode()
        )
        .rstrip(b"=")
        .decode()
    )
    cases["alg none"] = f"{header}.{body}."
    for name, assertion in cases.items():
        response = _token(provider, assertion)
        assert response.status_code == 401, name
        assert response.json()["error"] == "invalid_client", name
        assert response.headers["cache-control"] == "no-store", name

    replayed = _assertion(key, client_id, endpoint)
    assert _token(provider, replayed).status_code == 200
    again = _token(provider, replayed)
    assert again.status_code == 401 and "already used" in again.json()["error_description"]

    scope = _token(provider, _assertion(key, client_id, endpoint), scope="registry.events")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"
    grant = _token(provider, _assertion(key, client_id, endpoint), grant_type="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert httpx.post(endpoint, data={"grant_type": "client_credentials"}).status_code == 401


def test_client_secret_basic_and_key_rotation(provider: str, container: Container) -> None:
    out = container.clients.register(
        ClientRegistration(
            name="Ngân hàng thử nghiệm",
            purpose="eKYC for account opening",
            auth_method="client_secret_basic",
            scopes=["registry.lookup"],
        )
    )
    assert out.client_secret
    meta = _metadata(provider)
    with OAuth2Client(out.client_id, out.client_secret) as rp:
        first = rp.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    wrong = httpx.post(
        meta["token_endpoint"],
        data={"grant_type": "client_credentials"},
        auth=(out.client_id, "not-the-secret"),
    )
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")

    old_kid = jwt.decode(first["access_token"], container.keyring.keyset()).header["kid"]
    new_kid = container.keyring.rotate()
    assert new_kid != old_kid
    with OAuth2Client(out.client_id, out.client_secret) as rp:
        second = rp.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    published = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    assert {k.kid for k in published.keys} == {old_kid, new_kid}  # the old one until expiry
    for token, kid in ((first, old_kid), (second, new_kid)):
        decoded = jwt.decode(token["access_token"], published, algorithms=["ES256"])
        assert decoded.header["kid"] == kid


def test_client_registration_checks(container: Container) -> None:
    from pydantic import ValidationError

    from dancu.core.errors import DancuError

    private = ECKey.generate_key("P-256", private=True)
    with pytest.raises(DancuError, match="private key"):
        container.clients.register(
            ClientRegistration(
                name="x-rp", purpose="testing", jwks={"keys": [private.as_dict(private=True)]}
            )
        )
    with pytest.raises(DancuError, match="JWKS"):
        container.clients.register(ClientRegistration(name="x-rp", purpose="testing"))
    with pytest.raises(ValidationError, match="https"):
        ClientRegistration(name="x-rp", purpose="testing", redirect_uris=["http://rp.example/cb"])
    with pytest.raises(ValidationError, match="fragment"):
        ClientRegistration(name="x-rp", purpose="testing", redirect_uris=["https://rp.example/#x"])
    with pytest.raises(ValidationError, match="unknown scopes"):
        ClientRegistration(name="x-rp", purpose="testing", scopes=["admin"])
    with pytest.raises(ValidationError, match="client_id"):  # audit subjects stay in bounds
        ClientRegistration(name="x-rp", purpose="testing", client_id="x" * 33)


# -- the authorization code flow ------------------------------------------------------------

CALLBACK = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect


@pytest.fixture
def portal(container: Container) -> tuple[str, ECKey, dict[str, str]]:
    """A relying party (the public-services portal) and a citizen with a level-1 account."""
    from dancu.demo import ba_dinh_family

    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", "482915", 1)
    key = ECKey.generate_key("P-256", parameters={"kid": "dvc-1"}, private=True)
    register_rp(
        container,
        key,
        "dvc",
        CALLBACK,
        scopes=("openid", "profile", "address", "phone"),
        claims=["personal_id", "picture"],
    )
    return "dvc", key, family


def register_app(container: Container, key: ECKey, **more: Any) -> None:
    """The phone app: a relying party that keeps citizens signed in (refresh tokens)."""
    register_rp(
        container,
        key,
        "app",
        CALLBACK,
        name="Ứng dụng di động",
        purpose="stay signed in on the phone",
        grant_types=("authorization_code", "refresh_token"),
        **more,
    )


def _rp(client_id: str, key: ECKey, dpop_key: ECKey | None = None) -> OAuth2Client:
    auth = PrivateKeyJWT(alg="ES256", headers={"kid": key.kid})  # aud: the URL posted to
    return DPoPOAuth2Client(
        client_id,
        key,
        token_endpoint_auth_method=auth,
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        dpop_key=dpop_key or ECKey.generate_key("P-256", private=True),
    )


def _browser_signs_in(
    base: str, authorize_url: str, personal_id: str, passcode: str, consent: str | None = "allow"
) -> httpx.Response:
    """What the citizen's browser does: follow the provider's pages, sign in, consent.
    Returns the provider's last answer (the redirect back to the client)."""
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        return _walk(browser, authorize_url, personal_id, passcode, consent)


def _walk(
    browser: httpx.Client, authorize_url: str, personal_id: str, passcode: str, consent: str | None
) -> httpx.Response:
    response = browser.get(authorize_url)
    if response.status_code != 303 or not response.headers["location"].startswith("/oidc/"):
        return response
    page = browser.get(response.headers["location"])
    if "/oidc/login" in str(page.url):
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        response = browser.post(
            "/oidc/login",
            data={"personal_id": personal_id, "passcode": passcode, "csrf_token": csrf[1]},
        )
        if response.status_code != 303 or response.headers["location"] != "/oidc/consent":
            return response
        page = browser.get("/oidc/consent")
    if page.status_code == 303:  # consent remembered: straight back to the client
        return page
    assert 'action="/oidc/consent"' in page.text and auth_name(authorize_url) in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    assert "form-action 'self' http://127.0.0.1:9" in page.headers["content-security-policy"]
    return browser.post(
        "/oidc/consent", data={"decision": consent, "remember": "yes", "csrf_token": csrf[1]}
    )


def auth_name(authorize_url: str) -> str:
    """The service name the consent page must show, by the client in the request."""
    client = dict(parse_qsl(urlsplit(authorize_url).query)).get("client_id")
    return {"app": "Ứng dụng di động"}.get(client or "", "Cổng Dịch vụ công quốc gia")


def _query(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))


def test_code_flow_with_par_pkce_private_key_jwt_dpop_through_authlib(
    provider: str, portal: tuple[str, ECKey, dict[str, str]], container: Container
) -> None:
    client_id, key, family = portal
    meta = _metadata(provider)
    assert meta["verified_claims_supported"] and "vn_csdlqgdc" in meta["trust_frameworks_supported"]
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    # The claims parameter: the birth date in the ID token too, name and number with the
    # register's provenance at userinfo.
    claims = {
        "id_token": {"birthdate": {"essential": True}},
        "userinfo": {
            "verified_claims": {
                "verification": {"trust_framework": None},
                "claims": {"name": None, "personal_id": None},
            }
        },
    }
    with _rp(client_id, key) as rp:
        url, state = rp.create_authorization_url(
            meta["authorization_endpoint"],
            code_verifier=verifier,
            nonce=nonce,
            scope="openid profile address",
            claims=json.dumps(claims),
            dpop_jkt=rp.dpop_jkt(),
        )
        params = dict(parse_qsl(urlsplit(url).query))
        pushed = rp.post(
            meta["pushed_authorization_request_endpoint"],
            data=params,
            auth=rp.client_auth(rp.token_endpoint_auth_method),
        )
        assert pushed.status_code == 201, pushed.text
        request_uri = pushed.json()["request_uri"]
        authorize = (
            f"/oidc/authorize?{urlencode({'client_id': client_id, 'request_uri': request_uri})}"
        )
        back = _browser_signs_in(provider, authorize, family["father"], "482915")
        assert back.status_code == 303 and back.headers["location"].startswith(CALLBACK)
        answer = _query(back.headers["location"])
        assert answer["state"] == state and answer["iss"] == provider
        token = rp.fetch_token(
            meta["token_endpoint"],
            code=answer["code"],
            code_verifier=verifier,
            headers=rp.dpop_headers(meta["token_endpoint"]),
        )
        assert token["token_type"] == "DPoP"
        info = rp.get(meta["userinfo_endpoint"]).json()  # Authorization: DPoP + a proof

    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    access = jwt.decode(token["access_token"], keys, algorithms=["ES256"]).claims
    assert access["cnf"]["jkt"] == rp.dpop_jkt()  # bound to the relying party's DPoP key
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
    assert (id_token["iss"], id_token["aud"], id_token["nonce"]) == (provider, client_id, nonce)
    assert id_token["acr"] == "urn:dancu:loa:substantial" and id_token["amr"] == ["pwd"]
    assert id_token["birthdate"] == "1988-03-14" and "name" not in id_token
    assert id_token["sub"] == info["sub"] and family["father"] not in id_token["sub"]  # pairwise
    assert info["name"] == "Nguyễn Văn An" and info["birthdate"] == "1988-03-14"
    assert info["gender"] == "male" and isinstance(info["updated_at"], int)
    assert "Phường Ba Đình" in info["address"]["formatted"]
    assert "phone_number" not in info  # the phone scope was not asked for
    # The number was asked for only with provenance: it comes inside verified_claims.
    assert "personal_id" not in info
    proven = info["verified_claims"]
    assert proven["claims"] == {"name": "Nguyễn Văn An", "personal_id": family["father"]}
    assert proven["verification"]["trust_framework"] == "vn_csdlqgdc"
    assert proven["verification"]["assurance_level"] == "substantial"
    assert proven["verification"]["evidence"][0]["type"] == "electronic_record"
    assert proven["verification"]["time"].startswith(str(time.gmtime().tm_year))
    # The portrait (granted to this client) is released with the profile, as a data URI.
    assert info["picture"].startswith("data:image/svg+xml;base64,")
    # Every release was audited, naming what went where.
    with container.sessions() as session:
        released = [
            row.detail
            for row in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "oidc.release")
                .order_by(AuditEntry.id)
            )
        ]
    assert "birthdate" in released[0] and "verified:personal_id" in released[-1]

    # The request_uri is single use; a replayed code revokes the token it gave.
    again = _browser_signs_in(provider, authorize, family["father"], "482915")
    assert again.status_code == 400 and "expired" in again.text
    replay = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION,
            "client_assertion": _assertion(key, client_id, meta["token_endpoint"]),
        },
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    revoked = httpx.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"
    with container.sessions() as session:
        assert audit.verify(session).ok


def test_code_flow_refusals(
    provider: str, portal: tuple[str, ECKey, dict[str, str]], container: Container
) -> None:
    client_id, key, family = portal
    meta = _metadata(provider)
    base_params = authorize_query(client_id, CALLBACK, state="s1")

    def authorize(**changes: str) -> str:
        return "/oidc/authorize?" + urlencode({**base_params, **changes})

    # An unregistered redirect URI is never redirected to (no open redirector).
    page = httpx.get(provider + authorize(redirect_uri="https://evil.example/cb"))
    assert page.status_code == 400 and "evil.example" not in page.headers.get("location", "")
    # Without PKCE, or with plain PKCE: refused back to the client.
    for changes in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        answer = httpx.get(provider + authorize(**changes))
        assert answer.status_code == 303
        assert _query(answer.headers["location"])["error"] == "invalid_request"
    # A service that needs level 2 cannot get a token from a level-1 sign-in.
    back = _browser_signs_in(
        provider, authorize(acr_values="urn:dancu:loa:high"), family["father"], "482915"
    )
    assert _query(back.headers["location"])["error"] == "unmet_authentication_requirements"
    # A wrong passcode stays on the sign-in page with the reason; refusing consent.
    wrong = _browser_signs_in(provider, authorize(), family["father"], "000001")
    assert wrong.status_code == 403 and "passcode" in wrong.text
    refused = _browser_signs_in(provider, authorize(), family["father"], "482915", "deny")
    assert _query(refused.headers["location"])["error"] == "access_denied"
    # A code with the wrong verifier is refused; the consent is remembered next time.
    back = _browser_signs_in(provider, authorize(), family["father"], "482915")
    code = _query(back.headers["location"])["code"]
    bad = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": "w" * 50,
            "client_assertion_type": ASSERTION,
            "client_assertion": _assertion(key, client_id, meta["token_endpoint"]),
        },
    )
    assert bad.status_code == 400 and "code_verifier" in bad.json()["error_description"]


# -- DPoP -----------------------------------------------------------------------------------


def _proof(key: ECKey, method: str, url: str, token: str | None = None, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
    }
    if token is not None:
        digest = hashlib.sha256(token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    claims.update(overrides)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key)


def test_dpop_binds_tokens_to_the_clients_key(
    provider: str, portal: tuple[str, ECKey, dict[str, str]], agency: tuple[str, ECKey]
) -> None:
    meta = _metadata(provider)
    token_url, userinfo_url = meta["token_endpoint"], meta["userinfo_endpoint"]
    holder = ECKey.generate_key("P-256", private=True)
    assert "ES256" in meta["dpop_signing_alg_values_supported"]

    # client_credentials with a proof: a DPoP token bound to the holder key.
    agency_id, agency_key = agency
    issued = httpx.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION,
            "client_assertion": _assertion(agency_key, agency_id, token_url),
        },
        headers={"DPoP": _proof(holder, "POST", token_url)},
    )
    assert issued.status_code == 200 and issued.json()["token_type"] == "DPoP"
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = jwt.decode(issued.json()["access_token"], keys).claims
    assert claims["cnf"] == {"jkt": holder.thumbprint()}

    # The code flow with dpop_jkt pushed: the code is redeemable only with that key.
    client_id, key, family = portal
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    pushed = httpx.post(
        meta["pushed_authorization_request_endpoint"],
        data={
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid profile",
            "redirect_uri": CALLBACK,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
            "dpop_jkt": holder.thumbprint(),
            "client_assertion_type": ASSERTION,
            "client_assertion": _assertion(key, client_id, f"{provider}/oidc/par"),
        },
    )
    assert pushed.status_code == 201, pushed.text
    query = urlencode({"client_id": client_id, "request_uri": pushed.json()["request_uri"]})
    back = _browser_signs_in(provider, f"/oidc/authorize?{query}", family["father"], "482915")
    code = _query(back.headers["location"])["code"]

    def exchange(proof: str | None) -> httpx.Response:
        return httpx.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
                "client_assertion_type": ASSERTION,
                "client_assertion": _assertion(key, client_id, token_url),
            },
            headers={"DPoP": proof} if proof else {},
        )

    thief = ECKey.generate_key("P-256", private=True)
    stolen = exchange(_proof(thief, "POST", token_url))
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_dpop_proof"
    good = exchange(_proof(holder, "POST", token_url))
    assert good.status_code == 200 and good.json()["token_type"] == "DPoP"
    access = good.json()["access_token"]

    def userinfo(scheme: str, proof: str | None, method: str = "GET") -> httpx.Response:
        headers = {"Authorization": f"{scheme} {access}"}
        if proof:
            headers["DPoP"] = proof
        return httpx.request(method, userinfo_url, headers=headers)

    assert userinfo("Bearer", None).status_code == 401  # a bound token alone is useless
    proof = _proof(holder, "GET", userinfo_url, access)
    ok = userinfo("DPoP", proof)
    assert ok.status_code == 200 and ok.json()["name"] == "Nguyễn Văn An"
    replayed = userinfo("DPoP", proof)
    assert replayed.status_code == 401 and "already used" in replayed.json()["error_description"]
    assert replayed.headers["www-authenticate"].startswith("DPoP")
    refusals = {
        "another URL": _proof(holder, "GET", f"{provider}/elsewhere", access),
        "another method": _proof(holder, "POST", userinfo_url, access),
        "another token": _proof(holder, "GET", userinfo_url, "x" * 40),
        "another key": _proof(thief, "GET", userinfo_url, access),
        "too old": _proof(holder, "GET", userinfo_url, access, iat=int(time.time()) - 3600),
    }
    for name, bad in refusals.items():
        assert userinfo("DPoP", bad).status_code == 401, name


# -- refresh tokens and logout ----------------------------------------------------------------


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(
    provider: str, container: Container
) -> None:
    from dancu.demo import ba_dinh_family

    family = ba_dinh_family(container.registry)
    container.identity.provision(family["mother"], "0912345678", "482915", 2)
    key = ECKey.generate_key("P-256", parameters={"kid": "app-1"}, private=True)
    register_app(container, key, post_logout_redirect_uris=["http://127.0.0.1:9/bye"])
    meta = _metadata(provider)
    verifier = secrets.token_urlsafe(48)
    with _rp("app", key) as rp:
        url, _state = rp.create_authorization_url(
            meta["authorization_endpoint"],
            code_verifier=verifier,
            scope="openid profile",
            acr_values="urn:dancu:loa:high",
        )
        back = _browser_signs_in(provider, url.removeprefix(provider), family["mother"], "482915")
        code = _query(back.headers["location"])["code"]
        first = rp.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier)
        keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
        assert jwt.decode(first["id_token"], keys).claims["acr"] == "urn:dancu:loa:high"
        second = rp.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        assert rp.get(meta["userinfo_endpoint"]).json()["name"] == "Trần Thị Hoà"

        # The first refresh token again: someone holds a copy; the whole family is revoked.
        from authlib.integrations.base_client.errors import OAuthError as ClientError

        with pytest.raises(ClientError, match="already used"):
            rp.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        with pytest.raises(ClientError):
            rp.refresh_token(meta["token_endpoint"], refresh_token=second["refresh_token"])
        revoked = httpx.get(
            meta["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {second['access_token']}"},
        )
        assert revoked.status_code == 401

    # RP-initiated logout back to the registered address, with the state.
    logout = httpx.get(
        meta["end_session_endpoint"],
        params={
            "id_token_hint": first["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:9/bye",
            "state": "s9",
        },
    )
    assert (
        logout.status_code == 303
        and logout.headers["location"] == "http://127.0.0.1:9/bye?state=s9"
    )
    elsewhere = httpx.get(
        meta["end_session_endpoint"],
        params={
            "id_token_hint": first["id_token"],
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert elsewhere.status_code == 200 and "evil.example" not in elsewhere.headers.get(
        "location", ""
    )


def test_a_parent_signs_in_for_a_child(
    provider: str, portal: tuple[str, ECKey, dict[str, str]], container: Container
) -> None:
    client_id, key, family = portal
    meta = _metadata(provider)
    container.identity.provision(family["mother"], "0987654321", "135792", 2)
    ward = container.guardians.register_child(family["mother"], family["child"])
    verifier = secrets.token_urlsafe(48)
    with _rp(client_id, key) as rp, httpx.Client(base_url=provider) as browser:
        url, _state = rp.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, scope="openid profile"
        )
        step = browser.get(url)
        login = browser.get(step.headers["location"])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf
        form = {"personal_id": family["mother"], "passcode": "135792", "csrf_token": csrf[1]}
        browser.post("/oidc/login", data=form)
        page = browser.get("/oidc/consent")
        # The parent chooses for whom, on every sign-in.
        assert "Nguyễn Minh Khôi" in page.text and 'name="on_behalf"' in page.text
        # Not for somebody else's account.
        forged = {"decision": "allow", "on_behalf": "999999", "csrf_token": csrf[1]}
        assert browser.post("/oidc/consent", data=forged).status_code == 400
        browser.get(url)  # the forged attempt ended the request: start again
        choice = {"decision": "allow", "on_behalf": str(ward.account_id), "csrf_token": csrf[1]}
        back = browser.post("/oidc/consent", data=choice)
        code = _query(back.headers["location"])["code"]
        token = rp.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier)
        info = rp.get(meta["userinfo_endpoint"]).json()
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
    access = jwt.decode(token["access_token"], keys, algorithms=["ES256"]).claims
    client = container.clients.get(client_id)
    assert id_token["sub"] == container.authorizer.subject(client, family["child"])
    mother = container.authorizer.subject(client, family["mother"])
    assert id_token["act"] == {"sub": mother} == access["act"]
    assert id_token["acr"] == "urn:dancu:loa:high"  # the parent's sign-in
    assert info["name"] == "Nguyễn Minh Khôi" and info["birthdate"] == "2025-09-02"


def test_an_authenticator_app_sign_in_shows_in_amr(
    provider: str, portal: tuple[str, ECKey, dict[str, str]], container: Container
) -> None:
    import pyotp

    client_id, key, family = portal
    meta = _metadata(provider)
    enrolment = container.identity.start_totp(family["father"])
    container.identity.confirm_totp(family["father"], pyotp.TOTP(enrolment.secret).now())
    verifier = secrets.token_urlsafe(48)
    with _rp(client_id, key) as rp, httpx.Client(base_url=provider) as browser:
        url, _state = rp.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, scope="openid"
        )
        login = browser.get(browser.get(url).headers["location"])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf
        form = {"personal_id": family["father"], "passcode": "482915", "csrf_token": csrf[1]}
        step = browser.post("/oidc/login", data=form)
        assert 'name="otp"' in step.text  # the code step, after a right passcode
        # This step's code was used to enrol and is spent: the next step's (drift ±1).
        totp = pyotp.TOTP(enrolment.secret)
        answer = browser.post(
            "/account/login/otp",
            data={"otp": totp.at(int(time.time()) + 30), "csrf_token": csrf[1]},
        )
        assert answer.headers["location"] == "/oidc/consent", answer.text
        consent = browser.post(
            "/oidc/consent", data={"decision": "allow", "remember": "", "csrf_token": csrf[1]}
        )
        code = _query(consent.headers["location"])["code"]
        token = rp.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier)
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
    assert id_token["amr"] == ["pwd", "otp", "mfa"]
