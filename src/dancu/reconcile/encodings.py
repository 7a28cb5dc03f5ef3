"""What an agency extract file is, before its rows are read: its format (by content), and for a
CSV file its text encoding, a decoded sample, its delimiter and the streaming rewrite to UTF-8
that DuckDB then reads. ``readers.py`` does the rest (Excel, Parquet, mapping, staging).

Agencies send UTF-8 (with or without a BOM), UTF-16 (Excel's "Unicode text", often without a
BOM) and Windows-1258, the Vietnamese Windows code page, which writes tone marks as separate
combining characters ("ễ" is "ê" + U+0303); the staged file is NFC either way.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Final, Literal

from dancu.core.errors import Invalid

# Bytes decoded to recognise the encoding and to sniff the delimiter and header.
SAMPLE_BYTES: Final = 1 << 20
_CHUNK: Final = 8 << 20
# A "line" longer than this with no line feed (a file with old Mac CR line ends) is passed on
# as it is rather than held in memory waiting for a line feed.
_MAX_CARRY: Final = 64 << 20

# Every character str.isspace() accepts, plus the zero-width space and U+FEFF, which
# spreadsheets leave at the edges of pasted cells. The same set trims values in Python (the
# sniffed sample) and in SQL (the staged file), so a preview shows what staging writes.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\ufeff"
)

# The names used in messages, by Python codec name.
LABELS: Final = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with BOM)",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32": "UTF-32",
    "cp1258": "Windows-1258",
}
SUPPORTED_ENCODINGS: Final = "UTF-8, UTF-16 or Windows-1258 (Vietnamese)"

# -- formats: recognised by their first bytes; a few extensions name what cannot be read.
SUPPORTED_FORMATS: Final = "CSV, TSV or TXT text files, Excel workbooks (.xlsx) and Parquet files"
SAVE_AS: Final = "open it in Excel and save it as .xlsx or 'CSV UTF-8'"
_REFUSED_MAGIC: Final = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel 97-2003 workbook (.xls) or Office file"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"PK\x05\x06", "an empty zip archive"),
)
_REFUSED_SUFFIXES: Final = {
    ".json": "a JSON file",
    ".xml": "an XML file",
    ".html": "a web page",
    ".htm": "a web page",
}

# -- delimiters
DELIMITERS: Final = (",", ";", "\t", "|")
DELIMITER_NAMES: Final = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar (|)"}
SNIFF_RECORDS: Final = 200  # records parsed per candidate delimiter

# -- encodings
# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Letters only Vietnamese uses among the languages cp1258 shares bytes with (French, German...),
# and the combining tone marks cp1258 writes after a vowel. "ê" or "ô" alone would also match
# a French file in Windows-1252, so they do not count.
_VIETNAMESE: Final = re.compile("[ăĂđĐơƠưƯ]|[aeiouyâêôAEIOUYÂÊÔ][\u0300\u0301\u0303\u0309\u0323]")
_CONTROL: Final = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
# Leading lines that hold nothing (before the header).
_LEADING_BLANKS: Final = re.compile(r"(?:[^\S\n]*\n)*")
# An empty line, in a piece of text that starts at the beginning of a line.
_BLANK: Final = re.compile(r"(?:\A|\n)\r?\n")


class ExtractError(Invalid):
    """An agency extract that cannot be read as it is; nothing was staged.

    ``code`` is stable (``extract-empty``, ``extract-encoding``...): the API's problem type and
    the key the UI translates. ``line`` is the line the message cites, when there is one: for
    CSV the line a spreadsheet shows (the header is line 1 unless blank lines precede it; a
    quoted value spanning several lines counts once; for an encoding error, the text line),
    for Excel the sheet row.
    """

    def __init__(self, code: str, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.line = line


def clean_value(value: str) -> str:
    """A value as staged: NFC, without leading and trailing whitespace (``WHITESPACE``)."""
    return unicodedata.normalize("NFC", value).strip(WHITESPACE)


def codec_name(encoding: str) -> str:
    """The Python codec name of an encoding given by an officer ("UTF8", "windows-1258")."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ExtractError(
            "extract-encoding",
            f"{encoding!r} is not an encoding dancu knows; use {SUPPORTED_ENCODINGS}",
        ) from None


