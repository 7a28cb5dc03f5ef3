"""The furniture every context's pages share: the templates (each context adds its own
package), ``render`` with what every page needs, the CSRF token and the form dependency that
checks it, the signed-in officer by role, flash messages, error pages, form errors, and the
menu that contexts add their tabs to.

Contexts register themselves (``register``): their template package, their menu tabs with the
roles that see them, and the page an officer of a role lands on. Core names no context.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import urlsplit

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from dancu import __version__
from dancu.core import formats, i18n
from dancu.core.access import REGISTER_ROLES, WRITERS, OfficerContext, Role
from dancu.core.errors import DancuError
from dancu.core.i18n import N_, _

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
ROLE_LABELS = {
    Role.COMMUNE: N_("Commune officer"),
    Role.PROVINCE: N_("Province officer"),
    Role.MINISTRY: N_("Ministry administrator"),
    Role.AGENCY: N_("Agency officer"),
}


# -- contexts register their pages ------------------------------------------------------------


@dataclass(frozen=True)
class Tab:
    """An entry of the main menu: shown to ``roles`` (and, with ``writers_only``, only to the
    roles that record), current when the page's path starts with ``href`` (the longest such
    entry wins, so ``/reconcile/duplicates`` is not also ``/reconcile``)."""

    label: str  # a message id (N_), translated when the page renders
    href: str
    roles: frozenset[Role]
    writers_only: bool = False

    def shown_to(self, role: Role) -> bool:
        return role in self.roles and (not self.writers_only or role in WRITERS)


@dataclass(frozen=True)
class WebContext:
    """What a context adds to the pages: its page routers, its templates' package
    (``<package>/templates``), its menu tabs, in order, and the page its officers land on by
    role. ``dancu.core.web.add_pages`` installs it."""

    name: str
    templates: str
    routers: tuple[APIRouter, ...] = ()
    tabs: tuple[Tab, ...] = ()
    homes: Mapping[Role, str] = field(default_factory=dict)


_REGISTERED: set[str] = set()
_HOMES: dict[Role, str] = {}
_TABS: list[Tab] = []


def register(context: WebContext) -> None:
    """Add a context's templates, tabs and home pages (once; the first home for a role
    stands). The composition root calls this for every context, in menu order."""
    if context.name in _REGISTERED:
        return
    _REGISTERED.add(context.name)
    add_templates(context.templates)
    _TABS.extend(context.tabs)
    for role, href in context.homes.items():
        _HOMES.setdefault(role, href)


def add_templates(package: str) -> None:
    """Look templates up in ``<package>/templates`` too (once), after those added before.
    ``register`` does it for a context's pages; a renderer outside the site (a report file
    written by a command) calls it itself."""
    if package not in _PACKAGES:
        _PACKAGES.append(package)
        _LOADERS.append(FileSystemLoader(str(files(package) / "templates")))


def home_page(role: Role) -> str:
    """Where an officer of ``role`` lands after signing in."""
    return _HOMES.get(role, "/")


def menu(role: Role, path: str) -> list[tuple[Tab, bool]]:
    """The tabs ``role`` sees, each with whether it is the current page's."""
    tabs = [tab for tab in _TABS if tab.shown_to(role)]
    current = max(
        (tab for tab in tabs if path == tab.href or path.startswith(tab.href.rstrip("/") + "/")),
        key=lambda tab: len(tab.href),
        default=None,
    )
    return [(tab, tab is current) for tab in tabs]


# -- templates --------------------------------------------------------------------------------

_PACKAGES: list[str] = ["dancu.core"]
_LOADERS: list[BaseLoader] = [FileSystemLoader(str(files("dancu.core") / "templates"))]


def _environment() -> Environment:
    env = Environment(
        # The list is shared: contexts registered later are looked up too, in order.
        loader=ChoiceLoader(_LOADERS),
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


# -- sessions, CSRF and the signed-in officer -------------------------------------------------


class LoginRequired(Exception):
    """Raised by ``WebOfficer`` when nobody is signed in; answered with a redirect to login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class CsrfFailed(Exception):
    pass


class Answered(Exception):
    """Raised with the response a page answers with instead of its own: from a dependency
    that sends the visitor elsewhere first (a citizen's page visited by nobody signed in), or
    from a lookup whose miss is a page (an unknown job's "not found")."""

    def __init__(self, response: Response) -> None:
        self.response = response


class WrongRole(Exception):
    """A signed-in officer on a page their role has no use for (an agency's officer on the
    register's pages): a 403 page pointing to their own pages."""

    def __init__(self, home: str) -> None:
        self.home = home


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


async def _form_csrf(request: Request) -> None:
    """The form's ``csrf_token`` field (or the HTMX header) checked against the session's.
    The framework has read the form already when the route has form fields; reading it here
    returns that same form."""
    submitted: Any = None
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        submitted = (await request.form()).get(CSRF_FIELD)
    check_csrf(request, submitted if isinstance(submitted, str) else None)


# A state-changing page route's last parameter (``_csrf: CsrfChecked``): after the officer's
# dependency, so that a visitor who is not signed in is sent to sign in first.
CsrfChecked = Annotated[None, Depends(_form_csrf)]


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


def session_officer(roles: Iterable[Role]) -> Callable[[Request], OfficerContext]:
    """A dependency: the signed-in officer, when their role is one of ``roles`` (otherwise a
    403 page pointing to their own pages; nobody signed in: to the sign-in page)."""
    allowed = frozenset(roles)

    def officer(request: Request) -> OfficerContext:
        ctx = _session_officer(request)
        if ctx.role not in allowed:
            raise WrongRole(home_page(ctx.role))
        return ctx

    return officer


current_web_officer = session_officer(REGISTER_ROLES)
# The signed-in officer of the register's pages (not an agency's officer).
WebOfficer = Annotated[OfficerContext, Depends(current_web_officer)]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what every page needs: the officer, the language, the CSRF token,
    the menu, and the one-shot flash message."""
    data = request.session.get("officer")
    role = Role(data["role"]) if data else None
    values: dict[str, Any] = {
        "request": request,
        "locale": i18n.current_locale.get(),
        "csrf_token": csrf_token(request),
        "officer": data,
        "role_label": _(ROLE_LABELS[role]) if role else "",
        "menu": menu(role, request.url.path) if role else [],
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


def forbidden_page(request: Request, message: str) -> HTMLResponse:
    """A 403 as a page: the officer's role may not do this (``message`` says what it may)."""
    return error_page(request, _("Not allowed"), message, 403)


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


def error_status(exc: ValidationError | DancuError) -> int:
    """The status of a refused form: the domain error's own, 422 for malformed input."""
    return exc.status if isinstance(exc, DancuError) else 422


def translated(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels (message ids by code) in the page's language, for a template to look up."""
    return {code: _(label) for code, label in labels.items()}


def form_values(form: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The submitted fields, blanks as None so defaults apply."""
    values: dict[str, Any] = {}
    for name in fields:
        raw = form.get(name)
        if isinstance(raw, str) and raw.strip():
            values[name] = raw.strip()
    return values
