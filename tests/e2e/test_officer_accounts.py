"""A commune police officer in real Chromium, on a phone-sized screen: finds a citizen's
electronic-identity account, suspends it on a report (a forgotten confirmation box is named
on the form), reinstates it, then closes a citizen's correction request from the area's
list. Screens are screenshotted on a phone and a desktop."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import Page

from dancu.core.access import OfficerContext, Role
from dancu.identity import schemas as s
from tests.e2e.conftest import LiveServer, login, shoot
from tests.helpers import resident


def _citizen(live_server: LiveServer) -> str:
    container = live_server.container
    person = container.registry.register_person(
        OfficerContext("badinh", Role.COMMUNE, "01", "00004"),
        resident("Phạm Quốc Bảo", date(1979, 11, 30), "M", date(2005, 6, 1)),
    )
    container.identity.provision(person, "0977 111 222", "305718", 2)
    return person


def test_suspend_reinstate_and_close_a_correction(page: Page, live_server: LiveServer) -> None:
    base = live_server.url
    person = _citizen(live_server)
    asked = live_server.container.identity.request_correction(
        person,
        s.CorrectionRequestIn(
            field="full_name", proposed="Phạm Quốc Bảo Anh", reason="Giấy khai sinh số 12/1979"
        ),
    )
    login(page, base, "badinh")
    page.click("nav a[href='/identity/accounts']")
    page.wait_for_url("**/identity/accounts")
    page.fill("#f-personal_id", person)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**/identity/accounts/{person}")
    assert "Phạm Quốc Bảo" in page.inner_text("h1")

    page.select_option("#f-suspend_reason", "reported-lost-card")
    page.fill("#f-suspend_note", "Công dân báo mất ví tại chợ Đồng Xuân")
    page.click("form[action$='/suspend'] button")
    assert page.locator("#f-suspend_confirm[aria-invalid=true]").count() == 1
    assert page.inner_text("#e-suspend_confirm").strip()
    shoot(page, "officer-account-suspend-error")
    page.check("#f-suspend_confirm")
    page.click("form[action$='/suspend'] button")
    page.wait_for_url(f"**/identity/accounts/{person}")
    assert "Tạm khoá" in page.inner_text(".notice")
    shoot(page, "officer-account-suspended")

    page.fill("#f-reinstate_note", "Đã tìm thấy thẻ, kiểm tra trực tiếp")
    page.check("#f-reinstate_confirm")
    page.click("form[action$='/reinstate'] button")
    page.wait_for_url(f"**/identity/accounts/{person}")
    assert page.locator(".notice").count() == 0
    assert "Tài khoản được mở lại" in page.inner_text("table.history")

    page.click("nav a[href='/identity/corrections']")
    page.wait_for_url("**/identity/corrections")
    item = page.locator(f"#request-{asked.id}")
    assert "Phạm Quốc Bảo Anh" in item.inner_text()
    shoot(page, "officer-corrections")
    item.locator("input[value=done]").check()
    item.locator("button[type=submit]").click()
    page.wait_for_url("**/identity/corrections")
    assert page.locator(f"#request-{asked.id}").count() == 0
    assert live_server.container.identity.corrections(person)[0].status == "done"
