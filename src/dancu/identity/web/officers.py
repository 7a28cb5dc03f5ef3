"""Officers' pages for electronic-identity accounts: find an account by personal ID number,
see its state and history, suspend it on a report, reinstate it, turn off the authenticator
app of a citizen who lost the phone; and the correction requests of the officer's area.

Every page goes through ``IdentityService`` with the signed-in officer's context, which checks
the role and the area again, writes and audits. Commune police act on any account (accounts
are served at any commune police, like level 2); province officers read; correction
requests are listed to the officers of the citizen's commune of permanent residence.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    CsrfChecked,
    WebOfficer,
    error_page,
    field_errors,
    flash,
    forbidden_page,
    render,
    translated,
)
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.usecases.officer_actions import SUSPENSION_REASONS
from dancu.identity.web.account import (
    CORRECTION_FIELDS,
    EVENT_LABELS,
    FACTOR_LABELS,
)

router = APIRouter(prefix="/identity", tags=["officer-accounts"], include_in_schema=False)

SUSPENSION_LABELS = {
    "reported-lost-card": N_("Identity card reported lost or stolen"),
    "reported-fraud": N_("Fraud or misuse reported"),
    "citizen-request": N_("At the citizen's request"),
    "court-order": N_("Court or authority decision"),
    "deceased": N_("Death recorded in the register"),
    "merged": N_("Record merged into another in the register"),
}
ACCOUNT_STATUS = {
    "pending": N_("pending"),
    "active": N_("active"),
    "suspended": N_("suspended"),
    "closed": N_("closed"),
}
OUTCOME_LABELS = {
    "done": N_("The register was corrected"),
    "refused": N_("Refused (tell the citizen why)"),
}
_REQUEST_ID = re.compile(r"\d{1,18}")


def _forbidden(request: Request) -> Response:
    return forbidden_page(
        request, _("Your role may read electronic-identity accounts but not change them.")
    )


# -- finding an account --------------------------------------------------------------------------


@router.get("/accounts")
def accounts_page(
    request: Request,
    officer: WebOfficer,
    personal_id: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The search form; a valid number leads to the account's page."""
    if not personal_id:
        return render(request, "identity/officer_accounts.html", {"errors": {}, "values": {}})
    try:
        number = ids.issued_number(personal_id)
    except DancuError as exc:
        context = {"errors": field_errors(exc), "values": {"personal_id": personal_id}}
        return render(request, "identity/officer_accounts.html", context, 422)
    return RedirectResponse(f"/identity/accounts/{number}", status_code=303)


@router.get("/accounts/{personal_id}")
def account_page(
    request: Request, personal_id: str, officer: WebOfficer, container: IdentityDep
) -> Response:
    return _account_page(request, container, officer, personal_id, {}, {})


