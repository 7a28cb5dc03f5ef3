"""Inputs and outputs of the registry's use cases. Input models validate what can be checked
without the database and name the field at fault; the service checks the rest."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dancu.core import ids
from dancu.core.names import clean_name
from dancu.core.timeutil import today

Sex = Literal["M", "F"]
Relationship = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "other"]
MaritalStatus = Literal["single", "married", "divorced", "widowed"]
ResidenceKind = Literal["permanent", "temporary"]
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")


def _personal_id(value: str) -> str:
    try:
        return ids.parse_issued(value).number
    except ids.InvalidPersonalID as exc:
        raise ValueError(exc.message) from None


def check_name(value: str) -> str:
    name = clean_name(value)
    if not 2 <= len(name) <= 120:
        raise ValueError("a name has 2 to 120 characters")
    if not _NAME_RE.fullmatch(name):
        raise ValueError("a name holds letters, spaces, apostrophes and hyphens only")
    return name


def _not_future(value: date) -> date:
    if value > today():
        raise ValueError("the date is in the future")
    if value.year < 1900:
        raise ValueError("the date is before 1900")
    return value


def _commune_code(value: str) -> str:
    if not re.fullmatch(r"\d{5}", value.strip()):
        raise ValueError("a commune code has 5 digits")
    return value.strip()


PersonalIDStr = Annotated[str, AfterValidator(_personal_id)]
NameStr = Annotated[str, AfterValidator(check_name)]
PastDate = Annotated[date, AfterValidator(_not_future)]
CommuneCode = Annotated[str, AfterValidator(_commune_code)]


class _Input(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold U+0000: refuse it here, naming the field, rather than
        # failing in the database.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("the text holds a NUL character")
        return value


class BirthRegistration(_Input):
    """Đăng ký khai sinh (Circular 04/2024/TT-BTP form fields that the register keeps)."""

    full_name: NameStr
    birth_date: PastDate
    sex: Sex
    ethnicity: str = Field(default="Kinh", max_length=40)
    nationality: str = Field(default="VN", pattern=r"^[A-Z]{2}$")
    religion: str = Field(default="", max_length=40)
    birth_commune_code: CommuneCode
    hometown_commune_code: CommuneCode | None = None
    mother_personal_id: PersonalIDStr | None = None
    father_personal_id: PersonalIDStr | None = None
    # A parent living outside the officer's area is linked only with the full name written
    # on the declaration (as on their card), so that a number alone reaches nobody elsewhere.
    mother_full_name: NameStr | None = None
    father_full_name: NameStr | None = None
    household_number: str | None = Field(default=None, max_length=20)
    relationship: Relationship = "child"
    reference: str = Field(default="", max_length=60)

    @model_validator(mode="after")
    def _a_parent(self) -> BirthRegistration:
        if not (self.mother_personal_id or self.father_personal_id or self.household_number):
            raise ValueError("give a parent's personal ID number or the household to join")
        return self


class DeathRegistration(_Input):
    """Đăng ký khai tử."""

    personal_id: PersonalIDStr
    death_date: PastDate
    place: str = Field(default="", max_length=200)
    cause: str = Field(default="", max_length=200)
    reference: str = Field(default="", max_length=60)


class ResidenceChange(_Input):
    """Đăng ký thường trú / tạm trú (form CT01, Circular 66/2023/TT-BCA), recorded by the
    destination commune on the request of the person, or of a parent or guardian for a minor
    or a ward (Law on Residence 68/2020 Art. 20–22, 27–28)."""

    personal_id: PersonalIDStr
    moved_on: PastDate
    kind: ResidenceKind = "permanent"
    commune_code: CommuneCode
    address_line: str = Field(default="", max_length=200)
    household_number: str | None = Field(default=None, max_length=20)
    relationship: Relationship = "other"
    # The person as on their card (CT01 "Họ, chữ đệm và tên", "Ngày sinh"): required when
    # they live outside the officer's area today, checked against the register when given.
    full_name: NameStr | None = None
    birth_date: date | None = None
    # Who asked (CT01 "Người đề nghị"): the person themself when empty; a parent of a minor
    # on the register, or a guardian with the guardianship's registration reference.
    applicant_personal_id: PersonalIDStr | None = None
    guardianship_reference: str = Field(default="", max_length=60)
    # Joining someone's household needs the household head's consent (CT01 "Ý kiến của chủ
    # hộ"; Law on Residence Art. 21(2)), recorded with the event.
    household_head_consent: bool = False
    consent_reference: str = Field(default="", max_length=60)
    reference: str = Field(default="", max_length=60)


class MarriageRegistration(_Input):
    """Đăng ký kết hôn, at the commune where either party resides (Law on Civil Status 2014
    Art. 17). The party living elsewhere is reached with their full name as declared."""

    personal_id: PersonalIDStr
    spouse_personal_id: PersonalIDStr
    married_on: PastDate
    full_name: NameStr | None = None
    spouse_full_name: NameStr | None = None
    reference: str = Field(default="", max_length=60)


class DivorceRegistration(_Input):
    personal_id: PersonalIDStr
    spouse_personal_id: PersonalIDStr
    divorced_on: PastDate
    reference: str = Field(default="", max_length=60)


class NameChange(_Input):
    personal_id: PersonalIDStr
    new_name: NameStr
    changed_on: PastDate
    reason: str = Field(default="", max_length=200)
    reference: str = Field(default="", max_length=60)


class IDReestablishment(_Input):
    """Xác lập lại số định danh cá nhân (Law on Identity 26/2023 Art. 24)."""

    personal_id: PersonalIDStr
    on: PastDate
    reason: str = Field(min_length=3, max_length=200)
    reference: str = Field(default="", max_length=60)


class UnitRef(BaseModel):
    code: str
    name: str
    label: str
    scheme: str


class PersonRef(BaseModel):
    personal_id: str
    full_name: str


class IdentifierOut(BaseModel):
    kind: str
    value: str
    issuer_code: str
    valid_from: date | None
    valid_to: date | None


class ResidenceOut(BaseModel):
    kind: str
    unit: UnitRef
    current_unit: UnitRef
    address_line: str
    valid_from: date
    valid_to: date | None
    household_number: str | None


class PersonPublic(BaseModel):
    """A person as the register holds them today (or as of a date)."""

    personal_id: str
    full_name: str
    birth_date: date
    sex: Sex
    nationality: str
    ethnicity: str
    religion: str
    marital_status: str
    status: str
    death_date: date | None
    birth_unit: UnitRef | None
    hometown_unit: UnitRef | None
    father: PersonRef | None
    mother: PersonRef | None
    spouse: PersonRef | None
    residences: list[ResidenceOut]
    household_number: str | None
    relationship: str | None
    identifiers: list[IdentifierOut]
    as_of: date | None = None


class PersonSummary(BaseModel):
    personal_id: str
    full_name: str
    birth_date: date
    sex: Sex
    status: str
    province_code: str
    commune_code: str
    commune_name: str


class SearchPage(BaseModel):
    items: list[PersonSummary]
    page: int
    page_size: int
    has_more: bool


class VersionOut(BaseModel):
    valid_from: date
    valid_to: date | None
    recorded_at: datetime
    superseded_at: datetime | None
    event_kind: str | None
    event_reference: str | None
    full_name: str
    marital_status: str
    status: str
    changes: list[str]


class EventOut(BaseModel):
    id: int
    kind: str
    occurred_on: date
    recorded_at: datetime
    actor: str
    reference: str


class MergedRecordOut(BaseModel):
    """The history of a record merged into this person (``merge.py``), kept as it was."""

    merge_id: int
    personal_id: str  # the merged record's number, now one of this person's identifiers
    merged_at: datetime
    reason: str
    versions: list[VersionOut]
    residences: list[ResidenceOut]
    events: list[EventOut]


class HistoryOut(BaseModel):
    personal_id: str
    versions: list[VersionOut]
    residences: list[ResidenceOut]
    events: list[EventOut]
    merged: list[MergedRecordOut] = Field(default_factory=list)


class HouseholdMemberOut(BaseModel):
    personal_id: str
    full_name: str
    birth_date: date
    sex: Sex
    relationship: str
    status: str
    since: date


class HouseholdOut(BaseModel):
    number: str
    unit: UnitRef
    current_unit: UnitRef
    address_line: str
    established_on: date
    head: PersonRef | None
    members: list[HouseholdMemberOut]


class PersonRegistration(_Input):
    """Initial collection of a person already living (thu thập, cập nhật dân cư): someone born
    before the register existed, with or without a personal ID number. The bulk importer does
    the same for a whole file."""

    full_name: NameStr
    birth_date: PastDate
    sex: Sex
    personal_id: PersonalIDStr | None = None
    ethnicity: str = Field(default="Kinh", max_length=40)
    nationality: str = Field(default="VN", pattern=r"^[A-Z]{2}$")
    religion: str = Field(default="", max_length=40)
    birth_commune_code: CommuneCode
    residence_commune_code: CommuneCode
    residence_since: PastDate
    address_line: str = Field(default="", max_length=200)
    household_number: str | None = Field(default=None, max_length=20)
    relationship: Relationship = "head"
    marital_status: MaritalStatus = "single"
    old_id_number: str | None = Field(default=None, pattern=r"^(\d{9}|\d{12})$")
    old_id_issuer: str = Field(default="", pattern=r"^(\d{2})?$")
    reference: str = Field(default="", max_length=60)

    @model_validator(mode="after")
    def _consistent(self) -> PersonRegistration:
        if self.residence_since < self.birth_date:
            raise ValueError("residence_since: the residence starts before the birth")
        if self.personal_id:
            decoded = ids.parse(self.personal_id)
            if decoded.sex != self.sex or decoded.birth_year != self.birth_date.year:
                raise ValueError("personal_id: the number does not match the sex and birth year")
        if self.household_number is None and self.relationship != "head":
            raise ValueError(
                "household_number: give the household to join, or register the "
                "person as head of a new household"
            )
        return self


class HeadChange(_Input):
    """Thay đổi chủ hộ (Law on Residence 68/2020 Art. 26): a member becomes head; the others'
    relationships to the new head are restated where given."""

    household_number: str = Field(min_length=1, max_length=20)
    new_head_personal_id: PersonalIDStr
    changed_on: PastDate
    relationships: dict[str, Relationship] = Field(
        default_factory=dict,
        description="personal ID -> relationship to the new head, for members whose "
        "relationship changes (the former head included)",
    )
    reference: str = Field(default="", max_length=60)


class MissingDeclaration(_Input):
    """A court's declaration that a person is missing (Civil Code 2015 Art. 68), or its
    cancellation when the person reappears (Art. 70)."""

    personal_id: PersonalIDStr
    on: PastDate
    court_decision: str = Field(min_length=3, max_length=120)
    cancel: bool = False


CorrectableField = Literal["full_name", "birth_date", "sex", "ethnicity", "nationality", "religion"]


class Correction(_Input):
    """Cải chính hộ tịch: a recorded fact was wrong from the start (Law on Civil Status 2014
    Art. 7). The old versions are superseded, not edited, so "what did the register say before
    the correction" stays answerable."""

    personal_id: PersonalIDStr
    field: CorrectableField
    value: str = Field(min_length=1, max_length=120)
    reason: str = Field(min_length=3, max_length=200)
    reference: str = Field(default="", max_length=60)


class MergeRequest(_Input):
    """Two records of one person (a duplicate found by review): the one named in the path
    survives, ``merged_personal_id`` answers as the survivor from now on. Undone with
    ``POST /api/v1/merges/{id}/undo``."""

    merged_personal_id: PersonalIDStr
    reason: str = Field(min_length=3, max_length=300)


class UnmergeRequest(_Input):
    reason: str = Field(min_length=3, max_length=300)


class MergeOut(BaseModel):
    """A merge of two records of one person, and its undoing."""

    id: int
    survivor_personal_id: str
    merged_personal_id: str
    status: Literal["merged", "undone"]
    reason: str
    merged_by: str
    merged_at: datetime
    undone_by: str = ""
    undone_at: datetime | None = None
    undo_reason: str = ""


class AgeBand(BaseModel):
    start: int
    end: int | None  # None: and older
    male: int
    female: int


class UnitCount(BaseModel):
    code: str
    name: str
    people: int


class Overview(BaseModel):
    """Aggregates of an officer's area (no personal data)."""

    area: str
    alive: int
    deceased: int
    missing: int
    households: int
    pyramid: list[AgeBand]
    units: list[UnitCount]
    unit_level: str
    on: date
