"""The same civil event sent by many writers at once, on both databases: exactly one success,
a clear conflict for every other, and the register's invariants intact (one open version per
person, one event, one outbox row, one audit entry; a verified audit chain).

Reported: 50 parallel deaths of one person on PostgreSQL gave 34 successes (9 on SQLite), 34
death events, 68 open versions, and an export listing her 34 times."""

from __future__ import annotations

import asyncio
import threading
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.access import OfficerContext, Role
from dancu.core.errors import Conflict, DancuError
from dancu.core.models import AuditEntry, OutboxEvent
from dancu.registry.models import CivilEvent, HouseholdMember, PersonVersion, Residence
from dancu.registry.service import RegistryService
from tests.helpers import resident
from tests.integration.registry.world import EVENTS, ON, Event, Place, build_world, request
from tests.live import serve

BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
WRITERS = 12
# What each event leaves behind once: its civil_event kind, outbox topic and audit action.
TRACES = {
    "death": ("death", "registry.person.died", "death.register"),
    "name change": ("name_change", "registry.person.renamed", "name.change"),
    "id re-establishment": (
        "id_reestablishment",
        "registry.personal_id.reestablished",
        "id.reestablish",
    ),
    "missing": ("missing.declare", "registry.person.missing.declare", "missing.declare"),
    "correction": ("correction", "registry.person.corrected", "record.correct"),
    "divorce": ("divorce", "registry.person.divorced", "divorce.register"),
    "marriage": ("marriage", "registry.person.married", "marriage.register"),
    "birth": ("birth", "registry.person.born", "birth.register"),
    "household head": (
        "household.head_change",
        "registry.household.head_changed",
        "household.head_change",
    ),
    "residence": ("residence.permanent", "registry.residence.changed", "residence.permanent"),
    "registration": ("registration", "registry.person.registered", "person.register"),
}
# Audit entries per event: a marriage or divorce is written in both people's records.
ENTRIES = {"marriage": 2, "divorce": 2}


def _registration_with_a_number(place: Place) -> Event:
    """Registration sent twice is a duplicate only when it names the number to keep."""
    return lambda r, c: r.register_person(
        c,
        resident(
            "Đỗ Văn Mới",
            date(1970, 1, 1),
            "M",
            ON,
            birth_commune_code="00001",
            personal_id="001070123456",
        ),
    )


def race(event: Event, registry: RegistryService, ctx: OfficerContext, n: int) -> list[object]:
    """Run ``event`` from ``n`` threads released together; each thread's result or error."""
    start = threading.Barrier(n)
    results: list[object] = [None] * n

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = event(registry, ctx) or "ok"
        except DancuError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.parametrize("kind", [k for k in EVENTS if k != "residence, number only"])
def test_one_writer_wins_the_others_get_a_conflict(
    registry: RegistryService, session_factory: sessionmaker[Session], kind: str
) -> None:
    place = build_world(registry)["A"]
    before = _counts(session_factory, kind)
    event = _registration_with_a_number(place) if kind == "registration" else request(kind, place)
    results = race(event, registry, BA_DINH, WRITERS)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(errors) == 1, results
    assert all(isinstance(e, Conflict) and e.message for e in errors), errors
    after = _counts(session_factory, kind)
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, ENTRIES.get(kind, 1)]
    _invariants_hold(session_factory)


def _counts(factory: sessionmaker[Session], kind: str) -> tuple[int, int, int]:
    event_kind, topic, action = TRACES[kind]
    with factory() as session:

        def count(column: object, value: str) -> int:
            return int(session.scalar(select(func.count()).where(column == value)) or 0)

        return (
            count(CivilEvent.kind, event_kind),
            count(OutboxEvent.topic, topic),
            count(AuditEntry.action, action),
        )


def _invariants_hold(factory: sessionmaker[Session]) -> None:
    """One open version per person, at most one open permanent residence and one open
    household membership, and an audit chain that verifies."""
    with factory() as session:
        for model, extra in (
            (PersonVersion, ()),
            (Residence, (Residence.kind == "permanent",)),
            (HouseholdMember, ()),
        ):
            most = session.scalar(
                select(func.count(model.id))
                .where(model.superseded_at.is_(None), model.valid_to.is_(None), *extra)
                .group_by(model.person_id)
                .order_by(func.count(model.id).desc())
                .limit(1)
            )
            assert (most or 0) <= 1, model.__name__
        versions = session.scalar(
            select(func.count(PersonVersion.id)).where(
                PersonVersion.superseded_at.is_(None), PersonVersion.valid_to.is_(None)
            )
        )
        people = session.scalar(select(func.count(func.distinct(PersonVersion.person_id))))
        assert versions == people
        assert audit.verify(session).ok


def test_fifty_deaths_of_one_person_over_http(container: Container) -> None:
    """The reported run, over real HTTP: 50 parallel POST /api/v1/events/death for one
    person answer one 204 and 49 409 problems; she has one death event and one version."""
    place = build_world(container.registry)["A"]
    headers = {"Authorization": f"Bearer {container.tokens.issue(BA_DINH)}"}
    body = {"personal_id": place.husband.number, "death_date": ON.isoformat()}
    with serve(container) as base:

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                return await asyncio.gather(
                    *(
                        http.post("/api/v1/events/death", json=body, headers=headers)
                        for _ in range(50)
                    )
                )

        answers = asyncio.run(send())
    codes = sorted(a.status_code for a in answers)
    assert codes == [204] + [409] * 49, codes
    conflict = next(a for a in answers if a.status_code == 409)
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["title"] == "this person is already recorded as deceased"
    with container.sessions() as session:
        deaths = session.scalar(select(func.count()).where(CivilEvent.kind == "death"))
        topics = session.scalar(
            select(func.count()).where(OutboxEvent.topic == "registry.person.died")
        )
    assert (deaths, topics) == (1, 1)
    _invariants_hold(container.sessions)
