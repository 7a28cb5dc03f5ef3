"""The reconciliation pipeline as named SQL steps (DESIGN "bulk work is set-based").

Inputs, loaded by the service before the steps run:

- ``extract_raw``: the staged extract (``readers.stage``): ``row_no`` and the canonical fields
  the agency's file has (``fields.FIELDS``), as NFC strings;
- ``reg_person`` (``person_key``, ``personal_id``, ``full_name``, ``birth_date``, ``sex``,
  ``status``, ``death_date``, ``province_code``, ``commune_code``) and ``reg_identifier``
  (``person_key``, ``kind``: ``personal_id`` for numbers since replaced, ``cmnd9``,
  ``cmnd12``; ``value``): the register, from a dancu database or a population file;
- ``ref_province`` (``key``, ``province_code``, ``legacy``) and ``ref_digit``/``ref_position``
  (the digits 0-9 and positions 1-12, to spell out a damaged number's neighbours).

The cascade, after the UK census linkage: exact deterministic passes first, probabilistic on
the residue, each pass deciding what it can and handing the rest on.

1. **Exact personal ID** (current, or a number the register has since re-established).
2. **Repaired ID**: leading zeros restored, an old CMND number through the register's
   identifier history, two adjacent digits swapped, one digit wrong.
3. **Blocking + scoring** of the rest: candidates sharing the folded name and birth year, the
   same words in any order, the Hoàng/Huỳnh and Vũ/Võ readings, the birth date and the family
   or given name, or the birth date, sex and province.

The pairs each pass finds are scored by one Fellegi–Sunter model (``scoring``): a pass
accepts a row whose best posterior reaches ``scoring.MATCH_THRESHOLD``; of the rest, the last
pass calls a row whose candidates together reach ``REVIEW_THRESHOLD`` ambiguous when two or
more of them are ``PLAUSIBLE``, ``needs_review`` when one is, and the others not found.

Then the verdicts: a link to a deceased person is ``deceased``; a later row linked to the
same person as an earlier one (or, unlinked, with the same name and birth date) is
``duplicate``; a link is ``matched_with_differences`` when the row differs from the register
in anything but formatting (fields.DIFFERENCES names each kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dancu.reconcile.engine import Step
from dancu.reconcile.fields import FIELDS
from dancu.reconcile.scoring import compare, decide, model_steps, score

REVIEW_THRESHOLD: Final = 0.30
# A candidate at this posterior or above is plausible: a row left with two or more is
# ambiguous, with one it needs review (an officer looks at the one candidate).
PLAUSIBLE: Final = 0.05
PASS_NAMES: Final = {1: "exact-id", 2: "repaired-id", 3: "probabilistic"}


@dataclass(frozen=True)
class Plan:
    """What the steps need to know of the inputs: the extract's fields present."""

    fields: frozenset[str]


# -- normalisation ----------------------------------------------------------------------------


def _names(name: str, source: str) -> Step:
    """Every distinct name of ``source`` with its keys: names repeat (75,000 distinct names
    among a million people), so the string work is done once per name. A name written given
    name first ("Hùng Văn Nguyễn") is keyed in Vietnamese order (``ro``: reordered), the
    register's and the extract's alike, so its family and given names compare as such."""
    sql = f"""
SELECT b.*, dc_tokens(f) AS tk, dc_variant(f) AS vr, dc_first(f) AS fam, dc_last(f) AS giv
FROM (
  SELECT full_name, dc_fold(o) AS f, dc_sig(o) AS sg, marked, ro
  FROM (
    SELECT full_name, marked, ro, CASE WHEN ro THEN dc_family_first(w) ELSE w END AS o
    FROM (
      SELECT full_name, w, coalesce(dc_marked(full_name), false) AS marked,
        coalesce(dc_given_first(w), false) AS ro
      FROM (SELECT full_name, dc_words(full_name) AS w
            FROM (SELECT DISTINCT full_name FROM {source}) AS d) AS d
    ) AS a
  ) AS o
) AS b"""
    return Step(name, sql, f"the distinct names of {source} and their keys")


