"""``dancu synth extract``: dancu.synth's defective extract and its ground truth, in
reconciliation's terms: the communes' provinces from ``reference.py``, the counts in the order
of ``fields.VERDICTS`` and ``fields.DIFFERENCES``. The mix and the verdict rules are
``synth/extract.py``'s."""

from __future__ import annotations

from pathlib import Path

from dancu.reconcile.fields import DIFFERENCES, VERDICTS
from dancu.reconcile.reference import commune_provinces
from dancu.synth.extract import ExtractProgress, ExtractStats, write_extract


def generate_extract(
    population: Path,
    rows: int,
    out: Path,
    *,
    truth: Path | None = None,
    seed: int = 6,
    headers: str = "vi",
    encoding: str = "utf-8",
    delimiter: str = ",",
    duplicate_keys: float = 0.0,
    progress: ExtractProgress | None = None,
) -> ExtractStats:
    """Write a defective agency extract of ``rows`` rows drawn from ``population`` to ``out``
    and its ground truth to ``truth`` (see ``synth.extract.write_extract``); the stats count
    every verdict, then the defect codes that came, differences first."""
    stats = write_extract(
        population,
        rows,
        out,
        communes=commune_provinces(),
        truth=truth,
        seed=seed,
        headers=headers,
        encoding=encoding,
        delimiter=delimiter,
        duplicate_keys=duplicate_keys,
        progress=progress,
    )
    stats.verdicts = {v: stats.verdicts.get(v, 0) for v in VERDICTS}
    order = {code: i for i, code in enumerate(DIFFERENCES)}
    stats.defects = dict(
        sorted(stats.defects.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
    )
    return stats
