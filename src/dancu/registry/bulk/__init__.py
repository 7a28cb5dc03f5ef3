"""Bulk import and export of the population register (DESIGN "Bulk work is set-based").

``load`` runs an import (prepare, merge, finish); ``io`` is the file side (formats, error
report, export writers); ``export`` streams the register out; ``db`` holds the transactions
and locks of bulk work; ``sql_tables``, ``sql_rules``, ``sql_validate`` and ``sql_merge`` the
SQL of the staging table, the row-level rules, the validation work tables and the merge.
"""
