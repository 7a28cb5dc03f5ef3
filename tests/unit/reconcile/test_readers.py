"""Reading agency extracts (dancu.reconcile.readers): formats, encodings, delimiters, the column
mapping, staging (row numbers, blank rows, duplicate keys) and every refusal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
import tempfile
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dancu.reconcile import encodings, readers
from dancu.reconcile.readers import ExtractError

HEADER = "Mã hồ sơ,Họ và tên,Ngày sinh,Số CCCD\n"
ROWS = "HS1,Nguyễn Văn An,01/02/1990,001090000001\nHS2,Trần Thị Bình,1991,\n"
TONES = "\u0300\u0301\u0303\u0309\u0323"


def cp1258(text: str) -> bytes:
    """Text as Windows-1258 writes it: base letters (â, ơ... are single bytes) followed by the
    tone mark as a separate combining character."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
        out.append(base + "".join(c for c in parts if c in TONES))
    return "".join(out).encode("cp1258")


def encode(text: str, encoding: str) -> bytes:
    return cp1258(text) if encoding == "cp1258" else text.encode(encoding)


def write(tmp_path: Path, data: str | bytes, name: str = "extract.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def run(path: Path, **kwargs: Any) -> tuple[readers.Sniffed, readers.StageStats, list[dict]]:
    sniffed = readers.sniff(path, **kwargs)
    out = path.with_name("staged.parquet")
    stats = readers.stage(sniffed, readers.propose_mapping(sniffed.headers), out)
    return sniffed, stats, pq.read_table(out).to_pylist()


def refused(path: Path, code: str, **kwargs: Any) -> ExtractError:
    """Sniff and stage ``path``, expecting ``code``; check that nothing was left behind."""
    before = sorted(path.parent.iterdir())
    with pytest.raises(ExtractError) as caught:
        run(path, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert sorted(path.parent.iterdir()) == before
    return caught.value


def held_open(path: Path) -> list[str]:
    """This process's file descriptors open on ``path``."""
    fds = Path("/proc/self/fd")
    return [fd.name for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve())]


# -- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),  # with a BOM
        ("utf-16-le", "utf-16-le"),  # without: found by its NUL bytes
        ("utf-16-be", "utf-16-be"),
        ("cp1258", "cp1258"),
    ],
)
def test_every_encoding_stages_the_same_nfc_values(
    tmp_path: Path, encoding: str, reported: str
) -> None:
    path = write(tmp_path, encode(HEADER + ROWS, encoding))
    sniffed, stats, rows = run(path)
    assert sniffed.encoding == reported
    assert sniffed.headers == ["Mã hồ sơ", "Họ và tên", "Ngày sinh", "Số CCCD"]
    assert stats.rows == 2
    assert [r["full_name"] for r in rows] == ["Nguyễn Văn An", "Trần Thị Bình"]
    assert rows[1]["personal_id"] is None


def test_cp1258_combining_marks_become_precomposed(tmp_path: Path) -> None:
    raw = cp1258(HEADER + ROWS)
    assert "Nguyê\u0303n".encode("cp1258") in raw  # ê, then the tone as a combining mark
    _, _, rows = run(write(tmp_path, raw))
    assert rows[0]["full_name"] == unicodedata.normalize("NFC", "Nguyễn Văn An")
    assert all(unicodedata.is_normalized("NFC", r["full_name"]) for r in rows)


def test_ascii_and_an_explicit_encoding(tmp_path: Path) -> None:
    text = "ho_ten,ngay_sinh\nNguyen Van An,1990\n"
    assert run(write(tmp_path, text))[0].encoding == "utf-8"
    path = write(tmp_path, cp1258("Họ tên,Năm sinh\nLê Thị Hà,1990\n"))
    sniffed, _, rows = run(path, encoding="Windows-1258")
    assert sniffed.encoding == "cp1258"
    assert rows[0]["full_name"] == "Lê Thị Hà"


