"""Alembic environment: runs against the URL dancu passes in, with timeouts on PostgreSQL so a
migration never waits forever on a lock held by a running service."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import dancu.identity.models
import dancu.reconcile.models
import dancu.registry.models  # noqa: F401
from dancu.core import models as _core_models  # noqa: F401
from dancu.core.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    connectable = config.attributes.get("connection") or make_engine(url)
    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Indexes declared with ddl_if(dialect=...) exist only on that dialect.
    ddl_if = getattr(obj, "_ddl_if", None)
    dialect = context.get_context().dialect.name
    return not (ddl_if is not None and ddl_if.dialect and ddl_if.dialect != dialect)


def _run(connection: object) -> None:
    context.configure(
        include_object=_include,
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables.
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # type: ignore[attr-defined]
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))  # type: ignore[attr-defined]
            connection.execute(text("SET LOCAL statement_timeout = '30min'"))  # type: ignore[attr-defined]
        context.run_migrations()


run_migrations_online()
