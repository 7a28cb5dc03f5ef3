"""The citizen's pages in the page language (issue 13): the consent screen shows the
service's purpose in Vietnamese (English on the English pages when the service gave one)
with "remember my choice" unticked; the activity list names every event; times are Vietnam
time. Both backends."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.demo import ba_dinh_family
from dancu.identity.clients import ClientRegistration

PASSCODE = "482915"
CALLBACK = "http://127.0.0.1:9/callback"
PURPOSE_VI = "Đăng nhập để dùng dịch vụ công trực tuyến"
PURPOSE_EN = "Sign in to online public services"


@pytest.fixture
def family(container: Container) -> dict[str, str]:
    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", PASSCODE, 1)
    key = ECKey.generate_key("P-256", private=True)
    container.clients.register(
        ClientRegistration(
            name="Cổng Dịch vụ công quốc gia",
            purpose=PURPOSE_VI,
            purpose_en=PURPOSE_EN,
            client_id="dvc",
            jwks={"keys": [key.as_dict(private=False)]},
            redirect_uris=[CALLBACK],
            grant_types=["authorization_code"],
            scopes=["openid", "profile"],
        )
    )
    return family


@pytest.fixture
def app(container: Container, family: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(container), follow_redirects=False) as client:
        yield client


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found[1]


def consent_page(app: TestClient, personal_id: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 50).digest()).rstrip(b"=")
    query = {
        "client_id": "dvc",
        "response_type": "code",
        "scope": "openid profile",
        "redirect_uri": CALLBACK,
        "state": "st",
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }
    assert app.get(f"/oidc/authorize?{urlencode(query)}").headers["location"] == "/oidc/login"
    data = {"personal_id": personal_id, "passcode": PASSCODE}
    step = app.post("/oidc/login", data={**data, "csrf_token": csrf(app, "/oidc/login")})
    assert step.headers["location"] == "/oidc/consent"
    page = app.get("/oidc/consent")
    assert page.status_code == 200
    return page.text


def test_the_consent_screen_speaks_the_page_language(
    app: TestClient, family: dict[str, str]
) -> None:
    page = consent_page(app, family["father"])
    assert PURPOSE_VI in page and PURPOSE_EN not in page
    app.cookies.set("dancu_lang", "en")
    page = app.get("/oidc/consent").text
    assert PURPOSE_EN in page and PURPOSE_VI not in page


def test_remember_my_choice_is_unticked_and_not_remembered_unless_ticked(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    page = consent_page(app, family["father"])
    tag = re.search(r'<input type="checkbox" id="f-remember"[^>]*>', page)
    assert tag and "checked" not in tag[0]
    # Allowing without ticking the box (what the browser sends) leaves no standing consent.
    token = csrf(app, "/oidc/consent")
    r = app.post("/oidc/consent", data={"decision": "allow", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith(CALLBACK)
    account = container.authorizer.account_id(family["father"])
    assert container.authorizer.consents(account) == []


def test_the_account_page_shows_vietnam_time_and_named_events(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    consent_page(app, family["father"])  # signs the citizen in (a "login" event)
    page = app.get("/account").text
    assert "Thời điểm (giờ Việt Nam)" in page and "UTC" not in page
    login = container.identity.history(family["father"], limit=1)[0]
    at = login.at if login.at.tzinfo else login.at.replace(tzinfo=UTC)
    shown = (at + timedelta(hours=7)).strftime("%d/%m/%Y %H:%M")
    assert shown in page
    history = app.get("/account/history").text
    assert "Thời điểm (giờ Việt Nam)" in history and shown in history
    for raw in re.findall(r"<td data-label=\"[^\"]*\">([a-z]+\.[a-z_.]+)</td>", page + history):
        pytest.fail(f"raw event name on a page: {raw}")
