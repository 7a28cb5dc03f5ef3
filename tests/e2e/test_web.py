"""The officer web pages in real headless Chromium: sign-in, search (HTMX), person page with
history and "as of", household page, the birth / death / residence forms with field-level
errors, the language switch and the commune officer's scope. Each page is screenshotted."""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, login, shoot


def test_login_page_rejects_a_wrong_password(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/registry/search")
    expect(page).to_have_url(re.compile(r"/login\?next=/registry/search"))
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_role("heading", name="Cán bộ đăng nhập")).to_be_visible()
    shoot(page, "login")

    page.click("button[type=submit]")
    expect(page.locator("#e-username")).to_have_text("Trường này là bắt buộc")
    expect(page.locator("#f-username")).to_have_attribute("aria-invalid", "true")

    page.fill("#f-username", "badinh")
    page.fill("#f-password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("sai tên đăng nhập hoặc mật khẩu")
    shoot(page, "login-error")


def test_search_finds_people_as_you_type(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "badinh")
    expect(page.get_by_role("heading", name="Tra cứu dân cư")).to_be_visible()
    # No accents, any case: HTMX swaps in the results without a page load.
    page.fill("#f-q", "nguyen van an")
    results = page.locator("#results .results li")
    expect(results.first).to_be_visible()
    expect(results.first).to_contain_text("Nguyễn Văn An")
    expect(page.locator("#results .count")).to_contain_text("Tìm thấy")
    shoot(page, "search")

    page.fill("#f-q", live_server.family["child"])
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Nguyễn Minh Khôi")

    page.fill("#f-q", "khong co ai ten nay")
    expect(page.locator("#results .empty")).to_be_visible()


def test_person_page_shows_history_and_as_of(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "badinh")
    father = live_server.family["father"]
    page.goto(f"{live_server.url}/registry/persons/{father}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Nguyễn Văn An")
    expect(page.locator(".facts").first).to_contain_text(father)
    expect(page.locator(".timeline li").first).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("Kết hôn")
    expect(page.get_by_text("Vợ/chồng", exact=True)).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("liên kết với vợ/chồng")
    shoot(page, "person")

    # As of 2015 he was not yet married.
    page.fill("#f-as_of", "2015-06-01")
    page.click(".as-of button")
    expect(page).to_have_url(re.compile(r"as_of=2015-06-01"))
    expect(page.locator(".notice")).to_contain_text("01/06/2015")
    expect(page.locator(".facts").first).to_contain_text("chưa kết hôn")
    shoot(page, "person-as-of")


def test_household_page_lists_members(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "badinh")
    page.goto(f"{live_server.url}/registry/persons/{live_server.family['father']}")
    page.get_by_role("link", name=live_server.family["household"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(live_server.family["household"])
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(4)
    # The grandmother died: listed apart, not counted among the living members.
    expect(page.locator(".members-count")).to_contain_text("3")
    expect(page.get_by_role("table", name="Thành viên còn sống")).to_contain_text(
        "Nguyễn Minh Khôi"
    )
    expect(page.get_by_role("table", name="Thành viên đã chết")).to_contain_text("Lê Thị Tuyết")
    expect(page.get_by_role("table", name="Thành viên đã chết")).to_contain_text("đã chết")
    shoot(page, "household")


def test_birth_form_reports_field_errors_then_registers(
    page: Page, live_server: LiveServer
) -> None:
    login(page, live_server.url, "badinh")
    page.goto(f"{live_server.url}/registry/events/birth")
    expect(page.get_by_role("heading", name="Đăng ký khai sinh")).to_be_visible()
    page.fill("#f-full_name", "Nguyễn 2 Bé")
    page.fill("#f-mother_personal_id", "12345")
    page.click("button.primary")
    expect(page.get_by_role("alert")).to_contain_text("Vui lòng sửa")
    expect(page.locator("#e-full_name")).to_have_text(
        "họ tên chỉ gồm chữ cái, dấu cách, dấu nháy và gạch nối"
    )
    expect(page.locator("#e-birth_date")).to_have_text("Trường này là bắt buộc")
    expect(page.locator("#f-full_name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-full_name")).to_have_value("Nguyễn 2 Bé")  # nothing typed is lost
    shoot(page, "birth-errors")

    page.fill("#f-full_name", "Nguyễn Ngọc Hân")
    page.fill("#f-birth_date", date.today().isoformat())
    page.select_option("#f-sex", "F")
    page.fill("#f-mother_personal_id", live_server.family["mother"])
    page.fill("#f-father_personal_id", live_server.family["father"])
    page.fill("#f-reference", "KS-E2E-1")
    shoot(page, "birth")
    page.click("button.primary")
    expect(page.locator(".flash")).to_have_text("Đã ghi nhận.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Nguyễn Ngọc Hân")
    expect(page.locator(".facts").nth(1)).to_contain_text("Trần Thị Hoà")


def test_death_form_checks_dates_against_the_record(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "badinh")
    child = live_server.family["child"]
    page.goto(f"{live_server.url}/registry/events/death?personal_id={child}")
    expect(page.locator("#f-personal_id")).to_have_value(child)
    page.fill("#f-death_date", "2020-01-01")  # before the child's birth in 2025
    page.click("button.primary")
    expect(page.locator("#e-death_date")).to_have_text("ngày chết trước ngày sinh")
    shoot(page, "death")

    page.fill("#f-personal_id", "001299999999")
    page.fill("#f-death_date", "2026-01-01")
    page.click("button.primary")
    expect(page.locator("#e-personal_id")).not_to_be_empty()


def test_residence_form_moves_a_person(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "admin")
    mother = live_server.family["mother"]
    page.goto(f"{live_server.url}/registry/events/residence?personal_id={mother}")
    # Choosing a province loads its communes (HTMX).
    page.select_option("#f-commune_code-province", "79")
    expect(page.locator("#f-commune_code option").first).to_be_attached()
    expect(page.locator("#f-commune_code")).to_contain_text("Phường")
    page.fill("#f-moved_on", "2030-01-01")
    page.click("button.primary")
    expect(page.locator("#e-moved_on")).to_have_text("ngày ở tương lai")
    shoot(page, "residence")

    page.fill("#f-moved_on", date.today().isoformat())
    page.select_option("#f-kind", "temporary")
    page.fill("#f-address_line", "Số 10 đường Lê Lợi")
    page.click("button.primary")
    expect(page.locator(".flash")).to_have_text("Đã ghi nhận.")
    expect(page.locator("table")).to_contain_text("tạm trú")


def test_commune_officer_cannot_see_other_communes(page: Page, live_server: LiveServer) -> None:
    # Someone from the synthetic population living outside Ba Đình.
    from sqlalchemy import select

    from dancu.registry.models import PersonCurrent

    with live_server.container.sessions() as session:
        outsider = session.scalars(
            select(PersonCurrent.personal_id).where(PersonCurrent.commune_code != "00004")
        ).first()
    assert outsider
    login(page, live_server.url, "badinh")
    response = page.goto(f"{live_server.url}/registry/persons/{outsider}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Không tìm thấy")
    page.goto(f"{live_server.url}/registry/search?q={outsider}")
    expect(page.locator("#results .empty")).to_be_visible()
    shoot(page, "not-found")


def test_language_switch_to_english(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "hanoi")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Search the register")).to_be_visible()
    expect(page.locator(".who .role")).to_contain_text("Province officer")
    page.fill("#f-q", "nguyen")
    expect(page.locator("#results .count")).to_contain_text("found")
    shoot(page, "search-en")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def test_api_docs_render_offline(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("dancu")
    expect(page.get_by_text("/api/v1/persons/{personal_id}").first).to_be_visible()
    shoot(page, "api-docs")


def test_overview_shows_the_area_in_charts(page: Page, live_server: LiveServer) -> None:
    login(page, live_server.url, "hanoi")
    page.get_by_role("link", name="Tổng quan").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thành phố Hà Nội")
    expect(page.locator(".pyr-row")).to_have_count(18)
    expect(page.locator(".hbars li").first).to_be_visible()
    page.get_by_text("Xem dạng bảng").click()
    expect(page.locator("details table tbody tr")).to_have_count(18)
    shoot(page, "overview")
