"""Web plumbing of the pages: the page language, security headers, the officer's signed
session cookie, sign-in and sign-out, and the answers to the page-only exceptions. What the
pages themselves share (render, CSRF, the officer by role, the menu) is in ``pages``.

Pages are server-rendered (Jinja2) and enhanced with HTMX, which is vendored in ``static/``;
no page loads anything from another origin, which the Content-Security-Policy enforces.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu.core import i18n
from dancu.core.access import OfficerContext, Role
from dancu.core.deps import CoreDep, CoreNeeds
from dancu.core.i18n import _
from dancu.core.officers import LoginFailed, authenticate
from dancu.core.pages import (
    Answered,
    CsrfChecked,
    CsrfFailed,
    LoginRequired,
    WebContext,
    WrongRole,
    error_page,
    home_page,
    register,
    render,
    safe_next,
)

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "dancu_session"
LANG_COOKIE = "dancu_lang"
# Pages only: /docs renders Swagger UI, whose assets FastAPI loads from its own CDN setting.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_NO_CSP = ("/docs", "/redoc", "/openapi.json")


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


def add_pages(app: FastAPI, context: WebContext) -> None:
    """A context's pages: its templates, menu tabs and home pages, and its routes."""
    register(context)
    for router_ in context.routers:
        app.include_router(router_)


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


# -- routes -----------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "errors": {}})


@router.post("/login")
def login(
    request: Request,
    container: CoreDep,
    _csrf: CsrfChecked,
    username: Annotated[str, Form(max_length=60)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
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


def _unit_name(container: CoreNeeds, ctx: OfficerContext) -> str:
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
def logout(request: Request, _csrf: CsrfChecked) -> Response:
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

    @app.exception_handler(Answered)
    async def _answered(request: Request, exc: Answered) -> Response:
        return exc.response

    async def _forbidden(request: Request, exc: Exception) -> Response:
        """A 403 page: a role on a page it has no use for, or a form whose token is stale."""
        if isinstance(exc, WrongRole):
            title, message = _("Not for your role"), _("Your role does not use this page.")
            return error_page(request, title, message, 403, home=exc.home)
        title, message = _("The form has expired"), _("Reload the page and submit the form again.")
        return error_page(request, title, message, 403)

    app.add_exception_handler(WrongRole, _forbidden)
    app.add_exception_handler(CsrfFailed, _forbidden)
