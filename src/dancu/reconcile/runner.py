"""One reconciliation run, from an agency's file to the result files, in stages the caller
watches (the command line's progress bars, a job's row for the web page):

1. ``read``: recognise the file and stage it (``readers``), columns mapped;
2. ``register``: the register's two files (a snapshot of dancu's database, or a population
   file), reused while the register is unchanged;
3. ``match``: the pipeline's steps in the engine (``pipeline``), one progress tick each;
4. ``write``: the result file, the correction file and the summary.

Everything lives in a work folder; a run that stopped (a crash, a killed process) and is
started again with the same work folder reuses the staged extract and the register's files
(and, ``durable``, every finished step), and no result file is visible under its name until
it is complete. The caller chooses where results go;
nothing here knows about jobs, officers or HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dancu.reconcile import readers
from dancu.reconcile.columns import ColumnMapping, MappingSource
from dancu.reconcile.engine import Engine, EngineName, open_engine
from dancu.reconcile.fields import FIELDS, VERDICTS
from dancu.reconcile.pipeline import PASS_NAMES, Plan, steps
from dancu.reconcile.reference import province_names
from dancu.reconcile.sources import RegisterFiles, load_inputs

Stage = Literal["read", "register", "match", "write", "done"]
# (stage, done, total, detail): total is 0 when unknown.
RunProgress = Callable[[Stage, int, int, str], None]
SAMPLE_ROWS = 10

RESULT_COLUMNS = (
    "row_no",
    "agency_key",
    "verdict",
    "personal_id",
    "confidence",
    "pass",
    "differences",
    "register_full_name",
    "register_birth_date",
    "register_sex",
    "register_province",
    "death_date",
    "candidates",
    "duplicate_of",
)


@dataclass
class Outputs:
    """Where a run writes. ``result`` is CSV or Parquet by its extension."""

    result: Path
    corrections: Path | None = None
    summary: Path | None = None
    parquet: Path | None = None  # the result as Parquet too (for a warehouse)

    @classmethod
    def beside(cls, result: Path) -> Outputs:
        stem = result.with_suffix("")
        return cls(
            result,
            stem.with_name(stem.name + ".corrections.csv"),
            stem.with_name(stem.name + ".summary.json"),
        )


@dataclass
class Summary:
    """What a run found: counts by verdict, province and kind of difference, the passes that
    decided, a sample of each verdict, timings; written as JSON beside the result."""

    rows: int
    verdicts: dict[str, int]
    passes: dict[str, int]
    differences: dict[str, int]
    provinces: list[dict[str, Any]]
    samples: dict[str, list[dict[str, Any]]]
    duplicate_agency_keys: int
    blank_rows: int
    mapping: dict[str, str]
    engine: str
    seconds: dict[str, float] = field(default_factory=dict)
    register_people: int = 0
    # How each mapped column was found (columns.MappingSource): by its header, its values...
    sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> Summary:
        return cls(**json.loads(text))


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks (a 10-million-row file is fine)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(
    extract: Path,
    register: Callable[[], RegisterFiles],
    outputs: Outputs,
    work_dir: Path,
    *,
    mapping: dict[str, str] | None = None,
    engine: EngineName = "duckdb",
    debug: bool = False,
    durable: bool = False,
    spark_master: str = "local[2]",
    progress: RunProgress | None = None,
    echo: Callable[[str], None] = print,
    columns: Callable[[ColumnMapping], None] | None = None,
    sniffed: readers.Sniffed | None = None,
) -> Summary:
    """Reconcile ``extract`` against the register ``register()`` returns. ``mapping``
    (canonical field → header; "" for none) overrides the recognised columns; ``columns`` is
    shown the mapping used (each field's column and how it was found) before it is checked.
    ``sniffed`` is the extract as recognised already (``readers.Sniffed.recalled``), read by
    instead of sniffing the file again. Raises ``readers.ExtractError`` for a file that
    cannot be read, with nothing written."""

    def tick(stage: Stage, done: int = 0, total: int = 0, detail: str = "") -> None:
        if progress:
            progress(stage, done, total, detail)

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    tick("read")
    sniffed = sniffed or readers.sniff(extract)
    proposed = readers.propose_mapping(sniffed.headers, mapping, sniffed.probe)
    used = with_overrides(proposed, mapping or {}, sniffed.headers)
    if columns:
        columns(used)
    readers.check_mapping(used, sniffed.headers)
    chosen = used.fields
    staged = work_dir / "staged.parquet"
    fingerprint = file_fingerprint(extract) + json.dumps(chosen, sort_keys=True)
    marker = work_dir / "staged.json"
    if not (staged.exists() and marker.exists() and _stage_matches(marker, fingerprint)):
        stats = readers.stage(
            sniffed,
            chosen,
            staged,
            progress=lambda rows: tick("read", rows, 0, "rows"),
            work_dir=work_dir,
        )
        marker.write_text(json.dumps({"fingerprint": fingerprint, **_stats(stats)}))
    staged_stats = json.loads(marker.read_text())
    seconds["read"] = time.perf_counter() - started

    tick("register")
    mark = time.perf_counter()
    register_files = register()
    seconds["register"] = time.perf_counter() - mark

    mark = time.perf_counter()
    plan = Plan(frozenset(f for f in chosen if f in FIELDS))
    with open_engine(
        engine,
        work_dir / engine,
        debug=debug,
        spark_master=spark_master,
        durable=durable,
        echo=echo,
    ) as eng:
        load_inputs(eng, staged, fingerprint, register_files)
        eng.run(
            steps(plan),
            progress=lambda name, i, n: tick("match", i, n, name),
        )
        seconds["match"] = time.perf_counter() - mark
        mark = time.perf_counter()
        tick("write")
        summary = _summarise(eng, staged_stats, chosen, engine, register_files.people)
        _write_outputs(eng, outputs, chosen)
        seconds["write"] = time.perf_counter() - mark
    summary.seconds = {k: round(v, 2) for k, v in seconds.items()}
    summary.sources = dict(used.sources)
    if outputs.summary:
        partial = outputs.summary.with_name(outputs.summary.name + ".partial")
        partial.write_text(summary.to_json(), encoding="utf-8")
        os.replace(partial, outputs.summary)
    tick("done", 1, 1)
    return summary


def with_overrides(
    proposed: ColumnMapping, mapping: dict[str, str], headers: list[str]
) -> ColumnMapping:
    """The proposal with the caller's choices applied: a header named for a field is taken
    as given, "" takes the field out."""
    merged = {**proposed.fields, **mapping}
    fields: dict[str, str] = {f: merged[f] for f in FIELDS if merged.get(f)}
    fields |= {f: h for f, h in mapping.items() if f not in FIELDS and h}  # refused later
    sources: dict[str, MappingSource] = {
        f: "given" if mapping.get(f) else proposed.sources[f] for f in fields
    }
    taken = set(fields.values())
    return ColumnMapping(
        fields,
        [h for h in headers if h not in taken],
        sources,
        {f: c for f, c in proposed.ambiguous.items() if f not in fields},
        {f: d for f, d in proposed.details.items() if f in fields},
    )


def _stage_matches(marker: Path, fingerprint: str) -> bool:
    try:
        return bool(json.loads(marker.read_text()).get("fingerprint") == fingerprint)
    except (OSError, ValueError):
        return False


def _stats(stats: Any) -> dict[str, int]:
    return {
        "rows": int(getattr(stats, "rows", 0)),
        "duplicate_agency_keys": int(getattr(stats, "duplicate_agency_keys", 0)),
        "blank_rows_skipped": int(getattr(stats, "blank_rows_skipped", 0)),
    }


def _summarise(
    eng: Engine, staged: dict[str, int], mapping: dict[str, str], engine: str, people: int
) -> Summary:
    verdicts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    verdicts.update(
        {str(v): int(n) for v, n in eng.query("SELECT verdict, count(*) FROM result GROUP BY 1")}
    )
    passes = {
        PASS_NAMES.get(int(p), str(p)): int(n)
        for p, n in eng.query(
            "SELECT pass, count(*) FROM result WHERE pass IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
    }
    differences: dict[str, int] = {}
    for text, n in eng.query(
        "SELECT differences, count(*) FROM result WHERE differences IS NOT NULL GROUP BY 1"
    ):
        for kind in str(text).split("|"):
            differences[kind] = differences.get(kind, 0) + int(n)
    names = province_names()
    provinces = []
    for code, verdict, n in eng.query(
        "SELECT coalesce(r.province_code, x.prov, '') AS province, res.verdict, count(*) "
        "FROM result AS res JOIN x ON x.row_no = res.row_no "
        "LEFT JOIN r ON r.personal_id = res.personal_id GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        provinces.append(
            {"code": code, "name": names.get(str(code), ""), "verdict": verdict, "rows": int(n)}
        )
    samples: dict[str, list[dict[str, Any]]] = {}
    cols = ["row_no", "agency_key", *(f for f in FIELDS if f != "agency_key")]
    out_cols = [
        "verdict",
        "personal_id_found",
        "confidence",
        "differences",
        "register_full_name",
        "register_birth_date",
        "death_date",
        "candidates",
        "duplicate_of",
    ]
    for verdict in VERDICTS:
        rows = eng.query(
            f"SELECT {', '.join('x.' + c for c in cols)}, "
            f"{', '.join(_result_column(c) for c in out_cols)} "
            f"FROM result AS res JOIN x ON x.row_no = res.row_no "
            f"WHERE res.verdict = '{verdict}' ORDER BY res.row_no LIMIT {SAMPLE_ROWS}"
        )
        samples[verdict] = [dict(zip(cols + out_cols, r, strict=True)) for r in rows]
    return Summary(
        rows=int(staged.get("rows", 0)),
        verdicts=verdicts,
        passes=passes,
        differences=dict(sorted(differences.items(), key=lambda kv: -kv[1])),
        provinces=provinces,
        samples=samples,
        duplicate_agency_keys=int(staged.get("duplicate_agency_keys", 0)),
        blank_rows=int(staged.get("blank_rows_skipped", 0)),
        mapping=mapping,
        engine=engine,
        register_people=people,
    )


def _result_column(name: str) -> str:
    return "res.personal_id AS personal_id_found" if name == "personal_id_found" else f"res.{name}"


def _write_outputs(eng: Engine, outputs: Outputs, mapping: dict[str, str]) -> None:
    fmt: Literal["csv", "parquet"] = "parquet" if outputs.result.suffix == ".parquet" else "csv"
    select = ", ".join(RESULT_COLUMNS)
    eng.export(f"SELECT {select} FROM result", outputs.result, fmt, "row_no")
    if outputs.parquet:
        eng.export(f"SELECT {select} FROM result", outputs.parquet, "parquet", "row_no")
    if outputs.corrections:
        eng.export(_corrections_sql(mapping), outputs.corrections, "csv", "row_no")


def _corrections_sql(mapping: dict[str, str]) -> str:
    """The rows to correct, under the agency's own column names, with the register's value
    where theirs differs (empty where it agrees), so the file loads back into their system."""

    def header(field: str, default: str) -> str:
        name = mapping.get(field, default).replace('"', '""')
        return f'"{name}"'

    date = "strftime(res.register_birth_date, '%d/%m/%Y')"
    cols = [
        f"res.row_no AS {header('row_no', 'row_no')}",
        f"x.agency_key AS {header('agency_key', 'agency_key')}",
        f"CASE WHEN res.differences LIKE '%id_%' THEN res.personal_id END "
        f"AS {header('personal_id', 'personal_id')}",
        f"res.register_full_name AS {header('full_name', 'full_name')}",
        f"{date} AS {header('birth_date', 'birth_date')}",
        "CASE res.register_sex WHEN 'M' THEN 'Nam' WHEN 'F' THEN 'Nữ' END "
        f"AS {header('sex', 'sex')}",
        f"pn.name AS {header('province', 'province')}",
        "strftime(res.death_date, '%d/%m/%Y') AS death_date",
        "res.verdict",
        "res.differences",
    ]
    return (
        f"SELECT {', '.join(cols)} FROM result AS res JOIN x ON x.row_no = res.row_no "
        "LEFT JOIN ref_province_name AS pn ON pn.code = res.register_province "
        "WHERE res.verdict IN ('matched_with_differences', 'deceased')"
    )
