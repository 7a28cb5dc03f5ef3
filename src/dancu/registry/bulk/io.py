"""The file side of bulk import and export (docs/formats.md): recognising the format, the
fingerprint and encoding check, streaming the rows as Arrow batches, the error report and the
export writers. Nothing here touches the database; ``load.py`` and the ``sql_*`` modules do."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dancu.core.errors import Invalid
from dancu.core.ids import mask, mask_text
from dancu.core.names import clean_name, fold
from dancu.registry.schemas import check_name

Progress = Callable[[str, int, "int | None"], None]

# The population-file columns, in the order of docs/formats.md (and of our exports).
COLUMNS: tuple[str, ...] = (
    "personal_id",
    "full_name",
    "birth_date",
    "sex",
    "nationality",
    "ethnicity",
    "religion",
    "birth_commune_code",
    "hometown_commune_code",
    "marital_status",
    "status",
    "death_date",
    "household_no",
    "relationship",
    "residence_commune_code",
    "residence_since",
    "address_line",
    "father_personal_id",
    "mother_personal_id",
    "spouse_personal_id",
    "old_id_number",
    "old_id_issuer",
)
REQUIRED: frozenset[str] = frozenset(
    {
        "personal_id",
        "full_name",
        "birth_date",
        "sex",
        "birth_commune_code",
        "household_no",
        "relationship",
        "residence_commune_code",
        "residence_since",
    }
)
DATE_COLUMNS = frozenset({"birth_date", "death_date", "residence_since"})
# Values of these columns are personal ID or CMND numbers: masked wherever they are reported.
ID_COLUMNS = frozenset(
    {
        "personal_id",
        "father_personal_id",
        "mother_personal_id",
        "spouse_personal_id",
        "old_id_number",
    }
)
# What the staging table holds: the source line, every file column as text, and the name's
# stored form, search key and rule violation, computed here because SQL cannot express them
# exactly as dancu.core.names does.
STAGE_COLUMNS: tuple[str, ...] = ("line", *COLUMNS, "name_clean", "name_key", "name_err")
ERROR_HEADER = ("line", "column", "value", "reason")

_CHUNK = 8 << 20
_BLOCK = 1 << 20
_NAME_CACHE_LIMIT = 500_000


class ImportFileError(Invalid):
    """The file as a whole cannot be imported (format, encoding, header); nothing was written."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A population file after its first pass: what it is and what it holds."""

    path: Path
    kind: str  # csv | parquet
    size: int
    fingerprint: str
    columns: tuple[str, ...]  # known columns present in the file, in file order
    header: tuple[str, ...]  # every header name, as read
    first_line: int  # the line number of the first data row (2 for CSV, 1 for Parquet)
    rows_estimate: int | None
    sha256: str = ""  # SHA-256 of the file's bytes alone, as ``sha256sum`` prints it


def file_kind(path: Path) -> str:
    """``csv`` or ``parquet``, chosen by the file's extension."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ImportFileError(f"{path.name}: unknown file type {suffix!r}; use .csv or .parquet")


def default_error_path(path: Path) -> Path:
    """Where rejected rows are reported unless told otherwise: ``<file>.errors.csv``."""
    return path.with_name(path.name + ".errors.csv")


def scan(path: Path, progress: Progress | None = None) -> SourceFile:
    """Read the file once: fingerprint (SHA-256 of content and size), UTF-8 check for CSV
    (naming the line and byte offset of the first bad byte) and the header check."""
    kind = file_kind(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    newlines = 0
    carry, offset = b"", 0  # bytes after the last newline, and the file offset of carry[0]
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if kind == "csv":
                data = carry + chunk
                cut = data.rfind(b"\n") + 1
                _check_utf8(data[:cut], offset, newlines)
                newlines += data.count(b"\n", 0, cut)
                carry, offset = data[cut:], offset + cut
            if progress:
                progress("scan", f.tell(), size)
    if kind == "csv":
        _check_utf8(carry, offset, newlines)
    content = digest.copy().hexdigest()
    digest.update(f":{size}".encode())
    if kind == "csv":
        header, estimate = _csv_header(path), max(newlines - (0 if carry.strip() else 1), 0)
    else:
        meta = pq.ParquetFile(path)
        header, estimate = tuple(meta.schema_arrow.names), meta.metadata.num_rows
    columns = _check_header(path, header)
    return SourceFile(
        path,
        kind,
        size,
        digest.hexdigest(),
        columns,
        header,
        2 if kind == "csv" else 1,
        estimate,
        content,
    )


def _check_utf8(data: bytes, offset: int, lines_before: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(
            f"the file is not valid UTF-8: line {line}, byte offset {offset + exc.start} "
            f"(byte 0x{data[exc.start]:02x}); save it as UTF-8 and import again"
        ) from None


def _csv_header(path: Path) -> tuple[str, ...]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        first = next(csv.reader(f), [])
    return tuple(name.strip() for name in first)


def _check_header(path: Path, header: tuple[str, ...]) -> tuple[str, ...]:
    missing = sorted(REQUIRED - set(header))
    if missing:
        raise ImportFileError(f"{path.name}: missing required column(s): {', '.join(missing)}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ImportFileError(f"{path.name}: column(s) given twice: {', '.join(repeated)}")
    return tuple(h for h in header if h in COLUMNS)


def read_batches(src: SourceFile) -> Iterator[pa.Table]:
    """Stream the file as tables with exactly ``STAGE_COLUMNS`` (text, ``line`` int64):
    values trimmed, empty values null, absent optional columns null."""
    line = src.first_line
    raw = _csv_batches(src) if src.kind == "csv" else _parquet_batches(src)
    for batch in raw:
        n = batch.num_rows
        if n:
            yield _stage_table(batch, line)
        line += n


def _csv_batches(src: SourceFile) -> Iterator[pa.RecordBatch]:
    types = {name: pa.string() for name in src.header}
    reader = pacsv.open_csv(
        src.path,
        read_options=pacsv.ReadOptions(
            block_size=_BLOCK, column_names=list(src.header), skip_rows=1
        ),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(src.columns)),
    )
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise ImportFileError(_malformed(src, exc)) from None


def _malformed(src: SourceFile, exc: Exception) -> str:
    """Name the first line whose field count differs from the header's (found with the csv
    module: pyarrow's streaming reader does not know row numbers)."""
    with src.path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            if len(row) != len(src.header) and any(row):
                return (
                    f"{src.path.name}: line {reader.line_num} has {len(row)} fields, "
                    f"the header has {len(src.header)}"
                )
    return f"{src.path.name}: the file cannot be read as CSV: {mask_text(str(exc))}"