def test_whitespace_is_every_unicode_space() -> None:
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert spaces <= set(encodings.WHITESPACE)
    assert encodings.clean_value("\u00a0 Ho\u0300a \u3000\ufeff") == "Hòa"


def test_values_are_trimmed_and_empty_is_null(tmp_path: Path) -> None:
    path = write(tmp_path, 'Họ tên,Năm sinh,Địa chỉ\n"\u00a0 Lê  Hà ",  1990 ,"   "\n')
    _, _, rows = run(path)
    assert rows == [{"row_no": 1, "full_name": "Lê  Hà", "birth_date": "1990", "address": None}]


# -- delimiters and quoting -----------------------------------------------------------------------


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_every_delimiter_with_quoted_delimiters_and_newlines(tmp_path: Path, delim: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delim, lineterminator="\r\n")
    writer.writerow(["Họ và tên", "Ngày sinh", "Địa chỉ"])
    writer.writerow(["Nguyễn Văn An", "01/02/1990", f"12 Lê Lợi{delim} Quận 1\nTP HCM"])
    writer.writerow(["Lê Thị Hà", "1991", 'nhà "xanh"'])
    sniffed, stats, rows = run(write(tmp_path, buffer.getvalue()))
    assert sniffed.delimiter == delim
    assert rows[0]["address"] == f"12 Lê Lợi{delim} Quận 1\nTP HCM"
    assert rows[1] == {"row_no": 2, "full_name": "Lê Thị Hà", "birth_date": "1991",
                       "address": 'nhà "xanh"'}  # fmt: skip
    assert stats.rows == 2


def test_the_sample_shows_values_as_staged(tmp_path: Path) -> None:
    sniffed = readers.sniff(write(tmp_path, HEADER + " HS1 ,Le\u0302 Van,1990,\n"))
    assert sniffed.sample == [["HS1", "Lê Van", "1990", ""]]


# -- column mapping -------------------------------------------------------------------------------


def test_vietnamese_and_english_headers_map_exactly() -> None:
    vietnamese = ["STT", "Số sổ BHXH", "Họ và tên", "Ngày sinh", "Giới tính", "Số CCCD",
                  "Số CMND", "Địa chỉ thường trú", "Tỉnh/Thành phố"]  # fmt: skip
    proposed = readers.propose_mapping(vietnamese)
    assert proposed.fields == {
        "agency_key": "Số sổ BHXH",
        "full_name": "Họ và tên",
        "birth_date": "Ngày sinh",
        "sex": "Giới tính",
        "personal_id": "Số CCCD",
        "old_id": "Số CMND",
        "address": "Địa chỉ thường trú",
        "province": "Tỉnh/Thành phố",
    }
    assert proposed.unmapped == ["STT"]
    assert set(proposed.sources.values()) == {"exact"}
    english = readers.propose_mapping(["Customer ID", "FULL_NAME", "Date of birth", "Gender"])
    assert english.fields == {
        "agency_key": "Customer ID",
        "full_name": "FULL_NAME",
        "birth_date": "Date of birth",
        "sex": "Gender",
    }


def test_prefix_guesses_are_marked_as_such() -> None:
    proposed = readers.propose_mapping(
        ["Họ và tên", "Ngày sinh của công dân", "Số CCCD/CMND", "Ghi chú"]
    )
    assert proposed.fields["birth_date"] == "Ngày sinh của công dân"
    assert proposed.fields["personal_id"] == "Số CCCD/CMND"
    assert proposed.sources == {"full_name": "exact", "birth_date": "prefix",
                                "personal_id": "prefix"}  # fmt: skip
    assert proposed.unmapped == ["Ghi chú"]


