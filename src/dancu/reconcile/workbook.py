"""Excel workbooks (``.xlsx``), for ``readers``: the first sheet's rows as the agency typed
them, streamed with openpyxl's read-only mode, and its data rows rewritten as a Parquet file of
text columns that DuckDB stages like any other.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl.utils import get_column_letter

from dancu.reconcile.encodings import WHITESPACE, ExtractError, damaged_workbook

_XLSX_BATCH: Final = 16_384


@contextmanager
def sheet(path: Path) -> Iterator[Iterator[tuple[int, list[str | None]]]]:
    """The first sheet's rows as (sheet row number, cell texts), streamed."""
    with warnings.catch_warnings():
        # openpyxl warns about workbook features it drops (styles, data validation); none of
        # them matters for reading values.
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        # We own the file handle, so it is closed however openpyxl fails or however early the
        # reader stops (a half-read sheet keeps its zip member open until closed).
        with path.open("rb") as handle:
            try:
                book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
            except Exception:  # openpyxl raises whatever its XML and zip readers raise
                raise damaged_workbook(path) from None
            try:
                if not book.worksheets:
                    raise ExtractError("extract-empty", f"{path.name} has no worksheet")
                sheet = book.worksheets[0]
                # Some writers record a wrong sheet size, which read-only mode would trust.
                sheet.reset_dimensions()
                cells = sheet.iter_rows(values_only=True)
                try:
                    yield _sheet_rows(cells, path)
                finally:
                    cells.close()
            finally:
                book.close()


def _sheet_rows(rows: Iterator[tuple[Any, ...]], path: Path) -> Iterator[tuple[int, list[Any]]]:
    number = 0
    while True:
        try:
            values = next(rows, None)
        except Exception:
            raise damaged_workbook(path) from None
        if values is None:
            return
        number += 1  # read-only mode yields an empty tuple for each row missing from the file
        yield number, [_cell_text(v) for v in values]


def _cell_text(value: object) -> str | None:
    """A cell as the agency typed it. A number that is whole loses Excel's ``.0`` (an ID typed
    as a number has lost its leading zeros already: the pipeline repairs that, not us)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        day = f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
        return day if value.time() == time() else f"{day} {value.time().isoformat()}"
    if isinstance(value, date):
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def blank(values: Sequence[str | None]) -> bool:
    """Whether the cells hold nothing but whitespace."""
    return all(v is None or not v.strip(WHITESPACE) for v in values)


def to_parquet(path: Path, header_line: int, n: int, dest: Path) -> None:
    """The data rows of the sheet (after ``header_line``, the ``n`` columns under a header) as
    a Parquet file of text columns c0, c1...: a blank row
    between rows as an all-NULL row (it keeps its row number), blank rows at the end dropped."""
    schema = pa.schema([(f"c{i}", pa.string()) for i in range(n)])
    buffer: list[list[str | None]] = []
    pending = 0
    with sheet(path) as rows, pq.ParquetWriter(dest, schema) as writer:
        for number, values in rows:
            if number <= header_line:
                continue
            if blank(values):
                pending += 1
                continue
            extra = next((i for i, v in enumerate(values[n:], n) if not blank([v])), None)
            if extra is not None:
                raise ExtractError(
                    "extract-row",
                    f"row {number} has a value in column {get_column_letter(extra + 1)}, which "
                    "has no header; give the column a header or delete the value",
                    line=number,
                )
            buffer.extend([[None] * n] * pending)
            pending = 0
            buffer.append(values[:n] + [None] * (n - len(values)))
            if len(buffer) >= _XLSX_BATCH:
                writer.write_table(_table(buffer, schema))
                buffer = []
        if buffer:
            writer.write_table(_table(buffer, schema))


def _table(rows: list[list[str | None]], schema: pa.Schema) -> pa.Table:
    columns = [pa.array(list(col), pa.string()) for col in zip(*rows, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)
