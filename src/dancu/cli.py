"""The ``dancu`` command."""

from __future__ import annotations

from typing import Annotated

import typer

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


def main() -> None:
    app()
