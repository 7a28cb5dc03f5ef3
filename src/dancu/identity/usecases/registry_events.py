"""The register's events as they touch accounts: a death suspends the account, and so does a
merge of the record into another (undoing the merge lifts that); a move of permanent
residence moves the person's open correction requests to the new commune's officers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import Actor, Entry, record_change
from dancu.core.db import write_session
from dancu.identity.usecases.corrections import Corrections
from dancu.identity.usecases.officer_actions import OfficerActions, lift_suspension
from dancu.identity.usecases.shared import DECEASED, MERGED, People, find_account, subject

_SYSTEM_ACTOR = Actor("system", "system", "", "registry-events")


class RegistryEvents:
    def __init__(
        self,
        factory: sessionmaker[Session],
        people: People,
        officers: OfficerActions,
        corrections: Corrections,
    ) -> None:
        self.factory, self.people = factory, people
        self.officers, self.corrections = officers, corrections

    def on_registry_event(self, topic: str, payload: dict[str, object]) -> None:
        """Consumer of the register's events: a death suspends the account, and so does a
        merge of the record into another (undoing the merge lifts that); a move of permanent
        residence moves the person's open correction requests to the new commune's
        officers."""
        if topic == "registry.person.died":
            self.officers.suspend(str(payload["personal_id"]), DECEASED, _SYSTEM_ACTOR)
        elif topic == "registry.person.merged":
            self.officers.suspend(str(payload["merged_personal_id"]), MERGED, _SYSTEM_ACTOR)
        elif topic == "registry.person.unmerged":
            self._lift_merge(str(payload["merged_personal_id"]))
        elif topic == "registry.residence.changed" and payload.get("kind") == "permanent":
            self.corrections.move(str(payload["personal_id"]), str(payload["commune_code"]))

    def _lift_merge(self, personal_id: str) -> None:
        """The merge of the record was undone: lift the suspension it caused, when the
        register holds the person again under this number and alive (idempotent)."""
        person = self.people.registered(personal_id)
        if person is None or person.personal_id != personal_id or person.status != "alive":
            return
        with write_session(self.factory) as session:
            account = find_account(session, personal_id, lock=True)
            if account is None or (account.status, account.suspended_reason) != (
                "suspended",
                MERGED,
            ):
                return
            lift_suspension(session, account, "merge undone")
            record_change(
                session, Entry(_SYSTEM_ACTOR, "identity.reinstate", subject(account), MERGED)
            )
