"""Core commands: database schema, audit verification, officer accounts."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dancu.core import audit, migrate
from dancu.core.access import Role
from dancu.core.deps import CoreNeeds, open_container
from dancu.core.errors import DancuError
from dancu.core.models import Officer
from dancu.core.officers import context_for, create_officer

console = Console()
db_app = typer.Typer(help="Database schema and reference data.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
outbox_app = typer.Typer(help="Domain events waiting to be published.", no_args_is_help=True)
officer_app = typer.Typer(help="Registry officer accounts.", no_args_is_help=True)


def progress_bar(console: Console) -> Progress:
    """The progress bar of a long command (a load, an export, a generation)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision and load reference data."""
    with open_container() as container:
        loaded = migrate.upgrade(container.engine)
        console.print(
            f"schema at head; {loaded:,} reference rows loaded"
            if loaded
            else "schema at head; reference data already present"
        )


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree (run in CI)."""
    with open_container() as container:
        migrate.upgrade(container.engine)
        drift = migrate.check(container.engine)
        if drift:
            console.print(f"[red]models and migrations disagree:[/red] {drift}")
            raise typer.Exit(1)
        console.print("models and migrations agree")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every audit chain and report any edited, inserted or deleted entry."""
    with open_container() as container, container.sessions() as session:
        report = audit.verify(session, container.settings.resolved_secret_key)
        for problem in report.problems:
            console.print(f"[red]{problem}[/red]")
        console.print(
            f"{report.entries:,} entries in {report.chains:,} chains: "
            + ("[green]intact[/green]" if report.ok else "[red]TAMPERED[/red]")
        )
        if not report.ok:
            raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the head of every audit chain (run periodically, e.g. every few minutes)."""
    with open_container() as container, container.sessions() as session, session.begin():
        signed = audit.checkpoint(session, container.settings.resolved_secret_key)
    console.print(f"{signed:,} chain heads signed")


@officer_app.command("create")
def officer_create(
    username: str,
    role: Annotated[
        Role,
        typer.Option(help="commune_officer, province_officer, ministry_admin or agency_officer"),
    ],
    unit: Annotated[
        str,
        typer.Option(
            help="2025 commune code (commune officer) or province code (province officer)"
        ),
    ] = "",
    agency: Annotated[
        str, typer.Option(help="agency code of an agency officer (bhxh, gdt, a bank...)")
    ] = "",
    full_name: Annotated[str, typer.Option(help="display name")] = "",
    password: Annotated[str | None, typer.Option(help="omit to be asked")] = None,
) -> None:
    """Create an officer account scoped to a unit, or an agency's officer (reconciliation)."""
    with open_container() as container:
        secret = password or getpass.getpass("password: ")
        try:
            with container.sessions() as session, session.begin():
                create_officer(
                    session,
                    container.units,
                    username,
                    full_name or username,
                    secret,
                    role,
                    unit,
                    agency=agency,
                )
        except DancuError as exc:
            console.print(f"[red]{exc.field or 'error'}: {exc.message}[/red]")
            raise typer.Exit(2) from None
        console.print(f"officer {username} created")


@officer_app.command("token")
def officer_token(username: str) -> None:
    """Print an 8-hour API bearer token for an officer (for scripts and benchmarks)."""
    with open_container() as container, container.sessions() as session:
        officer = session.query(Officer).filter_by(username=username).one_or_none()
        if officer is None:
            console.print(f"[red]no officer {username}[/red]")
            raise typer.Exit(2)
        print(container.tokens.issue(context_for(officer, container.units)))  # noqa: T201


@outbox_app.command("relay")
def outbox_relay(
    once: Annotated[bool, typer.Option(help="publish what is waiting, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls when idle")] = 1.0,
) -> None:
    """Publish outbox events to NATS JetStream (message id = outbox id), exactly once."""
    import asyncio

    async def main(container: CoreNeeds) -> None:
        relay = container.outbox_relay()
        try:
            if once:
                total = 0
                while published := await relay.relay_once():
                    total += published
                console.print(f"{total:,} events published")
            else:
                await relay.run(interval)
        finally:
            await relay.publisher.close()

    with open_container() as container:
        asyncio.run(main(container))
