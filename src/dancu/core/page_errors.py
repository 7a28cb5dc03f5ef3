"""Pages answer with pages. A query or path value a page route refuses (a search of 200
characters, ``page=99999``, a path that leads nowhere) gets an error page in the page
language naming the field, with the status the API would give, never the API's JSON
problem details. The API keeps its problem details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from dancu.core.i18n import N_, _
from dancu.core.pages import error_page

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# The names of the pages' query and path fields, as an error message names them. Contexts
# add their own with ``name_fields``.
FIELD_LABELS: dict[str, str] = {
    "q": N_("Search"),
    "page": N_("Page"),
    "personal_id": N_("Personal ID number"),
    "number": N_("Household number"),
    "as_of": N_("Date"),
    "birth_year": N_("Year of birth"),
    "province": N_("Province"),
    "next": N_("Return address"),
}

# pydantic's error types, in words (the limit filled in from the error's context).
_MESSAGES = {
    "string_too_long": N_("at most %(max_length)s characters"),
    "string_too_short": N_("at least %(min_length)s characters"),
    "less_than_equal": N_("at most %(le)s"),
    "less_than": N_("less than %(lt)s"),
    "greater_than_equal": N_("at least %(ge)s"),
    "greater_than": N_("more than %(gt)s"),
    "int_parsing": N_("write a whole number"),
    "int_type": N_("write a whole number"),
    "missing": N_("this field is required"),
    "string_pattern_mismatch": N_("the value does not have the expected form"),
}
_HTTP_TITLES = {
    404: (N_("Page not found"), N_("There is no page at this address.")),
    405: (N_("Not possible here"), N_("This page cannot be used this way.")),
}


def name_fields(labels: dict[str, str]) -> None:
    """Add a context's field names (untranslated msgids) to those error pages use."""
    FIELD_LABELS.update(labels)


def is_page(request: Request) -> bool:
    """A request to a page: a route kept out of the API schema, or an unknown address that
    a browser asked for as a page (not under /api)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        return not route.include_in_schema
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def describe(errors: list[Any]) -> str:
    """The first refused field as "Field: what is wrong", translated."""
    err = errors[0] if errors else {}
    loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "form")]
    name = loc[0] if loc else ""
    label = _(FIELD_LABELS[name]) if name in FIELD_LABELS else name
    template = _MESSAGES.get(str(err.get("type", "")))
    what = _(template) % dict(err.get("ctx") or {}) if template else _("the value is not valid")
    return f"{label}: {what}" if label else what


def install(app: FastAPI) -> None:
    """Route the validation and HTTP errors of page requests to HTML error pages; API
    requests keep the handlers already installed (``install_problem_handlers``)."""
    api_validation: Handler = app.exception_handlers[RequestValidationError]
    api_http: Handler = app.exception_handlers[StarletteHTTPException]

    async def _validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not is_page(request):
            return await _answer(api_validation(request, exc))
        return error_page(request, _("The address is not valid"), describe(list(exc.errors())), 422)

    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not is_page(request) or exc.status_code not in _HTTP_TITLES:
            return await _answer(api_http(request, exc))
        title, message = _HTTP_TITLES[exc.status_code]
        response = error_page(request, _(title), _(message), exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)


async def _answer(result: Response | Awaitable[Response]) -> Response:
    return result if isinstance(result, Response) else await result
