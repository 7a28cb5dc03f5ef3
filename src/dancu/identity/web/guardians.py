"""The parent's page for their children's accounts: /account/children (Decree 69/2024: a
guardian's level-2 account registers and acts for a minor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from dancu.core import ids
from dancu.core.errors import DancuError
from dancu.core.i18n import _
from dancu.core.pages import CsrfChecked, field_errors, render
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.web._common import SignedInCitizen

router = APIRouter(tags=["account"], include_in_schema=False)


def _context(
    container: IdentityNeeds,
    citizen: dict[str, Any],
    errors: dict[str, str],
    values: dict[str, str],
) -> dict[str, Any]:
    return {
        "wards": container.guardians.wards(citizen["personal_id"]),
        "level": citizen["level"],
        "errors": errors,
        "values": values,
    }


@router.get("/account/children")
def children_page(request: Request, container: IdentityDep, citizen: SignedInCitizen) -> Response:
    return render(request, "identity/children.html", _context(container, citizen, {}, {}))


@router.post("/account/children")
def register_child(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
    personal_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    number = personal_id.strip()
    if not ids.is_well_formed(number):
        errors = {"personal_id": _("Enter the child's 12-digit personal ID number.")}
        context = _context(container, citizen, errors, {"personal_id": personal_id})
        return render(request, "identity/children.html", context, status_code=422)
    try:
        ward = container.guardians.register_child(citizen["personal_id"], number)
    except DancuError as exc:
        errors = field_errors(exc)
        context = _context(container, citizen, errors, {"personal_id": personal_id})
        return render(request, "identity/children.html", context, status_code=exc.status)
    request.session["flash"] = _("An account was created for %(name)s.") % {"name": ward.full_name}
    return RedirectResponse("/account/children", status_code=303)
