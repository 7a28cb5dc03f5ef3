"""Ports to the outside world the identity context needs (DESIGN "Ports for the outside
world"), each with the adapter dancu ships for development and tests.

Real adapters and their shapes:

- ``SmsSender``: an SMS gateway (a telco's SMPP/HTTP API, e.g. a brand-name SMS service):
  ``send(phone, text)`` must raise on a definite failure and may return before delivery.
- ``PortraitStore``: the card-issuing system's enrolment portraits, read by personal ID number
  (a JPEG of the face captured when the chip card was issued).
- ``FaceMatcher``: a face-comparison service or library returning a similarity in [0, 1]
  between a selfie and the enrolment portrait (e.g. an ISO/IEC 19795-tested engine). A
  threshold in settings decides the match; liveness checks belong to the same adapter.
- ``FingerprintScanner``: the officer desk's scanner and the biometric system (ABIS):
  ``enrol(personal_id, scan)`` stores the templates there and returns a reference.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dancu.core import ids

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class PortraitStore(Protocol):
    def portrait(self, personal_id: str) -> bytes | None: ...


class FaceMatcher(Protocol):
    def similarity(self, selfie: bytes, portrait: bytes) -> float: ...


class FingerprintScanner(Protocol):
    def enrol(self, personal_id: str, scan: bytes) -> str: ...


@dataclass
class ConsoleSms:
    """Development SMS: the message goes to the log (the phone number masked), so a developer
    can read the one-time code. Never configure it where real people register."""

    def send(self, phone: str, text: str) -> None:
        log.warning("SMS to %s: %s", mask_phone(phone), text)


@dataclass
class MemorySms:
    """Test SMS: keeps what was sent."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


@dataclass
class SyntheticPortraits:
    """Development portraits: a deterministic stand-in "image" per person, derived from the
    personal ID number and a key, so a demo selfie can be made for anyone in the register
    (``synthetic_selfie``) and nobody else's selfie matches it."""

    key: str

    def portrait(self, personal_id: str) -> bytes | None:
        return synthetic_portrait(self.key, personal_id)


@dataclass
class DirectoryPortraits:
    """Portraits as files, ``<folder>/<personal ID number>.jpg`` (or ``.png``): an export
    of the card office's enrolment photos for a pilot, or a mounted share. A number with
    no file has no portrait on record."""

    folder: Path

    def portrait(self, personal_id: str) -> bytes | None:
        if not ids.is_well_formed(personal_id):
            return None
        for suffix in (".jpg", ".jpeg", ".png"):
            path = self.folder / f"{personal_id}{suffix}"
            if path.is_file():
                return path.read_bytes()
        return None


def synthetic_portrait(key: str, personal_id: str) -> bytes:
    digest = hashlib.sha256(f"{key}|portrait|{personal_id}".encode()).digest()
    return b"DANCU-SYNTHETIC-FACE:" + digest


def synthetic_selfie(key: str, personal_id: str) -> bytes:
    """What the development camera captures of this person: their synthetic portrait."""
    return synthetic_portrait(key, personal_id)


class ExactFaceMatcher:
    """Development stand-in for face comparison: similarity 1.0 when the selfie carries the
    same face bytes as the portrait, else 0.0. Deterministic, for dev and tests only; it
    makes no claim about real faces (see the module docstring for the real adapter)."""

    def similarity(self, selfie: bytes, portrait: bytes) -> float:
        return 1.0 if selfie and selfie == portrait else 0.0


class DevFingerprintScanner:
    """Development scanner: the reference is a digest of the scan (no template is kept)."""

    def enrol(self, personal_id: str, scan: bytes) -> str:
        if len(scan) < 16:
            raise ValueError("the fingerprint scan is empty or unreadable")
        return hashlib.sha256(personal_id.encode() + b"|" + scan).hexdigest()


def mask_phone(phone: str) -> str:
    return phone[:3] + "•" * max(len(phone) - 6, 0) + phone[-3:] if len(phone) > 6 else "•••"
