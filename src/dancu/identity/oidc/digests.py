"""The hashes the provider compares: what codes and refresh tokens are stored as, and the
unpadded base64url SHA-256 that PKCE (RFC 7636 ``S256``) and DPoP (RFC 9449 ``ath``) send."""

from __future__ import annotations

import base64
import hashlib


def digest(value: str) -> str:
    """What a code or a refresh token is stored as (hexadecimal SHA-256)."""
    return hashlib.sha256(value.encode()).hexdigest()


def s256(value: str) -> str:
    """The unpadded base64url SHA-256 of ``value``: a PKCE challenge of its verifier, a
    DPoP proof's hash of its access token."""
    return b64url(hashlib.sha256(value.encode()).digest())


def b64url(raw: bytes) -> str:
    """``raw`` as unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
