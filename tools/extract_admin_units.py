"""Regenerate dancu's shipped administrative-unit reference data.

Source: the MIT-licensed `vietnamadminunits` package (1.0.4), whose `data/dataset.db`
holds the 63-province/district/commune list in force before 1 July 2025 and the
34-province two-tier list from Resolution 202/2025/QH15, and whose
`converter_2025.json` maps every old commune to its successor(s).  This script is
a maintainer's tool, run by hand when the source is updated:

    pip install vietnamadminunits==1.0.4 && python tools/extract_admin_units.py

It writes three CSV files into `src/dancu/core/data/` that dancu loads at
`dancu db upgrade` time; the package itself is not a runtime dependency.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from importlib.resources import files
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "dancu" / "core" / "data"


def main() -> None:
    data = files("vietnamadminunits") / "data"
    db = sqlite3.connect(str(data / "dataset.db"))
    conv = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))

    legacy = db.execute(
        "SELECT provinceCode, province, districtCode, district, districtType, wardCode, ward, "
        "wardType, provinceKey, districtKey, wardKey FROM admin_units_legacy "
        "ORDER BY provinceCode, districtCode, wardCode"
    ).fetchall()
    new = db.execute(
        "SELECT provinceCode, province, wardCode, ward, wardType, provinceKey, wardKey "
        "FROM admin_units ORDER BY provinceCode, wardCode"
    ).fetchall()

    with open(OUT / "units_legacy.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
                "province_code",
                "province_name",
                "district_code",
                "district_name",
                "district_type",
                "commune_code",
                "commune_name",
                "commune_type",
            ]
        )
        for r in legacy:
            w.writerow(r[:8])
    with open(OUT / "units_2025.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["province_code", "province_name", "commune_code", "commune_name", "commune_type"]
        )
        for r in new:
            w.writerow(r[:5])

    # Succession: old commune -> new commune(s).  The converter keys old communes as
    # "province_district_ward" keys and new ones as (new province key, ward key).
    old_by_key = {f"{r[8]}_{r[9]}_{r[10]}": r[5] for r in legacy}
    new_by_key = {(r[5], r[6]): r[2] for r in new}
    rows: set[tuple[str, str, str, str]] = set()
    skipped: list[str] = []
    for new_prov, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, olds in wards.items():
            for old in olds:
                if old not in old_by_key:
                    # Island districts without communes (Hoàng Sa) have no legacy row.
                    skipped.append(old)
                    continue
                rows.add((old_by_key[old], new_by_key[(new_prov, new_ward)], "whole", "1"))
    for new_prov, olds in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, targets in olds.items():
            for t in targets:
                rows.add(
                    (
                        old_by_key[old],
                        new_by_key[(new_prov, t["newWardKey"])],
                        "split",
                        "1" if t["isDefaultNewWard"] else "0",
                    )
                )
    with open(OUT / "succession_2025.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["old_commune_code", "new_commune_code", "kind", "is_default"])
        for row in sorted(rows):
            w.writerow(row)
    print(f"legacy {len(legacy)}, 2025 {len(new)}, succession {len(rows)}, skipped {skipped}")


if __name__ == "__main__":
    main()
