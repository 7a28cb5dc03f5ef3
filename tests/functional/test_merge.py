"""Merging two records of one person over HTTP, on both databases: the API merges, answers
the old number with the survivor, refuses a second merge, an out-of-area officer and a bad
body with problem details, and undoes; the duplicates review page merges a pair (at once for
the ministry, after a province officer's confirmation otherwise) and undoes it in place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dancu.bootstrap import Container
from dancu.core.access import OfficerContext, Role
from dancu.reconcile.models import DuplicatePair
from tests.helpers import add_officers, csrf, officer_sign_in, resident, web_client

BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
PROBLEM = "application/problem+json"
UNKNOWN = "001090000001"


def _twice(container: Container, name: str = "Khổng Minh Thư") -> tuple[str, str]:
    """One woman registered twice in Ba Đình, each time heading a household of her own."""
    data = resident(name, date(1970, 7, 7), "F", date(2000, 1, 1))
    return container.registry.register_person(BA_DINH, data), container.registry.register_person(
        BA_DINH, data
    )


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    add_officers(
        container, ("admin", "admin", Role.MINISTRY, ""), ("hanoi", "hanoi", Role.PROVINCE, "01")
    )
    with web_client(container) as c:
        yield c


def _auth(container: Container, ctx: OfficerContext = BA_DINH) -> dict[str, str]:
    return {"Authorization": f"Bearer {container.tokens.issue(ctx)}"}


def test_merge_and_undo_over_the_api(client: TestClient, container: Container) -> None:
    kept, gone = _twice(container)
    headers = _auth(container)
    body = {"merged_personal_id": gone, "reason": "registered twice"}

    merged = client.post(f"/api/v1/persons/{kept}/merge", json=body, headers=headers)

    assert merged.status_code == 201, merged.text
    merge = merged.json()
    assert (merge["survivor_personal_id"], merge["merged_personal_id"], merge["status"]) == (
        kept,
        gone,
        "merged",
    )
    assert client.get(f"/api/v1/persons/{gone}", headers=headers).json()["personal_id"] == kept
    history = client.get(f"/api/v1/persons/{kept}/history", headers=headers).json()
    assert [m["personal_id"] for m in history["merged"]] == [gone]
    again = client.post(f"/api/v1/persons/{kept}/merge", json=body, headers=headers)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["errors"] == [
        {"field": "merged_personal_id", "message": "this record is already merged into another"}
    ]
    # Another commune: the answer an unknown number gets.
    other = _auth(container, NGOC_HA)
    outside = client.post(f"/api/v1/persons/{kept}/merge", json=body, headers=other)
    unknown = client.post(f"/api/v1/persons/{UNKNOWN}/merge", json=body, headers=other)
    assert outside.status_code == unknown.status_code == 404
    assert outside.json() == unknown.json()
    bad = client.post(
        f"/api/v1/persons/{kept}/merge", json={"merged_personal_id": "12"}, headers=headers
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {
        "merged_personal_id",
        "reason",
    }
    assert client.get(f"/api/v1/merges/{merge['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/merges/{merge['id']}", headers=headers).json() == merge

    undone = client.post(
        f"/api/v1/merges/{merge['id']}/undo", json={"reason": "two people"}, headers=headers
    )

    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "undone"
    assert client.get(f"/api/v1/persons/{gone}", headers=headers).json()["personal_id"] == gone
    twice = client.post(
        f"/api/v1/merges/{merge['id']}/undo", json={"reason": "two people"}, headers=headers
    )
    assert twice.status_code == 409 and twice.json()["title"] == "this merge was already undone"
    assert client.post("/api/v1/merges/x/undo", json={}, headers=headers).status_code == 422
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/persons/{personal_id}/merge"]
    assert PROBLEM in operation["post"]["responses"]["409"]["content"]


def _sign_in(client: TestClient, username: str) -> None:
    officer_sign_in(client, username, fresh=True)


def _pair(container: Container, a: str, b: str) -> int:
    """The pair as ``dancu reconcile dedupe`` lists it."""
    with container.sessions() as session, session.begin():
        pair = DuplicatePair(
            personal_id_a=a, personal_id_b=b, score=0.99, agreement="name5 dob4", province_code="01"
        )
        session.add(pair)
        session.flush()
        return pair.id


def test_the_review_page_merges_a_pair_and_undoes_it(
    client: TestClient, container: Container
) -> None:
    a, b = _twice(container)
    pair = _pair(container, a, b)
    # A province officer confirms; the register is the ministry's to merge.
    _sign_in(client, "hanoi")
    page = client.get("/reconcile/duplicates").text
    assert f'id="pair-{pair}"' in page and 'name="survivor"' not in page
    decided = client.post(
        f"/reconcile/duplicates/{pair}",
        data={"decision": "same", "csrf_token": csrf(client, "/reconcile/duplicates")},
    )
    assert decided.status_code == 303
    page = client.get("/reconcile/duplicates").text
    assert f'id="same-{pair}"' in page and f"/reconcile/duplicates/{pair}/merge" not in page
    assert container.registry.get_person(BA_DINH, b).personal_id == b  # nothing merged yet

    _sign_in(client, "admin")
    token = csrf(client, "/reconcile/duplicates")
    merged = client.post(
        f"/reconcile/duplicates/{pair}/merge", data={"survivor": "b", "csrf_token": token}
    )
    assert merged.status_code == 303
    page = client.get("/reconcile/duplicates").text
    assert f'id="merged-{pair}"' in page and f'hx-post="/reconcile/duplicates/{pair}/undo"' in page
    assert "Hủy hợp nhất" in page  # Vietnamese by default
    assert container.registry.get_person(BA_DINH, a).personal_id == b

    # The undo button, as HTMX sends it: the entry is replaced in place.
    undone = client.post(
        f"/reconcile/duplicates/{pair}/undo",
        data={"reason": "hai người khác nhau"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert undone.status_code == 200
    assert f'id="merged-{pair}"' in undone.text and 'role="status"' in undone.text
    assert "<html" not in undone.text
    assert container.registry.get_person(BA_DINH, a).personal_id == a
    again = client.post(
        f"/reconcile/duplicates/{pair}/undo",
        data={"reason": "again"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert 'role="alert"' in again.text
    assert (
        client.post(f"/reconcile/duplicates/{pair}/undo", data={"reason": "x"}).status_code == 403
    )

    # Back for review; the ministry's "same person" merges at once.
    assert f'id="pair-{pair}"' in client.get("/reconcile/duplicates").text
    decided = client.post(
        f"/reconcile/duplicates/{pair}",
        data={"decision": "same", "survivor": "a", "note": "cùng một người", "csrf_token": token},
    )
    assert decided.status_code == 303
    assert container.registry.get_person(BA_DINH, b).personal_id == a
    with container.sessions() as session:
        row = session.scalars(select(DuplicatePair).where(DuplicatePair.id == pair)).one()
    assert (row.status, row.survivor_personal_id) == ("merged", a) and row.merge_id is not None
    plain = client.post(
        f"/reconcile/duplicates/{pair}/undo", data={"reason": "two people", "csrf_token": token}
    )
    assert plain.status_code == 303
