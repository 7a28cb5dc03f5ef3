"""The electronic identity's pages: the OpenID provider's sign-in and consent (``oidc``), the
citizen's account (``account``), sign-in security (``security``) and children
(``guardians``), and the officers' pages for level 2 (``level2``), e-ID accounts and
correction requests (``officers``) and connected services (``clients``). ``WEB`` is what
the context adds to the site."""

from __future__ import annotations

from dancu.core.access import REGISTER_ROLES, Role
from dancu.core.i18n import N_
from dancu.core.pages import Tab, WebContext
from dancu.identity.web import account, clients, guardians, level2, officers, oidc, security

WEB = WebContext(
    name="identity",
    templates="dancu.identity",
    routers=(
        oidc.router,
        account.router,
        security.router,
        level2.router,
        clients.router,
        guardians.router,
        officers.router,
    ),
    tabs=(
        Tab(N_("e-ID level 2"), "/identity/level2", REGISTER_ROLES, writers_only=True),
        Tab(N_("e-ID accounts"), "/identity/accounts", REGISTER_ROLES),
        Tab(N_("Correction requests"), "/identity/corrections", REGISTER_ROLES),
        Tab(N_("Connected services"), "/identity/clients", frozenset({Role.MINISTRY})),
    ),
)
