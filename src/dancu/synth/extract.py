"""Synthetic agency extracts with their ground truth (``dancu synth extract``).

To measure reconciliation, an extract like an agency's (social insurance, tax, a telco...) is
drawn from a population file (docs/formats.md) with real extracts' defects, beside a truth file
saying, per row, who the person is and what the pipeline should answer. Who is on which row
(drawn, invented and duplicated people) is ``cast.py``'s; this module renders the rows.

**Defects** are drawn per field from the ``*_MIX`` weights; one that cannot apply (an old CMND
for someone who had none, Hoàng/Huỳnh in a name with neither) leaves the value as registered.
Codes are reconciliation's ``fields.DIFFERENCES`` plus format-only ``fmt_*`` codes, never
differences:

- ID: ``id_missing``; ``id_old_cmnd`` (so_cmnd given, so_dinh_danh empty); ``id_leading_zeros``;
  ``id_transposed``, ``id_typo`` (never someone's number); ``fmt_id_spaced``. Besides,
  ``HARMLESS_CMND_SHARE`` of CMND holders whose ID is given have their CMND in so_cmnd.
- Name: ``fmt_upper``, ``fmt_nfd``, ``fmt_tone_placement`` (Hòa ↔ Hoà), ``fmt_spaces``,
  ``name_no_diacritics`` (half also upper case), ``name_order`` (given name first, a tenth
  with a typo), ``name_variant`` (Hoàng ↔ Huỳnh, Vũ ↔ Võ), ``name_typo`` (not in the first
  word), ``name_missing_part``. Birth date: dd/mm/yyyy, ``fmt_date_iso``, ``fmt_date_short``
  (d/m/yyyy), ``dob_year_only``, ``dob_swapped`` (day ≤ 12), ``dob_typo`` (a real date),
  ``dob_missing``; ``dob_placeholder`` (01/01/yyyy for a year-only date; the pipeline names
  it ``dob_year_only``), ``dob_year_off`` (the year from the traditional age, one off, as a
  year or 01/01/yyyy; the pipeline names it ``dob_typo``). Sex: Nam/Nữ, nam/nu, M/F, 1/0,
  ``sex_wrong``.
- Province of residence: the 2025 name, full or ``fmt_province_short`` ("TP HCM"); the
  pre-2025 name (``province_outdated`` when it names another province: "Bình Dương", now in TP
  HCM); ``fmt_province_code``; ``province_wrong``. Address: line, commune and province.

**Paper records**: ``LEGACY_SHARE`` of the rows draw ID, name and birth date from the
``LEGACY_*_MIX`` weights instead: the year only (placeholder, alone or one off), the number
often missing or mistyped, the name often in capitals without marks — the defects that come
together in real extracts (an independent hold-out missed on exactly these combinations).

Empty sex, province and address carry no code: DIFFERENCES has none (nothing to correct).

**Expected verdict**, the first rule that applies:

1. an invented person → ``not_found`` (a later copy of them → ``duplicate``);
2. a later row of a person already in the extract → ``duplicate`` (``duplicate_of`` = the
   row_no of their first row);
3. the ID is missing or damaged (empty, transposed, a wrong digit, or an old CMND two people
   share; not lost leading zeros, nor one person's CMND) **and** someone else fits the row as
   well as the person: the same registered folded name (``core.names.fold``), birth date and
   sex — and, when the row keeps the name's marks, the same marked name; when it gives the
   right province, the same province of residence; when it gives the year only, the same
   birth year instead of the date → ``ambiguous`` (DuckDB group-bys over the
   population: "Nguyễn Thị Hà" tells her from "Nguyễn Thị Hạ" when the marks are kept, "Hà
   Nội" from a namesake in Huế);
4. a deceased person → ``deceased``;
5. any code not starting ``fmt_`` → ``matched_with_differences``;
6. otherwise ``matched``.

The same seed and population give the same bytes (``.xlsx`` timestamps are pinned). Memory:
DuckDB's, capped, plus the drawn people and one chunk of rendered rows.
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dancu.synth.cast import Communes, Places, Plan, Population, plan_extract
from dancu.synth.defects import (
    add_spaces,
    cp1258_form,
    damage_id,
    date_typo,
    drop_leading_zeros,
    drop_middle,
    format_date,
    given_name_first,
    short_province,
    space_id,
    strip_diacritics,
    swap_day_month,
    swap_tone_placement,
    swap_variant,
    typo_name,
)
from dancu.synth.names import choice

ExtractProgress = Callable[[int, int], None]

# -- the mix ----------------------------------------------------------------------------------
HARMLESS_CMND_SHARE: Final = 0.30
ADDRESS_SHARE: Final = 0.70
PROVINCE_SHORT_SHARE: Final = 0.4  # of province names: without "Tỉnh" / "Thành phố"
UPPER_WITHOUT_MARKS: Final = 0.5  # of names without diacritics: also upper case
TYPO_WITH_ORDER: Final = 0.1  # of names in another order: also a typo
NFD_WITH_UPPER: Final = 0.1  # of upper-case names: also decomposed
# Weights per field ("" = as registered; for the birth date, dd/mm/yyyy).
# fmt: off
ID_MIX: Final = {"": 78.5, "id_missing": 8, "id_old_cmnd": 5, "id_leading_zeros": 4,
                 "id_transposed": 1.5, "id_typo": 1, "fmt_id_spaced": 2}
NAME_MIX: Final = {"": 57.5, "fmt_upper": 10, "fmt_nfd": 5, "fmt_tone_placement": 3,
                   "name_no_diacritics": 12, "name_order": 3, "name_variant": 1.5, "name_typo": 3,
                   "name_missing_part": 2, "fmt_spaces": 3}
DOB_MIX: Final = {"": 67, "fmt_date_iso": 15, "fmt_date_short": 8, "dob_year_only": 5,
                  "dob_swapped": 2, "dob_typo": 1, "dob_missing": 2}
SEX_MIX: Final = {"Nam/Nữ": 72, "nam/nu": 10, "M/F": 8, "1/0": 5, "sex_wrong": 1, "empty": 4}
PROVINCE_MIX: Final = {"current": 45, "legacy": 25, "code": 5, "province_wrong": 1, "empty": 24}
# Records kept from paper, mostly of older people: the birth date known by its year only
# (written 01/01/yyyy, the usual placeholder, or the year alone; a fifth with the year
# counted from the traditional age, one off), the ID number more often missing or mistyped,
# the name more often in capitals without marks. Drawn for LEGACY_SHARE of the rows instead.
LEGACY_SHARE: Final = 0.04
LEGACY_ID_MIX: Final = {"": 50, "id_missing": 35, "id_typo": 10, "id_transposed": 5}
LEGACY_NAME_MIX: Final = {"": 35, "fmt_upper": 25, "name_no_diacritics": 40}
LEGACY_DOB_MIX: Final = {"dob_placeholder": 45, "dob_year_only": 35, "dob_year_off": 20}
# Column headers, in the order of reconciliation's fields.FIELDS (the English ones are they).
HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "vi": ("ma_ho_so", "ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "so_cmnd", "dia_chi",
           "tinh_thanh"),
    "vi-display": ("Mã hồ sơ", "Họ và tên", "Ngày sinh", "Giới tính", "Số CCCD", "Số CMND",
                   "Địa chỉ", "Tỉnh/Thành phố"),
    "en": ("agency_key", "full_name", "birth_date", "sex", "personal_id", "old_id", "address",
           "province"),
}
ENCODINGS: Final = ("utf-8", "utf-8-sig", "utf-16", "cp1258")
DELIMITERS: Final = (",", ";", "\t")
FORMATS: Final = (".csv", ".parquet", ".xlsx")

_SEX_STYLES: Final = {"Nam/Nữ": ("Nam", "Nữ"), "nam/nu": ("nam", "nu"), "M/F": ("M", "F"),
                      "1/0": ("1", "0"), "sex_wrong": ("Nữ", "Nam"), "empty": ("", "")}
_TRUTH: Final = pa.schema([("row_no", pa.int64()), ("true_personal_id", pa.string()),
                           ("expected_verdict", pa.string()), ("duplicate_of", pa.int64()),
                           ("defects", pa.string())])
# fmt: on
_YEAR_ONLY: Final = frozenset({"dob_year_only", "dob_placeholder", "dob_year_off"})
_DAMAGED: Final = frozenset({"id_missing", "id_transposed", "id_typo"})
_CHUNK: Final = 50_000
_XLSX_MAX_ROWS: Final = 1_048_575  # Excel's 1,048,576 rows less the header


@dataclass(slots=True)
class ExtractStats:
    """What ``write_extract`` wrote: rows, where, and counts per verdict and defect code (in
    the order they first came; reconciliation's ``generate_extract`` puts them in its own)."""

    rows: int
    out: Path
    truth: Path
    verdicts: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0  # rows whose agency key an earlier row already has


_LEGACY_MIXES: Final = (
    {"legacy": LEGACY_SHARE, "": 1 - LEGACY_SHARE},
    LEGACY_ID_MIX,
    LEGACY_NAME_MIX,
    LEGACY_DOB_MIX,
)

# -- rendering a row --------------------------------------------------------------------------
_NAME_STEPS: Final[dict[str, Callable[[str, random.Random], str]]] = {
    "fmt_upper": lambda s, _: s.upper(),
    "fmt_nfd": lambda s, _: unicodedata.normalize("NFD", s),
    "fmt_tone_placement": lambda s, _: swap_tone_placement(s),
    "fmt_spaces": add_spaces,
    "name_no_diacritics": lambda s, _: strip_diacritics(s),
    "name_order": lambda s, _: given_name_first(s),
    "name_variant": lambda s, _: swap_variant(s),
    "name_typo": typo_name,
    "name_missing_part": drop_middle,
}
# Some rows of a kind carry a second defect; the steps run in the order given (a typo is made
# in Vietnamese order, before the words move).
_NAME_ALSO: Final = {
    "name_no_diacritics": (("name_no_diacritics", "fmt_upper"), UPPER_WITHOUT_MARKS),
    "fmt_upper": (("fmt_upper", "fmt_nfd"), NFD_WITH_UPPER),
    "name_order": (("name_typo", "name_order"), TYPO_WITH_ORDER),
}


@dataclass(frozen=True, slots=True)
class _Renderer:
    """Writes one person as one extract row, noting each defect's code as it goes."""

    rnd: random.Random
    pop: Population
    places: Places

    def row(
        self, p: dict[str, Any], kind: tuple[str, ...], u: list[float]
    ) -> tuple[list[str], list[str], bool]:
        """The row's values after the agency key, its codes, and whether its ID is missing or
        damaged as the ambiguity rule means it."""
        codes: list[str] = []
        pid, cmnd, damaged = self.personal_id(p, kind[0], u[0] < HARMLESS_CMND_SHARE, codes)
        name, born = self.name(p["full_name"], kind[1], codes), self.birth(p, kind[2], codes)
        sex = _SEX_STYLES[kind[3]][p["sex"] == "F"]
        codes += ["sex_wrong"] if kind[3] == "sex_wrong" else []
        where = self.places.residence(p["residence_commune_code"], p["residence_since"])
        province = self.province(where[0], where[1], kind[4], u[2] < PROVINCE_SHORT_SHARE, codes)
        parts = (p["address_line"], *where[2:])
        address = ", ".join(x for x in parts if x) if u[1] < ADDRESS_SHARE else ""
        return [name, born, sex, pid, cmnd, address, province], codes, damaged

    def personal_id(
        self, p: dict[str, Any], kind: str, harmless: bool, codes: list[str]
    ) -> tuple[str, str, bool]:
        number, cmnd = p["personal_id"], p["old_id_number"] or ""
        if kind == "id_missing":
            codes.append(kind)
            return "", "", True
        if kind == "id_old_cmnd" and cmnd:
            codes.append(kind)
            return "", cmnd, bool(p["shared_cmnd"])  # a shared CMND identifies no one
        text = number
        if kind == "id_leading_zeros":
            text = drop_leading_zeros(number)
        elif kind in ("id_transposed", "id_typo"):
            text = damage_id(number, kind, self.rnd, self.pop.taken)
        elif kind == "fmt_id_spaced":
            text = space_id(number, self.rnd)
        codes += [kind] if text != number else []
        return text, cmnd if harmless else "", text != number and kind in _DAMAGED

    def name(self, name: str, kind: str, codes: list[str]) -> str:
        steps: tuple[str, ...] = (kind,) if kind else ()
        if kind in _NAME_ALSO and self.rnd.random() < _NAME_ALSO[kind][1]:
            steps = _NAME_ALSO[kind][0]
        for code in steps:
            changed = _NAME_STEPS[code](name, self.rnd)
            codes += [code] if changed != name else []  # no Hoàng to read as Huỳnh...
            name = changed
        return name

    def birth(self, p: dict[str, Any], kind: str, codes: list[str]) -> str:
        born: date = p["birth_date"]
        written: date | None = born
        if kind == "dob_swapped":
            written = swap_day_month(born)
        elif kind == "dob_typo":
            written = date_typo(born, self.rnd, self.pop.latest_birth)
        elif kind == "dob_year_off":  # the year from the traditional age: mostly one earlier
            written = born.replace(year=born.year + (1 if self.rnd.random() < 0.2 else -1), day=1)
        style = "" if kind in ("dob_swapped", "dob_typo") else kind
        if kind == "dob_year_off":
            style = "dob_placeholder" if self.rnd.random() < 0.5 else "dob_year_only"
        text = "" if kind == "dob_missing" else format_date(written or born, style)
        codes += [kind] if text != format_date(born, "") else []
        return text

    def province(self, old: str, new: str, kind: str, short: bool, codes: list[str]) -> str:
        names = self.places.current_names
        if kind in ("empty", "code"):
            codes += ["fmt_province_code"] if kind == "code" else []
            return new if kind == "code" else ""
        if kind == "legacy":
            name = self.places.legacy_names[old]
            codes += ["province_outdated"] if (old, new) in self.places.renamed else []
        elif kind == "province_wrong":
            name = names[self.rnd.choice([c for c in names if c != new])]
            codes.append(kind)
        else:
            name = names[new]
        codes += ["fmt_province_short"] if short else []
        return short_province(name, self.rnd) if short else name


def _verdict(
    p: dict[str, Any], duplicate: bool, damaged: bool, codes: list[str], placed: bool
) -> str:
    """The expected verdict by the rules of the module docstring, in their order.
    ``placed``: the row gives the person's province."""
    if p["invented"] and not duplicate:
        return "not_found"
    if duplicate:
        return "duplicate"
    marked = "name_no_diacritics" not in codes
    twin = {
        (False, False): "ambiguous",
        (True, False): "ambiguous_marked",
        (False, True): "ambiguous_placed",
        (True, True): "ambiguous_marked_placed",
    }[(marked, placed)]
    if _YEAR_ONLY & set(codes):  # the row gives the year: a twin need only share that
        twin = "ambiguous_folded_y" if twin == "ambiguous" else f"{twin}_y"
    if damaged and p[twin]:
        return "ambiguous"
    if p["status"] == "deceased":
        return "deceased"
    differs = any(not c.startswith("fmt_") for c in codes)
    return "matched_with_differences" if differs else "matched"


def _render_chunk(
    rng: np.random.Generator, plan: Plan, start: int, n: int, draw: _Renderer
) -> tuple[list[list[str]], pa.Table]:
    """The extract rows ``start`` .. ``start + n`` and their truth rows."""
    mixes = (ID_MIX, NAME_MIX, DOB_MIX, SEX_MIX, PROVINCE_MIX)
    kinds = list(zip(*(choice(rng, m, n).tolist() for m in mixes), strict=True))
    legacy = zip(*(choice(rng, m, n).tolist() for m in _LEGACY_MIXES), strict=True)
    for i, (old, id_kind, name_kind, dob_kind) in enumerate(legacy):
        if old == "legacy":
            kinds[i] = (id_kind, name_kind, dob_kind, *kinds[i][3:])
    u = rng.random((n, 3)).tolist()  # harmless CMND, address given, short province name
    out: list[list[str]] = []
    truth: dict[str, list[Any]] = {name: [] for name in _TRUTH.names}
    for i, p in enumerate(plan.cast.slice(start, n).to_pylist()):
        values, codes, damaged = draw.row(p, kinds[i], u[i])
        duplicate_of = plan.duplicate_of[start + i]
        out.append([plan.keys[start + i], *values])
        truth["row_no"].append(start + i + 1)
        truth["true_personal_id"].append(None if p["invented"] else p["personal_id"])
        placed = bool(values[6]) and "province_wrong" not in codes
        verdict = _verdict(p, duplicate_of is not None, damaged, codes, placed)
        truth["expected_verdict"].append(verdict)
        truth["duplicate_of"].append(duplicate_of)
        truth["defects"].append("|".join(codes))
    return out, pa.table(truth, schema=_TRUTH)


# -- writing ----------------------------------------------------------------------------------
class _Writer:
    """Streams rows to CSV (in ENCODINGS, with DELIMITERS), Parquet (strings) or Excel."""

    def __init__(self, out: Path, header: tuple[str, ...], encoding: str, delimiter: str) -> None:
        self.out, self.kind, self.cp1258 = out, out.suffix.lower(), encoding == "cp1258"
        if self.kind == ".csv":
            self.file = out.open("w", encoding=encoding, newline="")
            self.csv = csv.writer(self.file, delimiter=delimiter)
        elif self.kind == ".parquet":
            self.schema = pa.schema([(h, pa.string()) for h in header])
            self.parquet = pq.ParquetWriter(out, self.schema)
        else:
            from openpyxl import Workbook  # for .xlsx only

            self.book = Workbook(write_only=True)
            self.sheet = self.book.create_sheet("extract")
        if self.kind != ".parquet":
            self.write([list(header)])

    def write(self, rows: list[list[str]]) -> None:
        if self.kind == ".csv":
            self.csv.writerows([[cp1258_form(v) for v in r] for r in rows] if self.cp1258 else rows)
        elif self.kind == ".parquet":
            columns = [pa.array(c, pa.string()) for c in zip(*rows, strict=True)]
            self.parquet.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        else:
            for r in rows:
                self.sheet.append(r)

    def close(self) -> None:
        if self.kind == ".csv":
            self.file.close()
        elif self.kind == ".parquet":
            self.parquet.close()
        else:
            self.book.save(self.out)
            _pin_xlsx(self.out)


def _pin_xlsx(path: Path) -> None:
    """openpyxl stamps the zip entries and docProps/core.xml with the time of saving; pin both
    so that the same seed gives the same bytes."""
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2000-01-01T00:00:00Z", data)
            # A ZipInfo's own compression applies (stored by default), not the archive's.
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)


