"""The SQL of the bulk import (DESIGN "Bulk work is set-based"): the dialect, the work
tables' names and the staging table. The steps live in ``sql_rules`` (the row-level
rules), ``sql_validate`` (the work tables and the error report) and ``sql_merge``.

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

Each function returns SQL text for one backend; values are always bound parameters, and the
only interpolated names are our own table and column names.
"""

from __future__ import annotations

from dataclasses import dataclass

from dancu.registry.bulk.io import STAGE_COLUMNS


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
