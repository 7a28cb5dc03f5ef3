"""Reconciliation over HTTP, on both databases: an agency's officer sends an extract on the
pages, confirms its columns (a missing name refused on its field), the job runs, the report
and the files come back; another agency sees none of it; an agency's officer has no access to
the register, a commune officer none to reconciliation; the API does the same with a bearer
token; bad files are refused with the reason and nothing kept; the register's likely
duplicates are listed and reviewed."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dancu.bootstrap import Container
from dancu.core.access import SYSTEM_CONTEXT, OfficerContext, Role
from dancu.core.models import AuditEntry, Officer
from dancu.core.officers import context_for
from dancu.reconcile import readers
from dancu.reconcile.models import ReconcileJob
from dancu.reconcile.synth_extract import generate_extract
from dancu.registry.bulk.load import import_population
from dancu.registry.synth_population import generate_population
from tests.helpers import add_officers, csrf, officer_sign_in, resident, web_client


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reconcile-web")
    population = root / "population.parquet"
    generate_population(600, 5, population, as_of=date(2026, 11, 1))
    extract = root / "extract.csv"
    generate_extract(population, 150, extract, seed=5)
    return {"population": population, "extract": extract}


@pytest.fixture
def client(container: Container, files: dict[str, Path]) -> Iterator[TestClient]:
    import_population(container.engine, files["population"])
    add_officers(
        container,
        ("bhxh1", "bhxh1", Role.AGENCY, "", "bhxh"),
        ("gdt1", "gdt1", Role.AGENCY, "", "gdt"),
        ("admin", "admin", Role.MINISTRY, ""),
        ("badinh", "badinh", Role.COMMUNE, "00004"),
    )
    with web_client(container) as c:
        yield c


def sign_in(client: TestClient, username: str) -> None:
    officer_sign_in(client, username, fresh=True)


def run_jobs(container: Container) -> None:
    while (job_id := container.reconcile.claim("test")) is not None:
        container.reconcile.run_job(job_id, "test")


def test_an_agency_sends_an_extract_and_reads_the_report(
    client: TestClient, container: Container, files: dict[str, Path]
) -> None:
    sign_in(client, "bhxh1")
    assert client.get("/").headers["location"] == "/reconcile"
    page = client.get("/reconcile")
    assert page.status_code == 200 and 'name="agency"' not in page.text  # their own agency
    token = csrf(client, "/reconcile")
    data = files["extract"].read_bytes()
    sent = client.post(
        "/reconcile/upload",
        data={"csrf_token": token},
        files={"file": ("bhxh-thang11.csv", data, "text/csv")},
    )
    assert sent.status_code == 303
    job_page = sent.headers["location"]
    job_id = int(job_page.rsplit("/", 1)[1])
    mapping = client.get(job_page).text
    assert re.search(r'<option value="ho_ten" selected>', mapping)
    assert "bhxh-thang11.csv" in mapping

    token = csrf(client, job_page)
    no_name = client.post(
        f"{job_page}/confirm",
        data={"csrf_token": token, "col_birth_date": "ngay_sinh", "col_personal_id": ""},
    )
    assert no_name.status_code == 422 and 'aria-invalid="true"' in no_name.text
    columns = {
        "col_agency_key": "ma_ho_so",
        "col_full_name": "ho_ten",
        "col_birth_date": "ngay_sinh",
        "col_sex": "gioi_tinh",
        "col_personal_id": "so_dinh_danh",
        "col_old_id": "so_cmnd",
        "col_province": "tinh_thanh",
    }
    queued = client.post(f"{job_page}/confirm", data={"csrf_token": token, **columns})
    assert queued.status_code == 303
    waiting = client.get(job_page).text
    assert 'hx-get="/reconcile/jobs/' in waiting and "<progress" in waiting
    assert re.search(r'id="job-status" class="badge job-queued"', waiting)
    # A worker takes it: the polled progress carries the heading's tag, now "running".
    claimed = container.reconcile.claim("test")
    assert claimed == job_id
    polled = client.get(f"{job_page}/progress").text
    assert re.search(r'id="job-status" hx-swap-oob="true" class="badge job-running"', polled)
    container.reconcile.run_job(job_id, "test")
    run_jobs(container)
    assert client.get(f"{job_page}/progress").headers.get("hx-refresh") == "true"

    report = client.get(job_page)
    assert report.status_code == 200
    assert "Khớp" in report.text or "Matched" in report.text
    assert "<svg" in report.text and "job-done" in report.text
    result = client.get(f"{job_page}/files/result.csv")
    assert result.status_code == 200 and result.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert len(rows) == 150 and {"row_no", "verdict", "personal_id"} <= set(rows[0])
    corrections = client.get(f"{job_page}/files/corrections.csv").text.splitlines()[0]
    assert "ho_ten" in corrections and "so_dinh_danh" in corrections  # their own headers
    standalone = client.get(f"{job_page}/report.html")
    assert "attachment" in standalone.headers["content-disposition"]
    assert "<style>" in standalone.text and "/static/" not in standalone.text
    assert client.get(f"{job_page}/files/nothing").status_code == 404
    english = client.get(job_page, headers={"Accept-Language": "en"})
    assert "Duplicate within the extract" in english.text

    with container.sessions() as session:
        actions = set(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("reconcile.%"))
            ).all()
        )
        snapshot = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "registry.snapshot")
        )
    assert {"reconcile.upload", "reconcile.confirm", "reconcile.done", "reconcile.download"} <= (
        actions
    )
    assert snapshot == 1

    # The next file with the same headers: the columns as confirmed last time.
    again = client.post(
        "/reconcile/upload",
        data={"csrf_token": csrf(client, "/reconcile")},
        files={"file": ("bhxh-thang12.csv", data, "text/csv")},
    )
    assert (
        "as last time"
        in client.get(again.headers["location"], headers={"Accept-Language": "en"}).text
    )

    # Another agency: nothing to see.
    sign_in(client, "gdt1")
    assert "bhxh-thang11.csv" not in client.get("/reconcile").text
    assert client.get(job_page).status_code == 404
    assert client.get(f"{job_page}/files/result.csv").status_code == 404
    with container.sessions() as session:
        assert session.get(ReconcileJob, job_id) is not None


def test_roles_keep_to_their_pages(client: TestClient, container: Container) -> None:
    sign_in(client, "bhxh1")
    refused = client.get("/registry/search")
    assert refused.status_code == 403 and 'href="/reconcile"' in refused.text
    assert client.get("/identity/accounts").status_code == 403
    sign_in(client, "badinh")
    assert client.get("/reconcile").status_code == 403
    sign_in(client, "admin")
    assert client.get("/reconcile").status_code == 200
    form = client.get("/reconcile").text
    assert 'name="agency"' in form  # the ministry names the agency


def test_bad_files_are_refused_and_nothing_is_kept(
    client: TestClient, container: Container
) -> None:
    sign_in(client, "bhxh1")
    for name, body, words in (
        ("empty.csv", b"", "tệp rỗng"),
        ("header-only.csv", b"ho_ten,ngay_sinh\n", ""),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "xls"),
        ("names.csv", b"ma,so_dien_thoai\n1,0912345678\n", ""),
    ):
        r = client.post(
            "/reconcile/upload",
            data={"csrf_token": csrf(client, "/reconcile")},
            files={"file": (name, body, "text/csv")},
        )
        if name == "names.csv":  # readable, but no name column: refused at confirmation
            assert r.status_code == 303
            page = r.headers["location"]
            refused = client.post(f"{page}/confirm", data={"csrf_token": csrf(client, page)})
            assert refused.status_code == 422
            continue
        assert r.status_code in (400, 422), name
        assert 'aria-invalid="true"' in r.text and re.search(r'id="e-file">[^<]+<', r.text)
        assert words in r.text.lower()
    with container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReconcileJob)) == 1
    incoming = Path(container.settings.data_dir) / "reconcile" / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_the_api_with_a_bearer_token(
    client: TestClient, container: Container, files: dict[str, Path]
) -> None:
    with container.sessions() as session:
        officer = session.scalars(select(Officer).where(Officer.username == "bhxh1")).one()
        token = container.tokens.issue(context_for(officer, container.units))
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/persons?q=an", headers=auth).status_code == 403
    sent = client.post(
        "/api/v1/reconcile/jobs",
        headers=auth,
        data={"confirm": "true"},
        files={"file": ("x.csv", files["extract"].read_bytes(), "text/csv")},
    )
    assert sent.status_code == 201, sent.text
    job = sent.json()
    assert job["status"] == "queued" and job["mapping"]["full_name"] == "ho_ten"
    assert (
        client.get(f"/api/v1/reconcile/jobs/{job['id']}/files/result.csv", headers=auth).status_code
        == 409
    )
    run_jobs(container)
    done = client.get(f"/api/v1/reconcile/jobs/{job['id']}", headers=auth).json()
    assert done["status"] == "done" and sum(done["counts"]["verdicts"].values()) == 150
    summary = client.get(f"/api/v1/reconcile/jobs/{job['id']}/summary", headers=auth).json()
    assert summary["rows"] == 150 and set(summary["samples"]) == set(done["counts"]["verdicts"])
    parquet = client.get(f"/api/v1/reconcile/jobs/{job['id']}/files/result.parquet", headers=auth)
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    assert client.delete(f"/api/v1/reconcile/jobs/{job['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/reconcile/jobs/{job['id']}", headers=auth).status_code == 404


def test_unknown_headers_are_proposed_from_their_values(
    client: TestClient, container: Container, files: dict[str, Path]
) -> None:
    """Headers no vocabulary knows: the page proposes the columns the values point to, says
    so, and the confirmed job runs with them."""
    lines = files["extract"].read_text(encoding="utf-8").splitlines(keepends=True)
    width = len(lines[0].split(","))
    data = (",".join(f"col{i}" for i in range(1, width + 1)) + "\n" + "".join(lines[1:])).encode()
    sign_in(client, "bhxh1")
    sent = client.post(
        "/reconcile/upload",
        data={"csrf_token": csrf(client, "/reconcile")},
        files={"file": ("unknown.csv", data, "text/csv")},
    )
    page = client.get(sent.headers["location"], headers={"Accept-Language": "en"}).text
    assert re.search(r'id="f-col_full_name"[^>]*>.*?<option value="col2" selected>', page, re.S)
    assert "recognised from its values: check" in page
    job_id = int(sent.headers["location"].rsplit("/", 1)[1])
    job = container.reconcile.job(context_for_agency(container, "bhxh1"), job_id)
    assert job.mapping["personal_id"] == "col5" and job.guesses["personal_id"] == "values"
    container.reconcile.confirm(context_for_agency(container, "bhxh1"), job_id, job.mapping)
    run_jobs(container)
    done = container.reconcile.job(context_for_agency(container, "bhxh1"), job_id)
    assert done.status == "done" and done.counts["rows"] == 150


def test_the_upload_is_sniffed_once(
    client: TestClient,
    container: Container,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upload recognises the file once (here UTF-16, tab-separated, its header on line 2)
    and keeps what it found on the job; the run reads the file by it, sniffing nothing."""
    with files["extract"].open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    text = io.StringIO("\r\n")
    text.seek(0, io.SEEK_END)
    csv.writer(text, delimiter="\t", lineterminator="\r\n").writerows(rows)
    ctx = context_for_agency(container, "bhxh1")
    data = io.BytesIO(text.getvalue().encode("utf-16"))
    job = container.reconcile.upload(ctx, "unicode.txt", data)
    with container.sessions() as session:
        kept = session.get(ReconcileJob, job.id)
        assert kept is not None and kept.fmt == "csv"
        assert kept.dialect == {"encoding": "utf-16", "delimiter": "\t", "header_line": 2}

    def sniff(*args: object, **kwargs: object) -> None:
        raise AssertionError("the extract was sniffed again")

    monkeypatch.setattr(readers, "sniff", sniff)
    container.reconcile.confirm(ctx, job.id, job.mapping)
    run_jobs(container)
    done = container.reconcile.job(ctx, job.id)
    assert done.status == "done" and done.counts["rows"] == 150, done.error


