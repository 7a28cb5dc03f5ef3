"""The database side of bulk work shared by its phases: transactions with the settings of
bulk work, the per-file lock, parameters bound as each backend stores them, and whether the
merge may skip PostgreSQL's foreign-key triggers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from dancu.core.timeutil import today
from dancu.core.units import REFORM_DATE
from dancu.registry.bulk.io import ImportFileError

SQLITE_CACHE_KIB = 65_536  # page cache of the main and the temporary database: 64 MiB each


def is_pg(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def transaction(
    engine: Engine, *, immediate: bool = True, cache_kib: int = SQLITE_CACHE_KIB
) -> Iterator[Connection]:
    """One transaction. On SQLite an explicit BEGIN, because the sqlite3 module would
    otherwise run CREATE TABLE outside any transaction and a crash would leave it behind.
    On PostgreSQL the settings of bulk work, for this transaction only."""
    with engine.connect() as conn:
        restore: list[str] = []
        if not is_pg(engine):
            # Bulk work on this connection: a larger page cache for the main and temporary
            # databases, set before the transaction starts and given back afterwards (the
            # connection returns to the pool).
            for db in ("main", "temp"):
                size = conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar_one()
                restore.append(f"PRAGMA {db}.cache_size = {int(size)}")
            conn.exec_driver_sql(f"PRAGMA main.cache_size = -{cache_kib}")
            conn.exec_driver_sql(f"PRAGMA temp.cache_size = -{SQLITE_CACHE_KIB}")
            conn.commit()
        try:
            with conn.begin():
                if is_pg(engine):
                    # The validation statements are large expressions over every row:
                    # compiling them costs more than it saves; sorts and hashes of a million
                    # rows stay in memory. Without waiting for the WAL flush a server crash
                    # may lose the last commits, but each whole: a batch and the progress
                    # that records it go together.
                    for sql in (
                        "SET LOCAL jit = off",
                        "SET LOCAL work_mem = '128MB'",
                        "SET LOCAL maintenance_work_mem = '256MB'",
                        "SET LOCAL synchronous_commit = off",
                    ):
                        conn.exec_driver_sql(sql)
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
                yield conn
        finally:
            if restore:
                for sql in restore:
                    conn.exec_driver_sql(sql)
                conn.commit()


@contextmanager
def exclusive(engine: Engine, fingerprint: str) -> Iterator[None]:
    """Fail fast when another process imports the same file (PostgreSQL advisory lock; on
    SQLite the database lock and the ``rows_done`` check serialise the batches anyway)."""
    if not is_pg(engine):
        yield
        return
    key = int(fingerprint[:15], 16)
    with engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        if not got:
            raise ImportFileError("this file is being imported by another process right now")
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def bind_values(engine: Engine | Connection, **extra: Any) -> dict[str, Any]:
    """Dates and times bound as each backend stores them (SQLite: ISO text, as SQLAlchemy's
    Date and DateTime types write it)."""
    values: dict[str, Any] = {
        "reform": REFORM_DATE,
        "today": today(),
        "y1900": date(1900, 1, 1),
        **extra,
    }
    if not is_pg(engine):
        values = {k: _sqlite_value(v) for k, v in values.items()}
    return values


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def may_skip_fk_triggers(engine: Engine) -> bool:
    """Whether the merge may switch off PostgreSQL's per-row foreign-key checks.

    Every reference the merge writes is produced by the merge's own joins (new persons are
    inserted before anything points at them, units and households come from joins on the
    tables themselves), so the checks cannot fail; they are, however, most of the merge's
    cost (one trigger call per row and constraint). Skipping them needs permission to set
    ``session_replication_role``: a superuser has it, and an operator can grant it to the
    import role (``GRANT SET ON PARAMETER session_replication_role TO …``, PostgreSQL 15+).
    Without it the checks simply run."""
    if not is_pg(engine):
        return False
    with engine.connect() as conn:
        allowed = conn.execute(
            text(
                "SELECT CASE WHEN current_setting('server_version_num')::int >= 150000 "
                "THEN has_parameter_privilege('session_replication_role', 'SET') "
                "ELSE (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) END"
            )
        ).scalar()
    return bool(allowed)
