"""The SQL of the bulk import's validation (DESIGN "Bulk work is set-based"): the work
tables derived from the staging table, and the error report.

The work tables are described in ``sql_tables``. Every work table is written by one set-based
statement reading its inputs once: no wide row is sorted, and (SQLite) the staging and check
tables are keyed by line so that the running count that numbers the new people needs no sort
either.

Each function returns SQL text for one backend; values are always bound parameters, and the
only interpolated names are our own table and column names.
"""

from __future__ import annotations

from dancu.registry.bulk.io import STAGE_COLUMNS
from dancu.registry.bulk.sql_rules import bad_mask, date_ok
from dancu.registry.bulk.sql_tables import Dialect, Tables


def _unit_join(alias: str, code: str, on: str) -> str:
    return (
        f"LEFT JOIN admin_unit {alias} ON {alias}.level = 'commune' AND {alias}.code = "
        f"{code} AND {alias}.scheme = CASE WHEN {on} < :reform THEN 'legacy' ELSE '2025' END"
    )


# Today's commune for a legacy one: its default successor (the first, as UnitDirectory does).
_FORWARD = """SELECT s.old_unit_id, n.province_code, n.code
  FROM admin_unit_succession s JOIN admin_unit n ON n.id = s.new_unit_id
  WHERE s.id IN (SELECT MIN(id) FROM admin_unit_succession WHERE is_default
                 GROUP BY old_unit_id)"""


def create_fwd(d: Dialect, t: Tables) -> str:
    """The forward map as an indexed work table: joined to every staged row, it must not be
    recomputed per row (SQLite would)."""
    return d.scratch(t.fwd, _FORWARD)


def index_fwd(t: Tables) -> str:
    return f"CREATE UNIQUE INDEX {t.fwd}_old ON {t.fwd} (old_unit_id)"


# Keeps the typed subquery from being flattened into the outer query, which would evaluate the
# date regexes and casts again at every one of the dozens of rules that use them.
_MATERIALISE = "OFFSET 0"
_MATERIALISE_SQLITE = "LIMIT -1 OFFSET 0"


def create_dup(d: Dialect, t: Tables) -> str:
    """The personal ID numbers given on more than one line, with the first of those lines: a
    narrow table, so no wide row is ever sorted to find duplicates."""
    return d.scratch(
        t.dup,
        f"SELECT personal_id, MIN(line) AS first_line FROM {t.stage} "
        "WHERE personal_id IS NOT NULL GROUP BY personal_id HAVING COUNT(*) > 1",
    )


def index_dup(t: Tables) -> str:
    return f"CREATE UNIQUE INDEX {t.dup}_pid ON {t.dup} (personal_id)"


# The columns of the check table, in order: the staged ones, then the derived ones.
CHECK_COLUMNS: tuple[str, ...] = (
    *STAGE_COLUMNS,
    "bd",
    "dd",
    "rs",
    "birth_unit_id",
    "hometown_unit_id",
    "res_unit_id",
    "now_province",
    "now_commune",
    "reg_person_id",
    "pid_first",
    "bad",
)


