"""The citizen's own pages: register a level-1 account, confirm the phone, sign in (with the
authenticator app's code when one is set up), reset a forgotten passcode, and "my electronic
identity": what the register holds (read-only, with a request for correction), the services
they share data with (each consent can be withdrawn), the authenticator app, the devices
signed in with (each can be signed out and forgotten) and the login history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
import segno
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from dancu.bootstrap import Container
from dancu.core.api import ContainerDep
from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.web import (
    CSRF_FIELD,
    WebOfficer,
    check_csrf,
    csp_allowing_form_target,
    error_page,
    field_errors,
    flash,
    render,
)
from dancu.identity import schemas as s
from dancu.identity.api import issuer
from dancu.identity.oidc.par import AuthorizeError, AuthRequest
from dancu.identity.ports import mask_phone, synthetic_selfie
from dancu.identity.sessions import current_device, device_seen
from dancu.identity.web import ATTRIBUTE_LABELS, SignInFailed, sign_in, start_session

router = APIRouter(tags=["account"], include_in_schema=False)
MAX_SELFIE = 5 * 1024 * 1024
HISTORY_PAGE = 20
EVENT_LABELS = {
    "login": N_("Signed in"),
    "login.failed": N_("Wrong passcode"),
    "totp.failed": N_("Wrong authenticator code"),
    "locked": N_("Locked after wrong passcodes"),
    "registration.started": N_("Registration started"),
    "registration.completed": N_("Account activated"),
    "reset.started": N_("Passcode reset asked for"),
    "reset.refused": N_("Passcode reset refused: another phone"),
    "passcode.reset": N_("Passcode changed"),
    "level2": N_("Level 2 activated"),
    "provisioned": N_("Account created"),
    "suspended": N_("Account suspended"),
    "reinstated": N_("Account reinstated"),
    "totp.reset": N_("Authenticator app turned off by the police"),
    "correction.done": N_("Register corrected as requested"),
    "correction.refused": N_("Correction request refused"),
    "totp.enrolled": N_("Authenticator app set up"),
    "totp.removed": N_("Authenticator app removed"),
    "device.revoked": N_("Device signed out and forgotten"),
    "consent.withdrawn": N_("Consent withdrawn"),
    "correction.requested": N_("Correction requested"),
    "ward.registered": N_("Account created for your child"),
    "registered.by_guardian": N_("Account created by a parent"),
}
FACTOR_LABELS = {"pwd": N_("passcode"), "otp": N_("authenticator app")}
CORRECTION_FIELDS = {
    "full_name": N_("Full name"),
    "birth_date": N_("Date of birth"),
    "sex": N_("Sex"),
    "permanent_address": N_("Permanent residence address"),
    "other": N_("Something else"),
}
CORRECTION_STATUS = {"open": N_("open"), "done": N_("corrected"), "refused": N_("refused")}


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
            s.Confirmation(challenge_id=pending["challenge_id"], code=code, passcode=passcode),
            device_seen(request),
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
    return render(request, "identity/account.html", _account_context(container, citizen, {}, {}))


def _account_context(
    container: Container, citizen: dict[str, Any], errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    personal_id = citizen["personal_id"]
    consents = container.authorizer.consents(container.authorizer.account_id(personal_id))
    for c in consents:
        c["labels"] = [_(ATTRIBUTE_LABELS.get(n, n)) for n in c["claims"]]
    return {
        "account": container.identity.account(personal_id),
        "person": container.identity.profile(personal_id),
        "consents": consents,
        "history": container.identity.history(personal_id, limit=5),
        "event_labels": {k: _(v) for k, v in EVENT_LABELS.items()},
        "corrections": container.identity.corrections(personal_id),
        "correction_fields": [(k, _(v)) for k, v in CORRECTION_FIELDS.items()],
        "correction_labels": {k: _(v) for k, v in CORRECTION_FIELDS.items()},
        "correction_status": {k: _(v) for k, v in CORRECTION_STATUS.items()},
        "device_count": len(container.identity.devices(personal_id)),
        "errors": errors,
        "values": values,
    }


@router.post("/account/corrections")
def request_correction(
    request: Request,
    container: ContainerDep,
    field: Annotated[str, Form(max_length=30)] = "",
    proposed: Annotated[str, Form(max_length=300)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    values = {"field": field, "proposed": proposed, "reason": reason}
    try:
        data = s.CorrectionRequestIn(field=field, proposed=proposed, reason=reason)
        container.identity.request_correction(citizen["personal_id"], data)
    except (ValidationError, DancuError) as exc:
        status = exc.status if isinstance(exc, DancuError) else 422
        context = _account_context(container, citizen, field_errors(exc), values)
        return render(request, "identity/account.html", context, status)
    flash(request, _("Your request was sent to the commune police where you live."))
    return RedirectResponse("/account#corrections", status_code=303)


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
    names = {c["id"]: c["client"] for c in container.authorizer.consents(account_id)}
    if container.authorizer.revoke_consent(account_id, consent_id):
        container.identity.consent_withdrawn(citizen["personal_id"], names.get(consent_id, ""))
        request.session["flash"] = _("Consent withdrawn: the service will ask you again.")
    return RedirectResponse("/account", status_code=303)


# -- sign-in: the authenticator app's code --------------------------------------------------


def _otp_step(request: Request, errors: dict[str, str], status_code: int = 200) -> Response:
    """The sign-in form's code step, for the citizen's pages or a service's sign-in."""
    data = request.session.get("oidc")
    auth = AuthRequest.from_dict(data) if data and _mfa_next(request) == "/oidc/consent" else None
    context = {"errors": errors, "values": {}, "step": "otp", "auth": auth}
    response = render(request, "identity/login.html", context, status_code)
    if auth is not None:  # the code step may end at the service (a refusal goes back there)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(auth.redirect_uri))
        response.headers["content-security-policy"] = csp_allowing_form_target(origin)
    return response


