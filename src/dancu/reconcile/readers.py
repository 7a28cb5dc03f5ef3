"""Reading agency extracts: recognise the file, read its first rows (which ``columns`` maps to
the canonical fields, ``fields.FIELDS``) and stage the rows as one Parquet file that the
pipeline reads with DuckDB.

- Formats, recognised by content: CSV/TSV/TXT (delimiter ``,`` ``;`` tab or ``|``, a header
  row, encodings in ``encodings.py``), Excel ``.xlsx`` (first sheet, first non-empty row is the
  header; the workbook read in ``workbook.py``) and Parquet. Anything else is refused with
  ``extract-format``.
- Staged values are text, trimmed and NFC; an empty value is NULL (never ""), whatever the
  format. Nothing else is changed: the pipeline does the Vietnamese-specific normalisation.
- ``row_no`` is the position of a data row in the file (1 = the first row after the header),
  in file order. A row whose mapped values are all empty is skipped but still counted, so
  ``row_no`` always points at the agency's own row; empty lines between CSV rows count too,
  those after the last row do not.
- A file is sniffed once: ``Sniffed.dialect`` (with the format and headers) is what a caller
  keeps to read the file by later (``Sniffed.recalled``) instead of sniffing it again.
- Memory stays flat: DuckDB reads CSV and Parquet in a fresh in-memory database that spills to
  ``work_dir``, non-UTF-8 text is transcoded to a scratch file in chunks, Excel is streamed
  with openpyxl's read-only mode, and the rows reach the staged file in Arrow batches.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dancu.reconcile import encodings, workbook
from dancu.reconcile.columns import (
    FIELD_LABELS,
    IDENTIFYING,
    ColumnMapping,
    MappingSource,
    as_dict,
    check_mapping,
    propose_mapping,
    signature,
)
from dancu.reconcile.encodings import WHITESPACE, ExtractError, clean_value
from dancu.reconcile.fields import FIELDS, header_key
from dancu.reconcile.recognise import PROBE_ROWS

__all__ = [
    "FIELD_LABELS",
    "IDENTIFYING",
    "ColumnMapping",
    "ExtractError",
    "MappingSource",
    "Sniffed",
    "StageStats",
    "check_mapping",
    "propose_mapping",
    "signature",
    "sniff",
    "stage",
]

Format = Literal["csv", "parquet", "xlsx"]

SAMPLE_ROWS: Final = 20

_BATCH_ROWS: Final = 131_072
# DuckDB runs inside a service worker, so it gets a small bound and spills to work_dir. With
# 1GB, counting the distinct agency keys of 10 million rows alone took the process to 630 MB
# RSS; with these, staging 2 to 10 million rows peaks at 360-390 MB (most of it the CSV
# reader's own buffers, which the limit does not shrink).
_MEMORY_LIMIT: Final = "256MB"
_KEYS_MEMORY_LIMIT: Final = "128MB"
_THREADS: Final = 2


@dataclass(frozen=True)
class Sniffed:
    """What an extract is, before its columns are mapped (shown to the officer to confirm)."""

    path: Path
    format: Format
    encoding: str | None  # the Python codec (CSV only): utf-8, utf-8-sig, utf-16-le, cp1258...
    delimiter: str | None  # CSV only
    headers: list[str]  # trimmed, NFC; a blank header is "(column N)"
    sample: list[list[str]]  # up to 20 data rows, values as staged ("" for empty)
    header_line: int = 1  # the line (CSV) or sheet row (Excel) of the header
    # The first data rows (up to recognise.PROBE_ROWS, as the sample), from which columns are
    # recognised by their values; the sample's rows when not read.
    probe: list[list[str]] = field(default_factory=list)

    @property
    def dialect(self) -> dict[str, Any]:
        """How the file is written beyond its format and headers (the encoding, delimiter and
        header line found): what is kept with them so that a later step reads the file as it
        was recognised (``recalled``) instead of sniffing it again."""
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_line": self.header_line,
        }

    @classmethod
    def recalled(
        cls, path: Path, fmt: str, headers: Sequence[str], dialect: Mapping[str, Any]
    ) -> Sniffed:
        """The file at ``path`` as sniffed earlier (its format, headers and ``dialect``
        kept), without reading it again. It has no sample or probe rows, so no column is
        recognised by its values: a caller gives the columns (a confirmed mapping)."""
        return cls(
            Path(path),
            cast(Format, fmt),
            dialect["encoding"],
            dialect["delimiter"],
            list(headers),
            [],
            int(dialect["header_line"]),
            [],
        )


@dataclass(frozen=True)
class StageStats:
    """What ``stage`` wrote. ``rows`` excludes the blank rows it skipped."""

    rows: int
    columns: tuple[str, ...]  # the canonical fields staged, in FIELDS order
    duplicate_agency_keys: int  # rows whose agency key an earlier row already has
    blank_rows_skipped: int


# -- sniffing ---------------------------------------------------------------------------------


def sniff(path: Path, *, encoding: str | None = None, delimiter: str | None = None) -> Sniffed:
    """Recognise an extract: its format (by content), and for CSV its encoding and delimiter
    (unless given); read its header and a sample of rows. Raises ``ExtractError``."""
    path = Path(path)
    fmt = encodings.file_format(path)
    if fmt == "parquet":
        return _sniff_parquet(path)
    if fmt == "xlsx":
        return _sniff_xlsx(path)
    return _sniff_csv(path, encoding, delimiter)


def _sniff_csv(path: Path, encoding: str | None, delimiter: str | None) -> Sniffed:
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ExtractError("extract-delimiter", f"{delimiter!r} cannot separate columns")
    if encoding:
        codec = encodings.codec_name(encoding)
    else:
        with path.open("rb") as f:
            head = f.read(encodings.SAMPLE_BYTES)
            at_eof = not f.read(1)
        codec = encodings.detect_encoding(head, at_eof=at_eof)
    text, at_eof = encodings.read_sample(path, codec)
    lead = encodings.leading_blank_lines(text)
    body = text.split("\n", lead)[-1] if lead else text
    if not body.strip():
        raise ExtractError("extract-empty", f"{path.name} holds no text")
    if body.lstrip()[:1] == "<":
        raise ExtractError(
            "extract-format", f"{path.name} is a web page or XML; {encodings.SAVE_AS}"
        )
    delim, records = encodings.pick_delimiter(body, at_eof, delimiter)
    headers = _headers(records[0], path)
    if len(records) >= encodings.SNIFF_RECORDS:  # more rows to recognise the columns by
        records = encodings.parse_records(body, delim, at_eof, PROBE_ROWS + 1)
    data = [r for r in records[1:] if any(v.strip(WHITESPACE) for v in r)]
    if not data and at_eof:
        raise ExtractError("extract-empty", f"{path.name} has a header but no data rows")
    probe = [[clean_value(v) for v in r] for r in data[:PROBE_ROWS]]
    return Sniffed(path, "csv", codec, delim, headers, probe[:SAMPLE_ROWS], lead + 1, probe)


def _headers(raw: Sequence[str | None], path: Path) -> list[str]:
    headers = [clean_value(h or "") or f"(column {i + 1})" for i, h in enumerate(raw)]
    seen: dict[str, str] = {}
    for h in headers:
        key = header_key(h) or h
        if key in seen:
            same = f"{h!r} appears twice" if seen[key] == h else f"{seen[key]!r} and {h!r} are"
            raise ExtractError(
                "extract-headers",
                f"{path.name}: the column names {same} the same once accents, case and "
                "punctuation are ignored; rename one so each column can be told apart",
            )
        seen[key] = h
    return headers


def _sniff_parquet(path: Path) -> Sniffed:
    schema, rows = _parquet_schema(path)
    if rows == 0:
        raise ExtractError("extract-empty", f"{path.name} has columns but no rows")
    headers = _headers(schema.names, path)
    exprs = ", ".join(_clean_sql(e) for e in _parquet_exprs(schema))
    sql = f"SELECT {exprs} FROM {_parquet_source(path, len(headers))} LIMIT {PROBE_ROWS}"
    with _connect(None) as con:
        try:
            found = con.sql(sql).fetchall()
        except duckdb.Error:
            raise _damaged_parquet(path) from None
    probe = [["" if v is None else str(v) for v in row] for row in found]
    return Sniffed(path, "parquet", None, None, headers, probe[:SAMPLE_ROWS], 0, probe)


def _parquet_schema(path: Path) -> tuple[pa.Schema, int]:
    try:
        meta = pq.read_metadata(path)
        return meta.schema.to_arrow_schema(), int(meta.num_rows)
    except (pa.ArrowException, OSError):
        raise _damaged_parquet(path) from None


def _damaged_parquet(path: Path) -> ExtractError:
    return ExtractError(
        "extract-format", f"{path.name} looks like a Parquet file but is damaged or incomplete"
    )


def _sniff_xlsx(path: Path) -> Sniffed:
    header_row = 0
    headers: list[str] = []
    sample: list[list[str]] = []
    with workbook.sheet(path) as rows:
        for number, values in rows:
            if workbook.blank(values):
                continue
            if not header_row:
                width = max(i for i, v in enumerate(values) if not workbook.blank([v])) + 1
                header_row, headers = number, _headers(values[:width], path)
                continue
            sample.append([clean_value(v or "") for v in values[: len(headers)]])
            if len(sample) == PROBE_ROWS:
                break
    if not header_row:
        raise ExtractError("extract-empty", f"{path.name}: the first sheet is empty")
    if len(headers) < 2:
        raise ExtractError(
            "extract-delimiter",
            f"{path.name}: the header (row {header_row}) has a single column; put each field "
            "in its own column (text such as 'a,b,c' in one cell: Data > Text to Columns)",
        )
    if not sample:
        raise ExtractError("extract-empty", f"{path.name} has a header but no data rows")
    return Sniffed(path, "xlsx", None, None, headers, sample[:SAMPLE_ROWS], header_row, sample)


# -- staging ----------------------------------------------------------------------------------


def stage(
    sniffed: Sniffed,
    mapping: ColumnMapping | Mapping[str, str],
    out: Path,
    *,
    progress: Callable[[int], None] | None = None,
    work_dir: Path | None = None,
) -> StageStats:
    """Write the mapped columns of the extract to ``out`` (Parquet): ``row_no`` (BIGINT) and one
    VARCHAR column per mapped field, named by the field, in file order.

    The file appears at ``out`` only when complete (written as ``out.with_suffix(".partial")``
    and renamed). ``progress`` is called with the number of file rows read so far. Scratch
    files (a transcoded copy, DuckDB's spill) go to a directory in ``work_dir`` (default: the
    directory of ``out``), removed at the end. Raises ``ExtractError``; nothing is left behind.
    """
    fields = as_dict(mapping)
    check_mapping(fields, sniffed.headers)
    chosen = tuple(f for f in FIELDS if f in fields)
    out = Path(out)
    partial = out.with_suffix(".partial")
    scratch_root = Path(work_dir) if work_dir else out.parent
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dancu-stage-", dir=scratch_root))
    try:
        with _connect(scratch) as con:
            source, exprs = _source(sniffed, scratch)
            select = ", ".join(
                f"{_clean_sql(exprs[sniffed.headers.index(fields[f])])} AS {f}" for f in chosen
            )
            sql = f"SELECT {select} FROM {source}"
            rows, blanks = _write(con, sql, chosen, partial, progress, sniffed)
        if rows == 0:
            name = sniffed.path.name
            raise ExtractError("extract-empty", f"{name}: every row is empty in the mapped columns")
        dups = _duplicate_keys(partial, scratch) if "agency_key" in chosen else 0
        partial.replace(out)  # atomic: a reader never sees a half-written staged file
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StageStats(rows, chosen, dups, blanks)


def _connect(scratch: Path | None, memory_limit: str = _MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {
        "memory_limit": memory_limit,
        "threads": _THREADS,
        # The default, but row_no depends on it: with it DuckDB returns a query without ORDER
        # BY in the order of its source (the file), however many threads scan it.
        "preserve_insertion_order": True,
    }
    if scratch is not None:
        config["temp_directory"] = str(scratch / "duckdb")
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")  # it would draw on the worker's terminal
    return con


def _source(sniffed: Sniffed, scratch: Path) -> tuple[str, list[str]]:
    """The FROM item that reads the extract with columns c0, c1..., and each column's text."""
    n = len(sniffed.headers)
    plain = [f"c{i}" for i in range(n)]
    if sniffed.format == "parquet":
        schema, _ = _parquet_schema(sniffed.path)
        return _parquet_source(sniffed.path, n), _parquet_exprs(schema)
    if sniffed.format == "xlsx":
        copy = scratch / "sheet.parquet"
        workbook.to_parquet(sniffed.path, sniffed.header_line, n, copy)
        return _parquet_source(copy, n), plain
    path, delim = sniffed.path, sniffed.delimiter or ","
    codec = sniffed.encoding or "utf-8"
    if (
        codec not in ("utf-8", "utf-8-sig")
        or sniffed.header_line > 1
        or encodings.has_inner_blank_lines(path)
    ):
        path = scratch / "extract.csv"
        encodings.transcode(sniffed.path, path, codec, filler=delim * (n - 1))
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n))
    # Every column is named and typed, so nothing is guessed from a sample; strict mode
    # without null padding makes a row with too few or too many values (or an unclosed
    # quote) an error naming its line instead of a row with shifted columns.
    source = (
        f"read_csv({_sql_text(str(path))}, columns={{{columns}}}, header=true, "
        f"auto_detect=false, delim={_sql_text(delim)}, quote='\"', escape='\"', "
        "strict_mode=true, null_padding=false, compression='none')"
    )
    return source, plain