def _x(plan: Plan) -> list[Step]:
    cols = ", ".join(
        (f"CAST({f} AS VARCHAR) AS {f}" if f in plan.fields else f"CAST(NULL AS VARCHAR) AS {f}")
        for f in FIELDS
    )
    sql = """
SELECT b.*, n.f, n.sg, coalesce(n.marked, false) AS marked, coalesce(n.ro, false) AS ro,
  n.tk, n.vr, n.fam, n.giv,
  CASE WHEN day(dob) <= 12 AND day(dob) <> month(dob)
       THEN make_date(year(dob), day(dob), month(dob)) END AS dob_sw,
  coalesce(day(dob) = 1 AND month(dob) = 1, false) AS dob_ph,
  CASE WHEN length(pid) = 12 THEN pid END AS id12,
  CASE WHEN length(pid) IN (10, 11) THEN lpad(pid, 12, '0') END AS id_padded,
  CASE WHEN length(oid) IN (9, 12) THEN oid WHEN length(pid) = 9 THEN pid END AS cmnd,
  p.province_code AS prov, coalesce(p.legacy, false) AS prov_legacy
FROM (
  SELECT i.row_no, i.agency_key, i.full_name, i.birth_date, i.sex, i.personal_id, i.old_id,
    i.address, i.province, d.dob, d.yob, dc_sex(i.sex) AS sx,
    dc_digits(i.personal_id) AS pid, dc_digits(i.old_id) AS oid, v.prov_key
  FROM x_input AS i
  LEFT JOIN x_dates AS d ON d.birth_date = i.birth_date
  LEFT JOIN x_provinces AS v ON v.province = i.province
) AS b
LEFT JOIN x_names AS n ON n.full_name = b.full_name
LEFT JOIN ref_province AS p ON p.key = b.prov_key"""
    return [
        Step("x_input", f"SELECT row_no, {cols} FROM extract_raw", "the extract's fields"),
        _names("x_names", "x_input"),
        # Dates and provinces repeat too: parsed once per distinct spelling.
        Step(
            "x_dates",
            "SELECT birth_date, dc_date(birth_date) AS dob, dc_year(birth_date) AS yob "
            "FROM (SELECT DISTINCT birth_date FROM x_input) AS d",
            "the distinct dates of birth, parsed",
        ),
        Step(
            "x_provinces",
            "SELECT province, dc_fold(province) AS prov_key "
            "FROM (SELECT DISTINCT province FROM x_input) AS d",
            "the distinct provinces, folded",
        ),
        Step("x", sql, "the extract, normalised: name keys, dates, sex, numbers, province"),
    ]


def register_steps() -> list[Step]:
    """The register normalised, with its numbers and name frequencies (also what the
    register's deduplication starts from)."""
    return [*_r(), *_reference_steps()]


def _r() -> list[Step]:
    sql = """
SELECT p.person_key, p.personal_id, p.full_name, CAST(p.birth_date AS DATE) AS birth_date,
  p.sex, p.status, CAST(p.death_date AS DATE) AS death_date, p.province_code,
  CAST(year(p.birth_date) AS INTEGER) AS yob, n.f, n.sg, n.tk, n.vr, n.fam, n.giv,
  coalesce(n.ro, false) AS ro
FROM reg_person AS p LEFT JOIN r_names AS n ON n.full_name = p.full_name"""
    return [
        _names("r_names", "reg_person"),
        Step("r", sql, "the register, normalised the same way"),
    ]


def _reference_steps() -> list[Step]:
    return [
        Step(
            "ids",
            """
SELECT personal_id AS value, person_key, 'current' AS kind FROM r
UNION ALL
SELECT i.value, i.person_key, i.kind FROM reg_identifier AS i""",
            "every number the register knows a person by",
        ),
        Step("tf_name", "SELECT f, count(*) AS n FROM r GROUP BY f", "people per folded name"),
        Step("tf_tokens", "SELECT tk, count(*) AS n FROM r GROUP BY tk", "people per word set"),
        Step(
            "tf_prov",
            "SELECT province_code, count(*) AS n FROM r GROUP BY province_code",
            "people per province",
        ),
        Step("n_reg", "SELECT count(*) AS n FROM r", "people in the register"),
    ]


# -- the passes -------------------------------------------------------------------------------


def _pass1() -> list[Step]:
    c1 = """
SELECT x.row_no, i.person_key,
  CASE WHEN i.kind = 'current' THEN 'exact' ELSE 'reestablished' END AS id_rel, 1 AS pass
FROM x JOIN ids AS i ON i.value = x.id12 AND i.kind IN ('current', 'personal_id')"""
    return [
        Step("c1", c1, "pass 1: rows whose personal ID number the register knows"),
        compare("k1", "c1", "pass 1 pairs compared"),
    ]


