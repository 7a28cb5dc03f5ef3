"""Person lookup benchmark (``python -m bench lookup``).

``GET /api/v1/persons/{personal_id}`` over HTTP with an officer bearer token, on a PostgreSQL
register of ``BENCH_LOOKUP_PEOPLE`` people (default 1,000,000), every read audited durably (the
audit row is committed before the response leaves). Served by uvicorn with
``BENCH_LOOKUP_WORKERS`` workers (default 2, no access log, uvloop/httptools when installed) and
loaded by ``wrk`` (Debian package, installed when missing) with a Lua script picking random IDs,
64 connections, 2 threads, 20 s after a 5 s warm-up.

Targets: >= 2,500 requests/s with p99 <= 50 ms, and >= 0.8x the throughput of a minimal
*unaudited* FastAPI endpoint (``minimal_app`` below: a psycopg pool and one SELECT of the
person_current row by personal_id), served and loaded the same way in the same run.

The loaded database (``dancu_bench_lookup_1m`` for 1,000,000 people) is kept between runs,
because importing takes minutes; it is reused when it holds the expected number of people.
Audit rows written by the benchmark are deleted again after the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench import data_files, load  # noqa: E402
from bench.load import ensure_wrk, free_port, uvicorn_command  # noqa: E402

PG_ADMIN = os.environ.get("DANCU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PEOPLE = int(os.environ.get("BENCH_LOOKUP_PEOPLE", "1000000"))
WORKERS = int(os.environ.get("BENCH_LOOKUP_WORKERS", "2"))
DURATION_S = int(os.environ.get("BENCH_LOOKUP_SECONDS", "20"))
WARMUP_S = 5
CONNECTIONS = load.CONNECTIONS
THREADS = load.THREADS
SAMPLE_IDS = 100_000
TARGET_RPS = 2500.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.8
BENCH_ACTOR = "bench-lookup"

_LUA = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  return wrk.format("GET", "%(prefix)s" .. ids[math.random(#ids)])
end
"""


# -- the register ---------------------------------------------------------------------------


def _db_name(people: int) -> str:
    return "dancu_bench_lookup_1m" if people == 1_000_000 else f"dancu_bench_lookup_{people}"


def _dsn(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _sa_url(name: str) -> str:
    return "postgresql+psycopg://" + _dsn(name).split("://", 1)[1]


def _loaded(name: str) -> int:
    """People in ``name``'s person_current once an import finished, else -1."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            return -1
    try:
        with psycopg.connect(_dsn(name)) as conn:
            done = conn.execute("SELECT count(*) FROM import_job WHERE status = 'done'").fetchone()
            if not done or not done[0]:
                return -1
            row = conn.execute("SELECT count(*) FROM person_current").fetchone()
            return int(row[0]) if row else -1
    except psycopg.Error:
        return -1


def population_file(people: int) -> Path:
    """The benchmark's population file (seed 7), generated once into bench/data/."""
    return data_files.population_file(f"lookup-population-{people}.parquet", people, 7)


def prepare(people: int = PEOPLE) -> tuple[str, float | None]:
    """The loaded register's database name, and the import's seconds if it was loaded now.
    A database that holds fewer than 99 % of the people (a failed or partial load) is
    dropped and loaded again."""
    from dancu.core import migrate
    from dancu.core.db import make_engine
    from dancu.registry.bulk.load import import_population

    name = _db_name(people)
    if _loaded(name) >= people * 0.99:
        return name, None
    path = population_file(people)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_sa_url(name))
    try:
        migrate.upgrade(engine)
        start = time.perf_counter()
        errors = Path(tempfile.gettempdir()) / f"{name}.errors.csv"
        import_population(engine, path, error_path=errors)
        seconds = time.perf_counter() - start
        errors.unlink(missing_ok=True)
    finally:
        engine.dispose()
    with psycopg.connect(_dsn(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    loaded = _loaded(name)
    if loaded < people * 0.99:
        raise RuntimeError(f"{name}: only {loaded} people loaded of {people}")
    return name, seconds


def sample_ids(name: str, path: Path, count: int = SAMPLE_IDS) -> int:
    """Write ``count`` random personal IDs of living-or-not people to ``path``."""
    with psycopg.connect(_dsn(name)) as conn:
        rows = conn.execute(
            "SELECT personal_id FROM person_current TABLESAMPLE SYSTEM (20) LIMIT %s", [count]
        ).fetchall()
        if len(rows) < count:
            rows = conn.execute(
                "SELECT personal_id FROM person_current ORDER BY random() LIMIT %s", [count]
            ).fetchall()
    path.write_text("".join(f"{r[0]}\n" for r in rows))
    return len(rows)


# -- the minimal unaudited baseline app -----------------------------------------------------


def minimal_app() -> Any:
    """A minimal FastAPI app: a psycopg pool and one SELECT of the person_current row by
    personal_id, no auth, no audit. Served with ``uvicorn --factory``;
    ``BENCH_LOOKUP_DSN`` names the database."""
    from fastapi import FastAPI, HTTPException
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        os.environ["BENCH_LOOKUP_DSN"], min_size=4, max_size=16, open=False, kwargs={}
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/persons/{personal_id}")
    async def get_person(personal_id: str) -> dict[str, Any]:
        async with pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT person_id, personal_id, full_name, birth_date, sex, status,"
                " household_id, province_code, commune_code, updated_at"
                " FROM person_current WHERE personal_id = %s",
                [personal_id],
            )
            row = await cur.fetchone()
        if row is None:
            raise HTTPException(404, "no person with this ID number")
        return row

    return app


# -- serving and loading ----------------------------------------------------------------------


def serve(target: str, env: dict[str, str], path: str, headers: dict[str, str]) -> Any:
    """Run ``uvicorn --factory target``; the base URL once ``path`` answers 200."""
    port = free_port()
    command = uvicorn_command(target, port, WORKERS)
    return load.serve(command, env, port, lambda: load.answers(port, path, headers) == 200)


def run_wrk(
    wrk: str, base: str, prefix: str, ids: Path, token: str, seconds: int
) -> dict[str, float]:
    """Load ``base`` with random IDs; requests/s, p50/p99 in ms, errors."""
    script = _LUA % {"ids": ids, "token": token, "prefix": prefix}
    return load.run_wrk(wrk, base, script, seconds)


def measure(
    wrk: str, base: str, prefix: str, ids: Path, token: str, audited: str | None = None
) -> dict[str, float]:
    """Warm up, then the measured run; with ``audited`` (a database name) also the audit
    rows committed during the measured run."""
    run_wrk(wrk, base, prefix, ids, token, WARMUP_S)
    before = _audit_count(audited) if audited else 0
    result = run_wrk(wrk, base, prefix, ids, token, DURATION_S)
    if audited:
        time.sleep(0.5)  # reads still in flight when wrk stopped
        result["audit_rows"] = _audit_count(audited) - before
    return result


def _audit_count(name: str) -> int:
    with psycopg.connect(_dsn(name)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_entry WHERE actor = %s", [BENCH_ACTOR]
        ).fetchone()
        return int(row[0]) if row else 0


def _cleanup_audit(name: str) -> None:
    """Remove the benchmark's audit rows so the cached register stays small."""
    with psycopg.connect(_dsn(name)) as conn:
        chains = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT chain FROM audit_entry WHERE actor = %s", [BENCH_ACTOR]
            )
        ]
        conn.execute("DELETE FROM audit_entry WHERE chain = ANY(%s)", [chains])
        conn.execute("DELETE FROM audit_chain_head WHERE chain = ANY(%s)", [chains])
        conn.commit()