def create_check(d: Dialect, t: Tables) -> list[str]:
    """Typed values, units, register lookups and the rule mask of every staged row. On
    SQLite the table is keyed by ``line`` (the rowid), filled in line order."""
    raw = ", ".join(f"s.{c}" for c in STAGE_COLUMNS)
    picked = ", ".join(f"q.{c}" for c in (*STAGE_COLUMNS, "bd", "dd", "rs"))
    select = f"""
SELECT {picked}, bu.id AS birth_unit_id, hu.id AS hometown_unit_id, ru.id AS res_unit_id,
  COALESCE(f.province_code, ru.province_code) AS now_province,
  COALESCE(f.code, ru.code) AS now_commune, pi.person_id AS reg_person_id,
  COALESCE(dp.first_line, q.line) AS pid_first,
  {bad_mask(d)} AS bad
FROM (
  SELECT p.*,
    CASE WHEN p.bd_ok = 1 THEN {d.date("p.birth_date")} END AS bd,
    CASE WHEN p.dd_ok = 1 THEN {d.date("p.death_date")} END AS dd,
    CASE WHEN p.rs_ok = 1 THEN {d.date("p.residence_since")} END AS rs,
    CASE WHEN p.pid_ok = 1 THEN CAST(substr(p.personal_id, 4, 1) AS INTEGER) END AS pid_g,
    CASE WHEN p.pid_ok = 1 THEN 1900 + 100 * (CAST(substr(p.personal_id, 4, 1) AS INTEGER) / 2)
      + CAST(substr(p.personal_id, 5, 2) AS INTEGER) END AS pid_year
  FROM (
    SELECT {raw},
      {date_ok(d, "s.birth_date")} AS bd_ok,
      {date_ok(d, "s.death_date")} AS dd_ok,
      {date_ok(d, "s.residence_since")} AS rs_ok,
      CASE WHEN {d.digits("s.personal_id", 12)} THEN 1 ELSE 0 END AS pid_ok
    FROM {t.stage} s) p
  {d.fence}
) q
{_unit_join("bu", "q.birth_commune_code", "q.bd")}
{_unit_join("hu", "q.hometown_commune_code", "q.bd")}
{_unit_join("ru", "q.residence_commune_code", "q.rs")}
LEFT JOIN {t.fwd} f ON f.old_unit_id = ru.id
LEFT JOIN person_identifier pi ON pi.kind = 'personal_id' AND pi.value = q.personal_id
LEFT JOIN {t.dup} dp ON dp.personal_id = q.personal_id"""
    if d.pg:
        return [d.scratch(t.check, select)]
    cols = ", ".join(CHECK_COLUMNS[1:])
    return [
        f"CREATE TEMP TABLE {t.check} (line INTEGER PRIMARY KEY, {cols})",
        f"INSERT INTO {t.check} (line, {cols}) {select}",
    ]


# -- households, states, person ids ----------------------------------------------------------

_VALID = "c.bad = 0 AND c.line = c.pid_first"
_HEAD = f"c.relationship = 'head' AND {_VALID}"


def create_hh(d: Dialect, t: Tables) -> str:
    """One row per household number: its valid heads and the verdict ``hh_err``:
    1 its head row was rejected, 2 no head, 3 several heads, 4 the register has this household
    with another head, 5 the head is already in the register but the household is not.
    ``est_on``, the date a new household is established, is its new members' earliest
    residence date."""
    select = f"""
SELECT x.*, h.id AS existing_id,
  CASE WHEN x.heads = 0 AND x.any_head_line IS NOT NULL THEN 1
       WHEN x.heads = 0 THEN 2
       WHEN x.heads > 1 THEN 3
       WHEN h.id IS NOT NULL AND (x.head_reg IS NULL OR h.head_person_id IS NULL
                                  OR x.head_reg <> h.head_person_id) THEN 4
       WHEN h.id IS NULL AND x.head_reg IS NOT NULL THEN 5 END AS hh_err
FROM (
  SELECT c.household_no,
    SUM(CASE WHEN {_HEAD} THEN 1 ELSE 0 END) AS heads,
    MIN(CASE WHEN {_HEAD} THEN c.line END) AS head_line,
    MAX(CASE WHEN {_HEAD} THEN c.line END) AS last_head_line,
    MIN(CASE WHEN c.relationship = 'head' THEN c.line END) AS any_head_line,
    MIN(CASE WHEN {_HEAD} THEN c.reg_person_id END) AS head_reg,
    MIN(CASE WHEN {_VALID} AND c.reg_person_id IS NULL THEN c.rs END) AS est_on,
    MIN(c.line) AS hh_line
  FROM {t.check} c WHERE c.household_no IS NOT NULL GROUP BY c.household_no) x
LEFT JOIN household h ON h.number = x.household_no"""
    return d.scratch(t.hh, select)


