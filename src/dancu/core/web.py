"""Web plumbing shared by every context's pages: templates with translations, the page
language, security headers, the officer's signed session cookie, CSRF protection, login and
logout, and the HTML error pages.

Pages are server-rendered (Jinja2) and enhanced with HTMX, which is vendored in ``static/``;
no page loads anything from another origin, which the Content-Security-Policy enforces.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu import __version__
from dancu.core import formats, i18n
from dancu.core.access import REGISTER_ROLES, WRITERS, OfficerContext, Role
from dancu.core.api import ContainerDep
from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _
from dancu.core.officers import LoginFailed, authenticate

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "dancu_session"
LANG_COOKIE = "dancu_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Pages only: /docs renders Swagger UI, whose assets FastAPI loads from its own CDN setting.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_NO_CSP = ("/docs", "/redoc", "/openapi.json")
# Contexts whose templates the pages use, in lookup order.
_TEMPLATE_PACKAGES = ("dancu.core", "dancu.registry", "dancu.identity", "dancu.reconcile")
ROLE_LABELS = {
    Role.COMMUNE: N_("Commune officer"),
    Role.PROVINCE: N_("Province officer"),
    Role.MINISTRY: N_("Ministry administrator"),
    Role.AGENCY: N_("Agency officer"),
}
# Who may use the reconciliation pages: the ministry's data centre and the agencies' officers.
RECONCILE_ROLES = frozenset({Role.MINISTRY, Role.AGENCY})


def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(files(p) / "templates")) for p in _TEMPLATE_PACKAGES]
        ),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.globals["version"] = __version__
    env.filters["dmy"] = formats.dmy
    env.filters["local_time"] = formats.local_time
    env.filters["agency"] = formats.agency_name
    env.globals["in_page_language"] = formats.in_page_language
    env.globals["date_pattern"] = formats.DATE_PATTERN
    env.filters["mask"] = _mask_cmnd
    env.filters["num"] = lambda n: format_decimal(n, locale=i18n.current_locale.get())
    return env


def _mask_cmnd(value: str) -> str:
    return value if len(value) < 6 else value[:3] + "•" * (len(value) - 5) + value[-2:]


templates = _environment()


# -- middleware -------------------------------------------------------------------------------


def csp_allowing_form_target(origin: str) -> str:
    """The pages' policy, with forms also allowed to lead to ``origin`` (a redirect after a
    form post is checked against ``form-action``)."""
    return _CSP.replace("form-action 'self'", f"form-action 'self' {origin}")


def security_headers(path: str, secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (a content security policy except on the API
    documentation pages, which run Swagger UI's inline script; HSTS behind HTTPS)."""
    extra = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if not path.startswith(_NO_CSP):
        extra.append((b"content-security-policy", _CSP.encode()))
    if secure:
        extra.append((b"strict-transport-security", b"max-age=31536000"))
    return extra


