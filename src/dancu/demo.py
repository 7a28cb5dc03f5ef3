"""``dancu demo seed``: a ready-to-explore register for `make run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import func, select

from dancu.bootstrap import Container
from dancu.core.access import Role
from dancu.core.models import Officer
from dancu.core.officers import create_officer

console = Console()
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
DEMO_PASSWORD = "dancu-demo-2025"  # noqa: S105  (printed on purpose: demo databases only)
DEMO_OFFICERS = (
    ("admin", "Quản trị Bộ Công an", Role.MINISTRY, ""),
    ("hanoi", "Cán bộ Công an TP Hà Nội", Role.PROVINCE, "01"),
    ("badinh", "Cán bộ Công an phường Ba Đình", Role.COMMUNE, "00004"),
)


@demo_app.command("seed")
def demo_seed(
    people: Annotated[int, typer.Option(min=100, help="synthetic people")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 6,
) -> None:
    """Load a synthetic population and demo officers once (skipped when already seeded)."""
    from dancu.registry.bulk import import_population
    from dancu.registry.models import PersonCurrent
    from dancu.registry.synth import generate_population

    with Container() as container:
        with container.sessions() as session:
            present = session.scalar(select(func.count()).select_from(PersonCurrent)) or 0
        if not present:
            path = Path(container.settings.data_dir) / f"sample-{people}.parquet"
            if not path.exists():
                generate_population(people, seed, path)
            import_population(container.engine, path)
        with container.sessions() as session, session.begin():
            for username, name, role, unit in DEMO_OFFICERS:
                if session.scalar(select(Officer.id).where(Officer.username == username)) is None:
                    create_officer(
                        session, container.units, username, name, DEMO_PASSWORD, role, unit
                    )
        console.print(
            "[bold]demo officers[/bold] (password: "
            f"[cyan]{DEMO_PASSWORD}[/cyan]): "
            + ", ".join(f"{u} ({r.value}{' ' + c if c else ''})" for u, _, r, c in DEMO_OFFICERS)
        )
