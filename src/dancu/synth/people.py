"""The synthetic population (``dancu synth population``): people in the columns of a population
file (docs/formats.md).

The people are invented, but shaped like Vietnam's so that searches, dashboards, reconciliation
and benchmarks behave as they will on real data:

- **Where**: households are spread over the 63 provinces in proportion to the 2019 census
  (``synth/data/provinces_2019.csv``), uniformly over each province's communes.
- **Households**: sizes 1-8 with the 2019 census mean of about 3.5; a head, usually a spouse,
  children, sometimes a parent of the head or grandchildren. Children carry the father's
  family name and link to their parents; spouses link to each other.
- **Ages**: the head's age is drawn from an adult distribution and everyone else's follows from
  it, which yields the familiar pyramid. Older people are more often recorded as deceased.
- **Names**: family names with their real frequencies (Nguyễn ~38 %, Trần, Lê, Phạm...), the
  middle names and given names common for each sex, some four-part names.
- **Ethnicity and religion**: by region (Tày, Nùng, Thái, H'Mông in the northern mountains,
  Khmer in the Mekong delta, Ê Đê and Gia Rai in the Central Highlands...).
- **Identifiers**: a unique 12-digit personal ID number built from the birth province, sex and
  birth year (core.ids); about half of those old enough have an old 9-digit CMND number,
  including a share in the 271450001-271500000 range that Bà Rịa-Vũng Tàu and Đồng Nai both
  issued, so the same old number belongs to two people.
- **Units**: a fact dated before 1 July 2025 uses the 63-province commune codes, a later one
  the successor commune in the 34-province scheme, as an import requires.

Generation is vectorised with numpy in chunks, deterministic for a given seed and reference
date, and yields one Arrow table per chunk: constant memory. The name lists are in
``names.py``; ``registry/synth_population.py`` writes the chunks as a population file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib.resources import files

import numpy as np
import pyarrow as pa

from dancu.core.units import REFORM_DATE, reference_rows
from dancu.synth import names
from dancu.synth.names import choice

_CHUNK_PEOPLE = 100_000

_HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5, 6, 7, 8])
_HOUSEHOLD_SHARES = np.array([12.0, 21.0, 22.0, 25.0, 11.0, 5.0, 2.5, 1.5])
# Head of household ages 20-89 (2019 census shape: most heads are 35-64).
_HEAD_AGES = np.arange(20, 90)
_HEAD_AGE_W = np.interp(
    _HEAD_AGES, [20, 30, 40, 50, 60, 70, 80, 89], [1.0, 6.0, 10.0, 10.0, 8.0, 5.0, 2.5, 0.8]
)
# Old CMND: the range both Bà Rịa-Vũng Tàu and Đồng Nai police issued (vietnam.md section 1).
_SHARED_CMND = (271_450_001, 271_500_000)
_SHARED_ISSUERS = ("75", "77")


@dataclass(frozen=True, slots=True)
class _Geo:
    """Provinces and communes as flat arrays for vectorised lookup."""

    province_codes: np.ndarray  # legacy 2-digit codes, census order
    province_weights: np.ndarray
    commune_start: np.ndarray  # per province: first index into communes
    commune_count: np.ndarray
    communes: np.ndarray  # legacy 5-digit commune codes, grouped by province
    successor: np.ndarray  # per legacy commune: its default 2025 commune code

    @classmethod
    def load(cls) -> _Geo:
        with (files("dancu.synth") / "data" / "provinces_2019.csv").open(encoding="utf-8") as f:
            census = list(csv.DictReader(f))
        by_province: dict[str, list[str]] = {}
        for r in reference_rows("units_legacy.csv"):
            if not r["commune_code"]:  # a district listed without communes
                continue
            by_province.setdefault(r["province_code"], []).append(r["commune_code"])
        successor = {
            r["old_commune_code"]: r["new_commune_code"]
            for r in reference_rows("succession_2025.csv")
            if r["is_default"] == "1"
        }
        codes = [r["province_code"] for r in census]
        missing = set(codes) ^ set(by_province)
        if missing:
            raise RuntimeError(f"census and unit lists disagree on provinces {sorted(missing)}")
        communes = [c for p in codes for c in sorted(by_province[p])]
        counts = np.array([len(by_province[p]) for p in codes])
        weights = np.array([float(r["population_2019"]) for r in census])
        return cls(
            np.array(codes),
            weights / weights.sum(),
            np.concatenate([[0], np.cumsum(counts)[:-1]]),
            counts,
            np.array(communes),
            np.array([successor[c] for c in communes]),
        )

    def pick_communes(self, rng: np.random.Generator, provinces: np.ndarray) -> np.ndarray:
        """A uniformly chosen commune index in each given province index."""
        offset = (rng.random(len(provinces)) * self.commune_count[provinces]).astype(np.int64)
        return self.commune_start[provinces] + offset  # type: ignore[no-any-return]

    def province_of(self, commune_index: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.commune_start, commune_index, side="right") - 1

    def code_on(self, commune_index: np.ndarray, on: np.ndarray) -> np.ndarray:
        """The commune's code in the scheme in force on each date."""
        after = on >= np.datetime64(REFORM_DATE, "D")
        return np.where(after, self.successor[commune_index], self.communes[commune_index])  # type: ignore[no-any-return]


