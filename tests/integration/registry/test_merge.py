"""Merging two records of one person and undoing it, on both databases: the number, the
identifiers, the household, the residences and the family links move to the survivor and come
back exactly; the old number answers as the survivor and is never issued again; outbox rows
and audit entries; the scope (out of area answers as unknown); a second merge, a self-merge
and a second undo are conflicts; many parallel merges of one pair give one success."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.access import OfficerContext
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid, NotFound
from dancu.core.models import AuditEntry, OutboxEvent, PersonalIdAllocation
from dancu.registry import schemas as s
from dancu.registry.models import (
    CivilEvent,
    Household,
    HouseholdMember,
    PersonCurrent,
    PersonMerge,
    PersonVersion,
)
from dancu.registry.service import RegistryService
from tests.helpers import birth, resident
from tests.integration.registry.test_concurrency import race
from tests.integration.registry.test_lookup import _async_reads
from tests.integration.registry.world import (
    MINISTRY,
    OFFICERS,
    UNKNOWN,
    Person,
    Place,
    build_world,
)

BA_DINH = OFFICERS["commune A"]
NGOC_HA = OFFICERS["commune B"]
REASON = "one person registered twice"


def _again(registry: RegistryService, person: Person, sex: str, **kw: object) -> str:
    """The same person registered a second time in commune A, in a household of their own."""
    return registry.register_person(
        MINISTRY,
        s.PersonRegistration(
            full_name=person.name,
            birth_date=person.born,
            sex=sex,  # type: ignore[arg-type]
            birth_commune_code="00001",
            residence_commune_code="00004",
            residence_since=date(2024, 5, 1),
            address_line="Số 9",
            **kw,  # type: ignore[arg-type]
        ),
    )


def _count(factory: sessionmaker[Session], column: object, value: object) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).where(column == value)) or 0)


def _invariants_hold(factory: sessionmaker[Session]) -> None:
    """One believed open version per person; a current row for every record not merged, none
    for a merged one; a verified audit chain."""
    with factory() as session:
        most = session.scalar(
            select(func.count(PersonVersion.id))
            .where(PersonVersion.superseded_at.is_(None), PersonVersion.valid_to.is_(None))
            .group_by(PersonVersion.person_id)
            .order_by(func.count(PersonVersion.id).desc())
            .limit(1)
        )
        assert most == 1
        merged = set(
            session.scalars(select(PersonMerge.merged_id).where(PersonMerge.status == "merged"))
        )
        current = set(session.scalars(select(PersonCurrent.person_id)))
        people = set(session.scalars(select(PersonVersion.person_id)))
        assert current == people - merged and not current & merged
        assert audit.verify(session).ok


def test_a_merge_moves_the_record_and_the_old_number_answers_as_the_survivor(
    registry: RegistryService,
    world: dict[str, Place],
    session_factory: sessionmaker[Session],
) -> None:
    man = world["A"].single_man
    dup = _again(registry, man, "M", old_id_number="012345678", old_id_issuer="01")
    dup_household = registry.get_person(BA_DINH, dup).household_number
    people = _count(session_factory, PersonCurrent.status, "alive")

    out = registry.merge_persons(BA_DINH, man.number, dup, REASON)

    assert (out.survivor_personal_id, out.merged_personal_id, out.status) == (
        man.number,
        dup,
        "merged",
    )
    person = registry.get_person(BA_DINH, dup)  # the old number: the survivor
    assert person.personal_id == man.number
    numbers = {(i.kind, i.value): i.valid_to for i in person.identifiers}
    assert numbers[("personal_id", man.number)] is None  # still the current number
    assert numbers[("personal_id", dup)] is not None  # the merged one, ended
    assert ("cmnd9", "012345678") in numbers
    assert registry.search(BA_DINH, "012345678").items[0].personal_id == man.number
    assert len(registry.search(BA_DINH, man.name).items) == 1
    assert _count(session_factory, PersonCurrent.status, "alive") == people - 1
    # The merged record's history is kept, readable in the survivor's.
    history = registry.history(BA_DINH, man.number)
    assert [m.personal_id for m in history.merged] == [dup]
    assert history.merged[0].versions[-1].status == "merged"
    assert history.merged[0].residences[0].household_number == dup_household
    # Its household (it was the only member) is dissolved; nobody is listed in it.
    assert dup_household is not None
    assert registry.household(BA_DINH, dup_household).members == []
    with session_factory() as session:
        household = session.scalars(select(Household).where(Household.number == dup_household))
        assert household.one().dissolved_on is not None
        # Never issued again: the allocation stays, and so does the identifier.
        assert session.get(PersonalIdAllocation, dup) is not None
        event = session.scalars(select(CivilEvent).where(CivilEvent.kind == "merge")).one()
        assert event.details["merge_id"] == out.id
        outbox = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "registry.person.merged")
        ).one()
        entries = session.scalars(
            select(AuditEntry.subject).where(AuditEntry.action == "person.merge")
        ).all()
    assert outbox.key == man.number
    assert outbox.payload == {
        "survivor_personal_id": man.number,
        "merged_personal_id": dup,
        "merge_id": out.id,
        "event_id": event.id,
    }
    assert len(entries) == 2  # in both records
    with pytest.raises(Conflict):
        registry.register_person(
            MINISTRY,
            resident(
                "Đỗ Văn Mới",
                man.born,
                "M",
                date(2025, 1, 1),
                birth_commune_code="00001",
                personal_id=dup,
            ),
        )
    _invariants_hold(session_factory)


def test_family_links_move_to_the_survivor_and_come_back(
    registry: RegistryService,
    world: dict[str, Place],
    session_factory: sessionmaker[Session],
) -> None:
    a = world["A"]
    # The wife registered twice: the second record is single, in a household of its own;
    # a child was recorded with the first record as mother.
    dup = _again(registry, a.wife, "F")
    child = registry.register_birth(
        BA_DINH,
        birth(
            "Nguyễn Minh Khôi",
            date(2026, 1, 5),
            a.wife.number,
            father_personal_id=a.husband.number,
            household_number=a.household,
        ),
    )
    # The married record is the one merged: the survivor gains the marriage and the child.
    merge = registry.merge_persons(BA_DINH, dup, a.wife.number, REASON)
    survivor = registry.get_person(BA_DINH, dup)
    assert (survivor.marital_status, survivor.spouse) == (
        "married",
        s.PersonRef(personal_id=a.husband.number, full_name=a.husband.name),
    )
    assert registry.get_person(BA_DINH, a.husband.number).spouse.personal_id == dup  # type: ignore[union-attr]
    assert registry.get_person(BA_DINH, child).mother.personal_id == dup  # type: ignore[union-attr]
    assert survivor.household_number != a.household  # the survivor keeps its own household
    members = {m.personal_id for m in registry.household(BA_DINH, a.household).members}
    assert members == {a.husband.number, child}

    back = registry.unmerge(BA_DINH, merge.id, "not the same person after all")

    assert back.status == "undone" and back.undone_by == BA_DINH.username
    wife = registry.get_person(BA_DINH, a.wife.number)
    assert wife.personal_id == a.wife.number and wife.status == "alive"
    assert (wife.marital_status, wife.spouse.personal_id) == ("married", a.husband.number)  # type: ignore[union-attr]
    assert wife.household_number == a.household and wife.relationship == "spouse"
    assert {i.value for i in wife.identifiers} == {a.wife.number}
    again = registry.get_person(BA_DINH, dup)
    assert (again.personal_id, again.marital_status, again.spouse) == (dup, "single", None)
    assert registry.get_person(BA_DINH, a.husband.number).spouse.personal_id == a.wife.number  # type: ignore[union-attr]
    assert registry.get_person(BA_DINH, child).mother.personal_id == a.wife.number  # type: ignore[union-attr]
    members = {m.personal_id for m in registry.household(BA_DINH, a.household).members}
    assert members == {a.husband.number, a.wife.number, child}
    assert registry.history(BA_DINH, dup).merged == []
    # Both clocks: as the register knew it during the merge, the record was merged.
    during = registry.get_person(BA_DINH, a.wife.number, known_at=merge.merged_at)
    assert during.status == "merged"
    with session_factory() as session:
        topics = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.topic == "registry.person.unmerged")
        ).all()
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "person.unmerge")
        ).all()
    assert topics == [
        {
            "survivor_personal_id": dup,
            "merged_personal_id": a.wife.number,
            "merge_id": merge.id,
            "event_id": topics[0]["event_id"],
        }
    ]
    assert len(actions) == 2
    with pytest.raises(Conflict) as twice:
        registry.unmerge(BA_DINH, merge.id, "again")
    assert twice.value.message == "this merge was already undone"
    _invariants_hold(session_factory)


def test_an_undo_keeps_what_the_survivor_did_since(
    registry: RegistryService,
    world: dict[str, Place],
    session_factory: sessionmaker[Session],
) -> None:
    a = world["A"]
    dup = _again(registry, a.wife, "F")
    merge = registry.merge_persons(BA_DINH, dup, a.wife.number, REASON)
    registry.change_name(
        BA_DINH,
        s.NameChange(personal_id=dup, new_name="Trần Thị Mới", changed_on=date.today()),
    )
    registry.unmerge(BA_DINH, merge.id, "two people")
    survivor = registry.get_person(BA_DINH, dup)
    assert survivor.full_name == "Trần Thị Mới"  # the later change stands
    assert (survivor.marital_status, survivor.spouse) == ("single", None)  # the merge's, gone
    assert registry.get_person(BA_DINH, a.wife.number).spouse.personal_id == a.husband.number  # type: ignore[union-attr]
    _invariants_hold(session_factory)


def test_refusals(registry: RegistryService, world: dict[str, Place]) -> None:
    a = world["A"]
    man, woman = a.single_man, a.single_woman
    dup = _again(registry, man, "M")

    def refused(ctx: OfficerContext, survivor: str, merged: str) -> DancuError:
        with pytest.raises(DancuError) as caught:
            registry.merge_persons(ctx, survivor, merged, REASON)
        return caught.value

    # Out of area answers as an unknown number, naming the same field.
    b = world["B"].single_man.number
    for ctx, pair, unknown in (
        (NGOC_HA, (man.number, dup), (UNKNOWN, dup)),
        (BA_DINH, (b, dup), (UNKNOWN, dup)),
        (BA_DINH, (man.number, b), (man.number, UNKNOWN)),
    ):
        got, expected = refused(ctx, *pair), refused(ctx, *unknown)
        assert isinstance(got, NotFound) and isinstance(expected, NotFound)
        assert (got.message, got.field) == (expected.message, expected.field)
    for ctx in (OFFICERS["province of A"], OFFICERS["agency"]):
        assert isinstance(refused(ctx, man.number, dup), Forbidden)
    same = refused(BA_DINH, man.number, man.number)
    assert isinstance(same, Conflict) and same.field == "merged_personal_id"
    # Each other's spouse: not one person.
    related = refused(BA_DINH, a.husband.number, a.wife.number)
    assert isinstance(related, Conflict)
    # The head of a household with other members: a change of head first.
    headed = refused(BA_DINH, woman.number, a.husband.number)
    assert isinstance(headed, Invalid) and headed.field == "merged_personal_id"
    merge = registry.merge_persons(BA_DINH, man.number, dup, REASON)
    twice = refused(BA_DINH, man.number, dup)
    assert (
        isinstance(twice, Conflict)
        and twice.message == "this record is already merged into another"
    )
    assert isinstance(refused(BA_DINH, woman.number, dup), Conflict)
    with pytest.raises(NotFound) as not_mine:
        registry.unmerge(NGOC_HA, merge.id, "not mine")
    with pytest.raises(NotFound) as unknown_merge:
        registry.merge_record(NGOC_HA, merge.id + 1)
    assert not_mine.value.message == unknown_merge.value.message
    with pytest.raises(NotFound):
        registry.unmerge(BA_DINH, 999_999, "no such merge")


def test_a_merge_of_a_survivor_is_undone_first(
    registry: RegistryService, world: dict[str, Place]
) -> None:
    man = world["A"].single_man
    first, second = _again(registry, man, "M"), _again(registry, man, "M")
    inner = registry.merge_persons(BA_DINH, first, second, REASON)
    outer = registry.merge_persons(BA_DINH, man.number, first, REASON)
    assert registry.get_person(BA_DINH, second).personal_id == man.number  # through both
    chain = [m.personal_id for m in registry.history(BA_DINH, man.number).merged]
    assert chain == [first, second]
    with pytest.raises(Conflict):
        registry.unmerge(BA_DINH, inner.id, "wrong order")
    registry.unmerge(BA_DINH, outer.id, "right order")
    registry.unmerge(BA_DINH, inner.id, "then this one")
    assert registry.get_person(BA_DINH, second).personal_id == second
    assert registry.merge_record(BA_DINH, inner.id).status == "undone"


def test_parallel_merges_of_one_pair_one_wins(
    registry: RegistryService,
    world: dict[str, Place],
    session_factory: sessionmaker[Session],
) -> None:
    man = world["A"].single_man
    dup = _again(registry, man, "M")
    results = race(lambda r, c: r.merge_persons(c, man.number, dup, REASON), registry, BA_DINH, 8)
    (merge,) = [r for r in results if isinstance(r, s.MergeOut)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(errors) == 1, results
    assert all(isinstance(e, Conflict) for e in errors), errors
    # The other way round at once: still one merge of the pair.
    results = race(lambda r, c: r.merge_persons(c, dup, man.number, REASON), registry, BA_DINH, 4)
    assert all(isinstance(e, Conflict) for e in results), results
    assert _count(session_factory, CivilEvent.kind, "merge") == 1
    assert _count(session_factory, OutboxEvent.topic, "registry.person.merged") == 1
    assert _count(session_factory, AuditEntry.action, "person.merge") == 2
    results = race(lambda r, c: r.unmerge(c, merge.id, "two"), registry, BA_DINH, 8)
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert _count(session_factory, OutboxEvent.topic, "registry.person.unmerged") == 1
    _invariants_hold(session_factory)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(HouseholdMember)) > 0


def test_the_async_lookup_answers_an_old_number_with_the_survivor(container: Container) -> None:
    registry = container.registry
    man = build_world(registry)["A"].single_man
    dup = _again(registry, man, "M", old_id_number="012345678")
    registry.merge_persons(BA_DINH, man.number, dup, REASON)
    expected = registry.get_person(BA_DINH, man.number)
    assert _async_reads(container, [(BA_DINH, dup), (BA_DINH, man.number)]) == [expected] * 2
