"""JSON API of the population register (mounted at /api/v1). Every read is audited."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from dancu.core.access import REGISTER_ROLES, OfficerContext
from dancu.core.api import ApiOfficer, problem, problem_responses
from dancu.core.errors import DancuError
from dancu.core.officers import officer_from_token
from dancu.core.web import security_headers
from dancu.registry import schemas as s
from dancu.registry.deps import RegistryDep, RegistryNeeds
from dancu.registry.search import SearchQuery

router = APIRouter(prefix="/api/v1", tags=["registry"])
SEARCH = "/api/v1/persons"
PERSONS = SEARCH + "/"


@router.get("/persons/{personal_id}", response_model=s.PersonPublic)
async def get_person(
    personal_id: str,
    officer: ApiOfficer,
    container: RegistryDep,
    as_of: Annotated[date | None, Query(description="valid-time date")] = None,
    known_at: Annotated[datetime | None, Query(description="transaction time")] = None,
    purpose: Annotated[str | None, Query(max_length=60)] = None,
) -> Response:
    """Look a person up by personal ID number (current, re-established or old number).
    With ``as_of`` the record as it was valid on that date; with ``known_at`` as the register
    knew it at that moment (before later corrections)."""
    person = await container.registry.aget_person(
        officer, personal_id, valid_on=as_of, known_at=known_at, purpose=purpose
    )
    # Already validated: serialised once, by pydantic, without a second pass by the framework.
    return Response(person.model_dump_json(), media_type="application/json")


@router.get("/persons", response_model=s.SearchPage)
async def search_persons(
    officer: ApiOfficer,
    container: RegistryDep,
    q: Annotated[str, Query(max_length=120)] = "",
    birth_date: date | None = None,
    birth_year: Annotated[int | None, Query(ge=1900, le=2400)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    province_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    commune_code: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
) -> Response:
    """Search by name (any case, with or without diacritics), personal ID or old CMND number,
    narrowed by date or year of birth, within the officer's area; 20 results a page."""
    query = SearchQuery(q, birth_date, birth_year, page, province_code, commune_code)
    page_ = await container.registry.asearch(officer, query)
    # Already validated: serialised once, by pydantic, without a second pass by the framework.
    return Response(page_.model_dump_json(), media_type="application/json")


@router.get("/persons/{personal_id}/history", response_model=s.HistoryOut)
def person_history(personal_id: str, officer: ApiOfficer, container: RegistryDep) -> s.HistoryOut:
    """Every version of the record (including superseded corrections), residences, events."""
    return container.registry.history(officer, personal_id)


@router.get("/households/{number}", response_model=s.HouseholdOut)
def get_household(number: str, officer: ApiOfficer, container: RegistryDep) -> s.HouseholdOut:
    """A household with its current members and their relationship to the head."""
    return container.registry.household(officer, number)


@router.post("/events/birth", status_code=201)
def register_birth(
    data: s.BirthRegistration, officer: ApiOfficer, container: RegistryDep
) -> dict[str, str]:
    """Register a birth; returns the new personal ID number."""
    return {"personal_id": container.registry.register_birth(officer, data)}


@router.post("/events/death", status_code=204)
def register_death(data: s.DeathRegistration, officer: ApiOfficer, container: RegistryDep) -> None:
    """Register a death."""
    container.registry.register_death(officer, data)


@router.post("/events/residence", status_code=200)
def change_residence(
    data: s.ResidenceChange, officer: ApiOfficer, container: RegistryDep
) -> dict[str, str | None]:
    """Register a permanent or temporary residence; returns the household joined/founded."""
    return {"household_number": container.registry.change_residence(officer, data)}


@router.post("/events/marriage", status_code=204)
def register_marriage(
    data: s.MarriageRegistration, officer: ApiOfficer, container: RegistryDep
) -> None:
    """Register a marriage."""
    container.registry.register_marriage(officer, data)


@router.post("/events/divorce", status_code=204)
def register_divorce(
    data: s.DivorceRegistration, officer: ApiOfficer, container: RegistryDep
) -> None:
    """Record a divorce."""
    container.registry.register_divorce(officer, data)


@router.post("/events/name-change", status_code=204)
def change_name(data: s.NameChange, officer: ApiOfficer, container: RegistryDep) -> None:
    """Record a change of name."""
    container.registry.change_name(officer, data)


@router.post("/events/id-reestablishment", status_code=201)
def reestablish_id(
    data: s.IDReestablishment, officer: ApiOfficer, container: RegistryDep
) -> dict[str, str]:
    """Re-establish a personal ID number; the old number stays resolvable."""
    return {"personal_id": container.registry.reestablish_id(officer, data)}


@router.post("/events/household-head", status_code=204)
def change_household_head(data: s.HeadChange, officer: ApiOfficer, container: RegistryDep) -> None:
    """Make another member the household head (restating relationships where given)."""
    container.registry.change_household_head(officer, data)


@router.post("/events/missing", status_code=204)
def declare_missing(
    data: s.MissingDeclaration, officer: ApiOfficer, container: RegistryDep
) -> None:
    """Record a court's declaration that a person is missing (``cancel``: they reappeared)."""
    container.registry.declare_missing(officer, data)


@router.post("/events/correction", status_code=200)
def correct_record(
    data: s.Correction, officer: ApiOfficer, container: RegistryDep
) -> dict[str, str]:
    """Correct a fact recorded wrongly from the start (superseding, never editing); returns
    the personal ID number, new when the birth year or sex changed."""
    return {"personal_id": container.registry.correct_record(officer, data)}


MergeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the merge's id")]


