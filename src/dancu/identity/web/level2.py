"""Level 2 in person: an officer who records (commune police, or the ministry's) verifies the
citizen at the counter and raises the account to level 2. Decree 69/2024 has level 2 done at
commune police or the card office regardless of residence, so any commune's officer may."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from dancu.core.errors import DancuError
from dancu.core.i18n import _
from dancu.core.pages import (
    CsrfChecked,
    WebOfficer,
    error_status,
    field_errors,
    flash,
    forbidden_page,
    render,
)
from dancu.identity import schemas as s
from dancu.identity.deps import IdentityDep
from dancu.identity.web._common import dev_form

router = APIRouter(tags=["account"], include_in_schema=False)


# -- officers: level 2 in person ---------------------------------------------------------------


@router.get("/identity/level2")
def level2_page(request: Request, officer: WebOfficer, container: IdentityDep) -> Response:
    if not officer.can_write:
        return _level2_forbidden(request)
    return render(request, "identity/level2.html", dev_form(container, "scanner", {}, {}))


@router.post("/identity/level2")
def level2(
    request: Request,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    card_personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    fingerprint_scan: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    if not officer.can_write:
        return _level2_forbidden(request)
    values = {
        "personal_id": personal_id,
        "card_personal_id": card_personal_id,
        "phone": phone,
        "fingerprint_scan": fingerprint_scan,
    }
    # The development scanner: a capture stands in for the device's templates.
    scan = (
        f"simulated-scan:{personal_id.strip()}:{time.time_ns()}".encode()
        if fingerprint_scan == "simulated" and container.settings.identity_adapters == "dev"
        else b""
    )
    try:
        data = s.Level2Activation(
            personal_id=personal_id,
            card_personal_id=card_personal_id,
            fingerprint_scan=scan,
            phone=phone or None,
        )
        account = container.identity.activate_level2(officer, data)
    except (ValidationError, DancuError) as exc:
        errors = field_errors(exc)
        if "fingerprint_scan" in errors and not scan:
            errors["fingerprint_scan"] = _("Capture the fingerprints first")
        status = error_status(exc)
        return render(
            request, "identity/level2.html", dev_form(container, "scanner", errors, values), status
        )
    message = _("Level 2 activated for %(id)s.") % {"id": account.personal_id}
    if account.status == "pending":
        message += " " + _("A code to set the passcode was sent by SMS.")
    flash(request, message)
    return RedirectResponse("/identity/level2", status_code=303)


def _level2_forbidden(request: Request) -> Response:
    return forbidden_page(request, _("Only commune police officers activate level 2."))
