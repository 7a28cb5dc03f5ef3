"""The ``dancu`` command against a real database: schema, officers, tokens, show, audit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from dancu.bootstrap import Container
from dancu.cli import app
from dancu.core.access import OfficerContext, Role
from dancu.core.models import AuditEntry
from dancu.registry.cli import EXIT_LOADED_WITH_REJECTIONS
from tests.helpers import resident

runner = CliRunner()
MINISTRY = OfficerContext("admin", Role.MINISTRY)


@pytest.fixture
def env(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DANCU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DANCU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DANCU_SECRET_KEY", "cli-test-secret")
    return engine


def test_db_upgrade_and_check(env: Engine) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["db", "check"])
    assert result.exit_code == 0 and "agree" in result.output


def test_officer_create_token_and_bad_unit(env: Engine, container: Container) -> None:
    ok = runner.invoke(
        app,
        [
            "officer",
            "create",
            "xa1",
            "--role",
            "commune_officer",
            "--unit",
            "00004",
            "--password",
            "mat-khau-dai-1",
        ],
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        app,
        [
            "officer",
            "create",
            "xa2",
            "--role",
            "commune_officer",
            "--unit",
            "99999",
            "--password",
            "mat-khau-dai-1",
        ],
    )
    assert bad.exit_code == 2 and "no commune 99999" in bad.output
    token = runner.invoke(app, ["officer", "token", "xa1"]).output.strip()
    ctx = Container().tokens.verify(token)
    assert (ctx.username, ctx.role, ctx.commune_code) == ("xa1", Role.COMMUNE, "00004")


def test_show_and_audit_verify_detects_tampering(env: Engine, container: Container) -> None:
    number = container.registry.register_person(
        MINISTRY,
        resident("Vũ Thị Mai", date(1970, 2, 3), "F", date(1995, 1, 1)),
    )
    shown = runner.invoke(app, ["registry", "show", number])
    assert shown.exit_code == 0 and "Vũ Thị Mai" in shown.output
    assert runner.invoke(app, ["registry", "show", "123"]).exit_code == 1
    intact = runner.invoke(app, ["audit", "verify"])
    assert intact.exit_code == 0 and "intact" in intact.output
    with env.begin() as conn:
        conn.execute(
            update(AuditEntry)
            .where(AuditEntry.action == "person.register")
            .values(purpose="tampered")
        )
    tampered = runner.invoke(app, ["audit", "verify"])
    assert tampered.exit_code == 1 and "TAMPERED" in tampered.output


def test_synth_import_export_round_trip(env: Engine, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    made = runner.invoke(
        app,
        [
            "synth",
            "population",
            "--people",
            "250",
            "--out",
            str(people),
            "--seed",
            "4",
            "--as-of",
            "2026-11-01",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "250 people written" in made.output
    loaded = runner.invoke(app, ["registry", "import", str(people)])
    assert loaded.exit_code == 0, loaded.output
    assert "250 people loaded" in loaded.output
    again = runner.invoke(app, ["registry", "import", str(people)])
    assert "already imported" in again.output
    out = tmp_path / "out.parquet"
    exported = runner.invoke(app, ["registry", "export", "--out", str(out)])
    assert exported.exit_code == 0 and "250 people written" in exported.output


def test_import_of_a_broken_file_explains_and_writes_nothing(env: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("personal_id,full_name\n001090000001,Nguyễn Văn A\n", encoding="utf-8")
    result = runner.invoke(app, ["registry", "import", str(broken)])
    assert result.exit_code == 2
    assert "birth_date" in result.output and "nothing was imported" in result.output
    bad = runner.invoke(app, ["synth", "population", "--as-of", "31/02/2020"])
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_identity_account_create_and_show(env: Engine, container: Container) -> None:
    from dancu.demo import ba_dinh_family

    family = ba_dinh_family(container.registry)
    father = family["father"]
    args = ["identity", "account", "create", father, "--phone", "0912345678"]
    created = runner.invoke(app, [*args, "--passcode", "482915"])
    assert created.exit_code == 0, created.output
    assert "level 2, active" in created.output and "+84••••••678" in created.output
    again = runner.invoke(app, [*args, "--passcode", "482915"])
    assert again.exit_code == 1 and "already exists" in again.output
    for_mother = ["identity", "account", "create", family["mother"], "--phone"]
    weak = runner.invoke(app, [*for_mother, "0912345678", "--passcode", "123456"])
    assert weak.exit_code == 1 and "passcode" in weak.output
    bad_phone = runner.invoke(app, [*for_mother, "12", "--passcode", "482915"])
    assert bad_phone.exit_code == 2 and "phone" in bad_phone.output
    shown = runner.invoke(app, ["identity", "account", "show", father])
    assert shown.exit_code == 0 and '"level": 2' in shown.output and "provisioned" in shown.output

    bad_reason = runner.invoke(app, ["identity", "account", "suspend", father, "--reason", "x"])
    assert bad_reason.exit_code == 1 and "reason" in bad_reason.output
    suspend = ["identity", "account", "suspend", father, "--reason", "reported-fraud"]
    suspended = runner.invoke(app, [*suspend, "--note", "bank report 17"])
    assert suspended.exit_code == 0 and "suspended" in suspended.output
    assert container.identity.account(father).status == "suspended"
    assert runner.invoke(app, suspend).exit_code == 1  # already suspended
    back = runner.invoke(app, ["identity", "account", "reinstate", father])
    assert back.exit_code == 0 and container.identity.account(father).status == "active"


def test_identity_client_add_list_and_key_rotation(env: Engine, tmp_path: Path) -> None:
    import json

    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    added = runner.invoke(
        app,
        ["identity", "client", "add", "Bộ Y tế", "--purpose", "health insurance checks",
         "--jwks", str(jwks), "--client-id", "byt"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "client_id: byt" in added.output and "secret" not in added.output
    secret = runner.invoke(
        app, ["identity", "client", "add", "Ngân hàng", "--purpose", "eKYC checks", "--secret"]
    )
    assert secret.exit_code == 0 and "client_secret (shown once)" in secret.output
    bad = runner.invoke(
        app, ["identity", "client", "add", "RP", "--purpose", "login", "--jwks", str(tmp_path)]
    )
    assert bad.exit_code == 2
    listed = runner.invoke(app, ["identity", "client", "list"])
    assert "byt" in listed.output and "client_secret_basic" in listed.output
    stopped = runner.invoke(app, ["identity", "client", "disable", "byt"])
    assert stopped.exit_code == 0 and "byt: disabled" in stopped.output
    assert (
        "byt                      disabled"
        in runner.invoke(app, ["identity", "client", "list"]).output
    )
    assert "byt: active" in runner.invoke(app, ["identity", "client", "enable", "byt"]).output
    assert runner.invoke(app, ["identity", "client", "disable", "nobody"]).exit_code == 1
    first = runner.invoke(app, ["identity", "keys", "rotate"])
    second = runner.invoke(app, ["identity", "keys", "rotate"])
    assert first.exit_code == second.exit_code == 0
    assert first.output != second.output and "signing with key" in second.output


def test_reconcile_run_against_a_population_file_and_the_database(
    env: Engine, tmp_path: Path
) -> None:
    from dancu.reconcile.synth_extract import generate_extract
    from dancu.registry.bulk.load import import_population
    from dancu.registry.synth_population import generate_population

    population = tmp_path / "people.parquet"
    generate_population(500, 4, population, as_of=date(2026, 11, 1))
    extract = tmp_path / "extract.csv"
    generate_extract(population, 60, extract, seed=4)
    out = tmp_path / "result.csv"
    ran = runner.invoke(
        app, ["reconcile", "run", str(extract), "--out", str(out), "--registry", str(population)]
    )
    assert ran.exit_code == 0, ran.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 61
    assert (tmp_path / "result.corrections.csv").exists()
    assert (tmp_path / "result.summary.json").exists()
    assert not (tmp_path / "result.csv.work").exists()  # cleaned up
    debug = runner.invoke(
        app,
        [
            "reconcile",
            "run",
            str(extract),
            "--out",
            str(tmp_path / "r2.parquet"),
            "--registry",
            str(population),
            "--debug",
            "--column",
            "agency_key=ma_ho_so",
        ],
    )
    assert debug.exit_code == 0 and "-- step x_names" in debug.output
    # Against the configured database (the register imported from the same file).
    import_population(env, population)
    db = runner.invoke(app, ["reconcile", "run", str(extract), "--out", str(tmp_path / "r3.csv")])
    assert db.exit_code == 0, db.output
    assert (tmp_path / "r3.csv").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"")
    bad = runner.invoke(app, ["reconcile", "run", str(broken), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "empty" in bad.output
    assert not (tmp_path / "x.csv").exists()
    wrong = runner.invoke(
        app, ["reconcile", "run", str(extract), "--out", str(out), "--column", "nope=x"]
    )
    assert wrong.exit_code == 2


def test_import_with_rejected_rows_has_its_own_exit_status(env: Engine, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    made = runner.invoke(
        app, ["synth", "population", "--people", "40", "--out", str(people), "--seed", "5"]
    )
    assert made.exit_code == 0, made.output
    lines = people.read_text(encoding="utf-8").splitlines(keepends=True)
    people.write_text("".join([*lines, lines[1]]), encoding="utf-8")  # a duplicate row
    loaded = runner.invoke(app, ["registry", "import", str(people), "--operator", "lan"])
    assert loaded.exit_code == EXIT_LOADED_WITH_REJECTIONS == 3, loaded.output
    assert "40 people loaded" in loaded.output and "1 rows rejected" in loaded.output
    with env.connect() as conn:
        actor = conn.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "registry.import")
        ).scalar_one()
    assert actor == "operator:lan"
    assert "3 loaded with rejections" in runner.invoke(app, ["registry", "import", "--help"]).output
