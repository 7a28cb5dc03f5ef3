"""Synthetic population benchmark (``python -m bench synth``).

Times ``dancu synth population`` for ``BENCH_SYNTH_PEOPLE`` people (default 1,000,000) to a
Parquet file; target ≤ 60 s on the 2-core reference machine. As a same-run baseline it times
writing the same number of rows with the same schema from columns that are already built
(pyarrow only), so the ratio shows what generating the people costs over merely writing them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from dancu.registry.bulk.io import COLUMNS, EXPORT_SCHEMA  # noqa: E402
from dancu.registry.synth_population import generate_population  # noqa: E402

PEOPLE = int(os.environ.get("BENCH_SYNTH_PEOPLE", "1000000"))
TARGET_S = 60.0


def _baseline(rows: int, out: Path) -> float:
    """Write ``rows`` rows of a fixed person, in the generator's chunk size, to Parquet."""
    chunk = 100_000
    sample = {c: ("x" if EXPORT_SCHEMA.field(c).type == pa.string() else None) for c in COLUMNS}
    sample["birth_date"] = date(1990, 1, 1)
    sample["residence_since"] = date(2010, 1, 1)
    table = pa.Table.from_pylist([sample] * chunk, schema=EXPORT_SCHEMA)
    start = time.perf_counter()
    with pq.ParquetWriter(str(out), EXPORT_SCHEMA, compression="zstd") as writer:
        done = 0
        while done < rows:
            part = table.slice(0, min(chunk, rows - done))
            writer.write_table(part)
            done += part.num_rows
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "people.parquet"
        start = time.perf_counter()
        written = generate_population(PEOPLE, 7, out, as_of=date(2026, 11, 1))
        seconds = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
        baseline = _baseline(PEOPLE, Path(tmp) / "baseline.parquet")
    return [
        {
            "name": f"synth population, {written:,} people → Parquet",
            "value": round(seconds, 2),
            "unit": "s",
            "baseline": round(baseline, 2),
            "ratio": round(seconds / baseline, 2) if baseline else None,
            "target": f"≤ {TARGET_S:.0f} s",
            "ok": seconds <= TARGET_S,
            "note": f"{size_mb:,.0f} MB file; baseline = writing the same rows, already built",
        }
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
