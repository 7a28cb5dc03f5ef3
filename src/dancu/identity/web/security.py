"""The citizen's sign-in security: the authenticator app (set up, confirm, remove), the
devices signed in with (each can be signed out and forgotten) and the login history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from dancu.core.errors import DancuError
from dancu.core.i18n import _
from dancu.core.pages import (
    CsrfChecked,
    field_errors,
    flash,
    render,
    translated,
)
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.sessions import current_device
from dancu.identity.web._common import SignedInCitizen
from dancu.identity.web.account import EVENT_LABELS, FACTOR_LABELS, HISTORY_PAGE

router = APIRouter(tags=["account"], include_in_schema=False)


# -- the authenticator app -------------------------------------------------------------------


@router.get("/account/totp")
def totp_page(request: Request, container: IdentityDep, citizen: SignedInCitizen) -> Response:
    return render(request, "identity/totp.html", _totp_context(container, citizen, {}))


def _totp_context(
    container: IdentityNeeds, citizen: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    personal_id = citizen["personal_id"]
    account = container.identity.account(personal_id)
    enrolment = None if account.totp_since else container.identity.totp_enrolment(personal_id)
    qr = None
    secret_groups = ""
    if enrolment is not None:
        qr = Markup(  # noqa: S704 (segno's SVG of our own URI, no markup from input)
            segno.make(enrolment.uri, error="m").svg_inline(
                scale=5, omitsize=True, title=_("QR code for the authenticator app")
            )
        )
        secret = enrolment.secret
        secret_groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {
        "account": account,
        "enrolment": enrolment,
        "qr": qr,
        "secret_groups": secret_groups,
        "errors": errors,
    }


def _totp_action(
    request: Request,
    container: IdentityNeeds,
    citizen: dict[str, Any],
    action: Callable[[str, int | None], object],
    done: str | None = None,
) -> Response:
    """One change to the citizen's authenticator app: a refusal shows the app's page with
    the reason, success goes back to it (with ``done`` as the message)."""
    try:
        action(citizen["personal_id"], current_device(request))
    except DancuError as exc:
        context = _totp_context(container, citizen, field_errors(exc))
        return render(request, "identity/totp.html", context, exc.status)
    if done:
        flash(request, done)
    return RedirectResponse("/account/totp", status_code=303)


@router.post("/account/totp/start")
def totp_start(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
) -> Response:
    def start(personal_id: str, _device: int | None) -> object:
        return container.identity.start_totp(personal_id)

    return _totp_action(request, container, citizen, start)


@router.post("/account/totp/confirm")
def totp_confirm(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    def confirm(personal_id: str, device: int | None) -> object:
        return container.identity.confirm_totp(personal_id, code, device)

    done = _("The authenticator app is set up: sign-in will ask for its code.")
    return _totp_action(request, container, citizen, confirm, done)


@router.post("/account/totp/remove")
def totp_remove(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
    passcode: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    def remove(personal_id: str, device: int | None) -> object:
        return container.identity.remove_totp(personal_id, passcode, device)

    done = _("The authenticator app was removed: sign-in asks for the passcode only.")
    return _totp_action(request, container, citizen, remove, done)


# -- devices and history ---------------------------------------------------------------------


@router.get("/account/devices")
def devices_page(request: Request, container: IdentityDep, citizen: SignedInCitizen) -> Response:
    context = {
        "devices": container.identity.devices(citizen["personal_id"]),
        "current": current_device(request),
    }
    return render(request, "identity/devices.html", context)


@router.post("/account/devices/{device_id}/revoke")
def revoke_device(
    request: Request,
    container: IdentityDep,
    device_id: int,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
) -> Response:
    if container.identity.revoke_device(citizen["personal_id"], device_id):
        if device_id == current_device(request):
            request.session.pop("citizen", None)
            flash(request, _("You signed out and this device was forgotten."))
            return RedirectResponse("/account/login", status_code=303)
        flash(request, _("The device was signed out and forgotten."))
    return RedirectResponse("/account/devices", status_code=303)


@router.get("/account/history")
def history_page(
    request: Request, container: IdentityDep, citizen: SignedInCitizen, page: int = 1
) -> Response:
    page = max(1, min(page, 10_000))
    events = container.identity.history(
        citizen["personal_id"], limit=HISTORY_PAGE + 1, offset=(page - 1) * HISTORY_PAGE
    )
    context = {
        "events": events[:HISTORY_PAGE],
        "page": page,
        "has_next": len(events) > HISTORY_PAGE,
        "current": current_device(request),
        "event_labels": translated(EVENT_LABELS),
        "factor_labels": translated(FACTOR_LABELS),
    }
    return render(request, "identity/history.html", context)
