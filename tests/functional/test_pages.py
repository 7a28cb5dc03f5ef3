"""Officer pages over HTTP (issue 13): a death is confirmed against the person before it is
recorded; the menu offers only what the role may do; refused addresses answer with pages,
never JSON; dates are typed as dd/mm/yyyy and a date that does not exist is told apart from
one written wrongly; "as of" before the birth says so without telling anything about
people outside the area; a household counts its living members. Both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from dancu.bootstrap import Container
from dancu.core.access import OfficerContext, Role
from dancu.demo import ba_dinh_family
from tests.helpers import (
    BA_DINH_OFFICER,
    HANOI_OFFICER,
    add_officers,
    csrf,
    officer_sign_in,
    resident,
    web_client,
)

MINISTRY = OfficerContext("test", Role.MINISTRY)
UNKNOWN = "001088999999"  # well-formed (Hà Nội, a man born in 1988), nobody's


@pytest.fixture
def family(container: Container) -> dict[str, str]:
    return ba_dinh_family(container.registry)


@pytest.fixture
def client(container: Container, family: dict[str, str]) -> Iterator[TestClient]:
    add_officers(container, BA_DINH_OFFICER, HANOI_OFFICER)
    with web_client(container) as c:
        yield c


def sign_in(client: TestClient, username: str = "badinh") -> None:
    officer_sign_in(client, username, "/")


def outsider(container: Container) -> str:
    """Someone living in Hồ Chí Minh City, outside the Ba Đình officer's commune."""
    commune = container.units.communes_by_province["79"][0].code
    return container.registry.register_person(
        MINISTRY,
        resident("Phạm Thị Lan", date(1970, 6, 1), "F", date(2000, 1, 1), commune),
    )


def error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="e-{field}">([^<]*)</p>', html)
    assert found, field
    return found[1]


def status(container: Container, personal_id: str) -> str:
    return container.registry.get_person(MINISTRY, personal_id).status


# -- item 3: a death is confirmed against the person first ------------------------------------


def test_a_death_is_shown_before_it_is_recorded(
    client: TestClient, container: Container, family: dict[str, str]
) -> None:
    sign_in(client)
    child = family["child"]
    form = {"personal_id": child, "death_date": date.today().strftime("%d/%m/%Y")}
    first = client.post("/registry/events/death", data={**form, "csrf_token": csrf(client)})
    # The first post shows whose record it is and records nothing.
    assert first.status_code == 200
    assert "Nguyễn Minh Khôi" in first.text and "02/09/2025" in first.text
    assert "/static/portrait.svg" in first.text and "Phường Ba Đình" in first.text
    assert f'name="confirm_personal_id" value="{child}"' in first.text
    assert status(container, child) == "alive"

    # "Change the details" goes back to the form with what was typed, still recording nothing.
    edit = client.post(
        "/registry/events/death", data={**form, "edit": "1", "csrf_token": csrf(client)}
    )
    assert edit.status_code == 200 and f'value="{child}"' in edit.text
    assert status(container, child) == "alive"

    # A confirmation that names another number than the one shown is shown again.
    other = {**form, "confirm": "yes", "confirm_personal_id": family["father"]}
    again = client.post("/registry/events/death", data={**other, "csrf_token": csrf(client)})
    assert again.status_code == 200 and "confirm_personal_id" in again.text
    assert status(container, child) == "alive"

    confirmed = {**form, "confirm": "yes", "confirm_personal_id": child}
    done = client.post("/registry/events/death", data={**confirmed, "csrf_token": csrf(client)})
    assert done.status_code == 303 and done.headers["location"] == f"/registry/persons/{child}"
    assert status(container, child) == "deceased"


def test_death_confirmation_checks_the_record_first(
    client: TestClient, family: dict[str, str]
) -> None:
    sign_in(client)
    too_early = {"personal_id": family["child"], "death_date": "01/01/2020"}
    r = client.post("/registry/events/death", data={**too_early, "csrf_token": csrf(client)})
    assert r.status_code == 422
    assert error_of(r.text, "death_date") == "ngày chết trước ngày sinh"
    dead = {"personal_id": family["grandmother"], "death_date": "01/04/2026"}
    r = client.post("/registry/events/death", data={**dead, "csrf_token": csrf(client)})
    assert r.status_code == 422 and "đã được ghi nhận là đã chết" in error_of(r.text, "personal_id")


