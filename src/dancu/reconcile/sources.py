"""Where the register comes from, and the pipeline's inputs loaded into an engine.

The register is either dancu's own database (``RegistryService.snapshot``: two Parquet files,
kept per register version) or a population file from any register — dancu's export format
(docs/formats.md) or another's, its columns recognised like an extract's — turned into the
same two files here with DuckDB. Either way the pipeline sees ``reg_person`` and
``reg_identifier`` (pipeline.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from dancu.core.errors import Invalid
from dancu.reconcile.engine import Engine
from dancu.reconcile.fields import HEADER_SYNONYMS, header_key
from dancu.reconcile.normalize import definitions
from dancu.reconcile.reference import commune_provinces, province_keys, province_names

# Columns of a population file, by header key: dancu's own names first, then the names an
# extract would use (fields.HEADER_SYNONYMS), then other registers' usual ones.
_REGISTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "personal_id": ("personal_id", *HEADER_SYNONYMS["personal_id"]),
    "full_name": ("full_name", *HEADER_SYNONYMS["full_name"]),
    "birth_date": ("birth_date", *HEADER_SYNONYMS["birth_date"]),
    "sex": ("sex", *HEADER_SYNONYMS["sex"]),
    "status": ("status", "trang_thai", "tinh_trang"),
    "death_date": ("death_date", "ngay_mat", "ngay_chet", "ngay_tu", "date_of_death"),
    "commune": ("residence_commune_code", "ma_xa", "ma_phuong_xa", "commune_code"),
    "since": ("residence_since", "ngay_dang_ky_thuong_tru"),
    "province": HEADER_SYNONYMS["province"],
    "old_id": ("old_id_number", *HEADER_SYNONYMS["old_id"]),
}
_REQUIRED = ("personal_id", "full_name", "birth_date")


@dataclass(frozen=True)
class RegisterFiles:
    """The register as the pipeline reads it, and what identifies this version of it."""

    persons: Path
    identifiers: Path
    people: int
    fingerprint: str


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def _reader(path: Path, parquet: bool) -> str:
    quoted = str(path).replace("'", "''")
    if parquet:
        return f"read_parquet('{quoted}')"
    return f"read_csv('{quoted}', all_varchar = true, header = true)"


def population_register(path: Path, root: Path) -> RegisterFiles:
    """The two register files from a population file (CSV or Parquet), in a folder under
    ``root`` named by the file's fingerprint, so a second run against the same file reuses
    them. Refuses a file without personal ID number, name and date of birth columns."""
    fingerprint = _file_fingerprint(path)
    folder = root / ("pop-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16])
    persons, identifiers = folder / "persons.parquet", folder / "identifiers.parquet"
    if (folder / "done").exists():
        people = int((folder / "done").read_text())
        return RegisterFiles(persons, identifiers, people, fingerprint)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    con = duckdb.connect()
    try:
        for statement in definitions("duckdb"):
            con.execute(statement)
        con.execute("SET enable_progress_bar = false")
        parquet = _is_parquet(path)
        con.execute(f"CREATE VIEW pop_file AS SELECT * FROM {_reader(path, parquet)}")
        described = con.execute("DESCRIBE pop_file").fetchall()
        headers = [r[0] for r in described]
        typed = {r[0] for r in described if str(r[1]).upper() in ("DATE", "TIMESTAMP")}
        cols = _recognise(headers)
        missing = [c for c in _REQUIRED if c not in cols]
        if missing:
            raise Invalid(
                "the population file has no column for: " + ", ".join(missing), "registry"
            )
        # Both files read the population: a CSV is parsed once, into memory, for the columns
        # they use (a second pass over a 1M-person CSV costs ~2 s; Parquet reads are cheap).
        if parquet:
            con.execute("CREATE VIEW pop AS SELECT * FROM pop_file")
        else:
            used = ", ".join('"' + c.replace('"', '""') + '"' for c in sorted(set(cols.values())))
            con.execute(f"CREATE TEMP TABLE pop AS SELECT {used} FROM pop_file")
        _load_units(con)
        people = _write_persons(con, cols, typed, partial / "persons.parquet")
        _write_identifiers(con, cols, partial / "identifiers.parquet")
    finally:
        con.close()
    (partial / "done").write_text(str(people))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return RegisterFiles(persons, identifiers, people, fingerprint)


def _recognise(headers: list[str]) -> dict[str, str]:
    by_key = {header_key(h): h for h in headers}
    out: dict[str, str] = {}
    for field, names in _REGISTER_COLUMNS.items():
        for name in names:
            header = by_key.get(header_key(name))
            if header is not None and header not in out.values():
                out[field] = header
                break
    return out


def _load_units(con: duckdb.DuckDBPyConnection) -> None:
    for name, columns, rows in (
        ("ref_province", ("key", "province_code", "legacy"), province_keys()),
        ("ref_commune", ("scheme", "code", "province_code"), commune_provinces()),
    ):
        table = pa.table(
            {c: list(v) for c, v in zip(columns, zip(*rows, strict=True), strict=True)}
        )
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


def _col(cols: dict[str, str], field: str) -> str:
    return f'CAST("{cols[field]}" AS VARCHAR)' if field in cols else "CAST(NULL AS VARCHAR)"


def _date(cols: dict[str, str], typed: set[str], field: str) -> str:
    """A date column: as it is when the file types it, else parsed from the text."""
    if field not in cols:
        return "CAST(NULL AS DATE)"
    if cols[field] in typed:
        return f'CAST("{cols[field]}" AS DATE)'
    text = _col(cols, field)
    return f"coalesce(try_cast({text} AS DATE), dc_date({text}))"


_DECEASED = (
    "deceased",
    "dead",
    "đã chết",
    "da chet",
    "chết",
    "chet",
    "đã mất",
    "da mat",
    "tử vong",
)
_MISSING = ("missing", "mất tích", "mat tich")


def _write_persons(
    con: duckdb.DuckDBPyConnection, cols: dict[str, str], typed: set[str], out: Path
) -> int:
    # The commune's scheme follows the date its residence began (docs/formats.md); without
    # that date, a code of the 2025 list is read as such, else as a legacy one.
    scheme = (
        f"CASE WHEN {_date(cols, typed, 'since')} < DATE '2025-07-01' THEN 'legacy' ELSE '2025' END"
        if "since" in cols
        else "'2025'"
    )
    status = f"lower(trim({_col(cols, 'status')}))"
    death = _date(cols, typed, "death_date")
    deceased = ", ".join(f"'{s}'" for s in _DECEASED)
    missing = ", ".join(f"'{s}'" for s in _MISSING)
    sql = f"""
