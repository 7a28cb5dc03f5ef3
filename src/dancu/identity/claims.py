"""What the OpenID provider releases about a citizen, and how it says where it came from.

Which claims: the scopes a client asks for (OpenID Connect Core 5.4), sharpened by the
``claims`` request parameter (Core 5.5: ``userinfo`` and ``id_token`` members name single
claims, so a client can ask for the birth date alone, or for claims inside the ID token), and
always bounded by what the client was registered for (``personal_id`` and ``picture`` are
granted client by client) and what the citizen agreed to on the consent screen.

Provenance: a client may ask for claims as ``verified_claims`` (OpenID Connect for Identity
Assurance 1.0). dancu answers them from the national population database under the trust
framework ``vn_csdlqgdc`` (Cơ sở dữ liệu quốc gia về dân cư; Law on Identity 26/2023/QH15):
the evidence is the electronic register record, ``verification.time`` is when the register
last recorded a change to the person, and ``assurance_level`` is the account's level (Decree
69/2024 Art. 9 gives level-2 identity data the evidentiary value of the documents). Phone
number and e-mail are held by the account, not by the register: they are never verified
claims (the phone was proven by an SMS code at registration: ``phone_number_verified``).
Every response also carries ``updated_at`` when the client asks for it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dancu.identity.clients import SENSITIVE_CLAIMS
from dancu.registry.schemas import PersonPublic

TRUST_FRAMEWORK = "vn_csdlqgdc"
REGISTER_NAME = "Cơ sở dữ liệu quốc gia về dân cư"
ASSURANCE_BY_LEVEL = {1: "substantial", 2: "high"}
# What each scope releases (OpenID Connect Core 5.4). The sensitive claims are released with
# ``profile`` or when asked for by name, and only to clients granted them (SENSITIVE_CLAIMS).
SCOPE_CLAIMS = {
    "profile": ("name", "birthdate", "gender", "updated_at"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
    "email": ("email",),
}
# Claims the register holds (and so can be verified claims); the rest belong to the account.
REGISTER_CLAIMS = ("name", "birthdate", "gender", "address", "personal_id", "picture")
STANDARD_CLAIMS = tuple(dict.fromkeys(c for cs in SCOPE_CLAIMS.values() for c in cs))
ALL_CLAIMS = STANDARD_CLAIMS + SENSITIVE_CLAIMS
# Claims that go with another and need no consent line of their own.
COMPANIONS = {"updated_at": "name", "phone_number_verified": "phone_number"}


class ClaimsRequestError(ValueError):
    """A ``claims`` parameter that is not what OpenID Connect Core 5.5 describes."""


@dataclass(frozen=True)
class ClaimsRequest:
    """The ``claims`` parameter, read: plain claims and ``verified_claims`` per member."""

    plain: dict[str, frozenset[str]] = field(default_factory=dict)  # member -> names
    verified: dict[str, frozenset[str]] = field(default_factory=dict)  # member -> names

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ClaimsRequest:
        plain: dict[str, frozenset[str]] = {}
        verified: dict[str, frozenset[str]] = {}
        for member in ("userinfo", "id_token"):
            asked = raw.get(member)
            asked = {} if asked is None else asked
            if not isinstance(asked, dict):
                raise ClaimsRequestError(f"claims.{member} must be a JSON object")
            names = {n for n in asked if n != "verified_claims"}
            plain[member] = frozenset(names)
            requests = asked.get("verified_claims")
            if requests is None:
                continue
            requests = requests if isinstance(requests, list) else [requests]
            inner: set[str] = set()
            for one in requests:
                if not isinstance(one, dict) or not isinstance(one.get("claims"), dict):
                    raise ClaimsRequestError(
                        f"claims.{member}.verified_claims needs a claims object"
                    )
                if not one["claims"]:
                    raise ClaimsRequestError(f"claims.{member}.verified_claims.claims is empty")
                inner.update(one["claims"])
            verified[member] = frozenset(inner)
        return cls(plain, verified)

    def names(self) -> set[str]:
        """Every claim named anywhere in the request."""
        out: set[str] = set()
        for names in (*self.plain.values(), *self.verified.values()):
            out |= names
        return out


def attributes(scopes: Iterable[str], request: ClaimsRequest, granted: Iterable[str]) -> list[str]:
    """The claims a request would release (what the consent screen lists), stable order."""
    scopes, granted = list(scopes), set(granted)
    asked = request.names()
    names: list[str] = []
    for scope in scopes:
        names += SCOPE_CLAIMS.get(scope, ())
    for claim in SENSITIVE_CLAIMS:
        if claim in granted and ("profile" in scopes or claim in asked):
            names.append(claim)
    names += [c for c in STANDARD_CLAIMS if c in asked]
    return list(dict.fromkeys(names))


def consent_lines(names: Iterable[str]) -> list[str]:
    """The attributes the citizen is asked about: companions ride along with their claim."""
    return [n for n in names if n not in COMPANIONS]


@dataclass(frozen=True)
class Subject:
    """What the provider knows of a citizen when it releases claims."""

    person: PersonPublic
    phone: str
    email: str
    level: int
    updated: datetime | None  # when the register last recorded a change
    portrait: bytes | None


def values(subject: Subject, names: Iterable[str]) -> dict[str, Any]:
    """The plain claims ``names`` for ``subject`` (absent values are left out)."""
    person = subject.person
    residence = next((r for r in person.residences if r.kind == "permanent"), None)
    out: dict[str, Any] = {}
    for name in names:
        value: Any
        match name:
            case "name":
                value = person.full_name
            case "birthdate":
                value = person.birth_date.isoformat()
            case "gender":
                value = {"M": "male", "F": "female"}[person.sex]
            case "personal_id":
                value = person.personal_id
            case "address":
                value = (
                    {
                        "formatted": ", ".join(
                            p for p in (residence.address_line, residence.current_unit.label) if p
                        ),
                        "country": "VN",
                    }
                    if residence
                    else None
                )
            case "picture":
                value = data_uri(subject.portrait) if subject.portrait else None
            case "phone_number":
                value = subject.phone or None
            case "phone_number_verified":
                value = True if subject.phone else None
            case "email":
                value = subject.email or None
            case "updated_at":
                value = int(subject.updated.timestamp()) if subject.updated else None
            case _:
                value = None
        if value is not None:
            out[name] = value
    return out


def verified_claims(subject: Subject, names: Iterable[str]) -> dict[str, Any] | None:
    """The ``verified_claims`` element for the register-held claims among ``names``."""
    held = [n for n in names if n in REGISTER_CLAIMS]
    claims = values(subject, held)
    if not claims:
        return None
    verification: dict[str, Any] = {
        "trust_framework": TRUST_FRAMEWORK,
        "assurance_level": ASSURANCE_BY_LEVEL[subject.level],
        "evidence": [
            {
                "type": "electronic_record",
                "record": {
                    "type": "population_register",
                    "source": {"name": REGISTER_NAME, "country_code": "VNM"},
                },
            }
        ],
    }
    if subject.updated is not None:
        verification["time"] = subject.updated.isoformat(timespec="seconds")
    return {"verification": verification, "claims": claims}


def release(
    subject: Subject, consented: Iterable[str], plain: Iterable[str], verified: Iterable[str]
) -> dict[str, Any]:
    """The claims for one response: the ``plain`` and ``verified`` names, each bounded by
    what the citizen consented to."""
    allowed = set(consented)
    out = values(subject, [n for n in plain if n in allowed])
    wanted = [n for n in verified if n in allowed]
    if wanted and (element := verified_claims(subject, wanted)) is not None:
        out["verified_claims"] = element
    return out


def data_uri(image: bytes) -> str:
    """A portrait as a ``data:`` URI (the ``picture`` claim carries the image itself: the
    relying party needs no second, separately authorised fetch). Development portraits are
    not images; they are drawn as a deterministic pattern so demos show something."""
    if image.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    elif image.startswith(b"\x89PNG"):
        mime = "image/png"
    else:
        image, mime = _pattern(image), "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def _pattern(seed: bytes) -> bytes:
    """A 5×5 mirrored block pattern from ``seed`` (an identicon), as SVG."""
    bits = int.from_bytes(seed[-8:].ljust(8, b"\0"), "big")
    colour = seed[-3:].hex() if len(seed) >= 3 else "777777"
    cells = []
    for row in range(5):
        for col in range(3):
            if bits >> (row * 3 + col) & 1:
                for x in {col, 4 - col}:
                    cells.append(f'<rect x="{x}" y="{row}" width="1" height="1"/>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="-1 -1 7 7" width="140" height="140">'
        f'<rect x="-1" y="-1" width="7" height="7" fill="#f2f2f2"/><g fill="#{colour}">'
        + "".join(cells)
        + "</g></svg>"
    ).encode()
