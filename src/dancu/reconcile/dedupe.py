"""Likely duplicate people inside the register (``dancu reconcile dedupe``): the register
compared with itself by the same normalisation, blocking and agreement levels as an
extract's probabilistic pass (``pipeline``), for officers to review.

There is no exact number to learn m-probabilities from here (two records of one person carry
two numbers), so m comes from ``DEFAULT_M`` — the shares the extract pipeline learns on
realistic data, rounded — and u from random pairs of the register, with the same
term-frequency adjustment of names. A pair is listed when the two are much more likely one person
than two (``LIST_THRESHOLD``); an old CMND number both hold counts for them, as does the
same province. Nothing is merged here: an officer decides, and the register merges
(``RegistryService.merge_persons``, called from ``duplicates.py``).
"""

from __future__ import annotations

from typing import Final

from dancu.reconcile.engine import Step
from dancu.reconcile.pipeline import blocking_rules
from dancu.reconcile.scoring import LEVELS_SQL, U_SAMPLE_PEOPLE

LIST_THRESHOLD: Final = 0.9
# P(level | same person) by comparison and level (a record entered twice: mostly as typed).
DEFAULT_M: Final[dict[tuple[str, int], float]] = {
    ("name", 5): 0.80,
    ("name", 4): 0.08,
    ("name", 3): 0.04,
    ("name", 2): 0.05,
    ("name", 1): 0.02,
    ("name", 0): 0.01,
    ("dob", 4): 0.90,
    ("dob", 3): 0.02,
    ("dob", 2): 0.02,
    ("dob", 1): 0.01,
    ("dob", 0): 0.02,
    ("sex", 1): 0.99,
    ("sex", 0): 0.01,
    ("prov", 1): 0.80,
    ("prov", 0): 0.20,
}
CMND_WEIGHT: Final = 12.0  # log2 odds a shared old CMND number adds (few numbers were reissued)


