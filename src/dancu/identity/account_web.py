"""The citizen's own pages: register a level-1 account, confirm the phone, sign in, and "my
electronic identity" (what the register holds, the services they share data with — each
consent can be withdrawn — and recent activity)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from dancu.bootstrap import Container
from dancu.core.api import ContainerDep
from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.web import (
    CSRF_FIELD,
    WebOfficer,
    check_csrf,
    error_page,
    field_errors,
    flash,
    render,
)
from dancu.identity import schemas as s
from dancu.identity.ports import synthetic_selfie
from dancu.identity.web import ATTRIBUTE_LABELS, SignInFailed, sign_in, start_session

router = APIRouter(tags=["account"], include_in_schema=False)
MAX_SELFIE = 5 * 1024 * 1024
EVENT_LABELS = {
    "login": N_("Signed in"),
    "login.failed": N_("Wrong passcode"),
    "locked": N_("Locked after wrong passcodes"),
    "registration.started": N_("Registration started"),
    "registration.completed": N_("Account activated"),
    "passcode.reset": N_("Passcode changed"),
    "level2": N_("Level 2 activated"),
    "provisioned": N_("Account created"),
    "suspended": N_("Account suspended"),
}


def _citizen(request: Request) -> dict[str, Any] | None:
    citizen = request.session.get("citizen")
    return citizen if isinstance(citizen, dict) else None


@router.get("/account/register")
def register_page(request: Request, container: ContainerDep) -> Response:
    return render(request, "identity/register.html", _register_context(container, {}, {}))


def _register_context(
    container: Container, errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    return {
        "errors": errors,
        "values": values,
        "dev_camera": container.settings.identity_adapters == "dev",
    }


@router.post("/account/register")
async def register(
    request: Request,
    container: ContainerDep,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    email: Annotated[str, Form(max_length=120)] = "",
    selfie: Annotated[UploadFile | None, File()] = None,
    simulated_camera: Annotated[str, Form(max_length=5)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    values = {"personal_id": personal_id, "phone": phone, "email": email}
    photo = await selfie.read(MAX_SELFIE + 1) if selfie is not None else b""
    if simulated_camera == "yes" and container.settings.identity_adapters == "dev":
        photo = synthetic_selfie(container.settings.resolved_secret_key, personal_id.strip())
    if len(photo) > MAX_SELFIE:
        errors = {"selfie": _("The photo is larger than 5 MiB")}
        context = _register_context(container, errors, values)
        return render(request, "identity/register.html", context, 413)
    try:
        data = s.Registration(personal_id=personal_id, phone=phone, email=email, selfie=photo)
        challenge = await anyio.to_thread.run_sync(container.identity.start_registration, data)
    except (ValidationError, DancuError) as exc:
        errors = field_errors(exc)
        if "selfie" in errors and not photo:
            errors["selfie"] = _("This field is required")
        status = exc.status if isinstance(exc, DancuError) else 422
        context = _register_context(container, errors, values)
        return render(request, "identity/register.html", context, status)
    request.session["registration"] = {
        "challenge_id": challenge.challenge_id,
        "phone_hint": challenge.phone_hint,
    }
    return RedirectResponse("/account/register/confirm", status_code=303)


@router.get("/account/register/confirm")
def confirm_page(request: Request) -> Response:
    pending = request.session.get("registration")
    if not pending:
        return RedirectResponse("/account/register", status_code=303)
    context = {"errors": {}, "phone_hint": pending["phone_hint"]}
    return render(request, "identity/confirm.html", context)


@router.post("/account/register/confirm")
def confirm(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Form(max_length=10)] = "",
    passcode: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    pending = request.session.get("registration")
    if not pending:
        return RedirectResponse("/account/register", status_code=303)
    try:
        account = container.identity.confirm_registration(
            s.Confirmation(challenge_id=pending["challenge_id"], code=code, passcode=passcode)
        )
    except (ValidationError, DancuError) as exc:
        status = exc.status if isinstance(exc, DancuError) else 422
        context = {"errors": field_errors(exc), "phone_hint": pending["phone_hint"]}
        return render(request, "identity/confirm.html", context, status)
    request.session.pop("registration", None)
    start_session(request, account)
    request.session["flash"] = _("Your account is active (level 1).")
    return RedirectResponse("/account", status_code=303)


@router.get("/account/login")
def account_login_page(request: Request) -> Response:
    context: dict[str, Any] = {"errors": {}, "values": {}, "auth": None, "action": "/account/login"}
    return render(request, "identity/login.html", context)


@router.post("/account/login")
def account_login(
    request: Request,
    container: ContainerDep,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    passcode: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        sign_in(request, container, personal_id, passcode)
    except SignInFailed as failed:
        context = {**failed.context, "auth": None, "action": "/account/login"}
        return render(request, "identity/login.html", context, failed.status)
    return RedirectResponse("/account", status_code=303)


@router.get("/account")
def account_page(request: Request, container: ContainerDep) -> Response:
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    personal_id = citizen["personal_id"]
    account = container.identity.account(personal_id)
    consents = container.authorizer.consents(container.authorizer.account_id(personal_id))
    for c in consents:
        c["labels"] = [_(ATTRIBUTE_LABELS.get(n, n)) for n in c["claims"]]
    context = {
        "account": account,
        "person": container.identity.profile(personal_id),
        "consents": consents,
        "history": container.identity.history(personal_id, limit=15),
        "event_labels": {k: _(v) for k, v in EVENT_LABELS.items()},
    }
    return render(request, "identity/account.html", context)


@router.post("/account/consents/{consent_id}/revoke")
def revoke_consent(
    request: Request,
    container: ContainerDep,
    consent_id: int,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    account_id = container.authorizer.account_id(citizen["personal_id"])
    if container.authorizer.revoke_consent(account_id, consent_id):
        request.session["flash"] = _("Consent withdrawn: the service will ask you again.")
    return RedirectResponse("/account", status_code=303)


@router.post("/account/logout")
def account_logout(
    request: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = ""
) -> Response:
    check_csrf(request, csrf_token)
    request.session.pop("citizen", None)
    return RedirectResponse("/account/login", status_code=303)


# -- officers: level 2 in person ---------------------------------------------------------------


@router.get("/identity/level2")
def level2_page(request: Request, officer: WebOfficer, container: ContainerDep) -> Response:
    if not officer.can_write:
        return _level2_forbidden(request)
    return render(request, "identity/level2.html", _level2_context(container, {}, {}))


@router.post("/identity/level2")
def level2(
    request: Request,
    officer: WebOfficer,
    container: ContainerDep,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    card_personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    fingerprint_scan: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
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
        status = exc.status if isinstance(exc, DancuError) else 422
        return render(
            request, "identity/level2.html", _level2_context(container, errors, values), status
        )
    message = _("Level 2 activated for %(id)s.") % {"id": account.personal_id}
    if account.status == "pending":
        message += " " + _("A code to set the passcode was sent by SMS.")
    flash(request, message)
    return RedirectResponse("/identity/level2", status_code=303)


def _level2_context(
    container: Container, errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    return {
        "errors": errors,
        "values": values,
        "dev_scanner": container.settings.identity_adapters == "dev",
    }


def _level2_forbidden(request: Request) -> Response:
    return error_page(
        request,
        _("Not allowed"),
        _("Only commune police officers activate level 2."),
        403,
    )