def _parquet_source(path: Path, n: int) -> str:
    names = ", ".join(f"c{i}" for i in range(n))  # by position: any column name works
    return f"read_parquet({_sql_text(str(path))}, binary_as_string=true) AS t({names})"


def _parquet_exprs(schema: pa.Schema) -> list[str]:
    """Each column as text: dates and timestamps in ISO form, and a whole floating-point number
    without ``.0`` (so an ID stored as a double reads as its digits, as from Excel)."""
    exprs = []
    for i, column in enumerate(schema):
        if pa.types.is_floating(column.type):
            exprs.append(
                f"CASE WHEN isfinite(c{i}) AND c{i} = trunc(c{i}) AND abs(c{i}) < 1e15 "
                f"THEN CAST(CAST(c{i} AS BIGINT) AS VARCHAR) ELSE CAST(c{i} AS VARCHAR) END"
            )
        else:
            exprs.append(f"CAST(c{i} AS VARCHAR)")
    return exprs


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clean_sql(expr: str) -> str:
    """SQL for a value as staged: NFC, trimmed (``WHITESPACE``), NULL when empty."""
    ws = _sql_text(WHITESPACE)
    # trim() with a list of characters costs several times NFC itself, and most values have
    # nothing to trim: look at the two end characters first (an empty value takes the trim
    # branch, because every string contains '').
    return (
        f"CASE WHEN contains({ws}, left({expr}, 1)) OR contains({ws}, right({expr}, 1)) "
        f"THEN nullif(trim(nfc_normalize({expr}), {ws}), '') ELSE nfc_normalize({expr}) END"
    )


