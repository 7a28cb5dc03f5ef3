"""Bulk import and export of population files on both backends: a synthetic file loads whole,
bad rows are reported by line, column and reason and the rest load, a crash mid-merge resumes
without duplicates, a finished file is a no-op, and an export imports into another register."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from dancu.core import audit, ids, migrate
from dancu.core.db import make_engine
from dancu.core.models import AuditEntry, PersonalIdAllocation
from dancu.registry.bulk.export import export_population
from dancu.registry.bulk.io import COLUMNS, ImportFileError
from dancu.registry.bulk.load import import_population
from dancu.registry.models import (
    Household,
    HouseholdMember,
    ImportJob,
    Person,
    PersonCurrent,
    PersonIdentifier,
    PersonVersion,
)
from dancu.registry.synth_population import generate_population

AS_OF = date(2026, 11, 1)
PEOPLE = 400


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "people.csv"
    generate_population(PEOPLE, 11, out, as_of=AS_OF)
    return out


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def test_synthetic_file_loads_whole(engine: Engine, population: Path, tmp_path: Path) -> None:
    rows = read_rows(population)
    report = import_population(engine, population, error_path=tmp_path / "err.csv")

    assert (report.rows_total, report.loaded, report.rejected) == (PEOPLE, PEOPLE, 0)
    assert read_rows(tmp_path / "err.csv") == []
    assert count(engine, Person) == PEOPLE
    assert count(engine, PersonCurrent) == PEOPLE
    assert count(engine, HouseholdMember) == PEOPLE
    heads = sum(1 for r in rows if r["relationship"] == "head")
    assert count(engine, Household) == heads
    # Every personal ID number is allocated, so the allocator never hands it out again.
    assert count(engine, PersonalIdAllocation) == PEOPLE
    old = sum(1 for r in rows if r["old_id_number"])
    with engine.connect() as conn:
        cmnd = conn.execute(
            select(func.count())
            .select_from(PersonIdentifier)
            .where(PersonIdentifier.kind.like("cmnd%"))
        ).scalar_one()
        deceased = conn.execute(
            select(func.count())
            .select_from(PersonCurrent)
            .where(PersonCurrent.status == "deceased")
        ).scalar_one()
        # person_current holds today's units: no legacy-only commune codes remain.
        sample = rows[0]
        current = conn.execute(
            select(PersonCurrent).where(PersonCurrent.personal_id == sample["personal_id"])
        ).one()
        version = conn.execute(
            select(PersonVersion).where(PersonVersion.person_id == current.person_id)
        ).one()
    assert cmnd == old
    assert deceased == sum(1 for r in rows if r["status"] == "deceased")
    assert current.full_name == sample["full_name"]
    assert version.birth_date == date.fromisoformat(sample["birth_date"])
    assert len(current.commune_code) == 5

    again = import_population(engine, population, error_path=tmp_path / "err2.csv")
    assert again.already_done and again.job_id == report.job_id
    assert count(engine, Person) == PEOPLE


def test_bad_rows_are_reported_and_the_rest_load(
    engine: Engine, population: Path, tmp_path: Path
) -> None:
    rows = read_rows(population)
    singles = [
        i
        for i, r in enumerate(rows)
        if r["relationship"] == "head"
        and (i + 1 == len(rows) or rows[i + 1]["relationship"] == "head")
    ]
    assert len(singles) >= 4, "the sample needs one-person households to break"
    a, b, c, d = singles[:4]
    rows[a]["personal_id"] = "12345"  # malformed ID
    rows[b]["sex"] = "F" if rows[b]["sex"] == "M" else "M"  # disagrees with the ID
    rows[c]["birth_date"] = "2999-01-01"  # in the future
    rows[d]["residence_commune_code"] = "99999"  # no such commune
    dup = dict(rows[0])
    rows.append(dup)  # duplicate personal_id
    bad = write_rows(tmp_path / "bad.csv", rows)

    report = import_population(engine, bad, error_path=tmp_path / "bad.errors.csv")

    errors = read_rows(tmp_path / "bad.errors.csv")
    by_line: dict[int, list[tuple[str, str]]] = {}
    for e in errors:
        by_line.setdefault(int(e["line"]), []).append((e["column"], e["reason"].lower()))
    assert set(by_line) == {a + 2, b + 2, c + 2, d + 2, len(rows) + 1}
    assert by_line[a + 2][0][0] == "personal_id"
    assert any("sex" in reason for _, reason in by_line[b + 2])
    assert "birth_date" in {col for col, _ in by_line[c + 2]}
    assert by_line[d + 2][0][0] == "residence_commune_code"
    assert by_line[len(rows) + 1][0][0] == "personal_id"
    assert "earlier in the file, on line 2" in by_line[len(rows) + 1][0][1]
    # ID numbers in the report are masked.
    assert rows[0]["personal_id"] not in (tmp_path / "bad.errors.csv").read_text()
    assert report.rejected == 5
    assert count(engine, Person) == len(rows) - 5


def test_an_import_job_is_recorded_in_the_audit(
    engine: Engine, population: Path, tmp_path: Path
) -> None:
    rows = read_rows(population)
    rows.append(dict(rows[0]))  # one duplicate: rejected
    path = write_rows(tmp_path / "audited.csv", rows)
    operator = audit.Actor("operator:lan", "operator", "", "bulk-import")

    report = import_population(engine, path, error_path=tmp_path / "e.csv", actor=operator)
    again = import_population(engine, path, error_path=tmp_path / "e.csv", actor=operator)

    assert again.already_done
    with Session(engine) as session:
        entries = (
            session.execute(select(AuditEntry).where(AuditEntry.action == "registry.import"))
            .scalars()
            .all()
        )
    assert len(entries) == 1, "one entry per job, not one per run"
    entry = entries[0]
    assert (entry.actor, entry.role, entry.purpose) == ("operator:lan", "operator", "bulk-import")
    assert entry.subject == f"import_job:{report.job_id}"
    detail = orjson.loads(entry.detail)
    assert detail["file"] == "audited.csv"
    assert detail["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (detail["rows"], detail["loaded"], detail["rejected"]) == (PEOPLE + 1, PEOPLE, 1)
    # The entry is chained like every other: the audit still verifies.
    with Session(engine) as session:
        assert audit.verify(session).ok


def test_whole_file_problems_write_nothing(
    engine: Engine, population: Path, tmp_path: Path
) -> None:
    rows = read_rows(population)[:5]
    missing = tmp_path / "missing.csv"
    with missing.open("w", encoding="utf-8", newline="") as f:
        cols = [c for c in COLUMNS if c != "birth_date"]
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ImportFileError, match="birth_date"):
        import_population(engine, missing)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        population.read_bytes()[:2000].decode("utf-8", "ignore").encode("cp1258", "replace")
        + "Nguy\u1ec5n".encode("utf-16")
    )
    with pytest.raises(ImportFileError, match="UTF-8"):
        import_population(engine, latin)
    assert count(engine, Person) == 0
    assert count(engine, ImportJob) == 0


def test_crash_mid_merge_resumes_without_duplicates(
    engine: Engine, population: Path, tmp_path: Path
) -> None:
    class Crash(Exception):
        pass

    def crash_after_first_batch(stage: str, done: int, total: int | None) -> None:
        if stage == "merge" and done >= 100:
            raise Crash

    with pytest.raises(Crash):
        import_population(
            engine,
            population,
            batch_size=100,
            progress=crash_after_first_batch,
            error_path=tmp_path / "e.csv",
        )
    partial = count(engine, Person)
    assert 0 < partial < PEOPLE
    with engine.connect() as conn:
        status = conn.execute(select(ImportJob.status)).scalar_one()
    assert status == "failed"

    report = import_population(engine, population, batch_size=100, error_path=tmp_path / "e.csv")

    assert report.resumed and report.loaded == PEOPLE
    assert count(engine, Person) == PEOPLE
    assert count(engine, PersonCurrent) == PEOPLE
    with engine.connect() as conn:
        dupes = conn.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT value FROM person_identifier"
                " WHERE kind = 'personal_id' GROUP BY value HAVING COUNT(*) > 1) d"
            )
        ).scalar_one()
    assert dupes == 0


def test_export_round_trips_into_another_register(
    engine: Engine, population: Path, tmp_path: Path
) -> None:
    import_population(engine, population, error_path=tmp_path / "e.csv")
    out = tmp_path / "export.parquet"
    assert export_population(engine, out) == PEOPLE
    hanoi = tmp_path / "hanoi.csv"
    in_hanoi = export_population(engine, hanoi, province_code="01")
    assert 0 < in_hanoi < PEOPLE
    assert all(r["residence_commune_code"] for r in read_rows(hanoi))

    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        migrate.upgrade(other)
        report = import_population(other, out, error_path=tmp_path / "e2.csv")
        assert (report.loaded, report.rejected) == (PEOPLE, 0)
        with engine.connect() as a, other.connect() as b:
            query = select(
                PersonCurrent.personal_id,
                PersonCurrent.full_name,
                PersonCurrent.birth_date,
                PersonCurrent.status,
                PersonCurrent.commune_code,
            )
            assert set(a.execute(query).all()) == set(b.execute(query).all())
    finally:
        other.dispose()


def test_export_then_reimport(engine: Engine, population: Path, tmp_path: Path) -> None:
    """The exported file is a valid population file: re-importing it into the same register
    skips every person as already loaded (no duplicates, nothing rejected)."""
    import_population(engine, population, error_path=tmp_path / "e.csv")
    out = tmp_path / "export.csv"
    export_population(engine, out)
    exported = read_rows(out)
    original = {r["personal_id"]: r for r in read_rows(population)}
    assert {r["personal_id"] for r in exported} == set(original)
    for r in exported[:50]:
        src = original[r["personal_id"]]
        assert (r["full_name"], r["birth_date"], r["sex"]) == (
            src["full_name"],
            src["birth_date"],
            src["sex"],
        )
    report = import_population(engine, out, error_path=tmp_path / "e2.csv")
    assert (report.loaded, report.skipped, report.rejected) == (0, PEOPLE, 0)
    assert count(engine, Person) == PEOPLE


def test_synthetic_population_is_valid_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    generate_population(300, 5, a, as_of=AS_OF)
    generate_population(300, 5, b, as_of=AS_OF)
    assert a.read_bytes() == b.read_bytes()
    rows = read_rows(a)
    assert len(rows) == 300
    heads: dict[str, int] = {}
    for r in rows:
        pid = ids.parse(r["personal_id"])
        assert pid.sex == r["sex"]
        assert pid.birth_year == int(r["birth_date"][:4])
        assert date.fromisoformat(r["birth_date"]) <= AS_OF
        heads[r["household_no"]] = heads.get(r["household_no"], 0) + (r["relationship"] == "head")
    assert set(heads.values()) == {1}
    assert len({r["personal_id"] for r in rows}) == 300
