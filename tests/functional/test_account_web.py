"""The citizen's account pages over HTTP without a browser, on both databases: sign-in with
the authenticator app's code (on the account pages and for a service), enrolment and
removal, devices with "sign out and forget" ending the session there, the paginated login
history, passcode reset answering alike whether or not the account exists, requests for
correction; CSRF on every form, Vietnamese by default and English on request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pyotp
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy import select

from dancu.bootstrap import Container
from dancu.core.models import AuditEntry
from dancu.identity.devices import DEVICE_COOKIE
from dancu.identity.ports import MemorySms
from tests.helpers import (
    CALLBACK,
    PASSCODE,
    authorize_query,
    csrf,
    family_with_account,
    register_rp,
    web_client,
)


@pytest.fixture
def family(container: Container) -> dict[str, str]:
    family = family_with_account(container)
    return family


@pytest.fixture
def app(container: Container, family: dict[str, str]) -> Iterator[TestClient]:
    with web_client(container) as client:
        yield client


def post(client: TestClient, path: str, data: dict[str, str], page: str | None = None) -> object:
    return client.post(path, data={**data, "csrf_token": csrf(client, page or path)})


def sign_in(client: TestClient, personal_id: str, passcode: str = PASSCODE) -> object:
    return client.post(
        "/account/login",
        data={
            "personal_id": personal_id,
            "passcode": passcode,
            "csrf_token": csrf(client, "/account/login"),
        },
    )


def enrol(client: TestClient) -> pyotp.TOTP:
    r = post(client, "/account/totp/start", {}, "/account/totp")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = client.get("/account/totp").text
    assert "<svg" in page and "otpauth" not in page  # the QR code, not the URI as text
    secret = re.search(r'id="totp-secret">([^<]+)<', page)
    assert secret
    totp = pyotp.TOTP(secret[1].replace(" ", ""))
    r = post(client, "/account/totp/confirm", {"code": totp.now()}, "/account/totp")
    assert r.status_code == 303  # type: ignore[attr-defined]
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step (accepted: one step of drift either way)."""
    return totp.at(time.time() + 30)


def test_sign_in_with_the_authenticator_app(app: TestClient, family: dict[str, str]) -> None:
    father = family["father"]
    first = sign_in(app, father)
    assert first.status_code == 303  # type: ignore[attr-defined]
    cookie = first.headers["set-cookie"]  # type: ignore[attr-defined]
    assert f"{DEVICE_COOKIE}=" in cookie and "HttpOnly" in cookie and "Max-Age=34560000" in cookie
    totp = enrol(app)
    assert "Bật từ" in app.get("/account").text  # on since …
    app.post("/account/logout", data={"csrf_token": csrf(app, "/account")})

    step = sign_in(app, father)
    assert step.status_code == 200  # type: ignore[attr-defined]
    assert 'action="/account/login/otp"' in step.text  # type: ignore[attr-defined]
    assert 'autocomplete="one-time-code"' in step.text  # type: ignore[attr-defined]
    assert app.get("/account").status_code == 303  # not signed in yet
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    r = post(app, "/account/login/otp", {"otp": wrong}, "/account/login/otp")
    assert r.status_code == 403 and "mã không đúng" in r.text  # type: ignore[attr-defined]
    code = next_code(totp)  # the current one was spent on enrolment
    r = post(app, "/account/login/otp", {"otp": code}, "/account/login/otp")
    assert r.status_code == 303 and r.headers["location"] == "/account"  # type: ignore[attr-defined]
    history = app.get("/account/history").text
    assert "mật mã + ứng dụng xác thực" in history and "Sai mã xác thực" in history

    # The used code cannot sign in again.
    app.post("/account/logout", data={"csrf_token": csrf(app, "/account")})
    sign_in(app, father)
    r = post(app, "/account/login/otp", {"otp": code}, "/account/login/otp")
    assert r.status_code == 403 and "đã được dùng" in r.text  # type: ignore[attr-defined]


def test_removing_the_app_needs_the_passcode(app: TestClient, family: dict[str, str]) -> None:
    sign_in(app, family["father"])
    enrol(app)
    r = post(app, "/account/totp/remove", {"passcode": "000001"}, "/account/totp")
    assert r.status_code == 403 and 'id="f-passcode"' in r.text  # type: ignore[attr-defined]
    assert "mật mã không đúng" in r.text  # type: ignore[attr-defined]
    r = post(app, "/account/totp/remove", {"passcode": PASSCODE}, "/account/totp")
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert "/account/totp/start" in app.get("/account/totp").text


