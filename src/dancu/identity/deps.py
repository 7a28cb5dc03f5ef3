"""What the electronic identity's adapters (the citizen's and officers' pages, the OpenID
provider, the API and the commands) need from the composition root.

See ``dancu.core.deps`` for how adapters receive it; ``bootstrap.Container`` provides it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated, Protocol

import anyio
from fastapi import Depends

from dancu.core.deps import CoreNeeds, get_container, open_container
from dancu.identity.clients import ClientRegistry
from dancu.identity.guardians import GuardianService
from dancu.identity.keys import KeyRing
from dancu.identity.oidc.authorizer import Authorizer
from dancu.identity.oidc.dpop import DPoPVerifier
from dancu.identity.oidc.fast_token import FastTokenEndpoint
from dancu.identity.oidc.tokens import TokenEndpoint
from dancu.identity.service import IdentityService


class IdentityNeeds(CoreNeeds, Protocol):
    @property
    def identity(self) -> IdentityService: ...

    @property
    def guardians(self) -> GuardianService: ...

    @property
    def clients(self) -> ClientRegistry: ...

    @property
    def keyring(self) -> KeyRing: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def oidc_tokens(self) -> TokenEndpoint: ...

    @property
    def dpop(self) -> DPoPVerifier: ...

    @property
    def fast_token(self) -> FastTokenEndpoint | None:
        """The event-loop token endpoint (None on SQLite)."""
        ...

    @property
    def oauth_limiter(self) -> anyio.CapacityLimiter: ...


IdentityDep = Annotated[IdentityNeeds, Depends(get_container)]


def open_identity() -> AbstractContextManager[IdentityNeeds]:
    """For a command: the container, opened for it."""
    return open_container()
