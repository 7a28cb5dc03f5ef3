"""The ministry administrators' pages for OpenID clients over HTTP: only ministry admins see
them, a registration with pasted public keys shows in the list, a wrong field is named and
nothing is written, a generated secret is shown once, disabling works and everything is
audited. Both backends."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from dancu.bootstrap import Container
from dancu.core.access import Role
from dancu.core.errors import NotFound
from dancu.core.models import AuditEntry
from dancu.identity.clients import secret_matches
from dancu.identity.models import Client
from tests.helpers import BA_DINH_OFFICER, add_officers, csrf, officer_sign_in, web_client

KEY = ECKey.generate_key("P-256", parameters={"kid": "portal-1"}, private=True)
JWKS = json.dumps({"keys": [KEY.as_dict(private=False)]})


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    add_officers(container, BA_DINH_OFFICER, ("bo", "Bộ Công an", Role.MINISTRY, ""))
    with web_client(container) as c:
        yield c


def sign_in(client: TestClient, username: str) -> None:
    officer_sign_in(client, username, "/")


def form(client: TestClient, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": csrf(client, "/identity/clients/new"),
        "name": "Cổng Dịch vụ công quốc gia",
        "purpose": "nộp hồ sơ đăng ký thường trú trực tuyến",
        "client_id": "dvc-portal",
        "auth": "jwks",
        "jwks": JWKS,
        "jwks_uri": "",
        "redirect_uris": "https://dichvucong.gov.vn/callback\r\nhttps://dichvucong.gov.vn/cb2\r\n",
        "post_logout_redirect_uris": "https://dichvucong.gov.vn/",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "address"],
        "claims": ["personal_id"],
    }
    data.update(fields)
    return data


def audited(container: Container, action: str) -> list[AuditEntry]:
    with container.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def client_count(container: Container) -> int:
    with container.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Client)) or 0)


def test_only_ministry_admins_see_the_client_pages(
    client: TestClient, container: Container
) -> None:
    r = client.get("/identity/clients")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    sign_in(client, "badinh")
    assert 'href="/identity/clients"' not in client.get("/registry/search").text  # no nav link
    for path in ("/identity/clients", "/identity/clients/new", "/identity/clients/x-rp"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "text/html" in r.headers["content-type"]
        assert "Không được phép" in r.text and "quản trị viên cấp Bộ" in r.text
    token = csrf(client, "/registry/search")
    r = client.post("/identity/clients/new", data={**form(client), "csrf_token": token})
    assert r.status_code == 403
    assert client_count(container) == 0


def test_registration_with_pasted_jwks_shows_in_the_list(
    client: TestClient, container: Container
) -> None:
    sign_in(client, "bo")
    assert 'href="/identity/clients"' in client.get("/registry/search").text  # nav link
    page = client.get("/identity/clients")
    assert page.status_code == 200 and "Chưa có dịch vụ nào" in page.text
    new = client.get("/identity/clients/new")
    assert "màn hình đồng ý" in new.text  # the purpose is shown to citizens: said so
    assert 'for="f-purpose"' in new.text and 'for="f-auth-jwks"' in new.text

    r = client.post("/identity/clients/new", data=form(client))
    assert r.status_code == 303 and r.headers["location"] == "/identity/clients/dvc-portal"
    details = client.get(r.headers["location"])
    assert "Đã đăng ký dịch vụ Cổng Dịch vụ công quốc gia." in details.text  # the flash
    assert "portal-1" in details.text and "https://dichvucong.gov.vn/cb2" in details.text

    listing = client.get("/identity/clients").text
    row = listing[listing.index("<tbody>") :]
    for shown in (
        "Cổng Dịch vụ công quốc gia",
        "dvc-portal",
        "nộp hồ sơ đăng ký thường trú trực tuyến",
        "private_key_jwt",
        "authorization_code",
        "refresh_token",
        "address",
        "Số định danh cá nhân",  # the sensitive claim granted
        "đang hoạt động",
    ):
        assert shown in row, shown
    registered = container.clients.get("dvc-portal")
    assert registered.redirect_uris == [
        "https://dichvucong.gov.vn/callback",
        "https://dichvucong.gov.vn/cb2",
    ]
    assert registered.claims == ["personal_id"] and registered.sector == "dichvucong.gov.vn"
    [entry] = audited(container, "oidc.client.register")
    assert (entry.actor, entry.role, entry.subject) == ("bo", "ministry_admin", "client:dvc-portal")

    again = client.post("/identity/clients/new", data=form(client, name="Another"))
    assert again.status_code == 409
    assert 'id="f-client_id"' in again.text and "đã có ứng dụng mang mã này" in again.text


def _field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="e-{name}">([^<]*)</p>', page)
    assert found, name
    return html.unescape(found[1])


def test_invalid_input_names_the_field_keeps_it_and_writes_nothing(
    client: TestClient, container: Container
) -> None:
    sign_in(client, "bo")
    r = client.post(
        "/identity/clients/new",
        data=form(
            client,
            jwks='{"keys": [',
            redirect_uris="http://dichvucong.gov.vn/callback",
            grant_types=[],
        ),
    )
    assert r.status_code == 422
    assert _field_error(r.text, "redirect_uris") == (
        "phải dùng https (chỉ được dùng http với 127.0.0.1 hoặc localhost): "
        "http://dichvucong.gov.vn/callback"
    )
    assert "JWKS" in _field_error(r.text, "jwks")
    assert _field_error(r.text, "grant_types") == "Hãy chọn ít nhất một mục"
    assert re.search(r'id="f-redirect_uris"[^>]*aria-invalid="true"', r.text, re.S)
    assert re.search(r'id="f-jwks"[^>]*aria-invalid="true"', r.text, re.S)
    assert _field_error(r.text, "name") == ""
    # What was typed is kept.
    assert 'value="Cổng Dịch vụ công quốc gia"' in r.text
    assert ">http://dichvucong.gov.vn/callback</textarea>" in r.text
    assert "{&#34;keys&#34;: [</textarea>" in r.text
    assert re.search(r'id="f-claims-personal_id"[^>]*checked', r.text)

    # A private key pasted by mistake: refused by the registry, on the JWKS field.
    r = client.post(
        "/identity/clients/new",
        data=form(client, jwks=json.dumps({"keys": [KEY.as_dict(private=True)]})),
    )
    assert r.status_code == 422
    assert "khoá bí mật" in _field_error(r.text, "jwks")

    # The JWKS URI chosen but left empty; too short a purpose.
    r = client.post(
        "/identity/clients/new", data=form(client, auth="jwks_uri", jwks="", purpose="abc")
    )
    assert r.status_code == 422
    assert _field_error(r.text, "jwks_uri") and _field_error(r.text, "jwks") == ""
    assert _field_error(r.text, "purpose") == "Hãy nhập ít nhất 5 ký tự"
    assert re.search(r'id="f-auth-jwks_uri"[^>]*checked', r.text)

    long_uri = "https://dichvucong.gov.vn/" + "k" * 300
    r = client.post("/identity/clients/new", data=form(client, auth="jwks_uri", jwks_uri=long_uri))
    assert r.status_code == 422 and _field_error(r.text, "jwks_uri") == "Giá trị quá dài"

    assert client_count(container) == 0
    assert audited(container, "oidc.client.register") == []

    # Keys at a JWKS URI instead.
    r = client.post(
        "/identity/clients/new",
        data=form(client, auth="jwks_uri", jwks="", jwks_uri="https://dichvucong.gov.vn/jwks"),
    )
    assert r.status_code == 303
    stored = container.clients.get("dvc-portal")
    assert (stored.jwks, stored.jwks_uri) == (None, "https://dichvucong.gov.vn/jwks")
    assert "Địa chỉ JWKS" in client.get("/identity/clients").text


def test_a_generated_secret_is_shown_once(
    client: TestClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    sign_in(client, "bo")
    caplog.set_level(logging.DEBUG)
    r = client.post(
        "/identity/clients/new",
        data=form(
            client,
            client_id="",
            name="Hệ thống bảo hiểm xã hội",
            auth="secret",
            jwks="",
            redirect_uris="",
            post_logout_redirect_uris="",
            grant_types=["client_credentials"],
            scopes=["registry.lookup"],
            claims=[],
        ),
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert "không thể hiển thị lại" in r.text  # the warning
    found = re.search(r'id="client-secret"[^>]*>([^<]+)</code>', r.text)
    client_id = re.search(r'id="client-id"[^>]*>([^<]+)</code>', r.text)
    assert found and client_id
    secret = found[1]
    stored = container.clients.get(client_id[1])
    assert stored.auth_method == "client_secret_basic" and secret_matches(stored, secret)
    assert secret not in stored.secret_hash
    for path in ("/identity/clients", f"/identity/clients/{client_id[1]}"):
        page = client.get(path)
        assert page.status_code == 200 and secret not in page.text
    assert "client_secret_basic" in client.get("/identity/clients").text
    assert not [rec for rec in caplog.records if secret in rec.getMessage()]
    [entry] = audited(container, "oidc.client.register")
    assert secret not in entry.detail and "client_secret_basic" in entry.detail


def test_disable_and_enable_a_client(client: TestClient, container: Container) -> None:
    sign_in(client, "bo")
    assert client.post("/identity/clients/new", data=form(client)).status_code == 303
    path = "/identity/clients/dvc-portal"
    token = csrf(client, path)
    assert client.post(f"{path}/disable").status_code == 403  # no CSRF token
    r = client.post(f"{path}/disable", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == path
    page = client.get(path).text
    assert "đã vô hiệu hoá" in page and f'action="{path}/enable"' in page
    with pytest.raises(NotFound):
        container.clients.get("dvc-portal")  # refused at the token and authorize endpoints
    assert "đã vô hiệu hoá" in client.get("/identity/clients").text
    assert client.post(f"{path}/enable", data={"csrf_token": token}).status_code == 303
    assert container.clients.get("dvc-portal").disabled_at is None
    assert len(audited(container, "oidc.client.disable")) == 1
    assert len(audited(container, "oidc.client.enable")) == 1
    missing = client.post("/identity/clients/nope/disable", data={"csrf_token": token})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert client.get("/identity/clients/nope").status_code == 404