@router.post(
    "/persons/{personal_id}/merge",
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def merge_persons(
    personal_id: str, data: s.MergeRequest, officer: ApiOfficer, container: RegistryDep
) -> s.MergeOut:
    """Merge two records of one person (a duplicate): ``merged_personal_id`` answers as
    ``personal_id`` from now on, with its identifiers, household, residences and family links
    moved to it; nothing is deleted. The officer records civil events in both people's
    areas (404, as for an unknown number, otherwise); merging a record with itself or one
    already merged is 409. Undo with ``POST /api/v1/merges/{id}/undo``."""
    return container.registry.merge_persons(
        officer, personal_id, data.merged_personal_id, data.reason
    )


@router.get("/merges/{merge_id}", responses=problem_responses(401, 404, 422))
def get_merge(merge_id: MergeId, officer: ApiOfficer, container: RegistryDep) -> s.MergeOut:
    """A merge and whether it was undone."""
    return container.registry.merge_record(officer, merge_id)


@router.post("/merges/{merge_id}/undo", responses=problem_responses(401, 403, 404, 409, 422))
def undo_merge(
    merge_id: MergeId, data: s.UnmergeRequest, officer: ApiOfficer, container: RegistryDep
) -> s.MergeOut:
    """Undo a merge: the merged record is back with its number, identifiers, household,
    residences and links as they were; what the survivor recorded since stays. 409 when
    already undone, or when the survivor was merged into another record since (undo that
    merge first)."""
    return container.registry.unmerge(officer, merge_id, data.reason)


class PersonLookupFastPath:
    """Pure ASGI middleware that answers ``GET /api/v1/persons/{personal_id}`` (optionally
    ``?purpose=…``) straight from the async PostgreSQL lookup, before the framework's routing,
    dependency solving and middleware stack: the lookup is the register's busiest request
    (agencies verify identities one at a time) and that machinery costs more than the
    lookup itself. It authenticates, scopes, reads and audits exactly as ``get_person``
    above, which stays the documented route and serves everything this does not take
    (``as_of``/``known_at``, a missing or bad token, SQLite, a test client's own loop).
    See docs/decisions/0002-person-lookup-fast-path.md."""

    def __init__(self, app: ASGIApp, container: RegistryNeeds) -> None:
        self.app = app
        self.container = container
        self.headers = security_headers(PERSONS, container.settings.secure_cookies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        lookup = self.container.person_lookup if path.startswith(SEARCH) else None
        if lookup is None or scope["method"] != "GET" or not lookup.serves_here():
            await self.app(scope, receive, send)
            return
        if path == SEARCH:
            query = _search_query(scope["query_string"])
            officer = self._officer(scope["headers"]) if query is not None else None
            if query is None or officer is None:  # unusual: the framework's route answers
                await self.app(scope, receive, send)
                return
            answer = await self._answer(lookup.search(officer, query))
        elif path.startswith(PERSONS) and "/" not in (personal_id := path[len(PERSONS) :]):
            purpose = _purpose(scope["query_string"])
            officer = self._officer(scope["headers"]) if purpose is not None else None
            if officer is None:
                await self.app(scope, receive, send)
                return
            answer = await self._answer(lookup.get_person(officer, personal_id, purpose or None))
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)

    async def _answer(self, read: Awaitable[BaseModel]) -> ASGIApp:
        """The read's JSON, or the problem it raised, as the route would answer it."""
        try:
            body = (await read).model_dump_json().encode()
        except DancuError as exc:
            errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
            refused = problem(exc.status, exc.code, exc.message, errors=errors)
            refused.raw_headers.extend(self.headers)  # as the framework's middleware adds
            return refused
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *self.headers,
        ]

        async def send_json(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return send_json

    def _officer(self, headers: list[tuple[bytes, bytes]]) -> OfficerContext | None:
        """The token's officer, checked as the route's ``ApiOfficer`` checks it; None when the
        route should answer instead (no token, a bad one, a role refused: it explains)."""
        for key, value in headers:
            if key == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                try:
                    return officer_from_token(self.container.tokens, token, REGISTER_ROLES, "")
                except DancuError:
                    return None
        return None


def _purpose(query: bytes) -> str | None:
    """``purpose`` from the query string ("" when absent); None when the query holds
    anything else, or a purpose the route would refuse."""
    if not query:
        return ""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "purpose" or len(pairs[0][1]) > 60:
        return None
    return pairs[0][1]


# The search route's parameters, each as the route accepts it; anything else (an unknown or
# repeated parameter, a value the route would refuse) goes to the route, which explains it.
_SEARCH_PARAMS = {
    "q": re.compile(r"[^\x00-\x1f]{0,120}"),
    "birth_date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "birth_year": re.compile(r"\d{4}"),
    "page": re.compile(r"[1-9]\d{0,3}|10000"),
    "province_code": re.compile(r"\d{2}"),
    "commune_code": re.compile(r"\d{5}"),
}


def _search_query(query: bytes) -> SearchQuery | None:
    """The search's parameters, or None when the route should answer (see above)."""
    try:
        pairs = parse_qsl(query.decode("ascii"), encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    found: dict[str, str] = {}
    for key, value in pairs:
        pattern = _SEARCH_PARAMS.get(key)
        if pattern is None or key in found or not pattern.fullmatch(value):
            return None
        found[key] = value
    try:
        born = date.fromisoformat(found["birth_date"]) if "birth_date" in found else None
    except ValueError:
        return None
    year = int(found["birth_year"]) if "birth_year" in found else None
    if year is not None and not 1900 <= year <= 2400:
        return None
    return SearchQuery(
        found.get("q", ""),
        born,
        year,
        int(found.get("page", "1")),
        found.get("province_code"),
        found.get("commune_code"),
    )
