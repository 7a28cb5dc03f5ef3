"""Registry officer forms: the civil events a commune (or the ministry) records, births,
deaths and residence changes, each through ``RegistryService`` with the officer's context.

Dates are typed as dd/mm/yyyy (ISO 8601 is accepted too) and read here, so that a date
that does not exist is told apart from one written the wrong way. A death is recorded in
two steps: the first shows whose record it is (name, date of birth and age, residence) and
records nothing; only the confirmation, which names the same number, records it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError
from dancu.core.formats import parse_date
from dancu.core.i18n import N_, _
from dancu.core.page_errors import name_fields
from dancu.core.pages import (
    CsrfChecked,
    WebOfficer,
    field_errors,
    flash,
    forbidden_page,
    form_values,
    not_found_page,
    render,
)
from dancu.registry import schemas as s
from dancu.registry.deps import RegistryDep

router = APIRouter(prefix="/registry", include_in_schema=False)
RELATIONSHIPS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
# Typed into the forms as dd/mm/yyyy, sent to the service as dates.
DATE_FIELDS = ("birth_date", "death_date", "moved_on")
name_fields({"slug": N_("Form"), "name": N_("Field")})


@router.get("/communes")
def commune_options(
    request: Request,
    officer: WebOfficer,
    container: RegistryDep,
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
    container: RegistryDep,
    personal_id: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    form = FORMS.get(slug)
    if form is None:
        return not_found_page(request, _("There is no such form."))
    if not officer.can_write:
        return _forbidden(request)
    values: dict[str, Any] = dict(form.defaults)
    if personal_id:
        values["personal_id"] = personal_id
    if form.commune_field and officer.commune_code:
        values[form.commune_field] = officer.commune_code
    return _form_page(request, container, officer, form, values, {})


def _forbidden(request: Request) -> Response:
    return forbidden_page(
        request, _("Your role may read the register but not record civil events.")
    )


@router.post("/events/{slug}")
async def submit_event(
    request: Request,
    slug: str,
    officer: WebOfficer,
    container: RegistryDep,
    _csrf: CsrfChecked,
) -> Response:
    form = FORMS.get(slug)
    if form is None:
        return not_found_page(request, _("There is no such form."))
    raw = await request.form()
    if not officer.can_write:
        return _forbidden(request)
    values = form_values(raw, form.fields)
    if raw.get("edit"):  # "change the details" on the confirmation step
        return _form_page(request, container, officer, form, values, {})
    dated, date_errors = _read_dates(values)
    try:
        data = form.schema.model_validate(dated)
        if date_errors:
            raise Refused(date_errors)
        if form.slug == "death" and not _confirmed(raw, values):
            assert isinstance(data, s.DeathRegistration)
            person = container.registry.check_death(officer, data)
            return _confirm_death(request, values, data, person)
        target = _record(container, officer, form.slug, data)
    except (ValidationError, DancuError, Refused) as exc:
        # Every refusal (a rule, an unknown or out-of-area person, a conflict with what the
        # register holds, a commune outside the area) goes back on the form, where the
        # officer's input is kept; an unknown field name becomes a message over the form.
        if isinstance(exc, DancuError) and exc.field not in (*form.fields, None):
            exc = type(exc)(exc.message, "_form")
        errors = exc.errors if isinstance(exc, Refused) else field_errors(exc)
        errors = {**errors, **date_errors}  # a date's own fault before "required"
        return _form_page(request, container, officer, form, values, errors, status_code=422)
    flash(request, _("Recorded."))
    return RedirectResponse(f"/registry/persons/{target}", status_code=303)


class Refused(Exception):
    """Field errors found on the page itself (a date that is not one)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors


def _read_dates(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values with their dates as ISO dates for the schema, and each date's error."""
    out, errors = dict(values), {}
    for name in DATE_FIELDS:
        if name not in values:
            continue
        try:
            day = parse_date(values[name], name)
        except DancuError as exc:
            errors.update(field_errors(exc))
            del out[name]
        else:
            out[name] = day.isoformat() if day else None
    return out, errors


def _confirmed(raw: FormData, values: dict[str, Any]) -> bool:
    """A confirmation names the number whose person was shown; another number (the field
    edited since) is shown first like a new one."""
    shown = str(raw.get("confirm_personal_id") or "")
    return raw.get("confirm") == "yes" and bool(shown) and shown == values.get("personal_id")


def _confirm_death(
    request: Request, values: dict[str, Any], data: s.DeathRegistration, person: s.PersonPublic
) -> Response:
    residence = next(
        (r for r in person.residences if r.kind == "permanent" and r.valid_to is None),
        next((r for r in person.residences if r.valid_to is None), None),
    )
    context = {
        "form": FORMS["death"],
        "values": values,
        "person": person,
        "age": _age(person.birth_date, date.today()),
        "residence": residence,
        "death_date": data.death_date,
        "age_at_death": _age(person.birth_date, data.death_date),
    }
    return render(request, "registry/confirm_death.html", context)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


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
