"""Electronic identity accounts on both databases: level-1 self-registration with face
check and SMS code, sign-in with lockout, passcode reset, level-2 activation by an officer,
suspension when the register records a death. Every refusal carries a stable code and
leaves nothing behind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError
from dancu.core.timeutil import utcnow
from dancu.demo import ba_dinh_family
from dancu.identity import schemas as s
from dancu.identity.models import Account, OtpChallenge
from dancu.identity.ports import MemorySms, synthetic_selfie
from dancu.identity.service import IdentityService
from dancu.registry import schemas as rs
from tests.helpers import identity_subscriber, refused, resident

PASSCODE = "482915"
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
HANOI = OfficerContext("hanoi", Role.PROVINCE, "01")
BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")


@pytest.fixture
def setup(container: Container) -> Iterator[tuple[IdentityService, MemorySms, dict[str, str]]]:
    sms = MemorySms()
    container.sms = sms  # type: ignore[misc]
    family = ba_dinh_family(container.registry)
    yield container.identity, sms, family


def _selfie(container: Container, personal_id: str) -> bytes:
    return synthetic_selfie(container.settings.resolved_secret_key, personal_id)


def _code(sms: MemorySms) -> str:
    match = re.search(r"\b(\d{6})\b", sms.sent[-1][1])
    assert match, sms.sent[-1]
    return match.group(1)


def _accounts(container: Container) -> int:
    with container.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Account)) or 0)


def _start(
    identity: IdentityService, container: Container, pid: str, phone: str = "0912 345 678"
) -> s.Challenge:
    """Start a registration of ``pid`` with an email address and the person's own selfie."""
    return identity.start_registration(
        s.Registration(
            personal_id=pid, phone=phone, email="An@Example.vn", selfie=_selfie(container, pid)
        )
    )


def _register(identity: IdentityService, sms: MemorySms, container: Container, pid: str) -> None:
    challenge = _start(identity, container, pid)
    identity.confirm_registration(
        s.Confirmation(challenge_id=challenge.challenge_id, code=_code(sms), passcode=PASSCODE)
    )


