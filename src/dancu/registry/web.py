"""Registry officer pages: search, person (with history timeline and "as of") and household;
the forms that record births, deaths and residence changes are in ``forms_web``.

Every page goes through ``RegistryService`` with the signed-in officer's context, so reads are
audited and scoped exactly as in the API: a commune officer neither sees nor changes anyone
outside their commune (out-of-area people are "not found").
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dancu.core.access import REGISTER_ROLES
from dancu.core.errors import DancuError, Invalid, NotFound
from dancu.core.formats import parse_date
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    Tab,
    WebContext,
    WebOfficer,
    error_page,
    field_errors,
    not_found_page,
    render,
    translate,
)
from dancu.registry import forms_web
from dancu.registry import schemas as s
from dancu.registry.deps import RegistryDep

router = APIRouter(prefix="/registry", include_in_schema=False)

# What changed in a version, as the timeline names it.
CHANGE_LABELS = {
    "full_name": N_("name changed"),
    "birth_date": N_("date of birth changed"),
    "sex": N_("sex changed"),
    "nationality": N_("nationality changed"),
    "ethnicity": N_("ethnicity changed"),
    "religion": N_("religion changed"),
    "marital_status": N_("marital status changed"),
    "status": N_("status changed"),
    "death_date": N_("date of death recorded"),
    "father_id": N_("father linked"),
    "mother_id": N_("mother linked"),
    "spouse_id": N_("spouse linked"),
    "hometown_unit_id": N_("hometown changed"),
}
SEARCH_MAX = 120
PAGE_MAX = 10_000


def _bad_number(request: Request, exc: DancuError) -> Response:
    """A personal ID number in the address that cannot be one: the format is wrong, which
    says nothing about who is in the register."""
    _head, sep, reason = exc.message.partition(": ")  # the title already says "not valid"
    why = translate(reason if sep else exc.message)
    return error_page(request, _("Not a valid personal ID number"), why[:1].upper() + why[1:], 422)


# -- search -----------------------------------------------------------------------------------


@router.get("/search")
def search_page(
    request: Request,
    officer: WebOfficer,
    container: RegistryDep,
    q: Annotated[str, Query(max_length=2000)] = "",
    birth_year: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[str, Query(max_length=40)] = "1",
) -> Response:
    """The search page; an HTMX request (typing in the box) gets the results fragment only.
    What cannot be searched for comes back on the form, under its field (422)."""
    result: s.SearchPage | None = None
    errors: dict[str, str] = {}
    year: int | None = None
    if len(q) > SEARCH_MAX:
        errors["q"] = _("Write at most %(n)s characters") % {"n": SEARCH_MAX}
    if birth_year.strip():
        if birth_year.strip().isdigit() and 1900 <= int(birth_year) <= date.today().year:
            year = int(birth_year)
        else:
            errors["birth_year"] = _("Write a year between 1900 and this year")
    number = int(page) if page.strip().isdigit() else 0
    if not 1 <= number <= PAGE_MAX:
        errors["page"] = _("Page: write a page number from 1 to %(max)s") % {"max": PAGE_MAX}
    if (q.strip() or year) and not errors:
        try:
            result = container.registry.search(officer, q, birth_year=year, page=number)
        except DancuError as exc:
            errors = field_errors(exc)
    context = {"q": q[:SEARCH_MAX], "birth_year": birth_year, "result": result, "errors": errors}
    template = "registry/_results.html" if _wants_fragment(request) else "registry/search.html"
    return render(request, template, context, status_code=422 if errors else 200)


def _wants_fragment(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-target") == "results"
    )


# -- overview ---------------------------------------------------------------------------------


@router.get("/overview")
def overview_page(request: Request, officer: WebOfficer, container: RegistryDep) -> Response:
    """The officer's area at a glance: counts, the age pyramid, people by unit."""
    data = container.registry.overview(officer)
    widest = max([max(b.male, b.female) for b in data.pyramid] + [1])
    top = max([u.people for u in data.units] + [1])
    return render(
        request,
        "registry/overview.html",
        {
            "o": data,
            # Bars as percentages of the half-width (pyramid) or full width (units).
            "pyramid": [
                {
                    "label": f"{b.start}–{b.end}" if b.end is not None else f"{b.start}+",
                    "male": b.male,
                    "female": b.female,
                    "m": round(100 * b.male / widest, 1),
                    "f": round(100 * b.female / widest, 1),
                }
                for b in reversed(data.pyramid)
            ],
            "unit_bars": [
                {"name": u.name, "people": u.people, "w": round(100 * u.people / top, 1)}
                for u in data.units
            ],
        },
    )