def _mfa_next(request: Request) -> str:
    pending = request.session.get("mfa")
    return str(pending.get("next", "/account")) if isinstance(pending, dict) else "/account"


@router.get("/account/login/otp")
def second_factor_page(request: Request) -> Response:
    if not isinstance(request.session.get("mfa"), dict):
        return RedirectResponse("/account/login", status_code=303)
    return _otp_step(request, {})


@router.post("/account/login/otp")
def second_factor(
    request: Request,
    container: ContainerDep,
    otp: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    """The code from the authenticator app, after a right passcode (see ``sign_in``)."""
    check_csrf(request, csrf_token)
    pending = request.session.get("mfa")
    if not isinstance(pending, dict):
        return RedirectResponse("/account/login", status_code=303)
    next_page = _mfa_next(request)
    try:
        account = container.identity.login_otp(
            str(pending.get("ticket", "")), otp, device_seen(request)
        )
    except DancuError as exc:
        if exc.code == "otp-ticket-expired":
            request.session.pop("mfa", None)
            flash(request, _(exc.message))
            back = "/oidc/login" if next_page == "/oidc/consent" else "/account/login"
            return RedirectResponse(back, status_code=303)
        return _otp_step(request, field_errors(exc), exc.status)
    start_session(request, account)
    data = request.session.get("oidc")
    if next_page == "/oidc/consent" and data:
        auth = AuthRequest.from_dict(data)
        try:
            container.authorizer.check_level(auth, account.level)
        except AuthorizeError as exc:
            request.session.pop("oidc", None)
            if exc.redirect_uri:
                base = issuer(request, container.settings.issuer)
                return RedirectResponse(exc.location(base), status_code=303)
            return error_page(request, _("The request cannot be completed"), exc.description, 400)
        return RedirectResponse("/oidc/consent", status_code=303)
    return RedirectResponse("/account", status_code=303)


# -- passcode reset --------------------------------------------------------------------------


@router.get("/account/reset")
def reset_page(request: Request) -> Response:
    return render(request, "identity/reset.html", {"errors": {}, "values": {}})


@router.post("/account/reset")
def reset(
    request: Request,
    container: ContainerDep,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    """Text a code to the phone on file. The answer is the same whether or not an account
    with this number and phone exists (nobody can probe for accounts or phones here)."""
    check_csrf(request, csrf_token)
    values = {"personal_id": personal_id, "phone": phone}
    try:
        data = s.ResetRequest(personal_id=personal_id, phone=phone)
    except ValidationError as exc:
        context = {"errors": field_errors(exc), "values": values}
        return render(request, "identity/reset.html", context, 422)
    challenge = container.identity.start_reset(data)
    request.session["reset"] = {
        "challenge_id": challenge.challenge_id if challenge else None,
        "phone_hint": mask_phone(data.phone),
        "tries": 0,
        "started": time.time(),
    }
    return RedirectResponse("/account/reset/confirm", status_code=303)


@router.get("/account/reset/confirm")
def reset_confirm_page(request: Request) -> Response:
    pending = request.session.get("reset")
    if not isinstance(pending, dict):
        return RedirectResponse("/account/reset", status_code=303)
    context = {"errors": {}, "phone_hint": pending["phone_hint"]}
    return render(request, "identity/reset_confirm.html", context)


@router.post("/account/reset/confirm")
def reset_confirm(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Form(max_length=10)] = "",
    passcode: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    pending = request.session.get("reset")
    if not isinstance(pending, dict):
        return RedirectResponse("/account/reset", status_code=303)
    challenge_id = pending.get("challenge_id")
    try:
        data = s.Confirmation(challenge_id=challenge_id or 0, code=code, passcode=passcode)
        if challenge_id is None:  # no such account, or another phone: no code was sent
            container.identity.refuse_unsent_reset(
                data, int(pending.get("tries", 0)), float(pending.get("started", 0))
            )
        container.identity.finish_reset(data)
    except (ValidationError, DancuError) as exc:
        if isinstance(exc, DancuError) and exc.code == "otp-wrong":
            pending["tries"] = int(pending.get("tries", 0)) + 1
            request.session["reset"] = pending
        status = exc.status if isinstance(exc, DancuError) else 422
        context = {"errors": field_errors(exc), "phone_hint": pending["phone_hint"]}
        return render(request, "identity/reset_confirm.html", context, status)
    request.session.pop("reset", None)
    flash(request, _("Your passcode was changed: sign in with the new one."))
    return RedirectResponse("/account/login", status_code=303)


# -- the authenticator app -------------------------------------------------------------------


@router.get("/account/totp")
def totp_page(request: Request, container: ContainerDep) -> Response:
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    return render(request, "identity/totp.html", _totp_context(container, citizen, {}))


def _totp_context(
    container: Container, citizen: dict[str, Any], errors: dict[str, str]
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
    container: Container,
    csrf: str,
    action: Callable[[str, int | None], object],
    done: str | None = None,
) -> Response:
    """One change to the citizen's authenticator app: a refusal shows the app's page with
    the reason, success goes back to it (with ``done`` as the message)."""
    check_csrf(request, csrf)
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
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
    container: ContainerDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    def start(personal_id: str, _device: int | None) -> object:
        return container.identity.start_totp(personal_id)

    return _totp_action(request, container, csrf_token, start)


@router.post("/account/totp/confirm")
def totp_confirm(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    def confirm(personal_id: str, device: int | None) -> object:
        return container.identity.confirm_totp(personal_id, code, device)

    done = _("The authenticator app is set up: sign-in will ask for its code.")
    return _totp_action(request, container, csrf_token, confirm, done)


@router.post("/account/totp/remove")
def totp_remove(
    request: Request,
    container: ContainerDep,
    passcode: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    def remove(personal_id: str, device: int | None) -> object:
        return container.identity.remove_totp(personal_id, passcode, device)

    done = _("The authenticator app was removed: sign-in asks for the passcode only.")
    return _totp_action(request, container, csrf_token, remove, done)


# -- devices and history ---------------------------------------------------------------------


@router.get("/account/devices")
def devices_page(request: Request, container: ContainerDep) -> Response:
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    context = {
        "devices": container.identity.devices(citizen["personal_id"]),
        "current": current_device(request),
    }
    return render(request, "identity/devices.html", context)


@router.post("/account/devices/{device_id}/revoke")
def revoke_device(
    request: Request,
    container: ContainerDep,
    device_id: int,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    if container.identity.revoke_device(citizen["personal_id"], device_id):
        if device_id == current_device(request):
            request.session.pop("citizen", None)
            flash(request, _("You signed out and this device was forgotten."))
            return RedirectResponse("/account/login", status_code=303)
        flash(request, _("The device was signed out and forgotten."))
    return RedirectResponse("/account/devices", status_code=303)


@router.get("/account/history")
def history_page(request: Request, container: ContainerDep, page: int = 1) -> Response:
    citizen = _citizen(request)
    if citizen is None:
        return RedirectResponse("/account/login", status_code=303)
    page = max(1, min(page, 10_000))
    events = container.identity.history(
        citizen["personal_id"], limit=HISTORY_PAGE + 1, offset=(page - 1) * HISTORY_PAGE
    )
    context = {
        "events": events[:HISTORY_PAGE],
        "page": page,
        "has_next": len(events) > HISTORY_PAGE,
        "current": current_device(request),
        "event_labels": {k: _(v) for k, v in EVENT_LABELS.items()},
        "factor_labels": {k: _(v) for k, v in FACTOR_LABELS.items()},
    }
    return render(request, "identity/history.html", context)


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
