"""A citizen registers a level-1 account in real Chromium (card number, phone, a selfie
upload, the SMS code, a passcode), sees "my electronic identity", then signs in at a relying
party with it. Screens are screenshotted on a phone and a desktop."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc.jwk import ECKey
from playwright.sync_api import Page, Route

from dancu.identity.ports import MemorySms, synthetic_selfie
from tests.e2e.conftest import LiveServer, shoot
from tests.helpers import authorize_query, register_rp, resident

CALLBACK = "http://127.0.0.1:9/cb"


def test_level1_registration_then_sign_in_at_a_service(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    container = live_server.container
    mother = live_server.family["mother"]
    sms = MemorySms()
    container.identity.sms = sms
    selfie = tmp_path / "selfie.jpg"
    selfie.write_bytes(synthetic_selfie(container.settings.resolved_secret_key, mother))
    stranger = tmp_path / "stranger.jpg"
    stranger.write_bytes(b"\xff\xd8 someone else's face")

    page.goto(f"{live_server.url}/account/register")
    page.fill("#f-personal_id", mother)
    page.fill("#f-phone", "0398 765 432")
    page.set_input_files("#f-selfie", str(stranger))
    page.click("button[type=submit]")
    assert page.locator("#f-selfie[aria-invalid=true]").count() == 1  # the face check failed
    assert "ảnh chân dung" in page.inner_text("#e-selfie")
    shoot(page, "account-register-error")

    page.set_input_files("#f-selfie", str(selfie))
    page.click("button[type=submit]")
    page.wait_for_url("**/account/register/confirm")
    code = re.search(r"\b(\d{6})\b", sms.sent[-1][1])
    assert code and sms.sent[-1][0] == "+84398765432"
    page.fill("#f-code", code[1])
    page.fill("#f-passcode", "123456")
    page.click("button[type=submit]")
    assert page.locator("#f-passcode[aria-invalid=true]").count() == 1  # too simple
    page.fill("#f-code", code[1])
    page.fill("#f-passcode", "750319")
    page.click("button[type=submit]")
    page.wait_for_url("**/account")
    text = page.inner_text("main")
    assert "Trần Thị Hoà" in text and "Mức độ 1" in text
    shoot(page, "account-home")

    # The same citizen signs in at a service with the new account.
    key = ECKey.generate_key("P-256", private=True)
    client_id = f"e2e-acct-{key.thumbprint()[:6]}"
    register_rp(container, key, client_id, CALLBACK, purpose="nộp hồ sơ đăng ký thường trú")
    returned: list[str] = []

    def service(route: Route) -> None:
        returned.append(route.request.url)
        route.fulfill(status=200, body="ok", content_type="text/plain")

    page.route("http://127.0.0.1:9/**", service)
    query = authorize_query(client_id, CALLBACK)
    page.goto(f"{live_server.url}/oidc/authorize?{urlencode(query)}")
    page.wait_for_url("**/oidc/consent")  # already signed in on this device
    # "Remember my choice" starts unticked (privacy by default): the citizen ticks it.
    assert not page.is_checked("#f-remember")
    page.check("#f-remember")
    page.click("button[value=allow]")
    page.wait_for_url(f"{CALLBACK}**")
    assert dict(parse_qsl(urlsplit(returned[-1]).query))["state"] == "st"

    page.goto(f"{live_server.url}/account")
    assert "Cổng Dịch vụ công quốc gia" in page.inner_text("main")
    page.click("form[action$='/revoke'] button")
    page.wait_for_url("**/account")
    assert "Đã rút lại đồng ý" in page.inner_text("main")


def test_officer_activates_level2_in_person(page: Page, live_server: LiveServer) -> None:
    from datetime import date

    from dancu.core.access import OfficerContext, Role
    from tests.e2e.conftest import login

    container = live_server.container
    container.identity.sms = sms = MemorySms()
    person = container.registry.register_person(
        OfficerContext("badinh", Role.COMMUNE, "01", "00004"),
        resident("Vũ Thị Mai", date(1979, 6, 30), "F", date(2001, 1, 1)),
    )
    login(page, live_server.url, "badinh")
    page.click("a[href='/identity/level2']")
    page.wait_for_url("**/identity/level2")
    page.fill("#f-personal_id", person)
    page.fill("#f-card_personal_id", person)
    page.fill("#f-phone", "0977 111 222")
    page.click("form[action='/identity/level2'] button[type=submit]")
    assert "vân tay" in page.inner_text("#e-fingerprint_scan").lower()  # nothing captured
    shoot(page, "identity-level2")
    page.check("#f-fingerprint_scan")
    page.click("form[action='/identity/level2'] button[type=submit]")
    page.wait_for_url("**/identity/level2")
    assert person in page.inner_text("main")
    account = container.identity.account(person)
    assert (account.level, account.status) == (2, "pending")
    assert sms.sent[-1][0] == "+84977111222"
