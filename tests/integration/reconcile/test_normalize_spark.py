"""The dc_* functions the pipeline added for names written given name first and two-digit
years, on Spark as on DuckDB (the pipeline's own parity test has few such names)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dancu.reconcile.normalize import definitions

_CHECKED = [
    "Hùng Văn Nguyễn", "HUNG VAN NGUYEN", "Quân Nguyễn", "Nguyễn Văn Hùng", "Đặng  Thị-Huệ",
    "Khai Thị Minh Nguyễn", "", "5/3/85", "05-03-30", "29/02/28", "29/02/29", "1/1/69",
    "01/02/2020", "20200201", "2020", "2020-2-1", "x",
]  # fmt: skip


@pytest.mark.spark
def test_given_name_first_and_two_digit_years_agree_on_spark(tmp_path: Path) -> None:
    from dancu.reconcile.engine import SparkEngine

    query = (
        "SELECT v, dc_words(v), dc_given_first(dc_words(v)), dc_family_first(dc_words(v)), "
        "dc_date(v), dc_year(v) FROM t ORDER BY v"
    )
    con = duckdb.connect()
    for statement in definitions("duckdb"):
        con.execute(statement)
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in _CHECKED])
    ours = con.execute(query).fetchall()
    con.close()
    engine = SparkEngine(tmp_path)
    try:
        engine.spark.createDataFrame([(v,) for v in _CHECKED], "v STRING").createOrReplaceTempView(
            "t"
        )
        theirs = [tuple(r) for r in engine.spark.sql(query).collect()]
    finally:
        engine.spark.stop()
    assert theirs == ours
