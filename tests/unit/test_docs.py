"""Documentation keeps up with the code (Datasette's habit): every setting and every CLI
command is documented in docs/operations.md."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.main import get_command

from dancu.cli import app
from dancu.core.settings import Settings

OPERATIONS = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"DANCU_{name.upper()}"
        for name in Settings.model_fields
        if f"`DANCU_{name.upper()}`" not in OPERATIONS
    ]
    assert not missing, f"undocumented settings: {missing}"


def _commands(group: typer.Typer) -> list[str]:
    click_group = get_command(group)
    out = []
    for name, cmd in click_group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        out += [f"dancu {name} {sub}" for sub in subs] if subs else [f"dancu {name}"]
    return out


def test_every_cli_command_is_documented() -> None:
    missing = [c for c in _commands(app) if f"`{c}`" not in OPERATIONS]
    assert not missing, f"undocumented commands: {missing}"
