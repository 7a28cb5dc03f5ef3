"""Reconciliation pages: an agency's officer (or the ministry's, for any agency) sends an
extract, confirms its columns, watches the run, reads the report with its charts and a sample
of each verdict, and downloads the result, the correction file and the report.

Every page goes through ``ReconcileService`` with the signed-in officer, which checks the
role and the agency and audits; the pages only present.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response

from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError, NotFound
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    Answered,
    CsrfChecked,
    Tab,
    WebContext,
    WebOfficer,
    error_page,
    field_errors,
    flash,
    render,
    translated,
)
from dancu.reconcile.deps import RECONCILE_ROLES, ReconcileDep, ReconcileNeeds, ReconcileOfficer
from dancu.reconcile.fields import FIELDS
from dancu.reconcile.report import render_report, report_context

router = APIRouter(prefix="/reconcile", tags=["reconcile-pages"], include_in_schema=False)

FIELD_LABELS = {
    "agency_key": N_("Agency's record key"),
    "full_name": N_("Full name"),
    "birth_date": N_("Date of birth"),
    "sex": N_("Sex"),
    "personal_id": N_("Personal ID number"),
    "old_id": N_("Old ID card number (CMND)"),
    "address": N_("Address"),
    "province": N_("Province"),
}
STATUS_LABELS = {
    "draft": N_("columns to confirm"),
    "queued": N_("waiting"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
}
GUESS_LABELS = {
    "profile": N_("as last time"),
    "exact": N_("recognised"),
    "prefix": N_("guessed: check"),
    "values": N_("recognised from its values: check"),
}
# What went wrong with a file, in the officer's language; the reader's own message (in
# English, naming the file, the line or the column) follows as the detail.
EXTRACT_PROBLEMS = {
    "extract-empty": N_("The file has no data rows."),
    "extract-encoding": N_("The file's characters could not be read: save it as 'CSV UTF-8'."),
    "extract-delimiter": N_(
        "The columns could not be told apart: put a comma, semicolon or tab between them."
    ),
    "extract-format": N_("This kind of file is not accepted: send CSV, Excel (.xlsx) or Parquet."),
    "extract-headers": N_("Two columns have the same header."),
    "extract-row": N_("A row of the file is damaged."),
    "extract-mapping": N_("This choice of columns is not possible."),
    "extract-columns-missing": N_(
        "A name is needed, and at least one of: personal ID number, CMND number, date of birth."
    ),
}
_JOB_ID = re.compile(r"\d{1,18}")


def problem(exc: DancuError) -> str:
    """A refusal for a page: the translated explanation of its kind, then the detail."""
    headline = EXTRACT_PROBLEMS.get(exc.code)
    return f"{_(headline)} ({exc.message})" if headline else _(exc.message)


_FILES = {
    "result.csv": "text/csv",
    "result.parquet": "application/vnd.apache.parquet",
    "corrections.csv": "text/csv",
    "summary.json": "application/json",
}


def _job_id(value: str) -> int:
    if not _JOB_ID.fullmatch(value):
        raise NotFound("no such reconciliation job")
    return int(value)


@router.get("")
def jobs_page(request: Request, officer: ReconcileOfficer, container: ReconcileDep) -> Response:
    """The agency's extracts, newest first, and the form to send a new one."""
    return _jobs(request, container, officer, {}, {})


def _jobs(
    request: Request,
    container: ReconcileNeeds,
    officer: OfficerContext,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        "jobs": container.reconcile.jobs(officer),
        "errors": errors,
        "values": values,
        "is_ministry": officer.role is Role.MINISTRY,
        "status_labels": translated(STATUS_LABELS),
        "max_mb": container.settings.max_upload_mb,
    }
    return render(request, "reconcile/jobs.html", context, status_code)


