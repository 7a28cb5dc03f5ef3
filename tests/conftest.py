"""Shared fixtures. Every storage test runs on SQLite and on PostgreSQL.

PostgreSQL: one database per test run and xdist worker, named ``dancu_test_<worker>_<hex>``,
created from scratch, migrated once, dropped at the end (never any other database). Between
tests the mutable tables are emptied; the admin-unit reference data stays. When the server is
unreachable the PostgreSQL cases skip with the reason, except under ``CI=true``, where they fail.

Time: the ``clock`` fixture stops the process-wide clock of ``dancu.core.timeutil`` for a test
(set or advance it there); nothing patches ``utcnow`` module by module.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from dancu.bootstrap import Container
from dancu.core import migrate
from dancu.core.audit import GroupAuditWriter
from dancu.core.db import make_engine, make_sessionmaker
from dancu.core.settings import Settings
from dancu.core.timeutil import FixedClock, use_clock
from dancu.core.units import UnitDirectory
from dancu.registry.service import RegistryService

PG_ADMIN = os.environ.get("DANCU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Tables holding reference data survive between tests; everything else is emptied.
KEEP = {"admin_unit", "admin_unit_succession", "alembic_version"}


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN} unreachable: {exc}".strip()


def pg_database(worker: str) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    reason = _pg_reachable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires PostgreSQL: {reason}")
        pytest.skip(reason)
    name = f"dancu_test_{worker}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def worker_id_safe(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id_safe: str
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'dancu.db'}"
    else:
        yield from pg_database(worker_id_safe)


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def empty_mutable_tables(engine: Engine) -> None:
    from dancu.core.db import Base

    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """A migrated database (SQLite or PostgreSQL) that is empty apart from reference data."""
    empty_mutable_tables(migrated_engine)
    yield migrated_engine


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def units(migrated_engine: Engine) -> UnitDirectory:
    """The administrative units, loaded once per database: reference data that no test
    changes (loading them takes most of a second)."""
    with make_sessionmaker(migrated_engine)() as session:
        return UnitDirectory(session)


@pytest.fixture
def registry(
    session_factory: sessionmaker[Session], units: UnitDirectory
) -> Iterator[RegistryService]:
    """The registry service over the test database, with a real group-commit audit writer."""
    writer = GroupAuditWriter(session_factory, flush_ms=0.5)
    yield RegistryService(session_factory, units, writer)
    writer.stop()


@pytest.fixture
def container(engine: Engine, tmp_path: Path) -> Iterator[Container]:
    """A wired Container over the test database (its own engine on the same URL)."""
    url = engine.url.render_as_string(hide_password=False)
    # No reconciliation worker thread in the apps tests start: the tests that need one run
    # jobs themselves, and a thread polling the tables would race their emptying.
    settings = Settings(
        database_url=url, data_dir=tmp_path, secret_key="test-secret-key", reconcile_worker=False
    )
    c = Container(settings)
    yield c
    c.close()


@pytest.fixture
def clock() -> Iterator[FixedClock]:
    """A stopped process-wide clock, at the real time when the test starts, that the test sets
    or advances: ``dancu.core.timeutil.utcnow`` reads it everywhere until the test ends, when
    the system clock comes back."""
    with use_clock(FixedClock()) as fixed:
        yield fixed
