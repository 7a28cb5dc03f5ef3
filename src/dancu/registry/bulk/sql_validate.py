"""The SQL of the bulk import (DESIGN "Bulk work is set-based"), as named steps.

Validation runs on per-job work tables, all derived from the staging table in one transaction:

- ``dup``: the personal ID numbers given on several lines, with the first such line;
- ``check``: every staged row with typed dates, the units looked up in the scheme in force on
  the row's dates, the register's person for its ID number, the first line of its ID number,
  and a bit mask ``bad`` of the row-level rules it breaks (``RULES``);
- ``hh``: one row per household number with its head count, its verdict and, for a new
  household, the date it is established;
- ``rows``: every row's state (``N`` new, ``S`` already in the register, ``R`` rejected by a
  rule, ``D`` duplicate ID, ``H`` rejected with its household) and, for new rows, a person id
  drawn in line order (so the merge needs no per-row round trips); narrow, the values stay in
  ``check``;
- ``ref``: the rows a parent or spouse reference may point to, by personal ID number;
- ``imp``: the new rows as they will be written, with parents and spouse resolved. It is the
  only work table that outlives validation: the merge reads it batch by batch.

Every work table is written by one set-based statement reading its inputs once: no wide row
is sorted, and (SQLite) the staging and check tables are keyed by line so that the running
count that numbers the new people needs no sort either.

Each function returns SQL text for one backend; values are always bound parameters, and the
only interpolated names are our own table and column names.
"""

from __future__ import annotations

from dataclasses import dataclass

from dancu.core.ids import PROVINCE_CODES
from dancu.registry.bulk.io import COLUMNS, STAGE_COLUMNS


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few places where PostgreSQL and SQLite spell the same thing differently."""

    pg: bool

    def digits(self, expr: str, n: int) -> str:
        if self.pg:
            return f"({expr} ~ '^[0-9]{{{n}}}$')"
        return f"(length({expr}) = {n} AND {expr} NOT GLOB '*[^0-9]*')"

    def iso_date_shape(self, expr: str) -> str:
        if self.pg:
            return f"({expr} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$')"
        return f"({expr} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')"

    def upper2(self, expr: str) -> str:
        if self.pg:
            return f"({expr} ~ '^[A-Z]{{2}}$')"
        return f"({expr} GLOB '[A-Z][A-Z]')"

    def date(self, expr: str) -> str:
        # SQLite keeps dates as ISO text (as SQLAlchemy's Date type stores them).
        return f"CAST({expr} AS DATE)" if self.pg else expr

    @property
    def fence(self) -> str:
        """Ends a FROM-clause subquery so that the planner evaluates it once per row instead
        of pasting its expressions into every reference (subquery flattening would repeat
        the date checks in each of the rules that use a date)."""
        return "OFFSET 0" if self.pg else "LIMIT -1"

    def scratch(self, name: str, select: str) -> str:
        """A work table that lives only inside the validation transaction: not WAL-logged on
        PostgreSQL, in the connection's temporary database on SQLite."""
        kind = "UNLOGGED TABLE" if self.pg else "TEMP TABLE"
        return f"CREATE {kind} {name} AS {select}"


@dataclass(frozen=True, slots=True)
class Tables:
    """Names of one job's work tables. The staging table is named after the file (it is
    filled before the job row exists); the others after the job."""

    job: int
    token: str

    @property
    def stage(self) -> str:
        return f"import_stage_{self.token}"

    @property
    def check(self) -> str:
        return f"import_check_{self.job}"

    @property
    def hh(self) -> str:
        return f"import_hh_{self.job}"

    @property
    def rows(self) -> str:
        return f"import_rows_{self.job}"

    @property
    def err(self) -> str:
        return f"import_err_{self.job}"

    @property
    def imp(self) -> str:
        return f"import_merge_{self.job}"

    @property
    def fwd(self) -> str:
        return f"import_fwd_{self.job}"

    @property
    def dup(self) -> str:
        return f"import_dup_{self.job}"

    @property
    def ref(self) -> str:
        return f"import_ref_{self.job}"

    @property
    def scratch(self) -> tuple[str, ...]:
        return (
            self.err,
            self.ref,
            self.rows,
            self.hh,
            self.check,
            self.dup,
            self.fwd,
            self.stage,
        )


def create_stage(d: Dialect, t: Tables) -> str:
    """The staging table. On SQLite ``line`` is the rowid, so the work tables derived from it
    are written, and read, in line order without sorting."""
    cols = ", ".join(f"{c} TEXT" for c in STAGE_COLUMNS[1:])
    if d.pg:
        return f"CREATE UNLOGGED TABLE {t.stage} (line BIGINT NOT NULL, {cols})"
    return f"CREATE TEMP TABLE {t.stage} (line INTEGER PRIMARY KEY, {cols})"


def copy_stage(t: Tables) -> str:
    return f"COPY {t.stage} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT csv)"


def insert_stage(t: Tables) -> str:
    return f"INSERT INTO {t.stage} VALUES ({', '.join('?' for _ in STAGE_COLUMNS)})"


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


def _date_ok(d: Dialect, e: str) -> str:
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


def _bad_mask(d: Dialect) -> str:
    terms = [
        f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, (_, _, cond) in enumerate(rules(d))
    ]
    return "CAST(" + " + ".join(terms) + " AS BIGINT)"


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
  {_bad_mask(d)} AS bad
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
      {_date_ok(d, "s.birth_date")} AS bd_ok,
      {_date_ok(d, "s.death_date")} AS dd_ok,
      {_date_ok(d, "s.residence_since")} AS rs_ok,
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


# -- the merge: one batch of households, in one transaction ----------------------------------

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
