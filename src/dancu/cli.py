"""The ``dancu`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from dancu.bootstrap import Container
from dancu.core import deps
from dancu.core.cli import audit_app, db_app, officer_app, outbox_app
from dancu.demo import demo_app
from dancu.identity.cli import identity_app
from dancu.reconcile.cli import reconcile_app
from dancu.registry.cli import registry_app, synth_app

app = typer.Typer(
    help="dancu: national population registry, electronic identity, reconciliation.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    # The composition root: every command opens its container through this factory
    # (``dancu.core.deps.open_container``); no context imports the container itself.
    deps.provide(Container)


app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(synth_app, name="synth")
app.add_typer(audit_app, name="audit")
app.add_typer(officer_app, name="officer")
app.add_typer(outbox_app, name="outbox")
app.add_typer(identity_app, name="identity")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(demo_app, name="demo")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the web app and the API (OpenAPI at /docs)."""
    import uvicorn

    from dancu.core import logs

    logs.configure()
    print(f"dancu on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")  # noqa: T201
    uvicorn.run(
        "dancu.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=True,
    )


def _one_line(exc: BaseException) -> str:
    """What went wrong, in one line, for a condition a user can fix (no traceback)."""
    import sqlalchemy.exc

    from dancu.core.errors import DancuError

    if isinstance(exc, DancuError):
        return exc.message
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        if "no such table" in first or ("relation" in first and "does not exist" in first):
            return f"the database has no dancu schema yet; run `dancu db upgrade` ({first})"
        return f"cannot use the database (check DANCU_DATABASE_URL): {first}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError):
        return f"DANCU_DATABASE_URL is not a database URL dancu can use: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file or folder: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return f"{exc.strerror}: {exc.filename or exc}"
    return str(exc)


def expected_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean the user's input or environment is wrong, not dancu: a
    missing or unreadable file or folder, an unreachable database or a wrong URL, and the
    project's own domain errors. Anything else is a bug and keeps its traceback."""
    import psycopg
    import sqlalchemy.exc

    from dancu.core.errors import DancuError

    return (
        DancuError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.ArgumentError,
        psycopg.OperationalError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    )


def main() -> None:
    """The ``dancu`` entry point: expected conditions become one line on stderr and exit
    status 1 (docs/operations.md); a real bug still shows its traceback."""
    import sys

    try:
        app()
    except expected_errors() as exc:
        print(f"dancu: {_one_line(exc)}", file=sys.stderr)  # noqa: T201
        sys.exit(1)