def steps() -> list[Step]:
    """After the pipeline's ``r_names``/``r`` steps (and ``ids``): pairs, levels, scores."""
    as_row = """
SELECT person_key AS row_no, f, sg, tk, vr, fam, giv, birth_date AS dob, yob, sex AS sx,
  province_code AS prov,
  CASE WHEN day(birth_date) <= 12 AND day(birth_date) <> month(birth_date)
       THEN make_date(year(birth_date), day(birth_date), month(birth_date)) END AS dob_sw,
  false AS dob_ph
FROM r"""
    blocked = "\nUNION\n".join(
        f"SELECT x3.row_no, r.person_key FROM x AS x3 JOIN r ON {cond} AND x3.row_no < r.person_key"
        for _, cond in blocking_rules()
    )
    shared = """
SELECT DISTINCT i1.person_key AS key_a, i2.person_key AS key_b
FROM reg_identifier AS i1
JOIN reg_identifier AS i2 ON i2.value = i1.value AND i2.person_key > i1.person_key
WHERE i1.kind IN ('cmnd9', 'cmnd12') AND i2.kind IN ('cmnd9', 'cmnd12')"""
    pairs = f"""
SELECT b.row_no, b.person_key, 'none' AS id_rel, 3 AS pass FROM ({blocked}
  UNION SELECT key_a, key_b FROM shared_cmnd) AS b"""
    u_pairs = f"""
SELECT a.row_no, p.person_key, 'sample' AS id_rel, 0 AS pass
FROM (SELECT row_no FROM x WHERE row_no % (SELECT greatest(1, CAST(floor(count(*) /
        {U_SAMPLE_PEOPLE}) AS BIGINT)) FROM x) = 0) AS a
CROSS JOIN (SELECT person_key FROM r WHERE person_key % (SELECT greatest(1,
        CAST(floor(count(*) / {U_SAMPLE_PEOPLE}) AS BIGINT)) FROM r) = 0) AS p
WHERE a.row_no <> p.person_key"""

    def compared(table: str) -> str:
        return f"""
SELECT c.row_no, c.person_key, {LEVELS_SQL}, r.f AS r_f, r.province_code AS r_prov
FROM {table} AS c JOIN x ON x.row_no = c.row_no JOIN r ON r.person_key = c.person_key"""

    m_rows = ",\n  ".join(f"('{c}', {lv}, {m})" for (c, lv), m in DEFAULT_M.items())
    u_counts = "\nUNION ALL\n".join(
        f"SELECT '{c}' AS comparison, {c}_l AS level, count(*) AS n FROM dk_u "
        f"WHERE {c}_l IS NOT NULL GROUP BY {c}_l"
        for c in ("name", "dob", "sex", "prov")
    )
    weights = f"""
SELECT m.comparison, m.level, m.m,
  (coalesce(u.n, 0) + 1.0) / (t.total + 6.0) AS u
FROM (VALUES {m_rows}) AS m(comparison, level, m)
LEFT JOIN ({u_counts}) AS u ON u.comparison = m.comparison AND u.level = m.level
JOIN (SELECT comparison, sum(n) AS total FROM ({u_counts}) AS a GROUP BY comparison) AS t
  ON t.comparison = m.comparison"""
    score = """
SELECT k.row_no AS key_a, k.person_key AS key_b, k.name_l, k.dob_l, k.sex_l, k.prov_l,
  log2(1.0 / (SELECT n FROM n_reg))
  + coalesce(log2(wn.m / greatest(wn.u, CASE WHEN k.name_l >= 4
      THEN coalesce(tn.n, 1) / CAST((SELECT n FROM n_reg) AS DOUBLE) ELSE 0.0 END)), 0.0)
  + coalesce(log2(wd.m / wd.u), 0.0) + coalesce(log2(ws.m / ws.u), 0.0)
  + coalesce(log2(wp.m / wp.u), 0.0)
  + CASE WHEN sc.key_a IS NOT NULL THEN {cmnd} ELSE 0.0 END AS score
FROM dk AS k
LEFT JOIN shared_cmnd AS sc ON sc.key_a = k.row_no AND sc.key_b = k.person_key
LEFT JOIN dw AS wn ON wn.comparison = 'name' AND wn.level = k.name_l
LEFT JOIN dw AS wd ON wd.comparison = 'dob' AND wd.level = k.dob_l
LEFT JOIN dw AS ws ON ws.comparison = 'sex' AND ws.level = k.sex_l
LEFT JOIN dw AS wp ON wp.comparison = 'prov' AND wp.level = k.prov_l
LEFT JOIN tf_name AS tn ON tn.f = k.r_f""".replace("{cmnd}", str(CMND_WEIGHT))
    found = f"""
SELECT a.personal_id AS personal_id_a, b.personal_id AS personal_id_b,
  round(1.0 / (1.0 + power(2.0, -s.score)), 4) AS score,
  concat_ws(' ', 'name' || CAST(s.name_l AS VARCHAR), 'dob' || CAST(s.dob_l AS VARCHAR),
            'sex' || CAST(s.sex_l AS VARCHAR), 'prov' || CAST(s.prov_l AS VARCHAR)) AS agreement,
  coalesce(a.province_code, '') AS province_code
FROM ds AS s JOIN r AS a ON a.person_key = s.key_a JOIN r AS b ON b.person_key = s.key_b
WHERE 1.0 / (1.0 + power(2.0, -s.score)) >= {LIST_THRESHOLD}"""
    return [
        Step("x", as_row, "the register's people, as rows to compare"),
        Step("shared_cmnd", shared, "pairs of people holding the same old CMND number"),
        Step("dc", pairs, "pairs of people sharing a blocking key"),
        Step("dk", compared("dc"), "the pairs compared"),
        Step("du_pairs", u_pairs, "random pairs of people"),
        Step("dk_u", compared("du_pairs"), "random pairs compared"),
        Step("dw", weights, "m (defaults) and u (random pairs) by level"),
        Step("ds", score, "each pair's log2 odds of being one person"),
        Step("duplicates", found, "the pairs to review"),
    ]
