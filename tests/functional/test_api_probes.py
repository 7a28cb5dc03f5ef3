"""What an outside prober tries on the API: telling an out-of-area person from an unknown number
by the answers, and NUL characters where text would reach the database. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.core.access import OfficerContext
from dancu.registry.models import PersonCurrent
from tests.integration.registry.world import OFFICERS, UNKNOWN, Place, build_world

PROBLEM = "application/problem+json"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


@pytest.fixture
def world(container: Container) -> dict[str, Place]:
    return build_world(container.registry)


def auth(container: Container, ctx: OfficerContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {container.tokens.issue(ctx)}"}


def _probes(p: Place, number: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) about ``number``, the husband of ``p`` when it is his."""
    on = "2026-03-02"
    return [
        ("GET", f"/api/v1/persons/{number}", None),
        ("GET", f"/api/v1/persons/{number}?as_of=2026-01-01", None),
        ("GET", f"/api/v1/persons/{number}/history", None),
        ("POST", "/api/v1/events/death", {"personal_id": number, "death_date": on}),
        (
            "POST",
            "/api/v1/events/residence",
            {"personal_id": number, "moved_on": on, "commune_code": "00004"},
        ),
        (
            "POST",
            "/api/v1/events/birth",
            {
                "full_name": "Nguyễn Minh Khôi",
                "birth_date": on,
                "sex": "M",
                "birth_commune_code": "00004",
                "mother_personal_id": number,
            },
        ),
        (
            "POST",
            "/api/v1/events/marriage",
            {"personal_id": number, "spouse_personal_id": p.single_woman.number, "married_on": on},
        ),
        (
            "POST",
            "/api/v1/events/name-change",
            {"personal_id": number, "new_name": "Nguyễn Văn Mới", "changed_on": on},
        ),
    ]


def test_an_out_of_area_person_and_an_unknown_number_get_the_same_answer(
    client: TestClient, container: Container, world: dict[str, Place]
) -> None:
    """Ba Đình's officer probes a man of Hồ Chí Minh City and a number nobody holds: every
    route answers both with the same status and the same body, and nothing is written."""
    h = auth(container, OFFICERS["commune A"])
    far = world["C"]
    with container.sessions() as session:
        before = session.scalar(select(func.count()).select_from(PersonCurrent))
    for (method, path, body), (_, unknown_path, unknown_body) in zip(
        _probes(far, far.husband.number), _probes(far, UNKNOWN), strict=True
    ):
        known = client.request(method, path, json=body, headers=h)
        unknown = client.request(method, unknown_path, json=unknown_body, headers=h)
        assert known.status_code == unknown.status_code, path
        assert known.status_code in (403, 404), path
        assert known.headers["content-type"] == PROBLEM
        shown = known.json()
        shown.pop("instance", None)
        hidden = unknown.json()
        hidden.pop("instance", None)
        assert shown == hidden, path
        assert far.husband.number not in known.text
    with container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PersonCurrent)) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/persons?q=ab%00c",
        "/api/v1/persons?q=an&purpose=a%00b",
        "/api/v1/persons?q=an&page=1%00",
        "/api/v1/persons/001090000001%00",
        "/oidc/authorize?client_id=a%00b",
    ],
)
def test_a_nul_character_in_an_address_is_refused_as_422(
    client: TestClient, container: Container, path: str
) -> None:
    h = auth(container, OFFICERS["commune A"])
    r = client.get(path, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert "NUL" in r.json()["title"]


def test_a_nul_character_on_a_page_address_gets_a_page(client: TestClient) -> None:
    r = client.get("/registry/search?q=ab%00c")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "Yêu cầu không hợp lệ" in r.text and 'lang="en"' in r.text


def test_a_nul_character_in_a_json_body_is_a_problem_naming_the_field(
    client: TestClient, container: Container, world: dict[str, Place]
) -> None:
    h = auth(container, OFFICERS["commune A"])
    person = world["A"].husband.number
    r = client.post(
        "/api/v1/events/name-change",
        json={"personal_id": person, "new_name": "Nguyễn\u0000Văn", "changed_on": "2026-03-02"},
        headers=h,
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["new_name"]
    with container.sessions() as session:
        name = session.scalar(
            select(PersonCurrent.full_name).where(PersonCurrent.personal_id == person)
        )
    assert name == world["A"].husband.name
