"""Administrative units: both schemes loaded, succession queryable both ways."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.models import AdminUnit
from dancu.core.units import LEGACY, NEW, UnitDirectory


def test_counts_match_resolution_202(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:

        def count(scheme: str, level: str) -> int:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(AdminUnit)
                    .where(AdminUnit.scheme == scheme, AdminUnit.level == level)
                )
                or 0
            )

        assert count(LEGACY, "province") == 63
        assert count(NEW, "province") == 34
        assert count(NEW, "commune") == 3321
        assert count(LEGACY, "commune") > 10_000
        assert count(NEW, "district") == 0  # the district tier is abolished


def test_old_to_new_and_back(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        units = UnitDirectory(session)
    phuc_xa = units.get(LEGACY, "commune", "00001")  # Phường Phúc Xá, Ba Đình, Hà Nội
    assert phuc_xa is not None and units.district(phuc_xa) is not None
    new = units.roll_forward(phuc_xa)
    assert new.scheme == NEW and new.name == "Phường Hồng Hà"
    assert phuc_xa in units.predecessors(new)
    assert units.commune_at("00004", date(2020, 1, 1)).scheme == LEGACY  # type: ignore[union-attr]
    assert units.commune_at("00004", date(2025, 7, 1)).scheme == NEW  # type: ignore[union-attr]
    # Provinces merged by Resolution 202/2025: Hà Giang (02) went into Tuyên Quang (08).
    ha_giang_commune = next(
        u
        for u in units.by_id.values()
        if u.scheme == LEGACY and u.level == "commune" and u.province_code == "02"
    )
    assert units.roll_forward(ha_giang_commune).province_code == "08"


def test_split_communes_have_one_default_successor(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        units = UnitDirectory(session)
    split = [u for u in units.by_id.values() if len(units.successors(u)) > 1]
    assert split, "the reference data has split communes"
    for u in split[:50]:
        assert units.roll_forward(u) in units.successors(u)
