"""Officer pages over HTTP without a browser: security headers, CSRF, sign-in scope, the
no-open-redirect rule, every page read audited, HTML (not JSON) error pages. Both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dancu.bootstrap import Container
from dancu.core.models import AuditEntry
from dancu.demo import ba_dinh_family
from tests.helpers import (
    BA_DINH_OFFICER,
    HANOI_OFFICER,
    PASSWORD,
    add_officers,
    csrf,
    officer_sign_in,
    web_client,
)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    add_officers(container, BA_DINH_OFFICER, HANOI_OFFICER)
    with web_client(container) as c:
        yield c


def sign_in(client: TestClient, username: str = "badinh") -> None:
    r = officer_sign_in(client, username, "/registry/search")
    assert r.headers["location"] == "/registry/search"


def test_pages_carry_security_headers(client: TestClient) -> None:
    r = client.get("/login")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_pages_need_a_signed_in_officer(client: TestClient) -> None:
    r = client.get("/registry/search?q=an")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/registry/search%3Fq%3Dan"
    htmx = client.get("/registry/search", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/login")


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "badinh", "password": PASSWORD})
    assert r.status_code == 403
    assert "text/html" in r.headers["content-type"]


def test_login_never_redirects_off_site(client: TestClient) -> None:
    token = csrf(client)
    r = client.post(
        "/login",
        data={
            "username": "badinh",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/registry/search"  # home


def test_wrong_password_names_no_reason_beyond_the_pair(client: TestClient) -> None:
    token = csrf(client)
    r = client.post(
        "/login", data={"username": "nobody", "password": "x" * 12, "csrf_token": token}
    )
    assert r.status_code == 422
    assert "sai tên đăng nhập hoặc mật khẩu" in r.text


def test_page_reads_are_audited_and_scoped(client: TestClient, container: Container) -> None:
    family = ba_dinh_family(container.registry)
    sign_in(client, "hanoi")
    r = client.get(f"/registry/persons/{family['father']}")
    assert r.status_code == 200 and "Nguyễn Văn An" in r.text
    with container.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "hanoi")
        ).all()
    assert "person.read" in actions


def test_event_forms_refuse_a_forged_post(client: TestClient) -> None:
    sign_in(client)
    r = client.post(
        "/registry/events/death", data={"personal_id": "001088000001", "death_date": "2026-01-01"}
    )
    assert r.status_code == 403


def test_province_officer_may_read_but_not_record(client: TestClient) -> None:
    sign_in(client, "hanoi")
    r = client.get("/registry/events/birth")
    assert r.status_code == 403
    assert "chỉ được tra cứu" in r.text


def test_unknown_person_is_an_html_404(client: TestClient) -> None:
    sign_in(client)
    r = client.get("/registry/persons/001099123456")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert "Không tìm thấy" in r.text


def test_api_docs_are_served_without_a_cdn(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "cdn" not in r.text.lower()
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "dancu"
