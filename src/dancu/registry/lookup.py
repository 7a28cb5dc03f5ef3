"""Person lookup by ID for the async server on PostgreSQL: the register's hottest read.

Agencies verify identities one request at a time, so this read is served without a thread
hop or an ORM: one prepared statement returns the whole current record (attributes, parents,
spouse, household, open residences and identifiers as JSON arrays) over a pool of async
psycopg connections, and the read is audited durably through ``AsyncGroupAuditWriter``
before the answer leaves. It answers exactly as ``RegistryReads.get_person`` does for a
current record (the same schema, the same errors, the same audit entry; both build the
person with ``view.person_public``); the test suite compares the two on PostgreSQL. "As of"
reads, SQLite and callers on another event loop use ``RegistryReads.get_person``.
"""

from __future__ import annotations

import asyncio
import functools
from types import TracebackType
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.audit import AsyncGroupAuditWriter, Entry
from dancu.core.errors import NotFound
from dancu.core.i18n import N_
from dancu.core.units import UnitDirectory
from dancu.registry import schemas as s
from dancu.registry import search, view
from dancu.registry.search import SearchQuery

_PG = pg_psycopg.dialect()  # type: ignore[no-untyped-call]
OUT_OF_AREA = N_("no person with this ID number in your area")

# Open rows: believed today (not superseded) and still valid (no end), as ``open_rows``.
PERSON_SQL = """
SELECT pc.person_id, pc.personal_id, pc.province_code, pc.commune_code,
       v.full_name, v.birth_date, v.sex, v.nationality, v.ethnicity, v.religion,
       v.marital_status, v.status, v.death_date, v.birth_unit_id, v.hometown_unit_id,
       f.personal_id AS father_pid, f.full_name AS father_name,
       m.personal_id AS mother_pid, m.full_name AS mother_name,
       sp.personal_id AS spouse_pid, sp.full_name AS spouse_name,
       hm.relationship, hh.number AS household_number,
       (SELECT json_agg(json_build_array(r.kind, r.unit_id, r.address_line, r.valid_from,
                                         r.valid_to, rh.number)
                        ORDER BY r.valid_from, r.id)
          FROM residence r LEFT JOIN household rh ON rh.id = r.household_id
         WHERE r.person_id = pc.person_id
           AND r.superseded_at IS NULL AND r.valid_to IS NULL) AS residences,
       (SELECT json_agg(json_build_array(i.kind, i.value, i.issuer_code, i.valid_from,
                                         i.valid_to)
                        ORDER BY i.valid_from, i.id)
          FROM person_identifier i
         WHERE i.person_id = pc.person_id) AS identifiers
  FROM person_identifier pi
  JOIN person_current pc ON pc.person_id = pi.person_id
  LEFT JOIN LATERAL (
        SELECT * FROM person_version pv
         WHERE pv.person_id = pc.person_id
           AND pv.superseded_at IS NULL AND pv.valid_to IS NULL
         ORDER BY pv.valid_from DESC, pv.id DESC LIMIT 1) v ON true
  LEFT JOIN person_current f ON f.person_id = v.father_id
  LEFT JOIN person_current m ON m.person_id = v.mother_id
  LEFT JOIN person_current sp ON sp.person_id = v.spouse_id
  LEFT JOIN LATERAL (
        SELECT hm.household_id, hm.relationship FROM household_member hm
         WHERE hm.person_id = pc.person_id
           AND hm.superseded_at IS NULL AND hm.valid_to IS NULL
         ORDER BY hm.valid_from DESC, hm.id DESC LIMIT 1) hm ON true
  LEFT JOIN household hh ON hh.id = hm.household_id
 WHERE pi.kind = 'personal_id' AND pi.value = %s
"""


@functools.cache
def _search_sql(shape: search.Shape) -> str:
    """The search statement of ``shape`` as psycopg runs it (named ``%(…)s`` placeholders)."""
    return str(search.statement(shape).compile(dialect=_PG))


class _Expecting:
    """``with``: a read whose audit entry the writer is told to expect (it gathers the
    entries of reads under way); the expectation is withdrawn if the read fails. A plain
    context manager: an async generator one costs the hot read microseconds."""

    __slots__ = ("audit",)

    def __init__(self, audit: AsyncGroupAuditWriter) -> None:
        self.audit = audit

    def __enter__(self) -> None:
        self.audit.expect()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.audit.unexpect()


class PersonLookup:
    """``get_person`` for the current record, on PostgreSQL, from the server's event loop."""

    def __init__(
        self,
        conninfo: str,
        units: UnitDirectory,
        audit: AsyncGroupAuditWriter,
        pool_size: int = 8,
    ) -> None:
        self.units = units
        self.audit = audit
        self._conninfo, self._pool_size = conninfo, pool_size
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expecting = _Expecting(audit)

    async def start(self) -> None:
        """Open the pool and the audit writer on the running loop (again after ``stop``)."""
        if self._pool is not None:
            return
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=self._pool_size,
            max_size=self._pool_size,
            open=False,
            # Prepared on first use: the statement is planned once per connection.
            kwargs={"autocommit": True, "prepare_threshold": 0},
        )
        await self._pool.open(wait=True)
        await self.audit.start()
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._loop = None
        await self.audit.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def serves_here(self) -> bool:
        """Started, and on the loop the caller is running on (connections belong to a loop)."""
        try:
            return self._loop is not None and asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def get_person(
        self, ctx: OfficerContext, personal_id: str, purpose: str | None = None
    ) -> s.PersonPublic:
        number = ids.issued_number(personal_id)
        pool = self._started()
        with self._expecting:
            async with pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(PERSON_SQL, (number,))
                row = await cur.fetchone()
            # Unknown and out of area answer alike, so nobody can probe who exists elsewhere.
            if row is None or not ctx.covers(row["province_code"], row["commune_code"]):
                raise NotFound(OUT_OF_AREA, "personal_id")
            if row["full_name"] is None:
                raise NotFound("the person has no current record")
            out = self._public(row)
        entry = Entry(ctx.actor(purpose), "person.read", f"person:{row['person_id']}", "")
        await self.audit.awrite(entry, expected=True)
        return out

    async def search(self, ctx: OfficerContext, q: SearchQuery) -> s.SearchPage:
        """``RegistryReads.search``: the same statement (``search.py``), page and audit entry,
        from the pool on this loop."""
        q = q.normalised()
        shape, values = search.bind(ctx, q, "postgresql")
        pool = self._started()
        with self._expecting:
            async with pool.connection() as conn:
                cur = await conn.execute(_search_sql(shape), values)
                out = search.page_of(await cur.fetchall(), q, self.units)
        await self.audit.awrite(search.audit_entry(ctx, q, len(out.items)), expected=True)
        return out

    def _started(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("the person lookup is not started")
        return self._pool

    def _public(self, row: dict[str, Any]) -> s.PersonPublic:
        def ref(prefix: str) -> view.RefRow | None:
            pid = row[f"{prefix}_pid"]
            return (pid, row[f"{prefix}_name"]) if pid else None

        return view.person_public(
            self.units,
            row["personal_id"],
            row,
            father=ref("father"),
            mother=ref("mother"),
            spouse=ref("spouse"),
            residences=row["residences"] or (),
            household_number=row["household_number"],
            relationship=row["relationship"],
            identifiers=row["identifiers"] or (),
            as_of=None,
        )
