"""The SQL of the bulk import's merge: the statements that write one batch of households
from the merge table into the register, in one transaction, exactly as the registry
service writes people."""

from __future__ import annotations

from dancu.registry.bulk.sql_tables import Tables

_BATCH = "i.hh_line BETWEEN :lo AND :hi"


def merge_steps(t: Tables) -> list[tuple[str, str]]:
    """(name, SQL) of the statements that write one batch (``:lo``..``:hi`` lines) into the
    register. Persons referenced as parent or spouse from this batch but loaded with a later
    one are created here, so every foreign key holds at every commit."""
    imp = f"{t.imp} i"
    hh_join = "JOIN household h ON h.number = i.household_no"
    refs = " ".join(
        f"UNION SELECT i.{r}_new FROM {imp} WHERE {_BATCH} AND i.{r}_new IS NOT NULL"
        for r in ("father", "mother", "spouse")
    )
    return [
        (
            "person",
            f"""
INSERT INTO person (id, created_at)
SELECT x.id, :now FROM (SELECT i.person_id AS id FROM {imp} WHERE {_BATCH} {refs}) x
WHERE NOT EXISTS (SELECT 1 FROM person p WHERE p.id = x.id)""",
        ),
        (
            "household",
            f"""
INSERT INTO household (number, head_person_id, unit_id, address_line, established_on)
SELECT i.household_no, i.person_id, i.res_unit_id, i.address_line, i.est_on FROM {imp}
WHERE {_BATCH} AND i.relationship = 'head' AND i.household_id IS NULL
ORDER BY i.hh_line""",
        ),
        (
            "person_version",
            f"""
INSERT INTO person_version (person_id, valid_from, recorded_at, event_id, full_name,
  birth_date, sex, nationality, ethnicity, religion, birth_unit_id, hometown_unit_id,
  marital_status, status, death_date, father_id, mother_id, spouse_id)
SELECT i.person_id, i.bd, :now, :event, i.name_clean, i.bd, i.sex, i.nationality,
  i.ethnicity, i.religion, i.birth_unit_id, i.hometown_unit_id, i.marital_status, i.status,
  i.dd, i.father_id, i.mother_id, i.spouse_id
FROM {imp} WHERE {_BATCH} ORDER BY i.hh_line, i.line""",
        ),
        (
            "person_identifier",
            f"""
INSERT INTO person_identifier (person_id, kind, value, issuer_code, valid_from, recorded_at,
  event_id)
SELECT i.person_id, 'personal_id', i.personal_id, '', i.bd, :now, :event FROM {imp}
WHERE {_BATCH}
UNION ALL
SELECT i.person_id, 'cmnd' || CAST(length(i.old_id_number) AS TEXT), i.old_id_number,
  i.old_id_issuer, NULL, :now, :event FROM {imp}
WHERE {_BATCH} AND i.old_id_number IS NOT NULL""",
        ),
        (
            "personal_id_allocation",
            f"""
INSERT INTO personal_id_allocation (number, prefix, allocated_at)
SELECT i.personal_id, substr(i.personal_id, 1, 6), :now FROM {imp} WHERE {_BATCH}
ON CONFLICT DO NOTHING""",
        ),
        (
            "household_member",
            f"""
INSERT INTO household_member (household_id, person_id, relationship, valid_from,
  recorded_at, event_id)
SELECT h.id, i.person_id, i.relationship, i.rs, :now, :event FROM {imp} {hh_join}
WHERE {_BATCH} ORDER BY i.hh_line, i.line""",
        ),
        (
            "residence",
            f"""
INSERT INTO residence (person_id, kind, unit_id, address_line, household_id, valid_from,
  recorded_at, event_id)
SELECT i.person_id, 'permanent', i.res_unit_id, i.address_line, h.id, i.rs, :now, :event
FROM {imp} {hh_join} WHERE {_BATCH} ORDER BY i.hh_line, i.line""",
        ),
        (
            "person_current",
            f"""
INSERT INTO person_current (person_id, personal_id, full_name, name_key, birth_date, sex,
  status, household_id, residence_unit_id, province_code, commune_code, updated_at)
SELECT i.person_id, i.personal_id, i.name_clean, i.name_key, i.bd, i.sex, i.status, h.id,
  i.res_unit_id, i.now_province, i.now_commune, :now
FROM {imp} {hh_join} WHERE {_BATCH} ORDER BY i.hh_line, i.line""",
        ),
    ]