def detect_encoding(head: bytes, *, at_eof: bool) -> str:
    """The codec of a text file from its first bytes: a BOM, then the NUL-byte pattern of UTF-16
    without a BOM, then strict UTF-8, then Windows-1258 when Vietnamese letters show."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16
    if b"\x00" in head:
        raise ExtractError(
            "extract-format", "the file is not a text file, an Excel workbook or a Parquet file"
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=at_eof)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        text = head.decode("cp1258")  # one byte a character: a cut sample decodes whole
    except UnicodeDecodeError:
        pass
    else:
        if _VIETNAMESE.search(text):
            return "cp1258"
    raise ExtractError(
        "extract-encoding",
        f"the file's text encoding is not recognised; save it as {SUPPORTED_ENCODINGS} "
        "(in Excel: Save As, 'CSV UTF-8'), or name the encoding",
    )


def _utf16_without_bom(head: bytes) -> str | None:
    # In UTF-16 text most code units are ASCII (digits, delimiters, spaces, line ends and the
    # letters Vietnamese shares with English) whose high byte is NUL, so NULs pile up on one
    # side of each pair; UTF-8 and Windows-1258 text has none.
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    if odd >= 0.3 * pairs and even <= 0.05 * pairs:
        return "utf-16-le"
    if even >= 0.3 * pairs and odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def read_sample(path: Path, encoding: str) -> tuple[str, bool]:
    """The start of the file decoded (``SAMPLE_BYTES``), without a BOM, and whether it is the
    whole file."""
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
        at_eof = not f.read(1)
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=at_eof)
    except UnicodeDecodeError as exc:
        raise decode_error(encoding, _newlines(head[: exc.start], encoding) + 1) from None
    # Binary data can pass for UTF-16 or UTF-8 by chance; as text it is full of control
    # characters, which a table of names and numbers has hardly any of.
    if len(_CONTROL.findall(text)) > 8 + 0.01 * len(text):  # a stray Ctrl-Z is fine
        raise ExtractError(
            "extract-format", "the file is not a text file, an Excel workbook or a Parquet file"
        )
    return text.removeprefix("\ufeff"), at_eof


def leading_blank_lines(text: str) -> int:
    """How many lines hold nothing before the first line with content."""
    match = _LEADING_BLANKS.match(text)
    return match.group().count("\n") if match else 0


def has_inner_blank_lines(path: Path) -> bool:
    """Whether the file has an empty line followed later by content (a quick byte scan; an
    empty line inside a quoted value also counts, which only costs a rewrite)."""
    prev = b""
    pending = False  # an empty line was seen, and only whitespace since
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            if pending and chunk.strip():
                return True
            data = prev[-2:] + chunk  # an empty line may straddle two chunks
            for pattern in (b"\n\n", b"\n\r\n"):
                at = data.find(pattern)
                if at >= 0:
                    if data[at:].strip():
                        return True
                    pending = True
            prev = chunk
    return False


def transcode(src: Path, dst: Path, encoding: str, *, filler: str) -> None:
    """Rewrite ``src`` as UTF-8 without a BOM, chunk by chunk (flat memory).

    DuckDB skips empty lines, which would shift every later row number, so empty lines between
    rows become ``filler`` (a row of empty values: the delimiter repeated), those before the
    header and after the last row are dropped. Raises ``extract-encoding`` naming the line of
    the first byte that is not valid in ``encoding``.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines = _Lines(filler)
    carry = ""
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while True:
            raw = fin.read(_CHUNK)
            try:
                text = carry + decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                line = lines.count + carry.count("\n") + _newlines(raw[: exc.start], encoding)
                raise decode_error(encoding, line + 1) from None
            if not raw:
                fout.write(lines.feed(text.removeprefix("\ufeff") if lines.first else text))
                return
            cut = text.rfind("\n") + 1
            if cut == 0 and len(text) < _MAX_CARRY:
                carry = text
                continue
            piece, carry = (text[:cut], text[cut:]) if cut else (text, "")
            fout.write(lines.feed(piece.removeprefix("\ufeff") if lines.first else piece))


class _Lines:
    """The empty-line rule of ``transcode``, fed pieces of text that end at a line end."""

    def __init__(self, filler: str) -> None:
        self.filler = filler
        self.first = True  # nothing fed yet (a BOM may still come)
        self.started = False  # the header has been seen
        self.in_quote = False  # the text so far ends inside a quoted value
        self.pending = 0  # empty lines held back until content follows them
        self.pending_end = "\n"
        self.count = 0  # line feeds fed so far, for error messages

    def feed(self, piece: str) -> str:
        self.first = False
        self.count += piece.count("\n")
        if self.started and not _BLANK.search(piece):
            # The common case, at C speed: no empty line, so only the quote parity moves.
            self.in_quote ^= piece.count('"') % 2 == 1
            return self._flush() + piece if piece else ""
        out: list[str] = []
        *whole, last = piece.split("\n")
        for line in whole:
            self._line(line + "\n", out)
        if last:
            self._line(last, out)
        return "".join(out)

    def _line(self, line: str, out: list[str]) -> None:
        # Before the header a line of spaces is blank too; after it, only an empty line is,
        # as in DuckDB's own reading (a line of spaces is a one-value row, reported as ragged).
        blank = not line.strip() if not self.started else not line.strip("\r\n")
        if blank and not self.in_quote:
            if self.started:
                self.pending += 1
                self.pending_end = "\r\n" if line.endswith("\r\n") else "\n"
            return
        out.append(self._flush())
        self.started = True
        out.append(line)
        self.in_quote ^= line.count('"') % 2 == 1

    def _flush(self) -> str:
        held, self.pending = self.pending, 0
        return (self.filler + self.pending_end) * held


