"""``dancu synth population``: dancu.synth's people written as a population file
(docs/formats.md) by the writer the export uses, so that the file is one an import reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from dancu.registry.bulk.io import PopulationWriter
from dancu.synth.people import population

SynthProgress = Callable[[int, int], None]


def generate_population(
    people: int,
    seed: int,
    out: Path | str,
    *,
    as_of: date | None = None,
    progress: SynthProgress | None = None,
) -> int:
    """Write ``people`` synthetic residents to ``out`` (``.csv`` or ``.parquet``).

    The same ``seed`` and ``as_of`` (the reference "today"; default today) give the same file.
    Returns the number of rows written. ``progress(done, total)`` follows the rows.
    """
    chunks = population(people, seed, as_of=as_of)  # checks ``people`` before a file exists
    writer = PopulationWriter(Path(out))
    done = 0
    ok = False
    try:
        for table in chunks:
            writer.write_table(table)
            done += table.num_rows
            if progress:
                progress(done, people)
        ok = True
    finally:
        writer.close(keep=ok)
    return done