def _candidates(pass_no: int, found: str) -> str:
    """A pass's candidate pairs from ``found`` (rows of row_no, person_key, id_rel, prio, a
    pair possibly found several ways): each pair once, with the relation of lowest prio."""
    return f"""
SELECT row_no, person_key, substr(min(CAST(prio AS VARCHAR) || id_rel), 2) AS id_rel,
  {pass_no} AS pass
FROM ({found}
) AS u
GROUP BY row_no, person_key"""


def _pass2() -> list[Step]:
    rest = "SELECT * FROM x WHERE row_no NOT IN (SELECT row_no FROM d1)"
    # The numbers one swap or one wrong digit away from the row's (12-digit, or repaired).
    transposed = """
SELECT x2.row_no, substr(x2.n, 1, p.i - 1) || substr(x2.n, p.i + 1, 1) || substr(x2.n, p.i, 1)
       || substr(x2.n, p.i + 2) AS value
FROM (SELECT row_no, coalesce(id12, id_padded) AS n FROM x2) AS x2
CROSS JOIN ref_position AS p
WHERE x2.n IS NOT NULL AND p.i <= 11 AND substr(x2.n, p.i, 1) <> substr(x2.n, p.i + 1, 1)"""
    typo = """
SELECT x2.row_no, substr(x2.n, 1, p.i - 1) || d.d || substr(x2.n, p.i + 1) AS value
FROM (SELECT row_no, coalesce(id12, id_padded) AS n FROM x2) AS x2
CROSS JOIN ref_position AS p CROSS JOIN ref_digit AS d
WHERE x2.n IS NOT NULL AND d.d <> substr(x2.n, p.i, 1)"""
    c2 = _candidates(
        2,
        f"""
    SELECT x2.row_no, i.person_key, 'padded' AS id_rel, 1 AS prio
    FROM x2 JOIN ids AS i ON i.value = x2.id_padded AND i.kind IN ('current', 'personal_id')
    UNION ALL
    SELECT x2.row_no, i.person_key, 'cmnd', 2
    FROM x2 JOIN ids AS i ON i.value = x2.cmnd AND i.kind IN ('cmnd9', 'cmnd12')
    UNION ALL
    SELECT x2.row_no, i.person_key, 'cmnd', 2
    FROM x2 JOIN ids AS i ON i.value = x2.id12 AND i.kind = 'cmnd12'
    UNION ALL
    SELECT t.row_no, i.person_key, 'transposed', 3
    FROM ({transposed}) AS t JOIN ids AS i ON i.value = t.value AND i.kind = 'current'
    UNION ALL
    SELECT t.row_no, i.person_key, 'typo', 4
    FROM ({typo}) AS t JOIN ids AS i ON i.value = t.value AND i.kind = 'current'""",
    )
    return [
        Step("x2", rest, "rows pass 1 left"),
        Step("c2", c2, "pass 2: repaired numbers (zeros, CMND, a swap, a wrong digit)"),
        compare("k2", "c2", "pass 2 pairs compared"),
    ]


_BLOCKS: Final = (
    ("name_year", "x3.f = r.f AND x3.yob = r.yob"),
    ("words_year", "x3.tk = r.tk AND x3.yob = r.yob"),
    ("variant_year", "x3.vr = r.vr AND x3.yob = r.yob"),
    ("dob_family", "x3.dob = r.birth_date AND x3.fam = r.fam"),
    ("dob_given", "x3.dob = r.birth_date AND x3.giv = r.giv"),
    ("dob_sex_province", "x3.dob = r.birth_date AND x3.sx = r.sex AND x3.prov = r.province_code"),
)


def blocking_rules() -> tuple[tuple[str, str], ...]:
    """Pass 3's blocking rules as (name, SQL condition over ``x3`` and ``r``): also what the
    benchmark's plain Splink model is given."""
    return _BLOCKS


# Rows with no number at all and the year only (or 01/01/yyyy): the year may be one off
# (counted from the traditional age), so the folded name and a neighbouring year block too.
_NO_ID_YEAR: Final = (
    "x3.id12 IS NULL AND x3.id_padded IS NULL AND x3.cmnd IS NULL AND (x3.dob IS NULL OR x3.dob_ph)"
)
_YEAR_OFF_BLOCKS: Final = (
    ("name_year_before", f"x3.f = r.f AND x3.yob - 1 = r.yob AND {_NO_ID_YEAR}"),
    ("name_year_after", f"x3.f = r.f AND x3.yob + 1 = r.yob AND {_NO_ID_YEAR}"),
    # No birth date at all: the folded name where the row says the person lives (a rare
    # name there is as good as a date; a common one splits among its bearers).
    ("name_province", "x3.f = r.f AND x3.prov = r.province_code AND x3.yob IS NULL"),
)


