"""Synthetic agency extracts with their ground truth (``dancu synth extract``).

To measure reconciliation, an extract like an agency's (social insurance, tax, a telco...) is
drawn from a population file (docs/formats.md) with real extracts' defects, beside a truth file
saying, per row, who the person is and what the pipeline should answer.

**Rows**: people drawn without replacement, alive, deceased and missing alike (agencies still
carry the dead); ``INVENTED_SHARE`` invented people (``registry.synth``'s name tables, no one's
ID number, no one's folded name + birth year + sex); ``DUPLICATE_SHARE`` later copies of a
row's person, with defects of their own.

**Defects** are drawn per field from the ``*_MIX`` weights; one that cannot apply (an old CMND
for someone who had none, Hoàng/Huỳnh in a name with neither) leaves the value as registered.
Codes are ``fields.DIFFERENCES`` plus format-only ``fmt_*`` codes, never differences:

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
from functools import cache
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dancu.core.ids import PROVINCE_CODES
from dancu.core.names import fold
from dancu.core.units import REFORM_DATE, reference_rows
from dancu.reconcile.defects import (
    add_spaces,
    core_province_name,
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
from dancu.reconcile.fields import DIFFERENCES, FIELDS, VERDICTS
from dancu.reconcile.reference import commune_provinces
from dancu.registry.synth import _FAMILY, _GIVEN_F, _GIVEN_M, _MIDDLE_F, _MIDDLE_M, _choice

ExtractProgress = Callable[[int, int], None]

# -- the mix ----------------------------------------------------------------------------------
INVENTED_SHARE: Final = 0.04
DUPLICATE_SHARE: Final = 0.02
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
# Column headers, in fields.FIELDS order.
HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "vi": ("ma_ho_so", "ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "so_cmnd", "dia_chi",
           "tinh_thanh"),
    "vi-display": ("Mã hồ sơ", "Họ và tên", "Ngày sinh", "Giới tính", "Số CCCD", "Số CMND",
                   "Địa chỉ", "Tỉnh/Thành phố"),
    "en": FIELDS,
}
ENCODINGS: Final = ("utf-8", "utf-8-sig", "utf-16", "cp1258")
DELIMITERS: Final = (",", ";", "\t")
FORMATS: Final = (".csv", ".parquet", ".xlsx")

_SEX_STYLES: Final = {"Nam/Nữ": ("Nam", "Nữ"), "nam/nu": ("nam", "nu"), "M/F": ("M", "F"),
                      "1/0": ("1", "0"), "sex_wrong": ("Nữ", "Nam"), "empty": ("", "")}
_POP_COLUMNS: Final = ("personal_id", "full_name", "birth_date", "sex", "status",
                       "residence_commune_code", "residence_since", "address_line",
                       "old_id_number")
_REQUIRED: Final = frozenset(_POP_COLUMNS[:4] + _POP_COLUMNS[5:7])
_TRUTH: Final = pa.schema([("row_no", pa.int64()), ("true_personal_id", pa.string()),
                           ("expected_verdict", pa.string()), ("duplicate_of", pa.int64()),
                           ("defects", pa.string())])
# fmt: on
# The drawn people: their register columns (dates as date32), then the generator's flags.
_PERSON: Final = pa.schema(
    [(c, pa.date32() if c.endswith(("_date", "_since")) else pa.string()) for c in _POP_COLUMNS]
    + [("ambiguous", pa.bool_()), ("invented", pa.bool_()), ("shared_cmnd", pa.bool_())]
    # Look-alikes that also share the marked name / the province / both.
    + [(f"ambiguous_{k}", pa.bool_()) for k in ("marked", "placed", "marked_placed")]
    # The same with the birth year in place of the date (rows that give the year only).
    + [(f"ambiguous_{k}_y", pa.bool_()) for k in ("folded", "marked", "placed", "marked_placed")]
)
_TWINS: Final = tuple(f"ambiguous_{k}" for k in ("marked", "placed", "marked_placed")) + tuple(
    f"ambiguous_{k}_y" for k in ("folded", "marked", "placed", "marked_placed")
)
_YEAR_ONLY: Final = frozenset({"dob_year_only", "dob_placeholder", "dob_year_off"})
_DAMAGED: Final = frozenset({"id_missing", "id_transposed", "id_typo"})
_CHUNK: Final = 50_000
_XLSX_MAX_ROWS: Final = 1_048_575  # Excel's 1,048,576 rows less the header


@dataclass(slots=True)
class ExtractStats:
    """What ``generate_extract`` wrote: rows, where, and counts per verdict and defect code."""

    rows: int
    out: Path
    truth: Path
    verdicts: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0  # rows whose agency key an earlier row already has


# -- the population and its places ------------------------------------------------------------
# core.names.fold in SQL: strip_accents drops the combining marks NFD splits off; Đ/đ are
# letters of their own and are mapped first (reference/vietnam.md §6).
_FOLD_SQL: Final = (
    "CREATE MACRO fold(x) AS trim(regexp_replace(lower(strip_accents("
    "replace(replace(x, 'Đ', 'D'), 'đ', 'd'))), '\\s+', ' ', 'g'))"
)
_KEY_JOIN: Final = "k.f = fold(q.full_name) AND k.b = q.birth_date AND k.s = q.sex"
_YEAR_JOIN: Final = "k.f = fold(q.full_name) AND k.y = year(q.birth_date) AND k.s = q.sex"


class _Population:
    """The population file through DuckDB: its sorted ID numbers, each (folded name, birth
    date, sex) with its head count, the shared CMND numbers, and the drawn people."""

    def __init__(self, path: Path) -> None:
        # The cap keeps a national-size file within bounds (DuckDB spills beyond it).
        self.db = duckdb.connect(config={"memory_limit": "400MB"})
        try:
            self._open(path)
        except duckdb.Error as exc:
            self.db.close()
            raise ValueError(f"{path.name}: {exc}") from None

    def _open(self, path: Path) -> None:
        literal = "'" + str(path).replace("'", "''") + "'"
        source = {
            ".parquet": f"read_parquet({literal})",
            ".csv": f"read_csv({literal}, header = true, all_varchar = true, delim = ',')",
        }.get(path.suffix.lower())
        if source is None:
            raise duckdb.InvalidInputException("a population file is .parquet or .csv")
        have = {r[0] for r in self.db.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        if _REQUIRED - have:
            raise duckdb.InvalidInputException(f"no column {', '.join(sorted(_REQUIRED - have))}")
        types = {c: "DATE" if c.endswith(("_date", "_since")) else "VARCHAR" for c in _POP_COLUMNS}
        columns = ", ".join(
            f"CAST({c if c in have else 'NULL'} AS {t}) AS {c}" for c, t in types.items()
        )
        self.db.execute(_FOLD_SQL)
        self.db.execute(f"CREATE VIEW person AS SELECT {columns} FROM {source}")
        self.db.execute(
            "CREATE TEMP TABLE person_key AS SELECT fold(full_name) AS f, birth_date AS b, "
            "sex AS s, count(*) AS n FROM person GROUP BY ALL"
        )
        self.db.execute(
            "CREATE TEMP TABLE person_year AS SELECT fold(full_name) AS f, year(birth_date) AS y, "
            "sex AS s FROM person GROUP BY ALL"
        )
        # The province of residence, for the look-alikes a given province tells apart.
        communes = commune_provinces()
        self.db.register(
            "communes_arrow",
            pa.table({k: [c[i] for c in communes] for i, k in enumerate(("sc", "code", "p"))}),
        )
        self.db.execute(
            "CREATE TEMP TABLE place AS SELECT q.personal_id, coalesce(c.p, c2.p) AS p "
            "FROM person q LEFT JOIN communes_arrow c ON c.code = q.residence_commune_code "
            "AND c.sc = CASE WHEN q.residence_since < DATE '2025-07-01' THEN 'legacy' "
            "ELSE '2025' END LEFT JOIN communes_arrow c2 ON c2.code = q.residence_commune_code "
            "AND c2.sc = '2025'"
        )
        self.db.unregister("communes_arrow")
        keys = {
            "folded": "fold(q.full_name)",
            "marked": "lower(q.full_name)",
            "placed": "fold(q.full_name) || '|' || coalesce(w.p, '')",
            "marked_placed": "lower(q.full_name) || '|' || coalesce(w.p, '')",
        }
        for name, key in keys.items():
            for suffix, born in (("", "q.birth_date"), ("_y", "year(q.birth_date)")):
                if (name, suffix) == ("folded", ""):
                    continue  # person_key's head counts
                self.db.execute(
                    f"CREATE TEMP TABLE twin_{name}{suffix} AS SELECT q.personal_id "
                    "FROM person q JOIN place w ON w.personal_id = q.personal_id "
                    f"QUALIFY count(*) OVER (PARTITION BY {key}, {born}, q.sex) > 1"
                )
        self.db.execute(
            "CREATE TEMP TABLE shared_cmnd AS SELECT old_id_number FROM person "
            "WHERE old_id_number IS NOT NULL GROUP BY ALL HAVING count(*) > 1"
        )
        ids = self.db.execute("SELECT CAST(personal_id AS BIGINT) AS v FROM person").fetchnumpy()
        self.ids, self.size = np.sort(ids["v"]), len(ids["v"])
        if self.size == 0:
            raise duckdb.InvalidInputException("the population file is empty")
        (latest,) = self.db.execute("SELECT max(birth_date) FROM person").fetchall()
        self.latest_birth: date = latest[0]

    def draw(self, numbers: np.ndarray) -> pa.Table:
        """The people with these ID numbers, in this order, with their flags (``ambiguous``:
        someone else has their folded name, birth date and sex)."""
        self.db.register("wanted", pa.table({"i": np.arange(len(numbers)), "v": numbers}))
        table = self.db.sql(
            "SELECT q.*, k.f IS NOT NULL AS ambiguous, false AS invented, "
            "q.old_id_number IN (SELECT old_id_number FROM shared_cmnd) AS shared_cmnd, "
            + ", ".join(
                f"q.personal_id IN (SELECT personal_id FROM twin_{t.removeprefix('ambiguous_')}) "
                f"AS {t}"
                for t in _TWINS
            )
            + " FROM wanted w JOIN person q ON CAST(q.personal_id AS BIGINT) = w.v "
            f"LEFT JOIN (SELECT * FROM person_key WHERE n > 1) k ON {_KEY_JOIN} ORDER BY w.i"
        ).to_arrow_table()
        self.db.unregister("wanted")
        return table.cast(_PERSON)

    def fits(self, people: pa.Table) -> np.ndarray:
        """Which of ``people`` have the folded name, birth year and sex of someone (a row
        giving the year only would fit them)."""
        probe = people.select(["full_name", "birth_date", "sex"])
        self.db.register("probe", probe.append_column("i", pa.array(np.arange(len(probe)))))
        query = f"SELECT i FROM probe q SEMI JOIN person_year k ON {_YEAR_JOIN}"
        hit = self.db.execute(query).fetchnumpy()["i"]
        self.db.unregister("probe")
        return np.isin(np.arange(len(probe)), hit)

    def taken(self, number: str) -> bool:
        """Whether a 12-digit number is someone's personal ID number."""
        i = int(np.searchsorted(self.ids, int(number)))
        return i < self.size and int(self.ids[i]) == int(number)


