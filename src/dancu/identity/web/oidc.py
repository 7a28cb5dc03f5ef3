"""The citizen's pages of the OpenID provider: the authorization endpoint, sign-in with the
personal ID number and passcode, and the consent screen (Vietnamese by default, English)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    CsrfChecked,
    error_page,
    error_status,
    field_errors,
    render,
)
from dancu.identity import claims as released
from dancu.identity import schemas as s
from dancu.identity.api import issuer
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.oidc.par import AuthorizeError, AuthRequest
from dancu.identity.sessions import device_seen
from dancu.identity.usecases.signin import SecondFactorRequired
from dancu.identity.web._common import allow_form_to, authorize_refused

router = APIRouter(tags=["openid"], include_in_schema=False)
ATTRIBUTE_LABELS = {
    "name": N_("Full name"),
    "birthdate": N_("Date of birth"),
    "gender": N_("Sex"),
    "address": N_("Permanent residence address"),
    "phone_number": N_("Phone number"),
    "email": N_("E-mail address"),
    "personal_id": N_("Personal ID number"),
    "picture": N_("Portrait"),
}


def _page(
    request: Request,
    template: str,
    auth: AuthRequest,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    response = render(request, template, {"auth": auth, **context}, status_code)
    return allow_form_to(response, auth.redirect_uri)


def _pending(request: Request) -> AuthRequest | None:
    data = request.session.get("oidc")
    return AuthRequest.from_dict(data) if data else None


@router.get("/oidc/authorize")
async def authorize(request: Request, container: IdentityDep) -> Response:
    """The authorization endpoint: check the request, then sign-in and consent."""
    base = issuer(request, container.settings.issuer)
    query = dict(request.query_params)
    try:
        auth = await anyio.to_thread.run_sync(container.authorizer.request, query)
    except AuthorizeError as exc:
        return authorize_refused(request, base, exc)
    request.session["oidc"] = auth.as_dict()
    citizen = request.session.get("citizen")
    if not citizen or auth.prompt == "login":
        return RedirectResponse("/oidc/login", status_code=303)
    return RedirectResponse("/oidc/consent", status_code=303)


@router.get("/oidc/login")
def login_page(request: Request) -> Response:
    auth = _pending(request)
    if auth is None:
        return _no_request(request)
    return _page(request, "identity/login.html", auth, {"errors": {}, "values": {}})


@router.post("/oidc/login")
def login(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    form: SignInFields,
) -> Response:
    auth = _pending(request)
    if auth is None:
        return _no_request(request)
    base = issuer(request, container.settings.issuer)
    try:
        account = sign_in(request, container, form)
    except SignInFailed as failed:
        return _page(request, "identity/login.html", auth, failed.context, failed.status)
    try:
        container.authorizer.check_level(auth, account.level)
    except AuthorizeError as exc:
        return authorize_refused(request, base, exc)
    return RedirectResponse("/oidc/consent", status_code=303)


@router.get("/oidc/consent")
def consent_page(request: Request, container: IdentityDep) -> Response:
    auth = _pending(request)
    citizen = request.session.get("citizen")
    if auth is None or citizen is None:
        return RedirectResponse("/oidc/login" if auth else "/", status_code=303)
    account_id = container.authorizer.account_id(citizen["personal_id"])
    # A parent holding children's accounts always chooses for whom (no remembered shortcut).
    wards = [w for w in container.guardians.wards(citizen["personal_id"]) if w.status == "active"]
    if not wards and container.authorizer.has_consent(account_id, auth):
        return _finish(request, container, auth, citizen, remember=False)
    lines = released.consent_lines(auth.attributes)
    labels = [(name, _(ATTRIBUTE_LABELS.get(name, name))) for name in lines]
    context = {"labels": labels, "citizen": citizen, "wards": wards}
    return _page(request, "identity/consent.html", auth, context)


@router.post("/oidc/consent")
def consent(
    request: Request,
    container: IdentityDep,
    _csrf: CsrfChecked,
    decision: Annotated[str, Form(max_length=10)] = "",
    remember: Annotated[str, Form(max_length=5)] = "",
    on_behalf: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    auth, citizen = _pending(request), request.session.get("citizen")
    if auth is None or citizen is None:
        return _no_request(request)
    base = issuer(request, container.settings.issuer)
    if decision != "allow":
        return authorize_refused(
            request,
            base,
            AuthorizeError("access_denied", "the citizen refused", auth.redirect_uri, auth.state),
        )
    return _finish(request, container, auth, citizen, remember == "yes", on_behalf)


def _finish(
    request: Request,
    container: IdentityNeeds,
    auth: AuthRequest,
    citizen: dict[str, Any],
    remember: bool,
    on_behalf: str = "",
) -> Response:
    base = issuer(request, container.settings.issuer)
    account_id = container.authorizer.account_id(citizen["personal_id"])
    actor = None
    if on_behalf:  # a parent acting for a child whose account they hold
        try:
            ward = container.guardians.ward_for(account_id, int(on_behalf))
        except (ValueError, DancuError) as exc:
            message = _(exc.message) if isinstance(exc, DancuError) else _("Choose a person.")
            return error_page(request, _("The request cannot be completed"), message, 400)
        account_id, actor = ward.id, account_id
    try:
        location = container.authorizer.approve(
            account_id,
            citizen["level"],
            citizen["auth_time"],
            auth,
            remember,
            base,
            actor,
            citizen.get("amr", ["pwd"]),
        )
    except AuthorizeError as exc:
        return authorize_refused(request, base, exc)
    request.session.pop("oidc", None)
    return RedirectResponse(location, status_code=303)


class SignInFailed(Exception):
    def __init__(self, context: dict[str, Any], status: int) -> None:
        self.context, self.status = context, status


class SignInForm(BaseModel):
    """The citizen's sign-in form, on the citizen's pages and on a service's sign-in."""

    personal_id: str = Field("", max_length=20)
    passcode: str = Field("", max_length=64)


