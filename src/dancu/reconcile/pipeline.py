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

Every pair of every pass is scored by one Fellegi–Sunter model: agreement levels on name,
birth date, sex, province and number; m-probabilities learned from the pass-1 pairs (an exact
personal ID is as good a label as this data has), u-probabilities from random pairs, with
term-frequency adjustment for names and provinces ("Nguyễn Văn Hùng" in Hà Nội says less than
"Khổng Minh Thư" in Lai Châu). A row's candidates compete with each other and with "someone
not in the register": the posterior of candidate j is 2^s_j / (1 + Σ 2^s_k), s being the
log2 odds against "not in the register" (the prior: ``IN_REGISTER`` of the rows have their
person among the register's N people, each equally likely). A pass accepts a row whose best
posterior reaches ``MATCH_THRESHOLD``; of the rest, the last pass calls a row whose
candidates together reach ``REVIEW_THRESHOLD`` ambiguous when two or more of them are
``PLAUSIBLE``, ``needs_review`` when one is, and the others not found.

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

MATCH_THRESHOLD: Final = 0.95
# The prior: the share of an agency's rows whose person is in the register at all (most are;
# the rest are foreigners, people never registered, invented or mistyped records).
IN_REGISTER: Final = 0.95
REVIEW_THRESHOLD: Final = 0.30
# A candidate at this posterior or above is plausible: a row left with two or more is
# ambiguous, with one it needs review (an officer looks at the one candidate).
PLAUSIBLE: Final = 0.05
# Random pairs for the u-probabilities: about this many extract rows × register people.
U_SAMPLE_ROWS: Final = 1000
U_SAMPLE_PEOPLE: Final = 400
# What the m-probability of an ID relation is taken to be (the share of true links that show
# it), and how many register numbers a random number relates to that way (u = that / N).
# Only ``exact`` is learned from the data; the others are too rare to estimate per run.
ID_LEVELS: Final[dict[str, tuple[float, float]]] = {
    "exact": (0.0, 1.0),  # m learned
    "padded": (0.04, 1.0),
    "reestablished": (0.005, 1.0),
    "cmnd": (0.05, 2.0),  # some CMND numbers were issued twice (BR-VT/Đồng Nai)
    "transposed": (0.015, 11.0),
    "typo": (0.01, 108.0),
    "other": (0.005, 0.0),  # u = 1: a number unrelated to this person
    "cmnd_other": (0.03, 0.0),
}
PASS_NAMES: Final = {1: "exact-id", 2: "repaired-id", 3: "probabilistic"}
# P(level | the same person), before the run's own pass-1 pairs: shares measured on
# realistic extracts, rounded; worth PRIOR_PAIRS pairs against the thousands a run learns from.
PRIOR_M: Final[dict[tuple[str, int], float]] = {
    ("name", 5): 0.70,
    ("name", 4): 0.15,
    ("name", 3): 0.05,
    ("name", 2): 0.05,
    ("name", 1): 0.03,
    ("name", 0): 0.02,
    # Rows written without marks compare on their own scale: they never reach level 5, so
    # their m for "same folded name" is most of the mass, not the 15 % it is among all rows
    # (with the term-frequency u of that name, the unconditional m undersold every such row).
    ("name_u", 5): 0.001,
    ("name_u", 4): 0.85,
    ("name_u", 3): 0.04,
    ("name_u", 2): 0.05,
    ("name_u", 1): 0.03,
    ("name_u", 0): 0.029,
    ("dob", 4): 0.88,
    ("dob", 3): 0.01,
    ("dob", 2): 0.06,
    ("dob", 1): 0.02,
    ("dob", 0): 0.03,
    ("sex", 1): 0.98,
    ("sex", 0): 0.02,
    ("prov", 1): 0.85,
    ("prov", 0): 0.15,
}
PRIOR_PAIRS: Final = 50


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


# -- comparing a pair -------------------------------------------------------------------------

LEVELS_SQL = """
  CASE WHEN x.f IS NULL OR r.f IS NULL THEN NULL
       WHEN x.sg = r.sg THEN 5
       WHEN x.f = r.f THEN 4
       WHEN x.tk = r.tk OR x.vr = r.vr THEN 3
       WHEN levenshtein(x.f, r.f) <= CASE WHEN length(r.f) < 16 THEN 1 ELSE 2 END THEN 2
       WHEN x.fam = r.fam AND x.giv = r.giv
            AND length(x.f) - length(replace(x.f, ' ', ''))
                <> length(r.f) - length(replace(r.f, ' ', '')) THEN 1
       ELSE 0 END AS name_l,
  CASE WHEN x.dob IS NULL AND x.yob IS NULL THEN NULL
       WHEN x.dob = r.birth_date THEN 4
       WHEN x.dob_sw = r.birth_date THEN 3
       WHEN (x.dob IS NULL OR x.dob_ph) AND x.yob = r.yob THEN 2
       WHEN month(x.dob) = month(r.birth_date)
            AND (day(x.dob) = day(r.birth_date) AND abs(x.yob - r.yob) <= 9
                 OR x.yob = r.yob) THEN 1
       WHEN (x.dob IS NULL OR x.dob_ph) AND abs(x.yob - r.yob) = 1 THEN 1
       ELSE 0 END AS dob_l,
  CASE WHEN x.sx IS NULL OR r.sex IS NULL THEN NULL WHEN x.sx = r.sex THEN 1 ELSE 0 END AS sex_l,
  CASE WHEN x.prov IS NULL OR r.province_code IS NULL THEN NULL
       WHEN x.prov = r.province_code THEN 1 ELSE 0 END AS prov_l"""


def _compare(name: str, pairs: str, doc: str) -> Step:
    """Agreement levels for every (row, person) pair of ``pairs`` (which carries id_rel)."""
    sql = f"""
SELECT c.row_no, c.person_key, c.id_rel, c.pass, {LEVELS_SQL}, x.marked,
  r.f AS r_f, r.tk AS r_tk, r.province_code AS r_prov
FROM {pairs} AS c
JOIN x ON x.row_no = c.row_no
JOIN r ON r.person_key = c.person_key"""
    return Step(name, sql, doc)


# -- the model --------------------------------------------------------------------------------


def _model_steps() -> tuple[list[Step], str]:
    """m from the pass-1 pairs that are not plainly someone else's number, u from random
    pairs; Laplace-smoothed; the weights table ``w`` (comparison, level, m, u)."""
    u_pairs = f"""
SELECT s.row_no, p.person_key, 'sample' AS id_rel, 0 AS pass
FROM (SELECT row_no FROM x
      WHERE row_no % (SELECT greatest(1, CAST(floor(count(*) / {U_SAMPLE_ROWS}) AS BIGINT))
                      FROM x) = 0) AS s
CROSS JOIN (SELECT person_key FROM r
            WHERE person_key % (SELECT greatest(1, CAST(floor(count(*) / {U_SAMPLE_PEOPLE})
                                                     AS BIGINT)) FROM r) = 0) AS p"""

    def counts(table: str, where: str = "") -> str:
        parts = []
        for comparison in ("name", "dob", "sex", "prov"):
            key = f"'{comparison}'"
            if comparison == "name":
                key = "CASE WHEN marked THEN 'name' ELSE 'name_u' END"
            parts.append(
                f"SELECT {key} AS comparison, {comparison}_l AS level, count(*) AS n "
                f"FROM {table} WHERE {comparison}_l IS NOT NULL {where} GROUP BY ALL"
            )
        return "\nUNION ALL\n".join(parts)

    priors = ",\n  ".join(f"('{c}', {lv}, {m})" for (c, lv), m in PRIOR_M.items())
    levels = f"SELECT * FROM (VALUES {priors}) AS v(comparison, level, m)"
    # m: the pass-1 counts with PRIOR_PAIRS pseudo-pairs spread by PRIOR_M, so an extract
    # without (enough) personal ID numbers still has a sensible model; u: Laplace-smoothed.
    weights = f"""
SELECT v.comparison, v.level,
  (coalesce(m.n, 0) + {PRIOR_PAIRS} * v.m) / (coalesce(mt.total, 0) + {PRIOR_PAIRS}) AS m,
  (coalesce(u.n, 0) + 1.0) / (coalesce(ut.total, 0) + cnt.levels) AS u
FROM ({levels}) AS v
LEFT JOIN m_counts AS m ON m.comparison = v.comparison AND m.level = v.level
LEFT JOIN u_counts AS u ON u.comparison = v.comparison AND u.level = v.level
LEFT JOIN (SELECT comparison, sum(n) AS total FROM m_counts GROUP BY comparison) AS mt
  ON mt.comparison = v.comparison
LEFT JOIN (SELECT comparison, sum(n) AS total FROM u_counts GROUP BY comparison) AS ut
  ON ut.comparison = v.comparison
JOIN (SELECT comparison, count(*) AS levels FROM ({levels}) AS l GROUP BY comparison) AS cnt
  ON cnt.comparison = v.comparison"""
    id_m_exact = """
(SELECT CAST(count(DISTINCT row_no) AS DOUBLE) / greatest(1, (SELECT count(*) FROM x))
 FROM k1 WHERE NOT (coalesce(name_l, 0) = 0 AND coalesce(dob_l, 0) = 0))"""
    id_rows = ",\n  ".join(
        f"('{rel}', {m if rel != 'exact' else -1.0}, {u})" for rel, (m, u) in ID_LEVELS.items()
    )
    id_weights = f"""
SELECT v.rel AS level,
  CASE WHEN v.m < 0 THEN greatest(0.05, {id_m_exact}) ELSE v.m END AS m,
  CASE WHEN v.u = 0 THEN 1.0 ELSE v.u / (SELECT n FROM n_reg) END AS u
FROM (VALUES
  {id_rows}) AS v(rel, m, u)"""
    return [
        _compare("k_u", "u_pairs", "random pairs, for the u-probabilities"),
        Step("u_counts", counts("k_u"), "how often random pairs agree, by level"),
        Step(
            "m_counts",
            counts("k1", "AND NOT (coalesce(name_l, 0) = 0 AND coalesce(dob_l, 0) = 0)"),
            "how often pass-1 pairs agree, by level",
        ),
        Step("w", weights, "m and u by comparison and level"),
        Step("w_id", id_weights, "m and u by relation between the numbers"),
    ], u_pairs


def _score(name: str, compared: str, doc: str) -> Step:
    """Log2 odds of each pair, term-frequency adjusted, and each candidate's posterior among
    its row's candidates and "someone not in the register"."""
    sql = f"""
SELECT s.*,
  power(2.0, least(s.score, 1000.0)) / (1.0 + sum(power(2.0, least(s.score, 1000.0)))
    OVER (PARTITION BY s.row_no)) AS posterior,
  row_number() OVER (PARTITION BY s.row_no ORDER BY s.score DESC, s.person_key) AS rank
FROM (
  SELECT k.*,
    log2({IN_REGISTER} / (1.0 - {IN_REGISTER}) / (SELECT n FROM n_reg))
    + coalesce(log2(wn.m /
        CASE WHEN k.name_l >= 4 THEN coalesce(tn.n, 1) / CAST((SELECT n FROM n_reg) AS DOUBLE)
             WHEN k.name_l = 3 THEN greatest(wn.u, coalesce(tt.n, 1)
                                             / CAST((SELECT n FROM n_reg) AS DOUBLE))
             ELSE wn.u END), 0.0)
    + coalesce(log2(wd.m / wd.u), 0.0)
    + coalesce(log2(ws.m / ws.u), 0.0)
    + coalesce(log2(wp.m / greatest(wp.u,
        CASE WHEN k.prov_l = 1 THEN coalesce(tp.n, 1) / CAST((SELECT n FROM n_reg) AS DOUBLE)
             ELSE 0.0 END)), 0.0)
    + coalesce(log2(wi.m / wi.u), 0.0) AS score
  FROM {compared} AS k
  LEFT JOIN w AS wn
    ON wn.comparison = CASE WHEN k.marked THEN 'name' ELSE 'name_u' END AND wn.level = k.name_l
  LEFT JOIN w AS wd ON wd.comparison = 'dob' AND wd.level = k.dob_l
  LEFT JOIN w AS ws ON ws.comparison = 'sex' AND ws.level = k.sex_l
  LEFT JOIN w AS wp ON wp.comparison = 'prov' AND wp.level = k.prov_l
  LEFT JOIN w_id AS wi ON wi.level = k.id_rel
  LEFT JOIN tf_name AS tn ON tn.f = k.r_f
  LEFT JOIN tf_tokens AS tt ON tt.tk = k.r_tk
  LEFT JOIN tf_prov AS tp ON tp.province_code = k.r_prov
) AS s"""
    return Step(name, sql, doc)


def _decide(name: str, scored: str, doc: str) -> Step:
    sql = f"""
SELECT row_no, person_key, posterior, score, pass, id_rel
FROM {scored} WHERE rank = 1 AND posterior >= {MATCH_THRESHOLD}"""
    return Step(name, sql, doc)


# -- the passes -------------------------------------------------------------------------------


def _pass1() -> list[Step]:
    c1 = """
SELECT x.row_no, i.person_key,
  CASE WHEN i.kind = 'current' THEN 'exact' ELSE 'reestablished' END AS id_rel, 1 AS pass
FROM x JOIN ids AS i ON i.value = x.id12 AND i.kind IN ('current', 'personal_id')"""
    return [
        Step("c1", c1, "pass 1: rows whose personal ID number the register knows"),
        _compare("k1", "c1", "pass 1 pairs compared"),
    ]


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
    c2 = f"""
SELECT row_no, person_key, substr(min(CAST(prio AS VARCHAR) || id_rel), 2) AS id_rel,
  2 AS pass
FROM (
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
    FROM ({typo}) AS t JOIN ids AS i ON i.value = t.value AND i.kind = 'current'
) AS u
GROUP BY row_no, person_key"""
    return [
        Step("x2", rest, "rows pass 1 left"),
        Step("c2", c2, "pass 2: repaired numbers (zeros, CMND, a swap, a wrong digit)"),
        _compare("k2", "c2", "pass 2 pairs compared"),
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
    c3 = f"""
SELECT row_no, person_key, substr(min(CAST(prio AS VARCHAR) || id_rel), 2) AS id_rel,
  3 AS pass
FROM (
    SELECT c1.row_no, c1.person_key, c1.id_rel, 0 AS prio
    FROM c1 JOIN x3 ON x3.row_no = c1.row_no
    UNION ALL
    SELECT c2.row_no, c2.person_key, c2.id_rel, 1 AS prio
    FROM c2 JOIN x3 ON x3.row_no = c2.row_no
    UNION ALL
    SELECT b.row_no, b.person_key,
      CASE WHEN x3.id12 IS NOT NULL OR x3.id_padded IS NOT NULL THEN 'other'
           WHEN x3.cmnd IS NOT NULL THEN 'cmnd_other' END AS id_rel, 2 AS prio
    FROM ({blocked}) AS b JOIN x3 ON x3.row_no = b.row_no
) AS u
GROUP BY row_no, person_key"""
    return [
        Step("x3", rest, "rows pass 2 left"),
        Step("c3", c3, "pass 3: blocked candidates (and pass 2's, re-scored)"),
        _compare("k3", "c3", "pass 3 pairs compared"),
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
    model, u_pairs = _model_steps()
    return [
        *_x(plan),
        *_r(),
        *_reference_steps(),
        *_pass1(),
        Step("u_pairs", u_pairs, "random pairs of rows and people"),
        *model,
        _score("s1", "k1", "pass 1 scored"),
        _decide("d1", "s1", "pass 1 decided"),
        *_pass2(),
        _score("s2", "k2", "pass 2 scored"),
        _decide("d2", "s2", "pass 2 decided"),
        *_pass3(),
        _score("s3", "k3", "pass 3 scored"),
        _decide("d3", "s3", "pass 3 decided"),
        *_verdict_steps(),
    ]
