"""A small world for the registry's write tests: in each of three communes (A and B in Hà Nội,
C in Hồ Chí Minh City) a married couple in one household and two single adults, and one
request per event type about the people of a place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from dancu.core.access import OfficerContext, Role
from dancu.registry import schemas as s
from dancu.registry.service import RegistryService
from tests.helpers import resident

# Communes of the 2025 scheme: A and B in Hà Nội, C in Hồ Chí Minh City.
COMMUNES = {"A": ("01", "00004"), "B": ("01", "00008"), "C": ("79", "25747")}
OFFICERS = {
    "commune A": OfficerContext("badinh", Role.COMMUNE, "01", "00004"),
    "commune B": OfficerContext("ngocha", Role.COMMUNE, "01", "00008"),
    "commune C": OfficerContext("thudaumot", Role.COMMUNE, "79", "25747"),
    "province of A": OfficerContext("hanoi", Role.PROVINCE, "01"),
    "ministry": OfficerContext("admin", Role.MINISTRY),
    "agency": OfficerContext("bhxh", Role.AGENCY, agency="bhxh"),
}
MINISTRY = OFFICERS["ministry"]
UNKNOWN = "001090000001"  # a well-formed number nobody holds
ON = date(2026, 3, 2)


@dataclass
class Person:
    number: str
    name: str
    born: date


@dataclass
class Place:
    key: str
    husband: Person
    wife: Person
    single_man: Person
    single_woman: Person
    household: str


def _register(
    registry: RegistryService, commune: str, name: str, born: date, sex: str, **kw: Any
) -> Person:
    number = registry.register_person(
        MINISTRY,
        s.PersonRegistration(
            full_name=name,
            birth_date=born,
            sex=sex,  # type: ignore[arg-type]
            birth_commune_code="00001",
            residence_commune_code=commune,
            residence_since=date(2025, 9, 1),
            address_line="Số 1",
            **kw,
        ),
    )
    return Person(number, name, born)


def _place(registry: RegistryService, key: str) -> Place:
    commune = COMMUNES[key][1]
    husband = _register(registry, commune, f"Nguyễn Văn {key}an", date(1990, 3, 14), "M")
    household = registry.get_person(MINISTRY, husband.number).household_number
    assert household is not None
    wife = _register(
        registry,
        commune,
        f"Trần Thị {key}oa",
        date(1992, 8, 1),
        "F",
        household_number=household,
        relationship="spouse",
    )
    registry.register_marriage(
        MINISTRY,
        s.MarriageRegistration(
            personal_id=husband.number, spouse_personal_id=wife.number, married_on=date(2025, 10, 1)
        ),
    )
    man = _register(registry, commune, f"Lê Văn {key}inh", date(1985, 1, 2), "M")
    woman = _register(registry, commune, f"Phạm Thị {key}ai", date(1988, 5, 6), "F")
    return Place(key, husband, wife, man, woman, household)


def build_world(registry: RegistryService) -> dict[str, Place]:
    return {key: _place(registry, key) for key in COMMUNES}


# -- one request per event type: about a person living in ``where`` ------------------------------

Event = Callable[[RegistryService, OfficerContext], object]


def _officer_commune(ctx: OfficerContext) -> str:
    """The destination or registration commune an officer would write (their own)."""
    return ctx.commune_code or "00004"


def request(kind: str, p: Place, number: str | None = None) -> Event:
    """The event ``kind`` about ``p``'s people; ``number`` replaces the person's number (an
    unknown one, to compare the answers)."""
    h, w = p.husband, p.wife

    def pid(person: Person) -> str:
        return number or person.number

    events: dict[str, Event] = {
        "death": lambda r, c: r.register_death(
            c, s.DeathRegistration(personal_id=pid(h), death_date=ON)
        ),
        "name change": lambda r, c: r.change_name(
            c, s.NameChange(personal_id=pid(h), new_name="Nguyễn Văn Mới", changed_on=ON)
        ),
        "id re-establishment": lambda r, c: r.reestablish_id(
            c, s.IDReestablishment(personal_id=pid(h), on=ON, reason="lộ số")
        ),
        "missing": lambda r, c: r.declare_missing(
            c, s.MissingDeclaration(personal_id=pid(h), on=ON, court_decision="QĐ 1/2026")
        ),
        "correction": lambda r, c: r.correct_record(
            c, s.Correction(personal_id=pid(h), field="ethnicity", value="Tày", reason="sai")
        ),
        "divorce": lambda r, c: r.register_divorce(
            c,
            s.DivorceRegistration(personal_id=pid(h), spouse_personal_id=w.number, divorced_on=ON),
        ),
        "marriage": lambda r, c: r.register_marriage(
            c,
            s.MarriageRegistration(
                personal_id=pid(p.single_man),
                spouse_personal_id=p.single_woman.number,
                married_on=ON,
            ),
        ),
        "birth": lambda r, c: r.register_birth(
            c,
            s.BirthRegistration(
                full_name="Nguyễn Minh Khôi",
                birth_date=ON,
                sex="M",
                birth_commune_code=_officer_commune(c),
                mother_personal_id=pid(w),
            ),
        ),
        "household head": lambda r, c: r.change_household_head(
            c,
            s.HeadChange(
                household_number=p.household if number is None else "99999000000001",
                new_head_personal_id=w.number,
                changed_on=ON,
            ),
        ),
        # Moving into the officer's own commune, from the papers' name and date of birth.
        "residence": lambda r, c: r.change_residence(
            c,
            s.ResidenceChange(
                personal_id=pid(p.single_man),
                moved_on=ON,
                commune_code=_officer_commune(c),
                full_name=p.single_man.name,
                birth_date=p.single_man.born,
            ),
        ),
        # The same move with only the number typed.
        "residence, number only": lambda r, c: r.change_residence(
            c,
            s.ResidenceChange(
                personal_id=pid(p.single_man), moved_on=ON, commune_code=_officer_commune(c)
            ),
        ),
        "registration": lambda r, c: r.register_person(
            c,
            resident(
                "Đỗ Văn Mới",
                date(1970, 1, 1),
                "M",
                ON,
                COMMUNES[p.key][1],
                birth_commune_code="00001",
            ),
        ),
    }
    return events[kind]


EVENTS = (
    "death",
    "name change",
    "id re-establishment",
    "missing",
    "correction",
    "divorce",
    "marriage",
    "birth",
    "household head",
    "residence",
    "residence, number only",
    "registration",
)
