"""A snapshot of the register for reconciliation: who everyone is now, and every number they
have been known by, as two Parquet files that other contexts read with DuckDB or Spark
instead of querying the register's tables (docs/architecture.md: contexts reach the register
through its service).

``persons.parquet``: person_key, personal_id, full_name, birth_date, sex, status, death_date,
province_code, commune_code (today's units). ``identifiers.parquet``: person_key, kind
(``personal_id`` for numbers since re-established, ``cmnd9``, ``cmnd12``), value,
issuer_code. Streamed with a server-side cursor, so memory stays flat at national size.
A snapshot is kept per register version (people, the last change, the last identifier) and
reused while nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, and_, func, select

from dancu.registry.models import PersonCurrent, PersonIdentifier, PersonVersion

_YIELD = 50_000
PERSONS = pa.schema(
    [
        ("person_key", pa.int64()),
        ("personal_id", pa.string()),
        ("full_name", pa.string()),
        ("birth_date", pa.date32()),
        ("sex", pa.string()),
        ("status", pa.string()),
        ("death_date", pa.date32()),
        ("province_code", pa.string()),
        ("commune_code", pa.string()),
    ]
)
IDENTIFIERS = pa.schema(
    [
        ("person_key", pa.int64()),
        ("kind", pa.string()),
        ("value", pa.string()),
        ("issuer_code", pa.string()),
    ]
)


@dataclass(frozen=True)
class Snapshot:
    folder: Path
    people: int
    version: str

    @property
    def persons(self) -> Path:
        return self.folder / "persons.parquet"

    @property
    def identifiers(self) -> Path:
        return self.folder / "identifiers.parquet"


def register_version(engine: Engine) -> tuple[int, str]:
    """(people, a string that changes whenever the register does)."""
    with engine.connect() as conn:
        people, changed = conn.execute(
            select(func.count(), func.max(PersonCurrent.updated_at))
        ).one()
        last_id = conn.execute(select(func.max(PersonIdentifier.id))).scalar()
    return int(people), f"{people}:{changed}:{last_id}"


def write_snapshot(engine: Engine, root: Path) -> Snapshot:
    """The snapshot of the register as it is now, in ``root/<version digest>/`` (reused when
    it is already there; written to a temporary folder and renamed when complete)."""
    people, version = register_version(engine)
    folder = root / hashlib.sha256(version.encode()).hexdigest()[:16]
    if (folder / "snapshot.json").exists():
        return Snapshot(folder, people, version)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with engine.connect() as conn:
        _stream(
            conn.execute(_persons(), execution_options={"yield_per": _YIELD}),
            partial / "persons.parquet",
            PERSONS,
        )
        _stream(
            conn.execute(_identifiers(), execution_options={"yield_per": _YIELD}),
            partial / "identifiers.parquet",
            IDENTIFIERS,
        )
    (partial / "snapshot.json").write_text(json.dumps({"people": people, "version": version}))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return Snapshot(folder, people, version)


def _stream(result: Any, path: Path, schema: pa.Schema) -> None:
    with pq.ParquetWriter(path, schema) as writer:
        for part in result.partitions():
            columns: list[Any] = list(zip(*part, strict=True))
            writer.write_batch(
                pa.record_batch(
                    [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                    schema=schema,
                )
            )


def _persons() -> Any:
    pc, v = PersonCurrent, PersonVersion
    return (
        select(
            pc.person_id,
            pc.personal_id,
            pc.full_name,
            pc.birth_date,
            pc.sex,
            pc.status,
            v.death_date,
            pc.province_code,
            pc.commune_code,
        )
        .join(
            v,
            and_(v.person_id == pc.person_id, v.superseded_at.is_(None), v.valid_to.is_(None)),
        )
        .order_by(pc.person_id)
    )


def _identifiers() -> Any:
    """Old CMND numbers, and personal ID numbers no longer current (re-established)."""
    i = PersonIdentifier
    return (
        select(i.person_id, i.kind, i.value, i.issuer_code)
        .where(
            (i.kind.in_(("cmnd9", "cmnd12")))
            | (and_(i.kind == "personal_id", i.valid_to.is_not(None)))
        )
        .order_by(i.person_id)
    )
