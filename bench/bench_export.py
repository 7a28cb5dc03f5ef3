"""Bulk export benchmark (``python -m bench export``).

Loads the benchmark's 1,000,000-person file (``BENCH_EXPORT_PEOPLE``) into a fresh SQLite
database and a fresh PostgreSQL database (not timed), then times
``dancu.registry.bulk.export.export_population`` to CSV on each; target <= 30 s. The baseline,
measured in the same run on the same database, is a raw read of the same people's open
versions (one plain query over ``person_version``, every row fetched, nothing joined or
written): what reading the register at all costs.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench import bench_import, data_files  # noqa: E402

PEOPLE = int(os.environ.get("BENCH_EXPORT_PEOPLE", "1000000"))
LIMIT_S = 30.0
_RAW = "SELECT * FROM person_version WHERE superseded_at IS NULL AND valid_to IS NULL"


def _measure(url: str, label: str, out: Path) -> dict[str, Any]:
    from sqlalchemy import text

    from dancu.core.db import make_engine
    from dancu.registry.bulk.export import export_population
    from dancu.registry.bulk.load import import_population

    engine = make_engine(url)
    try:
        path = bench_import.population_file(PEOPLE)
        import_population(engine, path, error_path=out.with_suffix(".errors.csv"))
        start = time.perf_counter()
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=20_000).execute(text(_RAW))
            raw_rows = sum(len(part) for part in result.partitions())
        raw_s = time.perf_counter() - start
        start = time.perf_counter()
        written = export_population(engine, out)
        ours_s = time.perf_counter() - start
    finally:
        engine.dispose()
        out.unlink(missing_ok=True)
        out.with_suffix(".errors.csv").unlink(missing_ok=True)
    return {
        "name": f"export {PEOPLE:,} people to CSV, {label}",
        "value": round(ours_s, 2),
        "unit": "s",
        "baseline": round(raw_s, 2),
        "ratio": round(ours_s / raw_s, 2),
        "target": f"<= {LIMIT_S:.0f} s",
        "ok": ours_s <= LIMIT_S and written == raw_rows == PEOPLE,
        "note": f"{written:,} people written; baseline: one raw SELECT of the {raw_rows:,} open "
        "person versions, fetched in batches, nothing joined or written",
    }


def run() -> list[dict[str, Any]]:
    out = data_files.DATA / f"export-{secrets.token_hex(3)}.csv"
    db = data_files.DATA / f"bench-export-{secrets.token_hex(3)}.db"
    rows = []
    data_files.DATA.mkdir(parents=True, exist_ok=True)
    try:
        bench_import._migrate(f"sqlite:///{db}")
        rows.append(_measure(f"sqlite:///{db}", "SQLite", out))
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    name = bench_import._create_db()
    try:
        bench_import._migrate(bench_import._pg_url(name))
        rows.append(_measure(bench_import._pg_url(name), "PostgreSQL", out))
    finally:
        bench_import._drop_db(name)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
