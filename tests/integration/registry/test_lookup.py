"""The async person lookup (PostgreSQL) answers exactly as the register's synchronous read
does, refuses what it refuses, and audits every read it serves. On SQLite ``aget_person``
takes the synchronous read on a worker thread, with the same answers."""

from __future__ import annotations

import asyncio
from dataclasses import astuple
from datetime import date

import pytest

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.access import OfficerContext, Role
from dancu.core.errors import Invalid, NotFound
from dancu.demo import ba_dinh_family
from dancu.registry import schemas as s
from dancu.registry.lookup import OUT_OF_AREA
from dancu.registry.search import SearchQuery
from tests.helpers import resident

BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
HANOI = OfficerContext("hanoi", Role.PROVINCE, "01")


def _family(container: Container) -> list[str]:
    """The demo family (parents, spouse, household, a death, an old CMND number) plus a
    re-established number: the new number and the old one both resolve."""
    family = ba_dinh_family(container.registry)
    new = container.registry.reestablish_id(
        BA_DINH,
        s.IDReestablishment(
            personal_id=family["father"], on=date(2026, 1, 5), reason="sai sót khi cấp số"
        ),
    )
    return [family["mother"], family["child"], family["grandmother"], family["father"], new]


def _async_reads(container: Container, reads: list[tuple[OfficerContext, str]]) -> list[object]:
    """Each read through ``aget_person`` on one event loop, as the server runs them; an
    exception is returned in place of its answer."""

    async def main() -> list[object]:
        await container.start_async()
        try:
            out: list[object] = []
            for ctx, pid in reads:
                try:
                    out.append(await container.registry.aget_person(ctx, pid, purpose="test"))
                except Exception as exc:
                    out.append(exc)
            return out
        finally:
            await container.stop_async()

    return asyncio.run(main())


def test_async_lookup_answers_as_the_synchronous_read(container: Container) -> None:
    numbers = _family(container)
    expected = [container.registry.get_person(BA_DINH, pid) for pid in numbers]
    assert expected[3].personal_id == numbers[4]  # the old number resolves to the new record
    assert expected[3].spouse and expected[1].father and expected[3].residences
    assert {i.kind for i in expected[3].identifiers} == {"personal_id", "cmnd9"}

    got = _async_reads(container, [(BA_DINH, pid) for pid in numbers])

    assert got == expected
    lookup = container.person_lookup
    if container.engine.dialect.name == "postgresql":
        assert lookup is not None and lookup.audit.committed == len(numbers)
        assert lookup.audit.expected == 0
    else:
        assert lookup is None


def test_async_lookup_refuses_bad_unknown_and_out_of_area_numbers(container: Container) -> None:
    numbers = _family(container)
    with container.sessions() as session:
        before = audit.verify(session).entries
    got = _async_reads(
        container,
        [
            (BA_DINH, "12345"),
            (BA_DINH, "001099999999"),
            (NGOC_HA, numbers[0]),
            (HANOI, numbers[0]),
        ],
    )
    assert isinstance(got[0], Invalid) and got[0].field == "personal_id"
    assert "12 digits" in got[0].message
    assert isinstance(got[1], NotFound) and got[1].field == "personal_id"
    # Outside the officer's commune the answer is the same as for an unknown number.
    assert isinstance(got[2], NotFound) and got[2].message == OUT_OF_AREA
    assert isinstance(got[3], s.PersonPublic)  # the province covers the commune
    with container.sessions() as session:
        report = audit.verify(session)
    assert report.ok
    assert report.entries == before + 1  # only the read that answered is audited
    if container.person_lookup is not None:
        assert container.person_lookup.audit.expected == 0


