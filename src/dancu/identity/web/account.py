"""The citizen's own pages: register a level-1 account, confirm the phone, sign in (with the
authenticator app's code when one is set up), reset a forgotten passcode, and "my electronic
identity": what the register holds (read-only, with a request for correction), the services
they share data with (each consent can be withdrawn), the authenticator app, the devices
signed in with (each can be signed out and forgotten) and the login history."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    Answered,
    CsrfChecked,
    error_status,
    field_errors,
    flash,
    render,
    translated,
)
from dancu.identity import schemas as s
from dancu.identity.api import issuer
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.oidc.par import AuthorizeError, AuthRequest
from dancu.identity.ports import mask_phone, synthetic_selfie
from dancu.identity.sessions import device_seen
from dancu.identity.web._common import (
    SignedInCitizen,
    allow_form_to,
    authorize_refused,
    dev_form,
    to_citizen_login,
)
from dancu.identity.web.oidc import (
    ATTRIBUTE_LABELS,
    SignInFailed,
    SignInFields,
    sign_in,
    start_session,
)

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


@router.get("/account/register")
def register_page(request: Request, container: IdentityDep) -> Response:
    return render(request, "identity/register.html", dev_form(container, "camera", {}, {}))


@router.post("/account/register")
async def register(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    email: Annotated[str, Form(max_length=120)] = "",
    selfie: Annotated[UploadFile | None, File()] = None,
    simulated_camera: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    values = {"personal_id": personal_id, "phone": phone, "email": email}
    photo = await selfie.read(MAX_SELFIE + 1) if selfie is not None else b""
    if simulated_camera == "yes" and container.settings.identity_adapters == "dev":
        photo = synthetic_selfie(container.settings.resolved_secret_key, personal_id.strip())
    if len(photo) > MAX_SELFIE:
        errors = {"selfie": _("The photo is larger than 5 MiB")}
        context = dev_form(container, "camera", errors, values)
        return render(request, "identity/register.html", context, 413)
    try:
        data = s.Registration(personal_id=personal_id, phone=phone, email=email, selfie=photo)
        challenge = await anyio.to_thread.run_sync(container.identity.start_registration, data)
    except (ValidationError, DancuError) as exc:
        errors = field_errors(exc)
        if "selfie" in errors and not photo:
            errors["selfie"] = _("This field is required")
        status = error_status(exc)
        context = dev_form(container, "camera", errors, values)
        return render(request, "identity/register.html", context, status)
    request.session["registration"] = {
        "challenge_id": challenge.challenge_id,
        "phone_hint": challenge.phone_hint,
    }
    return RedirectResponse("/account/register/confirm", status_code=303)


@dataclass(frozen=True)
class _CodeStep:
    """The form for the code texted to the phone, of the registration or the passcode reset
    under way (``key`` in the session, started at ``start``)."""

    key: str
    start: str
    template: str

    def pending(self, request: Request) -> dict[str, Any] | None:
        pending = request.session.get(self.key)
        return pending if isinstance(pending, dict) and pending else None

    def restart(self) -> Response:
        return RedirectResponse(self.start, status_code=303)

    def required(self, request: Request) -> dict[str, Any]:
        """A dependency: the step under way; none: back to where it starts (``Answered``)."""
        pending = self.pending(request)
        if pending is None:
            raise Answered(self.restart())
        return pending

    def page(
        self,
        request: Request,
        pending: dict[str, Any],
        refused: ValidationError | DancuError | None = None,
    ) -> Response:
        """The form (``pending`` holds the phone's hint), again with the reason when the
        code or the passcode was ``refused``."""
        context = {
            "errors": field_errors(refused) if refused is not None else {},
            "phone_hint": pending["phone_hint"],
        }
        status = error_status(refused) if refused is not None else 200
        return render(request, self.template, context, status)

    def show(self, request: Request) -> Response:
        pending = self.pending(request)
        return self.restart() if pending is None else self.page(request, pending)


_REGISTRATION_CODE = _CodeStep("registration", "/account/register", "identity/confirm.html")
_RESET_CODE = _CodeStep("reset", "/account/reset", "identity/reset_confirm.html")


class _CodeForm(BaseModel):
    """The code texted to the phone and the new passcode (registration, passcode reset)."""

    code: str = Field("", max_length=10)
    passcode: str = Field("", max_length=10)


_CodeFields = Annotated[_CodeForm, Form()]
# The route's parameter after ``_csrf``: the step's session entry.
_RegistrationPending = Annotated[dict[str, Any], Depends(_REGISTRATION_CODE.required)]
_ResetPending = Annotated[dict[str, Any], Depends(_RESET_CODE.required)]


@router.get("/account/register/confirm")
def confirm_page(request: Request) -> Response:
    return _REGISTRATION_CODE.show(request)


@router.post("/account/register/confirm")
def confirm(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    pending: _RegistrationPending,
    form: _CodeFields,
) -> Response:
    try:
        account = container.identity.confirm_registration(
            s.Confirmation(challenge_id=pending["challenge_id"], **form.model_dump()),
            device_seen(request),
        )
    except (ValidationError, DancuError) as exc:
        return _REGISTRATION_CODE.page(request, pending, exc)
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
    container: IdentityDep,
    _csrf: CsrfChecked,
    form: SignInFields,
) -> Response:
    try:
        sign_in(request, container, form)
    except SignInFailed as failed:
        context = {**failed.context, "auth": None, "action": "/account/login"}
        return render(request, "identity/login.html", context, failed.status)
    return RedirectResponse("/account", status_code=303)


@router.get("/account")
def account_page(request: Request, container: IdentityDep, citizen: SignedInCitizen) -> Response:
    return render(request, "identity/account.html", _account_context(container, citizen, {}, {}))


def _account_context(
    container: IdentityNeeds,
    citizen: dict[str, Any],
    errors: dict[str, str],
    values: dict[str, str],
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
        "event_labels": translated(EVENT_LABELS),
        "corrections": container.identity.corrections(personal_id),
        "correction_fields": [(k, _(v)) for k, v in CORRECTION_FIELDS.items()],
        "correction_labels": translated(CORRECTION_FIELDS),
        "correction_status": translated(CORRECTION_STATUS),
        "device_count": len(container.identity.devices(personal_id)),
        "errors": errors,
        "values": values,
    }


@router.post("/account/corrections")
def request_correction(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
    field: Annotated[str, Form(max_length=30)] = "",
    proposed: Annotated[str, Form(max_length=300)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    values = {"field": field, "proposed": proposed, "reason": reason}
    try:
        data = s.CorrectionRequestIn(field=field, proposed=proposed, reason=reason)
        container.identity.request_correction(citizen["personal_id"], data)
    except (ValidationError, DancuError) as exc:
        status = error_status(exc)
        context = _account_context(container, citizen, field_errors(exc), values)
        return render(request, "identity/account.html", context, status)
    flash(request, _("Your request was sent to the commune police where you live."))
    return RedirectResponse("/account#corrections", status_code=303)


@router.post("/account/consents/{consent_id}/revoke")
def revoke_consent(
    request: Request,
    container: IdentityDep,
    consent_id: int,
    _csrf: CsrfChecked,
    citizen: SignedInCitizen,
) -> Response:
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
        allow_form_to(response, auth.redirect_uri)
    return response


def _mfa_next(request: Request) -> str:
    pending = request.session.get("mfa")
    return str(pending.get("next", "/account")) if isinstance(pending, dict) else "/account"


@router.get("/account/login/otp")
def second_factor_page(request: Request) -> Response:
    if not isinstance(request.session.get("mfa"), dict):
        return to_citizen_login()
    return _otp_step(request, {})


@router.post("/account/login/otp")
def second_factor(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    otp: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """The code from the authenticator app, after a right passcode (see ``sign_in``)."""
    pending = request.session.get("mfa")
    if not isinstance(pending, dict):
        return to_citizen_login()
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
            return authorize_refused(request, issuer(request, container.settings.issuer), exc)
        return RedirectResponse("/oidc/consent", status_code=303)
    return RedirectResponse("/account", status_code=303)


# -- passcode reset --------------------------------------------------------------------------


@router.get("/account/reset")
def reset_page(request: Request) -> Response:
    return render(request, "identity/reset.html", {"errors": {}, "values": {}})


@router.post("/account/reset")
def reset(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    personal_id: Annotated[str, Form(max_length=20)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Text a code to the phone on file. The answer is the same whether or not an account
    with this number and phone exists (nobody can probe for accounts or phones here)."""
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
    return _RESET_CODE.show(request)


@router.post("/account/reset/confirm")
def reset_confirm(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    pending: _ResetPending,
    form: _CodeFields,
) -> Response:
    challenge_id = pending.get("challenge_id")
    try:
        data = s.Confirmation(challenge_id=challenge_id or 0, **form.model_dump())
        if challenge_id is None:  # no such account, or another phone: no code was sent
            container.identity.refuse_unsent_reset(
                data, int(pending.get("tries", 0)), float(pending.get("started", 0))
            )
        container.identity.finish_reset(data)
    except (ValidationError, DancuError) as exc:
        if isinstance(exc, DancuError) and exc.code == "otp-wrong":
            pending["tries"] = int(pending.get("tries", 0)) + 1
            request.session["reset"] = pending
        return _RESET_CODE.page(request, pending, exc)
    request.session.pop("reset", None)
    flash(request, _("Your passcode was changed: sign in with the new one."))
    return RedirectResponse("/account/login", status_code=303)


@router.post("/account/logout")
def account_logout(request: Request, _csrf: CsrfChecked) -> Response:
    request.session.pop("citizen", None)
    return RedirectResponse("/account/login", status_code=303)
