"""The authorization-code exchange answers the same on the event loop (PostgreSQL: codes
redeemed in group commits, decision 0008) as on the thread path (both databases), over real
HTTP with Authlib's client (the DPoP client of the demo relying party, tools/demo_rp.py):
a first use (a DPoP-bound access token, the ID token, a refresh token, audited), and each
refusal — a wrong verifier, a reused code (which revokes what it gave), an expired code,
another client's code, another DPoP key, no proof for a bound code, a replayed client
assertion, a replayed DPoP proof. Each case runs on both paths against one table of
expected answers; on the event loop the tests also check that it served them."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select, update
from tools.demo_rp import DPoPOAuth2Client

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.models import AuditEntry
from dancu.core.timeutil import utcnow
from dancu.identity.models import Account, AuthorizationCode
from dancu.identity.oidc.digests import s256
from tests.functional.test_oidc import ASSERTION, CALLBACK, _assertion, _proof, _query, _rp
from tests.helpers import register_rp
from tests.live import free_port, serve

FRESH = "a fresh proof of the holder's key"
# What the exchange answers in each case, whichever path serves it.
EXPECTED = {
    "wrong verifier": (400, "invalid_grant", "the PKCE code_verifier does not match"),
    "reused code": (400, "invalid_grant", "the code was already used; its tokens are revoked"),
    "expired code": (400, "invalid_grant", "the code has expired"),
    "another client's code": (400, "invalid_grant", "unknown code"),
    "unknown code": (400, "invalid_grant", "unknown code"),
    "another redirect_uri": (
        400,
        "invalid_grant",
        "redirect_uri differs from the authorization request",
    ),
    "another DPoP key": (400, "invalid_dpop_proof", "the code is bound to another DPoP key"),
    "no proof for a bound code": (
        400,
        "invalid_dpop_proof",
        "the code is bound to a DPoP key: send a DPoP proof of that key",
    ),
    "an empty DPoP header": (400, "invalid_dpop_proof", "the DPoP proof is not a JWT"),
    "replayed assertion": (401, "invalid_client", "the client assertion was already used"),
    "replayed DPoP proof": (400, "invalid_dpop_proof", "the DPoP proof was already used"),
    "guardian suspended": (400, "invalid_grant", "the guardian's account is no longer active"),
    "account suspended": (400, "invalid_grant", "the account is no longer active"),
}


@pytest.fixture(params=["event loop", "threads"])
def path(request: pytest.FixtureRequest, container: Container) -> str:
    """Which path answers the token endpoint: the event loop's (PostgreSQL only) or the
    thread path (the fast path switched off)."""
    if request.param == "event loop" and container.engine.dialect.name != "postgresql":
        pytest.skip("the event-loop code exchange serves the PostgreSQL server")
    return str(request.param)


@pytest.fixture
def provider(container: Container, path: str) -> Iterator[str]:
    port = free_port()
    container.settings.issuer = f"http://127.0.0.1:{port}"
    if path == "threads":
        container.fast_token = None  # type: ignore[misc]  # what SQLite always has
    with serve(container, port) as base:
        yield base


class RP:
    """A relying party with a DPoP key, codes issued for a citizen as after sign-in and
    consent (``Authorizer.approve``), and its token requests."""

    def __init__(self, container: Container, base: str, client_id: str, key: ECKey) -> None:
        self.container, self.base, self.client_id, self.key = container, base, client_id, key
        self.token_url = f"{base}/oidc/token"
        self.holder = ECKey.generate_key("P-256", private=True)

    def code(
        self, personal_id: str, bound: bool = True, actor: int | None = None, **params: str
    ) -> tuple[str, str]:
        """A fresh code (bound to the holder's key unless ``bound`` is False) and its
        verifier."""
        verifier = secrets.token_urlsafe(48)
        authorizer = self.container.authorizer
        request = authorizer.request(
            {
                "client_id": self.client_id,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "scope": "openid profile",
                "nonce": "n-" + secrets.token_hex(4),
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                **({"dpop_jkt": self.holder.thumbprint()} if bound else {}),
                **params,
            }
        )
        account = authorizer.account_id(personal_id)
        location = authorizer.approve(
            account, 2 if actor else 1, int(time.time()), request, False, self.base, actor
        )
        return _query(location)["code"], verifier

    def client(self) -> DPoPOAuth2Client:
        return _rp(self.client_id, self.key, dpop_key=self.holder)

    def exchange(
        self,
        code: str,
        verifier: str,
        proof: str | None = FRESH,
        assertion: str | None = None,
        **form: str,
    ) -> httpx.Response:
        """Redeem ``code``: with a fresh proof of the holder's key (``FRESH``), the proof
        given, or none (None); authenticated by Authlib's private_key_jwt, or ``assertion``."""
        if proof is FRESH:
            proof = _proof(self.holder, "POST", self.token_url)
        headers = {} if proof is None else {"DPoP": proof}
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            **form,
        }
        if assertion is not None:
            data |= {"client_assertion_type": ASSERTION, "client_assertion": assertion}
            return httpx.post(self.token_url, data=data, headers=headers)
        with self.client() as rp:
            return rp.post(
                self.token_url,
                data=data,
                headers=headers,
                auth=rp.client_auth(rp.token_endpoint_auth_method),
            )


