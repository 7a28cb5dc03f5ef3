"""Registry commands: import, export, show, synthetic data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    Progress,
    TaskID,
)

from dancu.core.access import SYSTEM_CONTEXT
from dancu.core.cli import progress_bar
from dancu.core.errors import DancuError
from dancu.registry.deps import open_registry

console = Console()
registry_app = typer.Typer(help="The national population register.", no_args_is_help=True)


def _stage_callback(progress: Progress) -> Callable[[str, int, int | None], None]:
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return update


# Exit statuses of ``dancu registry import`` (docs/operations.md, "Bulk import").
EXIT_FILE_REFUSED = 2  # the file as a whole cannot be imported; nothing was written
EXIT_LOADED_WITH_REJECTIONS = 3  # the good rows are loaded, some rows were rejected


@registry_app.command("import")
def registry_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")],
    errors: Annotated[
        Path | None, typer.Option(help="error report (default FILE.errors.csv)")
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option(help="who runs the import, for the audit (default: the system user)"),
    ] = None,
) -> None:
    """Load a population file (docs/formats.md). Streams the file, validates every row,
    reports bad rows with line numbers, and resumes after a crash without duplicates.
    The job is recorded in the audit (file name, SHA-256, counts, operator).

    Exit status: 0 every row loaded (or the file was already imported); 2 the file was
    refused as a whole and nothing was written; 3 loaded with rejections (the rejected rows
    are in the error report).
    """
    import getpass

    from dancu.core.audit import Actor
    from dancu.registry.bulk.load import import_population

    who = operator or getpass.getuser()
    actor = Actor(f"operator:{who}", "operator", "", "bulk-import")
    with open_registry() as container:
        try:
            with progress_bar(console) as progress:
                report = import_population(
                    container.engine,
                    file,
                    progress=_stage_callback(progress),
                    error_path=errors,
                    actor=actor,
                )
        except DancuError as exc:
            console.print(f"[red]{file.name}: {exc.message}[/red] (nothing was imported)")
            raise typer.Exit(EXIT_FILE_REFUSED) from None
        console.print(report.summary())
        if report.rejected and not report.already_done:
            console.print(f"[yellow]{report.rejected:,} rows rejected; see {report.error_path}")
            raise typer.Exit(EXIT_LOADED_WITH_REJECTIONS)


@registry_app.command("export")
def registry_export(
    out: Annotated[Path, typer.Option(help="output .csv or .parquet")],
    province: Annotated[str | None, typer.Option(help="2025 province code, e.g. 01")] = None,
) -> None:
    """Write the current register in the population-file format (streaming)."""
    from dancu.registry.bulk.export import export_population

    with open_registry() as container:
        with progress_bar(console) as progress:
            rows = export_population(
                container.engine, out, province_code=province, progress=_stage_callback(progress)
            )
        console.print(f"{rows:,} people written to {out}")


def _as_of_date(as_of: str | None) -> date | None:
    """The ``--as-of`` option as a date (None when not given); exit 2 when it is not one."""
    try:
        return date.fromisoformat(as_of) if as_of else None
    except ValueError:
        console.print(f"[red]--as-of: {as_of!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


@registry_app.command("show")
def registry_show(
    personal_id: str,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD: the record as it was")] = None,
) -> None:
    """Print a person's record (audited as a system read)."""

    valid_on = _as_of_date(as_of)
    with open_registry() as container:
        try:
            person = container.registry.get_person(
                SYSTEM_CONTEXT, personal_id, valid_on=valid_on, purpose="cli-show"
            )
        except DancuError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
        console.print_json(person.model_dump_json())


def synth_population(
    people: Annotated[int, typer.Option(min=1, help="how many people")] = 10_000,
    out: Annotated[Path, typer.Option(help="output .parquet or .csv")] = Path("population.parquet"),
    seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 6,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="reference 'today' YYYY-MM-DD (default: today)")
    ] = None,
) -> None:
    """Generate a realistic synthetic population file (names, households, ages, provinces)."""
    from dancu.registry.synth_population import generate_population

    reference = _as_of_date(as_of)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task("people", total=people)
            generate_population(
                people,
                seed,
                out,
                as_of=reference,
                progress=lambda done, total: progress.update(task, completed=done),
            )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{people:,} people written to {out}")