def test_a_saved_profile_wins_over_a_guess() -> None:
    headers = ["Họ tên", "Họ tên khai sinh", "Ngày sinh", "Mã KH"]
    assert readers.propose_mapping(headers).fields["full_name"] == "Họ tên"
    saved = {"full_name": "HO TEN KHAI SINH", "old_id": "Số CMND", "bogus": "Mã KH"}
    proposed = readers.propose_mapping(headers, saved)
    # Matched by header key; the profile's absent header and unknown field are ignored.
    assert proposed.fields["full_name"] == "Họ tên khai sinh"
    assert proposed.sources["full_name"] == "profile"
    assert "old_id" not in proposed.fields
    assert proposed.fields["agency_key"] == "Mã KH"
    assert proposed.unmapped == ["Họ tên"]  # a header maps to one field at most


def test_check_mapping_names_what_is_missing() -> None:
    headers = ["Họ tên", "Ngày sinh", "Địa chỉ"]
    readers.check_mapping(readers.propose_mapping(headers), headers)
    with pytest.raises(ExtractError) as caught:
        readers.check_mapping({"address": "Địa chỉ"}, headers)
    assert caught.value.code == "extract-columns-missing"
    assert "full name (họ và tên)" in caught.value.message
    assert "personal ID number" in caught.value.message
    assert "date of birth" in caught.value.message
    for bad in ({"full_name": "Tên"}, {"full_name": "Họ tên", "birth_date": "Họ tên"},
                {"name": "Họ tên"}):  # fmt: skip
        with pytest.raises(ExtractError) as caught:
            readers.check_mapping(bad, headers)
        assert caught.value.code == "extract-mapping"


def test_signature_ignores_order_case_and_accents() -> None:
    one = readers.signature(["Họ tên", "Ngày sinh"])
    assert one == readers.signature(["NGAY_SINH", "ho ten"])
    assert one != readers.signature(["Họ tên", "Ngày sinh", "Giới tính"])


# -- staging --------------------------------------------------------------------------------------


def test_row_no_keeps_file_order_on_a_file_duckdb_scans_in_parallel(tmp_path: Path) -> None:
    # ~10 MB: DuckDB splits a CSV scan into chunks of a few MB, so two threads read this file
    # out of order unless insertion order is preserved.
    n = 300_000
    seq = np.arange(1, n + 1)
    table = pa.table(
        {
            "ma_ho_so": pa.array(seq).cast(pa.string()),
            "ho_ten": pa.array(np.char.add("Nguyễn Văn ", (seq % 997).astype(str))),
            "ngay_sinh": pa.array(np.full(n, "01/02/1990")),
        }
    )
    path = tmp_path / "big.csv"
    pacsv.write_csv(table, path)
    seen: list[int] = []
    sniffed = readers.sniff(path)
    out = tmp_path / "staged.parquet"
    stats = readers.stage(sniffed, readers.propose_mapping(sniffed.headers), out,
                          progress=seen.append)  # fmt: skip
    staged = pq.read_table(out)
    assert stats.rows == n
    assert np.array_equal(staged["row_no"].to_numpy(), seq)
    assert staged["agency_key"].to_pylist() == table["ma_ho_so"].to_pylist()
    assert seen == sorted(seen) and seen[-1] == n


def test_blank_rows_are_skipped_but_keep_their_row_numbers(tmp_path: Path) -> None:
    text = "\n\n" + HEADER + "HS1,An,1990,\n\n,,,\n  ,\u00a0,,\nHS2,Bình,1991,\n\n\n"
    sniffed, stats, rows = run(write(tmp_path, text))
    assert sniffed.header_line == 3
    assert [(r["row_no"], r["agency_key"]) for r in rows] == [(1, "HS1"), (5, "HS2")]
    assert stats.blank_rows_skipped == 3  # the lines after the last row are not rows


def test_duplicate_agency_keys_are_counted_not_refused(tmp_path: Path) -> None:
    text = HEADER + "K1,An,1990,\nK2,Bình,1990,\nK1,Chi,1990,\nK1,Dung,1990,\n,Em,1990,\n"
    _, stats, _ = run(write(tmp_path, text))
    assert stats.rows == 5
    assert stats.duplicate_agency_keys == 2
    assert stats.columns == ("agency_key", "full_name", "birth_date", "personal_id")