def _write(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    fields: tuple[str, ...],
    partial: Path,
    progress: Callable[[int], None] | None,
    sniffed: Sniffed,
) -> tuple[int, int]:
    """Stream the query into ``partial`` with row numbers; return (rows kept, blank rows)."""
    schema = pa.schema([("row_no", pa.int64()), *((f, pa.string()) for f in fields)])
    seen = kept = 0
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for batch in _batches(con, sql, sniffed):
            n = batch.num_rows
            # Counting the rows as they stream is file order: see _connect.
            row_no = pa.array(np.arange(seen + 1, seen + n + 1, dtype=np.int64))
            columns = [batch.column(i).cast(pa.string()) for i in range(batch.num_columns)]
            present = functools.reduce(pc.or_, (pc.is_valid(c) for c in columns))
            table = pa.Table.from_arrays([row_no, *columns], schema=schema).filter(present)
            writer.write_table(table)
            seen += n
            kept += table.num_rows
            if progress:
                progress(seen)
    return kept, seen - kept


def _batches(con: duckdb.DuckDBPyConnection, sql: str, sniffed: Sniffed) -> Iterator[Any]:
    """The query's result as Arrow batches; DuckDB's read errors become ``ExtractError``.
    (Arrow's reader re-raises them as OSError carrying DuckDB's message.)"""
    try:
        yield from con.sql(sql).to_arrow_reader(_BATCH_ROWS)
    except (duckdb.Error, OSError) as exc:
        failure = _read_failure(str(exc), sniffed)
        if failure is None:
            raise
        raise failure from None  # DuckDB's text quotes the row: personal data stays out of logs