def index_hh(t: Tables) -> str:
    return f"CREATE UNIQUE INDEX {t.hh}_no ON {t.hh} (household_no)"


def create_rows(d: Dialect, t: Tables) -> str:
    """Every row's state (a narrow table: the wide values stay in ``check``); new rows get
    person ids in line order (PostgreSQL: drawn from the person sequence, so concurrent
    registrations never collide; SQLite: a range above the current maximum, reserved by the
    caller, numbered by a running count over ``check`` read in rowid (= line) order)."""
    inner = f"""
SELECT c.line, c.personal_id, c.household_no, c.reg_person_id, c.pid_first, h.hh_line,
  h.hh_err, h.existing_id, h.head_line, h.last_head_line, h.any_head_line,
  CASE WHEN c.bad <> 0 THEN 'R' WHEN c.line <> c.pid_first THEN 'D'
    WHEN h.hh_err IS NOT NULL THEN 'H' WHEN c.reg_person_id IS NOT NULL THEN 'S'
    ELSE 'N' END AS state
FROM {t.check} c LEFT JOIN {t.hh} h ON h.household_no = c.household_no"""
    if d.pg:
        # nextval is evaluated in the order the sorted subquery delivers its rows.
        select = (
            f"SELECT z.*, CASE WHEN z.state = 'N' THEN nextval(CAST(:seq AS regclass)) "
            f"END AS person_id FROM ({inner} ORDER BY c.line) z"
        )
    else:
        select = (
            f"SELECT z.*, CASE WHEN z.state = 'N' THEN :base - 1 + SUM(CASE WHEN z.state = 'N' "
            f"THEN 1 ELSE 0 END) OVER (ORDER BY z.line ROWS UNBOUNDED PRECEDING) END "
            f"AS person_id FROM ({inner}) z"
        )
    return d.scratch(t.rows, select)


def create_ref(d: Dialect, t: Tables) -> str:
    """Who a parent or spouse reference can point to in the file: the new and the
    already-registered rows, by personal ID number (unique among them)."""
    return d.scratch(
        t.ref,
        f"SELECT personal_id, COALESCE(person_id, reg_person_id) AS person_id, "
        f"person_id AS new_id FROM {t.rows} WHERE state IN ('N', 'S')",
    )


def index_ref(t: Tables) -> str:
    return f"CREATE UNIQUE INDEX {t.ref}_pid ON {t.ref} (personal_id)"


def _ref(alias: str, col: str) -> str:
    return (
        f"LEFT JOIN {{ref}} {alias} ON {alias}.personal_id = c.{col}\n"
        f"LEFT JOIN person_identifier {alias}i ON {alias}i.kind = 'personal_id' "
        f"AND {alias}i.value = c.{col}"
    )


def create_imp(d: Dialect, t: Tables) -> str:
    """The new rows as they will be written. Durable: the merge, and a resumed merge, read
    it batch by batch through its (hh_line, line) index. PostgreSQL writes it in batch order
    so a batch reads contiguous pages; on SQLite it comes out in line order, which is the
    same order for any file that lists each household's members together."""
    joins = "\n".join(
        _ref(a, f"{role}_personal_id")
        for a, role in (("fa", "father"), ("mo", "mother"), ("sp", "spouse"))
    )
    refs = ",\n  ".join(
        f"COALESCE({a}.person_id, {a}i.person_id) AS {role}_id, "
        f"{a}.new_id AS {role}_new, c.{role}_personal_id"
        for a, role in (("fa", "father"), ("mo", "mother"), ("sp", "spouse"))
    )
    order = "ORDER BY r.hh_line, r.line" if d.pg else ""
    return f"""
CREATE TABLE {t.imp} AS
SELECT r.line, r.hh_line, r.person_id, c.personal_id, c.name_clean, c.name_key, c.bd,
  c.sex, COALESCE(c.nationality, 'VN') AS nationality,
  COALESCE(c.ethnicity, 'Kinh') AS ethnicity, COALESCE(c.religion, '') AS religion,
  c.birth_unit_id, c.hometown_unit_id,
  COALESCE(c.marital_status, 'single') AS marital_status,
  COALESCE(c.status, 'alive') AS status, c.dd,
  {refs},
  c.old_id_number, COALESCE(c.old_id_issuer, '') AS old_id_issuer,
  c.household_no, c.relationship, c.res_unit_id,
  COALESCE(c.address_line, '') AS address_line, c.rs, c.now_province, c.now_commune,
  r.existing_id AS household_id, h.est_on
FROM {t.rows} r
JOIN {t.check} c ON c.line = r.line
JOIN {t.hh} h ON h.household_no = r.household_no
{joins.format(ref=t.ref)}
WHERE r.state = 'N'
{order}"""