def run() -> list[dict[str, Any]]:
    """Every figure of this benchmark, as result rows for ``python -m bench``."""
    from dancu.core.access import OfficerContext, Role
    from dancu.core.officers import TokenSigner

    wrk = ensure_wrk()
    name, import_s = prepare(PEOPLE)
    secret = secrets.token_urlsafe(32)
    token = TokenSigner(secret).issue(OfficerContext(BENCH_ACTOR, Role.MINISTRY))
    with tempfile.TemporaryDirectory() as tmp:
        ids = Path(tmp) / "ids.txt"
        sample_ids(name, ids)
        first = ids.read_text().split("\n", 1)[0]
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with serve(
                "bench.bench_lookup:minimal_app",
                {"BENCH_LOOKUP_DSN": _dsn(name)},
                f"/persons/{first}",
                {},
            ) as base:
                minimal = measure(wrk, base, "/persons/", ids, token)
            with serve(
                "dancu.app:create_app",
                {
                    "DANCU_DATABASE_URL": _sa_url(name),
                    "DANCU_SECRET_KEY": secret,
                    "DANCU_DATA_DIR": tmp,
                },
                f"/api/v1/persons/{first}",
                auth,
            ) as base:
                audited = measure(wrk, base, "/api/v1/persons/", ids, token, audited=name)
        finally:
            _cleanup_audit(name)
    ratio = audited["rps"] / minimal["rps"]
    served = audited["requests"] - audited["non2xx"] - audited["errors"]
    rows: list[dict[str, Any]] = [
        {
            "name": f"person lookup, audited, {PEOPLE:,} people, {CONNECTIONS} connections",
            "value": round(audited["rps"], 1),
            "unit": "req/s",
            "baseline": round(minimal["rps"], 1),
            "ratio": round(ratio, 2),
            "target": f">= {TARGET_RPS:,.0f} req/s and >= {TARGET_RATIO}x baseline",
            "ok": audited["rps"] >= TARGET_RPS
            and ratio >= TARGET_RATIO
            and audited["audit_rows"] >= served,
            "note": f"baseline: minimal unaudited FastAPI + psycopg pool, one SELECT of "
            f"person_current; uvicorn {WORKERS} workers each; wrk {THREADS} threads on the same "
            f"{os.cpu_count()} cores; {audited['non2xx']:.0f} non-2xx, "
            f"{audited['errors']:.0f} socket errors; {audited['audit_rows']:,.0f} audit rows "
            f"committed for {served:,.0f} answers served in the measured run",
        },
        {
            "name": "person lookup, audited, p99 latency",
            "value": round(audited["p99_ms"], 2),
            "unit": "ms",
            "baseline": round(minimal["p99_ms"], 2),
            "ratio": round(audited["p99_ms"] / minimal["p99_ms"], 2),
            "target": f"<= {TARGET_P99_MS:.0f} ms",
            "ok": audited["p99_ms"] <= TARGET_P99_MS,
            "note": f"p50 {audited['p50_ms']:.2f} ms (baseline {minimal['p50_ms']:.2f} ms)",
        },
    ]
    if import_s is not None:
        rows.append(
            {
                "name": f"lookup register load ({PEOPLE:,} people, import_population)",
                "value": round(import_s, 1),
                "unit": "s",
                "target": "",
                "ok": None,
                "note": "loaded once; later runs reuse the database " + _db_name(PEOPLE),
            }
        )
    return rows


if __name__ == "__main__":
    for result in run():
        print(result)