SELECT row_number() OVER (ORDER BY p.personal_id) AS person_key, p.personal_id, p.full_name,
  p.birth_date, p.sex, p.status, p.death_date,
  coalesce(c1.province_code, c2.province_code, rp.province_code) AS province_code,
  p.commune AS commune_code
FROM (
  SELECT dc_digits({_col(cols, "personal_id")}) AS personal_id,
    nfc_normalize(trim({_col(cols, "full_name")})) AS full_name,
    {_date(cols, typed, "birth_date")} AS birth_date,
    dc_sex({_col(cols, "sex")}) AS sex,
    CASE WHEN {status} IN ({deceased}) OR {death} IS NOT NULL THEN 'deceased'
         WHEN {status} IN ({missing}) THEN 'missing'
         ELSE 'alive' END AS status,
    {death} AS death_date,
    {_col(cols, "commune")} AS commune, {scheme} AS scheme,
    dc_fold({_col(cols, "province")}) AS province_key
  FROM pop
) AS p
LEFT JOIN ref_commune AS c1 ON c1.code = p.commune AND c1.scheme = p.scheme
LEFT JOIN ref_commune AS c2 ON c2.code = p.commune AND c2.scheme <> p.scheme
LEFT JOIN ref_province AS rp ON rp.key = p.province_key
WHERE length(p.personal_id) = 12 AND p.full_name IS NOT NULL AND p.birth_date IS NOT NULL"""
    quoted = str(out).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{quoted}' (FORMAT parquet)")
    found = con.execute(f"SELECT count(*) FROM read_parquet('{quoted}')").fetchone()
    return int(found[0]) if found else 0


def _write_identifiers(con: duckdb.DuckDBPyConnection, cols: dict[str, str], out: Path) -> None:
    quoted = str(out).replace("'", "''")
    persons = str(out.with_name("persons.parquet")).replace("'", "''")
    old = _col(cols, "old_id")
    sql = f"""
SELECT p.person_key, CASE WHEN length(o.old) = 9 THEN 'cmnd9' ELSE 'cmnd12' END AS kind,
  o.old AS value, '' AS issuer_code
FROM (SELECT dc_digits({_col(cols, "personal_id")}) AS personal_id, dc_digits({old}) AS old
      FROM pop) AS o
JOIN read_parquet('{persons}') AS p ON p.personal_id = o.personal_id
WHERE length(o.old) IN (9, 12)"""
    con.execute(f"COPY ({sql}) TO '{quoted}' (FORMAT parquet)")


def load_inputs(
    engine: Engine, extract: Path, extract_fingerprint: str, register: RegisterFiles
) -> None:
    """Everything the steps read, in the engine: the staged extract, the register, the
    reference tables."""
    engine.load_parquet("extract_raw", extract, extract_fingerprint)
    engine.load_parquet("reg_person", register.persons, register.fingerprint + ":persons")
    engine.load_parquet(
        "reg_identifier", register.identifiers, register.fingerprint + ":identifiers"
    )
    engine.load_rows(
        "ref_province",
        [("key", "VARCHAR"), ("province_code", "VARCHAR"), ("legacy", "BOOLEAN")],
        province_keys(),
    )
    engine.load_rows(
        "ref_province_name",
        [("code", "VARCHAR"), ("name", "VARCHAR")],
        sorted(province_names().items()),
    )
    engine.load_rows("ref_position", [("i", "INTEGER")], [(i,) for i in range(1, 13)])
    engine.load_rows("ref_digit", [("d", "VARCHAR")], [(str(d),) for d in range(10)])
