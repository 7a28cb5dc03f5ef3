"""What the electronic identity's pages share: the signed-in citizen (their own session, not
an officer's; ``SignedInCitizen`` as a route's parameter), a form's context with the
development devices' stand-ins, the page policy that lets a form lead back to a service, and
the answer to a service's request refused on the way."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from dancu.core.i18n import _
from dancu.core.pages import Answered, error_page
from dancu.core.web import csp_allowing_form_target
from dancu.identity.deps import IdentityNeeds
from dancu.identity.oidc.par import AuthorizeError


def signed_in_citizen(request: Request) -> dict[str, Any] | None:
    """The citizen signed in on this browser (``oidc.start_session``), or None."""
    citizen = request.session.get("citizen")
    return citizen if isinstance(citizen, dict) else None


CITIZEN_LOGIN = "/account/login"


def to_citizen_login() -> Response:
    """Where a citizen's page sends a visitor who is not signed in."""
    return RedirectResponse(CITIZEN_LOGIN, status_code=303)


def _citizen_required(request: Request) -> dict[str, Any]:
    citizen = signed_in_citizen(request)
    if citizen is None:
        raise Answered(to_citizen_login())
    return citizen


# A citizen's page's parameter (after ``_csrf: CsrfChecked`` on a form, so that a stale form
# is refused first): the signed-in citizen; nobody signed in: to the citizen's sign-in page.
SignedInCitizen = Annotated[dict[str, Any], Depends(_citizen_required)]


def dev_form(
    container: IdentityNeeds, device: str, errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    """A form's context, with ``dev_<device>`` telling whether the development stand-in for
    the device (the camera, the fingerprint scanner) is offered."""
    return {
        "errors": errors,
        "values": values,
        f"dev_{device}": container.settings.identity_adapters == "dev",
    }


def allow_form_to(response: Response, redirect_uri: str) -> Response:
    """Let the page's forms lead to the service at ``redirect_uri`` (a refusal or an approval
    redirects there, which the browser checks against ``form-action``)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect_uri))
    response.headers["content-security-policy"] = csp_allowing_form_target(origin)
    return response


def authorize_refused(request: Request, base: str, exc: AuthorizeError) -> Response:
    """A service's sign-in request refused: it ends, and the refusal goes back to the service
    when its redirect URI is known (``base``: the issuer), else it is shown here."""
    request.session.pop("oidc", None)
    if exc.redirect_uri:
        return RedirectResponse(exc.location(base), status_code=303)
    return error_page(request, _("The request cannot be completed"), exc.description, 400)
