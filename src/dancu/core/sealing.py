"""Small secrets sealed at rest with a key derived from the server secret.

``Sealer(secret_key, purpose)`` encrypts and authenticates bytes with Fernet (AES-128-CBC and
HMAC-SHA256, from ``cryptography``); the Fernet key is derived from ``DANCU_SECRET_KEY`` with
HKDF-SHA256 and the purpose as context, so each use has its own key and the secret itself
never touches the database. A changed server secret makes sealed values unreadable
(``Unsealable``): the feature using them has to be set up again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Unsealable(Exception):
    """The value was sealed with another key, or has been altered."""


class Sealer:
    def __init__(self, secret_key: str, purpose: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"dancu.sealing:" + purpose.encode(),
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise Unsealable from None
