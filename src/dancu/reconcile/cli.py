"""``dancu reconcile …``: reconcile an agency's extract against the register from the command
line (``run``), run the server's queued jobs (``worker``), find the register's likely
duplicates (``dedupe``)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dancu.core.cli import progress_bar
from dancu.core.errors import DancuError
from dancu.core.settings import Settings
from dancu.reconcile.columns import ColumnMapping
from dancu.reconcile.deps import open_reconcile
from dancu.reconcile.engine import EngineName
from dancu.reconcile.fields import FIELDS, VERDICTS
from dancu.reconcile.sources import RegisterFiles

console = Console(stderr=True)
stdout = Console()  # what a command makes, on standard output
reconcile_app = typer.Typer(
    help="Reconcile sector databases against the population register.", no_args_is_help=True
)

_STAGES = {
    "read": "reading the extract",
    "register": "the register",
    "match": "matching",
    "write": "writing results",
}


def _register(registry: str | None, settings: Settings, purpose: str) -> RegisterFiles:
    """The register to reconcile against: a population file, another dancu database, or
    (by default) the configured one."""
    if registry and not registry.startswith(("postgresql", "sqlite")):
        from dancu.reconcile.sources import population_register

        path = Path(registry)
        if not path.exists():
            raise DancuError(f"--registry: no file {registry}", "registry")
        return population_register(path, settings.data_dir / "reconcile" / "register")
    chosen = settings.model_copy(update={"database_url": registry}) if registry else settings
    with open_reconcile(chosen) as container:
        return container.reconcile.register_files(purpose)


@reconcile_app.command("run")
def reconcile_run(
    extract: Annotated[Path, typer.Argument(help="the agency's file: CSV, Parquet or Excel")],
    out: Annotated[Path, typer.Option(help="result file, .csv or .parquet")],
    registry: Annotated[
        str | None,
        typer.Option(help="a population file (CSV/Parquet) or a database URL; default: dancu's"),
    ] = None,
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark")] = "duckdb",
    spark_master: Annotated[str, typer.Option(help="Spark master URL")] = "local[2]",
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column", help="FIELD=HEADER, overriding the recognised column (repeatable)"
        ),
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="work folder (default: beside the result); a rerun resumes")
    ] = None,
    durable: Annotated[
        bool, typer.Option(help="keep every step on disk, so a rerun resumes at its step (slower)")
    ] = False,
    debug: Annotated[bool, typer.Option(help="print each step's SQL and row count")] = False,
    keep_work: Annotated[bool, typer.Option(help="keep the work folder afterwards")] = False,
) -> None:
    """Reconcile EXTRACT against the register: one verdict per row in OUT, a correction file
    and a summary beside it. An interrupted run started again reuses what it had finished: the
    staged file and the register (with --durable, every step)."""
    from dancu.reconcile import runner

    if engine not in ("duckdb", "spark"):
        console.print("[red]--engine: duckdb or spark[/red]")
        raise typer.Exit(2)
    mapping = _columns(column or [])
    settings = Settings()
    outputs = runner.Outputs.beside(out)
    work_dir = work or out.with_name(out.name + ".work")
    purpose = f"reconciliation:cli:{extract.name}"
    try:
        with _progress() as progress:
            tasks: dict[str, TaskID] = {}

            def tick(stage: str, done: int, total: int, detail: str) -> None:
                if stage == "done":
                    return
                if stage not in tasks:
                    for other in tasks.values():
                        task = progress.tasks[other]
                        progress.update(other, completed=task.total or 1, total=task.total or 1)
                    tasks[stage] = progress.add_task(_STAGES.get(stage, stage), total=None)
                shown = {"match": f"{detail} ({done}/{total})", "read": f"{done:,} rows"}
                progress.update(
                    tasks[stage],
                    completed=done,
                    total=total or None,
                    description=f"{_STAGES.get(stage, stage)} {shown.get(stage, '')}".strip(),
                )

            summary = runner.run(
                extract,
                lambda: _register(registry, settings, purpose),
                outputs,
                work_dir,
                mapping=mapping,
                engine=_engine(engine),
                debug=debug,
                durable=durable,
                spark_master=spark_master,
                progress=tick,
                echo=lambda text: console.print(text, markup=False, highlight=False),
                columns=lambda found: _show_columns(extract.name, found),
            )
    except DancuError as exc:
        console.print(f"[red]{exc.field + ': ' if exc.field else ''}{exc.message}[/red]")
        raise typer.Exit(2) from None
    if not keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    table = Table(title=f"{summary.rows:,} rows of {extract.name}")
    table.add_column("verdict")
    table.add_column("rows", justify="right")
    for verdict in VERDICTS:
        table.add_row(verdict, f"{summary.verdicts.get(verdict, 0):,}")
    Console().print(table)
    console.print(
        f"results: {outputs.result}; corrections: {outputs.corrections}; "
        f"summary: {outputs.summary} ({sum(summary.seconds.values()):.1f} s)"
    )


# How a column was found, as the run prints it (the upload page says the same in its words).
_FOUND_BY = {
    "given": "--column",
    "profile": "as last time",
    "exact": "its header",
    "prefix": "the start of its header (check it)",
    "values": "its values (check it)",
}
_DETAILS = {"given_first": "names written given name first", "family_first": ""}


def _show_columns(name: str, found: ColumnMapping) -> None:
    """Which column the run takes for each field and how it was found, the fields left out
    because two columns fit them, and the columns not used."""
    out = Text(f"columns of {name} (field ← column: found by):\n")
    width = max(map(len, FIELDS))
    for field, header in found.fields.items():
        how = _FOUND_BY.get(found.sources.get(field, ""), "")
        detail = _DETAILS.get(found.details.get(field, ""), "")
        out.append(f"  {field:<{width}} ← {header}: {how}{'; ' + detail if detail else ''}\n")
    for field, fitting in found.ambiguous.items():
        either = " or ".join(repr(c) for c in fitting)
        out.append(
            f"  {field:<{width}} ? {either}: both fit, so neither is taken; choose with "
            f"--column {field}=HEADER\n",
            style="yellow",
        )
    candidates = {h for headers in found.ambiguous.values() for h in headers}
    unused = [h for h in found.unmapped if h not in candidates]
    if unused:
        out.append(f"  not used: {', '.join(unused)}\n")
    console.print(out, end="")


def _engine(name: str) -> EngineName:
    return "spark" if name == "spark" else "duckdb"


def _columns(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, header = pair.partition("=")
        if not sep or field not in FIELDS:
            console.print(f"[red]--column {pair!r}: FIELD=HEADER, FIELD one of {', '.join(FIELDS)}")
            raise typer.Exit(2)
        mapping[field] = header
    return mapping


@reconcile_app.command("worker")
def reconcile_worker(
    once: Annotated[bool, typer.Option(help="run the queued jobs, then stop")] = False,
) -> None:
    """Run the reconciliation jobs sent through the web pages and the API (a server started
    with DANCU_RECONCILE_WORKER=false leaves them to this command)."""
    with open_reconcile() as container:
        service = container.reconcile
        if once:
            worker = "cli-once"
            while (job_id := service.claim(worker)) is not None:
                service.run_job(job_id, worker)
                console.print(f"job {job_id}: {service.job_status(job_id)}")
            return
        stop = threading.Event()
        console.print("reconciliation worker running; Ctrl-C stops it")
        try:
            service.work(stop)
        except KeyboardInterrupt:
            stop.set()


@reconcile_app.command("dedupe")
def reconcile_dedupe() -> None:
    """Find likely duplicate people in the register and add them to the officers' review
    list (/reconcile/duplicates); pairs already listed are kept as they are."""
    from dancu.core.access import SYSTEM_CONTEXT

    with open_reconcile() as container:
        added = container.reconcile.dedupe(SYSTEM_CONTEXT)
        waiting = len(container.reconcile.duplicates(SYSTEM_CONTEXT, limit=100_000))
    console.print(f"{added:,} new likely duplicate pairs; {waiting:,} waiting for review")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )


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
    from dancu.reconcile.synth_extract import generate_extract

    if not population.is_file():
        stdout.print(f"[red]--population: {population} is not a file[/red]")
        raise typer.Exit(2)
    # The bar starts with the first report, once the options and the population are checked,
    # so that a bad option prints its message alone.
    progress, tasks = progress_bar(stdout), list[TaskID]()

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
        stdout.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        if tasks:
            progress.stop()
    verdicts = ", ".join(f"{v} {n:,}" for v, n in stats.verdicts.items() if n)
    stdout.print(f"{stats.rows:,} rows written to {stats.out} ({verdicts}); truth in {stats.truth}")
