"""The plain Splink model bench_reconcile compares dancu's pipeline with, run as its own
process (``python -m bench.splink_baseline POPULATION STAGED OUT``) so its time and peak
memory are its own.

"Plain": Splink 5 on DuckDB used the way its documentation teaches, on the same prepared
columns (the dc_* normalisation of dancu.reconcile.normalize: folded name, word set, the
Hoàng/Huỳnh reading, parsed dates, sex, province, the number's digits), **given the same
blocking** as dancu's probabilistic pass (``pipeline.blocking_rules``) plus the exact number,
which dancu's first pass uses: out-of-the-box comparisons (name by Jaro-Winkler with
term-frequency adjustment, date of birth, sex, province, the number by Levenshtein),
λ from the exact-number rule, u by random sampling, m by expectation maximisation on two
blocking passes. Each extract row takes its best-scoring candidate when the match
probability reaches the same threshold as dancu's (``scoring.MATCH_THRESHOLD``).
What dancu adds — the cascade, repaired numbers, the dc_sig mark-aware name level, the
candidates competing with "not in the register", the verdicts — is what is compared.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

from dancu.reconcile.normalize import definitions
from dancu.reconcile.reference import province_keys
from dancu.reconcile.scoring import MATCH_THRESHOLD
from dancu.reconcile.sources import population_register

# The same blocking as dancu's pass 3 (pipeline._BLOCKS), in Splink's terms, and the
# exact number (dancu's pass 1).
BLOCKS = (
    ("id12",),
    ("f", "yob"),
    ("tk", "yob"),
    ("vr", "yob"),
    ("dob", "fam"),
    ("dob", "giv"),
    ("dob", "sx", "prov"),
)


def prepare(con: duckdb.DuckDBPyConnection, persons: Path, staged: Path) -> None:
    for statement in definitions("duckdb"):
        con.execute(statement)
    con.execute("CREATE TABLE ref_province (key VARCHAR, province_code VARCHAR, legacy BOOLEAN)")
    con.executemany("INSERT INTO ref_province VALUES (?, ?, ?)", province_keys())
    common = """
      dc_tokens(f) AS tk, dc_variant(f) AS vr, dc_first(f) AS fam, dc_last(f) AS giv"""
    con.execute(
        f"""CREATE TABLE ext AS SELECT b.*, {common} FROM (
          SELECT row_no AS unique_id, dc_fold(full_name) AS f, dc_date(birth_date) AS dob,
            dc_year(birth_date) AS yob, dc_sex(sex) AS sx,
            CASE WHEN length(dc_digits(personal_id)) BETWEEN 10 AND 12
                 THEN lpad(dc_digits(personal_id), 12, '0') END AS id12,
            p.province_code AS prov
          FROM read_parquet('{staged}') AS e
          LEFT JOIN ref_province AS p ON p.key = dc_fold(e.province)) AS b"""
    )
    con.execute(
        f"""CREATE TABLE reg AS SELECT b.*, {common} FROM (
          SELECT person_key AS unique_id, personal_id, dc_fold(full_name) AS f,
            CAST(birth_date AS DATE) AS dob, CAST(year(birth_date) AS INTEGER) AS yob,
            sex AS sx, personal_id AS id12, province_code AS prov
          FROM read_parquet('{persons}')) AS b"""
    )


def link(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    timings: dict[str, float] = {}
    started = time.perf_counter()
    db_api = DuckDBAPI(con)
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("f").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=False),
            cl.ExactMatch("sx"),
            cl.ExactMatch("prov").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("id12", [1, 2]),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in BLOCKS],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([db_api.register("ext"), db_api.register("reg")], settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match([block_on("id12")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("f"))
    timings["train"] = time.perf_counter() - started
    mark = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    name = predictions.physical_name
    timings["predict"] = time.perf_counter() - mark
    # The same one-candidate-per-row decision as dancu's: the best, at the same threshold.
    con.execute(
        f"""CREATE TABLE links AS SELECT unique_id_l AS row_no, unique_id_r AS person_key,
              match_probability
            FROM (SELECT *, row_number() OVER (PARTITION BY unique_id_l
                    ORDER BY match_weight DESC, unique_id_r) AS k FROM {name}) AS ranked
            WHERE k = 1 AND match_probability >= {MATCH_THRESHOLD}"""
    )
    timings["total"] = time.perf_counter() - started
    return timings


def main() -> None:
    population, staged, out = (Path(a) for a in sys.argv[1:4])
    started = time.perf_counter()
    register = population_register(population, out.parent / "registers")
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '4GB'")
    prepare(con, register.persons, staged)
    prepared = time.perf_counter() - started
    timings = link(con)
    con.execute(
        f"""COPY (SELECT l.row_no, r.personal_id, l.match_probability
                  FROM links AS l JOIN reg AS r ON r.unique_id = l.person_key)
            TO '{out}' (FORMAT parquet)"""
    )
    timings["prepare"] = prepared
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
