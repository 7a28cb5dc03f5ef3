"""The citizen's session in the browser: the device cookie that names the browser, and the
check that a session is still allowed to run (its device not revoked, the account active).

A citizen session (``session["citizen"]``, see ``identity.web.oidc.start_session``) carries the id
of the device row its sign-in recorded. ``CitizenSessions``, inside the session middleware,
looks that row up on every request to the citizen's pages (``/account…``) and the OpenID
provider's (``/oidc/…``): when the device was signed out and forgotten from another device,
or the account was suspended, the session ends there. It also sets the device cookie a
sign-in asked for (``device_seen``), since the pages answer with their own responses.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu.identity import schemas as s
from dancu.identity.deps import IdentityNeeds
from dancu.identity.devices import DEVICE_COOKIE, DEVICE_COOKIE_DAYS

_NEW_COOKIE = "dancu_device_cookie"  # request.state key: a device cookie to set
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{32,64}")
CHECKED_PATHS = ("/account", "/oidc/")


def device_seen(request: Request) -> s.DeviceSeen:
    """The browser as a sign-in records it; a browser without a device cookie gets one."""
    cookie = request.cookies.get(DEVICE_COOKIE, "")
    if not _COOKIE_VALUE.fullmatch(cookie):
        cookie = getattr(request.state, _NEW_COOKIE, "") or secrets.token_urlsafe(32)
        setattr(request.state, _NEW_COOKIE, cookie)
    return s.DeviceSeen(
        cookie=cookie,
        user_agent=request.headers.get("user-agent", "")[:500],
        ip=request.client.host if request.client else "",
    )


def current_device(request: Request) -> int | None:
    """The device row id of the signed-in citizen's session, if any."""
    citizen = request.session.get("citizen")
    device = citizen.get("device") if isinstance(citizen, dict) else None
    return device if isinstance(device, int) else None


class CitizenSessions:
    """Pure ASGI middleware (inside ``SessionMiddleware``): ends citizen sessions whose device
    was revoked, and sets the device cookie a sign-in asked for."""

    def __init__(self, app: ASGIApp, container: IdentityNeeds) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if isinstance(session, dict) and str(scope["path"]).startswith(CHECKED_PATHS):
            citizen = session.get("citizen")
            if isinstance(citizen, dict) and isinstance(citizen.get("device"), int):
                active = await anyio.to_thread.run_sync(
                    self.container.identity.session_active,
                    str(citizen.get("personal_id", "")),
                    citizen["device"],
                )
                if not active:
                    session.pop("citizen", None)
        state = scope.setdefault("state", {})
        secure = bool(self.container.settings.secure_cookies)

        async def send_with_cookie(message: Message) -> None:
            cookie = state.get(_NEW_COOKIE)
            if message["type"] == "http.response.start" and cookie:
                jar: SimpleCookie = SimpleCookie()
                jar[DEVICE_COOKIE] = cookie
                morsel = jar[DEVICE_COOKIE]
                morsel["path"] = "/"
                morsel["max-age"] = DEVICE_COOKIE_DAYS * 86400
                morsel["httponly"] = True
                morsel["samesite"] = "lax"
                if secure:
                    morsel["secure"] = True
                header = morsel.OutputString().encode("latin-1")
                message["headers"] = [*message.get("headers", []), (b"set-cookie", header)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
