"""What reconciliation's adapters (pages, API, commands) need from the composition root, and
who may use them.

See ``dancu.core.deps`` for how adapters receive it; ``bootstrap.Container`` provides it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends

from dancu.core.access import OfficerContext, Role
from dancu.core.api import api_officer
from dancu.core.deps import CoreNeeds, get_container, open_container
from dancu.core.pages import session_officer
from dancu.core.settings import Settings

if TYPE_CHECKING:  # DuckDB and the pipeline load only when reconciliation is used
    from dancu.reconcile.service import ReconcileService

# Who may use reconciliation: the ministry's data centre and the agencies' officers.
RECONCILE_ROLES = frozenset({Role.MINISTRY, Role.AGENCY})


class ReconcileNeeds(CoreNeeds, Protocol):
    @property
    def reconcile(self) -> ReconcileService: ...


ReconcileDep = Annotated[ReconcileNeeds, Depends(get_container)]
# The signed-in officer of the reconciliation pages.
ReconcileOfficer = Annotated[OfficerContext, Depends(session_officer(RECONCILE_ROLES))]
# The officer of a bearer token, for the reconciliation API.
ApiReconcileOfficer = Annotated[
    OfficerContext,
    Depends(
        api_officer(
            RECONCILE_ROLES, "reconciliation is for the ministry's and the agencies' officers"
        )
    ),
]


def open_reconcile(settings: Settings | None = None) -> AbstractContextManager[ReconcileNeeds]:
    """For a command: the container, opened for it (on ``settings`` when given)."""
    return open_container(settings)
