"""An agency's officer in real Chromium, on a phone-sized screen: sends an extract, confirms
the columns recognised, watches the run (the server's own worker runs it), reads the report
with its charts and samples, downloads the result; the ministry's officer reviews the
register's likely duplicates. Screens are screenshotted on a phone and a desktop."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from dancu.reconcile.fields import VERDICTS
from dancu.reconcile.synth_extract import generate_extract
from tests.e2e.conftest import PASSWORD, LiveServer, shoot
from tests.helpers import resident


def _sign_in(page: Page, base: str, username: str, lands: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{lands}")


def test_an_agency_reconciles_an_extract(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    base = live_server.url
    data = Path(live_server.container.settings.data_dir)
    population = next(data.glob("sample-*.parquet"))
    extract = tmp_path / "bhxh-thang-11.csv"
    generate_extract(population, 80, extract, seed=2, headers="vi-display")

    _sign_in(page, base, "bhxh", "/reconcile")
    assert page.locator("nav.main-nav a").count() == 1  # reconciliation only
    page.click("form[action='/reconcile/upload'] button")
    expect(page.locator("#f-file[aria-invalid=true]")).to_have_count(1)
    page.set_input_files("#f-file", str(extract))
    shoot(page, "reconcile-upload")
    page.click("form[action='/reconcile/upload'] button")
    page.wait_for_url("**/reconcile/jobs/*")
    expect(page.locator("#f-col_full_name")).to_have_value("Họ và tên")
    expect(page.locator("#f-col_personal_id")).to_have_value("Số CCCD")
    shoot(page, "reconcile-columns")
    page.select_option("#f-col_full_name", "")
    page.click("form.mapping button[type=submit]")
    expect(page.locator("#f-col_full_name[aria-invalid=true]")).to_have_count(1)
    page.select_option("#f-col_full_name", "Họ và tên")
    page.click("form.mapping button[type=submit]")
    page.wait_for_url("**/reconcile/jobs/*")
    # The progress bar polls until the worker has finished, then the page reloads.
    expect(page.locator("h2#dl-title")).to_be_visible(timeout=60_000)
    expect(page.locator(".stats")).to_contain_text("80")
    assert page.locator("ol.hbars.verdicts svg").count() == len(VERDICTS)  # a bar each
    shoot(page, "reconcile-report")
    with page.expect_download() as download:
        page.click("a[href$='/files/result.csv']")
    saved = tmp_path / "result.csv"
    download.value.save_as(saved)
    assert len(saved.read_text(encoding="utf-8").splitlines()) == 81
    page.click("a.crumbs, .crumbs a")
    page.wait_for_url(f"{base}/reconcile")
    expect(page.locator("table.jobs")).to_contain_text("bhxh-thang-11.csv")
    shoot(page, "reconcile-jobs")


def test_the_ministry_reviews_likely_duplicates(page: Page, live_server: LiveServer) -> None:
    from datetime import date

    from dancu.core.access import SYSTEM_CONTEXT, OfficerContext, Role

    container = live_server.container
    twice = resident("Khổng Thị Minh Nguyệt", date(1966, 6, 16), "F", date(1990, 1, 1))
    ctx = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
    container.registry.register_person(ctx, twice)
    container.registry.register_person(ctx, twice)
    other = twice.model_copy(update={"full_name": "Lục Văn Thành", "sex": "M"})
    kept = container.registry.register_person(ctx, other)
    gone = container.registry.register_person(ctx, other)
    assert container.reconcile.dedupe(SYSTEM_CONTEXT) >= 2
    _sign_in(page, live_server.url, "admin", "/registry/search")
    page.click("nav a[href='/reconcile/duplicates']")
    page.wait_for_url("**/reconcile/duplicates")
    first = page.locator("ul.duplicates li").first
    expect(first).to_be_visible()
    shoot(page, "reconcile-duplicates")
    first.locator("input[value=different]").check()
    first.locator("button[type=submit]").click()
    page.wait_for_url("**/reconcile/duplicates")
    expect(page.locator(".flash")).to_be_visible()
    # The next pair is one person: merged at once, then undone in place (HTMX).
    second = page.locator("ul.duplicates li", has_text=gone)
    second.locator("input[value=same]").check()
    second.locator(f"input[name=survivor] + label:text('{kept}')").click()
    second.locator("button[type=submit]").click()
    page.wait_for_url("**/reconcile/duplicates")
    merged = page.locator("ul.merged li", has_text=kept)
    expect(merged).to_be_visible()
    shoot(page, "reconcile-merged")
    merged.locator("input[name=reason]").fill("hai người khác nhau")
    merged.locator("button[type=submit]").click()
    expect(page.locator("ul.merged li [role=status]")).to_be_visible()
    assert container.registry.get_person(ctx, gone).personal_id == gone