# -- person and household ---------------------------------------------------------------------


@router.get("/persons/{personal_id}")
def person_page(
    request: Request,
    personal_id: str,
    officer: WebOfficer,
    container: RegistryDep,
    as_of: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    errors: dict[str, str] = {}
    try:
        valid_on = parse_date(as_of, "as_of")
    except Invalid as exc:
        errors, valid_on = field_errors(exc), None
    registry = container.registry
    try:
        try:
            person = registry.get_person(
                officer, personal_id, valid_on=valid_on, purpose="registry-web"
            )
        except NotFound as exc:
            # Only someone the officer may see gets this far (the area is checked first,
            # alike for unknown and out-of-area numbers): say why there was no record then.
            if exc.field != "as_of" or valid_on is None:
                raise
            person = registry.get_person(officer, personal_id, purpose="registry-web")
            errors["as_of"] = _no_record_on(valid_on, person.birth_date)
        history = registry.history(officer, personal_id)
    except NotFound:
        return not_found_page(request, _("No person with this number in your area."))
    except Invalid as exc:
        return _bad_number(request, exc)
    return render(
        request,
        "registry/person.html",
        {
            "person": person,
            "history": history,
            "timeline": _timeline(history),
            "as_of": as_of,
            "errors": errors,
            "can_write": officer.can_write and person.status == "alive",
            "today": date.today().isoformat(),
        },
    )


def _no_record_on(day: date, birth_date: date) -> str:
    when = {"date": day.strftime("%d/%m/%Y")}
    if day < birth_date:
        return _("This person was not yet born on %(date)s.") % when
    return _("The register holds no record of this person on %(date)s.") % when


def _timeline(history: s.HistoryOut) -> list[dict[str, Any]]:
    """Versions and events merged into one list, newest first, for the timeline."""
    items: list[dict[str, Any]] = []
    corrected = any(e.kind == "correction" for e in history.events)
    for v in history.versions:
        # A later event closes the version it follows by superseding it with a copy that
        # ends on the event's date; only a correction makes an old belief worth showing.
        superseded = v.superseded_at is not None
        if superseded and not corrected:
            continue
        items.append(
            {
                "on": v.valid_from,
                "kind": v.event_kind or "record",
                "title": v.full_name,
                "changes": [_(CHANGE_LABELS.get(c, c)) for c in v.changes],
                "superseded": superseded,
                "reference": v.event_reference or "",
            }
        )
    for r in history.residences:
        items.append(
            {
                "on": r.valid_from,
                "kind": "residence",
                "title": r.unit.label,
                "changes": [r.address_line] if r.address_line else [],
                "superseded": False,
                "reference": "",
                "household": r.household_number or "",
                "residence_kind": r.kind,
            }
        )
    items.sort(key=lambda i: (i["on"], i["kind"] != "residence"), reverse=True)
    return items


@router.get("/households/{number}")
def household_page(
    request: Request, number: str, officer: WebOfficer, container: RegistryDep
) -> Response:
    try:
        household = container.registry.household(officer, number)
    except NotFound:
        return not_found_page(request, _("No household with this number in your area."))
    # A member who died stays listed in the household's book, apart, but is not counted.
    living = [m for m in household.members if m.status != "deceased"]
    deceased = [m for m in household.members if m.status == "deceased"]
    context = {"household": household, "living": living, "deceased": deceased}
    return render(request, "registry/household.html", context)


# What the register adds to the site: its pages (these, then the forms), tabs, and the
# register roles' home page.
WEB = WebContext(
    name="registry",
    templates="dancu.registry",
    routers=(router, forms_web.router),
    tabs=(
        Tab(N_("Search"), "/registry/search", REGISTER_ROLES),
        Tab(N_("Overview"), "/registry/overview", REGISTER_ROLES),
        Tab(N_("Birth"), "/registry/events/birth", REGISTER_ROLES, writers_only=True),
        Tab(N_("Death"), "/registry/events/death", REGISTER_ROLES, writers_only=True),
        Tab(N_("Residence"), "/registry/events/residence", REGISTER_ROLES, writers_only=True),
    ),
    homes=dict.fromkeys(REGISTER_ROLES, "/registry/search"),
)
