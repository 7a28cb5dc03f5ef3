"""Registry commands: import, export, show, synthetic data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dancu.bootstrap import Container
from dancu.core.access import SYSTEM_CONTEXT
from dancu.core.errors import DancuError

console = Console()
registry_app = typer.Typer(help="The national population register.", no_args_is_help=True)
synth_app = typer.Typer(
    help="Synthetic data for demos, tests and benchmarks.", no_args_is_help=True
)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


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
    with Container() as container:
        try:
            with _progress() as progress:
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

    with Container() as container:
        with _progress() as progress:
            rows = export_population(
                container.engine, out, province_code=province, progress=_stage_callback(progress)
            )
        console.print(f"{rows:,} people written to {out}")


@registry_app.command("show")
def registry_show(
    personal_id: str,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD: the record as it was")] = None,
) -> None:
    """Print a person's record (audited as a system read)."""

    try:
        valid_on = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        console.print(f"[red]--as-of: {as_of!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    with Container() as container:
        try:
            person = container.registry.get_person(
                SYSTEM_CONTEXT, personal_id, valid_on=valid_on, purpose="cli-show"
            )
        except DancuError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
        console.print_json(person.model_dump_json())


@synth_app.command("population")
def synth_population(
    people: Annotated[int, typer.Option(min=1, help="how many people")] = 10_000,
    out: Annotated[Path, typer.Option(help="output .parquet or .csv")] = Path("population.parquet"),
    seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 6,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="reference 'today' YYYY-MM-DD (default: today)")
    ] = None,
) -> None:
    """Generate a realistic synthetic population file (names, households, ages, provinces)."""
    from dancu.registry.synth import generate_population

    try:
        reference = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        console.print(f"[red]--as-of: {as_of!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    try:
        with _progress() as progress:
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


@synth_app.command("extract")
def synth_extract(
    population: Annotated[Path, typer.Option(help="population file (.parquet or .csv)")],
    rows: Annotated[int, typer.Option(help="how many rows")] = 10_000,
    out: Annotated[Path, typer.Option(help="extract .csv, .parquet or .xlsx")] = Path(
        "extract.csv"
    ),
    truth: Annotated[
        Path | None, typer.Option(help="truth Parquet (default: OUT's stem + .truth.parquet)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same files)")] = 6,
    headers: Annotated[str, typer.Option(help="vi, vi-display or en")] = "vi",
    encoding: Annotated[str, typer.Option(help="CSV: utf-8, utf-8-sig, utf-16, cp1258")] = "utf-8",
    delimiter: Annotated[str, typer.Option(help="CSV: ',', ';' or 'tab'")] = ",",
    duplicate_keys: Annotated[
        float, typer.Option(metavar="SHARE", help="share of rows reusing an earlier agency key")
    ] = 0.0,
) -> None:
    """Generate an agency extract with realistic defects from a population file, and its
    ground truth (who each row is, the verdict reconciliation should give, the defects)."""
    from dancu.reconcile.synth import generate_extract

    if not population.is_file():
        console.print(f"[red]--population: {population} is not a file[/red]")
        raise typer.Exit(2)
    # The bar starts with the first report, once the options and the population are checked,
    # so that a bad option prints its message alone.
    progress, tasks = _progress(), list[TaskID]()

    def update(done: int, total: int) -> None:
        if not tasks:
            progress.start()
            tasks.append(progress.add_task("rows", total=total))
        progress.update(tasks[0], completed=done)

    try:
        stats = generate_extract(
            population,
            rows,
            out,
            truth=truth,
            seed=seed,
            headers=headers,
            encoding=encoding,
            delimiter="\t" if delimiter.lower() in ("tab", "\\t") else delimiter,
            duplicate_keys=duplicate_keys,
            progress=update,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        if tasks:
            progress.stop()
    verdicts = ", ".join(f"{v} {n:,}" for v, n in stats.verdicts.items() if n)
    console.print(
        f"{stats.rows:,} rows written to {stats.out} ({verdicts}); truth in {stats.truth}"
    )