@pytest.fixture
def people(container: Container) -> dict[str, str]:
    """The Ba Đình family with accounts: the father (level 1), the mother (level 2, the
    child's guardian) and the child."""
    from dancu.demo import ba_dinh_family

    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", "482915", 1)
    container.identity.provision(family["mother"], "0987654321", "135792", 2)
    container.guardians.register_child(family["mother"], family["child"])
    return family


def _register(container: Container, client_id: str, grants: list[str]) -> ECKey:
    key = ECKey.generate_key("P-256", parameters={"kid": f"{client_id}-1"}, private=True)
    register_rp(
        container,
        key,
        client_id,
        CALLBACK,
        name=f"Relying party {client_id}",
        purpose="sign citizens in to online services",
        grant_types=tuple(grants),
    )
    return key


@pytest.fixture
def rp(container: Container, provider: str, people: dict[str, str]) -> RP:
    key = _register(container, "app", ["authorization_code", "refresh_token"])
    return RP(container, provider, "app", key)


def _answer(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, body.get("error", ""), body.get("error_description", "")


def _served_on_the_loop(container: Container) -> int:
    fast = container.fast_token
    return fast.codes.group.committed if fast is not None and fast.codes is not None else 0


def test_a_first_use_issues_bound_tokens_and_a_refresh_token(
    rp: RP, people: dict[str, str], container: Container, path: str
) -> None:
    code, verifier = rp.code(people["father"])
    with rp.client() as client:
        token = client.fetch_token(
            rp.token_url,
            code=code,
            code_verifier=verifier,
            headers=client.dpop_headers(rp.token_url),
        )
        assert token["token_type"] == "DPoP" and token["scope"] == "openid profile"
        assert {"access_token", "id_token", "refresh_token"} <= set(token)
        keys = KeySet.import_key_set(httpx.get(f"{rp.base}/oidc/jwks").json())
        access = jwt.decode(token["access_token"], keys, algorithms=["ES256"])
        assert access.header["typ"] == "at+jwt"
        assert access.claims["cnf"] == {"jkt": rp.holder.thumbprint()}
        assert access.claims["acr"] == "urn:dancu:loa:substantial"
        assert access.claims["client_id"] == "app" and access.claims["aud"] == "dancu"
        id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
        subject = container.authorizer.subject(container.clients.get("app"), people["father"])
        assert (id_token["iss"], id_token["aud"], id_token["sub"]) == (rp.base, "app", subject)
        assert id_token["nonce"].startswith("n-") and id_token["amr"] == ["pwd"]
        assert access.claims["sub"] == subject
        # The access token reaches userinfo with its key; the refresh token rotates, bound
        # to the same key.
        assert client.get(f"{rp.base}/oidc/userinfo").json()["name"] == "Nguyễn Văn An"
        renewed = client.refresh_token(
            rp.token_url,
            refresh_token=token["refresh_token"],
            headers=client.dpop_headers(rp.token_url),
        )
        assert renewed["refresh_token"] != token["refresh_token"]
        assert jwt.decode(renewed["access_token"], keys).claims["cnf"] == access.claims["cnf"]
    with container.sessions() as session:
        issued = session.scalars(select(AuditEntry).where(AuditEntry.action == "oidc.token")).all()
        assert [(e.actor, e.subject, e.detail) for e in issued] == [
            ("client:app", f"account:{container.authorizer.account_id(people['father'])}",
             "scope openid profile"),
        ]  # fmt: skip
        assert audit.verify(session).ok
    assert _served_on_the_loop(container) == (1 if path == "event loop" else 0)


def test_refusals_are_the_same_on_both_paths(
    rp: RP, people: dict[str, str], container: Container, path: str
) -> None:
    father = people["father"]
    seen: dict[str, tuple[int, str, str]] = {}

    code, verifier = rp.code(father)
    seen["wrong verifier"] = _answer(rp.exchange(code, "w" * 50))
    # A refused attempt leaves the code for its holder; a second use is a replay.
    first = rp.exchange(code, verifier)
    assert first.status_code == 200, first.text
    seen["reused code"] = _answer(rp.exchange(code, verifier))
    access, refresh = first.json()["access_token"], first.json()["refresh_token"]
    with rp.client() as client:  # what the first use gave is revoked (RFC 6749 4.1.2)
        client.token = first.json()
        assert client.get(f"{rp.base}/oidc/userinfo").status_code == 401
        again = client.post(
            rp.token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            headers=client.dpop_headers(rp.token_url),
            auth=client.client_auth(client.token_endpoint_auth_method),
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert access

    code, verifier = rp.code(father)
    with container.sessions() as session, session.begin():
        session.execute(
            update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1))
            .where(AuthorizationCode.used_at.is_(None))
        )  # fmt: skip
    seen["expired code"] = _answer(rp.exchange(code, verifier))

    other = RP(container, rp.base, "portal", _register(container, "portal", ["authorization_code"]))
    other.holder = rp.holder
    code, verifier = rp.code(father)
    seen["another client's code"] = _answer(other.exchange(code, verifier))
    seen["unknown code"] = _answer(rp.exchange("no-such-code", verifier))
    seen["another redirect_uri"] = _answer(
        rp.exchange(code, verifier, redirect_uri="http://127.0.0.1:9/elsewhere")
    )
    thief = ECKey.generate_key("P-256", private=True)
    seen["another DPoP key"] = _answer(
        rp.exchange(code, verifier, _proof(thief, "POST", rp.token_url))
    )
    seen["no proof for a bound code"] = _answer(rp.exchange(code, verifier, None))
    seen["an empty DPoP header"] = _answer(rp.exchange(code, verifier, ""))

    assertion = _assertion(rp.key, "app", rp.token_url)
    assert rp.exchange(code, verifier, assertion=assertion).status_code == 200
    code, verifier = rp.code(father)
    seen["replayed assertion"] = _answer(rp.exchange(code, verifier, assertion=assertion))
    proof = _proof(rp.holder, "POST", rp.token_url)
    assert rp.exchange(code, verifier, proof).status_code == 200  # the refusals left it
    code, verifier = rp.code(father)
    seen["replayed DPoP proof"] = _answer(rp.exchange(code, verifier, proof))
    assert rp.exchange(code, verifier).status_code == 200

    # A guardian acting for a child: the act claim; refused once the guardian is suspended,
    # as is a code for a suspended account.
    mother_id = container.authorizer.account_id(people["mother"])
    code, verifier = rp.code(people["child"], actor=mother_id)
    acting = rp.exchange(code, verifier)
    assert acting.status_code == 200, acting.text
    keys = KeySet.import_key_set(httpx.get(f"{rp.base}/oidc/jwks").json())
    claims = jwt.decode(acting.json()["id_token"], keys).claims
    mother_sub = container.authorizer.subject(container.clients.get("app"), people["mother"])
    assert claims["act"] == {"sub": mother_sub} and claims["acr"] == "urn:dancu:loa:high"
    code, verifier = rp.code(people["child"], actor=mother_id)
    _suspend(container, mother_id)
    seen["guardian suspended"] = _answer(rp.exchange(code, verifier))
    code, verifier = rp.code(father)
    _suspend(container, container.authorizer.account_id(father))
    seen["account suspended"] = _answer(rp.exchange(code, verifier))

    assert seen == EXPECTED
    with container.sessions() as session:
        assert audit.verify(session).ok
    # Every exchange above reached the event loop's redeemer, or none did.
    served = _served_on_the_loop(container)
    assert (served >= 14) if path == "event loop" else served == 0