def test_unmapped_fields_are_absent_and_stage_replaces_atomically(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ROWS)
    sniffed = readers.sniff(path)
    out = tmp_path / "staged.parquet"
    readers.stage(sniffed, {"full_name": "Họ và tên", "birth_date": "Ngày sinh"}, out)
    schema = pq.read_schema(out)
    assert schema.names == ["row_no", "full_name", "birth_date"]
    assert schema.field("row_no").type == pa.int64()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extract.csv", "staged.parquet"]


def test_excel_numbers_and_dates(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for column, header in enumerate(["Họ và tên", "Ngày sinh", "Số CMND", "Mã hồ sơ"], 1):
        sheet.cell(row=2, column=column, value=header)  # row 1 left empty
    sheet.append([" Nguyễn Văn An ", dt.date(1990, 2, 1), 12345678, 7.0])
    sheet.append([])
    sheet.append(["Lê Thị Hà", dt.datetime(1991, 3, 4, 5, 6, 7), 2.5, "HS 2"])
    sheet.cell(row=9, column=1, value="   ")  # blank rows after the last row
    path = tmp_path / "extract.xlsx"
    book.save(path)
    sniffed, stats, rows = run(path)
    assert (sniffed.format, sniffed.header_line) == ("xlsx", 2)
    assert sniffed.sample[0] == ["Nguyễn Văn An", "01/02/1990", "12345678", "7"]
    assert rows == [
        {"row_no": 1, "agency_key": "7", "full_name": "Nguyễn Văn An",
         "birth_date": "01/02/1990", "old_id": "12345678"},
        {"row_no": 3, "agency_key": "HS 2", "full_name": "Lê Thị Hà",
         "birth_date": "04/03/1991 05:06:07", "old_id": "2.5"},
    ]  # fmt: skip
    assert stats.blank_rows_skipped == 1


def test_excel_value_without_a_header_is_refused(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Họ tên", "Năm sinh"])
    sheet.append(["An", 1990])
    sheet.append(["Bình", 1991, "lạc cột"])
    path = tmp_path / "extract.xlsx"
    book.save(path)
    error = refused(path, "extract-row")
    assert error.line == 3 and "column C" in error.message
    # The half-read sheet's file is closed now, not whenever the collector finds it (an
    # unclosed file surfaced as a ResourceWarning in a later test).
    assert not held_open(path)


def test_parquet_typed_columns_become_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "full_name": [" Le\u0302 Van An ", "Trần Bình", None],
            "birth_date": pa.array([dt.date(1990, 2, 1), None, dt.date(2001, 1, 9)]),
            "old_id": pa.array([123456789.0, 2.5, None]),
            "agency_key": pa.array([1, 2, 3], pa.int32()),
            "seen_at": pa.array([dt.datetime(2024, 5, 6, 7, 8, 9)] * 3),
        }
    )
    path = tmp_path / "extract.bin"  # recognised by its content
    pq.write_table(table, path)
    sniffed, stats, rows = run(path)
    assert sniffed.format == "parquet"
    assert rows == [
        {"row_no": 1, "agency_key": "1", "full_name": "Lê Van An", "birth_date": "1990-02-01",
         "old_id": "123456789"},
        {"row_no": 2, "agency_key": "2", "full_name": "Trần Bình", "birth_date": None,
         "old_id": "2.5"},
        {"row_no": 3, "agency_key": "3", "full_name": None, "birth_date": "2001-01-09",
         "old_id": None},
    ]  # fmt: skip
    assert stats.blank_rows_skipped == 0


# -- refusals -------------------------------------------------------------------------------------


