"""A citizen signs in at a relying party through the OpenID provider in real Chromium:
the authorization request, the sign-in page (a wrong passcode first), the consent screen
with the service's purpose and attributes, and the code returned to the service. The
pages are screenshotted on a phone and a desktop."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc.jwk import ECKey
from playwright.sync_api import Page, Route

from tests.e2e.conftest import LiveServer, shoot
from tests.helpers import authorize_query, register_rp

CALLBACK = "http://127.0.0.1:9/cb"


def test_citizen_signs_in_and_consents(page: Page, live_server: LiveServer) -> None:
    container, family = live_server.container, live_server.family
    father = family["father"]
    container.identity.provision(father, "0912345678", "482915", 2)
    key = ECKey.generate_key("P-256", private=True)
    client_id = f"e2e-{key.thumbprint()[:8]}"
    register_rp(
        container,
        key,
        client_id,
        CALLBACK,
        purpose="đăng nhập để nộp hồ sơ trực tuyến",
        scopes=("openid", "profile", "address"),
        claims=["personal_id"],
    )
    query = authorize_query(client_id, CALLBACK, "openid profile address", "xyz")
    returned: list[str] = []

    def service(route: Route) -> None:  # the relying party's callback
        returned.append(route.request.url)
        route.fulfill(status=200, body="ok", content_type="text/plain")

    page.route("http://127.0.0.1:9/**", service)
    page.goto(f"{live_server.url}/oidc/authorize?{urlencode(query)}")
    page.wait_for_url("**/oidc/login")
    assert "Cổng Dịch vụ công quốc gia" in page.inner_text("main")
    shoot(page, "oidc-login")

    page.fill("#f-personal_id", father)
    page.fill("#f-passcode", "000001")
    page.click("button[type=submit]")
    assert page.locator("#f-passcode[aria-invalid=true], .alert").count() >= 1

    page.fill("#f-personal_id", father)
    page.fill("#f-passcode", "482915")
    page.click("button[type=submit]")
    page.wait_for_url("**/oidc/consent")
    claims = page.locator("[data-claim]").evaluate_all("els => els.map(e => e.dataset.claim)")
    assert claims == ["name", "birthdate", "gender", "address", "personal_id"]
    assert "đăng nhập để nộp hồ sơ trực tuyến" in page.inner_text("main")
    shoot(page, "oidc-consent")

    page.click("button[value=allow]")
    page.wait_for_url(f"{CALLBACK}**")
    answer = dict(parse_qsl(urlsplit(returned[-1]).query))
    assert answer["state"] == "xyz" and len(answer["code"]) > 30
    assert answer["iss"] == live_server.url
