"""The ministry administrator registers a service (an OpenID client) in real Chromium on a
phone: a wrong redirect URI is pointed out, then the service shows in the list; a second one
gets a generated secret, shown once. Screens are screenshotted on a phone and a desktop."""

from __future__ import annotations

import json

from joserfc.jwk import ECKey
from playwright.sync_api import Page

from tests.e2e.conftest import LiveServer, login, shoot


def test_admin_registers_a_service_on_a_phone(page: Page, live_server: LiveServer) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "bhxh-1"}, private=True)
    client_id = f"e2e-bhxh-{key.thumbprint()[:6].lower()}"
    login(page, live_server.url, "admin")
    page.click("a[href='/identity/clients']")  # in the main navigation for ministry admins
    page.wait_for_url("**/identity/clients")
    page.click("a[href='/identity/clients/new']")
    page.wait_for_url("**/identity/clients/new")
    assert page.is_visible("#f-jwks") and not page.is_visible("#f-jwks_uri")

    page.fill("#f-name", "Cổng thông tin Bảo hiểm xã hội")
    page.fill("#f-purpose", "xác minh người tham gia bảo hiểm xã hội")
    page.fill("#f-client_id", client_id)
    page.fill("#f-jwks", json.dumps({"keys": [key.as_dict(private=False)]}, indent=2))
    page.fill("#f-redirect_uris", "http://baohiemxahoi.gov.vn/callback")
    page.check("#f-grant_types-refresh_token")
    page.check("#f-scopes-profile")
    page.check("#f-claims-personal_id")
    page.click("form[action='/identity/clients/new'] button[type=submit]")
    assert page.locator("#f-redirect_uris[aria-invalid=true]").count() == 1
    assert "https" in page.inner_text("#e-redirect_uris")
    assert page.input_value("#f-name") == "Cổng thông tin Bảo hiểm xã hội"  # kept
    shoot(page, "identity-clients-form-error")

    page.fill("#f-redirect_uris", "https://baohiemxahoi.gov.vn/callback")
    page.click("form[action='/identity/clients/new'] button[type=submit]")
    page.wait_for_url(f"**/identity/clients/{client_id}")
    assert "bhxh-1" in page.inner_text("main")
    shoot(page, "identity-client")

    page.click(".crumbs a[href='/identity/clients']")
    page.wait_for_url("**/identity/clients")
    row = page.locator("tr", has_text=client_id)
    assert "Cổng thông tin Bảo hiểm xã hội" in row.inner_text()
    assert "Số định danh cá nhân" in row.inner_text()
    shoot(page, "identity-clients")

    # A system-to-system client with a generated secret: shown once.
    page.goto(f"{live_server.url}/identity/clients/new")
    page.fill("#f-name", "Hệ thống thuế điện tử")
    page.fill("#f-purpose", "đối chiếu mã số thuế cá nhân")
    page.check("#f-auth-secret")
    assert not page.is_visible("#f-jwks")
    page.uncheck("#f-grant_types-authorization_code")
    page.check("#f-grant_types-client_credentials")
    page.uncheck("#f-scopes-openid")
    page.check("#f-scopes-registry\\.lookup")
    page.click("form[action='/identity/clients/new'] button[type=submit]")
    secret = page.inner_text("#client-secret").strip()
    assert len(secret) >= 40 and "không thể hiển thị lại" in page.inner_text("main")
    shoot(page, "identity-client-secret")
    page.click("a.button.primary")
    assert secret not in page.content()