def test_empty_files(tmp_path: Path) -> None:
    refused(write(tmp_path, b""), "extract-empty")
    refused(write(tmp_path, "\n \n"), "extract-empty")
    refused(write(tmp_path, HEADER), "extract-empty")
    refused(write(tmp_path, HEADER + "\n,,,\n"), "extract-empty")  # only blank rows
    pq.write_table(pa.table({"full_name": pa.array([], pa.string())}), tmp_path / "e.parquet")
    refused(tmp_path / "e.parquet", "extract-empty")


def test_a_row_that_is_blank_in_the_mapped_columns_only(tmp_path: Path) -> None:
    path = write(tmp_path, "Họ tên,Năm sinh,Ghi chú\n,,x\n")
    sniffed = readers.sniff(path)
    with pytest.raises(ExtractError) as caught:
        readers.stage(sniffed, readers.propose_mapping(sniffed.headers), tmp_path / "s.parquet")
    assert caught.value.code == "extract-empty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extract.csv"]


def test_an_unknown_delimiter(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "Họ tên:Năm sinh\nAn:1990\n"), "extract-delimiter")
    assert "semicolon" in error.message and "tab" in error.message
    refused(write(tmp_path, HEADER + ROWS), "extract-delimiter", delimiter=";")


def test_unknown_encodings(tmp_path: Path) -> None:
    # Windows-1252 French: decodes as cp1258 too, but has no letter only Vietnamese uses.
    refused(write(tmp_path, "Nom,Né le\nJosé Müller,1990\n".encode("cp1252")), "extract-encoding")
    refused(write(tmp_path, HEADER + ROWS), "extract-encoding", encoding="klingon")


def test_invalid_utf8_after_the_sample_names_its_line(tmp_path: Path) -> None:
    rows = "Nguyễn Văn An,1990\n" * 60_000  # more than the sniffed sample
    path = write(tmp_path, ("Họ và tên,Ngày sinh\n" + rows).encode() + b"L\xea,1990\n")
    assert readers.sniff(path).encoding == "utf-8"
    assert refused(path, "extract-encoding").line == 60_002


@pytest.mark.parametrize(
    ("data", "name", "what"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "bhxh.xls", ".xls"),
        (b"%PDF-1.7\n...", "extract.pdf", "PDF"),
        (b"PAR1 not really PAR1", "extract.parquet", "Parquet"),
        (b"PK\x03\x04 not really a zip", "extract.xlsx", "Excel"),
        (b"<html><table><tr><td>Ho ten</td></tr></table></html>", "export.xls", "web page"),
        (b'{"ho_ten": "An"}', "extract.json", "JSON"),
        (b"\x00\x01\x02\x03" * 20, "extract.dat", "not a text file"),
    ],
)
def test_unsupported_or_damaged_formats(tmp_path: Path, data: bytes, name: str, what: str) -> None:
    error = refused(write(tmp_path, data, name), "extract-format")
    assert what in error.message


def test_zip_files_that_are_not_workbooks(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.xlsx", "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    assert ".ods" in refused(tmp_path / "a.xlsx", "extract-format").message
    with zipfile.ZipFile(tmp_path / "b.xlsx", "w") as archive:
        archive.writestr("xl/workbook.xml", "<not a workbook")
    refused(tmp_path / "b.xlsx", "extract-format")


def test_a_truncated_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"full_name": ["An"] * 1000, "birth_date": ["1990"] * 1000}), path)
    path.write_bytes(path.read_bytes()[:-100])
    refused(path, "extract-format")


def test_duplicate_headers(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "Họ tên,Năm sinh,HO TEN\nAn,1990,An\n"), "extract-headers")
    assert "'Họ tên' and 'HO TEN'" in error.message
    refused(write(tmp_path, "Họ tên,Năm sinh,Năm sinh\nAn,1990,1990\n"), "extract-headers")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEADER + "HS1,An,1990,\nHS2,Bình,1991\n", 3),  # too few values
        (HEADER + "HS1,An,1990,,x\n", 2),  # too many
        (HEADER + 'HS1,"An\nthứ hai",1990,\nHS2,Bình\n', 3),  # a quoted newline is one line
        (HEADER + "HS1,An,1990,\n\nHS2,Bình\n", 4),  # an empty line counts
        ("\n\n" + HEADER + "HS1,An,1990,\nHS2,Bình\n", 5),  # so do those before the header
    ],
)
def test_a_ragged_row_names_its_line(tmp_path: Path, text: str, line: int) -> None:
    error = refused(write(tmp_path, text), "extract-row")
    assert error.line == line
    assert f"line {line}" in error.message
    assert "Bình" not in error.message  # the row's personal data stays out of the message
    assert error.line == refused(write(tmp_path, cp1258(text)), "extract-row").line