def _check(
    rows: int, out: Path, truth: Path, headers: str, encoding: str, delimiter: str, share: float
) -> None:
    kind = out.suffix.lower()
    # fmt: off
    problems = (
        (rows < 1, "rows must be at least 1"),
        (kind not in FORMATS, f"{out.name}: an extract is {', '.join(FORMATS)}"),
        (headers not in HEADERS, f"headers {headers!r}: choose {', '.join(HEADERS)}"),
        (encoding not in ENCODINGS, f"encoding {encoding!r}: choose {', '.join(ENCODINGS)}"),
        (delimiter not in DELIMITERS, f"delimiter {delimiter!r}: choose ',', ';' or a tab"),
        (kind != ".csv" and (encoding, delimiter) != ("utf-8", ","),
         "the encoding and the delimiter apply to CSV extracts only"),
        (not 0.0 <= share <= 0.5, f"duplicate-keys share {share}: from 0 to 0.5"),
        (kind == ".xlsx" and rows > _XLSX_MAX_ROWS, "an Excel sheet holds 1,048,575 rows"),
        (truth.suffix.lower() != ".parquet" or truth.resolve() == out.resolve(),
         f"{truth.name}: the truth file is a .parquet file other than the extract"),
        (not out.parent.is_dir(), f"{out.parent}: no such directory"),
        (not truth.parent.is_dir(), f"{truth.parent}: no such directory"),
    )
    # fmt: on
    for failed, message in problems:
        if failed:
            raise ValueError(message)