def _pass3() -> list[Step]:
    rest = "SELECT * FROM x2 WHERE row_no NOT IN (SELECT row_no FROM d2)"
    blocked = "\nUNION ALL\n".join(
        f"SELECT x3.row_no, r.person_key FROM x3 JOIN r ON {cond}"
        for _, cond in (*_BLOCKS, *_YEAR_OFF_BLOCKS)
    )
    # A number equal to the candidate's is still "exact" (pass 1 found the pair too weak on
    # its own, but it competes here with the others); an unrelated number counts against.
    c3 = _candidates(
        3,
        f"""
    SELECT c1.row_no, c1.person_key, c1.id_rel, 0 AS prio
    FROM c1 JOIN x3 ON x3.row_no = c1.row_no
    UNION ALL
    SELECT c2.row_no, c2.person_key, c2.id_rel, 1 AS prio
    FROM c2 JOIN x3 ON x3.row_no = c2.row_no
    UNION ALL
    SELECT b.row_no, b.person_key,
      CASE WHEN x3.id12 IS NOT NULL OR x3.id_padded IS NOT NULL THEN 'other'
           WHEN x3.cmnd IS NOT NULL THEN 'cmnd_other' END AS id_rel, 2 AS prio
    FROM ({blocked}) AS b JOIN x3 ON x3.row_no = b.row_no""",
    )
    return [
        Step("x3", rest, "rows pass 2 left"),
        Step("c3", c3, "pass 3: blocked candidates (and pass 2's, re-scored)"),
        compare("k3", "c3", "pass 3 pairs compared"),
    ]


# -- verdicts ---------------------------------------------------------------------------------

_DIFFERENCES = """
  concat_ws('|',
    CASE WHEN x.pid IS NULL AND x.cmnd IS NULL THEN 'id_missing'
         WHEN l.id_rel = 'padded' THEN 'id_leading_zeros'
         WHEN l.id_rel IN ('cmnd', 'cmnd_other') THEN 'id_old_cmnd'
         WHEN l.id_rel = 'reestablished' THEN 'id_reestablished'
         WHEN l.id_rel = 'transposed' THEN 'id_transposed'
         WHEN l.id_rel = 'typo' THEN 'id_typo'
         WHEN l.id_rel = 'other' THEN 'id_other'
         WHEN x.pid IS NULL THEN 'id_missing' END,
    CASE WHEN k.name_l IN (4, 3) AND NOT x.marked THEN 'name_no_diacritics' END,
    CASE WHEN k.name_l >= 1 AND x.ro <> r.ro OR k.name_l = 3 AND x.tk = r.tk
         THEN 'name_order' END,
    CASE WHEN k.name_l = 4 AND x.marked THEN 'name_typo'
         WHEN k.name_l = 3 AND x.tk = r.tk THEN NULL
         WHEN k.name_l = 3 THEN 'name_variant'
         WHEN k.name_l = 2 THEN 'name_typo'
         WHEN k.name_l = 1 AND length(x.f) < length(r.f) THEN 'name_missing_part'
         WHEN k.name_l IN (0, 1) THEN 'name_other' END,
    CASE WHEN k.dob_l IS NULL THEN 'dob_missing'
         WHEN k.dob_l = 3 THEN 'dob_swapped'
         WHEN k.dob_l = 2 THEN 'dob_year_only'
         WHEN k.dob_l IN (0, 1) THEN 'dob_typo' END,
    CASE WHEN k.sex_l = 0 THEN 'sex_wrong' END,
    CASE WHEN k.prov_l = 0 THEN 'province_wrong'
         WHEN k.prov_l = 1 AND x.prov_legacy THEN 'province_outdated' END
  )"""


