"""The reconciliation API, for agencies' systems and the data-sharing platform: send an
extract, confirm (or let dancu take) its columns, poll the job, fetch the summary and the
files. Bearer tokens of agency officers (``dancu officer token``) or the ministry's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import FileResponse

from dancu.core.errors import Invalid
from dancu.reconcile import schemas as s
from dancu.reconcile.deps import ApiReconcileOfficer, ReconcileDep

router = APIRouter(prefix="/api/v1/reconcile", tags=["reconciliation"])

FileKind = Literal["result.csv", "result.parquet", "corrections.csv", "summary.json"]
_MEDIA = {
    "result.csv": "text/csv",
    "result.parquet": "application/vnd.apache.parquet",
    "corrections.csv": "text/csv",
    "summary.json": "application/json",
}


@router.post("/jobs", status_code=201)
def send_extract(
    officer: ApiReconcileOfficer,
    container: ReconcileDep,
    file: Annotated[UploadFile, File(description="CSV, Excel (.xlsx) or Parquet")],
    agency: Annotated[str, Form(max_length=40, description="the ministry names the agency")] = "",
    confirm: Annotated[bool, Form(description="queue at once with the recognised columns")] = False,
) -> s.JobOut:
    """Send an agency's extract. The answer shows the columns recognised (``mapping``) and
    the first rows; confirm them with ``POST /jobs/{id}/confirm``, or send ``confirm=true``
    to queue the job with the recognised columns straight away."""
    job = container.reconcile.upload(
        officer,
        file.filename or "extract",
        file.file,
        agency=agency,
        max_bytes=container.settings.max_upload_mb * 1024 * 1024,
    )
    if confirm:
        job = container.reconcile.confirm(officer, job.id, job.mapping)
    return job


@router.get("/jobs")
def list_jobs(officer: ApiReconcileOfficer, container: ReconcileDep) -> list[s.JobOut]:
    """The agency's jobs (the ministry: every agency's), newest first."""
    return container.reconcile.jobs(officer)


@router.get("/jobs/{job_id}")
def get_job(job_id: int, officer: ApiReconcileOfficer, container: ReconcileDep) -> s.JobOut:
    """A job's state and progress; when ``done``, its verdict counts."""
    return container.reconcile.job(officer, job_id)


@router.post("/jobs/{job_id}/confirm")
def confirm_columns(
    job_id: int, body: s.MappingIn, officer: ApiReconcileOfficer, container: ReconcileDep
) -> s.JobOut:
    """Confirm which column holds which field (field → header) and queue the job."""
    return container.reconcile.confirm(officer, job_id, body.mapping)


@router.get("/jobs/{job_id}/summary")
def get_summary(
    job_id: int, officer: ApiReconcileOfficer, container: ReconcileDep
) -> dict[str, Any]:
    """Counts by verdict, province and kind of difference, and a sample of each verdict."""
    from dataclasses import asdict

    return asdict(container.reconcile.summary(officer, job_id))


@router.get("/jobs/{job_id}/files/{kind}")
def get_file(
    job_id: int, kind: FileKind, officer: ApiReconcileOfficer, container: ReconcileDep
) -> Response:
    """A finished job's file: ``result.csv`` or ``result.parquet`` (one row per record),
    ``corrections.csv`` (under the agency's column names), ``summary.json``."""
    if kind not in _MEDIA:
        raise Invalid("no such file", "kind")
    path = container.reconcile.file(officer, job_id, kind)
    return FileResponse(path, media_type=_MEDIA[kind], filename=f"job{job_id}-{kind}")


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(job_id: int, officer: ApiReconcileOfficer, container: ReconcileDep) -> Response:
    """Delete a job and its files once its results are fetched."""
    container.reconcile.discard(officer, job_id)
    return Response(status_code=204)
