"""The engines that run the reconciliation pipeline's named SQL steps: DuckDB in-process (the
default, a laptop to a province) and Spark (``--engine spark``: local mode in tests, a cluster
URL for national extracts). Both run the same steps (``pipeline.py``); the SQL is written in
DuckDB's dialect and translated for Spark by sqlglot, and the Vietnamese normalisation is the
same dc_* functions defined in each engine (``normalize.py``).

Every step materialises one table and is recorded with a digest of its SQL and of everything
before it, in the same transaction (DuckDB, ``durable``) or by a marker written after the
table (Spark). A run that crashed resumes at the first step not recorded; a changed input or
a changed step changes the digests from there on, so nothing stale is reused (Splink's
``CTEPipeline`` and debug mode are the model: ``debug=True`` prints each step's SQL and row
count as it runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import duckdb
import pyarrow as pa

from dancu.reconcile.normalize import Dialect, definitions

EngineName = Literal["duckdb", "spark"]
StepProgress = Callable[[str, int, int], None]  # (step name, steps done, steps in all)


@dataclass(frozen=True)
class Step:
    """One named SQL step: a SELECT whose result becomes the table ``name``."""

    name: str
    sql: str
    doc: str = ""


@dataclass
class StepRun:
    name: str
    rows: int
    seconds: float
    reused: bool = False


@dataclass
class RunLog:
    steps: list[StepRun] = field(default_factory=list)

    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class Engine(Protocol):
    dialect: Dialect

    def load_parquet(self, name: str, path: Path, fingerprint: str) -> None: ...

    def load_rows(
        self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def run(self, steps: Sequence[Step], progress: StepProgress | None = None) -> RunLog: ...

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def export(
        self, sql: str, out: Path, fmt: Literal["csv", "parquet"], order_by: str = ""
    ) -> None: ...

    def close(self) -> None: ...


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def _publish(partial: Path, out: Path) -> None:
    """Make a finished file visible under its name in one step: readers never see half of it."""
    os.replace(partial, out)


class DuckDBEngine:
    """DuckDB in memory, with a memory limit and a spill folder in the work folder, so an
    extract of 10 million rows runs in bounded memory. ``durable=True`` keeps the steps'
    tables in a database file there instead, so that a crash resumes at the first unfinished
    step — at twice the run time (every table is written to disk), which is why it is not
    the default: a crashed run restarts its matching from the staged extract and the
    register files, which are kept."""

    dialect: Dialect = "duckdb"

    def __init__(
        self,
        work_dir: Path,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        debug: bool = False,
        durable: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir, self.debug, self.echo = work_dir, debug, echo
        self.con = duckdb.connect(str(work_dir / "work.duckdb") if durable else ":memory:")
        tmp = work_dir / "spill"
        tmp.mkdir(exist_ok=True)
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(f"SET temp_directory = '{tmp}'")
        # Row order is never relied on: every step that needs an order says so.
        self.con.execute("SET preserve_insertion_order = false")
        for statement in definitions("duckdb"):
            self.con.execute(statement)
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS _dancu_steps (name VARCHAR PRIMARY KEY, digest VARCHAR, "
            "rows BIGINT, seconds DOUBLE)"
        )
        self._chain = ""

    def load_parquet(self, name: str, path: Path, fingerprint: str) -> None:
        """Copy a Parquet input into the work database (once per fingerprint)."""
        sql = f"SELECT * FROM read_parquet('{_quote(path)}')"
        self._materialise(Step(name, sql), fingerprint)

    def load_rows(
        self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None:
        """A small reference table (units, parameters) given as rows."""
        fingerprint = _digest(json.dumps([list(columns), [list(r) for r in rows]], default=str))
        if self._recorded(name, self._next(fingerprint)):
            self._chain = self._next(fingerprint)
            return
        cols = ", ".join(f"{c} {t}" for c, t in columns)
        self.con.execute("BEGIN")
        self.con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        if rows:
            # Through Arrow: executemany inserts a row at a time.
            arrow = pa.table(
                {c: list(v) for (c, _t), v in zip(columns, zip(*rows, strict=True), strict=True)}
            )
            self.con.register("_rows", arrow)
            self.con.execute(f"INSERT INTO {name} SELECT * FROM _rows")
            self.con.unregister("_rows")
        self._record(name, self._next(fingerprint), len(rows), 0.0)
        self.con.execute("COMMIT")
        self._chain = self._next(fingerprint)

    def run(self, steps: Sequence[Step], progress: StepProgress | None = None) -> RunLog:
        log = RunLog()
        for i, step in enumerate(steps):
            if progress:
                progress(step.name, i, len(steps))
            log.steps.append(self._materialise(step, step.sql))
        if progress:
            progress("done", len(steps), len(steps))
        return log

    def _materialise(self, step: Step, identity: str) -> StepRun:
        digest = self._next(identity)
        if self._recorded(step.name, digest):
            self._chain = digest
            kept = self.con.execute(
                "SELECT rows FROM _dancu_steps WHERE name = ?", [step.name]
            ).fetchone()
            return StepRun(step.name, int(kept[0]) if kept else 0, 0.0, reused=True)
        started = time.perf_counter()
        if self.debug:
            self.echo(f"-- step {step.name}: {step.doc}\n{step.sql}")
        self.con.execute("BEGIN")
        self.con.execute(f"CREATE OR REPLACE TABLE {step.name} AS {step.sql}")
        found = self.con.execute(f"SELECT count(*) FROM {step.name}").fetchone()
        rows = int(found[0]) if found else 0
        seconds = time.perf_counter() - started
        self._record(step.name, digest, rows, seconds)
        self.con.execute("COMMIT")
        self._chain = digest
        if self.debug:
            self.echo(f"-- {step.name}: {rows:,} rows in {seconds:.2f} s")
        return StepRun(step.name, rows, seconds)

    def _next(self, identity: str) -> str:
        return _digest(self._chain, identity)

    def _recorded(self, name: str, digest: str) -> bool:
        found = self.con.execute(
            "SELECT 1 FROM _dancu_steps WHERE name = ? AND digest = ?", [name, digest]
        ).fetchone()
        return found is not None

    def _record(self, name: str, digest: str, rows: int, seconds: float) -> None:
        self.con.execute("DELETE FROM _dancu_steps WHERE name = ?", [name])
        self.con.execute(
            "INSERT INTO _dancu_steps VALUES (?, ?, ?, ?)", [name, digest, rows, seconds]
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def export(
        self, sql: str, out: Path, fmt: Literal["csv", "parquet"], order_by: str = ""
    ) -> None:
        """Write the rows of ``sql`` (ordered by ``order_by``) to one file, published under
        its name only once complete."""
        partial = out.with_name(out.name + ".partial")
        order = f" ORDER BY {order_by}" if order_by else ""
        self.con.execute(
            f"COPY (SELECT * FROM ({sql}) AS e{order}) TO '{_quote(partial)}' ({_options(fmt)})"
        )
        _publish(partial, out)

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """PySpark with the same steps: each step's result is written as Parquet in the work
    folder and read back as a view, which keeps Spark's plans short and makes a run
    resumable like DuckDB's. ``master`` is ``local[2]`` in tests, a cluster URL in
    production (the work folder must then be shared storage the executors can reach)."""

    dialect: Dialect = "spark"

    def __init__(
        self,
        work_dir: Path,
        *,
        master: str = "local[2]",
        debug: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        from pyspark.sql import SparkSession

        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir, self.debug, self.echo = work_dir, debug, echo
        self.tables = work_dir / "spark"
        self.tables.mkdir(exist_ok=True)
        self.spark = (
            SparkSession.builder.master(master)
            .appName("dancu-reconcile")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "8")
            # DuckDB semantics: a failed cast or an impossible date is NULL, not an error.
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", "1g")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        for statement in definitions("spark"):
            self.spark.sql(statement)
        self._chain = ""

    def _marker(self, name: str) -> Path:
        return self.tables / f"{name}.done"

    def _register(self, name: str) -> None:
        self.spark.read.parquet(str(self.tables / name)).createOrReplaceTempView(name)

    def load_parquet(self, name: str, path: Path, fingerprint: str) -> None:
        digest = _digest(self._chain, fingerprint)
        if not self._reuse(name, digest):
            df = self.spark.read.parquet(str(path))
            self._write(name, df, digest)
        self._chain = digest

    def load_rows(
        self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None:
        fingerprint = _digest(json.dumps([list(columns), [list(r) for r in rows]], default=str))
        digest = _digest(self._chain, fingerprint)
        if not self._reuse(name, digest):
            schema = ", ".join(f"{c} {_spark_type(t)}" for c, t in columns)
            df = self.spark.createDataFrame([tuple(r) for r in rows], schema=schema)
            self._write(name, df, digest)
        self._chain = digest

    def run(self, steps: Sequence[Step], progress: StepProgress | None = None) -> RunLog:
        from dancu.reconcile.spark_sql import to_spark

        log = RunLog()
        for i, step in enumerate(steps):
            if progress:
                progress(step.name, i, len(steps))
            digest = _digest(self._chain, step.sql)
            if self._reuse(step.name, digest):
                meta = json.loads(self._marker(step.name).read_text())
                log.steps.append(StepRun(step.name, int(meta["rows"]), 0.0, reused=True))
            else:
                started = time.perf_counter()
                sql = to_spark(step.sql)
                if self.debug:
                    self.echo(f"-- step {step.name}: {step.doc}\n{sql}")
                rows = self._write(step.name, self.spark.sql(sql), digest)
                seconds = time.perf_counter() - started
                log.steps.append(StepRun(step.name, rows, seconds))
                if self.debug:
                    self.echo(f"-- {step.name}: {rows:,} rows in {seconds:.2f} s")
            self._chain = digest
        if progress:
            progress("done", len(steps), len(steps))
        return log

    def _reuse(self, name: str, digest: str) -> bool:
        marker = self._marker(name)
        if marker.exists() and json.loads(marker.read_text()).get("digest") == digest:
            self._register(name)
            return True
        return False

    def _write(self, name: str, df: Any, digest: str) -> int:
        target, partial = self.tables / name, self.tables / f"{name}.partial"
        self._marker(name).unlink(missing_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        df.write.mode("overwrite").parquet(str(partial))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        self._register(name)
        rows = int(self.spark.table(name).count())
        self._marker(name).write_text(json.dumps({"digest": digest, "rows": rows}))
        return rows

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        from dancu.reconcile.spark_sql import to_spark

        return [tuple(r) for r in self.spark.sql(to_spark(sql)).collect()]

    def export(
        self, sql: str, out: Path, fmt: Literal["csv", "parquet"], order_by: str = ""
    ) -> None:
        """Spark writes the rows as Parquet parts; DuckDB streams them, in order, into one
        file, published under its name only once complete."""
        from dancu.reconcile.spark_sql import to_spark

        parts = self.tables / f"_export_{out.stem}"
        shutil.rmtree(parts, ignore_errors=True)
        self.spark.sql(to_spark(sql)).write.mode("overwrite").parquet(str(parts))
        order = f" ORDER BY {order_by}" if order_by else ""
        partial = out.with_name(out.name + ".partial")
        with duckdb.connect() as con:
            select = f"SELECT * FROM read_parquet('{_quote(parts)}/*.parquet')"
            con.execute(f"COPY ({select}{order}) TO '{_quote(partial)}' ({_options(fmt)})")
        _publish(partial, out)
        shutil.rmtree(parts, ignore_errors=True)

    def close(self) -> None:
        self.spark.stop()


def _options(fmt: Literal["csv", "parquet"]) -> str:
    return "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"


def _spark_type(duck: str) -> str:
    return {"VARCHAR": "STRING", "INTEGER": "INT", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE"}.get(
        duck.upper(), duck
    )


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


@contextmanager
def open_engine(
    name: EngineName,
    work_dir: Path,
    *,
    debug: bool = False,
    spark_master: str = "local[2]",
    memory_limit: str = "1GB",
    durable: bool = False,
    echo: Callable[[str], None] = print,
) -> Iterator[Engine]:
    engine: Engine
    if name == "spark":
        engine = SparkEngine(work_dir, master=spark_master, debug=debug, echo=echo)
    else:
        engine = DuckDBEngine(
            work_dir, memory_limit=memory_limit, debug=debug, durable=durable, echo=echo
        )
    try:
        yield engine
    finally:
        engine.close()
