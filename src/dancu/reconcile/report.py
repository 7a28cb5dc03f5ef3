"""The report of a reconciliation run, from its summary: what the page shows (charts as bars
of inline SVG, tables beside them) and the same as one self-contained HTML file to download.
Presentation only; the figures come from ``runner.Summary``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dancu.core.i18n import N_
from dancu.reconcile.fields import DIFFERENCES, VERDICTS
from dancu.reconcile.runner import Summary

Gettext = Callable[[str], str]

VERDICT_LABELS = {
    "matched": N_("Matched"),
    "matched_with_differences": N_("Matched, with differences to correct"),
    "deceased": N_("Deceased"),
    "not_found": N_("Not found in the register"),
    "ambiguous": N_("Ambiguous: several people fit"),
    "needs_review": N_("To review: one person may fit"),
    "duplicate": N_("Duplicate within the extract"),
}
DIFFERENCE_LABELS = {
    "id_missing": N_("No personal ID number"),
    "id_leading_zeros": N_("Personal ID number lost its leading zeros"),
    "id_old_cmnd": N_("Old CMND number instead of the personal ID number"),
    "id_reestablished": N_("A personal ID number since replaced"),
    "id_transposed": N_("Two digits of the number swapped"),
    "id_typo": N_("One digit of the number wrong"),
    "id_other": N_("Another person's number, or an unknown one"),
    "name_no_diacritics": N_("Name without diacritics"),
    "name_order": N_("Name in another order"),
    "name_variant": N_("Name variant (Hoàng/Huỳnh, Vũ/Võ)"),
    "name_typo": N_("Name misspelt"),
    "name_missing_part": N_("Middle name missing"),
    "name_other": N_("A different name"),
    "dob_swapped": N_("Day and month of birth swapped"),
    "dob_year_only": N_("Only the year of birth"),
    "dob_typo": N_("Date of birth wrong"),
    "dob_missing": N_("No date of birth"),
    "sex_wrong": N_("Sex wrong"),
    "province_outdated": N_("Province before the 2025 merger"),
    "province_wrong": N_("Another province"),
}
PASS_LABELS = {
    "exact-id": N_("Exact personal ID number"),
    "repaired-id": N_("Repaired number (zeros, CMND, digits)"),
    "probabilistic": N_("Name, date of birth and place"),
}
# Colours of the verdicts in the charts (CSS classes, no inline styles under the CSP).
VERDICT_CLASSES = {v: f"v-{v.replace('_', '-')}" for v in VERDICTS}


def _bars(items: list[tuple[str, str, int]], total: int) -> list[dict[str, Any]]:
    widest = max([n for _k, _l, n in items] + [1])
    return [
        {
            "key": key,
            "label": label,
            "n": n,
            "pct": round(100 * n / total, 1) if total else 0.0,
            "w": round(100 * n / widest, 1),
        }
        for key, label, n in items
    ]


def report_context(summary: Summary, _: Gettext) -> dict[str, Any]:
    """The report's figures for a template: bars by verdict, by kind of difference and by
    deciding pass, the table by province, the samples."""
    total = summary.rows or sum(summary.verdicts.values())
    verdicts = _bars(
        [(v, _(VERDICT_LABELS[v]), summary.verdicts.get(v, 0)) for v in VERDICTS], total
    )
    for bar in verdicts:
        bar["css"] = VERDICT_CLASSES[bar["key"]]
    differences = _bars(
        [
            (d, _(DIFFERENCE_LABELS.get(d, d)), summary.differences[d])
            for d in DIFFERENCES
            if summary.differences.get(d)
        ],
        total,
    )
    linked = sum(summary.passes.values())
    passes = _bars(
        [(p, _(PASS_LABELS.get(p, p)), n) for p, n in summary.passes.items()], linked or 1
    )
    by_province: dict[str, dict[str, Any]] = {}
    for row in summary.provinces:
        entry = by_province.setdefault(
            row["code"] or "",
            {
                "code": row["code"],
                "name": row["name"] or "—",
                "total": 0,
                **dict.fromkeys(VERDICTS, 0),
            },
        )
        entry[row["verdict"]] = row["rows"]
        entry["total"] += row["rows"]
    provinces = sorted(by_province.values(), key=lambda e: -int(e["total"]))
    return {
        "summary": summary,
        "total": total,
        "verdict_bars": verdicts,
        "difference_bars": differences,
        "pass_bars": passes,
        "provinces": provinces,
        "verdict_labels": {v: _(VERDICT_LABELS[v]) for v in VERDICTS},
        "difference_labels": {d: _(DIFFERENCE_LABELS.get(d, d)) for d in DIFFERENCES},
        "verdicts": VERDICTS,
        "verdict_classes": VERDICT_CLASSES,
    }


def render_report(job: Any, summary: Summary, _: Gettext) -> str:
    """The report as a standalone HTML file (its styles inside: it is read offline)."""
    from importlib.resources import files

    from dancu.core import i18n
    from dancu.core.pages import add_templates, templates

    add_templates("dancu.reconcile")  # also when a command writes the file, with no site
    # The site's own style sheet, inside the file (it is read offline, with no server).
    css = (files("dancu.core") / "static" / "dancu.css").read_text(encoding="utf-8")
    template = templates.get_template("reconcile/report_file.html")
    return template.render(
        job=job, css=css, locale=i18n.current_locale.get(), **report_context(summary, _)
    )