def context_for_agency(container: Container, username: str) -> OfficerContext:
    with container.sessions() as session:
        officer = session.scalars(select(Officer).where(Officer.username == username)).one()
        return context_for(officer, container.units)


def test_the_registers_likely_duplicates(client: TestClient, container: Container) -> None:
    badinh = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
    twice = resident("Khổng Minh Thư", date(1970, 7, 7), "F", date(2000, 1, 1))
    a = container.registry.register_person(badinh, twice)
    b = container.registry.register_person(badinh, twice)
    assert container.reconcile.dedupe(SYSTEM_CONTEXT) >= 1
    assert container.reconcile.dedupe(SYSTEM_CONTEXT) == 0  # listed once
    sign_in(client, "admin")
    page = client.get("/reconcile/duplicates").text
    pair = re.search(r'id="pair-(\d+)"', page)
    assert pair and a in page and b in page
    r = client.post(
        f"/reconcile/duplicates/{pair[1]}",
        data={
            "decision": "same",
            "note": "one person",
            "csrf_token": csrf(client, "/reconcile/duplicates"),
        },
    )
    assert r.status_code == 303
    assert f'id="pair-{pair[1]}"' not in client.get("/reconcile/duplicates").text
    sign_in(client, "badinh")
    assert client.get("/reconcile/duplicates").status_code == 403
