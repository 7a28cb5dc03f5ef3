"""The citizen's pages in the page language (issue 13): the consent screen shows the
service's purpose in Vietnamese (English on the English pages when the service gave one)
with "remember my choice" unticked; the activity list names every event; times are Vietnam
time. Both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from dancu.bootstrap import Container
from tests.helpers import (
    CALLBACK,
    PASSCODE,
    authorize_query,
    csrf,
    family_with_account,
    register_rp,
    web_client,
)

PURPOSE_VI = "Đăng nhập để dùng dịch vụ công trực tuyến"
PURPOSE_EN = "Sign in to online public services"


@pytest.fixture
def family(container: Container) -> dict[str, str]:
    family = family_with_account(container)
    key = ECKey.generate_key("P-256", private=True)
    register_rp(container, key, "dvc", CALLBACK, purpose=PURPOSE_VI, purpose_en=PURPOSE_EN)
    return family


@pytest.fixture
def app(container: Container, family: dict[str, str]) -> Iterator[TestClient]:
    with web_client(container) as client:
        yield client


def consent_page(app: TestClient, personal_id: str) -> str:
    query = authorize_query("dvc", CALLBACK)
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
