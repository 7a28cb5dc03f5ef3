"""Getting an account: level-1 self-registration (the register's checks, the face against the
portrait on record, then the phone confirmed by a code), level-2 activation by an officer in
person (chip card and fingerprints), and provisioning by an operator (demos, tests, pilots).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext
from dancu.core.audit import Actor, Entry, record_change
from dancu.core.db import write_session
from dancu.core.errors import Conflict, DancuError, Forbidden, Invalid
from dancu.core.timeutil import utcnow
from dancu.identity import schemas as s
from dancu.identity.models import Account
from dancu.identity.ports import (
    FaceMatcher,
    FingerprintScanner,
    PortraitStore,
    SmsSender,
    mask_phone,
)
from dancu.identity.usecases.shared import (
    PASSCODE_HASHER,
    Challenges,
    People,
    account_out,
    add_event,
    age,
    challenge_out,
    citizen_entry,
    find_account,
    refuse,
    require_alive,
    require_strong,
    see_device,
    signed_in_out,
)

SELF_REGISTRATION_AGE = 14  # younger: a guardian registers them (Decree 69/2024)
LEVEL2_AGE = 6  # level 2 from 6 years old on request
_OPERATOR_ACTOR = Actor("operator", "system", "", "identity-provisioning")


class Registration:
    def __init__(
        self,
        factory: sessionmaker[Session],
        people: People,
        challenges: Challenges,
        *,
        sms: SmsSender,
        portraits: PortraitStore,
        faces: FaceMatcher,
        fingerprints: FingerprintScanner,
        face_threshold: float,
    ) -> None:
        self.factory, self.people, self.challenges = factory, people, challenges
        self.sms, self.portraits, self.faces = sms, portraits, faces
        self.fingerprints = fingerprints
        self.face_threshold = face_threshold

    # -- level 1: self-registration ----------------------------------------------------------

    def start_registration(self, data: s.Registration) -> s.Challenge:
        """Check the person in the register, their age and status, and their face against the
        portrait on record; then create a pending level-1 account and text a code to the
        phone. Nothing is created when any check fails."""
        person = self.people.person(data.personal_id)
        require_alive(person)
        if age(person.birth_date) < SELF_REGISTRATION_AGE:
            raise refuse(
                Invalid,
                "too-young",
                f"under {SELF_REGISTRATION_AGE}: a parent or guardian registers you with their "
                "level-2 account",
                "personal_id",
            )
        portrait = self.portraits.portrait(person.personal_id)
        if portrait is None:
            raise refuse(
                Invalid,
                "no-portrait",
                "no portrait is on record for this number: activate your account in person "
                "at the commune police",
                "selfie",
            )
        try:
            similarity = self.faces.similarity(data.selfie, portrait)
        except ValueError as exc:  # an image the matcher cannot use (identity.faces)
            self._audit_refusal(person.personal_id, "identity.face_unusable")
            if getattr(exc, "image", "selfie") == "portrait":
                raise refuse(
                    Invalid,
                    "portrait-unusable",
                    "the portrait on record cannot be compared: activate your account in "
                    "person at the commune police",
                    "selfie",
                ) from None
            raise refuse(
                Invalid,
                "face-unreadable",
                "no single clear face was found in the photo: take it again facing the "
                "camera, in good light, with only your face in it",
                "selfie",
            ) from None
        if similarity < self.face_threshold:
            self._audit_refusal(person.personal_id, "identity.face_mismatch")
            raise refuse(
                Invalid,
                "face-mismatch",
                "the face in the photo does not match the portrait on record",
                "selfie",
            )
        with write_session(self.factory) as session:
            account = find_account(session, person.personal_id)
            if account is not None and account.status != "pending":
                raise refuse(
                    Conflict,
                    "account-exists",
                    "an account already exists for this number: sign in, or reset the passcode",
                    "personal_id",
                )
            if account is None:
                account = Account(personal_id=person.personal_id, level=1, status="pending")
                session.add(account)
            account.phone, account.email = data.phone, data.email
            session.flush()
            challenge, code = self.challenges.new(session, account, "register")
            add_event(session, account, "registration.started", mask_phone(data.phone))
            record_change(session, citizen_entry("identity.register", account))
            out = challenge_out(challenge, account)
        self.sms.send(data.phone, f"dancu: ma xac thuc {code} (hieu luc 5 phut)")
        return out

    def confirm_registration(
        self, data: s.Confirmation, device: s.DeviceSeen | None = None
    ) -> s.AccountOut:
        """The code from the SMS confirms the phone; the chosen passcode activates level 1.
        The citizen is signed in on ``device`` (recorded like a sign-in's)."""
        require_strong(data.passcode)
        with write_session(self.factory) as session:
            found = self.challenges.use(session, data.challenge_id, data.code, "register")
            if not isinstance(found, DancuError):
                _challenge, account = found
                now = utcnow()
                account.passcode_hash = PASSCODE_HASHER.hash(data.passcode)
                account.status, account.activated_at = "active", now
                row = see_device(session, account, now, device)
                add_event(
                    session, account, "registration.completed", device=row, level=account.level
                )
                record_change(session, citizen_entry("identity.activate", account))
                return signed_in_out(account, ["pwd"], row)
        raise found  # after the commit: a wrong code counts although the call fails

    def _audit_refusal(self, personal_id: str, action: str) -> None:
        with write_session(self.factory) as session:
            actor = Actor("anonymous", "citizen", "", "identity-registration")
            record_change(session, Entry(actor, action, "person", f"id {personal_id[:4]}…"))

    # -- level 2, in person ---------------------------------------------------------------

    def activate_level2(self, ctx: OfficerContext, data: s.Level2Activation) -> s.AccountOut:
        """At any commune police or card office, whatever the person's residence: the officer
        reads the chip card, scans fingerprints and approves. A person without an account
        gets one at level 2 and sets the passcode with a code sent to the phone given."""
        if not ctx.can_write:
            raise Forbidden("only commune police officers activate level 2")
        person = self.people.person(data.personal_id)
        require_alive(person)
        if data.card_personal_id != person.personal_id:
            raise refuse(
                Invalid,
                "card-mismatch",
                "the card read is not this person's current card",
                "card_personal_id",
            )
        if age(person.birth_date) < LEVEL2_AGE:
            raise refuse(
                Invalid, "too-young", f"level 2 is from {LEVEL2_AGE} years old", "personal_id"
            )
        try:
            reference = self.fingerprints.enrol(person.personal_id, data.fingerprint_scan)
        except ValueError as exc:
            raise refuse(Invalid, "fingerprint-unreadable", str(exc), "fingerprint_scan") from None
        code = None
        with write_session(self.factory) as session:
            account = find_account(session, person.personal_id)
            if account is None:
                if data.phone is None:
                    raise Invalid("a phone number is needed for a new account", "phone")
                account = Account(personal_id=person.personal_id, status="pending", phone="")
                session.add(account)
            if account.status in ("suspended", "closed"):
                raise refuse(Conflict, "suspended", f"the account is {account.status}")
            if data.phone is not None:
                account.phone = data.phone
            now = utcnow()
            account.level, account.level2_at = 2, now
            account.level2_by, account.level2_unit = ctx.username, ctx.commune_code
            account.fingerprint_ref = reference
            session.flush()
            if account.passcode_hash is None:
                _challenge, code = self.challenges.new(session, account, "reset")
            add_event(session, account, "level2", f"by {ctx.username} at {ctx.unit_label}")
            record_change(
                session,
                Entry(ctx.actor("identity-level2"), "identity.level2", f"account:{account.id}"),
            )
            out = account_out(account)
            phone = account.phone
        if code is not None:
            self.sms.send(phone, f"dancu: ma dat mat khau {code} (hieu luc 5 phut)")
        return out

    # -- provisioning (demos, tests, pilots) ----------------------------------------------

    def provision(
        self, personal_id: str, phone: str, passcode: str, level: int, email: str = ""
    ) -> s.AccountOut:
        """An active account for a person of the register, made by an operator without the
        face check, the SMS code or the officer visit (``dancu identity account create``).
        Eligibility still holds: a living person, old enough for the level."""
        data = s.Provisioning(
            personal_id=personal_id, phone=phone, passcode=passcode, level=level, email=email
        )
        person = self.people.person(data.personal_id)
        require_alive(person)
        youngest = LEVEL2_AGE if data.level == 2 else 0
        if age(person.birth_date) < youngest:
            raise refuse(Invalid, "too-young", f"level 2 is from {LEVEL2_AGE} years old", "level")
        require_strong(data.passcode)
        now = utcnow()
        with write_session(self.factory) as session:
            if find_account(session, data.personal_id) is not None:
                raise refuse(Conflict, "account-exists", "an account already exists", "personal_id")
            account = Account(
                personal_id=data.personal_id,
                level=data.level,
                status="active",
                phone=data.phone,
                email=data.email,
                passcode_hash=PASSCODE_HASHER.hash(data.passcode),
                activated_at=now,
                level2_at=now if data.level == 2 else None,
                level2_by="provisioned" if data.level == 2 else "",
            )
            session.add(account)
            session.flush()
            add_event(session, account, "provisioned", f"level {data.level}")
            record_change(
                session,
                Entry(_OPERATOR_ACTOR, "identity.provision", f"account:{account.id}"),
            )
            return account_out(account)
