"""Identity use cases behind one facade: level-1 self-registration, phone confirmation,
passcode sign-in with lockout, an optional authenticator app (TOTP, RFC 6238) as second
factor, the devices signed in with and their revocation, passcode reset, level-2 activation
by an officer, suspension (Decree 69/2024) and reinstatement, the citizen's requests to
correct the register, and the officers' side of accounts: the account's state, suspension on
a report, turning off a lost authenticator app, and the correction requests of their commune.

``IdentityService`` builds one small object per use case (``dancu.identity.usecases``), each
holding only what it needs, and hands every call to the one that does it. Every refusal is a
``DancuError`` with a stable code (``face-mismatch``, ``too-young``, ``locked``…) and, where
an input is at fault, the field, so clients can tell the citizen exactly what to do. Changes
are audited in the same transaction; sign-ins and failures are kept as account events (the
citizen's login history).
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext
from dancu.core.audit import Actor
from dancu.identity import schemas as s
from dancu.identity.ports import FaceMatcher, FingerprintScanner, PortraitStore, SmsSender
from dancu.identity.usecases import signin
from dancu.identity.usecases.accounts import Accounts
from dancu.identity.usecases.corrections import Corrections
from dancu.identity.usecases.factors import Factors, Totp
from dancu.identity.usecases.officer_actions import OfficerActions
from dancu.identity.usecases.registration import Registration
from dancu.identity.usecases.registry_events import RegistryEvents
from dancu.identity.usecases.shared import (
    Challenges,
    Forwarded,
    People,
)
from dancu.identity.usecases.signin import SignIn
from dancu.registry.schemas import PersonPublic
from dancu.registry.service import RegistryService


class IdentityService:
    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: RegistryService,
        *,
        secret_key: str,
        sms: SmsSender,
        portraits: PortraitStore,
        faces: FaceMatcher,
        fingerprints: FingerprintScanner,
        face_threshold: float = 0.8,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self._people = people = People(registry)
        challenges, totp = Challenges(secret_key), Totp(secret_key)
        self._registration = Registration(
            factory,
            people,
            challenges,
            sms=sms,
            portraits=portraits,
            faces=faces,
            fingerprints=fingerprints,
            face_threshold=face_threshold,
        )
        self._signin = SignIn(factory, challenges, totp, secret_key=secret_key, sms=sms)
        self._factors = Factors(factory, totp)
        self._corrections = Corrections(factory, people)
        self._officers = OfficerActions(factory, people)
        self._events = RegistryEvents(factory, people, self._officers, self._corrections)
        self._accounts = Accounts(factory, people)

    # The ports stay settable on the facade (tests swap the SMS sender): a new one reaches
    # every use case that uses it.

    sms = Forwarded[SmsSender]("_registration", "_signin")
    portraits = Forwarded[PortraitStore]("_registration")
    faces = Forwarded[FaceMatcher]("_registration")
    fingerprints = Forwarded[FingerprintScanner]("_registration")
    face_threshold = Forwarded[float]("_registration")

    # -- registration, level 2 and provisioning (usecases.registration) --------------------

    def start_registration(self, data: s.Registration) -> s.Challenge:
        return self._registration.start_registration(data)

    def confirm_registration(
        self, data: s.Confirmation, device: s.DeviceSeen | None = None
    ) -> s.AccountOut:
        return self._registration.confirm_registration(data, device)

    def activate_level2(self, ctx: OfficerContext, data: s.Level2Activation) -> s.AccountOut:
        return self._registration.activate_level2(ctx, data)

    def provision(
        self, personal_id: str, phone: str, passcode: str, level: int, email: str = ""
    ) -> s.AccountOut:
        return self._registration.provision(personal_id, phone, passcode, level, email)

    # -- sign-in and passcode reset (usecases.signin) --------------------------------------

    def login(self, data: s.Login, device: s.DeviceSeen | None = None) -> s.AccountOut:
        return self._signin.login(data, device)

    def login_otp(self, ticket: str, code: str, device: s.DeviceSeen | None = None) -> s.AccountOut:
        return self._signin.login_otp(ticket, code, device)

    def start_reset(self, data: s.ResetRequest) -> s.Challenge | None:
        return self._signin.start_reset(data)

    def finish_reset(self, data: s.Confirmation) -> s.AccountOut:
        return self._signin.finish_reset(data)

    @staticmethod
    def refuse_unsent_reset(data: s.Confirmation, tries: int, started: float) -> NoReturn:
        signin.refuse_unsent_reset(data, tries, started)

    # -- the authenticator app and devices (usecases.factors) ------------------------------

    def start_totp(self, personal_id: str) -> s.TotpEnrolment:
        return self._factors.start_totp(personal_id)

    def totp_enrolment(self, personal_id: str) -> s.TotpEnrolment | None:
        return self._factors.totp_enrolment(personal_id)

    def confirm_totp(
        self, personal_id: str, code: str, device_id: int | None = None
    ) -> s.AccountOut:
        return self._factors.confirm_totp(personal_id, code, device_id)

    def remove_totp(
        self, personal_id: str, passcode: str, device_id: int | None = None
    ) -> s.AccountOut:
        return self._factors.remove_totp(personal_id, passcode, device_id)

    def devices(self, personal_id: str) -> list[s.DeviceOut]:
        return self._factors.devices(personal_id)

    def revoke_device(self, personal_id: str, device_id: int) -> bool:
        return self._factors.revoke_device(personal_id, device_id)

    def session_active(self, personal_id: str, device_id: int) -> bool:
        return self._factors.session_active(personal_id, device_id)

    # -- correction requests (usecases.corrections) ----------------------------------------

    def request_correction(self, personal_id: str, data: s.CorrectionRequestIn) -> s.CorrectionOut:
        return self._corrections.request_correction(personal_id, data)

    def corrections(self, personal_id: str, limit: int = 20) -> list[s.CorrectionOut]:
        return self._corrections.corrections(personal_id, limit)

    def open_corrections(self, ctx: OfficerContext, limit: int = 200) -> list[s.OpenCorrection]:
        return self._corrections.open_corrections(ctx, limit)

    def resolve_correction(
        self, ctx: OfficerContext, request_id: int, outcome: str, note: str = ""
    ) -> s.CorrectionOut:
        return self._corrections.resolve_correction(ctx, request_id, outcome, note)

    # -- officers' actions and suspension (usecases.officer_actions) -----------------------

    def officer_view(self, ctx: OfficerContext, personal_id: str) -> s.OfficerAccountView:
        return self._officers.officer_view(ctx, personal_id)

    def suspend_reported(
        self, ctx: OfficerContext, personal_id: str, reason: str, note: str = ""
    ) -> s.AccountOut:
        return self._officers.suspend_reported(ctx, personal_id, reason, note)

    def reinstate(self, ctx: OfficerContext, personal_id: str, note: str) -> s.AccountOut:
        return self._officers.reinstate(ctx, personal_id, note)

    def reset_second_factor(
        self, ctx: OfficerContext, personal_id: str, note: str = ""
    ) -> s.AccountOut:
        return self._officers.reset_second_factor(ctx, personal_id, note)

    def suspend(self, personal_id: str, reason: str, actor: Actor) -> bool:
        return self._officers.suspend(personal_id, reason, actor)

    # -- the register's events (usecases.registry_events) ----------------------------------

    def on_registry_event(self, topic: str, payload: dict[str, object]) -> None:
        self._events.on_registry_event(topic, payload)

    # -- the citizen's account, history and profile (usecases.accounts) --------------------

    def account(self, personal_id: str) -> s.AccountOut:
        return self._accounts.account(personal_id)

    def history(
        self, personal_id: str, limit: int = 50, offset: int = 0
    ) -> list[s.AccountEventOut]:
        return self._accounts.history(personal_id, limit, offset)

    def consent_withdrawn(self, personal_id: str, service: str) -> None:
        self._accounts.consent_withdrawn(personal_id, service)

    def profile(self, personal_id: str) -> PersonPublic:
        return self._accounts.profile(personal_id)