def test_as_of_reads_take_the_synchronous_path(container: Container) -> None:
    numbers = _family(container)

    async def main() -> s.PersonPublic:
        await container.start_async()
        try:
            return await container.registry.aget_person(
                BA_DINH, numbers[2], valid_on=date(2026, 1, 1)
            )
        finally:
            await container.stop_async()

    before = asyncio.run(main())
    assert before.status == "alive" and before.as_of == date(2026, 1, 1)
    if container.person_lookup is not None:
        assert container.person_lookup.audit.committed == 0


def test_the_lookup_is_not_used_from_another_event_loop(container: Container) -> None:
    """Pool connections belong to the loop that opened them: elsewhere the thread path."""
    if container.person_lookup is None:
        pytest.skip("the async lookup is PostgreSQL's")
    numbers = _family(container)
    lookup = container.person_lookup

    async def started() -> None:
        await container.start_async()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(started())
        assert lookup.serves_here() is False  # not inside any loop
        other = asyncio.run(container.registry.aget_person(BA_DINH, numbers[0]))
        assert other.personal_id == numbers[0] and lookup.audit.committed == 0
        assert loop.run_until_complete(container.registry.aget_person(BA_DINH, numbers[0]))
        assert lookup.audit.committed == 1
    finally:
        loop.run_until_complete(container.stop_async())
        loop.close()


def test_async_search_answers_as_the_synchronous_search(container: Container) -> None:
    """Every shape of search (name in any word order and case, a common name with and without
    a date or year, numbers, localities, pages, scopes, nothing to search) gives the same
    page on the async path as on the synchronous one, and each answered search is audited."""
    _family(container)
    for i in range(30):  # a common name: more than a page of the same people
        container.registry.register_person(
            BA_DINH,
            resident(
                "Nguyễn Văn Hùng" if i % 3 else "Hùng Nguyễn Văn",
                date(1980 + i % 4, 5, 4),
                "M",
                date(2000, 1, 1),
            ),
        )
    ministry = OfficerContext("ministry", Role.MINISTRY)
    queries = [
        (BA_DINH, SearchQuery("nguyen van hung")),
        (BA_DINH, SearchQuery("NGUYỄN VĂN HÙNG", page=2)),
        (BA_DINH, SearchQuery("hung nguyen", birth_date=date(1981, 5, 4))),
        (BA_DINH, SearchQuery("van", birth_year=1982)),
        (HANOI, SearchQuery("hung", commune_code="00004")),
        (NGOC_HA, SearchQuery("nguyen van hung")),  # outside the commune: nobody
        (ministry, SearchQuery("nguyen", province_code="01")),
        (BA_DINH, SearchQuery("", birth_year=1983)),
        (BA_DINH, SearchQuery("nguy")),  # whole words only
        (BA_DINH, SearchQuery("   ")),  # nothing to search for
    ]
    expected: list[object] = []
    for ctx, q in queries:
        try:
            expected.append(container.registry.search(ctx, *astuple(q)))
        except Invalid as exc:
            expected.append(exc)
    first = expected[0]
    assert isinstance(first, s.SearchPage) and len(first.items) == 20 and first.has_more
    assert first.items[0].full_name == "Nguyễn Văn Hùng"  # typed exactly: first
    assert isinstance(expected[1], s.SearchPage) and len(expected[1].items) == 10
    assert isinstance(expected[5], s.SearchPage) and expected[5].items == []
    assert isinstance(expected[8], s.SearchPage) and expected[8].items == []

    async def main() -> list[object]:
        await container.start_async()
        try:
            out: list[object] = []
            for ctx, q in queries:
                try:
                    out.append(await container.registry.asearch(ctx, q))
                except Invalid as exc:
                    out.append(exc)
            return out
        finally:
            await container.stop_async()

    got = asyncio.run(main())
    assert [g if isinstance(g, s.SearchPage) else str(g) for g in got] == [
        e if isinstance(e, s.SearchPage) else str(e) for e in expected
    ]
    if container.person_lookup is not None:  # PostgreSQL: served by the pool, audited
        assert container.person_lookup.audit.committed == len(queries) - 1
        assert container.person_lookup.audit.expected == 0
