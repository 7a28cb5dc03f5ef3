"""Identity commands: accounts for people of the register."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from dancu.bootstrap import Container
from dancu.core.errors import DancuError

console = Console()
identity_app = typer.Typer(help="Electronic identity accounts.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts (level 1 and 2).", no_args_is_help=True)
identity_app.add_typer(account_app, name="account")


@account_app.command("create")
def account_create(
    personal_id: str,
    phone: Annotated[str, typer.Option(help="mobile number, e.g. 0912345678")],
    passcode: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="6 digits (prompted if omitted)")
    ],
    level: Annotated[int, typer.Option(min=1, max=2, help="1 or 2")] = 2,
    email: Annotated[str, typer.Option(help="e-mail address")] = "",
) -> None:
    """Create an active account for a person of the register (demos, tests, pilots): no face
    check, SMS code or officer visit; eligibility by status and age still holds."""
    with Container() as container:
        try:
            account = container.identity.provision(personal_id, phone, passcode, level, email)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                console.print(f"[red]{field}: {error['msg'].removeprefix('Value error, ')}[/red]")
            raise typer.Exit(2) from None
        except DancuError as exc:
            console.print(f"[red]{exc.field + ': ' if exc.field else ''}{exc.message}[/red]")
            raise typer.Exit(1) from None
    console.print(
        f"account for {account.personal_id}: level {account.level}, {account.status}, "
        f"phone {account.phone_hint}"
    )


@account_app.command("show")
def account_show(personal_id: str) -> None:
    """An account's state and its latest events (sign-ins, lockouts, level changes)."""
    with Container() as container:
        try:
            account = container.identity.account(personal_id)
            events = container.identity.history(personal_id, limit=20)
        except DancuError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
    console.print_json(account.model_dump_json())
    for e in events:
        console.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.kind:22} {e.detail}")
