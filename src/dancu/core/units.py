"""Administrative units before and after the 1 July 2025 reform (Resolution 202/2025/QH15:
63 provinces -> 34, district level abolished, 10,040 communes -> 3,321).

Reference data ships in ``core/data`` (extracted from the MIT-licensed ``vietnamadminunits``
package by ``tools/extract_admin_units.py``) and is loaded by ``dancu db upgrade``.
An address stores the commune valid on its date; ``roll_forward`` maps a legacy commune to
today's unit, ``predecessors`` maps a new unit back to the old ones.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from importlib.resources import files

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from dancu.core.models import AdminUnit, AdminUnitSuccession

REFORM_DATE = date(2025, 7, 1)
LEGACY, NEW = "legacy", "2025"


def scheme_at(on: date) -> str:
    return LEGACY if on < REFORM_DATE else NEW


def reference_rows(name: str) -> list[dict[str, str]]:
    with (files("dancu.core") / "data" / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_reference_units(session: Session) -> int:
    """Load the shipped unit lists and succession table once; returns the rows inserted."""
    if session.scalar(select(func.count()).select_from(AdminUnit)):
        return 0
    units: list[dict[str, object]] = []
    ids: dict[tuple[str, str, str], int] = {}

    def add(scheme: str, level: str, r: dict[str, str], parent: int | None) -> int:
        """The unit of ``level`` that reference row ``r`` names (its ``<level>_code``,
        ``_name`` and ``_type`` columns; a province's kind is the first word of its name)."""
        code, name = r[f"{level}_code"], r[f"{level}_name"]
        kind = name.split(" ")[0] if level == "province" else r[f"{level}_type"]
        key = (scheme, level, code)
        if key not in ids:
            ids[key] = len(units) + 1
            valid_from, valid_to = (None, REFORM_DATE) if scheme == LEGACY else (REFORM_DATE, None)
            units.append(
                {
                    "id": ids[key],
                    "scheme": scheme,
                    "level": level,
                    "code": code,
                    "name": name,
                    "kind": kind,
                    "parent_id": parent,
                    "province_code": r["province_code"],
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                }
            )
        return ids[key]

    for r in reference_rows("units_legacy.csv"):
        district = add(LEGACY, "district", r, add(LEGACY, "province", r, None))
        if r["commune_code"]:  # island districts (Côn Đảo, Lý Sơn…) had no communes
            add(LEGACY, "commune", r, district)
    for r in reference_rows("units_2025.csv"):
        add(NEW, "commune", r, add(NEW, "province", r, None))
    for u in units:  # "Thành phố Hà Nội" -> kind "Thành phố", not "Thành"
        if u["level"] == "province" and str(u["name"]).startswith("Thành phố"):
            u["kind"] = "Thành phố"
    succession = [
        {
            "old_unit_id": ids[(LEGACY, "commune", r["old_commune_code"])],
            "new_unit_id": ids[(NEW, "commune", r["new_commune_code"])],
            "kind": r["kind"],
            "is_default": r["is_default"] == "1",
            "effective_on": REFORM_DATE,
        }
        for r in reference_rows("succession_2025.csv")
    ]
    session.execute(insert(AdminUnit), units)
    session.execute(insert(AdminUnitSuccession), succession)
    return len(units) + len(succession)


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    scheme: str
    level: str
    code: str
    name: str
    kind: str
    parent_id: int | None
    province_code: str


class UnitDirectory:
    """An in-memory copy of the (small, static) unit tables for hot paths: imports,
    synthetic data, scope checks, page rendering. Build once per process."""

    def __init__(self, session: Session) -> None:
        self.by_id: dict[int, Unit] = {
            u.id: Unit(
                u.id, u.scheme, u.level, u.code, u.name, u.kind, u.parent_id, u.province_code
            )
            for u in session.scalars(select(AdminUnit))
        }
        self._by_key = {(u.scheme, u.level, u.code): u for u in self.by_id.values()}
        self._forward: dict[int, list[tuple[int, bool]]] = {}
        self._back: dict[int, list[int]] = {}
        for s in session.scalars(select(AdminUnitSuccession)):
            self._forward.setdefault(s.old_unit_id, []).append((s.new_unit_id, s.is_default))
            self._back.setdefault(s.new_unit_id, []).append(s.old_unit_id)

    def get(self, scheme: str, level: str, code: str) -> Unit | None:
        return self._by_key.get((scheme, level, code))

    def commune_at(self, code: str, on: date) -> Unit | None:
        """The commune with this code in the scheme in force on ``on``."""
        return self.get(scheme_at(on), "commune", code)

    def province(self, unit: Unit) -> Unit:
        u = unit
        while u.parent_id is not None:
            u = self.by_id[u.parent_id]
        return u

    def district(self, unit: Unit) -> Unit | None:
        if unit.level == "district":
            return unit
        parent = self.by_id.get(unit.parent_id) if unit.parent_id else None
        return parent if parent is not None and parent.level == "district" else None

    def roll_forward(self, unit: Unit) -> Unit:
        """Today's commune for a commune of any scheme (the default successor of a split)."""
        if unit.scheme == NEW:
            return unit
        targets = self._forward.get(unit.id, [])
        chosen = next((t for t, default in targets if default), None)
        return self.by_id[chosen] if chosen is not None else unit

    def successors(self, unit: Unit) -> list[Unit]:
        return [self.by_id[t] for t, _ in self._forward.get(unit.id, [])]

    def predecessors(self, unit: Unit) -> list[Unit]:
        return [self.by_id[o] for o in self._back.get(unit.id, [])]

    def label(self, unit: Unit | None) -> str:
        """ "Phường Ba Đình, Thành phố Hà Nội" (with the district for legacy units)."""
        if unit is None:
            return ""
        parts, u = [unit.name], unit
        while u.parent_id is not None:
            u = self.by_id[u.parent_id]
            parts.append(u.name)
        return ", ".join(parts)

    @cached_property
    def provinces(self) -> list[Unit]:
        return sorted(
            (u for u in self.by_id.values() if u.level == "province" and u.scheme == NEW),
            key=lambda u: u.code,
        )

    @cached_property
    def communes_by_province(self) -> dict[str, list[Unit]]:
        out: dict[str, list[Unit]] = {}
        for u in self.by_id.values():
            if u.level == "commune" and u.scheme == NEW:
                out.setdefault(u.province_code, []).append(u)
        for lst in out.values():
            lst.sort(key=lambda u: u.name)
        return out