def test_a_service_sign_in_asks_for_the_code_too(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    register_rp(container, ECKey.generate_key("P-256", private=True), "dvc", CALLBACK)
    sign_in(app, family["father"])
    totp = enrol(app)
    app.post("/account/logout", data={"csrf_token": csrf(app, "/account")})
    query = authorize_query("dvc", CALLBACK)
    assert app.get(f"/oidc/authorize?{urlencode(query)}").headers["location"] == "/oidc/login"
    step = app.post(
        "/oidc/login",
        data={
            "personal_id": family["father"],
            "passcode": PASSCODE,
            "csrf_token": csrf(app, "/oidc/login"),
        },
    )
    assert step.status_code == 200 and 'action="/account/login/otp"' in step.text
    assert "Cổng Dịch vụ công quốc gia" in step.text
    assert "http://127.0.0.1:9" in step.headers["content-security-policy"]
    r = post(app, "/account/login/otp", {"otp": next_code(totp)}, "/account/login/otp")
    assert r.status_code == 303 and r.headers["location"] == "/oidc/consent"  # type: ignore[attr-defined]
    consent = app.get("/oidc/consent")
    assert consent.status_code == 200 and 'action="/oidc/consent"' in consent.text
    event = container.identity.history(family["father"], limit=1)[0]
    assert (event.kind, event.factors) == ("login", ["pwd", "otp"])


def test_sign_out_and_forget_a_device_ends_its_session(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    # Two browsers: the same client with two cookie jars (one app lifespan).
    app.headers["user-agent"] = "Firefox/128.0"
    sign_in(app, family["father"])
    pc = dict(app.cookies)
    app.cookies.clear()
    app.headers["user-agent"] = "Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile Safari/537.36"
    sign_in(app, family["father"])
    page = app.get("/account/devices").text
    assert page.count('action="/account/devices/') == 2 and "Thiết bị này" in page
    devices = container.identity.devices(family["father"])
    assert [d.label for d in devices] == ["Chrome · Android", "Firefox"]
    r = post(app, f"/account/devices/{devices[1].id}/revoke", {}, "/account/devices")
    assert r.status_code == 303 and r.headers["location"] == "/account/devices"  # type: ignore[attr-defined]
    assert app.get("/account").status_code == 200
    assert "Đã đăng xuất và quên thiết bị" in app.get("/account/history").text
    phone = dict(app.cookies)

    app.cookies.clear()
    app.cookies.update(pc)
    assert app.get("/account").headers["location"] == "/account/login"  # its session ended

    app.cookies.clear()
    app.cookies.update(phone)
    r = post(app, f"/account/devices/{devices[0].id}/revoke", {}, "/account/devices")
    assert r.headers["location"] == "/account/login"  # type: ignore[attr-defined]
    assert app.get("/account").status_code == 303
    with container.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("identity.device_revoke") == 2


def test_history_is_paginated(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    for n in range(25):
        container.identity.consent_withdrawn(family["father"], f"Dịch vụ {n}")
    sign_in(app, family["father"])
    first = app.get("/account/history").text
    assert first.count("<tr>") == 21  # the header and 20 events
    assert "Đăng nhập" in first and 'href="/account/history?page=2"' in first
    assert first.index("Dịch vụ 24") < first.index("Dịch vụ 23")
    second = app.get("/account/history?page=2").text
    assert second.count("<tr>") == 1 + 7 and 'href="/account/history?page=1"' in second
    assert "page=3" not in second
    assert app.get("/account/history?page=abc").status_code == 422


def test_passcode_reset_tells_nobody_whether_the_account_exists(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    container.identity.sms = sms = MemorySms()
    login_page = app.get("/account/login").text
    assert 'href="/account/reset"' in login_page

    def ask(personal_id: str, phone: str) -> tuple[int, str, str]:
        r = post(app, "/account/reset", {"personal_id": personal_id, "phone": phone})
        page = app.get("/account/reset/confirm")
        text = re.sub(r'value="[^"]+"', "", page.text)
        return r.status_code, r.headers["location"], text  # type: ignore[attr-defined]

    unknown = ask(family["mother"], "0912345678")  # no account
    other_phone = ask(family["father"], "0912 000 111")
    real = ask(family["father"], "0912 345 678")
    assert unknown[:2] == other_phone[:2] == real[:2] == (303, "/account/reset/confirm")
    assert unknown[2] == real[2]  # the same page, the same masked phone
    assert len(sms.sent) == 1 and sms.sent[0][0] == "+84912345678"

    r = post(app, "/account/reset/confirm", {"code": "000000", "passcode": "730518"})
    assert r.status_code == 422 and "mã không đúng" in r.text  # type: ignore[attr-defined]
    code = re.search(r"\b(\d{6})\b", sms.sent[0][1])
    assert code
    r = post(app, "/account/reset/confirm", {"code": code[1], "passcode": "730518"})
    assert r.status_code == 303 and r.headers["location"] == "/account/login"  # type: ignore[attr-defined]
    assert sign_in(app, family["father"], "730518").headers["location"] == "/account"  # type: ignore[attr-defined]

    # No code was sent: any code is answered as a wrong one, then as too many.
    ask(family["mother"], "0912345678")
    for _ in range(5):
        r = post(app, "/account/reset/confirm", {"code": "123456", "passcode": "730518"})
        assert r.status_code == 422 and "mã không đúng" in r.text  # type: ignore[attr-defined]
    r = post(app, "/account/reset/confirm", {"code": "123456", "passcode": "730518"})
    assert "nhập sai mã quá nhiều lần" in r.text  # type: ignore[attr-defined]
    r = post(app, "/account/reset", {"personal_id": "12", "phone": "x"})
    assert r.status_code == 422  # type: ignore[attr-defined]


def test_request_a_correction(
    app: TestClient, family: dict[str, str], container: Container
) -> None:
    sign_in(app, family["father"])
    page = app.get("/account").text
    assert 'action="/account/corrections"' in page and 'id="f-field"' in page
    r = post(
        app,
        "/account/corrections",
        {"field": "full_name", "proposed": "", "reason": ""},
        "/account",
    )
    assert r.status_code == 422 and 'id="f-proposed"' in r.text  # type: ignore[attr-defined]
    assert 'aria-invalid="true"' in r.text  # type: ignore[attr-defined]
    data = {"field": "full_name", "proposed": "Nguyễn Văn Ân", "reason": "Giấy khai sinh ghi Ân"}
    r = post(app, "/account/corrections", data, "/account")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = app.get("/account").text
    assert "Nguyễn Văn Ân" in page and "đang xử lý" in page
    r = post(app, "/account/corrections", data, "/account")
    assert r.status_code == 409  # type: ignore[attr-defined]

    # The commune police refuse it with a note: the citizen reads why on the same page.
    from dancu.core.access import OfficerContext, Role

    badinh = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
    [open_request] = container.identity.open_corrections(badinh)
    container.identity.resolve_correction(badinh, open_request.id, "refused", "Mang bản chính")
    page = app.get("/account").text
    assert "bị từ chối" in page and "Công an cấp xã: Mang bản chính" in page


def test_every_form_needs_the_csrf_token(app: TestClient, family: dict[str, str]) -> None:
    sign_in(app, family["father"])
    for path in (
        "/account/login/otp",
        "/account/reset",
        "/account/reset/confirm",
        "/account/totp/start",
        "/account/totp/confirm",
        "/account/totp/remove",
        "/account/devices/1/revoke",
        "/account/corrections",
    ):
        assert app.post(path, data={"otp": "123456"}).status_code == 403, path


def test_pages_speak_english_on_request(app: TestClient, family: dict[str, str]) -> None:
    app.cookies.set("dancu_lang", "en")
    assert "Forgot your passcode?" in app.get("/account/login").text
    sign_in(app, family["father"])
    assert "Set up an authenticator app" in app.get("/account/totp").text
    assert "This device" in app.get("/account/devices").text
    history = app.get("/account/history").text
    assert "Login history" in history and "Level 1 · passcode" in history
    assert "Request a correction" in app.get("/account").text
    assert app.get("/account/devices").status_code == 200


def test_citizen_pages_need_a_signed_in_citizen(app: TestClient) -> None:
    for path in ("/account", "/account/totp", "/account/devices", "/account/history"):
        r = app.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/account/login", path
    assert app.get("/account/login/otp").headers["location"] == "/account/login"
    assert app.get("/account/reset/confirm").headers["location"] == "/account/reset"
