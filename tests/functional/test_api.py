"""The registry JSON API over HTTP: auth, RFC 9457 problems naming fields, events, search,
history, households. Both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.access import OfficerContext, Role
from dancu.core.models import AuditEntry
from tests.helpers import member, resident
from tests.live import serve

BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
PROBLEM = "application/problem+json"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


def auth(container: Container, ctx: OfficerContext = BA_DINH) -> dict[str, str]:
    return {"Authorization": f"Bearer {container.tokens.issue(ctx)}"}


def register(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    """A head of household and his wife in Ba Đình, through the API."""

    container: Container = client.app.state.container  # type: ignore[attr-defined]
    head = container.registry.register_person(
        BA_DINH,
        resident("Phạm Quốc Bảo", date(1985, 4, 2), "M", date(2010, 1, 1)),
    )
    household = container.registry.get_person(BA_DINH, head).household_number
    wife = container.registry.register_person(
        BA_DINH,
        member(household, "spouse", "Đỗ Thị Lan", date(1988, 9, 9), "F", date(2012, 1, 1)),
    )
    return head, wife


def test_requests_without_or_with_forged_tokens_are_refused(client: TestClient) -> None:
    # No token, or a token that proves nobody: 401 with a Bearer challenge (RFC 6750 §3).
    r = client.get("/api/v1/persons?q=an")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/api/v1/persons?q=an", headers={"Authorization": "Bearer forged.token"})
    assert r.status_code == 401 and r.json()["title"] == "the token is not valid"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_birth_then_lookup_history_household(client: TestClient, container: Container) -> None:
    h = auth(container)
    head, wife = register(client, h)
    born = (date.today() - timedelta(days=1)).isoformat()
    r = client.post(
        "/api/v1/events/birth",
        headers=h,
        json={
            "full_name": "Phạm Gia Huy",
            "birth_date": born,
            "sex": "M",
            "birth_commune_code": "00004",
            "mother_personal_id": wife,
            "father_personal_id": head,
        },
    )
    assert r.status_code == 201, r.text
    child = r.json()["personal_id"]
    person = client.get(f"/api/v1/persons/{child}", headers=h).json()
    assert person["mother"]["personal_id"] == wife and person["relationship"] == "child"
    history = client.get(f"/api/v1/persons/{child}/history", headers=h).json()
    assert [e["kind"] for e in history["events"]] == ["birth"]
    household = client.get(f"/api/v1/households/{person['household_number']}", headers=h)
    assert {m["personal_id"] for m in household.json()["members"]} == {head, wife, child}
    found = client.get("/api/v1/persons", params={"q": "pham gia huy"}, headers=h).json()
    assert [p["personal_id"] for p in found["items"]] == [child]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"birth_date": "2024-02-31"}, "birth_date"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"sex": "X"}, "sex"),
        ({"mother_personal_id": "00119"}, "mother_personal_id"),
        ({"birth_commune_code": "99999"}, "birth_commune_code"),
    ],
)
def test_bad_birth_gets_a_problem_naming_the_field(
    client: TestClient, container: Container, payload: dict[str, str], field: str
) -> None:
    h = auth(container)
    _, wife = register(client, h)
    body = {
        "full_name": "Phạm Bé",
        "birth_date": "2024-01-01",
        "sex": "F",
        "birth_commune_code": "00004",
        "mother_personal_id": wife,
        **payload,
    }
    r = client.post("/api/v1/events/birth", headers=h, json=body)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    after = client.get("/api/v1/persons", params={"q": "pham be"}, headers=h).json()
    assert after["items"] == []  # nothing written


def test_death_before_birth_is_refused_and_other_communes_see_nothing(
    client: TestClient, container: Container
) -> None:
    h = auth(container)
    head, _ = register(client, h)
    r = client.post(
        "/api/v1/events/death", headers=h, json={"personal_id": head, "death_date": "1980-01-01"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "death_date"
    other = auth(container, NGOC_HA)
    assert client.get(f"/api/v1/persons/{head}", headers=other).status_code == 404
    r = client.post(
        "/api/v1/events/death",
        headers=other,
        json={"personal_id": head, "death_date": "2024-01-01"},
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/events/death", headers=h, json={"personal_id": head, "death_date": "2024-01-01"}
    )
    assert r.status_code == 204
    r = client.get(f"/api/v1/persons/{head}", headers=h, params={"as_of": "2023-12-31"})
    assert r.json()["status"] == "alive" and r.json()["as_of"] == "2023-12-31"


def test_search_pages(client: TestClient, container: Container) -> None:
    h = auth(container)
    register(client, h)
    r = client.get("/api/v1/persons", params={"q": "", "birth_year": 1985}, headers=h).json()
    assert r["page"] == 1 and r["page_size"] == 20 and not r["has_more"]
    assert [p["full_name"] for p in r["items"]] == ["Phạm Quốc Bảo"]
    r = client.get("/api/v1/persons", params={"page": 0}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "page"


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/persons/{personal_id}",
        "/api/v1/persons",
        "/api/v1/events/birth",
        "/api/v1/households/{number}",
        "/api/v1/persons/{personal_id}/history",
    ):
        assert path in paths


def test_oversized_bodies_get_413(container: Container) -> None:
    container.settings.max_upload_mb = 1
    with TestClient(create_app(container)) as client:
        h = auth(container)
        big = b"x" * (1024 * 1024 + 1)
        r = client.post(
            "/api/v1/events/birth", headers={**h, "content-type": "application/json"}, content=big
        )
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

        def chunks() -> Iterator[bytes]:  # no Content-Length: streamed
            for _ in range(3):
                yield b"x" * 600_000

        r = client.post(
            "/api/v1/events/birth",
            headers={**h, "content-type": "application/json"},
            content=chunks(),
        )
        assert r.status_code == 413


def test_lookup_by_id_answers_alike_on_every_path(client: TestClient, container: Container) -> None:
    """On PostgreSQL a plain lookup is answered by the async fast path, an "as of" lookup by
    the framework's route: the same record, headers and problems either way, and each read
    audited with its purpose."""
    h = auth(container)
    head, _wife = register(client, h)
    fast = client.get(f"/api/v1/persons/{head}", headers=h, params={"purpose": "kiểm tra"})
    routed = client.get(f"/api/v1/persons/{head}", headers=h, params={"as_of": date.today()})
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    for name in ("x-content-type-options", "x-frame-options", "content-security-policy"):
        assert fast.headers[name] == routed.headers[name]
    assert fast.json() == {**routed.json(), "as_of": None}
    lookup = container.person_lookup
    if container.engine.dialect.name == "postgresql":
        assert lookup is not None and lookup.audit.committed == 1  # the fast path served it
    with container.sessions() as session:
        purposes = session.scalars(
            select(AuditEntry.purpose).where(AuditEntry.action == "person.read")
        ).all()
    assert "kiểm tra" in purposes

    bad = client.get("/api/v1/persons/0010", headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["errors"][0]["field"] == "personal_id"
    assert client.get("/api/v1/persons/001099999999", headers=h).status_code == 404
    # A number no living person can hold (born in 2390) is malformed, not unknown.
    impossible = client.get("/api/v1/persons/001890123456", headers=h)
    assert impossible.status_code == 422
    assert impossible.json()["errors"][0]["field"] == "personal_id"
    assert client.get(f"/api/v1/persons/{head}").status_code == 401
    forged = client.get(f"/api/v1/persons/{head}", headers={"Authorization": "Bearer x.y"})
    assert forged.status_code == 401 and forged.json()["title"] == "the token is not valid"
    long_purpose = client.get(f"/api/v1/persons/{head}", headers=h, params={"purpose": "x" * 61})
    assert long_purpose.status_code == 422


def test_search_answers_alike_on_every_path(client: TestClient, container: Container) -> None:
    """On PostgreSQL a search the fast path understands is answered from the async pool;
    one it hands on (here an extra parameter, which the route ignores) by the framework's
    route: the same page, headers and problems either way, each search audited."""
    h = auth(container)
    register(client, h)
    lookup = container.person_lookup
    served = lookup.audit.committed if lookup is not None else 0
    for params in (
        {"q": "PHẠM quoc"},
        {"q": "lan do", "birth_year": "1988", "page": "1"},
        {"q": "", "birth_year": "1985", "province_code": "01", "commune_code": "00004"},
        {"q": "   "},  # nothing to search for: the same problem
    ):
        fast = client.get("/api/v1/persons", headers=h, params=params)
        routed = client.get("/api/v1/persons", headers=h, params={**params, "other": "1"})
        assert fast.status_code == routed.status_code, params
        assert fast.json() == routed.json(), params
        assert fast.status_code == 422 or len(fast.json()["items"]) == 1, params
        assert fast.headers["content-type"] == routed.headers["content-type"], params
        for name in ("x-content-type-options", "x-frame-options", "content-security-policy"):
            assert fast.headers[name] == routed.headers[name]
    if container.engine.dialect.name == "postgresql":
        # both paths read through the async pool; the refused search is not audited
        assert lookup is not None and lookup.audit.committed == served + 6
    for bad in ({"page": "0", "q": "an"}, {"birth_year": "1800"}, {"birth_date": "1990-02-31"}):
        r = client.get("/api/v1/persons", headers=h, params=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, bad
    assert client.get("/api/v1/persons", params={"q": "bao"}).status_code == 401


def test_concurrent_lookups_over_real_http_are_all_audited(container: Container) -> None:
    """A live server on a free port, 64 lookups at once: every answer is 200 and every read
    is in a verified audit log; on PostgreSQL the reads share commits."""
    headers = auth(container)
    head, wife = register_direct(container)
    with serve(container) as base:

        async def load() -> list[int]:
            async with httpx.AsyncClient(base_url=base) as http:
                answers = await asyncio.gather(
                    *(
                        http.get(f"/api/v1/persons/{(head, wife)[i % 2]}", headers=headers)
                        for i in range(64)
                    )
                )
            return [a.status_code for a in answers]

        assert asyncio.run(load()) == [200] * 64
    with container.sessions() as session:
        report = audit.verify(session)
        reads = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "person.read")
        )
    assert report.ok and reads == 64 + 1  # and the one read by register_direct
    lookup = container.person_lookup
    if lookup is not None:
        assert lookup.audit.committed == 64 and lookup.audit.commits < 64


def register_direct(container: Container) -> tuple[str, str]:
    with TestClient(create_app(container)) as c:
        return register(c, auth(container))
