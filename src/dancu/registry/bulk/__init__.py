"""Bulk import and export of the population register (DESIGN "Bulk work is set-based").

``load`` runs an import (prepare, merge, finish); ``io`` is the file side (formats, error
report, export writers); ``export`` streams the register out; ``sql_validate`` holds the SQL.
"""
