"""The pipeline's DuckDB SQL in Spark's dialect (sqlglot), for what sqlglot does not carry
over by itself. The dc_* functions pass through untouched: each engine defines its own."""

from __future__ import annotations

from functools import lru_cache

import sqlglot


@lru_cache(maxsize=256)
def to_spark(sql: str) -> str:
    return str(sqlglot.transpile(sql, read="duckdb", write="spark")[0])
