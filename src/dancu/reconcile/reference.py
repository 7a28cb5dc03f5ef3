"""Reference tables the pipeline joins against, built from the administrative units dancu
ships (``core/data``, Resolution 202/2025/QH15): how an agency may write a province — a name
of either scheme, with or without "Tỉnh"/"Thành phố", a short form, a code — and which
province of the 34-province scheme it means today; and each commune's province, for a
population file given as the register.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from dancu.core.names import fold
from dancu.core.units import reference_rows

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_PREFIXES = ("thanh pho ", "tinh ", "tp ")
# Short forms seen in agency data (GUESS: the common ones; more belong here as found).
_ALIASES = {
    "79": ("tp hcm", "tphcm", "hcm", "sai gon", "tp ho chi minh", "thanh pho hcm"),
    "01": ("hn", "tp ha noi"),
    "48": ("tp da nang",),
    "31": ("tp hai phong",),
    "92": ("tp can tho",),
    "46": ("thua thien hue", "tt hue", "tp hue"),
}
# The codes agencies give for legacy provinces that merged: Bà Rịa–Vũng Tàu as BRVT, etc.
_LEGACY_ALIASES = {"77": ("brvt", "ba ria vung tau", "vung tau"), "74": ("binh duong",)}


def sql_fold(text: str) -> str:
    """Python's twin of the SQL ``dc_fold``: folded, anything but letters and digits a space."""
    return _NON_ALNUM.sub(" ", fold(text)).strip()


def _keys(name: str) -> set[str]:
    key = sql_fold(name)
    out = {key}
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            out.add(key.removeprefix(prefix))
    out |= {f"tp {k}" for k in list(out)}
    return out


@cache
def province_keys() -> list[tuple[str, str, bool]]:
    """(key, 2025 province code, written in the legacy scheme) for every way of naming a
    province: a key is a folded name (see ``sql_fold``) or a code. A name both schemes use
    (Hà Nội, Đồng Nai...) is not legacy; a merged-away province's name is."""
    new = {r["province_code"]: r["province_name"] for r in reference_rows("units_2025.csv")}
    successor: dict[str, Counter[str]] = {}
    commune_province = {
        r["commune_code"]: r["province_code"] for r in reference_rows("units_2025.csv")
    }
    legacy_names: dict[str, str] = {}
    legacy_commune: dict[str, str] = {}
    for r in reference_rows("units_legacy.csv"):
        legacy_names[r["province_code"]] = r["province_name"]
        legacy_commune[r["commune_code"]] = r["province_code"]
    for s in reference_rows("succession_2025.csv"):
        old_province = legacy_commune.get(s["old_commune_code"])
        new_province = commune_province.get(s["new_commune_code"])
        if old_province and new_province:
            successor.setdefault(old_province, Counter())[new_province] += 1
    rows: dict[str, tuple[str, bool]] = {}
    for code, name in new.items():
        for key in (*_keys(name), code, code.lstrip("0"), *_ALIASES.get(code, ())):
            rows.setdefault(key, (code, False))
    for code, name in legacy_names.items():
        target = successor[code].most_common(1)[0][0] if code in successor else code
        for key in (*_keys(name), code, code.lstrip("0"), *_LEGACY_ALIASES.get(code, ())):
            if key not in rows:
                rows[key] = (target, True)
    return sorted((k, c, legacy) for k, (c, legacy) in rows.items() if k)


@cache
def commune_provinces() -> list[tuple[str, str, str]]:
    """(scheme, commune code, 2025 province code) for every commune of both schemes."""
    out = [
        ("2025", r["commune_code"], r["province_code"]) for r in reference_rows("units_2025.csv")
    ]
    new_province = {c: p for _s, c, p in out}
    legacy_to_new = {
        s["old_commune_code"]: s["new_commune_code"]
        for s in reference_rows("succession_2025.csv")
        if s["is_default"] == "1"
    }
    for r in reference_rows("units_legacy.csv"):
        target = new_province.get(legacy_to_new.get(r["commune_code"], ""), "")
        out.append(("legacy", r["commune_code"], target))
    return out


@cache
def province_names() -> dict[str, str]:
    """The 2025 province names by code, for reports."""
    return {r["province_code"]: r["province_name"] for r in reference_rows("units_2025.csv")}
