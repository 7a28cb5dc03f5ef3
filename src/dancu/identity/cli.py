"""Identity commands: accounts for people of the register."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from dancu.core.errors import DancuError
from dancu.identity.clients import OPERATOR, ClientRegistration
from dancu.identity.deps import open_identity
from dancu.identity.usecases.officer_actions import SUSPENSION_REASONS

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
    with open_identity() as container, _refusals(validation=True):
        account = container.identity.provision(personal_id, phone, passcode, level, email)
    console.print(
        f"account for {account.personal_id}: level {account.level}, {account.status}, "
        f"phone {account.phone_hint}"
    )


@account_app.command("show")
def account_show(personal_id: str) -> None:
    """An account's state and its latest events (sign-ins, lockouts, level changes)."""
    with open_identity() as container, _refusals(field=False):
        account = container.identity.account(personal_id)
        events = container.identity.history(personal_id, limit=20)
    console.print_json(account.model_dump_json())
    for e in events:
        console.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.kind:22} {e.detail}")


@account_app.command("suspend")
def account_suspend(
    personal_id: str,
    reason: Annotated[str, typer.Option(help=f"one of: {', '.join(SUSPENSION_REASONS)}")],
    note: Annotated[str, typer.Option(help="what was reported, by whom")] = "",
) -> None:
    """Suspend an account on a report: sign-in stops, sessions and refresh tokens end."""
    with open_identity() as container, _refusals():
        account = container.identity.suspend_reported(OPERATOR, personal_id, reason, note)
    console.print(f"account for {account.personal_id}: {account.status} ({reason})")


@account_app.command("reinstate")
def account_reinstate(
    personal_id: str,
    note: Annotated[
        str, typer.Option(help="why the suspension ends")
    ] = "reinstated by the operator",
) -> None:
    """Lift a suspension (never one for a death, nor for a person not alive in the register)."""
    with open_identity() as container, _refusals():
        account = container.identity.reinstate(OPERATOR, personal_id, note)
    console.print(f"account for {account.personal_id}: {account.status}")


client_app = typer.Typer(help="Relying parties and agency systems.", no_args_is_help=True)
keys_app = typer.Typer(help="The provider's signing keys.", no_args_is_help=True)
identity_app.add_typer(client_app, name="client")
identity_app.add_typer(keys_app, name="keys")


@client_app.command("add")
def client_add(
    name: str,
    purpose: Annotated[
        str, typer.Option(help="why it asks for data, in Vietnamese (shown to citizens)")
    ],
    jwks: Annotated[Path | None, typer.Option(help="JWKS file with its public keys")] = None,
    jwks_uri: Annotated[str, typer.Option(help="or the URL of its JWKS")] = "",
    secret: Annotated[bool, typer.Option(help="client_secret_basic instead of keys")] = False,
    redirect_uri: Annotated[list[str] | None, typer.Option(help="exact redirect URI")] = None,
    grant: Annotated[list[str] | None, typer.Option(help="grant type (repeatable)")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="scope it may ask for")] = None,
    claim: Annotated[list[str] | None, typer.Option(help="sensitive claim granted")] = None,
    client_id: Annotated[str | None, typer.Option(help="a chosen client id")] = None,
    purpose_en: Annotated[str, typer.Option(help="the purpose in English (English pages)")] = "",
) -> None:
    """Register a client. With --secret its secret is printed once and never again."""
    try:
        document = json.loads(jwks.read_text()) if jwks else None
    except (OSError, ValueError) as exc:
        console.print(f"[red]--jwks: {exc}[/red]")
        raise typer.Exit(2) from None
    with open_identity() as container, _refusals(validation=True):
        out = container.clients.register(
            ClientRegistration(
                name=name,
                purpose=purpose,
                purpose_en=purpose_en,
                client_id=client_id,
                auth_method="client_secret_basic" if secret else "private_key_jwt",
                jwks=document,
                jwks_uri=jwks_uri,
                redirect_uris=redirect_uri or [],
                grant_types=grant or ["client_credentials"],
                scopes=scope or ["registry.lookup"],
                claims=claim or [],
            )
        )
    console.print(f"client_id: {out.client_id}")
    if out.client_secret:
        console.print(f"client_secret (shown once): {out.client_secret}")


@client_app.command("list")
def client_list() -> None:
    """The registered clients."""
    with open_identity() as container:
        for c in container.clients.list():
            state = "disabled" if c.disabled_at else "active"
            console.print(
                f"{c.client_id:24} {state:9} {c.auth_method:20} {' '.join(c.grant_types):40} "
                f"{c.name}"
            )


@client_app.command("disable")
def client_disable(client_id: str) -> None:
    """Stop a client: no more sign-ins or tokens (tokens already issued run out)."""
    _set_disabled(client_id, True)


@client_app.command("enable")
def client_enable(client_id: str) -> None:
    """Let a disabled client sign citizens in and obtain tokens again."""
    _set_disabled(client_id, False)


def _set_disabled(client_id: str, disabled: bool) -> None:
    with open_identity() as container, _refusals(field=False):
        out = container.clients.set_disabled(client_id, disabled, OPERATOR)
    console.print(f"{out.client_id}: {'disabled' if out.disabled_at else 'active'}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Sign with a new key from now; the old key stays published until its tokens expire."""
    with open_identity() as container:
        kid = container.keyring.rotate()
    console.print(f"signing with key {kid}")


@contextmanager
def _refusals(*, field: bool = True, validation: bool = False) -> Iterator[None]:
    """A refusal ends the command: its message in red (after the field at fault, with
    ``field``) and exit status 1; with ``validation``, malformed input is listed field by
    field and the status is 2."""
    try:
        yield
    except ValidationError as exc:
        if not validation:
            raise
        _print_validation(exc)
        raise typer.Exit(2) from None
    except DancuError as exc:
        at = exc.field + ": " if field and exc.field else ""
        console.print(f"[red]{at}{exc.message}[/red]")
        raise typer.Exit(1) from None


def _print_validation(exc: ValidationError) -> None:
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        console.print(f"[red]{field}: {error['msg'].removeprefix('Value error, ')}[/red]")