def index_imp(t: Tables) -> str:
    return f"CREATE INDEX ix_{t.imp}_hh_line ON {t.imp} (hh_line, line)"


# -- the error report ------------------------------------------------------------------------


def create_err(t: Tables) -> str:
    return f"CREATE TABLE {t.err} (line BIGINT, col TEXT, value TEXT, reason TEXT, level TEXT)"


def _line(expr: str) -> str:
    return f"CAST({expr} AS TEXT)"


def err_states(t: Tables) -> str:
    """Duplicates and rows rejected with their household (``rows`` carries what they need)."""
    hh = (
        f"CASE r.hh_err "
        f"WHEN 1 THEN 'the household''s head (line ' || {_line('r.any_head_line')} || "
        f"') was rejected, so the household cannot be created' "
        f"WHEN 2 THEN 'household ' || r.household_no || ' has no member with relationship head' "
        f"WHEN 3 THEN 'household ' || r.household_no || ' has more than one head (lines ' || "
        f"{_line('r.head_line')} || ' and ' || {_line('r.last_head_line')} || ')' "
        f"WHEN 4 THEN 'household ' || r.household_no || "
        f"' is already in the register with another head' "
        f"ELSE 'the head (line ' || {_line('r.head_line')} || "
        f"') is already in the register, in another household' END"
    )
    return f"""
INSERT INTO {t.err} (line, col, value, reason, level)
SELECT r.line, 'personal_id', r.personal_id,
  'the personal ID number appears earlier in the file, on line ' || {_line("r.pid_first")},
  'error'
FROM {t.rows} r WHERE r.state = 'D'
UNION ALL
SELECT r.line, 'household_no', r.household_no, {hh}, 'error'
FROM {t.rows} r WHERE r.state = 'H'"""


def err_references(d: Dialect, t: Tables) -> str:
    """Warnings: parents and spouses that are neither in the file nor in the register."""
    parts = []
    for role in ("father", "mother", "spouse"):
        col = f"{role}_personal_id"
        parts.append(
            f"SELECT line, '{col}', {col}, CASE WHEN {d.digits(col, 12)} "
            "THEN 'warning: nobody with this personal ID number is in the file or the register"
            " (or that row was rejected); the link is left empty' "
            "ELSE 'warning: not a valid personal ID number; the link is left empty' END, "
            f"'warning' FROM {t.imp} WHERE {col} IS NOT NULL AND {role}_id IS NULL"
        )
    return f"INSERT INTO {t.err} (line, col, value, reason, level)\n" + "\nUNION ALL\n".join(parts)


def read_err(t: Tables) -> str:
    return f"SELECT line, col, value, reason FROM {t.err} ORDER BY line, level, col"


def counts(t: Tables) -> str:
    return (
        f"SELECT state, COUNT(*) FROM {t.rows} GROUP BY state "
        f"UNION ALL SELECT 'W', COUNT(*) FROM {t.err} WHERE level = 'warning'"
    )
