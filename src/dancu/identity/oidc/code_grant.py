"""What redeeming an authorization code reads and issues, shared by the token endpoint's two
paths: the thread path (``Authorizer.exchange``, ORM rows) and the event loop's
(``fast_code``, rows of its own), which both hand these to ``codes``' checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from dancu.core.audit import Entry
from dancu.identity import claims as released


class PresentedCode(Protocol):
    """A code as the exchange reads it: its row (the thread path) or a copy (``fast_code``)."""

    @property
    def code_hash(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def redirect_uri(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def claims(self) -> dict[str, Any]: ...
    @property
    def nonce(self) -> str: ...
    @property
    def code_challenge(self) -> str: ...
    @property
    def acr(self) -> str: ...
    @property
    def auth_time(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def dpop_jkt(self) -> str: ...


C = TypeVar("C", bound=PresentedCode)


class Holder(Protocol):
    """An account as the exchange reads it (the code's, or the guardian's acting for it)."""

    @property
    def id(self) -> int: ...
    @property
    def personal_id(self) -> str: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class Granted:
    """What a redeemed code granted, read inside the exchange's transaction."""

    nonce: str
    auth_time: datetime
    acr: str
    claims: dict[str, Any]
    account_id: int
    act: dict[str, str] | None = None  # the guardian acting for the account (RFC 8693 4.1)


@dataclass(frozen=True)
class FirstUse:
    """What the first use of a code issues, before anything is signed."""

    jti: str  # the access token's
    sub: str
    scope: str
    bound: dict[str, Any]  # the access token's cnf (DPoP) and act (a guardian) claims
    dpop_jkt: str
    granted: Granted
    refresh: str | None  # the refresh token handed to the client, when it may refresh
    refresh_row: dict[str, Any] | None  # its row's columns
    entry: Entry  # the audit of the issue

    @property
    def reads_register(self) -> bool:
        """Whether the ID token carries claims from the register (a read, audited)."""
        return id_token_release(self.granted) is not None


def id_token_release(granted: Granted) -> tuple[frozenset[str], frozenset[str]] | None:
    """The plain and verified claims the client asked to receive in the ID token itself
    (Core 5.5), when the citizen consented to any of them."""
    asked = released.ClaimsRequest.parse(granted.claims.get("request", {}))
    plain = asked.plain.get("id_token", frozenset())
    verified = asked.verified.get("id_token", frozenset())
    if set(granted.claims.get("attributes", [])) & (plain | verified):
        return plain, verified
    return None