def test_level1_registration_confirms_the_phone_and_signs_in(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father = family["father"]
    challenge = _start(identity, container, father, "0912.345.678")
    assert challenge.phone_hint == "+84••••••678"
    assert sms.sent[-1][0] == "+84912345678"
    assert identity.account(father).status == "pending"
    refused(
        lambda: identity.login(s.Login(personal_id=father, passcode=PASSCODE)), "bad-credentials"
    )

    account = identity.confirm_registration(
        s.Confirmation(challenge_id=challenge.challenge_id, code=_code(sms), passcode=PASSCODE)
    )
    assert (account.level, account.status, account.email) == (1, "active", "an@example.vn")
    assert identity.login(s.Login(personal_id=father, passcode=PASSCODE)).level == 1
    kinds = [e.kind for e in identity.history(father)]
    assert kinds == ["login", "registration.completed", "registration.started"]
    with container.sessions() as session:
        report = audit.verify(session)
        hashes = session.scalars(select(Account.passcode_hash)).all()
    assert report.ok
    assert all(h and h.startswith("$argon2id$") and PASSCODE not in h for h in hashes)


def test_registration_refusals_create_nothing(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, _sms, family = setup

    def attempt(pid: str, selfie_of: str | None = None) -> object:
        return lambda: identity.start_registration(
            s.Registration(
                personal_id=pid, phone="0912345678", selfie=_selfie(container, selfie_of or pid)
            )
        )

    refused(attempt(family["father"], selfie_of=family["mother"]), "face-mismatch", "selfie")
    refused(attempt(family["child"]), "too-young", "personal_id")
    refused(attempt(family["grandmother"]), "person-deceased", "personal_id")
    refused(attempt("001099999999"), "unknown-person", "personal_id")
    new = container.registry.reestablish_id(
        BA_DINH,
        rs.IDReestablishment(
            personal_id=family["mother"], on=date(2026, 2, 1), reason="cấp lại số"
        ),
    )
    refused(attempt(family["mother"], selfie_of=new), "replaced-number", "personal_id")
    assert _accounts(container) == 0
    with pytest.raises(ValueError, match="mobile number"):
        s.Registration(personal_id=new, phone="12345", selfie=b"x")


def test_one_time_codes_are_single_use_counted_and_expire(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father = family["father"]

    def start() -> s.Challenge:
        return identity.start_registration(
            s.Registration(
                personal_id=father, phone="0912345678", selfie=_selfie(container, father)
            )
        )

    def confirm(challenge: s.Challenge, code: str, passcode: str = PASSCODE) -> object:
        return lambda: identity.confirm_registration(
            s.Confirmation(challenge_id=challenge.challenge_id, code=code, passcode=passcode)
        )

    first = start()
    good = _code(sms)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    refused(confirm(first, good, "111111"), "weak-passcode", "passcode")
    refused(confirm(first, good, "234567"), "weak-passcode", "passcode")
    for _ in range(5):
        refused(confirm(first, wrong), "otp-wrong", "code")
    refused(confirm(first, good), "otp-exhausted", "code")  # counted across calls

    second = start()  # a new code replaces the old one
    refused(confirm(first, good), "otp-used", "code")
    with container.sessions() as session, session.begin():
        session.execute(
            update(OtpChallenge)
            .where(OtpChallenge.id == second.challenge_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    refused(confirm(second, _code(sms)), "otp-expired", "code")

    third = start()
    code = _code(sms)
    assert (
        identity.confirm_registration(
            s.Confirmation(challenge_id=third.challenge_id, code=code, passcode=PASSCODE)
        ).status
        == "active"
    )
    refused(confirm(third, code), "otp-used", "code")
    assert _accounts(container) == 1


def test_wrong_passcodes_lock_the_account_with_back_off(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father = family["father"]
    _register(identity, sms, container, father)

    def login(passcode: str) -> object:
        return lambda: identity.login(s.Login(personal_id=father, passcode=passcode))

    unknown = refused(
        lambda: identity.login(s.Login(personal_id="001099999999", passcode="1")), "bad-credentials"
    )
    for _ in range(4):
        wrong = refused(login("000001"), "bad-credentials")
        assert wrong.message == unknown.message  # no telling accounts apart
    locked = refused(login("000001"), "locked")
    assert locked.status == 429
    refused(login(PASSCODE), "locked")  # even the right passcode waits
    with container.sessions() as session:
        account = session.scalars(select(Account)).one()
        first_lock = account.locked_until
        assert first_lock is not None
        assert timedelta(minutes=4) < first_lock - utcnow() <= timedelta(minutes=5)

    with container.sessions() as session, session.begin():  # the lock runs out
        session.execute(update(Account).values(locked_until=utcnow() - timedelta(seconds=1)))
    refused(login("000002"), "locked")  # one more failure: locked again, twice as long
    with container.sessions() as session:
        until = session.scalars(select(Account.locked_until)).one()
        assert until is not None and until - utcnow() > timedelta(minutes=9)

    with container.sessions() as session, session.begin():
        session.execute(update(Account).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert identity.login(s.Login(personal_id=father, passcode=PASSCODE)).locked_until is None
    kinds = [e.kind for e in identity.history(father)]
    assert kinds.count("login.failed") == 6 and kinds.count("locked") == 2


def test_passcode_reset_needs_the_phone_on_file(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father = family["father"]
    _register(identity, sms, container, father)
    sent = len(sms.sent)
    assert identity.start_reset(s.ResetRequest(personal_id=father, phone="0987654321")) is None
    assert len(sms.sent) == sent  # nothing sent to a phone that is not on file
    challenge = identity.start_reset(s.ResetRequest(personal_id=father, phone="0912345678"))
    assert challenge is not None
    identity.finish_reset(
        s.Confirmation(challenge_id=challenge.challenge_id, code=_code(sms), passcode="730518")
    )
    refused(
        lambda: identity.login(s.Login(personal_id=father, passcode=PASSCODE)), "bad-credentials"
    )
    assert identity.login(s.Login(personal_id=father, passcode="730518")).status == "active"


def test_level2_in_person_anywhere_by_commune_police(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father, mother = family["father"], family["mother"]
    _register(identity, sms, container, father)
    scan = b"fingerprint-scan-" * 8

    def activate(ctx: OfficerContext, pid: str, card: str, phone: str | None = None) -> object:
        return lambda: identity.activate_level2(
            ctx,
            s.Level2Activation(
                personal_id=pid, card_personal_id=card, fingerprint_scan=scan, phone=phone
            ),
        )

    with pytest.raises(DancuError) as province:
        activate(HANOI, father, father)()  # type: ignore[operator]
    assert province.value.status == 403
    refused(activate(NGOC_HA, father, mother), "card-mismatch", "card_personal_id")
    # Ngọc Hà's police activate a Ba Đình resident: level 2 is done regardless of residence.
    account = activate(NGOC_HA, father, father)()  # type: ignore[operator]
    assert account.level == 2 and account.status == "active"  # type: ignore[attr-defined]
    assert identity.login(s.Login(personal_id=father, passcode=PASSCODE)).level == 2

    # Without an account: one is made at level 2; the citizen sets a passcode from the SMS.
    with pytest.raises(DancuError) as no_phone:
        activate(NGOC_HA, mother, mother)()  # type: ignore[operator]
    assert no_phone.value.field == "phone"
    pending = activate(NGOC_HA, mother, mother, "0399 123 456")()  # type: ignore[operator]
    assert (pending.level, pending.status) == (2, "pending")  # type: ignore[attr-defined]
    with container.sessions() as session:
        challenge_id = session.scalars(
            select(OtpChallenge.id).order_by(OtpChallenge.id.desc()).limit(1)
        ).one()
    identity.finish_reset(
        s.Confirmation(challenge_id=challenge_id, code=_code(sms), passcode="905172")
    )
    assert identity.login(s.Login(personal_id=mother, passcode="905172")).level == 2
    with container.sessions() as session:
        refs = session.scalars(select(Account.fingerprint_ref)).all()
    assert all(len(r) == 64 for r in refs)  # a reference, not the scan


def test_a_recorded_death_suspends_the_account(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, sms, family = setup
    father = family["father"]
    _register(identity, sms, container, father)
    subscriber = identity_subscriber(container, "registry.person.died")
    subscriber.deliver()  # the grandmother's death (no account): nothing to suspend
    container.registry.register_death(
        BA_DINH, rs.DeathRegistration(personal_id=father, death_date=date(2026, 10, 1))
    )
    assert subscriber.deliver() == 1
    assert subscriber.deliver() == 0  # the cursor moved
    assert identity.account(father).status == "suspended"
    refused(lambda: identity.login(s.Login(personal_id=father, passcode=PASSCODE)), "suspended")
    assert identity.on_registry_event("registry.person.died", {"personal_id": father}) is None
    assert [e.kind for e in identity.history(father)].count("suspended") == 1  # once only


def test_a_merged_record_suspends_its_account_until_the_merge_is_undone(
    container: Container, setup
) -> None:  # type: ignore[no-untyped-def]
    identity, _sms, family = setup
    father = family["father"]
    again = container.registry.register_person(
        BA_DINH,
        resident(
            "Nguyễn Văn An", date(1988, 3, 14), "M", date(2020, 1, 1), birth_commune_code="00001"
        ),
    )
    identity.provision(again, "0912345678", PASSCODE, 1)
    subscriber = identity_subscriber(
        container, "registry.person.merged", "registry.person.unmerged"
    )
    merge = container.registry.merge_persons(BA_DINH, father, again, "registered twice")
    assert subscriber.deliver() == 1
    view = identity.officer_view(BA_DINH, again)
    assert (view.account.status, view.suspended_reason) == ("suspended", "merged")
    assert view.current_personal_id == father and not view.reinstatable
    refused(lambda: identity.login(s.Login(personal_id=again, passcode=PASSCODE)), "suspended")
    refused(lambda: identity.reinstate(BA_DINH, again, "by hand?"), "suspended-merged")
    container.registry.unmerge(BA_DINH, merge.id, "two people after all")
    assert subscriber.deliver() == 1
    assert identity.account(again).status == "active"
    assert identity.login(s.Login(personal_id=again, passcode=PASSCODE)).level == 1
    identity.on_registry_event("registry.person.unmerged", {"merged_personal_id": again})
    kinds = [e.kind for e in identity.history(again)]
    assert kinds.count("suspended") == kinds.count("reinstated") == 1  # once each


def test_provisioned_accounts_for_demos(container: Container, setup) -> None:  # type: ignore[no-untyped-def]
    identity, _sms, family = setup
    account = identity.provision(family["father"], "0912345678", PASSCODE, 2)
    assert (account.level, account.status) == (2, "active")
    refused(
        lambda: identity.provision(family["father"], "0912345678", PASSCODE, 2), "account-exists"
    )
    refused(lambda: identity.provision(family["child"], "0912345678", PASSCODE, 2), "too-young")
    assert identity.provision(family["child"], "0912345678", "620471", 1).level == 1
