"""Ministry administrators' pages for the OpenID provider's clients (the agencies' services
and systems that sign citizens in or call the register): the list, a form to register one,
its details, and disabling or enabling it. ``ClientRegistry`` checks the role again, writes
and audits; these pages only turn the form into a ``ClientRegistration`` and back.

A generated client secret is shown once, on the page that answers the registration, which is
never cached; it is not kept in the session (a cookie) and never logged."""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError, Forbidden, NotFound
from dancu.core.i18n import N_, _
from dancu.core.pages import (
    CsrfChecked,
    WebOfficer,
    error_page,
    field_errors,
    forbidden_page,
    render,
    translated,
)
from dancu.identity.clients import (
    GRANTS,
    SCOPES,
    SENSITIVE_CLAIMS,
    ClientOut,
    ClientRegistration,
)
from dancu.identity.deps import IdentityDep, IdentityNeeds
from dancu.identity.web.oidc import ATTRIBUTE_LABELS

router = APIRouter(tags=["clients"], include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_CHOICES = ("jwks", "jwks_uri", "secret")
MAX_TEXT = 64 * 1024  # a JWKS or a list of redirect URIs longer than this is a mistake
GRANT_LABELS = {
    "authorization_code": N_("Citizens sign in at the service (authorization code)"),
    "refresh_token": N_("The service stays signed in (refresh tokens)"),
    "client_credentials": N_("System to system, no citizen (client credentials)"),
}
SCOPE_LABELS = {
    "openid": N_("Sign-in with an electronic identity"),
    "profile": N_("Full name, date of birth, sex"),
    "address": N_("Permanent residence address"),
    "phone": N_("Phone number"),
    "email": N_("E-mail address"),
    "registry.lookup": N_("Look up people in the register (agency systems)"),
    "registry.events": N_("Receive civil events (agency systems)"),
}
AUTH_LABELS = {
    "private_key_jwt": N_("Signed assertion (private_key_jwt)"),
    "client_secret_basic": N_("Client secret (client_secret_basic)"),
}
_LIST_FIELDS = ("grant_types", "scopes", "claims")
_TEXT_FIELDS = ("name", "purpose", "purpose_en", "client_id", "auth", "jwks", "jwks_uri")
_LINES_FIELDS = ("redirect_uris", "post_logout_redirect_uris")


def _is_admin(officer: OfficerContext) -> bool:
    return officer.role is Role.MINISTRY


def _forbidden(request: Request) -> Response:
    return forbidden_page(
        request, _("Only ministry administrators manage the services that use sign-in with dancu.")
    )


def _labels() -> dict[str, Any]:
    """Translated labels the client templates show (grants, scopes, claims, methods)."""
    return {
        "grant_labels": translated(GRANT_LABELS),
        "scope_labels": translated(SCOPE_LABELS),
        "claim_labels": {k: _(ATTRIBUTE_LABELS[k]) for k in SENSITIVE_CLAIMS},
        "auth_labels": translated(AUTH_LABELS),
    }


@router.get("/identity/clients")
def clients_page(request: Request, officer: WebOfficer, container: IdentityDep) -> Response:
    if not _is_admin(officer):
        return _forbidden(request)
    context = {"clients": container.clients.list(), **_labels()}
    return render(request, "identity/clients.html", context)


@router.get("/identity/clients/new")
def client_form_page(request: Request, officer: WebOfficer) -> Response:
    if not _is_admin(officer):
        return _forbidden(request)
    values: dict[str, Any] = {
        "auth": "jwks",
        "grant_types": ["authorization_code"],
        "scopes": ["openid"],
        "claims": [],
    }
    return _form(request, values, {})


def _form(
    request: Request, values: dict[str, Any], errors: dict[str, str], status_code: int = 200
) -> Response:
    context = {
        "values": values,
        "errors": errors,
        "grants": GRANTS,
        "scopes": SCOPES,
        "claims": SENSITIVE_CLAIMS,
        **_labels(),
    }
    return render(request, "identity/client_form.html", context, status_code)


def _values(raw: FormData) -> dict[str, Any]:
    """What was typed, as the form shows it again."""
    values: dict[str, Any] = {name: str(raw.get(name) or "") for name in _TEXT_FIELDS}
    for name in _LINES_FIELDS:
        values[name] = str(raw.get(name) or "")
    for name in _LIST_FIELDS:
        values[name] = [str(v) for v in raw.getlist(name)]
    if values["auth"] not in AUTH_CHOICES:
        values["auth"] = "jwks"
    return values


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _registration(values: dict[str, Any]) -> tuple[ClientRegistration | None, dict[str, str]]:
    """The registration the form describes, or the messages by field of what is wrong (every
    field checked at once, so the officer corrects everything in one go)."""
    errors: dict[str, str] = {}
    auth = values["auth"]
    jwks: dict[str, Any] | None = None
    for name in ("jwks", *_LINES_FIELDS):
        if len(values[name]) > MAX_TEXT:
            errors[name] = _("The value is too long")
    if auth == "jwks" and "jwks" not in errors:
        if not values["jwks"].strip():
            errors["jwks"] = _("Paste the service's public keys (a JWKS document)")
        else:
            try:
                document = json.loads(values["jwks"])
            except ValueError:
                document = None
            if isinstance(document, dict):
                jwks = document
            else:
                errors["jwks"] = _('Not a JWKS document: a JSON object such as {"keys": [...]}')
    if auth == "jwks_uri" and not values["jwks_uri"].strip():
        errors["jwks_uri"] = _("This field is required")
    if not values["grant_types"]:
        errors["grant_types"] = _("Choose at least one")
    if values["client_id"].strip() == "new":  # /identity/clients/new is the form
        errors["client_id"] = _("This client id is reserved: choose another")
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "purpose": values["purpose"].strip(),
        "purpose_en": values["purpose_en"].strip(),
        "client_id": values["client_id"].strip() or None,
        "auth_method": "client_secret_basic" if auth == "secret" else "private_key_jwt",
        "jwks": jwks,
        "jwks_uri": values["jwks_uri"].strip() if auth == "jwks_uri" else "",
        "redirect_uris": _lines(values["redirect_uris"]),
        "post_logout_redirect_uris": _lines(values["post_logout_redirect_uris"]),
        "grant_types": values["grant_types"] or ["authorization_code"],
        "scopes": values["scopes"],
        "claims": values["claims"],
    }
    try:
        registration = ClientRegistration.model_validate(data)
    except ValidationError as exc:
        for name, message in field_errors(exc).items():
            errors.setdefault(name, message)
        registration = None
    for name in _LINES_FIELDS:
        uri, sep, reason = errors.get(name, "").partition(": ")
        if sep and "://" in uri:  # "reason: <uri>" reads better than "<uri>: reason"
            errors[name] = f"{reason}: {uri}"
    for name, minimum in (("name", 2), ("purpose", 5)):
        if data[name] and errors.get(name) == _("This field is required"):
            errors[name] = _("Write at least %(num)d characters") % {"num": minimum}
    return (None if errors else registration), errors


