"""Argon2id hashes of what people type to sign in: officers' passwords, citizens' passcodes.

Both use OWASP's password-storage minimum (m=19 MiB, t=2, p=1); each caller keeps its own
hasher so the two can be tuned apart.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def argon2id() -> PasswordHasher:
    """A hasher with OWASP's minimum parameters: about 20-40 ms of one core here."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def verify(hasher: PasswordHasher, hashed: str, secret: str) -> bool:
    """Whether ``secret`` matches ``hashed``; a wrong secret or a malformed hash is False."""
    try:
        return hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False