@dataclass(frozen=True, slots=True)
class _Places:
    """Communes and provinces of both schemes, from the shipped reference CSVs (no database)."""

    legacy: dict[str, tuple[str, str]]  # 63-province commune code -> (province code, name)
    current: dict[str, tuple[str, str]]  # 34-province commune code -> (province code, name)
    successor: dict[str, str]  # legacy commune -> its default 2025 commune
    predecessor: dict[str, str]  # 2025 commune -> the first legacy commune merged into it
    legacy_names: dict[str, str]
    current_names: dict[str, str]
    renamed: frozenset[tuple[str, str]]  # (old, new) province codes whose names differ

    @classmethod
    @cache  # static reference data: read once per process
    def load(cls) -> _Places:
        legacy, legacy_names, current, current_names = {}, {}, {}, {}
        for r in reference_rows("units_legacy.csv"):
            legacy_names[r["province_code"]] = r["province_name"]
            if r["commune_code"]:  # island districts had no communes
                legacy[r["commune_code"]] = (r["province_code"], r["commune_name"])
        for r in reference_rows("units_2025.csv"):
            current_names[r["province_code"]] = r["province_name"]
            current[r["commune_code"]] = (r["province_code"], r["commune_name"])
        successor: dict[str, str] = {}
        predecessor: dict[str, str] = {}
        # Default successions first: a new commune's predecessor is one it mostly came from.
        rows = reference_rows("succession_2025.csv")
        for r in sorted(rows, key=lambda r: (r["is_default"] != "1", r["old_commune_code"])):
            if r["is_default"] == "1":
                successor[r["old_commune_code"]] = r["new_commune_code"]
            predecessor.setdefault(r["new_commune_code"], r["old_commune_code"])
        renamed = frozenset(
            (old, new)
            for old, a in legacy_names.items()
            for new, b in current_names.items()
            if fold(core_province_name(a)) != fold(core_province_name(b))
        )
        return cls(legacy, current, successor, predecessor, legacy_names, current_names, renamed)

    def residence(self, code: str, since: date) -> tuple[str, str, str, str]:
        """(pre-2025 province code, 2025 province code, commune name, the province's name in
        the commune's scheme) for a commune code in the scheme in force on ``since``."""
        try:
            if since < REFORM_DATE:
                old, commune = self.legacy[code]
                new = self.current[self.successor[code]][0]
                return old, new, commune, self.legacy_names[old]
            new, commune = self.current[code]
            old = self.legacy[self.predecessor[code]][0] if code in self.predecessor else new
            return old, new, commune, self.current_names[new]
        except KeyError:
            raise ValueError(f"residence commune {code} (since {since}) is unknown") from None


