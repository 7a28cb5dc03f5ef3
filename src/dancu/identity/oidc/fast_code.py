"""Redeeming authorization codes on the server's event loop (PostgreSQL; decision 0008): the
code exchange every citizen's sign-in at a relying party ends with.

The codes presented by concurrent requests are redeemed in one transaction per group
(``core.groupcommit``): their rows locked in one statement (in a fixed order, so two server
processes never deadlock), each checked by the thread path's own checks
(``codes.presented`` and ``codes.check_code``) and, when they pass, used up with
their refresh tokens and their audit entries in one statement, the entries in a chain of
this writer's own (no shared head to lock). A request learns what its code's first use
issues (``FirstUse``) once the group is committed, and signs its tokens itself. A code that
was used before is reported as such (``None``): the caller hands it to the thread path,
whose ``Authorizer.exchange`` revokes what the first use issued.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from dancu.core.audit import APPEND_ENTRIES, APPEND_HEAD, ReadChain, append_params
from dancu.core.groupcommit import GroupCommit
from dancu.core.timeutil import utcnow
from dancu.identity.models import Client
from dancu.identity.oidc.authorizer import Authorizer
from dancu.identity.oidc.code_grant import FirstUse
from dancu.identity.oidc.codes import check_code, presented
from dancu.identity.oidc.tokens import OAuthError

# The presented codes with their accounts (and a guardian's, when one acted for a child),
# locked as the thread path locks one (``SELECT … FOR UPDATE``). Parameters travel as JSON
# documents or array literals (serialised at once) rather than as arrays dumped element by
# element; codes are picked with ``= ANY(array)``, which the planner sizes right and answers
# from the primary key whatever the table's statistics say (a join with a function's rows
# was planned as a sequential scan of every code until the table was analysed).
_LOCK = """
SELECT c.code_hash, c.client_id, c.redirect_uri, c.scope, c.claims, c.nonce,
       c.code_challenge, c.acr, c.auth_time, c.expires_at, c.used_at, c.dpop_jkt,
       a.id, a.personal_id, a.status, g.id, g.personal_id, g.status
FROM identity_code c
LEFT JOIN identity_account a ON a.id = c.account_id
LEFT JOIN identity_account g ON g.id = (c.claims ->> 'actor')::bigint
WHERE c.code_hash = ANY(%s::text[])
ORDER BY c.code_hash
FOR UPDATE OF c
"""
# The first uses: the codes used up, the refresh tokens they issue and their audit entries.
_USE = f"""
WITH used AS (
    UPDATE identity_code SET used_at = %(now)s, access_jti = %(jtis)s::json ->> code_hash
    WHERE code_hash = ANY(%(codes)s::text[])
), refreshed AS (
    INSERT INTO identity_refresh_token
        (token_hash, family, client_id, account_id, scope, attributes, acr, dpop_jkt,
         access_jti, created_at, expires_at)
    SELECT token_hash, family, client_id, account_id, scope, attributes, acr, dpop_jkt,
           access_jti, created_at, expires_at
    FROM json_populate_recordset(NULL::identity_refresh_token, %(refresh)s::json)
), {APPEND_ENTRIES}
{APPEND_HEAD}
"""

# What a presented code comes to: its first use, a refusal, or None (used before: a replay).
Outcome = FirstUse | OAuthError | None


@dataclass(frozen=True, slots=True)
class Presented:
    """A code as a client presents it at the token endpoint (authenticated, DPoP checked)."""

    client: Client
    code_hash: str
    form: dict[str, str]
    dpop_jkt: str


class CodeRedeemer:
    """First uses of codes, redeemed in groups."""

    def __init__(self, conninfo: str, authorizer: Authorizer, gather_ms: float = 2.0) -> None:
        self.authorizer = authorizer
        self._chain = ReadChain("chg")
        self.group: GroupCommit[Presented, Outcome] = GroupCommit(
            conninfo,
            self._redeem,
            application_name="dancu-code-redeemer",
            gather_ms=gather_ms,
            on_error=self._chain.abandon,
        )

    async def _redeem(
        self, conn: psycopg.AsyncConnection[Any], items: list[Presented]
    ) -> list[Outcome]:
        now = utcnow()
        # Pipelined: BEGIN goes with the locking SELECT, the writes with COMMIT (two round
        # trips per group).
        async with conn.pipeline(), conn.transaction():
            cursor = await conn.execute(_LOCK, (_array({i.code_hash for i in items}),))
            found = {r[0]: _Found(r) for r in await cursor.fetchall()}
            used: set[str] = set()  # a code presented twice in this group: the first wins
            outcomes = [self._first_use(i, found.get(i.code_hash), used, now) for i in items]
            uses = [
                (item.code_hash, o)
                for item, o in zip(items, outcomes, strict=True)
                if isinstance(o, FirstUse)
            ]
            rows = self._chain.rows([use.entry for _, use in uses]) if uses else []
            if uses:
                await conn.execute(_USE, _use_params(uses, rows, now))
        if rows:
            self._chain.advance(rows[-1])
        return outcomes

    def _first_use(
        self, item: Presented, found: _Found | None, used: set[str], now: datetime
    ) -> Outcome:
        try:
            code = presented(item.client, found.code if found else None)
            if code.used_at is not None or item.code_hash in used:
                return None
            assert found is not None
            account, guardian = found.account, found.guardian
            check_code(code, item.form, item.dpop_jkt, now, account, guardian)
            assert account is not None
            use = self.authorizer.first_use(
                item.client, code, item.dpop_jkt, now, account, guardian
            )
        except OAuthError as exc:
            return exc
        used.add(item.code_hash)
        return use


@dataclass(frozen=True, slots=True)
class _Code:
    """A locked code row, as ``Authorizer`` reads one (``PresentedCode``)."""

    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    claims: dict[str, Any]
    nonce: str
    code_challenge: str
    acr: str
    auth_time: datetime
    expires_at: datetime
    used_at: datetime | None
    dpop_jkt: str


@dataclass(frozen=True, slots=True)
class _Holder:
    """An account, as ``Authorizer`` reads one (``Holder``)."""

    id: int
    personal_id: str
    status: str


class _Found:
    """A locked code with its account and, when one acted for it, the guardian's."""

    __slots__ = ("account", "code", "guardian")

    def __init__(self, r: tuple[Any, ...]) -> None:
        self.code = _Code(*r[:12])
        self.account = _Holder(*r[12:15]) if r[12] is not None else None
        self.guardian = _Holder(*r[15:18]) if r[15] is not None else None


def _use_params(
    uses: list[tuple[str, FirstUse]], rows: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    jtis = {code_hash: use.jti for code_hash, use in uses}
    refresh = [use.refresh_row for _, use in uses if use.refresh_row is not None]
    return {
        "now": now,
        "codes": _array(jtis),
        "jtis": orjson.dumps(jtis).decode(),
        "refresh": orjson.dumps(refresh).decode(),
        **append_params(rows),
    }


def _array(code_hashes: Iterable[str]) -> str:
    """A ``text[]`` literal of code digests (hexadecimal: nothing to quote), sorted."""
    return "{" + ",".join(sorted(code_hashes)) + "}"