@router.post("/identity/clients/new")
async def client_register(
    request: Request,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
) -> Response:
    raw = await request.form()
    if not _is_admin(officer):
        return _forbidden(request)
    values = _values(raw)
    registration, errors = _registration(values)
    if registration is None:
        return _form(request, values, errors, 422)
    try:
        out = await anyio.to_thread.run_sync(container.clients.register, registration, officer)
    except Forbidden:
        return _forbidden(request)
    except DancuError as exc:
        errors = field_errors(exc)
        if "auth_method" in errors:
            errors["auth"] = errors.pop("auth_method")
        return _form(request, values, errors, exc.status)
    if out.client_secret:
        response = render(request, "identity/client_created.html", {"client": out, **_labels()})
        response.headers.update(NO_STORE)
        return response
    request.session["flash"] = _("The service %(name)s is registered.") % {"name": out.name}
    return RedirectResponse(f"/identity/clients/{out.client_id}", status_code=303)


def _client(container: IdentityNeeds, client_id: str) -> ClientOut | None:
    try:
        return container.clients.details(client_id)
    except NotFound:
        return None


def _not_found(request: Request) -> Response:
    return error_page(request, _("Not found"), _("There is no such client."), 404)


@router.get("/identity/clients/{client_id}")
def client_page(
    request: Request, client_id: str, officer: WebOfficer, container: IdentityDep
) -> Response:
    if not _is_admin(officer):
        return _forbidden(request)
    client = _client(container, client_id)
    if client is None:
        return _not_found(request)
    keys = [k for k in (client.jwks or {}).get("keys", []) if isinstance(k, dict)]
    context = {"client": client, "keys": keys, **_labels()}
    return render(request, "identity/client.html", context)


@router.post("/identity/clients/{client_id}/{action}")
async def client_set_state(
    request: Request,
    client_id: str,
    action: str,
    officer: WebOfficer,
    container: IdentityDep,
    _csrf: CsrfChecked,
) -> Response:
    if not _is_admin(officer):
        return _forbidden(request)
    if action not in ("disable", "enable"):
        return _not_found(request)
    disabled = action == "disable"
    try:
        out = await anyio.to_thread.run_sync(
            container.clients.set_disabled, client_id, disabled, officer
        )
    except NotFound:
        return _not_found(request)
    except Forbidden:
        return _forbidden(request)
    message = (
        _("%(name)s is disabled: it can no longer sign citizens in or obtain tokens.")
        if disabled
        else _("%(name)s is enabled again.")
    )
    request.session["flash"] = message % {"name": out.name}
    return RedirectResponse(f"/identity/clients/{out.client_id}", status_code=303)
