"""Who is on which row of a synthetic extract (``extract.py``): the population file through
DuckDB, the places of both schemes, the drawn and the invented people, the duplicates and the
agency keys.

**Rows**: people drawn without replacement, alive, deceased and missing alike (agencies still
carry the dead); ``INVENTED_SHARE`` invented people (``names.py``'s tables, no one's
ID number, no one's folded name + birth year + sex); ``DUPLICATE_SHARE`` later copies of a
row's person, with defects of their own.

Each drawn person carries the flags the verdict rules need: whether someone else has their
folded name, birth date and sex (``ambiguous``), also their marked name or their province, or
the same with the birth year only; whether their old CMND is one two people share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa

from dancu.core.ids import PROVINCE_CODES
from dancu.core.names import fold
from dancu.core.units import REFORM_DATE, reference_rows
from dancu.synth import names
from dancu.synth.defects import core_province_name
from dancu.synth.names import choice

Communes = list[tuple[str, str, str]]  # (scheme, commune code, 2025 province code)

INVENTED_SHARE: Final = 0.04
DUPLICATE_SHARE: Final = 0.02
# fmt: off
_POP_COLUMNS: Final = ("personal_id", "full_name", "birth_date", "sex", "status",
                       "residence_commune_code", "residence_since", "address_line",
                       "old_id_number")
_REQUIRED: Final = frozenset(_POP_COLUMNS[:4] + _POP_COLUMNS[5:7])
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


# -- the population and its places ------------------------------------------------------------
# core.names.fold in SQL: strip_accents drops the combining marks NFD splits off; Đ/đ are
# letters of their own and are mapped first (reference/vietnam.md §6).
_FOLD_SQL: Final = (
    "CREATE MACRO fold(x) AS trim(regexp_replace(lower(strip_accents("
    "replace(replace(x, 'Đ', 'D'), 'đ', 'd'))), '\\s+', ' ', 'g'))"
)
_KEY_JOIN: Final = "k.f = fold(q.full_name) AND k.b = q.birth_date AND k.s = q.sex"
_YEAR_JOIN: Final = "k.f = fold(q.full_name) AND k.y = year(q.birth_date) AND k.s = q.sex"


class Population:
    """The population file through DuckDB: its sorted ID numbers, each (folded name, birth
    date, sex) with its head count, the shared CMND numbers, and the drawn people.
    ``communes``: each commune's province of today, for the look-alikes a province tells
    apart."""

    def __init__(self, path: Path, communes: Communes) -> None:
        # The cap keeps a national-size file within bounds (DuckDB spills beyond it).
        self.db = duckdb.connect(config={"memory_limit": "400MB"})
        try:
            self._open(path, communes)
        except duckdb.Error as exc:
            self.db.close()
            raise ValueError(f"{path.name}: {exc}") from None

    def _open(self, path: Path, communes: Communes) -> None:
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
class Places:
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
    def load(cls) -> Places:
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
class Plan:
    cast: pa.Table  # one row per extract row, in order: the person's data and flags
    duplicate_of: list[int | None]  # for a later row of a person: the row_no of the first
    keys: list[str]  # agency keys
    duplicate_keys: int


def plan_extract(rng: np.random.Generator, pop: Population, rows: int, key_share: float) -> Plan:
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
    return Plan(base.take(person), duplicate_of, key_text, rows - len(np.unique(keys)))


def _invent(rng: np.random.Generator, pop: Population, like: pa.Table, n: int) -> pa.Table:
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
    family = choice(rng, names.FAMILY, n)
    middle = np.where(male, choice(rng, names.MIDDLE_M, n), choice(rng, names.MIDDLE_F, n))
    given = np.where(male, choice(rng, names.GIVEN_M, n), choice(rng, names.GIVEN_F, n))
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
