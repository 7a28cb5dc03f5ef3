"""Inputs and outputs of the identity use cases."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dancu.registry.schemas import PersonalIDStr

Level = Literal[1, 2]
_PHONE = re.compile(r"^(?:\+84|0)(3|5|7|8|9)\d{8}$")  # Vietnamese mobile numbers


def _phone(value: str) -> str:
    """A Vietnamese mobile number, stored as +84…; spaces, dots and dashes are ignored."""
    digits = re.sub(r"[\s.\-]", "", value)
    if not _PHONE.fullmatch(digits):
        raise ValueError("a mobile number like 0912 345 678 or +84 912 345 678")
    return "+84" + digits.removeprefix("+84").removeprefix("0")


def _email(value: str) -> str:
    value = value.strip()
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError("an e-mail address like ten@example.vn")
    return value.lower()


def _passcode(value: str) -> str:
    if not re.fullmatch(r"\d{6}", value):
        raise ValueError("the passcode has exactly 6 digits")
    return value


Phone = Annotated[str, AfterValidator(_phone)]
Email = Annotated[str, AfterValidator(_email)]
Passcode = Annotated[str, AfterValidator(_passcode)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Registration(_Input):
    """Level-1 self-registration: the card's number, a phone and an e-mail, and a selfie."""

    personal_id: PersonalIDStr
    phone: Phone
    email: Email = ""
    selfie: bytes = Field(min_length=1, max_length=5 * 1024 * 1024, repr=False)


class Confirmation(_Input):
    """The one-time code from the SMS, and the passcode the citizen chooses."""

    challenge_id: int
    code: str = Field(pattern=r"^\d{6}$")
    passcode: Passcode = Field(repr=False)


class Challenge(BaseModel):
    challenge_id: int
    phone_hint: str  # the masked phone the code went to
    expires_at: datetime


class Login(_Input):
    """Passcode sign-in. ``otp``, the code of the authenticator app, may come with it in one
    call; without it, an account with TOTP answers ``otp-required`` with a ticket for
    ``IdentityService.login_otp``."""

    personal_id: PersonalIDStr
    passcode: str = Field(min_length=1, max_length=64, repr=False)
    otp: str = Field(default="", pattern=r"^(\d{6})?$", repr=False)


class DeviceSeen(BaseModel):
    """Where a sign-in comes from: the device cookie's value, the browser's User-Agent and
    the client's address (kept only as a summary and a masked network)."""

    cookie: str = Field(min_length=16, max_length=100, repr=False)
    user_agent: str = ""
    ip: str = ""


class ResetRequest(_Input):
    personal_id: PersonalIDStr
    phone: Phone


class Level2Activation(_Input):
    """An officer's activation of level 2, in person: the chip card is read (its number must
    be the person's), fingerprints are scanned; a phone is needed when the person has no
    account yet (the citizen then sets a passcode with a code sent to it)."""

    personal_id: PersonalIDStr
    card_personal_id: PersonalIDStr
    fingerprint_scan: bytes = Field(min_length=1, repr=False)
    phone: Phone | None = None


class Provisioning(_Input):
    personal_id: PersonalIDStr
    phone: Phone
    passcode: Passcode = Field(repr=False)
    level: Level
    email: Email = ""


class AccountOut(BaseModel):
    personal_id: str
    level: int
    status: str
    phone_hint: str
    email: str
    created_at: datetime
    activated_at: datetime | None
    level2_at: datetime | None
    locked_until: datetime | None
    totp_since: datetime | None = None  # when the authenticator app was enrolled
    # Of a sign-in: the authentication methods used (OpenID ``amr`` values: "pwd" for the
    # passcode, "otp" for the authenticator code) and the device row it was recorded on.
    factors: list[str] = Field(default_factory=list)
    device_id: int | None = None


class AccountEventOut(BaseModel):
    at: datetime
    kind: str
    detail: str
    device: str = ""  # "Chrome · Android · 203.0.113.0/24"
    device_id: int | None = None
    level: int | None = None
    factors: list[str] = Field(default_factory=list)


class TotpEnrolment(BaseModel):
    """A secret waiting for the citizen's first code: shown as text and as a QR code."""

    secret: str = Field(repr=False)
    uri: str = Field(repr=False)  # otpauth://totp/…


class DeviceOut(BaseModel):
    id: int
    label: str
    ip_prefix: str
    first_seen: datetime
    last_seen: datetime


CorrectionField = Literal["full_name", "birth_date", "sex", "permanent_address", "other"]


class CorrectionRequestIn(_Input):
    """A citizen asks for a fact of the register to be corrected."""

    field: CorrectionField
    proposed: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=500)


class CorrectionOut(BaseModel):
    id: int
    field: str
    current_value: str
    proposed: str
    reason: str
    status: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolution_note: str = ""  # the officer's word to the citizen (why it was refused)


class OpenCorrection(CorrectionOut):
    """An open request as the officers of the citizen's residence see it."""

    personal_id: str
    province_code: str
    commune_code: str


# Why an officer suspends an account (a death suspends it by itself: "deceased").
SuspensionReason = Literal["reported-lost-card", "reported-fraud", "citizen-request", "court-order"]
CorrectionOutcome = Literal["done", "refused"]


class OfficerAccountView(BaseModel):
    """An account as an officer sees it: its state, who it belongs to in the register, and
    its latest events (with the details the citizen's own history leaves out)."""

    account: AccountOut
    suspended_reason: str = ""
    full_name: str = ""
    birth_date: date | None = None
    person_status: str = ""  # in the register: alive | deceased | missing ("" when unknown)
    current_personal_id: str = ""  # the register's number now (a replaced one differs)
    level2_unit: str = ""
    devices: int = 0  # signed in and not forgotten
    events: list[AccountEventOut] = Field(default_factory=list)
    reinstatable: bool = False