def _by_province(
    rng: np.random.Generator,
    province_codes: np.ndarray,
    tables: dict[str, dict[str, int]],
    default: dict[str, int],
    residual: str | None,
) -> np.ndarray:
    """Draw a value per row from its province's table (``residual`` fills the remainder to
    100 %; otherwise ``default`` is the table for provinces not listed)."""
    out = np.empty(len(province_codes), dtype=object)
    listed = np.zeros(len(province_codes), dtype=bool)
    for code, table in tables.items():
        rows = province_codes == code
        if not rows.any():
            continue
        listed |= rows
        full = dict(table)
        if residual is not None:
            full[residual] = max(100 - sum(table.values()), 1)
        out[rows] = choice(rng, full, int(rows.sum()))
    rest = ~listed
    if rest.any():
        out[rest] = choice(rng, default, int(rest.sum()))
    return out


def _years_before(ref: np.datetime64, years: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A date ``years`` whole years (plus a random part of a year) before ``ref``."""
    days = (years * 365.25 + rng.random(len(years)) * 365).astype(np.int64)
    return ref - days.astype("timedelta64[D]")


class _IdPool:
    """Unique personal ID numbers across chunks: ``PPP G YY`` + six random digits."""

    def __init__(self) -> None:
        self.used = np.empty(0, dtype=np.int64)

    def draw(
        self, rng: np.random.Generator, place: np.ndarray, sex: np.ndarray, birth: np.ndarray
    ) -> np.ndarray:
        year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
        g = (year // 100 - 19) * 2 + (sex == "F")
        prefix = place.astype(np.int64) * 1000 + g * 100 + year % 100
        numbers = prefix * 1_000_000 + rng.integers(0, 1_000_000, len(prefix))
        while True:
            _, first, counts = np.unique(numbers, return_index=True, return_counts=True)
            clash = np.ones(len(numbers), dtype=bool)
            clash[first[counts == 1]] = False
            # keep the first of each duplicated value too
            clash[first[counts > 1]] = False
            clash |= np.isin(numbers, self.used)
            if not clash.any():
                break
            numbers[clash] = prefix[clash] * 1_000_000 + rng.integers(
                0, 1_000_000, int(clash.sum())
            )
        self.used = np.union1d(self.used, numbers)
        return np.char.zfill(numbers.astype(str), 12)


def population(people: int, seed: int, *, as_of: date | None = None) -> Iterator[pa.Table]:
    """``people`` synthetic residents, one Arrow table of population-file columns per chunk.

    The same ``seed`` and ``as_of`` (the reference "today"; default today) give the same
    tables. Raises ``ValueError`` at once, before the first chunk, if ``people`` is below 1.
    """
    if people < 1:
        raise ValueError("people must be at least 1")
    return _chunks(people, seed, _Geo.load(), np.datetime64(as_of or date.today(), "D"))


def _chunks(people: int, seed: int, geo: _Geo, ref: np.datetime64) -> Iterator[pa.Table]:
    root = np.random.SeedSequence(seed)
    ids = _IdPool()
    done = households = 0
    while done < people:
        rng = np.random.default_rng(root.spawn(1)[0])
        want = min(_CHUNK_PEOPLE, people - done)
        table = _chunk(rng, geo, ids, ref, want, households)
        households += int(np.sum(np.array(table.column("relationship")) == "head"))
        done += table.num_rows
        yield table


def _chunk(
    rng: np.random.Generator,
    geo: _Geo,
    ids: _IdPool,
    ref: np.datetime64,
    people: int,
    household_offset: int,
) -> pa.Table:
    # Households and their members ---------------------------------------------------------
    shares = _HOUSEHOLD_SHARES / _HOUSEHOLD_SHARES.sum()
    sizes = _HOUSEHOLD_SIZES[rng.choice(len(_HOUSEHOLD_SIZES), size=people, p=shares)]
    cut = int(np.searchsorted(np.cumsum(sizes), people)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - people
    n_hh = len(sizes)
    hh = np.repeat(np.arange(n_hh), sizes)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(people) - start[hh]
    size = sizes[hh]

    head_age = _HEAD_AGES[rng.choice(len(_HEAD_AGES), size=n_hh, p=_HEAD_AGE_W / _HEAD_AGE_W.sum())]
    has_spouse = (sizes >= 2) & (rng.random(n_hh) < np.where(head_age < 70, 0.88, 0.6))
    has_parent = (sizes >= 5) & (head_age < 60) & (rng.random(n_hh) < 0.45)
    role = np.full(people, "child", dtype=object)
    role[pos == 0] = "head"
    role[(pos == 1) & has_spouse[hh]] = "spouse"
    role[(pos == size - 1) & (pos >= 2) & has_parent[hh]] = "parent"
    grand = (pos >= 3) & (head_age[hh] >= 52) & (role == "child") & (rng.random(people) < 0.6)
    role[grand] = "grandchild"
    other = (role == "child") & (rng.random(people) < 0.02)
    role[other] = rng.choice(np.array(["sibling", "other"]), size=int(other.sum()))

    # Ages and sexes ----------------------------------------------------------------------
    h_age = head_age[hh]
    age = h_age.astype(np.float64)
    spouse = role == "spouse"
    age[spouse] = np.clip(h_age[spouse] + rng.normal(-2.5, 3.5, int(spouse.sum())), 18, 95)
    kids = np.isin(role, ["child", "sibling", "other"])
    k_age = h_age[kids] - rng.uniform(20, 40, int(kids.sum()))
    age[kids] = np.where(k_age < 0, rng.uniform(0, 6, int(kids.sum())), k_age)
    age[role == "sibling"] = np.clip(
        h_age[role == "sibling"] + rng.normal(0, 6, int((role == "sibling").sum())), 16, 95
    )
    gk = role == "grandchild"
    age[gk] = np.clip(h_age[gk] - rng.uniform(44, 62, int(gk.sum())), 0, None)
    par = role == "parent"
    age[par] = np.clip(h_age[par] + rng.uniform(22, 34, int(par.sum())), 45, 104)
    birth = _years_before(ref, np.floor(age), rng)

    head_male = rng.random(n_hh) < 0.72
    sex = np.where(rng.random(people) < 0.512, "M", "F").astype(object)
    sex[role == "head"] = np.where(head_male, "M", "F")
    sex[spouse] = np.where(head_male[hh[spouse]], "F", "M")

    # Names -------------------------------------------------------------------------------
    family = choice(rng, names.FAMILY, people)
    hh_family = family[start]  # the head's family name
    spouse_family = np.full(n_hh, "", dtype=object)
    sp_idx = start[has_spouse] + 1
    spouse_family[has_spouse] = family[sp_idx]
    father_family = np.where(head_male, hh_family, np.where(has_spouse, spouse_family, hh_family))
    descends = np.isin(role, ["child", "grandchild"])
    family[descends] = father_family[hh[descends]]
    family[role == "sibling"] = hh_family[hh[role == "sibling"]]
    male = sex == "M"
    middle = np.where(
        male, choice(rng, names.MIDDLE_M, people), choice(rng, names.MIDDLE_F, people)
    )
    # Younger women are less often "Thị": redraw some of theirs.
    modern = (~male) & (middle == "Thị") & (age < 30) & (rng.random(people) < 0.6)
    middle[modern] = choice(
        rng, {k: v for k, v in names.MIDDLE_F.items() if k != "Thị"}, int(modern.sum())
    )
    given = np.where(male, choice(rng, names.GIVEN_M, people), choice(rng, names.GIVEN_F, people))
    fourth = rng.random(people) < 0.1
    extra = np.where(
        male, choice(rng, names.FOURTH["M"], people), choice(rng, names.FOURTH["F"], people)
    )
    full_name = (
        family + " " + middle + " " + np.where(fourth & (extra != middle), extra + " ", "") + given
    )

    # Places ------------------------------------------------------------------------------
    hh_province = rng.choice(len(geo.province_codes), size=n_hh, p=geo.province_weights)
    hh_commune = geo.pick_communes(rng, hh_province)
    res_commune = hh_commune[hh]
    province = hh_province[hh]
    # Adults were born in the same province three times in four; children where they live.
    moved = (~descends) & (rng.random(people) < 0.25)
    born_province = np.where(
        moved, rng.choice(len(geo.province_codes), size=people, p=geo.province_weights), province
    )
    birth_commune = np.where(
        descends & (rng.random(people) < 0.9), res_commune, geo.pick_communes(rng, born_province)
    )
    birth_province = geo.province_of(birth_commune)
    # Hometown (quê quán): the father's line; adults from their own birth province mostly.
    hometown = np.where(
        rng.random(people) < 0.8, birth_commune, geo.pick_communes(rng, birth_province)
    )
    head_home = hometown[start]
    hometown[descends] = head_home[hh[descends]]

    prov_codes = geo.province_codes[province]
    ethnicity = _by_province(
        rng, geo.province_codes[hh_province], names.ETHNIC, {"Kinh": 1}, "Kinh"
    )[hh]
    # A few mixed households: the spouse keeps their own.
    religion = _by_province(
        rng, geo.province_codes[hh_province], names.RELIGION, names.RELIGION_DEFAULT, None
    )[hh]

    # Residence: the head since adulthood (at most since 1990); others since joining.
    head_birth = birth[start]
    earliest = np.maximum(head_birth + np.timedelta64(18 * 365, "D"), np.datetime64("1990-01-01"))
    span = np.maximum((ref - earliest).astype(np.int64), 1)
    hh_since = earliest + (rng.random(n_hh) * span).astype("timedelta64[D]")
    since = hh_since[hh]
    joined = role != "head"
    since[joined] = np.maximum(since[joined], birth[joined])
    late = joined & ~descends & (rng.random(people) < 0.5)
    since[late] = since[late] + (
        rng.random(int(late.sum())) * np.maximum((ref - since[late]).astype(np.int64), 0)
    ).astype("timedelta64[D]")
    since = np.minimum(since, ref)

    # Status: the old more often deceased (never the head); a very few missing.
    p_dead = np.clip((age - 55) / 120, 0, 0.35)
    dead = (role != "head") & (rng.random(people) < p_dead)
    missing = (~dead) & (role != "head") & (age >= 18) & (rng.random(people) < 0.0005)
    status = np.full(people, "alive", dtype=object)
    status[dead] = "deceased"
    status[missing] = "missing"
    gap = np.maximum((ref - np.maximum(birth, since)).astype(np.int64), 1)
    death = np.maximum(birth, since) + np.minimum(
        (rng.random(people) * np.minimum(gap, 3650)).astype(np.int64), gap - 1
    ).astype("timedelta64[D]")

    # Family links ------------------------------------------------------------------------
    pid = ids.draw(rng, np.char.zfill(geo.province_codes[birth_province], 3), sex, birth)
    head_pid = pid[start]
    spouse_pid = np.full(n_hh, "", dtype=pid.dtype)
    spouse_pid[has_spouse] = pid[sp_idx]
    father_hh = np.where(head_male, head_pid, spouse_pid)
    mother_hh = np.where(head_male, spouse_pid, head_pid)
    children = role == "child"
    father = np.full(people, "", dtype=pid.dtype)
    mother = np.full(people, "", dtype=pid.dtype)
    father[children] = father_hh[hh[children]]
    mother[children] = mother_hh[hh[children]]
    # Only a parent of the right sex is a parent: a lone female head is the mother.
    spouse_of = np.full(people, "", dtype=pid.dtype)
    heads_with = start[has_spouse]
    spouse_of[heads_with] = pid[sp_idx]
    spouse_of[sp_idx] = pid[heads_with]
    parent_rows = np.flatnonzero(par)
    parent_of_head = start[hh[parent_rows]]
    is_father = sex[parent_rows] == "M"
    father[parent_of_head[is_father]] = pid[parent_rows[is_father]]
    mother[parent_of_head[~is_father]] = pid[parent_rows[~is_father]]

    married = np.isin(role, ["head", "spouse"]) & (spouse_of != "")
    marital = np.full(people, "single", dtype=object)
    marital[married] = "married"
    lone_adult = (~married) & (age >= 30) & np.isin(role, ["head", "parent", "sibling"])
    marital[lone_adult] = np.where(rng.random(int(lone_adult.sum())) < 0.6, "widowed", "divorced")
    grown = children & (age >= 22) & (rng.random(people) < 0.25)
    marital[grown] = "married"

    # Old CMND numbers: people who were 14 or older before 2016; issued by the province
    # they lived in. A share of Đồng Nai / BR-VT people get the shared range.
    cmnd = np.full(people, "", dtype=object)
    issuer = np.full(people, "", dtype=object)
    had = (birth <= np.datetime64("2002-01-01")) & (rng.random(people) < 0.5)
    num = rng.integers(10_000_000, 399_999_999, people)
    cmnd[had] = np.char.zfill(num[had].astype(str), 9)
    issuer[had] = prov_codes[had]
    shared = had & np.isin(prov_codes, _SHARED_ISSUERS) & (rng.random(people) < 0.1)
    cmnd[shared] = rng.integers(_SHARED_CMND[0], _SHARED_CMND[1] + 1, int(shared.sum())).astype(str)
    # Make some shared numbers really collide: copy a Đồng Nai number to a BR-VT person.
    dn = np.flatnonzero(shared & (prov_codes == "75"))
    vt = np.flatnonzero(shared & (prov_codes == "77"))
    pairs = min(len(dn), len(vt)) // 2
    cmnd[vt[:pairs]] = cmnd[dn[:pairs]]

    house_no = rng.integers(1, 300, people)
    street = names.STREETS[rng.integers(0, len(names.STREETS), people)]
    urban = np.isin(prov_codes, ["01", "79", "31", "48", "92"])
    hamlet = rng.integers(1, 15, people)
    address = np.where(
        urban, "Số " + house_no.astype(str) + " đường " + street, "Thôn " + hamlet.astype(str)
    )
    # Everyone in a household shares the head's address line.
    address = address[start[hh]]

    household_no = np.char.add(prov_codes, np.char.zfill((household_offset + hh).astype(str), 8))
    birth_code = geo.code_on(birth_commune, birth)
    home_code = geo.code_on(hometown, birth)
    res_code = geo.code_on(res_commune, since)

    def text(values: np.ndarray) -> pa.Array:
        return pa.array(values.tolist(), pa.string())

    def opt(values: np.ndarray) -> pa.Array:
        return pa.array([v or None for v in values.tolist()], pa.string())

    def day(values: np.ndarray) -> pa.Array:
        return pa.array(values.astype("datetime64[D]"), pa.date32())

    death_col = pa.array(
        np.where(dead, death, np.datetime64("NaT")).astype("datetime64[D]"), pa.date32()
    )
    columns: dict[str, pa.Array] = {
        "personal_id": text(pid),
        "full_name": text(full_name),
        "birth_date": day(birth),
        "sex": text(sex),
        "nationality": text(np.full(people, "VN")),
        "ethnicity": text(ethnicity),
        "religion": opt(religion),
        "birth_commune_code": text(birth_code),
        "hometown_commune_code": text(home_code),
        "marital_status": text(marital),
        "status": text(status),
        "death_date": death_col,
        "household_no": text(household_no),
        "relationship": text(role),
        "residence_commune_code": text(res_code),
        "residence_since": day(since),
        "address_line": text(address),
        "father_personal_id": opt(father),
        "mother_personal_id": opt(mother),
        "spouse_personal_id": opt(spouse_of),
        "old_id_number": opt(cmnd),
        "old_id_issuer": opt(issuer),
    }
    return pa.table(columns)