def _read_failure(text: str, sniffed: Sniffed) -> ExtractError | None:
    name = sniffed.path.name
    if sniffed.format == "parquet":
        return None if "Out of Memory" in text else _damaged_parquet(sniffed.path)
    line_text = _after(text, "CSV Error on Line: ")
    if sniffed.format != "csv" or line_text is None:
        return None
    line = int(line_text) + sniffed.header_line - 1
    if "Invalid unicode" in text:
        return encodings.decode_error("utf-8", line)
    expected, found = _after(text, "Expected Number of Columns: "), _after(text, "Found: ")
    if "unterminated quote" in text:
        why = 'opens a quote (") that is never closed'
    elif expected and found:
        sep = encodings.DELIMITER_NAMES.get(sniffed.delimiter or ",", repr(sniffed.delimiter))
        why = (
            f"has {found} values where the header has {expected} columns (a value containing "
            f"the {sep} needs quotes around it)"
        )
    else:
        why = "cannot be read as CSV"
    return ExtractError("extract-row", f"{name}: line {line} {why}", line=line)


def _after(text: str, label: str) -> str | None:
    """The number that follows ``label`` in DuckDB's message."""
    match = re.search(re.escape(label) + r"(\d+)", text)
    return match.group(1) if match else None


def _duplicate_keys(staged: Path, scratch: Path) -> int:
    # A connection of its own, so the reading connection's buffers are gone, with a smaller
    # limit: the distinct keys of a large extract (10 million: several hundred MB) spill.
    with _connect(scratch, memory_limit=_KEYS_MEMORY_LIMIT) as con:
        found = con.sql(
            "SELECT count(*) - count(DISTINCT agency_key) FROM read_parquet("
            f"{_sql_text(str(staged))}) WHERE agency_key IS NOT NULL"
        ).fetchall()
    return int(found[0][0])
