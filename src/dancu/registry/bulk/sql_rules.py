"""The row-level rules of the bulk import as SQL: each rule is a condition on a row of the
check table (``sql_validate.create_check``), its bit in the row's ``bad`` mask, and its
reason in the error report."""

from __future__ import annotations

from dancu.core.ids import PROVINCE_CODES
from dancu.registry.bulk.io import COLUMNS
from dancu.registry.bulk.sql_tables import Dialect, Tables

# -- row-level rules -------------------------------------------------------------------------

_PROVINCES = ", ".join(f"'{c}'" for c in sorted(PROVINCE_CODES))
_RELATIONSHIPS = "'head', 'spouse', 'child', 'parent', 'grandchild', 'sibling', 'other'"
_MARITAL = "'single', 'married', 'divorced', 'widowed'"
_STATUS = "'alive', 'deceased', 'missing'"


def _unit_rules(col: str, alias: str, on: str, what: str) -> list[tuple[str, str, str]]:
    return [
        (
            col,
            f"no commune with this code in the 63-province list, in force on the {what} "
            "(before 1 July 2025)",
            f"q.{col} IS NOT NULL AND {on} IS NOT NULL AND {alias}.id IS NULL AND {on} < :reform",
        ),
        (
            col,
            f"no commune with this code in the 34-province list, in force on the {what} "
            "(from 1 July 2025)",
            f"q.{col} IS NOT NULL AND {on} IS NOT NULL AND {alias}.id IS NULL AND {on} >= :reform",
        ),
    ]


def _date_rules(col: str, typed: str) -> list[tuple[str, str, str]]:
    return [
        (col, "not a real date in the form YYYY-MM-DD", f"q.{col} IS NOT NULL AND {typed} IS NULL"),
        (col, "the date is in the future", f"{typed} > :today"),
    ]


def rules(d: Dialect) -> list[tuple[str, str | None, str]]:
    """(column, reason, condition) of every row-level rule; a None reason means the row's
    own ``name_err`` (the service's wording for a bad name)."""
    pid = "q.personal_id"
    out: list[tuple[str, str | None, str]] = [
        ("personal_id", "the personal ID number is required", f"{pid} IS NULL"),
        (
            "personal_id",
            "a personal ID number has exactly 12 digits",
            f"{pid} IS NOT NULL AND q.pid_ok = 0",
        ),
        (
            "personal_id",
            "unknown province code in the personal ID number",
            f"q.pid_ok = 1 AND substr({pid}, 1, 1) = '0' AND substr({pid}, 1, 3) NOT IN "
            f"({_PROVINCES})",
        ),
        (
            "personal_id",
            "the number's century/sex digit does not match sex",
            "q.pid_ok = 1 AND q.sex IN ('M', 'F') AND "
            "q.pid_g % 2 <> CASE WHEN q.sex = 'F' THEN 1 ELSE 0 END",
        ),
        (
            "personal_id",
            "the number's birth year does not match birth_date",
            "q.pid_ok = 1 AND q.bd IS NOT NULL AND "
            "q.pid_year <> CAST(substr(q.birth_date, 1, 4) AS INTEGER)",
        ),
        ("full_name", "the name is required", "q.name_clean IS NULL OR q.name_clean = ''"),
        ("full_name", None, "q.name_clean <> '' AND q.name_err IS NOT NULL"),
        ("birth_date", "the date of birth is required", "q.birth_date IS NULL"),
        *_date_rules("birth_date", "q.bd"),
        ("birth_date", "the date is before 1900", "q.bd < :y1900"),
        ("sex", "sex is M or F", "q.sex IS NULL OR q.sex NOT IN ('M', 'F')"),
        (
            "nationality",
            "nationality is a two-letter ISO 3166 code (e.g. VN)",
            f"q.nationality IS NOT NULL AND NOT {d.upper2('q.nationality')}",
        ),
        ("ethnicity", "at most 40 characters", "length(q.ethnicity) > 40"),
        ("religion", "at most 40 characters", "length(q.religion) > 40"),
        (
            "birth_commune_code",
            "the commune of birth registration is required",
            "q.birth_commune_code IS NULL",
        ),
        *_unit_rules("birth_commune_code", "bu", "q.bd", "date of birth"),
        *_unit_rules("hometown_commune_code", "hu", "q.bd", "date of birth"),
        (
            "marital_status",
            f"one of {_MARITAL.replace(chr(39), '')}",
            f"q.marital_status NOT IN ({_MARITAL})",
        ),
        ("status", f"one of {_STATUS.replace(chr(39), '')}", f"q.status NOT IN ({_STATUS})"),
        *_date_rules("death_date", "q.dd"),
        (
            "death_date",
            "a deceased person needs a date of death",
            "q.status = 'deceased' AND q.death_date IS NULL",
        ),
        ("death_date", "the date of death is before the date of birth", "q.dd < q.bd"),
        (
            "death_date",
            "a date of death is given but status is not deceased",
            "q.death_date IS NOT NULL AND COALESCE(q.status, 'alive') <> 'deceased'",
        ),
        ("household_no", "the household number is required", "q.household_no IS NULL"),
        ("household_no", "at most 20 characters", "length(q.household_no) > 20"),
        (
            "relationship",
            "the relationship to the household head is required",
            "q.relationship IS NULL",
        ),
        (
            "relationship",
            f"one of {_RELATIONSHIPS.replace(chr(39), '')}",
            f"q.relationship NOT IN ({_RELATIONSHIPS})",
        ),
        (
            "residence_commune_code",
            "the commune of permanent residence is required",
            "q.residence_commune_code IS NULL",
        ),
        *_unit_rules("residence_commune_code", "ru", "q.rs", "residence date"),
        (
            "residence_since",
            "the date the residence began is required",
            "q.residence_since IS NULL",
        ),
        *_date_rules("residence_since", "q.rs"),
        ("residence_since", "the residence starts before the birth", "q.rs < q.bd"),
        ("address_line", "at most 200 characters", "length(q.address_line) > 200"),
        (
            "old_id_number",
            "an old CMND number has 9 or 12 digits",
            f"q.old_id_number IS NOT NULL AND NOT ({d.digits('q.old_id_number', 9)} OR "
            f"{d.digits('q.old_id_number', 12)})",
        ),
        (
            "old_id_issuer",
            "the issuer is a 2-digit province code",
            f"q.old_id_issuer IS NOT NULL AND NOT {d.digits('q.old_id_issuer', 2)}",
        ),
    ]
    assert len(out) < 62  # bits of a 64-bit mask
    return out