def _suspend(container: Container, account_id: int) -> None:
    with container.sessions() as session, session.begin():
        session.execute(update(Account).values(status="suspended").where(Account.id == account_id))


def test_a_code_presented_at_once_many_times_is_redeemed_once(
    rp: RP, people: dict[str, str], container: Container, path: str
) -> None:
    """Ten copies of one code, each with its own assertion and proof, sent together (on the
    event loop, most arrive in one group): one first use, nine replays, and the replays
    revoke what the first use gave."""
    code, verifier = rp.code(people["father"])
    copies = 10

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient() as http:

            def one() -> Any:
                data = {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": CALLBACK,
                    "code_verifier": verifier,
                    "client_assertion_type": ASSERTION,
                    "client_assertion": _assertion(rp.key, "app", rp.token_url),
                }
                proof = _proof(rp.holder, "POST", rp.token_url)
                return http.post(rp.token_url, data=data, headers={"DPoP": proof})

            return list(await asyncio.gather(*(one() for _ in range(copies))))

    answers = asyncio.run(send_all())
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) == 1, [a.text for a in answers]
    assert sorted(_answer(a) for a in answers if a.status_code != 200) == [
        EXPECTED["reused code"]
    ] * (copies - 1)
    with rp.client() as client:
        client.token = ok[0].json()
        assert client.get(f"{rp.base}/oidc/userinfo").status_code == 401
    with container.sessions() as session:
        assert audit.verify(session).ok
