"""Redeeming authorization codes on the server's event loop (PostgreSQL; decision 0008): the
code exchange every citizen's sign-in at a relying party ends with.

The codes presented by concurrent requests are redeemed in one transaction per group
(``core.groupcommit``): their rows locked in one statement (in a fixed order, so two server
processes never deadlock), each checked by the thread path's own checks
(``Authorizer.presented`` and ``Authorizer.check_code``) and, when they pass, used up with
their refresh tokens in one statement and their audit entries in another, in a chain of
this writer's own (no shared head to lock). A request learns what its code's first use
issues (``FirstUse``) once the group is committed, and signs its tokens itself. A code that
was used before is reported as such (``None``): the caller hands it to the thread path,
whose ``Authorizer.exchange`` revokes what the first use issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from dancu.core.audit import ReadChain, append_rows
from dancu.core.groupcommit import GroupCommit
from dancu.core.timeutil import utcnow
from dancu.identity.authorize import Authorizer, FirstUse
from dancu.identity.models import Account, AuthorizationCode, Client
from dancu.identity.tokens import OAuthError

# The presented codes with their accounts (and a guardian's, when one acted for a child),
# locked as the thread path locks one (``SELECT … FOR UPDATE``).
_LOCK = """
SELECT c.code_hash, c.client_id, c.account_id, c.redirect_uri, c.scope, c.claims, c.nonce,
       c.code_challenge, c.acr, c.auth_time, c.expires_at, c.used_at, c.access_jti,
       c.dpop_jkt, a.personal_id, a.status, g.id, g.personal_id, g.status
FROM identity_code c
LEFT JOIN identity_account a ON a.id = c.account_id
LEFT JOIN identity_account g ON g.id = (c.claims ->> 'actor')::bigint
WHERE c.code_hash = ANY(%s::text[])
ORDER BY c.code_hash
FOR UPDATE OF c
"""
_CODE_COLUMNS = (
    "code_hash", "client_id", "account_id", "redirect_uri", "scope", "claims", "nonce",
    "code_challenge", "acr", "auth_time", "expires_at", "used_at", "access_jti", "dpop_jkt",
)  # fmt: skip
# The first uses: the codes used up, and the refresh tokens they issue.
_USE = """
WITH used AS (
    UPDATE identity_code c SET used_at = %(now)s, access_jti = u.jti
    FROM unnest(%(code_hash)s::text[], %(jti)s::text[]) AS u(code_hash, jti)
    WHERE c.code_hash = u.code_hash
)
INSERT INTO identity_refresh_token
    (token_hash, family, client_id, account_id, scope, attributes, acr, dpop_jkt,
     access_jti, created_at, expires_at)
SELECT token_hash, family, client_id, account_id, scope, attributes::json, acr, dpop_jkt,
       access_jti, created_at, expires_at
FROM unnest(
    %(token_hash)s::text[], %(family)s::text[], %(client_id)s::text[], %(account_id)s::bigint[],
    %(scope)s::text[], %(attributes)s::text[], %(acr)s::text[], %(dpop_jkt)s::text[],
    %(access_jti)s::text[], %(created_at)s::timestamptz[], %(expires_at)s::timestamptz[]
) AS r(token_hash, family, client_id, account_id, scope, attributes, acr, dpop_jkt,
       access_jti, created_at, expires_at)
"""
_REFRESH_COLUMNS = (
    "token_hash", "family", "client_id", "account_id", "scope", "attributes", "acr",
    "dpop_jkt", "access_jti", "created_at", "expires_at",
)  # fmt: skip

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
        async with conn.transaction():
            cursor = await conn.execute(_LOCK, (sorted({i.code_hash for i in items}),))
            found = {r[0]: _Found(r) for r in await cursor.fetchall()}
            outcomes = [self._first_use(item, found.get(item.code_hash), now) for item in items]
            uses = [
                (item.code_hash, o)
                for item, o in zip(items, outcomes, strict=True)
                if isinstance(o, FirstUse)
            ]
            rows = self._chain.rows([use.entry for _, use in uses]) if uses else []
            if uses:
                await conn.execute(_USE, _use_params(uses, now))
                await append_rows(conn, rows)
        if rows:
            self._chain.advance(rows[-1])
        return outcomes

    def _first_use(self, item: Presented, found: _Found | None, now: datetime) -> Outcome:
        try:
            row = Authorizer.presented(item.client, found.code if found else None)
            if row.used_at is not None:
                return None
            assert found is not None
            Authorizer.check_code(row, item.form, item.dpop_jkt, now, found.account, found.guardian)
            assert found.account is not None
            use = self.authorizer.first_use(
                item.client, row, item.dpop_jkt, now, found.account, found.guardian
            )
        except OAuthError as exc:
            return exc
        row.used_at = now  # the same code again in this group is a replay
        return use


class _Found:
    """A locked code row with its accounts, as the thread path's ORM objects (transient)."""

    __slots__ = ("account", "code", "guardian")

    def __init__(self, r: tuple[Any, ...]) -> None:
        self.code = AuthorizationCode(**dict(zip(_CODE_COLUMNS, r[:14], strict=True)))
        self.account = (
            Account(id=r[2], personal_id=r[14], status=r[15]) if r[14] is not None else None
        )
        self.guardian = (
            Account(id=r[16], personal_id=r[17], status=r[18]) if r[16] is not None else None
        )


def _use_params(uses: list[tuple[str, FirstUse]], now: datetime) -> dict[str, Any]:
    refresh = [use.refresh_row for _, use in uses if use.refresh_row is not None]
    params: dict[str, Any] = {
        "now": now,
        "code_hash": [code_hash for code_hash, _ in uses],
        "jti": [use.jti for _, use in uses],
    }
    for column in _REFRESH_COLUMNS:
        params[column] = [getattr(r, column) for r in refresh]
    params["attributes"] = [orjson.dumps(a).decode() for a in params["attributes"]]
    return params
