"""No traceback reaches a user for an expected condition: each command given a missing file
or folder, an unreachable database or a wrong URL says what is wrong in one line on stderr
and exits non-zero (the entry point's handler, run as the real ``dancu`` process); a real
bug still shows its traceback. ``dancu demo seed`` creates a data folder that does not exist
and says how many people the register holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def dancu(*args: str, data: Path, url: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DANCU_DATA_DIR": str(data),
        "DANCU_DATABASE_URL": url,
        "DANCU_SECRET_KEY": "cli-errors-secret",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "dancu", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dancu: ")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "show", "001090000001"),
        ("registry", "export", "--out", "x.csv"),
        ("db", "upgrade"),
        ("audit", "verify"),
        ("identity", "client", "list"),
    ],
)
def test_an_unreachable_database_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    one_line_error(dancu(*args, data=tmp_path, url=UNREACHABLE), "DANCU_DATABASE_URL", "refused")


def test_a_wrong_database_url_is_one_line(tmp_path: Path) -> None:
    result = dancu("registry", "show", "001090000001", data=tmp_path, url="nonsense://x")
    one_line_error(result, "DANCU_DATABASE_URL", "nonsense")


def test_missing_files_and_folders_are_one_line(tmp_path: Path) -> None:
    nowhere = tmp_path / "no" / "such"
    one_line_error(
        dancu(
            "synth",
            "population",
            "--people",
            "10",
            "--out",
            str(nowhere / "p.parquet"),
            data=tmp_path,
        ),
        "no such file or folder",
    )
    assert dancu("db", "upgrade", data=tmp_path).returncode == 0
    one_line_error(dancu("demo", "seed", data=tmp_path / "empty"), "dancu db upgrade")
    one_line_error(
        dancu(
            "reconcile",
            "run",
            str(tmp_path / "missing.csv"),
            "--out",
            str(tmp_path / "o.csv"),
            data=tmp_path,
        ),
        "missing.csv",
    )
    one_line_error(
        dancu("registry", "export", "--out", str(nowhere / "x.csv"), data=tmp_path),
        "no such file or folder",
    )


def test_demo_seed_creates_its_folder_and_counts_the_register(tmp_path: Path) -> None:
    data, url = tmp_path / "new" / "var", f"sqlite:///{tmp_path / 'demo.db'}"
    assert dancu("db", "upgrade", data=tmp_path, url=url).returncode == 0
    first = dancu("demo", "seed", "--people", "100", data=data, url=url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    assert "loaded now" in first.stdout and "register" in first.stdout
    again = dancu("demo", "seed", "--people", "100", data=data, url=url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already there" in again.stdout


def test_a_real_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from dancu import cli

    def broken() -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main()
