"""A live dancu server over a seeded SQLite register, and headless Chromium (Debian's
``chromium`` driven by Playwright) to use it. Screenshots go to ``out/screenshots/``."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.core import migrate
from dancu.core.settings import Settings
from dancu.demo import ba_dinh_family, seed_demo

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
PASSWORD = "dancu-demo-2025"

pytestmark = pytest.mark.xdist_group("browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, url: str, family: dict[str, str], container: Container) -> None:
        self.url, self.family, self.container = url, family, container


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("web")
    settings = Settings(data_dir=data, secret_key="e2e-secret-key-not-for-production")
    container = Container(settings)
    migrate.upgrade(container.engine)
    seed_demo(container, people=300, seed=3)
    # A second family: same names as the first, to show search telling people apart.
    family = {**ba_dinh_family(container.registry)}
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", family, container)
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while
    it is open, which would break tests that later call asyncio.run() in the same worker."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: make test installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) on a phone-sized screen, failing the test on any
    console error (a CSP violation, a broken script) the page logs."""
    context = browser.new_context(viewport=PHONE, locale="vi-VN")
    pg = context.new_page()
    errors: list[str] = []
    # Pages answer 404/422 on purpose (not found, form errors): the browser logs those as
    # "Failed to load resource". What must not fail is a script, a style, an image or a
    # CSP check, so those are collected from the responses and the console instead.
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type not in ("document", "xhr", "fetch")
            else None
        ),
    )
    yield pg
    context.close()
    assert not errors, f"browser console errors: {errors}"


def login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/registry/search")


def shoot(page: Page, name: str) -> None:
    """Screenshot the page on a phone and on a desktop screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