@router.post("/upload")
def upload(
    request: Request,
    officer: ReconcileOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
    file: Annotated[UploadFile | None, File()] = None,
    agency: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    if file is None or not file.filename:
        errors = {"file": _("Choose the file to send.")}
        return _jobs(request, container, officer, errors, {"agency": agency}, 422)
    try:
        job = container.reconcile.upload(
            officer,
            file.filename,
            file.file,
            agency=agency,
            max_bytes=container.settings.max_upload_mb * 1024 * 1024,
        )
    except DancuError as exc:
        errors = {("agency" if exc.field == "agency" else "file"): problem(exc)}
        return _jobs(request, container, officer, errors, {"agency": agency}, exc.status)
    return RedirectResponse(f"/reconcile/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}")
def job_page(
    request: Request, job_id: str, officer: ReconcileOfficer, container: ReconcileDep
) -> Response:
    """A job: its columns to confirm, its progress, its report, or why it failed."""
    job = _find(request, container, officer, job_id)
    if job.status == "draft":
        return _mapping(request, job, {}, job.mapping)
    context: dict[str, Any] = {"job": job, "status_labels": _status_labels()}
    if job.status == "done":
        summary = container.reconcile.summary(officer, job.id)
        context |= report_context(summary, _)
        context["files"] = list(_FILES)
    return render(request, "reconcile/job.html", context)


def _find(request: Request, container: ReconcileNeeds, officer: OfficerContext, job_id: str) -> Any:
    """The officer's job (else the "not found" page is the answer, ``Answered``)."""
    try:
        return container.reconcile.job(officer, _job_id(job_id))
    except DancuError as exc:
        raise Answered(error_page(request, _("Not found"), _(exc.message), exc.status)) from exc


def _status_labels() -> dict[str, str]:
    return translated(STATUS_LABELS)


def _mapping(
    request: Request,
    job: Any,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        "job": job,
        "fields": [(f, _(FIELD_LABELS[f])) for f in FIELDS],
        "errors": errors,
        "values": values,
        "guesses": {k: _(GUESS_LABELS[v]) for k, v in job.guesses.items() if v in GUESS_LABELS},
    }
    return render(request, "reconcile/mapping.html", context, status_code)


@router.post("/jobs/{job_id}/confirm")
async def confirm(
    request: Request,
    job_id: str,
    officer: ReconcileOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
) -> Response:
    form = await request.form()
    mapping: dict[str, str] = {f: str(form.get(f"col_{f}", ""))[:200] for f in FIELDS}
    try:
        container.reconcile.confirm(officer, _job_id(job_id), mapping)
    except DancuError as exc:
        job = _find(request, container, officer, job_id)
        return _mapping(request, job, _mapping_errors(exc, mapping), mapping, exc.status)
    flash(request, _("The extract is being matched against the register."))
    return RedirectResponse(f"/reconcile/jobs/{job_id}", status_code=303)


def _mapping_errors(exc: DancuError, mapping: dict[str, str]) -> dict[str, str]:
    """A refused mapping's message under the field it concerns (the name, or the date of
    birth standing for "something that tells people apart")."""
    if exc.code == "extract-columns-missing":
        field = "full_name" if not mapping.get("full_name") else "birth_date"
        return {field: problem(exc), "_form": problem(exc)}
    if exc.code in EXTRACT_PROBLEMS:
        return {"_form": problem(exc)}
    return field_errors(exc)


@router.get("/jobs/{job_id}/progress")
def progress(
    request: Request, job_id: str, officer: ReconcileOfficer, container: ReconcileDep
) -> Response:
    """The progress bar, polled by the job's page; a finished job reloads the page."""
    job = _find(request, container, officer, job_id)
    if job.status in ("done", "failed"):
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render(
        request,
        "reconcile/_progress.html",
        {"job": job, "status_labels": _status_labels(), "oob": True},
    )


@router.get("/jobs/{job_id}/files/{kind}")
def download(
    request: Request, job_id: str, kind: str, officer: ReconcileOfficer, container: ReconcileDep
) -> Response:
    if kind not in _FILES:
        return error_page(request, _("Not found"), _("There is no such file."), 404)
    try:
        path = container.reconcile.file(officer, _job_id(job_id), kind)  # type: ignore[arg-type]
    except DancuError as exc:
        return error_page(request, _("Not found"), _(exc.message), exc.status)
    return FileResponse(
        path,
        media_type=_FILES[kind],
        filename=f"job{job_id}-{kind}",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/jobs/{job_id}/report.html")
def report_download(
    request: Request, job_id: str, officer: ReconcileOfficer, container: ReconcileDep
) -> Response:
    """The report as one self-contained HTML file, to keep or send on."""
    try:
        job = container.reconcile.job(officer, _job_id(job_id))
        summary = container.reconcile.summary(officer, job.id)
    except DancuError as exc:
        return error_page(request, _("Not found"), _(exc.message), exc.status)
    html = render_report(job, summary, _)
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="job{job.id}-report.html"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/jobs/{job_id}/discard")
def discard(
    request: Request,
    job_id: str,
    officer: ReconcileOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
) -> Response:
    try:
        container.reconcile.discard(officer, _job_id(job_id))
    except DancuError as exc:
        return error_page(request, _("Not allowed"), _(exc.message), exc.status)
    flash(request, _("The extract and its results were deleted."))
    return RedirectResponse("/reconcile", status_code=303)


# -- the register's likely duplicates (officers of the register) -----------------------------

AGREEMENT_LABELS = {
    "name5": N_("same name"),
    "name4": N_("same name without marks"),
    "name3": N_("same words"),
    "name2": N_("name one letter apart"),
    "name1": N_("middle name missing"),
    "dob4": N_("same date of birth"),
    "dob3": N_("day and month swapped"),
    "dob1": N_("close date of birth"),
    "sex1": N_("same sex"),
    "prov1": N_("same province"),
}


@router.get("/duplicates")
def duplicates_page(request: Request, officer: WebOfficer, container: ReconcileDep) -> Response:
    """Pairs of people the register probably holds twice, for review; below them the pairs
    confirmed as one person and waiting for the ministry's merge, and the merged pairs, each
    with its undo."""
    try:
        pairs = container.reconcile.duplicates(officer)
        confirmed = container.reconcile.duplicates(officer, "same", limit=50)
        merged = container.reconcile.duplicates(officer, "merged", limit=50)
    except DancuError as exc:
        return error_page(request, _("Not allowed"), _(exc.message), exc.status)
    labels = translated(AGREEMENT_LABELS)
    context = {
        "pairs": pairs,
        "confirmed": confirmed,
        "merged": merged,
        "can_merge": officer.can_write,
        "agreement": lambda text: [labels[w] for w in text.split() if w in labels],
    }
    return render(request, "reconcile/duplicates.html", context)


@router.post("/duplicates/{pair_id}")
def decide_duplicate(
    request: Request,
    pair_id: str,
    officer: WebOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
    decision: Annotated[str, Form(max_length=12)] = "",
    survivor: Annotated[str, Form(max_length=1)] = "a",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        pair = container.reconcile.decide_duplicate(
            officer, _job_id(pair_id), decision, note, survivor
        )
    except DancuError as exc:
        return error_page(request, _("Not allowed"), _(exc.message), exc.status)
    flash(request, _(_MERGED) if pair.status == "merged" else _("The review is recorded."))
    return RedirectResponse("/reconcile/duplicates", status_code=303)


@router.post("/duplicates/{pair_id}/merge")
def merge_duplicate(
    request: Request,
    pair_id: str,
    officer: WebOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
    survivor: Annotated[str, Form(max_length=1)] = "a",
) -> Response:
    """Merge a pair a province officer confirmed as one person (the ministry)."""
    try:
        container.reconcile.merge_duplicate(officer, _job_id(pair_id), survivor)
    except DancuError as exc:
        return error_page(request, _("Not allowed"), _(exc.message), exc.status)
    flash(request, _(_MERGED))
    return RedirectResponse("/reconcile/duplicates", status_code=303)


@router.post("/duplicates/{pair_id}/undo")
def undo_duplicate_merge(
    request: Request,
    pair_id: str,
    officer: WebOfficer,
    container: ReconcileDep,
    _csrf: CsrfChecked,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Undo a pair's merge. From HTMX the pair's entry is replaced in place; a plain form
    post comes back to the page."""
    is_htmx = request.headers.get("hx-request") == "true"
    try:
        pair = container.reconcile.undo_duplicate_merge(officer, _job_id(pair_id), reason)
    except DancuError as exc:
        if is_htmx:
            # Shown in place of the entry, so answered 200: HTMX swaps no 4xx answer in.
            context = {"p": None, "pair_id": pair_id, "error": _(exc.message)}
            return render(request, "reconcile/_undone.html", context)
        return error_page(request, _("Not allowed"), _(exc.message), exc.status)
    if is_htmx:
        return render(request, "reconcile/_undone.html", {"p": pair, "pair_id": pair_id})
    flash(request, _(_UNDONE))
    return RedirectResponse("/reconcile/duplicates", status_code=303)


_MERGED = N_("The two records are merged: the other number now answers as the one kept.")
_UNDONE = N_("The merge is undone: both records are back, and the pair waits for review.")


# What reconciliation adds to the site: its pages, tabs, and the agencies' home page.
WEB = WebContext(
    name="reconcile",
    templates="dancu.reconcile",
    routers=(router,),
    tabs=(
        Tab(N_("Reconciliation"), "/reconcile", RECONCILE_ROLES),
        Tab(N_("Duplicates"), "/reconcile/duplicates", frozenset({Role.MINISTRY, Role.PROVINCE})),
    ),
    homes={Role.AGENCY: "/reconcile"},
)
