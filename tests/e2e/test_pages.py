"""Issue 13 in real Chromium: the tab bar fits a 1366-wide desktop and scrolls visibly on a
phone with the current tab in view; a death is shown, then confirmed; dates are typed as
dd/mm/yyyy. Screenshots go to out/screenshots/."""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import Page, expect

from dancu.core.access import OfficerContext, Role
from tests.e2e.conftest import DESKTOP, PHONE, SHOTS, LiveServer, login, shoot
from tests.helpers import resident

NAV = "nav.main-nav"


def _tab_boxes(page: Page) -> list[dict[str, float]]:
    return page.eval_on_selector_all(
        f"{NAV} a",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {left: r.left, right: r.right, top: r.top}; })",
    )


def test_the_tab_bar_fits_a_desktop_screen(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "admin")  # the ministry's officer has the most tabs
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/reconcile/duplicates")
    boxes = _tab_boxes(page)
    assert len(boxes) >= 10
    # Every tab, the last ("Trùng lặp") included, lies wholly inside the window: none cut.
    assert all(b["left"] >= 0 and b["right"] <= DESKTOP["width"] for b in boxes), boxes
    scroll = page.eval_on_selector(NAV, "n => n.scrollWidth - n.clientWidth")
    assert scroll <= 1
    expect(page.locator(f"{NAV} a[aria-current=page]")).to_have_text("Trùng lặp")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tabs-desktop.png"))


def test_the_tab_bar_scrolls_on_a_phone_with_the_current_tab_in_view(
    page: Page, live_server: LiveServer
) -> None:
    login(page, live_server.url, "admin")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/identity/corrections")
    current = page.locator(f"{NAV} a[aria-current=page]")
    expect(current).to_have_text("Yêu cầu điều chỉnh")
    box = current.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    # The bar scrolls (more tabs than fit) and shows it: shaded ends drawn as gradients.
    assert page.eval_on_selector(NAV, "n => n.scrollWidth > n.clientWidth")
    assert page.eval_on_selector(NAV, "n => getComputedStyle(n).overflowX") == "auto"
    assert "gradient" in page.eval_on_selector(NAV, "n => getComputedStyle(n).backgroundImage")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tabs-phone.png"))
    # Scrolled to the far end, the last tab comes into view.
    page.eval_on_selector(NAV, "n => { n.scrollLeft = n.scrollWidth; }")
    last = page.locator(f"{NAV} a").last.bounding_box()
    assert last and last["x"] + last["width"] <= PHONE["width"] + 1


def test_a_province_officer_sees_only_reading_tabs(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "hanoi")
    tabs = page.locator(f"{NAV} a")
    expect(tabs.filter(has_text="Tổng quan")).to_have_count(1)
    for label in ("Khai sinh", "Khai tử", "Cư trú", "Định danh mức độ 2"):
        expect(tabs.filter(has_text=re.compile(f"^{label}$"))).to_have_count(0)


def test_a_death_is_confirmed_against_the_person(page: Page, live_server: LiveServer) -> None:
    # Someone of its own, so that the family the other tests use stays alive.
    ba_dinh = OfficerContext("e2e", Role.COMMUNE, "01", "00004")
    person = live_server.container.registry.register_person(
        ba_dinh,
        resident("Trần Thị Hoà", date(1991, 8, 1), "F", date(2010, 1, 1)),
    )
    login(page, live_server.url, "badinh")
    page.goto(f"{live_server.url}/registry/events/death?personal_id={person}")
    death_date = page.locator("#f-death_date")
    expect(death_date).to_have_attribute("type", "text")
    expect(death_date).to_have_attribute("placeholder", "dd/mm/yyyy")
    death_date.fill(date.today().strftime("%d/%m/%Y"))
    page.click("button.primary")
    # Whose death it is, before anything is recorded.
    expect(page.get_by_role("heading", level=1)).to_have_text("Đây có đúng là người đã chết?")
    expect(page.locator(".person-check")).to_contain_text("Trần Thị Hoà")
    expect(page.locator(".person-check")).to_contain_text("01/08/1991")
    expect(page.locator(".person-check img.portrait")).to_be_visible()
    shoot(page, "death-confirm")
    page.goto(f"{live_server.url}/registry/persons/{person}")
    expect(page.locator("h1 .badge")).to_have_text("còn sống")

    page.go_back()
    page.get_by_role("button", name=re.compile("Đúng, ghi nhận khai tử")).click()
    expect(page.locator(".flash")).to_have_text("Đã ghi nhận.")
    expect(page.locator("h1 .badge")).to_have_text("đã chết")


def test_a_date_that_does_not_exist_is_named_in_the_browser(
    page: Page, live_server: LiveServer
) -> None:
    login(page, live_server.url, "badinh")
    page.goto(f"{live_server.url}/registry/events/birth")
    page.fill("#f-full_name", "Nguyễn Văn Bé")
    page.fill("#f-birth_date", "31/02/2025")
    page.click("button.primary")
    expect(page.locator("#e-birth_date")).to_have_text("ngày này không có trên lịch")
    expect(page.locator("#f-birth_date")).to_have_value("31/02/2025")
    # The pattern the input announces is one Chromium accepts (no console error) and fits.
    assert page.eval_on_selector("#f-birth_date", "e => !e.validity.patternMismatch")
