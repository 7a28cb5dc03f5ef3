"""Registry officer pages: search, person (with history timeline and "as of"), household, and
the forms that record births, deaths and residence changes.

Every page goes through ``RegistryService`` with the signed-in officer's context, so reads are
audited and scoped exactly as in the API: a commune officer neither sees nor changes anyone
outside their commune (out-of-area people are "not found").
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from dancu.core.access import OfficerContext, Role
from dancu.core.api import ContainerDep
from dancu.core.errors import DancuError, Invalid, NotFound
from dancu.core.i18n import N_, _
from dancu.core.web import (
    CSRF_FIELD,
    WebOfficer,
    check_csrf,
    error_page,
    field_errors,
    flash,
    form_values,
    render,
)
from dancu.registry import schemas as s

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
RELATIONSHIPS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")


def _parse_date(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid("Write a date as dd/mm/yyyy", field) from None


def _not_found(request: Request, message: str) -> Response:
    return error_page(request, _("Not found"), message, 404)


# -- search -----------------------------------------------------------------------------------


@router.get("/search")
def search_page(
    request: Request,
    officer: WebOfficer,
    container: ContainerDep,
    q: Annotated[str, Query(max_length=120)] = "",
    birth_year: Annotated[str, Query(max_length=4)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The search page; an HTMX request (typing in the box) gets the results fragment only."""
    result: s.SearchPage | None = None
    errors: dict[str, str] = {}
    year: int | None = None
    if birth_year.strip():
        if birth_year.strip().isdigit() and 1900 <= int(birth_year) <= date.today().year:
            year = int(birth_year)
        else:
            errors["birth_year"] = _("Write a year between 1900 and this year")
    if (q.strip() or year) and not errors:
        try:
            result = container.registry.search(officer, q, birth_year=year, page=page)
        except DancuError as exc:
            errors = field_errors(exc)
    context = {"q": q, "birth_year": birth_year, "result": result, "errors": errors}
    template = "registry/_results.html" if _wants_fragment(request) else "registry/search.html"
    return render(request, template, context)


def _wants_fragment(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-target") == "results"
    )


# -- overview ---------------------------------------------------------------------------------


@router.get("/overview")
def overview_page(request: Request, officer: WebOfficer, container: ContainerDep) -> Response:
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
    container: ContainerDep,
    as_of: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    errors: dict[str, str] = {}
    try:
        valid_on = _parse_date(as_of, "as_of")
    except Invalid as exc:
        errors, valid_on = field_errors(exc), None
    try:
        person = container.registry.get_person(
            officer, personal_id, valid_on=valid_on, purpose="registry-web"
        )
        history = container.registry.history(officer, personal_id)
    except NotFound:
        return _not_found(request, _("No person with this number in your area."))
    except Invalid as exc:
        return _not_found(request, _(exc.message))
    return render(
        request,
        "registry/person.html",
        {
            "person": person,
            "history": history,
            "timeline": _timeline(history),
            "as_of": as_of if not errors else "",
            "errors": errors,
            "can_write": officer.can_write and person.status == "alive",
            "today": date.today().isoformat(),
        },
    )


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
    request: Request, number: str, officer: WebOfficer, container: ContainerDep
) -> Response:
    try:
        household = container.registry.household(officer, number)
    except NotFound:
        return _not_found(request, _("No household with this number in your area."))
    return render(request, "registry/household.html", {"household": household})


# -- forms ------------------------------------------------------------------------------------


@router.get("/communes")
def commune_options(
    request: Request,
    officer: WebOfficer,
    container: ContainerDep,
    province: Annotated[str, Query(max_length=2)] = "",
    name: Annotated[str, Query(max_length=40)] = "commune",
) -> Response:
    """The <select> of a province's communes (2025 scheme), swapped in by HTMX when the
    province changes."""
    field = name if name in _COMMUNE_FIELDS else "commune"
    return render(
        request,
        "registry/_commune_select.html",
        {
            "field": field,
            "communes": container.units.communes_by_province.get(province, []),
            "selected": "",
        },
    )


_COMMUNE_FIELDS = ("birth_commune_code", "commune_code", "hometown_commune_code")


def _unit_choices(container: Any, officer: OfficerContext, value: str) -> dict[str, Any]:
    """Provinces and the communes of the chosen (or the officer's) province for a picker."""
    units = container.units
    province = officer.province_code or "01"
    if value:
        unit = units.get("2025", "commune", value)
        if unit is not None:
            province = unit.province_code
    provinces = units.provinces
    if officer.role is not Role.MINISTRY:
        provinces = [p for p in provinces if p.code == officer.province_code]
    communes = units.communes_by_province.get(province, [])
    if officer.role is Role.COMMUNE:
        communes = [c for c in communes if c.code == officer.commune_code]
    return {"provinces": provinces, "province": province, "communes": communes}