def date_ok(d: Dialect, e: str) -> str:
    """1 when ``e`` is a real date written YYYY-MM-DD (year 1 or later), else 0."""
    if not d.pg:
        # SQLite's date() arithmetic normalises an impossible day ("2023-02-29" becomes
        # "2023-03-01"), so a real date is one that comes back unchanged; one C call per
        # value instead of a dozen casts.
        return (
            f"CASE WHEN {d.iso_date_shape(e)} AND {e} >= '0001' "
            f"AND date({e}, '+0 days') IS {e} THEN 1 ELSE 0 END"
        )
    y, m, day = (f"CAST(substr({e}, {a}, {b}) AS INTEGER)" for a, b in ((1, 4), (6, 2), (9, 2)))
    leap = f"(({y}) % 4 = 0 AND ({y}) % 100 <> 0) OR ({y}) % 400 = 0"
    days = (
        f"CASE {m} WHEN 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        "WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END"
    )
    # The outer CASE guards the casts: PostgreSQL does not promise to evaluate AND left first.
    return (
        f"CASE WHEN {d.iso_date_shape(e)} THEN CASE WHEN {y} >= 1 AND {m} BETWEEN 1 AND 12 "
        f"AND {day} BETWEEN 1 AND {days} THEN 1 ELSE 0 END ELSE 0 END"
    )


def bad_mask(d: Dialect) -> str:
    terms = [
        f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, (_, _, cond) in enumerate(rules(d))
    ]
    return "CAST(" + " + ".join(terms) + " AS BIGINT)"


def err_rules(d: Dialect, t: Tables) -> tuple[str, dict[str, str | None]]:
    """Expand each row's rule mask into one report row per broken rule."""
    values, params = [], {}
    for i, (col, reason, _) in enumerate(rules(d)):
        values.append(f"({1 << i}, '{col}', CAST(:r{i} AS TEXT))")
        params[f"r{i}"] = reason
    pick = " ".join(f"WHEN '{c}' THEN c.{c}" for c in COLUMNS)
    sql = f"""
WITH rule (bit, col, reason) AS (VALUES {", ".join(values)})
INSERT INTO {t.err} (line, col, value, reason, level)
SELECT c.line, rule.col, CASE rule.col {pick} END, COALESCE(rule.reason, c.name_err), 'error'
FROM (SELECT * FROM {t.check} WHERE bad <> 0) c CROSS JOIN rule
WHERE (c.bad & rule.bit) <> 0"""
    return sql, params
