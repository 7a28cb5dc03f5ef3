"""The officers' side of electronic-identity accounts, on both databases: an account's state
as an officer sees it (audited), suspension on a report (devices signed out, refresh tokens
revoked, access tokens listed as revoked), reinstatement (a note, never after a death, and
earlier sessions stay ended), turning off a lost authenticator app, and the correction
requests of the officer's area — scoped to the commune of permanent residence, following a
move, closed as done or refused with the citizen told why. Read-only roles change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pyotp
import pytest
from sqlalchemy import select

from dancu.bootstrap import Container
from dancu.core.access import OfficerContext, Role
from dancu.core.errors import DancuError
from dancu.core.models import AuditEntry
from dancu.core.timeutil import utcnow
from dancu.demo import ba_dinh_family
from dancu.identity import schemas as s
from dancu.identity.clients import ClientRegistration
from dancu.identity.models import Device, RefreshToken, RevokedToken
from dancu.identity.service import IdentityService
from dancu.registry import schemas as rs
from tests.helpers import identity_subscriber, refused

PASSCODE = "482915"
BA_DINH = OfficerContext("badinh", Role.COMMUNE, "01", "00004")
NGOC_HA = OfficerContext("ngocha", Role.COMMUNE, "01", "00008")
HANOI = OfficerContext("hanoi", Role.PROVINCE, "01")
HUE = OfficerContext("hue", Role.PROVINCE, "46")
MINISTRY = OfficerContext("admin", Role.MINISTRY)
DEVICE = s.DeviceSeen(cookie="d" * 43, user_agent="Mozilla/5.0 (X11; Linux x86_64)", ip="::1")


@pytest.fixture
def citizen(container: Container) -> Iterator[tuple[IdentityService, dict[str, str]]]:
    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", PASSCODE, 2)
    yield container.identity, family


def _login(identity: IdentityService, pid: str) -> s.AccountOut:
    return identity.login(s.Login(personal_id=pid, passcode=PASSCODE), DEVICE)


def _tokens_for(container: Container, pid: str) -> tuple[str, str]:
    """A refresh token and the access token issued with it, as a service would hold them
    after a sign-in (rows written the way the token endpoint writes them)."""
    container.clients.register(
        ClientRegistration(
            name="Cổng dịch vụ công",
            purpose="online public services",
            client_id="portal",
            auth_method="client_secret_basic",
            redirect_uris=["http://127.0.0.1:9/cb"],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile"],
        )
    )
    account_id = container.authorizer.account_id(pid)
    now = utcnow()
    with container.sessions() as session, session.begin():
        session.add(
            RefreshToken(
                token_hash="h" * 64,
                family="f1",
                client_id="portal",
                account_id=account_id,
                scope="openid profile",
                attributes=["name"],
                acr="urn:dancu:loa:high",
                access_jti="jti-1",
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    return "h" * 64, "jti-1"


def test_officer_view_shows_state_and_is_audited(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    _login(identity, family["father"])
    view = identity.officer_view(NGOC_HA, family["father"])  # any commune police
    assert (view.account.level, view.account.status) == (2, "active")
    assert view.full_name == "Nguyễn Văn An" and view.person_status == "alive"
    assert view.devices == 1 and view.events[0].kind == "login"
    assert not view.reinstatable
    with container.sessions() as session:
        reads = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "identity.account_read")
        ).all()
    assert [r.actor for r in reads] == ["ngocha"]
    refused(lambda: identity.officer_view(BA_DINH, "12345"), "personal-id-invalid", "personal_id")
    refused(lambda: identity.officer_view(BA_DINH, family["mother"]), "no-account")


def test_suspension_on_a_report_ends_sessions_and_tokens(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    father = family["father"]
    _login(identity, father)
    device = identity.devices(father)[0].id
    assert identity.session_active(father, device)
    refresh_hash, jti = _tokens_for(container, father)

    refused(lambda: identity.suspend_reported(BA_DINH, father, "bored"), "suspension-reason")
    refused(lambda: identity.suspend_reported(HANOI, father, "reported-fraud"), "officer-read-only")
    out = identity.suspend_reported(NGOC_HA, father, "reported-lost-card", "  mất ví\n tại chợ ")
    assert out.status == "suspended"
    refused(lambda: _login(identity, father), "suspended")
    assert not identity.session_active(father, device)
    with container.sessions() as session:
        assert None not in session.scalars(select(Device.revoked_at)).all()
        token = session.get(RefreshToken, refresh_hash)
        assert token is not None and token.revoked_at is not None
        assert session.get(RevokedToken, jti) is not None
    events = identity.officer_view(BA_DINH, father).events
    assert events[0].kind == "suspended"
    assert events[0].detail == "reported-lost-card · mất ví tại chợ · ngocha (00008)"
    refused(
        lambda: identity.suspend_reported(BA_DINH, father, "reported-fraud"), "already-suspended"
    )

    # Reinstated with a note: sign-in works again, the old devices and tokens stay ended.
    refused(lambda: identity.reinstate(BA_DINH, father, "  "), "note-required", "note")
    back = identity.reinstate(BA_DINH, father, "card found, checked in person")
    assert back.status == "active"
    refused(lambda: identity.reinstate(BA_DINH, father, "again"), "not-suspended")
    with container.sessions() as session:
        token = session.get(RefreshToken, refresh_hash)
        assert token is not None and token.revoked_at is not None
    assert _login(identity, father).status == "active"
    assert not identity.session_active(father, device)  # signed out for good
    kinds = [e.kind for e in identity.history(father)]
    assert kinds[:3] == ["login", "reinstated", "suspended"]
    with container.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("identity.%"))
        ).all()
    assert "identity.suspend" in actions and "identity.reinstate" in actions


def test_a_death_cannot_be_reinstated_and_overrides_a_report(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    father = family["father"]
    identity.suspend_reported(BA_DINH, father, "citizen-request")
    subscriber = identity_subscriber(container, "registry.person.died")
    subscriber.deliver()
    container.registry.register_death(
        BA_DINH, rs.DeathRegistration(personal_id=father, death_date=date(2026, 10, 1))
    )
    assert subscriber.deliver() == 1
    view = identity.officer_view(BA_DINH, father)
    assert view.suspended_reason == "deceased" and view.person_status == "deceased"
    assert not view.reinstatable
    refused(lambda: identity.reinstate(BA_DINH, father, "mistake?"), "suspended-deceased")


def test_reinstatement_needs_the_person_alive_in_the_register(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    father = family["father"]
    identity.suspend_reported(BA_DINH, father, "reported-fraud")
    assert identity.officer_view(BA_DINH, father).reinstatable
    container.registry.declare_missing(
        BA_DINH,
        rs.MissingDeclaration(
            personal_id=father, on=date(2026, 9, 1), court_decision="12/2026/QĐ-TA"
        ),
    )
    view = identity.officer_view(BA_DINH, father)
    assert view.person_status == "missing" and not view.reinstatable
    refused(lambda: identity.reinstate(BA_DINH, father, "checked"), "person-not-alive")


def test_turning_off_a_lost_authenticator_app(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    father = family["father"]
    refused(lambda: identity.reset_second_factor(BA_DINH, father), "totp-absent")
    enrolment = identity.start_totp(father)
    identity.confirm_totp(father, pyotp.TOTP(enrolment.secret).now())
    refused(lambda: identity.reset_second_factor(HANOI, father), "officer-read-only")
    out = identity.reset_second_factor(NGOC_HA, father, "phone stolen; card checked")
    assert out.totp_since is None
    assert _login(identity, father).status == "active"  # the passcode alone is enough again
    assert identity.history(father)[1].kind == "totp.reset"


def _move(container: Container, pid: str, commune: str) -> None:
    person = container.registry.get_person(MINISTRY, pid)
    container.registry.change_residence(
        NGOC_HA,  # the destination's police register the move, from her card
        rs.ResidenceChange(
            personal_id=pid,
            moved_on=date(2026, 11, 1),
            commune_code=commune,
            address_line="Số 1 phố Huế",
            full_name=person.full_name,
            birth_date=person.birth_date,
        ),
    )


def test_correction_requests_go_to_the_commune_of_residence(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    identity, family = citizen
    mother = family["mother"]  # not the head of the household: she may move out alone
    identity.provision(mother, "0987654321", "135792", 2)
    asked = identity.request_correction(
        mother,
        s.CorrectionRequestIn(field="full_name", proposed="Nguyễn Văn Ân", reason="birth cert"),
    )
    assert [c.id for c in identity.open_corrections(BA_DINH)] == [asked.id]
    assert [c.id for c in identity.open_corrections(HANOI)] == [asked.id]
    assert [c.id for c in identity.open_corrections(MINISTRY)] == [asked.id]
    assert identity.open_corrections(NGOC_HA) == [] and identity.open_corrections(HUE) == []
    refused(lambda: identity.resolve_correction(NGOC_HA, asked.id, "done"), "no-correction")
    refused(lambda: identity.resolve_correction(HANOI, asked.id, "done"), "officer-read-only")

    # She moves to Ngọc Hà: the request moves with her.
    subscriber = identity_subscriber(container, "registry.residence.changed")
    subscriber.deliver()
    _move(container, mother, "00008")
    assert subscriber.deliver() >= 1
    assert identity.open_corrections(BA_DINH) == []
    moved = identity.open_corrections(NGOC_HA)
    assert [(c.id, c.commune_code) for c in moved] == [(asked.id, "00008")]

    refused(
        lambda: identity.resolve_correction(NGOC_HA, asked.id, "maybe"),
        "correction-outcome",
        "outcome",
    )
    refused(
        lambda: identity.resolve_correction(NGOC_HA, asked.id, "refused", ""),
        "note-required",
        "note",
    )
    closed = identity.resolve_correction(NGOC_HA, asked.id, "refused", "bring the birth cert")
    assert closed.status == "refused" and closed.resolution_note == "bring the birth cert"
    refused(lambda: identity.resolve_correction(NGOC_HA, asked.id, "done"), "correction-closed")
    mine = identity.corrections(mother)
    assert mine[0].status == "refused" and mine[0].resolution_note == "bring the birth cert"
    assert identity.history(mother)[0].kind == "correction.refused"
    assert identity.open_corrections(NGOC_HA) == []


def test_parallel_suspensions_and_reinstatements_of_one_account_leave_one_each(
    container: Container, citizen: tuple[IdentityService, dict[str, str]]
) -> None:
    """Twelve officers suspend the same account at once, then twelve reinstate it: one of each
    succeeds, the others are told it is already done (409), and the history holds one
    suspension and one reinstatement."""
    import threading

    identity, family = citizen
    father = family["father"]

    def race(call: object) -> list[str]:
        outcomes: list[str] = []
        start = threading.Barrier(12)

        def one() -> None:
            start.wait()
            try:
                call()  # type: ignore[operator]
                outcomes.append("ok")
            except DancuError as e:
                outcomes.append(f"{e.status}:{e.code}")

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(outcomes)

    suspended = race(lambda: identity.suspend_reported(BA_DINH, father, "reported-lost-card"))
    assert suspended == ["409:already-suspended"] * 11 + ["ok"]
    reinstated = race(lambda: identity.reinstate(BA_DINH, father, "tìm thấy thẻ"))
    assert reinstated.count("ok") == 1 and len(reinstated) == 12
    assert all(o.startswith("409:") for o in reinstated if o != "ok")
    kinds = [e.kind for e in identity.officer_view(BA_DINH, father).events]
    assert kinds.count("suspended") == 1 and kinds.count("reinstated") == 1