def test_an_unterminated_quote(tmp_path: Path) -> None:
    error = refused(write(tmp_path, HEADER + 'HS1,"An,1990,\nHS2,Bình,1991,\n'), "extract-row")
    assert error.line == 2 and "quote" in error.message


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_the_rewrite_works_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(encodings, "_CHUNK", chunk)
    text = '\r\n\nA;B\r\n1;"x\n\ny"\r\n\r\n\r\n2;z\n\n'
    src = write(tmp_path, text.encode("utf-16"))
    assert encodings.has_inner_blank_lines(write(tmp_path, text, "u.csv"))
    assert not encodings.has_inner_blank_lines(write(tmp_path, "A;B\n1;2\n\n\r\n", "v.csv"))
    encodings.transcode(src, tmp_path / "out.csv", "utf-16", filler=";")
    # Blank lines before the header and after the last row go; those between rows are rows
    # of empty values; the empty line inside the quoted value stays.
    assert (tmp_path / "out.csv").read_bytes() == b'A;B\r\n1;"x\n\ny"\r\n;\r\n;\r\n2;z\n'


def test_a_byte_the_named_encoding_lacks(tmp_path: Path) -> None:
    path = write(tmp_path, cp1258("Họ tên,Năm sinh\nAn,1990\n") + b"B\x81nh,1991\n")
    error = refused(path, "extract-encoding", encoding="cp1258")
    assert error.line == 3


# -- the round trip -------------------------------------------------------------------------------

VIETNAMESE = "aăâbdđeêioôơuưyAĂÂĐƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệòóỏõọờớởỡợùúủũụừứửữựỳýỷỹỵ"
PRINTABLE = st.text(
    st.one_of(
        st.sampled_from(VIETNAMESE + ' \u00a0\u3000\t\n",;|'),  # often representable in cp1258
        st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")),
    ),
    max_size=12,
)
PROPERTY_HEADER = ["Họ và tên", "Ngày sinh", "Số CCCD"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(PRINTABLE, PRINTABLE, PRINTABLE), min_size=1, max_size=15),
    delim=st.sampled_from(encodings.DELIMITERS),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "cp1258"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_table_stages_back_to_its_nfc_trimmed_values(
    rows: list[tuple[str, str, str]], delim: str, encoding: str, newline: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delim, lineterminator=newline)
    writer.writerow(PROPERTY_HEADER)
    writer.writerows(rows)
    try:
        data = encode(buffer.getvalue(), encoding)
    except UnicodeEncodeError:
        data = encode(buffer.getvalue(), "utf-8")
    expected = [
        (i, *(encodings.clean_value(v) or None for v in row)) for i, row in enumerate(rows, 1)
    ]
    expected = [row for row in expected if any(v is not None for v in row[1:])]
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), data)
        # UTF-16 BE is named: without a BOM, random text need not look like UTF-16.
        named = {"encoding": encoding} if encoding == "utf-16-be" else {}
        if not expected:
            with pytest.raises(ExtractError) as caught:
                run(path, **named)
            assert caught.value.code == "extract-empty"
            return
        sniffed, stats, staged = run(path, **named)
    assert sniffed.delimiter == delim
    assert [tuple(r.values()) for r in staged] == expected
    assert stats.rows == len(expected)
    assert stats.blank_rows_skipped == len(rows) - len(expected)
