"""CI check that models and migrations agree (``dancu db check``), on both backends."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from dancu.core import migrate


def test_models_and_migrations_agree(migrated_engine: Engine) -> None:
    assert migrate.check(migrated_engine) is None


def test_upgrade_is_idempotent(migrated_engine: Engine) -> None:
    assert migrate.upgrade(migrated_engine) == 0  # reference data already present
    indexes = {i["name"] for i in inspect(migrated_engine).get_indexes("person_current")}
    assert ("ix_person_current_name_trgm" in indexes) == (
        migrated_engine.dialect.name == "postgresql"
    )


def test_name_and_birth_date_search_has_its_index(migrated_engine: Engine) -> None:
    indexes = {
        i["name"]: i["column_names"] for i in inspect(migrated_engine).get_indexes("person_current")
    }
    assert indexes["ix_person_current_birth_name"] == ["birth_date", "name_key", "person_id"]