# The sign-in route's form parameter.
SignInFields = Annotated[SignInForm, Form()]


def sign_in(request: Request, container: IdentityNeeds, form: SignInForm) -> s.AccountOut:
    """Check the passcode and start the citizen's session on this device (recorded in the
    citizen's device list); on failure, ``SignInFailed`` carries the sign-in form's errors
    and the answer's status. An account with an authenticator app is not signed in yet:
    ``SignInFailed`` then carries the code step of the form (``step="otp"``, status 200),
    whose answer goes to /account/login/otp (``account.second_factor``)."""
    try:
        account = container.identity.login(
            s.Login(personal_id=form.personal_id, passcode=form.passcode), device_seen(request)
        )
    except SecondFactorRequired as needed:
        next_page = "/oidc/consent" if request.url.path.startswith("/oidc/") else "/account"
        request.session["mfa"] = {"ticket": needed.ticket, "next": next_page}
        context = {"errors": {}, "values": {"personal_id": form.personal_id}, "step": "otp"}
        raise SignInFailed(context, 200) from None
    except (ValidationError, DancuError) as exc:
        status = error_status(exc)
        context = {"errors": field_errors(exc), "values": {"personal_id": form.personal_id}}
        raise SignInFailed(context, status) from None
    start_session(request, account)
    return account


def start_session(request: Request, account: s.AccountOut) -> None:
    """The citizen's session: who, at what level, when, with which factors (``amr``) and on
    which recorded device (its revocation ends the session, see ``identity.sessions``)."""
    request.session.pop("mfa", None)
    request.session["citizen"] = {
        "personal_id": account.personal_id,
        "level": account.level,
        "auth_time": int(time.time()),
        "amr": account.factors or ["pwd"],
        "device": account.device_id,
    }


def _no_request(request: Request) -> Response:
    return error_page(
        request,
        _("No sign-in is under way"),
        _("Start again from the service you came from."),
        400,
    )


@router.get("/oidc/logout")
def logout(
    request: Request,
    container: IdentityDep,
    id_token_hint: str = "",
    post_logout_redirect_uri: str = "",
    state: str = "",
) -> Response:
    """RP-initiated logout: end the citizen's session here, then return to the service if it
    named a registered address and proved itself with an ID token."""
    request.session.pop("citizen", None)
    request.session.pop("oidc", None)
    target = container.authorizer.logout_target(id_token_hint, post_logout_redirect_uri, state)
    if target:
        return RedirectResponse(target, status_code=303)
    return render(request, "identity/signed_out.html", {})