def _verdict_steps() -> list[Step]:
    links = """
SELECT * FROM d1 UNION ALL SELECT * FROM d2 UNION ALL SELECT * FROM d3"""
    review = f"""
SELECT row_no,
  string_agg(personal_id || ':' || CAST(round(posterior, 3) AS VARCHAR), ';'
             ORDER BY rank) AS candidates,
  max(posterior) AS best,
  count(*) FILTER (WHERE posterior >= {PLAUSIBLE}) AS plausible
FROM (SELECT s.row_no, s.rank, s.posterior, r.personal_id
      FROM s3 AS s JOIN r ON r.person_key = s.person_key
      WHERE s.rank <= 5 AND s.posterior >= 0.01
        AND s.row_no NOT IN (SELECT row_no FROM d3)) AS c
GROUP BY row_no
HAVING sum(posterior) >= {REVIEW_THRESHOLD}"""
    compared = """
SELECT * FROM k1 UNION ALL SELECT * FROM k2 UNION ALL SELECT * FROM k3"""
    linked = f"""
SELECT x.row_no, l.person_key, l.posterior, l.pass, r.personal_id, r.status, r.death_date,
  nullif({_DIFFERENCES}, '') AS differences,
  CASE WHEN k.name_l < 5 OR x.ro <> r.ro THEN r.full_name END AS register_full_name,
  CASE WHEN k.dob_l IS NULL OR k.dob_l < 4 THEN r.birth_date END AS register_birth_date,
  CASE WHEN k.sex_l IS NULL OR k.sex_l = 0 THEN r.sex END AS register_sex,
  CASE WHEN k.prov_l = 0 OR x.prov_legacy OR x.prov IS NULL THEN r.province_code END
    AS register_province,
  row_number() OVER (PARTITION BY l.person_key ORDER BY x.row_no) AS occurrence,
  min(x.row_no) OVER (PARTITION BY l.person_key) AS first_row
FROM links AS l
JOIN x ON x.row_no = l.row_no
JOIN r ON r.person_key = l.person_key
JOIN compared AS k ON k.row_no = l.row_no AND k.person_key = l.person_key AND k.pass = l.pass"""
    unlinked = """
SELECT x.row_no, a.candidates, a.plausible,
  row_number() OVER (PARTITION BY x.f, coalesce(CAST(x.dob AS VARCHAR), CAST(x.yob AS VARCHAR))
                     ORDER BY x.row_no) AS occurrence,
  min(x.row_no) OVER (PARTITION BY x.f, coalesce(CAST(x.dob AS VARCHAR), CAST(x.yob AS VARCHAR)))
    AS first_row
FROM x LEFT JOIN review AS a ON a.row_no = x.row_no
WHERE x.row_no NOT IN (SELECT row_no FROM links)"""
    result = """
SELECT x.row_no, x.agency_key,
  CASE WHEN l.row_no IS NOT NULL THEN
         CASE WHEN l.occurrence > 1 THEN 'duplicate'
              WHEN l.status = 'deceased' THEN 'deceased'
              WHEN l.differences IS NULL THEN 'matched'
              ELSE 'matched_with_differences' END
       WHEN u.occurrence > 1 AND x.f IS NOT NULL AND x.yob IS NOT NULL THEN 'duplicate'
       WHEN u.candidates IS NOT NULL AND u.plausible >= 2 THEN 'ambiguous'
       WHEN u.candidates IS NOT NULL THEN 'needs_review'
       ELSE 'not_found' END AS verdict,
  l.personal_id, round(l.posterior, 4) AS confidence, l.pass,
  l.differences, l.register_full_name, l.register_birth_date, l.register_sex,
  l.register_province, l.death_date, u.candidates,
  CASE WHEN l.occurrence > 1 THEN l.first_row
       WHEN l.row_no IS NULL AND u.occurrence > 1 AND x.f IS NOT NULL AND x.yob IS NOT NULL
         THEN u.first_row
  END AS duplicate_of,
  x.prov AS province_code
FROM x
LEFT JOIN linked AS l ON l.row_no = x.row_no
LEFT JOIN unlinked AS u ON u.row_no = x.row_no"""
    return [
        Step("links", links, "the person each decided row is"),
        Step("review", review, "candidates of the rows no pass decided"),
        Step("compared", compared, "every pair compared, for the differences"),
        Step("linked", linked, "linked rows with their differences and occurrence"),
        Step("unlinked", unlinked, "rows without a link"),
        Step("result", result, "one verdict per row"),
    ]


def steps(plan: Plan) -> list[Step]:
    """Every step of a run, in order."""
    model, u_pairs = model_steps()
    return [
        *_x(plan),
        *_r(),
        *_reference_steps(),
        *_pass1(),
        Step("u_pairs", u_pairs, "random pairs of rows and people"),
        *model,
        score("s1", "k1", "pass 1 scored"),
        decide("d1", "s1", "pass 1 decided"),
        *_pass2(),
        score("s2", "k2", "pass 2 scored"),
        decide("d2", "s2", "pass 2 decided"),
        *_pass3(),
        score("s3", "k3", "pass 3 scored"),
        decide("d3", "s3", "pass 3 decided"),
        *_verdict_steps(),
    ]
