"""The officers' pages for electronic-identity accounts over HTTP, on both databases: find an
account, suspend it (the confirmation box and the reason are required, errors on the fields),
reinstate it, turn off the authenticator app; the correction requests of the officer's area
closed from their page; read-only roles see no form and are refused on POST; CSRF on every
form; English on request."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient

from dancu.bootstrap import Container
from dancu.core.access import Role
from dancu.demo import ba_dinh_family
from dancu.identity import schemas as s
from tests.helpers import (
    BA_DINH_OFFICER,
    HANOI_OFFICER,
    add_officers,
    csrf,
    officer_sign_in,
    web_client,
)


@pytest.fixture
def family(container: Container) -> dict[str, str]:
    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", "482915", 2)
    add_officers(
        container,
        BA_DINH_OFFICER,
        ("ngocha", "Ngọc Hà", Role.COMMUNE, "00008"),
        HANOI_OFFICER,
    )
    return family


@pytest.fixture
def client(container: Container, family: dict[str, str]) -> Iterator[TestClient]:
    with web_client(container) as c:
        yield c


def sign_in(client: TestClient, username: str) -> None:
    officer_sign_in(client, username)


def test_find_suspend_and_reinstate_an_account(
    client: TestClient, family: dict[str, str], container: Container
) -> None:
    father = family["father"]
    sign_in(client, "ngocha")  # any commune police serves any account
    r = client.get("/identity/accounts", params={"personal_id": "0010 8800 0"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    r = client.get("/identity/accounts", params={"personal_id": father})
    assert r.status_code == 303 and r.headers["location"] == f"/identity/accounts/{father}"
    page = client.get(f"/identity/accounts/{father}")
    assert page.status_code == 200
    assert "Nguyễn Văn An" in page.text and "Tạm khoá tài khoản" in page.text
    assert client.get(f"/identity/accounts/{family['mother']}").status_code == 404

    path = f"/identity/accounts/{father}/suspend"
    token = csrf(client, f"/identity/accounts/{father}")
    assert (
        client.post(path, data={"suspend_reason": "reported-fraud", "confirm": "yes"}).status_code
        == 403
    )
    unconfirmed = client.post(path, data={"suspend_reason": "reported-fraud", "csrf_token": token})
    assert unconfirmed.status_code == 422
    assert re.search(r'id="e-suspend_confirm">[^<]+<', unconfirmed.text)
    no_reason = client.post(path, data={"confirm": "yes", "csrf_token": token})
    assert no_reason.status_code == 422
    assert re.search(r'id="e-suspend_reason">[^<]+<', no_reason.text)
    assert container.identity.account(father).status == "active"  # nothing written

    done = client.post(
        path,
        data={
            "suspend_reason": "reported-lost-card",
            "suspend_note": "mất thẻ",
            "confirm": "yes",
            "csrf_token": token,
        },
    )
    assert done.status_code == 303
    page = client.get(f"/identity/accounts/{father}").text
    assert "Tạm khoá: Thẻ căn cước bị báo mất hoặc bị lấy cắp." in page
    assert container.identity.account(father).status == "suspended"

    reinstate = f"/identity/accounts/{father}/reinstate"
    token = csrf(client, f"/identity/accounts/{father}")
    no_note = client.post(reinstate, data={"confirm": "yes", "csrf_token": token})
    assert no_note.status_code == 422
    assert re.search(r'id="e-reinstate_note">[^<]+<', no_note.text)
    back = client.post(
        reinstate,
        data={"reinstate_note": "thẻ đã tìm thấy", "confirm": "yes", "csrf_token": token},
    )
    assert back.status_code == 303
    assert container.identity.account(father).status == "active"


def test_turn_off_a_lost_authenticator_app(
    client: TestClient, family: dict[str, str], container: Container
) -> None:
    father = family["father"]
    enrolment = container.identity.start_totp(father)
    container.identity.confirm_totp(father, pyotp.TOTP(enrolment.secret).now())
    sign_in(client, "badinh")
    page = f"/identity/accounts/{father}"
    assert "totp-reset" in client.get(page).text
    r = client.post(f"{page}/totp-reset", data={"confirm": "yes", "csrf_token": csrf(client, page)})
    assert r.status_code == 303
    assert container.identity.account(father).totp_since is None
    assert "totp-reset" not in client.get(page).text


def test_read_only_officers_see_no_forms_and_are_refused(
    client: TestClient, family: dict[str, str], container: Container
) -> None:
    father = family["father"]
    sign_in(client, "hanoi")
    page = client.get(f"/identity/accounts/{father}")
    assert page.status_code == 200 and "/suspend" not in page.text
    r = client.post(
        f"/identity/accounts/{father}/suspend",
        data={
            "suspend_reason": "reported-fraud",
            "confirm": "yes",
            "csrf_token": csrf(client, f"/identity/accounts/{father}"),
        },
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert container.identity.account(father).status == "active"


def test_correction_requests_of_the_area(
    client: TestClient, family: dict[str, str], container: Container
) -> None:
    father = family["father"]
    asked = container.identity.request_correction(
        father,
        s.CorrectionRequestIn(field="full_name", proposed="Nguyễn Văn Ân", reason="giấy khai sinh"),
    )
    sign_in(client, "ngocha")  # another commune: not theirs
    assert f'id="request-{asked.id}"' not in client.get("/identity/corrections").text
    r = client.post(
        f"/identity/corrections/{asked.id}/resolve",
        data={"outcome": "done", "csrf_token": csrf(client, "/identity/corrections")},
    )
    assert r.status_code == 404
    client.post("/logout", data={"csrf_token": csrf(client, "/identity/corrections")})

    sign_in(client, "badinh")
    page = client.get("/identity/corrections").text
    assert f'id="request-{asked.id}"' in page and "Nguyễn Văn Ân" in page
    token = csrf(client, "/identity/corrections")
    refused = client.post(
        f"/identity/corrections/{asked.id}/resolve",
        data={"outcome": "refused", "csrf_token": token},
    )
    assert refused.status_code == 422 and 'id="e-note-' in refused.text
    assert re.search(rf'id="e-note-{asked.id}">[^<]+<', refused.text)
    assert (
        client.post("/identity/corrections/abc/resolve", data={"csrf_token": token}).status_code
        == 404
    )
    closed = client.post(
        f"/identity/corrections/{asked.id}/resolve",
        data={"outcome": "refused", "note": "mang giấy khai sinh bản chính", "csrf_token": token},
    )
    assert closed.status_code == 303
    assert f'id="request-{asked.id}"' not in client.get("/identity/corrections").text
    mine = container.identity.corrections(father)[0]
    assert (mine.status, mine.resolution_note) == ("refused", "mang giấy khai sinh bản chính")

    english = client.get("/identity/corrections", headers={"Accept-Language": "en"})
    assert "No open request in your area." in english.text