def test_death_form_answers_alike_for_unknown_and_out_of_area_numbers(
    client: TestClient, container: Container
) -> None:
    far = outsider(container)
    sign_in(client)
    answers = []
    for number in (far, UNKNOWN):
        data = {"personal_id": number, "death_date": "01/01/2026", "csrf_token": csrf(client)}
        r = client.post("/registry/events/death", data=data)
        answers.append((r.status_code, error_of(r.text, "personal_id")))
        assert "Phạm Thị Lan" not in r.text
    assert answers[0] == answers[1] and answers[0][0] == 422
    assert status(container, far) == "alive"


# -- item 10 (b): the menu offers only what the role may do -----------------------------------


def test_a_province_officer_is_not_offered_the_recording_tabs(client: TestClient) -> None:
    sign_in(client, "hanoi")
    page = client.get("/registry/search").text
    for href in ("/registry/events/birth", "/registry/events/death", "/identity/level2"):
        assert f'href="{href}"' not in page
    assert 'href="/registry/overview"' in page and 'href="/identity/accounts"' in page


def test_a_commune_officer_is_offered_the_recording_tabs(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/registry/search").text
    for href in ("/registry/events/birth", "/registry/events/death", "/identity/level2"):
        assert f'href="{href}"' in page


# -- item 10 (c): refused addresses answer with pages -----------------------------------------


def _is_page(r: object, code: int) -> str:
    assert r.status_code == code, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    text: str = r.text  # type: ignore[attr-defined]
    assert not text.lstrip().startswith("{")
    return text


def test_a_long_search_is_refused_on_the_search_form(client: TestClient) -> None:
    sign_in(client)
    page = _is_page(client.get("/registry/search", params={"q": "a" * 200}), 422)
    assert error_of(page, "q") == "Nhập tối đa 120 ký tự"


def test_a_page_number_out_of_range_is_refused_on_a_page(client: TestClient) -> None:
    sign_in(client)
    page = _is_page(client.get("/registry/search?q=an&page=99999"), 422)
    assert "Trang: nhập số trang từ 1 đến 10000" in page
    page = _is_page(client.get("/registry/search?q=an&page=abc"), 422)
    assert "Trang:" in page


def test_a_malformed_number_in_the_address_is_a_localised_page(client: TestClient) -> None:
    sign_in(client)
    page = _is_page(client.get("/registry/persons/abc"), 422)
    assert "Số định danh cá nhân không hợp lệ" in page
    assert "<p>Phải gồm đúng 12 chữ số</p>" in page and "must be" not in page
    page = _is_page(client.get("/registry/persons/099088067401"), 422)
    assert "<p>Mã tỉnh 099 không tồn tại</p>" in page and "unknown" not in page


def test_other_refused_query_values_name_the_field_on_a_page(client: TestClient) -> None:
    sign_in(client)
    page = _is_page(client.get("/registry/communes", params={"province": "x" * 50}), 422)
    assert "Tỉnh, thành phố: tối đa 2 ký tự" in page
    en = client.get("/registry/communes", params={"province": "x" * 50, "name": "y" * 99})
    assert en.status_code == 422 and "text/html" in en.headers["content-type"]


def test_an_unknown_page_address_is_a_page_for_a_browser(client: TestClient) -> None:
    sign_in(client)
    page = _is_page(client.get("/registry/nothing", headers={"accept": "text/html"}), 404)
    assert "Không tìm thấy trang" in page


def test_the_api_keeps_its_problem_details(client: TestClient) -> None:
    r = client.get("/api/v1/persons/abc")
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/api/v1/nothing", headers={"accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/")


# -- item 10 (d), (e): dates typed as dd/mm/yyyy ----------------------------------------------


@pytest.mark.parametrize("slug", ["birth", "death", "residence"])
def test_date_inputs_present_dd_mm_yyyy(client: TestClient, slug: str) -> None:
    sign_in(client)
    page = client.get(f"/registry/events/{slug}").text
    assert 'type="date"' not in page
    inputs = re.findall(r'<input id="f-(\w+_date|moved_on)" [^>]*>', page, re.S)
    assert inputs
    for tag in re.findall(r'<input id="f-(?:\w+_date|moved_on)"[^>]*>', page, re.S):
        assert 'type="text"' in tag and 'placeholder="dd/mm/yyyy"' in tag


def test_as_of_is_typed_as_dd_mm_yyyy_or_iso(client: TestClient, family: dict[str, str]) -> None:
    sign_in(client)
    father = family["father"]
    assert 'type="date"' not in client.get(f"/registry/persons/{father}").text
    for typed in ("01/06/2015", "1/6/2015", "2015-06-01"):
        page = client.get(f"/registry/persons/{father}", params={"as_of": typed}).text
        assert 'class="notice"' in page and "01/06/2015" in page, typed
        assert "chưa kết hôn" in page


@pytest.mark.parametrize("typed", ["31/02/2025", "2025-02-31", "29/02/2025", "00/01/2025"])
def test_a_date_that_does_not_exist_is_not_called_a_format_error(
    client: TestClient, typed: str
) -> None:
    sign_in(client)
    data = {
        "full_name": "Nguyễn Văn Bé",
        "birth_date": typed,
        "sex": "M",
        "csrf_token": csrf(client),
    }
    r = client.post("/registry/events/birth", data=data)
    assert r.status_code == 422
    assert error_of(r.text, "birth_date") == "ngày này không có trên lịch"


def test_a_date_written_wrongly_is_a_format_error(client: TestClient) -> None:
    sign_in(client)
    data = {"full_name": "Nguyễn Văn Bé", "birth_date": "tomorrow", "csrf_token": csrf(client)}
    r = client.post("/registry/events/birth", data=data)
    assert r.status_code == 422
    assert error_of(r.text, "birth_date") == "Nhập ngày theo dạng ngày/tháng/năm"


def test_a_dd_mm_yyyy_date_is_recorded(
    client: TestClient, container: Container, family: dict[str, str]
) -> None:
    sign_in(client)
    typed = date.today().strftime("%d/%m/%Y")
    data = {
        "full_name": "Nguyễn Ngọc Hân",
        "birth_date": typed,
        "sex": "F",
        "birth_commune_code": "00004",
        "mother_personal_id": family["mother"],
        "father_personal_id": family["father"],
        "csrf_token": csrf(client),
    }
    r = client.post("/registry/events/birth", data=data)
    assert r.status_code == 303, r.text
    number = r.headers["location"].rsplit("/", 1)[1]
    assert container.registry.get_person(MINISTRY, number).birth_date == date.today()


# -- item 10 (f): "as of" before the birth ----------------------------------------------------


def test_as_of_before_the_birth_says_not_yet_born(
    client: TestClient, family: dict[str, str]
) -> None:
    sign_in(client)
    r = client.get(f"/registry/persons/{family['child']}", params={"as_of": "01/01/2020"})
    assert r.status_code == 200
    assert error_of(r.text, "as_of") == "Vào ngày 01/01/2020 người này chưa sinh ra."
    assert "Nguyễn Minh Khôi" in r.text and "trong địa bàn" not in r.text


def test_as_of_tells_nothing_about_people_outside_the_area(
    client: TestClient, container: Container
) -> None:
    far = outsider(container)
    sign_in(client)
    answers = set()
    for number in (far, UNKNOWN):
        for as_of in ("", "01/01/1960", "01/01/2020"):
            r = client.get(f"/registry/persons/{number}", params={"as_of": as_of})
            answers.add((r.status_code, re.sub(r"\s+", " ", r.text.split("<main", 1)[1])))
    assert len(answers) == 1 and next(iter(answers))[0] == 404


# -- item 10 (g): living members ----------------------------------------------------------------


def test_the_household_counts_its_living_members(
    client: TestClient, family: dict[str, str]
) -> None:
    sign_in(client)
    page = client.get(f"/registry/households/{family['household']}").text
    count = re.search(r'<dd class="members-count">(\d+)', page)
    assert count and count[1] == "3"  # father, mother, child; the grandmother died
    living, deceased = page.split('id="h-deceased"')
    assert "Lê Thị Tuyết" not in living and "Lê Thị Tuyết" in deceased
    assert "Nguyễn Minh Khôi" in living and "Nguyễn Minh Khôi" not in deceased


# -- agencies by name ----------------------------------------------------------------------------


def test_an_agency_is_named_not_coded(client: TestClient, container: Container) -> None:
    add_officers(container, ("bhxh1", "BHXH", Role.AGENCY, "", "bhxh"))
    sign_in(client, "bhxh1")
    page = client.get("/reconcile").text
    assert "Bảo hiểm xã hội Việt Nam" in page and "BHXH" not in page
    extract = "ho_ten,ngay_sinh\nNguyễn Văn An,14/03/1988\n".encode()
    sent = client.post(
        "/reconcile/upload",
        data={"csrf_token": csrf(client, "/reconcile")},
        files={"file": ("bhxh.csv", extract, "text/csv")},
    )
    assert sent.status_code == 303, sent.text
    job = sent.headers["location"]
    columns = {"col_full_name": "ho_ten", "col_birth_date": "ngay_sinh"}
    queued = client.post(f"{job}/confirm", data={"csrf_token": csrf(client, job), **columns})
    assert queued.status_code == 303, queued.text
    page = client.get(job).text
    assert "Cơ quan: Bảo hiểm xã hội Việt Nam" in page and "Cơ quan bhxh" not in page