def _account_page(
    request: Request,
    container: IdentityNeeds,
    officer: OfficerContext,
    personal_id: str,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    """The account's page, or the search form with the reason there is none."""
    try:
        view = container.identity.officer_view(officer, personal_id)
    except DancuError as exc:
        found = {"errors": field_errors(exc), "values": {"personal_id": personal_id[:40]}}
        return render(request, "identity/officer_accounts.html", found, exc.status)
    context: dict[str, Any] = {
        "view": view,
        "account": view.account,
        "can_write": officer.can_write,
        "errors": errors,
        "values": values,
        "reasons": [(r, _(SUSPENSION_LABELS[r])) for r in SUSPENSION_REASONS],
        "reason_labels": translated(SUSPENSION_LABELS),
        "status_labels": translated(ACCOUNT_STATUS),
        "event_labels": translated(EVENT_LABELS),
        "factor_labels": translated(FACTOR_LABELS),
        "describe": _describe,
    }
    return render(request, "identity/officer_account.html", context, status_code)


def _describe(detail: str) -> str:
    """An event's detail for the officer, with a suspension reason's or a corrected field's
    code in words ("reported-fraud · note · officer (unit)", "full_name")."""
    head, sep, rest = detail.partition(" · ")
    for labels in (SUSPENSION_LABELS, CORRECTION_FIELDS):
        if head in labels:
            return _(labels[head]) + sep + rest
    return detail


# -- actions on an account -------------------------------------------------------------------


def _act(
    request: Request,
    container: IdentityNeeds,
    officer: OfficerContext,
    personal_id: str,
    action: str,
    confirmed: bool,
    values: dict[str, str],
    run: Any,
    done: str,
) -> Response:
    """One of the account's forms: confirmed, done by the service, then back to the page;
    a refusal is shown on the form's own fields: the form posts them as ``<action>_<field>``
    (one page holds several forms) and the errors come back under the same names."""
    if not officer.can_write:
        return _forbidden(request)
    if not confirmed:
        errors = {f"{action}_confirm": _("Tick the box to confirm.")}
        return _account_page(request, container, officer, personal_id, errors, values, 422)
    try:
        account = run()
    except DancuError as exc:
        errors = {
            (f"{action}_{k}" if k in ("reason", "note") else f"{action}_form"): v
            for k, v in field_errors(exc).items()
        }
        if exc.code in ("no-account", "personal-id-invalid"):
            return _account_page(request, container, officer, personal_id, {}, {})
        return _account_page(request, container, officer, personal_id, errors, values, exc.status)
    flash(request, done)
    return RedirectResponse(f"/identity/accounts/{account.personal_id}", status_code=303)


@router.post("/accounts/{personal_id}/suspend")
def suspend(
    request: Request,
    personal_id: str,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
    reason: Annotated[str, Form(alias="suspend_reason", max_length=40)] = "",
    note: Annotated[str, Form(alias="suspend_note", max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    return _act(
        request,
        container,
        officer,
        personal_id,
        "suspend",
        confirm == "yes",
        {"suspend_reason": reason, "suspend_note": note},
        lambda: container.identity.suspend_reported(officer, personal_id, reason, note),
        _("The account is suspended: the citizen was signed out everywhere."),
    )


@router.post("/accounts/{personal_id}/reinstate")
def reinstate(
    request: Request,
    personal_id: str,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
    note: Annotated[str, Form(alias="reinstate_note", max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    return _act(
        request,
        container,
        officer,
        personal_id,
        "reinstate",
        confirm == "yes",
        {"reinstate_note": note},
        lambda: container.identity.reinstate(officer, personal_id, note),
        _("The account is reinstated: the citizen can sign in again."),
    )


@router.post("/accounts/{personal_id}/totp-reset")
def reset_second_factor(
    request: Request,
    personal_id: str,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
    note: Annotated[str, Form(alias="reset_note", max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    return _act(
        request,
        container,
        officer,
        personal_id,
        "reset",
        confirm == "yes",
        {"reset_note": note},
        lambda: container.identity.reset_second_factor(officer, personal_id, note),
        _("The authenticator app is turned off: the citizen signs in with the passcode."),
    )


# -- correction requests ---------------------------------------------------------------------


@router.get("/corrections")
def corrections_page(request: Request, officer: WebOfficer, container: IdentityDep) -> Response:
    return _corrections_page(request, container, officer, None, {}, {})


def _corrections_page(
    request: Request,
    container: IdentityNeeds,
    officer: OfficerContext,
    failed: int | None,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    items = container.identity.open_corrections(officer)
    units = container.units
    communes: dict[str, str] = {}
    for item in items:
        unit = units.get("2025", "commune", item.commune_code)
        communes[item.commune_code] = units.label(unit) if unit else "—"
    context: dict[str, Any] = {
        "items": items,
        "communes": communes,
        "can_write": officer.can_write,
        "failed": failed,
        "errors": errors,
        "values": values,
        "field_labels": translated(CORRECTION_FIELDS),
        "outcomes": [(k, _(v)) for k, v in OUTCOME_LABELS.items()],
    }
    return render(request, "identity/officer_corrections.html", context, status_code)


@router.post("/corrections/{request_id}/resolve")
def resolve_correction(
    request: Request,
    request_id: str,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
    outcome: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    if not officer.can_write:
        return _forbidden(request)
    if not _REQUEST_ID.fullmatch(request_id):
        return error_page(request, _("Not found"), _("There is no such request."), 404)
    number = int(request_id)
    try:
        container.identity.resolve_correction(officer, number, outcome, note)
    except DancuError as exc:
        if exc.code == "no-correction":
            return error_page(request, _("Not found"), _(exc.message), 404)
        values = {"outcome": outcome, "note": note}
        errors = field_errors(exc)
        return _corrections_page(request, container, officer, number, errors, values, exc.status)
    flash(
        request,
        _("The request is closed as corrected.")
        if outcome == "done"
        else _("The request is closed as refused."),
    )
    return RedirectResponse("/identity/corrections", status_code=303)
