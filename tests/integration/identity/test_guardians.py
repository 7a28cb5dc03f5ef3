"""Children's accounts held by a parent (Decree 69/2024), on both databases: who may
register one, what it is, and when a parent may act for it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.errors import DancuError
from dancu.core.models import AuditEntry
from dancu.demo import ba_dinh_family
from dancu.identity import schemas as s
from dancu.identity.models import Account


def _code(call: object, *args: object) -> str:
    with pytest.raises(DancuError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code


def test_a_parent_with_level_2_registers_and_acts_for_a_child(container: Container) -> None:
    family = ba_dinh_family(container.registry)
    guardians = container.guardians
    father = container.identity.provision(family["father"], "0912345678", "482915", 1)
    # Level 1 is not enough (Decree 69/2024: the guardian's level-2 account).
    assert _code(guardians.register_child, father.personal_id, family["child"]) == (
        "level2-required"
    )
    mother = container.identity.provision(family["mother"], "0987654321", "135792", 2)
    # Only a parent the register records: the mother is not the father's parent.
    assert _code(guardians.register_child, mother.personal_id, family["father"]) == "not-guardian"
    assert _code(guardians.register_child, mother.personal_id, "001099999999") == "unknown-person"

    ward = guardians.register_child(mother.personal_id, family["child"])
    assert (ward.full_name, ward.level, ward.status) == ("Nguyễn Minh Khôi", 1, "active")
    assert _code(guardians.register_child, mother.personal_id, family["child"]) == (
        "account-exists"
    )
    assert [w.personal_id for w in guardians.wards(mother.personal_id)] == [family["child"]]
    assert guardians.wards(father.personal_id) == []

    # Nobody signs in as the child: the account has no passcode.
    with container.sessions() as session:
        child = session.scalars(select(Account).where(Account.personal_id == family["child"])).one()
        mother_id = session.scalars(
            select(Account.id).where(Account.personal_id == family["mother"])
        ).one()
        assert child.passcode_hash is None and child.guardian_id == mother_id
    assert _code(container.identity.login, s.Login(personal_id=family["child"], passcode="135792"))
    # Only the guardian may act for the child.
    assert guardians.ward_for(mother_id, ward.account_id).personal_id == family["child"]
    father_id = container.authorizer.account_id(father.personal_id)
    assert _code(guardians.ward_for, father_id, ward.account_id) == "not-found"

    with container.sessions() as session:
        assert audit.verify(session).ok
        actions = set(session.scalars(select(AuditEntry.action)))
    assert "identity.ward_register" in actions
