"""The population of an officer's area at a glance: counts by status, the age pyramid and the
distribution over the units below (provinces for the ministry, communes for a province).

Aggregates only, from the ``person_current`` projection: no person's record is read, so the
read audit (which is about personal data) is not involved.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, func, select

from dancu.core.access import OfficerContext, Role
from dancu.registry import schemas as s
from dancu.registry.models import PersonCurrent
from dancu.registry.reads import RegistryReads

AGE_BAND = 5
OLDEST_BAND = 85  # the last band is 85+
TOP_UNITS = 15


class OverviewReads(RegistryReads):
    def overview(self, ctx: OfficerContext, on: date | None = None) -> s.Overview:
        on = on or date.today()
        scope = self._area(ctx)
        pc = PersonCurrent
        with self.factory() as session:
            by_status = dict(
                session.execute(
                    select(pc.status, func.count()).where(*scope).group_by(pc.status)
                ).all()
            )
            year = func.extract("year", pc.birth_date)
            by_year_sex = session.execute(
                select(year, pc.sex, func.count())
                .where(*scope, pc.status == "alive")
                .group_by(year, pc.sex)
            ).all()
            households = session.scalar(
                select(func.count(func.distinct(pc.household_id))).where(
                    *scope, pc.status == "alive", pc.household_id.is_not(None)
                )
            )
            level = pc.commune_code if ctx.role is Role.PROVINCE else pc.province_code
            by_unit = session.execute(
                select(level, func.count())
                .where(*scope, pc.status == "alive")
                .group_by(level)
                .order_by(func.count().desc(), level)
                .limit(TOP_UNITS)
            ).all()
        bands: dict[int, dict[str, int]] = {}
        for birth_year, sex, n in by_year_sex:
            age = max(on.year - int(birth_year), 0)
            band = min(age // AGE_BAND * AGE_BAND, OLDEST_BAND)
            bands.setdefault(band, {"M": 0, "F": 0})[sex] += int(n)
        pyramid = [
            s.AgeBand(
                start=b,
                end=None if b == OLDEST_BAND else b + AGE_BAND - 1,
                male=bands.get(b, {}).get("M", 0),
                female=bands.get(b, {}).get("F", 0),
            )
            for b in range(0, OLDEST_BAND + 1, AGE_BAND)
        ]
        units = [
            s.UnitCount(code=str(code), name=self._unit_name(ctx, str(code)), people=int(n))
            for code, n in by_unit
        ]
        return s.Overview(
            area=self._area_name(ctx),
            alive=int(by_status.get("alive", 0)),
            deceased=int(by_status.get("deceased", 0)),
            missing=int(by_status.get("missing", 0)),
            households=int(households or 0),
            pyramid=pyramid,
            units=units if ctx.role is not Role.COMMUNE else [],
            unit_level="commune" if ctx.role is Role.PROVINCE else "province",
            on=on,
        )

    @staticmethod
    def _area(ctx: OfficerContext) -> list[ColumnElement[bool]]:
        pc = PersonCurrent
        if ctx.role is Role.MINISTRY:
            return []
        if ctx.role is Role.PROVINCE:
            return [pc.province_code == ctx.province_code]
        return [pc.province_code == ctx.province_code, pc.commune_code == ctx.commune_code]

    def _unit_name(self, ctx: OfficerContext, code: str) -> str:
        level = "commune" if ctx.role is Role.PROVINCE else "province"
        unit = self.units.get("2025", level, code)
        return unit.name if unit else code

    def _area_name(self, ctx: OfficerContext) -> str:
        if ctx.role is Role.MINISTRY:
            return ""
        code = ctx.commune_code if ctx.role is Role.COMMUNE else ctx.province_code
        level = "commune" if ctx.role is Role.COMMUNE else "province"
        return self.units.label(self.units.get("2025", level, code))


__all__ = ["OverviewReads"]