# -- who is on which row ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Plan:
    cast: pa.Table  # one row per extract row, in order: the person's data and flags
    duplicate_of: list[int | None]  # for a later row of a person: the row_no of the first
    keys: list[str]  # agency keys
    duplicate_keys: int


def _plan(rng: np.random.Generator, pop: _Population, rows: int, key_share: float) -> _Plan:
    n_dup = round(rows * DUPLICATE_SHARE)
    n_base = rows - n_dup
    n_invented = round(n_base * INVENTED_SHARE)
    if n_base - n_invented > pop.size:
        need = n_base - n_invented
        raise ValueError(f"{rows:,} rows need {need:,} people; the population has {pop.size:,}")
    people = pop.draw(pop.ids[rng.choice(pop.size, n_base - n_invented, replace=False)])
    base = pa.concat_tables([people, _invent(rng, pop, people, n_invented)])
    base = base.take(rng.permutation(n_base))
    # A duplicate copies a base row and lands after it: its sort key lies strictly between
    # the source's position and the end.
    source = rng.integers(0, n_base, n_dup)
    later = source + (n_base - source) * (1.0 - rng.random(n_dup))
    order = np.argsort(np.concatenate([np.arange(n_base, dtype=np.float64), later]), kind="stable")
    person = np.concatenate([np.arange(n_base), source])[order]
    first = order < n_base
    first_row = np.zeros(n_base, dtype=np.int64)
    first_row[person[first]] = np.flatnonzero(first) + 1
    duplicate_of = [None if f else int(first_row[p]) for f, p in zip(first, person, strict=True)]
    # Agency keys: ten digits like a social-insurance number, unique unless asked otherwise.
    keys = rng.choice(10**10, rows, replace=False)
    n_same = min(round(rows * key_share), rows - 1)
    if n_same:
        # Each takes the key of an earlier row that keeps its own, so exactly n_same repeat.
        victims = rng.choice(np.arange(1, rows), n_same, replace=False)
        keeps = np.setdiff1d(np.arange(rows), victims)
        before = np.searchsorted(keeps, victims)  # row 0 keeps its key: at least 1
        keys[victims] = keys[keeps[(rng.random(n_same) * before).astype(np.int64)]]
    key_text = np.char.zfill(keys.astype(str), 10).tolist()
    return _Plan(base.take(person), duplicate_of, key_text, rows - len(np.unique(keys)))


