"""What the register's adapters (API, pages, commands) need from the composition root.

See ``dancu.core.deps`` for how adapters receive it; ``bootstrap.Container`` provides it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated, Protocol

from fastapi import Depends

from dancu.core.deps import CoreNeeds, get_container, open_container
from dancu.registry.lookup import PersonLookup
from dancu.registry.service import RegistryService


class RegistryNeeds(CoreNeeds, Protocol):
    @property
    def registry(self) -> RegistryService: ...

    @property
    def person_lookup(self) -> PersonLookup | None:
        """The async PostgreSQL lookup the fast path answers from (None on SQLite)."""
        ...


RegistryDep = Annotated[RegistryNeeds, Depends(get_container)]


def open_registry() -> AbstractContextManager[RegistryNeeds]:
    """For a command: the container, opened for it."""
    return open_container()