def write_extract(
    population: Path,
    rows: int,
    out: Path,
    *,
    communes: Communes,
    truth: Path | None = None,
    seed: int = 6,
    headers: str = "vi",
    encoding: str = "utf-8",
    delimiter: str = ",",
    duplicate_keys: float = 0.0,
    progress: ExtractProgress | None = None,
) -> ExtractStats:
    """Write a defective agency extract of ``rows`` rows drawn from ``population`` to ``out``
    (``.csv``, ``.parquet`` or ``.xlsx``) and its ground truth to ``truth`` (default
    ``<out stem>.truth.parquet``); the mix and the verdict rules are in the module docstring.

    ``headers`` is a key of HEADERS; ``encoding`` and ``delimiter`` apply to CSV;
    ``duplicate_keys`` is the share of rows given an earlier row's agency key (a bad input the
    reader must report); ``communes`` gives each commune's province of today. The same seed
    and population give the same files. Raises
    ``ValueError`` for bad options or an unusable population; ``progress(done, total)`` follows
    the rows written.
    """
    out = Path(out)
    truth = Path(truth) if truth else out.with_name(f"{out.stem}.truth.parquet")
    _check(rows, out, truth, headers, encoding, delimiter, duplicate_keys)
    places = Places.load()
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    pop = Population(Path(population), communes)
    try:
        plan = plan_extract(rng, pop, rows, duplicate_keys)
    finally:  # what follows needs only the ID numbers: free DuckDB's memory
        pop.db.close()
    draw = _Renderer(random.Random(int(rng.integers(2**62))), pop, places)
    verdicts: Counter[str] = Counter()
    defects: Counter[str] = Counter()
    if progress:
        progress(0, rows)
    writer = _Writer(out, HEADERS[headers], encoding, delimiter)
    truth_writer = pq.ParquetWriter(truth, _TRUTH)
    ok = False
    try:
        for start in range(0, rows, _CHUNK):
            values, truth_rows = _render_chunk(rng, plan, start, min(_CHUNK, rows - start), draw)
            writer.write(values)
            truth_writer.write_table(truth_rows)
            verdicts.update(truth_rows["expected_verdict"].to_pylist())
            for codes in truth_rows["defects"].to_pylist():
                defects.update(codes.split("|") if codes else ())
            if progress:
                progress(start + truth_rows.num_rows, rows)
        ok = True
    finally:
        writer.close()
        truth_writer.close()
        if not ok:
            out.unlink(missing_ok=True)
            truth.unlink(missing_ok=True)
    return ExtractStats(rows, out, truth, dict(verdicts), dict(defects), plan.duplicate_keys)
