"""Who may record which civil event, as a matrix: every event type × the officer's unit × the
person's unit, on both databases.

The rules (docs/jurisdiction.md): an event is recorded by the officer of the unit the law gives
it to — the commune of residence for most, the commune of a parent's residence for a birth
(Law on Civil Status 2014 Art. 13), the commune of either party for a marriage (Art. 17), the
destination commune for a residence registration (Law on Residence 2020 Art. 22). Province
officers read; agency officers have no access to the register. Every refusal about a person
outside the officer's area is word for word the refusal for a number nobody holds.
"""

from __future__ import annotations

from datetime import date

import pytest

from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError, Forbidden, NotFound
from dancu.registry import schemas as s
from dancu.registry.service import RegistryService
from tests.helpers import birth
from tests.integration.registry.world import (
    COMMUNES,
    EVENTS,
    OFFICERS,
    ON,
    UNKNOWN,
    Event,
    Place,
    request,
)


def expected(kind: str, officer: str, where: str) -> str:
    """The rule, written out: ``ok``, ``forbidden`` or ``not found``."""
    ctx = OFFICERS[officer]
    if ctx.role in (Role.PROVINCE, Role.AGENCY):
        return "forbidden"  # they read (or not even that); they never record
    covered = ctx.role is Role.MINISTRY or ctx.commune_code == COMMUNES[where][1]
    if kind == "residence":
        return "ok"  # the destination is the officer's commune; the papers reach the person
    if kind == "registration":
        return "ok" if covered else "forbidden"  # the commune named is outside the area
    return "ok" if covered else "not found"


# Officers whose cells change nothing share one world: the refusals of the read-only roles.
GROUPS = [
    ("commune A",),
    ("commune B",),
    ("commune C",),
    ("ministry",),
    ("province of A", "agency"),
]


@pytest.mark.parametrize("officers", GROUPS, ids=" + ".join)
@pytest.mark.parametrize("kind", EVENTS)
def test_who_may_record_what(
    registry: RegistryService, world: dict[str, Place], kind: str, officers: tuple[str, ...]
) -> None:
    for officer in officers:
        _check_cells(registry, world, kind, officer)


def _check_cells(
    registry: RegistryService, world: dict[str, Place], kind: str, officer: str
) -> None:
    ctx = OFFICERS[officer]
    for where, place in world.items():
        want = expected(kind, officer, where)
        outcome, error = _attempt(request(kind, place), registry, ctx)
        assert outcome == want, (kind, officer, where, error)
        if want == "not found":
            # Word for word what a number nobody holds gets: no existence oracle.
            _, unknown = _attempt(request(kind, place, UNKNOWN), registry, ctx)
            assert isinstance(unknown, NotFound) and isinstance(error, NotFound)
            assert (unknown.message, unknown.field) == (error.message, error.field)
        if want == "forbidden":
            assert isinstance(error, Forbidden) and error.message  # a reason, not a bare 403


def _attempt(
    event: Event, registry: RegistryService, ctx: OfficerContext
) -> tuple[str, DancuError | None]:
    try:
        event(registry, ctx)
    except Forbidden as exc:
        return "forbidden", exc
    except NotFound as exc:
        return "not found", exc
    return "ok", None


def test_an_officer_reads_the_record_they_create(
    registry: RegistryService, world: dict[str, Place]
) -> None:
    """The reported defect: a birth whose mother lives in another province was recorded and
    the child put into a household there, out of the officer's sight. Now a parent living
    elsewhere is reached only with the name as declared, and the child joins the household
    of the parent who lives in the officer's area."""
    a, c = world["A"], world["C"]
    badinh = OFFICERS["commune A"]
    born = birth(
        "Nguyễn Minh Khôi",
        ON,
        c.wife.number,  # the mother lives in Hồ Chí Minh City
        father_personal_id=a.single_man.number,  # lives in Ba Đình
    )
    with pytest.raises(NotFound) as refused:
        registry.register_birth(badinh, born)
    assert refused.value.field == "mother_personal_id"
    child = registry.register_birth(
        badinh, born.model_copy(update={"mother_full_name": c.wife.name})
    )
    person = registry.get_person(badinh, child)
    assert person.mother and person.mother.personal_id == c.wife.number
    assert person.residences[0].current_unit.code == "00004"
    # Neither parent here: refused as if the numbers were unknown.
    alone = born.model_copy(update={"father_personal_id": None, "mother_full_name": c.wife.name})
    with pytest.raises(NotFound):
        registry.register_birth(badinh, alone)


def test_a_move_needs_the_request_and_the_household_heads_consent(
    registry: RegistryService, world: dict[str, Place]
) -> None:
    """The reported defect: a commune officer moved a woman of province 79 into Ba Đình with
    her number alone, and a child with one click. Now the person's papers, the applicant
    (a parent for a minor) and the household head's consent are required and recorded."""
    a, c = world["A"], world["C"]
    badinh = OFFICERS["commune A"]
    move = s.ResidenceChange(
        personal_id=c.single_woman.number,
        moved_on=ON,
        commune_code="00004",
        household_number=a.household,
        relationship="other",
    )
    with pytest.raises(NotFound):
        registry.change_residence(badinh, move)  # her number alone reaches nobody elsewhere
    papers = move.model_copy(
        update={"full_name": c.single_woman.name, "birth_date": c.single_woman.born}
    )
    with pytest.raises(DancuError) as no_consent:
        registry.change_residence(badinh, papers)
    assert no_consent.value.field == "household_head_consent"
    agreed = papers.model_copy(
        update={"household_head_consent": True, "consent_reference": "CT01 ngày 01/03/2026"}
    )
    assert registry.change_residence(badinh, agreed) == a.household
    # A child cannot be moved on nobody's request.
    kid = registry.register_birth(
        badinh,
        birth("Nguyễn Gia Bảo", date(2020, 5, 5), a.wife.number),
    )
    ngocha = OFFICERS["commune B"]
    kid_move = s.ResidenceChange(
        personal_id=kid,
        moved_on=ON,
        commune_code="00008",
        full_name="Nguyễn Gia Bảo",
        birth_date=date(2020, 5, 5),
    )
    with pytest.raises(DancuError) as no_applicant:
        registry.change_residence(ngocha, kid_move)
    assert no_applicant.value.field == "applicant_personal_id"
    stranger = kid_move.model_copy(update={"applicant_personal_id": c.husband.number})
    with pytest.raises(DancuError) as not_parent:
        registry.change_residence(ngocha, stranger)
    assert not_parent.value.field == "applicant_personal_id"
    by_mother = kid_move.model_copy(update={"applicant_personal_id": a.wife.number})
    assert registry.change_residence(ngocha, by_mother) is not None
    assert registry.get_person(ngocha, kid).residences[0].current_unit.code == "00008"