class _Form:
    """One civil-event form: its schema, fields, template and how to record it."""

    def __init__(
        self,
        slug: str,
        title: str,
        schema: type[BaseModel],
        fields: tuple[str, ...],
        commune_field: str,
        defaults: dict[str, str] | None = None,
    ) -> None:
        self.slug, self.title, self.schema = slug, title, schema
        self.fields, self.commune_field = fields, commune_field
        self.defaults = defaults or {}


FORMS = {
    "birth": _Form(
        "birth",
        N_("Register a birth"),
        s.BirthRegistration,
        (
            "full_name",
            "birth_date",
            "sex",
            "ethnicity",
            "religion",
            "birth_commune_code",
            "mother_personal_id",
            "mother_full_name",
            "father_personal_id",
            "father_full_name",
            "household_number",
            "relationship",
            "reference",
        ),
        "birth_commune_code",
        {"ethnicity": "Kinh", "relationship": "child"},
    ),
    "death": _Form(
        "death",
        N_("Register a death"),
        s.DeathRegistration,
        ("personal_id", "death_date", "place", "cause", "reference"),
        "",
    ),
    "residence": _Form(
        "residence",
        N_("Register a residence change"),
        s.ResidenceChange,
        (
            "personal_id",
            "full_name",
            "birth_date",
            "applicant_personal_id",
            "guardianship_reference",
            "moved_on",
            "kind",
            "commune_code",
            "address_line",
            "household_number",
            "relationship",
            "household_head_consent",
            "consent_reference",
            "reference",
        ),
        "commune_code",
        {"kind": "permanent", "relationship": "other"},
    ),
}


def _form_page(
    request: Request,
    container: Any,
    officer: OfficerContext,
    form: _Form,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "form": form,
        "values": values,
        "errors": errors,
        "relationships": RELATIONSHIPS,
        "today": date.today().isoformat(),
    }
    if form.commune_field:
        context.update(_unit_choices(container, officer, values.get(form.commune_field, "")))
    return render(request, f"registry/form_{form.slug}.html", context, status_code=status_code)


@router.get("/events/{slug}")
def event_form(
    request: Request,
    slug: str,
    officer: WebOfficer,
    container: ContainerDep,
    personal_id: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    form = FORMS.get(slug)
    if form is None:
        return _not_found(request, _("There is no such form."))
    if not officer.can_write:
        return _forbidden(request)
    values: dict[str, Any] = dict(form.defaults)
    if personal_id:
        values["personal_id"] = personal_id
    if form.commune_field and officer.commune_code:
        values[form.commune_field] = officer.commune_code
    return _form_page(request, container, officer, form, values, {})


def _forbidden(request: Request) -> Response:
    return error_page(
        request,
        _("Not allowed"),
        _("Your role may read the register but not record civil events."),
        403,
    )


@router.post("/events/{slug}")
async def submit_event(
    request: Request, slug: str, officer: WebOfficer, container: ContainerDep
) -> Response:
    form = FORMS.get(slug)
    if form is None:
        return _not_found(request, _("There is no such form."))
    raw = await request.form()
    check_csrf(request, str(raw.get(CSRF_FIELD) or ""))
    if not officer.can_write:
        return _forbidden(request)
    values = form_values(raw, form.fields)
    try:
        data = form.schema.model_validate(values)
        target = _record(container, officer, form.slug, data)
    except (ValidationError, DancuError) as exc:
        # Every refusal (a rule, an unknown or out-of-area person, a conflict with what the
        # register holds, a commune outside the area) goes back on the form, where the
        # officer's input is kept; an unknown field name becomes a message over the form.
        if isinstance(exc, DancuError) and exc.field not in (*form.fields, None):
            exc = type(exc)(exc.message, "_form")
        return _form_page(
            request, container, officer, form, values, field_errors(exc), status_code=422
        )
    flash(request, _("Recorded."))
    return RedirectResponse(f"/registry/persons/{target}", status_code=303)


def _record(container: Any, officer: OfficerContext, slug: str, data: BaseModel) -> str:
    """Record the event through the service; returns the personal ID number to show next."""
    registry = container.registry
    if slug == "birth":
        assert isinstance(data, s.BirthRegistration)
        return str(registry.register_birth(officer, data))
    if slug == "death":
        assert isinstance(data, s.DeathRegistration)
        registry.register_death(officer, data)
        return data.personal_id
    assert isinstance(data, s.ResidenceChange)
    registry.change_residence(officer, data)
    return data.personal_id