def _invent(rng: np.random.Generator, pop: _Population, like: pa.Table, n: int) -> pa.Table:
    """``n`` people not in the register: no one has their ID number, nor their folded name,
    birth date and sex together (so a row without a usable ID fits no one)."""
    parts, have, seen = [like.slice(0, 0)], 0, set[str]()
    while have < n:
        batch = _invent_batch(rng, pop.latest_birth, like, n - have + 16)
        numbers = batch["personal_id"].to_pylist()
        clash = pop.fits(batch) | np.array([pop.taken(x) or x in seen for x in numbers])
        batch = batch.filter(pa.array(~clash)).slice(0, n - have)
        seen.update(batch["personal_id"].to_pylist())
        parts.append(batch)
        have += batch.num_rows
    return pa.concat_tables(parts)


def _invent_batch(rng: np.random.Generator, latest: date, like: pa.Table, n: int) -> pa.Table:
    male = rng.random(n) < 0.5
    family = _choice(rng, _FAMILY, n)
    middle = np.where(male, _choice(rng, _MIDDLE_M, n), _choice(rng, _MIDDLE_F, n))
    given = np.where(male, _choice(rng, _GIVEN_M, n), _choice(rng, _GIVEN_F, n))
    # Born near a drawn person and living where one lives: like the population, not in it.
    donor = like.take(rng.integers(0, like.num_rows, n))
    born = donor["birth_date"].to_numpy() + rng.integers(-365, 366, n).astype("timedelta64[D]")
    born = np.minimum(born, np.datetime64(latest, "D"))
    year = born.astype("datetime64[Y]").astype(np.int64) + 1970
    # The number's structure PPP G YY RRRRRR (core.ids; Circular 07/2016 Art. 7).
    places = np.array(sorted(int(c) for c in PROVINCE_CODES))
    century_sex = (year // 100 - 19) * 2 + np.where(male, 0, 1)
    prefix = places[rng.integers(0, len(places), n)] * 1000 + century_sex * 100 + year % 100
    numbers = prefix * 1_000_000 + rng.integers(0, 1_000_000, n)
    columns = {
        "personal_id": np.char.zfill(numbers.astype(str), 12).tolist(),
        "full_name": [f"{a} {b} {c}" for a, b, c in zip(family, middle, given, strict=True)],
        "birth_date": pa.array(born, pa.date32()),
        "sex": np.where(male, "M", "F").tolist(),
        "status": ["alive"] * n,
        **{c: donor[c] for c in ("residence_commune_code", "residence_since", "address_line")},
        "old_id_number": pa.nulls(n, pa.string()),
        **{c: [c == "invented"] * n for c in ("ambiguous", "invented", "shared_cmnd", *_TWINS)},
    }
    return pa.table(columns, schema=_PERSON)


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
    pop: _Population
    places: _Places

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
    rng: np.random.Generator, plan: _Plan, start: int, n: int, draw: _Renderer
) -> tuple[list[list[str]], pa.Table]:
    """The extract rows ``start`` .. ``start + n`` and their truth rows."""
    mixes = (ID_MIX, NAME_MIX, DOB_MIX, SEX_MIX, PROVINCE_MIX)
    kinds = list(zip(*(_choice(rng, m, n).tolist() for m in mixes), strict=True))
    legacy = zip(*(_choice(rng, m, n).tolist() for m in _LEGACY_MIXES), strict=True)
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
    (``.csv``, ``.parquet`` or ``.xlsx``) and its ground truth to ``truth`` (default
    ``<out stem>.truth.parquet``); the mix and the verdict rules are in the module docstring.

    ``headers`` is a key of HEADERS; ``encoding`` and ``delimiter`` apply to CSV;
    ``duplicate_keys`` is the share of rows given an earlier row's agency key (a bad input the
    reader must report). The same seed and population give the same files. Raises
    ``ValueError`` for bad options or an unusable population; ``progress(done, total)`` follows
    the rows written.
    """
    out = Path(out)
    truth = Path(truth) if truth else out.with_name(f"{out.stem}.truth.parquet")
    _check(rows, out, truth, headers, encoding, delimiter, duplicate_keys)
    places = _Places.load()
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    pop = _Population(Path(population))
    try:
        plan = _plan(rng, pop, rows, duplicate_keys)
    finally:  # what follows needs only the ID numbers: free DuckDB's memory
        pop.db.close()
    draw = _Renderer(random.Random(int(rng.integers(2**62))), pop, places)
    stats = ExtractStats(rows, out, truth, dict.fromkeys(VERDICTS, 0), {}, plan.duplicate_keys)
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
            for verdict in truth_rows["expected_verdict"].to_pylist():
                stats.verdicts[verdict] += 1
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
    order = {code: i for i, code in enumerate(DIFFERENCES)}
    stats.defects = dict(sorted(defects.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
    return stats
