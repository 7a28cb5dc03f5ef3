"""Registry use cases end to end on both backends: civil events, history "as of", identifier
history, scope, and nothing half-written on error."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import audit
from dancu.core.access import OfficerContext, Role
from dancu.core.errors import Conflict, Forbidden, Invalid, NotFound
from dancu.core.models import AuditEntry, OutboxEvent
from dancu.core.timeutil import utcnow
from dancu.registry import schemas as s
from dancu.registry.models import Person, PersonVersion
from dancu.registry.service import RegistryService
from tests.helpers import birth, member, resident

# Phường Ba Đình (00004) and Phường Ngọc Hà (00008), Hà Nội, 2025 scheme; 00001 is the legacy
# Phường Phúc Xá, whose successor is Phường Hồng Hà (00097).
BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
HANOI = OfficerContext("hanoi", Role.PROVINCE, "01")
HCM = OfficerContext("hcm", Role.PROVINCE, "79")
MINISTRY = OfficerContext("admin", Role.MINISTRY)


def couple(registry: RegistryService) -> tuple[str, str, str]:
    """A married couple in a new household in Ba Đình; returns (husband, wife, household)."""
    husband = registry.register_person(
        BA_DINH,
        resident(
            "Nguyễn Văn An",
            date(1990, 3, 14),
            "M",
            date(2015, 1, 10),
            address_line="Số 5, phố Đội Cấn",
        ),
    )
    household = registry.get_person(BA_DINH, husband).household_number
    assert household is not None
    wife = registry.register_person(
        BA_DINH,
        member(
            household,
            "spouse",
            "Trần Thị Hòa",
            date(1992, 8, 1),
            "F",
            date(2018, 5, 20),
            birth_commune_code="00001",
            old_id_number="012345678",
            old_id_issuer="01",
        ),
    )
    registry.register_marriage(
        BA_DINH,
        s.MarriageRegistration(
            personal_id=husband, spouse_personal_id=wife, married_on=date(2018, 5, 1)
        ),
    )
    return husband, wife, household


def husband_to_ngoc_ha(husband: str, moved_on: date) -> s.ResidenceChange:
    """The couple's husband moving to Phường Ngọc Hà (00008), with the name and date of birth
    on his card (the officer there does not see his record)."""
    return s.ResidenceChange(
        personal_id=husband,
        moved_on=moved_on,
        commune_code="00008",
        full_name="Nguyễn Văn An",
        birth_date=date(1990, 3, 14),
    )


def test_birth_allocates_an_id_and_joins_the_mothers_household(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    husband, wife, household = couple(registry)
    born = date.today() - timedelta(days=3)
    child = registry.register_birth(
        BA_DINH,
        birth("Nguyễn Minh Khôi", born, wife, father_personal_id=husband),
    )
    assert child.startswith("001") and child[3] == "2" and child[4:6] == f"{born.year % 100:02d}"
    person = registry.get_person(BA_DINH, child)
    assert person.mother and person.mother.personal_id == wife
    assert person.household_number == household and person.relationship == "child"
    members = {
        m.personal_id: m.relationship for m in registry.household(BA_DINH, household).members
    }
    assert members == {husband: "head", wife: "spouse", child: "child"}
    with session_factory() as session:
        topics = list(session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id)))
        assert topics[-1] == "registry.person.born"
        assert audit.verify(session).ok


def test_death_is_versioned_and_spouse_becomes_widowed(registry: RegistryService) -> None:
    husband, wife, _ = couple(registry)
    registry.register_death(
        BA_DINH,
        s.DeathRegistration(personal_id=husband, death_date=date(2024, 2, 10), cause="bệnh"),
    )
    assert registry.get_person(BA_DINH, husband).status == "deceased"
    assert registry.get_person(BA_DINH, wife).marital_status == "widowed"
    before = registry.get_person(BA_DINH, husband, valid_on=date(2024, 2, 9))
    assert before.status == "alive" and before.marital_status == "married"
    with pytest.raises(Conflict, match="already recorded as deceased"):
        registry.register_death(
            BA_DINH, s.DeathRegistration(personal_id=husband, death_date=date(2024, 2, 11))
        )


def test_death_before_birth_writes_nothing(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    husband, _, _ = couple(registry)
    with session_factory() as session:
        before = session.scalar(select(func.count()).select_from(PersonVersion))
    with pytest.raises(Invalid) as err:
        registry.register_death(
            BA_DINH, s.DeathRegistration(personal_id=husband, death_date=date(1980, 1, 1))
        )
    assert err.value.field == "death_date"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PersonVersion)) == before


def test_as_of_both_clocks_after_a_name_change(registry: RegistryService) -> None:
    _, wife, _ = couple(registry)
    known_before = utcnow()
    registry.change_name(
        BA_DINH,
        s.NameChange(personal_id=wife, new_name="Trần Thị Hoà An", changed_on=date(2023, 6, 1)),
    )
    assert registry.get_person(BA_DINH, wife).full_name == "Trần Thị Hoà An"
    assert registry.get_person(BA_DINH, wife, valid_on=date(2022, 1, 1)).full_name == "Trần Thị Hòa"
    # What the register said before the change was recorded, about today:
    assert (
        registry.get_person(BA_DINH, wife, valid_on=date.today(), known_at=known_before).full_name
        == "Trần Thị Hòa"
    )
    history = registry.history(BA_DINH, wife)
    assert any("full_name" in v.changes for v in history.versions)
    assert any(v.superseded_at is not None for v in history.versions)
    with pytest.raises(NotFound):
        registry.get_person(BA_DINH, wife, valid_on=date(1991, 1, 1))  # before birth


def test_reestablished_number_keeps_the_old_one_resolvable(registry: RegistryService) -> None:
    husband, _, _ = couple(registry)
    new = registry.reestablish_id(
        BA_DINH,
        s.IDReestablishment(
            personal_id=husband, on=date(2024, 9, 1), reason="sai năm sinh khi cấp"
        ),
    )
    assert new != husband and new[:6] == husband[:6]
    assert registry.get_person(BA_DINH, husband).personal_id == new
    kinds = [(i.kind, i.valid_to) for i in registry.get_person(BA_DINH, new).identifiers]
    assert ("personal_id", date(2024, 9, 1)) in kinds and ("personal_id", None) in kinds


def test_search_folds_names_and_finds_old_cmnd(registry: RegistryService) -> None:
    _, wife, _ = couple(registry)
    for query in ("tran thi hoa", "TRẦN THỊ HOÀ", "hoa tran", "012345678", wife):
        page = registry.search(BA_DINH, query)
        assert [p.personal_id for p in page.items] == [wife], query
    assert registry.search(BA_DINH, "", birth_year=1990).items[0].full_name == "Nguyễn Văn An"
    with pytest.raises(Invalid):
        registry.search(BA_DINH, "   ")


def test_residence_move_rolls_legacy_units_forward(registry: RegistryService) -> None:
    husband, wife, household = couple(registry)
    child = registry.register_person(
        BA_DINH,
        member(household, "child", "Nguyễn Thu Hà", date(2005, 1, 1), "F", date(2005, 1, 1)),
    )
    # Moving before the reform to the legacy Phường Phúc Xá (00001) founds a household there,
    # which today belongs to Phường Hồng Hà (00097).
    hong_ha = OfficerContext("hongha", Role.COMMUNE, "01", "00097")
    number = registry.change_residence(
        hong_ha,
        s.ResidenceChange(
            personal_id=child,
            moved_on=date(2024, 3, 1),
            commune_code="00001",
            address_line="Số 1 Phúc Xá",
            # She lives outside Hồng Hà: her card's name and date of birth reach her.
            full_name="Nguyễn Thu Hà",
            birth_date=date(2005, 1, 1),
        ),
    )
    assert number is not None
    person = registry.get_person(hong_ha, child)
    assert person.relationship == "head"
    assert person.residences[0].unit.scheme == "legacy"
    assert person.residences[0].current_unit.code == "00097"
    with pytest.raises(NotFound):  # Ba Đình no longer sees her
        registry.get_person(BA_DINH, child)
    assert registry.get_person(HANOI, child).personal_id == child
    with pytest.raises(Invalid, match="household head cannot move"):
        registry.change_residence(NGOC_HA, husband_to_ngoc_ha(husband, date(2025, 8, 1)))
    assert wife


@pytest.mark.parametrize(
    ("ctx", "sees"),
    [(BA_DINH, True), (NGOC_HA, False), (HANOI, True), (HCM, False), (MINISTRY, True)],
)
def test_read_scope_matrix(registry: RegistryService, ctx: OfficerContext, sees: bool) -> None:
    husband, _, household = couple(registry)
    if sees:
        assert registry.get_person(ctx, husband).personal_id == husband
        assert registry.household(ctx, household).number == household
        assert registry.search(ctx, "nguyen van an").items
    else:
        with pytest.raises(NotFound):
            registry.get_person(ctx, husband)
        with pytest.raises(NotFound):
            registry.household(ctx, household)
        assert registry.search(ctx, "nguyen van an").items == []


@pytest.mark.parametrize(
    ("ctx", "error"), [(NGOC_HA, NotFound), (HANOI, Forbidden), (HCM, Forbidden)]
)
def test_write_scope_matrix(
    registry: RegistryService, ctx: OfficerContext, error: type[Exception]
) -> None:
    husband, _, _ = couple(registry)
    with pytest.raises(error):
        registry.register_death(
            ctx, s.DeathRegistration(personal_id=husband, death_date=date(2024, 1, 1))
        )
    with pytest.raises(Forbidden):
        registry.register_person(
            ctx,
            resident("Lê Văn Bình", date(1980, 1, 1), "M", date(2000, 1, 1)),
        )


def test_every_read_is_audited(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    husband, _, _ = couple(registry)
    registry.get_person(HANOI, husband, purpose="verify-identity")
    with session_factory() as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "person.read")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert entry is not None
        assert (entry.actor, entry.role, entry.unit, entry.purpose) == (
            "hanoi",
            "province_officer",
            "01",
            "verify-identity",
        )
        person_id = session.scalar(select(func.max(Person.id)))
        assert entry.subject.startswith("person:") and person_id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("birth_date", "2024-02-31", "valid date"),
        ("birth_date", (date.today() + timedelta(days=2)).isoformat(), "in the future"),
        ("mother_personal_id", "12345", "12 digits"),
        ("full_name", "Nguyễn Văn 3", "letters"),
        ("birth_commune_code", "12", "5 digits"),
    ],
)
def test_birth_form_errors_name_the_field(field: str, value: str, message: str) -> None:
    data = {
        "full_name": "Nguyễn Văn Bé",
        "birth_date": "2024-01-01",
        "sex": "M",
        "birth_commune_code": "00004",
        "mother_personal_id": "001192012345",
        field: value,
    }
    with pytest.raises(ValidationError) as err:
        s.BirthRegistration.model_validate(data)
    located = {e["loc"][0]: e["msg"] for e in err.value.errors()}
    assert field in located and message in located[field]


def test_unknown_commune_in_the_scheme_of_the_date(registry: RegistryService) -> None:
    # 00001 (Phúc Xá) exists only in the legacy list; a 2025 birth cannot be registered there.
    with pytest.raises(Invalid) as err:
        registry.register_person(
            MINISTRY,
            resident(
                "Lê Văn Bình", date(2025, 8, 1), "M", date(2025, 8, 1), birth_commune_code="00001"
            ),
        )
    assert err.value.field == "birth_commune_code" and "34-province" in err.value.message


def test_head_change_lets_the_former_head_move_out(registry: RegistryService) -> None:
    husband, wife, household = couple(registry)

    def new_head(head: str, on: date, **more: Any) -> s.HeadChange:
        return s.HeadChange(
            household_number=household, new_head_personal_id=head, changed_on=on, **more
        )

    registry.change_household_head(
        BA_DINH, new_head(wife, date(2025, 9, 1), relationships={husband: "spouse"})
    )
    members = {
        m.personal_id: m.relationship for m in registry.household(BA_DINH, household).members
    }
    assert members == {wife: "head", husband: "spouse"}
    registry.change_residence(NGOC_HA, husband_to_ngoc_ha(husband, date(2025, 10, 1)))
    assert [m.personal_id for m in registry.household(BA_DINH, household).members] == [wife]
    before = registry.get_person(BA_DINH, wife, valid_on=date(2025, 8, 31))
    assert before.relationship == "spouse"
    with pytest.raises(Invalid, match="living member"):
        registry.change_household_head(BA_DINH, new_head(husband, date(2025, 11, 1)))


def test_search_matches_whole_words_and_filters_by_locality(registry: RegistryService) -> None:
    husband, wife, _ = couple(registry)
    assert registry.search(MINISTRY, "an").items[0].personal_id == husband
    assert registry.search(MINISTRY, "a").items == []  # no substring matches
    assert registry.search(MINISTRY, "100%").items == []  # wildcards are literal
    assert len(registry.search(MINISTRY, "", birth_year=1992, province_code="01").items) == 1
    assert registry.search(MINISTRY, "", birth_year=1992, province_code="79").items == []
    found = registry.search(MINISTRY, "hoa", commune_code="00004").items
    assert [p.personal_id for p in found] == [wife]


def test_missing_declaration_and_cancellation(registry: RegistryService) -> None:
    husband, _, _ = couple(registry)
    registry.declare_missing(
        BA_DINH,
        s.MissingDeclaration(
            personal_id=husband, on=date(2023, 1, 5), court_decision="QĐ 12/2023/QĐST-DS"
        ),
    )
    assert registry.get_person(BA_DINH, husband).status == "missing"
    assert registry.search(BA_DINH, "nguyen van an").items[0].status == "missing"
    with pytest.raises(Conflict, match="recorded as missing"):
        registry.declare_missing(
            BA_DINH,
            s.MissingDeclaration(
                personal_id=husband, on=date(2023, 2, 1), court_decision="QĐ 13/2023"
            ),
        )
    registry.declare_missing(
        BA_DINH,
        s.MissingDeclaration(
            personal_id=husband, on=date(2024, 3, 1), court_decision="QĐ 40/2024", cancel=True
        ),
    )
    assert registry.get_person(BA_DINH, husband).status == "alive"
    assert registry.get_person(BA_DINH, husband, valid_on=date(2023, 6, 1)).status == "missing"


def test_correction_supersedes_and_keeps_what_the_register_said(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    husband, wife, _ = couple(registry)
    before = utcnow()
    same = registry.correct_record(
        BA_DINH,
        s.Correction(personal_id=wife, field="ethnicity", value="Tày", reason="sai khi nhập liệu"),
    )
    assert same == wife
    assert registry.get_person(BA_DINH, wife).ethnicity == "Tày"
    # Valid time unchanged, record time moved: as known before, she was Kinh all along.
    assert registry.get_person(BA_DINH, wife, valid_on=date(2019, 1, 1)).ethnicity == "Tày"
    assert (
        registry.get_person(BA_DINH, wife, valid_on=date(2019, 1, 1), known_at=before).ethnicity
        == "Kinh"
    )
    # Married status survives the correction (the married version was corrected too).
    assert registry.get_person(BA_DINH, wife).marital_status == "married"
    # A birth-year correction changes the number's YY digits: a new number is issued.
    new = registry.correct_record(
        BA_DINH,
        s.Correction(
            personal_id=husband, field="birth_date", value="1991-03-14", reason="giấy khai sinh"
        ),
    )
    assert new != husband and new[4:6] == "91"
    with session_factory() as session:
        events = session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.topic == "registry.person.corrected")
            .order_by(OutboxEvent.id)
        ).all()
    # Subscribers learn which number the new one replaces (and that the first kept its own).
    assert [(e["personal_id"], e["previous_personal_id"]) for e in events] == [
        (wife, None),
        (new, husband),
    ]
    person = registry.get_person(BA_DINH, husband)  # the old number still resolves
    assert person.personal_id == new and person.birth_date == date(1991, 3, 14)
    with pytest.raises(Invalid) as err:
        registry.correct_record(
            BA_DINH,
            s.Correction(personal_id=new, field="birth_date", value="1991-02-30", reason="thử"),
        )
    assert err.value.field == "value"
    with pytest.raises(Conflict, match="already holds"):
        registry.correct_record(
            BA_DINH, s.Correction(personal_id=new, field="sex", value="M", reason="thử lại")
        )


def test_overview_counts_the_officers_area_only(registry: RegistryService) -> None:
    _husband, wife, _household = couple(registry)
    registry.register_death(
        BA_DINH, s.DeathRegistration(personal_id=wife, death_date=date(2024, 1, 1))
    )
    mine = registry.overview(BA_DINH, on=date(2026, 1, 1))
    assert (mine.alive, mine.deceased, mine.households) == (1, 1, 1)
    band = next(b for b in mine.pyramid if b.start == 35)  # born 1990: 36 in 2026
    assert (band.male, band.female) == (1, 0)
    assert mine.units == [] and mine.area.startswith("Phường Ba Đình")
    assert registry.overview(NGOC_HA).alive == 0
    hanoi = registry.overview(HANOI)
    assert [(u.code, u.people) for u in hanoi.units] == [("00004", 1)]
    nation = registry.overview(MINISTRY)
    assert [(u.code, u.people) for u in nation.units] == [("01", 1)]
