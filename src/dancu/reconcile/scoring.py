"""The Fellegi–Sunter model of the reconciliation pipeline (``pipeline``): a (row, person)
pair compared, the model learned, every pair scored, and a pass's rows decided.

Every pair of every pass is scored by one model: agreement levels on name, birth date, sex,
province and number; m-probabilities learned from the pass-1 pairs (an exact personal ID is
as good a label as this data has), u-probabilities from random pairs, with term-frequency
adjustment for names and provinces ("Nguyễn Văn Hùng" in Hà Nội says less than "Khổng Minh
Thư" in Lai Châu). A row's candidates compete with each other and with "someone not in the
register": the posterior of candidate j is 2^s_j / (1 + Σ 2^s_k), s being the log2 odds
against "not in the register" (the prior: ``IN_REGISTER`` of the rows have their person
among the register's N people, each equally likely). A pass accepts a row whose best
posterior reaches ``MATCH_THRESHOLD``.

The steps read ``x`` and ``r`` (the extract and the register normalised), ``n_reg`` and the
term frequencies (``tf_name``, ``tf_tokens``, ``tf_prov``), all made by ``pipeline``.
"""

from __future__ import annotations

from typing import Final

from dancu.reconcile.engine import Step

MATCH_THRESHOLD: Final = 0.95
# The prior: the share of an agency's rows whose person is in the register at all (most are;
# the rest are foreigners, people never registered, invented or mistyped records).
IN_REGISTER: Final = 0.95
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


def compare(name: str, pairs: str, doc: str) -> Step:
    """Agreement levels for every (row, person) pair of ``pairs`` (which carries id_rel)."""
    sql = f"""
SELECT c.row_no, c.person_key, c.id_rel, c.pass, {LEVELS_SQL}, x.marked,
  r.f AS r_f, r.tk AS r_tk, r.province_code AS r_prov
FROM {pairs} AS c
JOIN x ON x.row_no = c.row_no
JOIN r ON r.person_key = c.person_key"""
    return Step(name, sql, doc)


# -- the model --------------------------------------------------------------------------------


def model_steps() -> tuple[list[Step], str]:
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
        compare("k_u", "u_pairs", "random pairs, for the u-probabilities"),
        Step("u_counts", counts("k_u"), "how often random pairs agree, by level"),
        Step(
            "m_counts",
            counts("k1", "AND NOT (coalesce(name_l, 0) = 0 AND coalesce(dob_l, 0) = 0)"),
            "how often pass-1 pairs agree, by level",
        ),
        Step("w", weights, "m and u by comparison and level"),
        Step("w_id", id_weights, "m and u by relation between the numbers"),
    ], u_pairs


def score(name: str, compared: str, doc: str) -> Step:
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


def decide(name: str, scored: str, doc: str) -> Step:
    sql = f"""
SELECT row_no, person_key, posterior, score, pass, id_rel
FROM {scored} WHERE rank = 1 AND posterior >= {MATCH_THRESHOLD}"""
    return Step(name, sql, doc)
