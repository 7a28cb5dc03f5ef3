"""A citizen in real Chromium, on a phone-sized screen: signs in, sets up an authenticator app
(scanning is replaced by reading the key shown, from which the test computes the codes),
signs out and in again with the app's code, sees "this device" in the device list and the
sign-in in the login history, asks for a correction of the register, and finds the passcode
reset from the sign-in page. Screens are screenshotted on a phone and a desktop."""

from __future__ import annotations

import time
from datetime import date

import pyotp
from playwright.sync_api import Page

from dancu.core.access import OfficerContext, Role
from tests.e2e.conftest import LiveServer, shoot
from tests.helpers import resident

PASSCODE = "640271"


def _citizen(live_server: LiveServer) -> str:
    container = live_server.container
    person = container.registry.register_person(
        OfficerContext("badinh", Role.COMMUNE, "01", "00004"),
        resident("Lê Thị Thu Hà", date(1990, 4, 12), "F", date(2012, 1, 1)),
    )
    container.identity.provision(person, "0933 456 789", PASSCODE, 1)
    return person


def _sign_in(page: Page, base: str, personal_id: str) -> None:
    page.goto(f"{base}/account/login")
    page.fill("#f-personal_id", personal_id)
    page.fill("#f-passcode", PASSCODE)
    page.click("main button[type=submit]")


def test_authenticator_app_devices_and_history(page: Page, live_server: LiveServer) -> None:
    base = live_server.url
    person = _citizen(live_server)
    _sign_in(page, base, person)
    page.wait_for_url(f"{base}/account")
    assert "Lê Thị Thu Hà" in page.inner_text("main")

    page.click("nav.account-nav a[href='/account/totp']")
    page.wait_for_url("**/account/totp")
    page.click("form[action='/account/totp/start'] button")
    page.wait_for_url("**/account/totp")
    assert page.locator(".qr svg title").count() == 1  # the QR code, with a text alternative
    secret = page.inner_text("#totp-secret").replace(" ", "")
    totp = pyotp.TOTP(secret)
    shoot(page, "account-totp-setup")
    page.fill("#f-code", totp.now())
    page.click("form[action='/account/totp/confirm'] button")
    page.wait_for_url("**/account/totp")
    assert "Đã cài ứng dụng xác thực" in page.inner_text("main")
    shoot(page, "account-totp-on")

    page.goto(f"{base}/account")
    page.click("form[action='/account/logout'] button")
    page.wait_for_url("**/account/login")
    assert page.locator("a[href='/account/reset']").count() == 1

    _sign_in(page, base, person)
    page.wait_for_selector("#f-otp")  # the code step, after the right passcode
    assert page.get_attribute("#f-otp", "autocomplete") == "one-time-code"
    page.fill("#f-otp", "000000" if totp.now() != "000000" else "111111")
    page.click("form[action='/account/login/otp'] button")
    page.wait_for_selector("#f-otp[aria-invalid=true]")
    assert "mã không đúng" in page.inner_text("#e-otp").lower()
    shoot(page, "account-login-otp")
    page.fill("#f-otp", totp.at(time.time() + 30))  # the current step went to enrolment
    page.click("form[action='/account/login/otp'] button")
    page.wait_for_url(f"{base}/account")

    page.click("nav.account-nav a[href='/account/devices']")
    page.wait_for_url("**/account/devices")
    current = page.locator(".devices li[aria-current]")
    assert current.count() == 1 and "Thiết bị này" in current.inner_text()
    assert "Chrome" in current.inner_text()
    shoot(page, "account-devices")

    page.click("nav.account-nav a[href='/account/history']")
    page.wait_for_url("**/account/history")
    rows = page.locator("table.history tbody tr")
    first = rows.nth(0).inner_text()
    assert "Đăng nhập" in first and "mật mã + ứng dụng xác thực" in first
    assert "Thiết bị này" in first
    assert "Sai mã xác thực" in rows.nth(1).inner_text()
    shoot(page, "account-history")

    page.goto(f"{base}/account")
    page.select_option("#f-field", "full_name")
    page.fill("#f-proposed", "Lê Thị Thu Hạ")
    page.fill("#f-reason", "Giấy khai sinh ghi Hạ")
    page.click("form[action='/account/corrections'] button")
    page.wait_for_url("**/account#corrections")
    assert "Lê Thị Thu Hạ" in page.inner_text("#corrections")
    shoot(page, "account-profile-correction")

    page.goto(f"{base}/account/reset")
    assert page.locator("#f-personal_id").count() == 1 and page.locator("#f-phone").count() == 1
    shoot(page, "account-reset")
