"""Authentication factors and the citizen's own records, on both databases: the authenticator
app (TOTP, RFC 6238) as second factor — enrolment confirmed by a first code, the secret sealed
at rest, one step of drift, no replay, wrong codes counted towards the passcode lockout —,
the devices signed in with and their revocation, the paginated login history, and requests
to correct the register."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from dancu.bootstrap import Container
from dancu.core import audit
from dancu.core.models import AuditEntry
from dancu.core.settings import Settings
from dancu.core.timeutil import FixedClock, utcnow
from dancu.demo import ba_dinh_family
from dancu.identity import schemas as s
from dancu.identity.devices import describe_agent, mask_ip
from dancu.identity.models import Account, Device
from dancu.identity.service import IdentityService
from dancu.identity.usecases.shared import PASSCODE_HASHER, REGISTRY_CONTEXT
from dancu.identity.usecases.signin import TICKET_TTL, SecondFactorRequired
from tests.helpers import refused

PASSCODE = "482915"
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
LAPTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE = s.DeviceSeen(cookie="p" * 43, user_agent=PHONE_UA, ip="203.0.113.77")
LAPTOP = s.DeviceSeen(cookie="l" * 43, user_agent=LAPTOP_UA, ip="2001:db8:1:2::5")


@pytest.fixture
def citizen(container: Container) -> Iterator[tuple[IdentityService, str]]:
    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", PASSCODE, 2)
    yield container.identity, family["father"]


@pytest.fixture
def frozen(clock: FixedClock) -> datetime:
    """The clock stopped in the middle of a 30-second step (codes computed for neighbouring
    steps cannot straddle a boundary), no earlier than the real time: what the fixtures did
    before it stays in the past."""
    now = clock.now().replace(microsecond=0) + timedelta(seconds=1)
    now += timedelta(seconds=(15 - now.second % 30) % 30)
    clock.set(now)
    return now


def _enrol(identity: IdentityService, pid: str, at: datetime | None = None) -> pyotp.TOTP:
    enrolment = identity.start_totp(pid)
    totp = pyotp.TOTP(enrolment.secret)
    identity.confirm_totp(pid, totp.at(at or utcnow()))
    return totp


def _login(identity: IdentityService, pid: str, passcode: str = PASSCODE, otp: str = "") -> object:
    return lambda: identity.login(s.Login(personal_id=pid, passcode=passcode, otp=otp), PHONE)


def _ticket(identity: IdentityService, pid: str) -> str:
    with pytest.raises(SecondFactorRequired) as caught:
        identity.login(s.Login(personal_id=pid, passcode=PASSCODE), PHONE)
    assert caught.value.status == 401 and caught.value.field == "otp"
    return caught.value.ticket


def test_enrolment_takes_effect_with_a_first_code_and_is_sealed(
    container: Container, citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    assert identity.totp_enrolment(pid) is None
    enrolment = identity.start_totp(pid)
    assert enrolment.uri.startswith("otpauth://totp/dancu:") and "issuer=dancu" in enrolment.uri
    assert pid not in enrolment.uri  # the app shows a masked number
    again = identity.totp_enrolment(pid)
    assert again is not None and again.secret == enrolment.secret
    # Until confirmed, sign-in is by passcode only.
    assert identity.login(s.Login(personal_id=pid, passcode=PASSCODE)).factors == ["pwd"]

    totp = pyotp.TOTP(enrolment.secret)
    wrong = f"{(int(totp.at(frozen)) + 1) % 1_000_000:06d}"
    refused(lambda: identity.confirm_totp(pid, wrong), "otp-wrong", "code")
    refused(lambda: identity.confirm_totp(pid, "12ab56"), "otp-format", "code")
    account = identity.confirm_totp(pid, totp.at(frozen))
    assert account.totp_since == frozen
    assert identity.totp_enrolment(pid) is None
    refused(lambda: identity.start_totp(pid), "totp-enrolled")

    with container.sessions() as session:
        sealed = session.scalars(select(Account.totp_secret)).one()
        report = audit.verify(session)
        actions = session.scalars(select(AuditEntry.action)).all()
    assert sealed and enrolment.secret.encode() not in sealed
    assert report.ok and "identity.totp_enrol" in actions
    assert identity.history(pid, limit=1)[0].kind == "totp.enrolled"


def test_sign_in_asks_for_the_code_after_the_passcode(
    citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    totp = _enrol(identity, pid, frozen - timedelta(seconds=30))

    refused(_login(identity, pid, "000001"), "bad-credentials")  # the passcode comes first
    ticket = _ticket(identity, pid)
    refused(lambda: identity.login_otp(ticket, "12345"), "otp-format", "otp")
    account = identity.login_otp(ticket, totp.at(frozen), PHONE)
    assert account.factors == ["pwd", "otp"] and account.device_id is not None

    # In one call, with one step of drift either way; two steps away is wrong.
    ahead = identity.login(
        s.Login(personal_id=pid, passcode=PASSCODE, otp=totp.at(frozen + timedelta(seconds=30)))
    )
    assert ahead.factors == ["pwd", "otp"]
    refused(_login(identity, pid, otp=totp.at(frozen + timedelta(seconds=60))), "otp-wrong", "otp")
    latest = identity.history(pid, limit=3)
    assert [e.kind for e in latest] == ["totp.failed", "login", "login"]
    assert latest[1].factors == ["pwd", "otp"] and latest[1].level == 2


def test_a_used_code_is_never_accepted_again(
    citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    totp = _enrol(identity, pid, frozen - timedelta(seconds=30))
    code = totp.at(frozen)
    identity.login_otp(_ticket(identity, pid), code)
    refused(lambda: identity.login_otp(_ticket(identity, pid), code), "otp-replayed", "otp")
    refused(_login(identity, pid, otp=code), "otp-replayed", "otp")
    # The enrolment's own code (the step before) is spent too.
    refused(
        _login(identity, pid, otp=totp.at(frozen - timedelta(seconds=30))), "otp-replayed", "otp"
    )
    # The next step's code works once.
    assert identity.login(
        s.Login(personal_id=pid, passcode=PASSCODE, otp=totp.at(frozen + timedelta(seconds=30)))
    ).factors == ["pwd", "otp"]


def test_wrong_codes_count_towards_the_passcode_lockout(
    container: Container, citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    totp = _enrol(identity, pid, frozen)
    ticket = _ticket(identity, pid)
    wrong = f"{(int(totp.at(frozen + timedelta(seconds=30))) + 7) % 1_000_000:06d}"
    refused(_login(identity, pid, "000001"), "bad-credentials")
    refused(_login(identity, pid, "000002"), "bad-credentials")
    refused(lambda: identity.login_otp(ticket, wrong), "otp-wrong")
    refused(_login(identity, pid, otp=wrong), "otp-wrong")
    locked = refused(lambda: identity.login_otp(ticket, wrong), "locked")
    assert locked.status == 429
    # Locked: even the right code waits, and a right passcode does not unlock.
    refused(lambda: identity.login_otp(ticket, totp.at(frozen + timedelta(seconds=30))), "locked")
    refused(_login(identity, pid), "locked")
    kinds = [e.kind for e in identity.history(pid)]
    assert kinds.count("totp.failed") == 3 and kinds.count("login.failed") == 2
    assert kinds.count("locked") == 1

    with container.sessions() as session, session.begin():
        session.execute(update(Account).values(locked_until=frozen - timedelta(seconds=1)))
    account = identity.login_otp(ticket, totp.at(frozen + timedelta(seconds=30)))
    assert account.locked_until is None
    with container.sessions() as session:
        assert session.scalars(select(Account.failed_logins)).one() == 0


def test_the_code_step_ticket_expires_and_dies_with_a_passcode_change(
    citizen: tuple[IdentityService, str], frozen: datetime, clock: FixedClock
) -> None:
    identity, pid = citizen
    totp = _enrol(identity, pid, frozen - timedelta(seconds=30))
    ticket = _ticket(identity, pid)
    for forged in ("", "1.2.3", ticket[:-1] + ("0" if ticket[-1] != "0" else "1")):
        refused(lambda t=forged: identity.login_otp(t, totp.at(frozen)), "otp-ticket-expired")
    with identity.factory() as session, session.begin():  # a passcode change voids it
        account = session.scalars(select(Account)).one()
        account.passcode_hash = PASSCODE_HASHER.hash("730518")
    refused(lambda: identity.login_otp(ticket, totp.at(frozen)), "otp-ticket-expired")

    with pytest.raises(SecondFactorRequired) as caught:
        identity.login(s.Login(personal_id=pid, passcode="730518"))
    later = clock.advance(TICKET_TTL + timedelta(seconds=1))
    refused(lambda: identity.login_otp(caught.value.ticket, totp.at(later)), "otp-ticket-expired")


def test_removing_the_app_needs_the_passcode(
    container: Container, citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    _enrol(identity, pid, frozen)
    refused(lambda: identity.remove_totp(pid, "000001"), "wrong-passcode", "passcode")
    assert identity.remove_totp(pid, PASSCODE).totp_since is None
    assert identity.login(s.Login(personal_id=pid, passcode=PASSCODE)).factors == ["pwd"]
    refused(lambda: identity.remove_totp(pid, PASSCODE), "totp-absent")
    kinds = [e.kind for e in identity.history(pid, limit=3)]
    assert kinds == ["login", "totp.removed", "login.failed"]


def test_a_changed_server_secret_makes_the_app_unusable_not_readable(
    container: Container, citizen: tuple[IdentityService, str], frozen: datetime
) -> None:
    identity, pid = citizen
    totp = _enrol(identity, pid, frozen - timedelta(seconds=30))
    url = container.settings.resolved_database_url
    other = Container(
        Settings(database_url=url, data_dir=container.settings.data_dir, secret_key="another")
    )
    try:
        refused(
            lambda: other.identity.login(
                s.Login(personal_id=pid, passcode=PASSCODE, otp=totp.at(frozen))
            ),
            "totp-unavailable",
        )
    finally:
        other.close()


def test_devices_are_recorded_listed_and_revoked(
    container: Container, citizen: tuple[IdentityService, str]
) -> None:
    identity, pid = citizen
    first = identity.login(s.Login(personal_id=pid, passcode=PASSCODE), PHONE)
    again = identity.login(s.Login(personal_id=pid, passcode=PASSCODE), PHONE)
    laptop = identity.login(s.Login(personal_id=pid, passcode=PASSCODE), LAPTOP)
    assert first.device_id == again.device_id != laptop.device_id
    devices = identity.devices(pid)
    assert [d.id for d in devices] == [laptop.device_id, first.device_id]  # last used first
    assert devices[0].label == "Firefox · Windows" and devices[0].ip_prefix == "2001:db8:1::/48"
    assert devices[1].label == "Chrome · Android" and devices[1].ip_prefix == "203.0.113.0/24"
    with container.sessions() as session:
        hashes = session.scalars(select(Device.cookie_hash)).all()
    assert PHONE.cookie not in hashes and all(len(h) == 64 for h in hashes)

    assert first.device_id is not None and laptop.device_id is not None
    assert identity.session_active(pid, first.device_id)
    assert identity.revoke_device(pid, first.device_id)
    assert not identity.revoke_device(pid, first.device_id)  # once
    assert not identity.session_active(pid, first.device_id)
    assert identity.session_active(pid, laptop.device_id)
    assert [d.id for d in identity.devices(pid)] == [laptop.device_id]
    event = identity.history(pid, limit=1)[0]
    assert (event.kind, event.detail, event.device_id) == (
        "device.revoked",
        "Chrome · Android",
        first.device_id,
    )

    # Signing in there again is a new device; someone else's device cannot be revoked.
    back = identity.login(s.Login(personal_id=pid, passcode=PASSCODE), PHONE)
    assert back.device_id not in (None, first.device_id)
    family = ba_dinh_family(container.registry)
    identity.provision(family["mother"], "0398765432", "905172", 1)
    assert back.device_id is not None
    assert not identity.revoke_device(family["mother"], back.device_id)
    assert not identity.session_active(family["mother"], back.device_id)
    with container.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("identity.device_revoke") == 1

    identity.suspend(pid, "report", audit.Actor("test", "system", "", "test"))
    assert not identity.session_active(pid, back.device_id)  # a suspension ends sessions


def test_failed_sign_ins_name_the_device_without_recording_one(
    container: Container, citizen: tuple[IdentityService, str]
) -> None:
    identity, pid = citizen
    refused(_login(identity, pid, "000001"), "bad-credentials")
    event = identity.history(pid, limit=1)[0]
    assert event.kind == "login.failed" and event.device_id is None
    assert event.device == "Chrome · Android · 203.0.113.0/24"
    assert identity.devices(pid) == []


def test_history_pages_newest_first(citizen: tuple[IdentityService, str]) -> None:
    identity, pid = citizen
    for n in range(25):
        identity.consent_withdrawn(pid, f"service {n}")
    first = identity.history(pid, limit=20)
    rest = identity.history(pid, limit=20, offset=20)
    assert [e.detail for e in first[:2]] == ["service 24", "service 23"]
    assert len(first) == 20 and len(rest) == 6  # 25 withdrawals and the provisioning
    assert rest[-1].kind == "provisioned"


def test_correction_requests(container: Container, citizen: tuple[IdentityService, str]) -> None:
    identity, pid = citizen

    def ask(field: str, proposed: str, reason: str = "giấy khai sinh ghi khác") -> s.CorrectionOut:
        data = s.CorrectionRequestIn(field=field, proposed=proposed, reason=reason)  # type: ignore[arg-type]
        return identity.request_correction(pid, data)

    person = container.registry.get_person(REGISTRY_CONTEXT, pid)
    refused(lambda: ask("full_name", person.full_name.upper()), "correction-same", "proposed")
    out = ask("full_name", "Nguyễn Văn Ân")
    assert (out.status, out.current_value, out.proposed) == (
        "open",
        person.full_name,
        "Nguyễn Văn Ân",
    )
    refused(lambda: ask("full_name", "Nguyễn Văn Àn"), "correction-open", "field")
    birth = ask("birth_date", "02/03/1985")
    assert birth.current_value == person.birth_date.strftime("%d/%m/%Y")
    assert [c.id for c in identity.corrections(pid)] == [birth.id, out.id]
    with pytest.raises(ValueError):
        s.CorrectionRequestIn(field="portrait", proposed="x", reason="y")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.CorrectionRequestIn(field="sex", proposed="F", reason="")
    with container.sessions() as session:
        details = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "identity.correction_request")
        ).all()
    assert sorted(d.split()[-1] for d in details) == ["field:birth_date", "field:full_name"]
    assert identity.history(pid, limit=1)[0].kind == "correction.requested"


def test_device_descriptions() -> None:
    assert describe_agent(PHONE_UA) == "Chrome · Android"
    assert describe_agent(LAPTOP_UA) == "Firefox · Windows"
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    assert describe_agent(iphone) == "Safari · iPhone"
    edge = PHONE_UA.replace("Android 14; Pixel 8", "Windows NT 10.0").replace(
        "Mobile Safari/537.36", "Safari/537.36 Edg/126.0"
    )
    assert describe_agent(edge) == "Edge · Windows"
    assert describe_agent("curl/8.5.0") == "curl" and describe_agent("") == ""
    assert mask_ip("198.51.100.23") == "198.51.100.0/24"
    assert mask_ip("::ffff:198.51.100.23") == "198.51.100.0/24"
    assert mask_ip("testclient") == ""
