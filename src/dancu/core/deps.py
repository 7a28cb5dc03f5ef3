"""What core's adapters need from the composition root, and how every context's adapters
reach it.

The composition root (``dancu.bootstrap.Container``, wired by ``app.py`` and ``cli.py``) is
the one place that builds engines and services. No context imports it: each context states,
in its own ``deps.py``, what its adapters use of it as a ``Protocol`` (``CoreNeeds`` here;
``RegistryNeeds``, ``IdentityNeeds``, ``ReconcileNeeds`` there), and receives it through

- ``Annotated[XNeeds, Depends(get_container)]`` in a route (the app puts the container on
  ``app.state.container``), or
- ``with open_container() as container:`` in a CLI command (the ``dancu`` command's callback
  says how to open one, with ``provide``).

The container satisfies every protocol structurally; ``bootstrap.needs_of`` is where mypy
checks that it does. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.officers import TokenSigner
from dancu.core.outbox import OutboxRelay
from dancu.core.settings import Settings
from dancu.core.units import UnitDirectory


class CoreNeeds(Protocol):
    """Core's own adapters (sign-in, officer tokens, schema, audit and outbox commands)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def units(self) -> UnitDirectory: ...

    @property
    def tokens(self) -> TokenSigner: ...

    def outbox_relay(self) -> OutboxRelay: ...


# A coroutine (it never blocks): FastAPI runs plain functions on a worker thread, which would
# cost every request a thread hop.
async def get_container(request: Request) -> Any:
    """The composition root's container, as the application was built with it."""
    return request.app.state.container


CoreDep = Annotated[CoreNeeds, Depends(get_container)]


_factory: Callable[..., AbstractContextManager[Any]] | None = None


def provide(factory: Callable[..., AbstractContextManager[Any]]) -> None:
    """Set how commands open a container (the ``dancu`` command's callback does)."""
    global _factory
    _factory = factory


def open_container(settings: Settings | None = None) -> AbstractContextManager[Any]:
    """A fresh container for one CLI command (built from ``settings`` when given, otherwise
    from the environment), closed when the ``with`` block ends."""
    if _factory is None:
        raise RuntimeError("run the command through the `dancu` command (dancu.cli.app)")
    return _factory() if settings is None else _factory(settings)