def _parquet_batches(src: SourceFile) -> Iterator[pa.RecordBatch]:
    for batch in pq.ParquetFile(src.path).iter_batches(
        batch_size=65_536, columns=list(src.columns)
    ):
        try:
            batch.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise ImportFileError(f"{src.path.name}: {mask_text(str(exc))}") from None
        yield batch


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as trimmed text with empty values turned into nulls."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _stage_table(batch: pa.RecordBatch, first_line: int) -> pa.Table:
    n = batch.num_rows
    present = {name: _text(batch.column(name)) for name in batch.schema.names}
    names = present.get("full_name", pa.nulls(n, pa.string()))
    clean, key, err = name_columns(names)
    arrays: list[pa.Array] = [pa.array(range(first_line, first_line + n), pa.int64())]
    arrays += [present.get(c, pa.nulls(n, pa.string())) for c in COLUMNS]
    arrays += [clean, key, err]
    return pa.Table.from_arrays(arrays, names=list(STAGE_COLUMNS))


_name_cache: dict[str, tuple[str, str, str | None]] = {}


def _name_parts(raw: str) -> tuple[str, str, str | None]:
    hit = _name_cache.get(raw)
    if hit is None:
        if len(_name_cache) > _NAME_CACHE_LIMIT:
            _name_cache.clear()
        clean = clean_name(raw)
        try:
            check_name(raw)
            err = None
        except ValueError as exc:
            err = str(exc)
        hit = _name_cache[raw] = (clean, fold(clean), err)
    return hit


def name_columns(names: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """The stored form (``clean_name``), the search key (``fold``) and the service's rule
    violation (None when the name is acceptable) of each name; null in, null out."""
    clean: list[str | None] = []
    key: list[str | None] = []
    err: list[str | None] = []
    for raw in names.to_pylist():
        if raw is None:
            clean.append(None)
            key.append(None)
            err.append(None)
            continue
        c, k, e = _name_parts(raw)
        clean.append(c)
        key.append(k)
        err.append(e)
    return pa.array(clean, pa.string()), pa.array(key, pa.string()), pa.array(err, pa.string())


def csv_bytes(table: pa.Table) -> bytes:
    """The table as headerless CSV, as PostgreSQL's ``COPY ... (FORMAT csv)`` reads it."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def write_error_file(path: Path, rows: Iterable[tuple[int, str, str | None, str]]) -> int:
    """Write the error report (``line, column, value, reason``), masking ID numbers."""
    count = 0
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ERROR_HEADER)
        for line, column, value, reason in rows:
            shown = mask(value) if value and column in ID_COLUMNS else (value or "")
            writer.writerow((line, column, shown, reason))
            count += 1
    tmp.replace(path)  # a reader never sees a half-written report
    return count


# -- export ----------------------------------------------------------------------------------

EXPORT_SCHEMA = pa.schema([(c, pa.date32() if c in DATE_COLUMNS else pa.string()) for c in COLUMNS])


class PopulationWriter:
    """Writes population-file rows in chunks, as CSV or Parquet by the file's extension."""

    def __init__(self, path: Path) -> None:
        self.kind = file_kind(path)
        self.path = path
        self._tmp = path.with_name(path.name + ".part")
        self._writer: Any = (
            pacsv.CSVWriter(str(self._tmp), EXPORT_SCHEMA)
            if self.kind == "csv"
            else pq.ParquetWriter(str(self._tmp), EXPORT_SCHEMA, compression="zstd")
        )

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
        arrays = [
            pa.array(list(col), type=field.type)
            for col, field in zip(columns, EXPORT_SCHEMA, strict=True)
        ]
        self.write_table(pa.Table.from_arrays(arrays, schema=EXPORT_SCHEMA))

    def write_table(self, table: pa.Table) -> None:
        """Append an Arrow table with the population-file columns (cast to the file schema)."""
        self._writer.write_table(table.select(list(COLUMNS)).cast(EXPORT_SCHEMA))

    def close(self, *, keep: bool) -> None:
        self._writer.close()
        if keep:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)