def _newlines(raw: bytes, encoding: str) -> int:
    return raw.decode(encoding, errors="replace").count("\n")


def decode_error(encoding: str, line: int) -> ExtractError:
    """The error for text that is not valid in its encoding, from ``line`` on."""
    label = LABELS.get(encoding, encoding)
    return ExtractError(
        "extract-encoding",
        f"line {line} is not valid {label} text; save the whole file as {SUPPORTED_ENCODINGS} "
        "(in Excel: Save As, 'CSV UTF-8'), or name its encoding",
        line=line,
    )


# -- what the file is ---------------------------------------------------------------------


def file_format(path: Path) -> Literal["csv", "parquet", "xlsx"]:
    """The format of an extract, from its first bytes (the extension only refuses)."""
    if path.stat().st_size == 0:
        raise ExtractError("extract-empty", f"{path.name} is empty (0 bytes)")
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        _check_workbook(path)
        return "xlsx"
    what = next((what for magic, what in _REFUSED_MAGIC if head.startswith(magic)), None)
    what = what or _REFUSED_SUFFIXES.get(path.suffix.lower())
    if what:
        raise ExtractError(
            "extract-format", f"{path.name} is {what}; dancu reads {SUPPORTED_FORMATS}"
        )
    return "csv"


def damaged_workbook(path: Path) -> ExtractError:
    """The error for a file that looks like an Excel workbook but cannot be read as one."""
    return ExtractError("extract-format", f"{path.name} is not a readable Excel workbook")


def _check_workbook(path: Path) -> None:
    """Refuse a zip file that is not an Excel workbook (OpenDocument, Word, .xlsb...)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype") if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError):
        raise damaged_workbook(path) from None
    if "xl/workbook.bin" in names:
        what = "an Excel binary workbook (.xlsb)"
    elif b"opendocument.spreadsheet" in mimetype:
        what = "an OpenDocument spreadsheet (.ods)"
    elif any(name.startswith("xl/") for name in names):
        return
    elif "word/document.xml" in names:
        what = "a Word document"
    else:
        what = "a zip archive"
    raise ExtractError("extract-format", f"{path.name} is {what}; {SAVE_AS}")


def pick_delimiter(body: str, at_eof: bool, forced: str | None) -> tuple[str, list[list[str]]]:
    """The delimiter that splits the header into most columns and the rows consistently, and
    the sample's records split by it. ``extract-delimiter`` when none gives two columns."""
    candidates = (forced,) if forced else DELIMITERS
    best: tuple[tuple[bool, bool, int, int], str, list[list[str]]] | None = None
    for delim in candidates:
        records = _parse(body, delim, at_eof)
        if not records:
            continue
        width = len(records[0])
        rows = [r for r in records[1:] if r]
        consistent = sum(len(r) == width for r in rows)
        score = (width >= 2, consistent == len(rows), consistent, width)
        if best is None or score > best[0]:  # ties go to the earlier, commoner delimiter
            best = (score, delim, records)
    if best is None or len(best[2][0]) < 2:
        tried = ", ".join(DELIMITER_NAMES.get(d, repr(d)) for d in candidates)
        raise ExtractError(
            "extract-delimiter",
            f"the header has a single column with each column separator tried ({tried}); "
            "save the file with one of them between the columns, or name the separator",
        )
    return best[1], best[2]


def parse_records(body: str, delim: str, at_eof: bool, limit: int) -> list[list[str]]:
    """The first ``limit`` records of the sample (the header among them), split by ``delim``;
    a record the sample may have cut short is left out."""
    return _parse(body, delim, at_eof, limit)[:limit]


def _parse(body: str, delim: str, at_eof: bool, most: int = SNIFF_RECORDS) -> list[list[str]]:
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delim, quotechar='"')
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
            if len(records) > most:
                break
    except csv.Error:  # a value longer than the csv module allows: judge by what was read
        pass
    if records and not at_eof:
        records.pop()  # the sample may end inside the last record
    return records
