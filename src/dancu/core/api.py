"""HTTP plumbing shared by every context's JSON API: RFC 9457 problem details, the officer
of a bearer token by role, and the request guards (NUL characters, body size)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu.core.access import REGISTER_ROLES, OfficerContext, Role
from dancu.core.deps import CoreDep
from dancu.core.errors import DancuError, Unauthorized
from dancu.core.officers import officer_from_token

PROBLEM = "application/problem+json"
BEARER_CHALLENGE = 'Bearer realm="dancu"'
_bearer = HTTPBearer(auto_error=False)


def problem(
    status: int, code: str, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {
        "type": f"https://dancu.example/problems/{code}",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class Problem(BaseModel):
    """RFC 9457 problem details: how the API answers every refusal. ``errors`` names the
    fields at fault (``field``, ``message``)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem details a route answers with (``responses=``)."""
    schema = Problem.model_json_schema()
    return {
        status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM: {"schema": schema}}}
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DancuError)
    async def _domain(request: Request, exc: DancuError) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
        response = problem(exc.status, exc.code, exc.message, errors=errors)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                "message": e["msg"].removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        return problem(422, "invalid", "the request has invalid fields", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http-error", str(exc.detail))


def api_officer(roles: Iterable[Role], refusal: str) -> Callable[..., Awaitable[OfficerContext]]:
    """A dependency: the officer a bearer token (``dancu officer token``) was issued to,
    when their role is one of ``roles`` (otherwise 403 with ``refusal``; no token, or an
    expired or forged one, 401). The register's fast path checks with the same function."""
    allowed = frozenset(roles)

    # A coroutine (it never blocks): FastAPI runs plain functions on a worker thread, which
    # would cost every request a thread hop.
    async def officer(
        container: CoreDep,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> OfficerContext:
        token = creds.credentials if creds is not None else None
        return officer_from_token(container.tokens, token, allowed, refusal)

    return officer


# The officer of the register's API (an agency's officers have no access to the register).
ApiOfficer = Annotated[
    OfficerContext,
    Depends(api_officer(REGISTER_ROLES, "this token's role has no access to the register")),
]


class RefuseNul:
    """Refuse a request whose path or query string holds a NUL character (``%00``) with 422,
    before anything reads it: PostgreSQL text cannot hold U+0000, so such a value would fail
    in the database (a 500) wherever it reached it, or fail a whole group of audit entries.
    Bodies are checked where they are parsed (the input schemas)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("query_string", b"")
            or "\x00" in scope.get("path", "")
            or b"%00" in (scope.get("raw_path") or b"")
        ):
            path: str = scope.get("path", "")
            if path.startswith(_MACHINE_PATHS):
                response: Response = problem(
                    422, "invalid", "the request holds a NUL character (%00)"
                )
            else:
                response = HTMLResponse(_NUL_PAGE, status_code=422)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


_MACHINE_PATHS = ("/api/", "/oidc/", "/.well-known/", "/openapi.json")
# Nobody types a NUL into a page: a plain page in both languages is enough for a browser.
_NUL_PAGE = (
    '<!doctype html><html lang="vi"><meta charset="utf-8"><title>Yêu cầu không hợp lệ</title>'
    "<h1>Yêu cầu không hợp lệ</h1><p>Địa chỉ chứa ký tự không được phép.</p>"
    '<p lang="en">Invalid request: the address holds a character that is not allowed.</p>'
    '<p><a href="/">Trang chủ / Home</a></p></html>'
)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced by
    Content-Length or streamed in chunks, before the application buffers them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, refused = 0, False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                # Answer now: the framework may turn the exception below into its own 400.
                refused = True
                await self._refuse(scope, receive, send)
                raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(_TooLarge):  # the 413 has been sent already
            await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        mib = self.limit / 1024 / 1024
        response = problem(413, "too-large", f"the request is larger than {mib:g} MiB")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
