"""Who may see and change what. Every officer is scoped to one administrative unit of the
current (2025) scheme; the service layer checks the scope on every read and write (DESIGN
"Access is scoped by unit and purpose")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dancu.core.audit import Actor


class Role(StrEnum):
    COMMUNE = "commune_officer"
    PROVINCE = "province_officer"
    MINISTRY = "ministry_admin"
    # An officer of a sector agency (social insurance, tax, a bank...) who sends the agency's
    # extracts for reconciliation and reads their results: no access to the register itself.
    AGENCY = "agency_officer"


# Roles that work on the register (its pages and API): everyone but an agency's officers.
REGISTER_ROLES = frozenset({Role.COMMUNE, Role.PROVINCE, Role.MINISTRY})


# Roles that may record civil events (births, deaths, residence changes). Province officers
# supervise and read; registration is the commune's job (Law on Residence 68/2020 Art. 22).
WRITERS = frozenset({Role.COMMUNE, Role.MINISTRY})


@dataclass(frozen=True, slots=True)
class OfficerContext:
    """The acting officer: identity, role and unit scope (2025-scheme codes)."""

    username: str
    role: Role
    province_code: str = ""
    commune_code: str = ""
    purpose: str = "registry-administration"
    agency: str = ""  # the agency an agency officer works for (its code: bhxh, gdt...)

    def covers(self, province_code: str, commune_code: str) -> bool:
        if self.role is Role.MINISTRY:
            return True
        if self.role is Role.AGENCY:
            return False
        if self.role is Role.PROVINCE:
            return province_code == self.province_code
        return province_code == self.province_code and commune_code == self.commune_code

    @property
    def can_write(self) -> bool:
        return self.role in WRITERS

    @property
    def unit_label(self) -> str:
        if self.role is Role.AGENCY:
            return f"agency:{self.agency}"
        return self.commune_code or self.province_code or "VN"

    def actor(self, purpose: str | None = None) -> Actor:
        return Actor(self.username, self.role.value, self.unit_label, purpose or self.purpose)


SYSTEM_CONTEXT = OfficerContext("system", Role.MINISTRY, purpose="system")