class PageContext:
    """Pure ASGI middleware: picks the page language for the request (cookie, then the
    browser's Accept-Language, then the configured default) and adds the security headers
    every response carries."""

    def __init__(self, app: ASGIApp, default_locale: str, secure: bool) -> None:
        self.app = app
        self.default_locale = default_locale
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookie = _cookie(headers.get("cookie", ""), LANG_COOKIE)
        locale = i18n.pick_locale(cookie, headers.get("accept-language"), self.default_locale)
        scope.setdefault("state", {})["locale"] = locale
        token = i18n.current_locale.set(locale)
        extra = security_headers(str(scope["path"]), self.secure)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                # A page may set its own policy (the OpenID consent page lets its form lead
                # to the client's redirect URI); the default fills in the rest.
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            i18n.current_locale.reset(token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _sep, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def install(app: FastAPI) -> None:
    """Add the page middleware to ``app`` (sessions inside, page context outside)."""
    settings = app.state.container.settings
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(
        PageContext, default_locale=settings.default_locale, secure=settings.secure_cookies
    )


# -- sessions, CSRF and the signed-in officer -------------------------------------------------


class LoginRequired(Exception):
    """Raised by ``WebOfficer`` when nobody is signed in; answered with a redirect to login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Reject a state-changing request whose token does not match the session's."""
    expected = request.session.get("csrf")
    given = submitted or request.headers.get(CSRF_HEADER)
    if not expected or not given or not hmac.compare_digest(str(expected), given):
        raise CsrfFailed


class CsrfFailed(Exception):
    pass


class WrongRole(Exception):
    """A signed-in officer on a page their role has no use for (an agency's officer on the
    register's pages): a 403 page pointing to their own pages."""

    def __init__(self, home: str) -> None:
        self.home = home


def _session_officer(request: Request) -> OfficerContext:
    data = request.session.get("officer")
    if not data:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return OfficerContext(
        data["username"],
        Role(data["role"]),
        data["province"],
        data["commune"],
        agency=data.get("agency", ""),
    )


def home_page(role: Role) -> str:
    return "/reconcile" if role is Role.AGENCY else "/registry/search"


def current_web_officer(request: Request) -> OfficerContext:
    """The signed-in officer of the register's pages (not an agency's officer)."""
    ctx = _session_officer(request)
    if ctx.role not in REGISTER_ROLES:
        raise WrongRole(home_page(ctx.role))
    return ctx


def current_reconcile_officer(request: Request) -> OfficerContext:
    """The signed-in officer of the reconciliation pages (ministry or agency)."""
    ctx = _session_officer(request)
    if ctx.role not in RECONCILE_ROLES:
        raise WrongRole(home_page(ctx.role))
    return ctx


WebOfficer = Annotated[OfficerContext, Depends(current_web_officer)]
ReconcileOfficer = Annotated[OfficerContext, Depends(current_reconcile_officer)]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what every page needs: the officer, the language, the CSRF token,
    and the one-shot flash message."""
    data = request.session.get("officer")
    values: dict[str, Any] = {
        "request": request,
        "locale": i18n.current_locale.get(),
        "csrf_token": csrf_token(request),
        "officer": data,
        "role_label": _(ROLE_LABELS[Role(data["role"])]) if data else "",
        # The menu offers only what the role may do (a province officer reads, never records).
        "can_record": data is not None and Role(data["role"]) in WRITERS,
        "flash": request.session.pop("flash", None),
        "path": request.url.path,
        "is_htmx": request.headers.get("hx-request") == "true",
    }
    values.update(context or {})
    html = templates.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code)


def error_page(
    request: Request, title: str, message: str, status_code: int, home: str | None = None
) -> HTMLResponse:
    """An error as a page (the API answers problem details instead), with a way back to the
    officer's own pages."""
    data = request.session.get("officer")
    back = home or (home_page(Role(data["role"])) if data else "/login")
    context = {"title": title, "message": message, "home": back}
    return render(request, "error.html", context, status_code=status_code)


def not_found_page(request: Request, message: str) -> HTMLResponse:
    """A 404 as a page: unknown and out-of-area records give the same one (no oracle)."""
    return error_page(request, _("Not found"), message, 404)


def flash(request: Request, message: str) -> None:
    request.session["flash"] = message


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# -- form errors ------------------------------------------------------------------------------

_FIELD_PREFIX = re.compile(r"^([a-z_]+): (.+)$")
_PYDANTIC_MESSAGES = {
    "missing": N_("This field is required"),
    "string_too_short": N_("This field is required"),
    "date_from_datetime_parsing": N_("Write a date as dd/mm/yyyy"),
    "date_parsing": N_("Write a date as dd/mm/yyyy"),
    "date_type": N_("Write a date as dd/mm/yyyy"),
    "literal_error": N_("Choose one of the options"),
    "string_pattern_mismatch": N_("The value does not have the expected form"),
    "string_too_long": N_("The value is too long"),
    "int_parsing": N_("Write a whole number"),
    "extra_forbidden": N_("Unexpected field"),
}


# Domain messages that carry a value, as their catalogue entries write them.
_WITH_VALUES = (
    (re.compile(r"unknown province code (?P<code>\S+)"), N_("unknown province code %(code)s")),
    (
        re.compile(r"it encodes the birth year (?P<year>\d+)"),
        N_("it encodes the birth year %(year)s"),
    ),
)


def translate(message: str) -> str:
    """A message from the domain, translated; "reason: detail" messages built at run time
    are translated part by part, and those carrying a value (a code, a year) by pattern."""
    translated = _(message)
    if translated != message:
        return translated
    if ": " in message:
        head, _sep, tail = message.partition(": ")
        return f"{_(head)}: {translate(tail)}"
    for pattern, msgid in _WITH_VALUES:
        if found := pattern.fullmatch(message):
            return _(msgid) % found.groupdict()
    return translated


def field_errors(exc: ValidationError | DancuError) -> dict[str, str]:
    """Translated messages by form field, from a pydantic error or a domain error."""
    if isinstance(exc, DancuError):
        return {exc.field or "_form": translate(exc.message)}
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        message = str(err.get("msg", ""))
        if err["type"] == "value_error":
            # Model-level rules name their field as a prefix: "death_date: ...".
            message = translate(message.removeprefix("Value error, "))
            found = _FIELD_PREFIX.match(message)
            if found and not loc:
                loc, message = [found[1]], found[2]
        else:
            message = _(_PYDANTIC_MESSAGES.get(err["type"], message))
        out.setdefault(loc[0] if loc else "_form", message)
    return out


def form_values(form: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The submitted fields, blanks as None so defaults apply."""
    values: dict[str, Any] = {}
    for name in fields:
        raw = form.get(name)
        if isinstance(raw, str) and raw.strip():
            values[name] = raw.strip()
    return values


# -- routes -----------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "errors": {}})


@router.post("/login")
def login(
    request: Request,
    container: ContainerDep,
    username: Annotated[str, Form(max_length=60)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    errors: dict[str, str] = {}
    if not username.strip():
        errors["username"] = _("This field is required")
    if not password:
        errors["password"] = _("This field is required")
    if not errors:
        try:
            _officer, ctx = authenticate(
                container.sessions, container.units, username.strip(), password
            )
        except LoginFailed as exc:
            errors["_form"] = _(exc.message)
        else:
            request.session.clear()  # a fresh session (and CSRF token) on sign-in
            request.session["officer"] = {
                "username": ctx.username,
                "role": ctx.role.value,
                "province": ctx.province_code,
                "commune": ctx.commune_code,
                "agency": ctx.agency,
                "unit": _unit_name(container, ctx),
            }
            target = safe_next(next)
            if target == "/":
                target = home_page(ctx.role)
            return RedirectResponse(target, status_code=303)
    return render(
        request,
        "login.html",
        {"next": safe_next(next), "errors": errors, "username": username},
        status_code=422,
    )


def _unit_name(container: Any, ctx: OfficerContext) -> str:
    units = container.units
    if ctx.role is Role.AGENCY:
        return ctx.agency.upper()
    if ctx.commune_code:
        unit = units.get("2025", "commune", ctx.commune_code)
    elif ctx.province_code:
        unit = units.get("2025", "province", ctx.province_code)
    else:
        return _("Nationwide")
    return str(units.label(unit)) if unit else ctx.unit_label


@router.post("/logout")
def logout(
    request: Request,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    """Set the page language (a cookie) and go back where the officer was."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in i18n.LOCALES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/")
def home(request: Request) -> Response:
    data = request.session.get("officer")
    target = home_page(Role(data["role"])) if data else "/login"
    return RedirectResponse(target, status_code=303)


def install_page_errors(app: FastAPI) -> None:
    """HTML answers for the page-only exceptions."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        url = "/login?next=" + quote(exc.next_url, safe="/")
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    @app.exception_handler(WrongRole)
    async def _role(request: Request, exc: WrongRole) -> Response:
        return error_page(
            request,
            _("Not for your role"),
            _("Your role does not use this page."),
            403,
            home=exc.home,
        )

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return error_page(
            request,
            _("The form has expired"),
            _("Reload the page and submit the form again."),
            403,
        )
