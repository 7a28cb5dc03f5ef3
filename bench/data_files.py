"""The benchmarks' generated input files, kept in ``bench/data/`` (never committed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
AS_OF = date(2026, 11, 1)  # the generator's reference "today": the same file every run


def population_file(name: str, people: int, seed: int) -> Path:
    """``DATA/name`` (its suffix picks CSV or Parquet): ``people`` synthetic people from
    ``seed``, generated on first use and reused afterwards (seeded, so always the same)."""
    from dancu.registry.synth_population import generate_population

    DATA.mkdir(parents=True, exist_ok=True)
    ignore = DATA / ".gitignore"  # generated files, hundreds of MB
    if not ignore.exists():
        ignore.write_text("*\n")
    path = DATA / name
    if not path.exists():
        tmp = path.with_name(f"part-{path.name}")  # never reuse a half-written file
        generate_population(people, seed, tmp, as_of=AS_OF)
        tmp.replace(path)
    return path
