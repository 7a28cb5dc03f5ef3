"""The token endpoint's busiest grants answered on the server's event loop (PostgreSQL): client
credentials with ``private_key_jwt``, which agency systems call most (decision 0004), and
the authorization-code exchange that ends every citizen's sign-in at a relying party
(decision 0008). The assertion is checked as ``TokenEndpoint.check_assertion`` does (the
client and its keys come from a cache), a DPoP proof as ``DPoPVerifier.check`` does; their
``jti`` are recorded through a group commit (one ``INSERT … ON CONFLICT DO NOTHING
RETURNING`` per group), so a replay to any server process is refused and no request pays a
commit of its own; codes are redeemed in groups too (``fast_code``). Other grants,
``client_secret_basic``, client credentials with a DPoP proof and SQLite take the thread
path.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from functools import partial
from typing import Any

import anyio
import orjson
import psycopg

from dancu.core.groupcommit import GroupCommit
from dancu.core.timeutil import utcnow
from dancu.identity.models import Client
from dancu.identity.oidc.digests import digest
from dancu.identity.oidc.dpop import DPoPVerifier, replay_key
from dancu.identity.oidc.fast_code import CodeRedeemer, Presented
from dancu.identity.oidc.tokens import ASSERTION_TYPE, OAuthError, TokenEndpoint, assertion_issuer

# The group's (client, jti) as JSON documents (serialised in C, not element by element). A
# DPoP proof's jti (``second``) is recorded only with the first use of the client assertion
# it came with (``first``), as the thread path checks the assertion, then the proof.
_RECORD = """
WITH first AS (
    INSERT INTO identity_used_assertion (client_id, jti, expires_at)
    SELECT client_id, jti, expires_at
    FROM json_to_recordset(%(first)s::json) AS t(client_id text, jti text, expires_at timestamptz)
    ON CONFLICT DO NOTHING
    RETURNING client_id, jti
), second AS (
    INSERT INTO identity_used_assertion (client_id, jti, expires_at)
    SELECT t.key, t.key_jti, t.expires_at
    FROM json_to_recordset(%(second)s::json)
        AS t(client_id text, jti text, key text, key_jti text, expires_at timestamptz)
    JOIN first USING (client_id, jti)
    ON CONFLICT DO NOTHING
    RETURNING client_id, jti
)
SELECT 0, client_id, jti FROM first UNION ALL SELECT 1, client_id, jti FROM second
"""
_PURGE = "DELETE FROM identity_used_assertion WHERE expires_at < %s"
PURGE_EVERY_S = 60.0

Seen = tuple[str, str, datetime]  # client id (or a DPoP key's replay_key), jti, expiry
# What a request records: its client assertion's jti, and the DPoP proof's after it, if any.
Uses = tuple[Seen] | tuple[Seen, Seen]


class AsyncReplayGuard:
    """First use of each (client, jti), recorded in groups. A request hands over its keys
    (``Uses``) and learns which one was used before (its index), or None: all first uses."""

    def __init__(self, conninfo: str, gather_ms: float = 2.0) -> None:
        self.group: GroupCommit[Uses, int | None] = GroupCommit(
            conninfo, self._record, application_name="dancu-replay-guard", gather_ms=gather_ms
        )
        self._next_purge = 0.0

    async def _record(
        self, conn: psycopg.AsyncConnection[Any], items: list[Uses]
    ) -> list[int | None]:
        first, second, asked = [], [], set()
        for uses in items:  # a first key given twice in the group: the database sees it once
            (client_id, jti, expires), *proof = uses
            if (client_id, jti) in asked:
                continue
            asked.add((client_id, jti))
            first.append({"client_id": client_id, "jti": jti, "expires_at": expires})
            for key, key_jti, key_expires in proof:
                second.append(
                    {"client_id": client_id, "jti": jti, "key": key, "key_jti": key_jti,
                     "expires_at": key_expires}
                )  # fmt: skip
        params = {"first": orjson.dumps(first).decode(), "second": orjson.dumps(second).decode()}
        cursor = await conn.execute(_RECORD, params)
        stored: tuple[set[tuple[str, str]], ...] = (set(), set())
        for index, client_id, jti in await cursor.fetchall():
            stored[index].add((client_id, jti))
        if time.monotonic() > self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_S
            await conn.execute(_PURGE, (utcnow(),))
        return _replays(items, stored)


def _replays(items: list[Uses], stored: tuple[set[tuple[str, str]], ...]) -> list[int | None]:
    """Per item, the index of its first key used before (in the database or earlier in the
    group: the first in the group wins), or None."""
    claimed: tuple[set[tuple[str, str]], ...] = (set(), set())
    out: list[int | None] = []
    for uses in items:
        replay = None
        for index, (client_id, jti, _) in enumerate(uses):
            key = (client_id, jti)
            if key not in stored[index] or key in claimed[index]:
                replay = index
                break
            claimed[index].add(key)
        out.append(replay)
    return out


class FastTokenEndpoint:
    """The grants answered on the event loop: client credentials without a DPoP proof and,
    with ``codes``, the authorization code (decision 0008), with a proof or without."""

    def __init__(
        self,
        tokens: TokenEndpoint,
        guard: AsyncReplayGuard,
        dpop: DPoPVerifier,
        codes: CodeRedeemer | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        """``limiter``: the threads of the thread path, for what this one hands it."""
        self.tokens, self.guard, self.dpop, self.codes = tokens, guard, dpop, codes
        self.limiter = limiter
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        await self.guard.group.start()
        if self.codes is not None:
            await self.codes.group.start()
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._loop = None
        await self.guard.group.stop()
        if self.codes is not None:
            await self.codes.group.stop()

    def serves_here(self) -> bool:
        try:
            return self._loop is not None and asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def accepts(self, form: dict[str, str], proof: str | None) -> bool:
        """Whether this path answers the request (otherwise the thread path does): a client
        authenticated by ``private_key_jwt`` asking for one of the grants above."""
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return False
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return proof is None
        return grant == "authorization_code" and self.codes is not None

    async def answer(
        self, form: dict[str, str], proof: str | None, issuer: str, endpoint: str
    ) -> dict[str, Any]:
        """The token response to a request this path ``accepts``, as the thread path answers
        it; refusals raise ``OAuthError``."""
        if form.get("grant_type") == "authorization_code":
            return await self.authorization_code(form, proof, issuer, endpoint)
        return await self.client_credentials(form, issuer, endpoint)

    async def client_credentials(
        self, form: dict[str, str], issuer: str, endpoint: str
    ) -> dict[str, Any]:
        with self.guard.group.announce() as jti_of:  # the group gathers requests under way
            client, jti, expires = await self._assertion(form, issuer, endpoint)
            if await jti_of.submit(((client.client_id, jti, expires),)) is not None:
                raise OAuthError("invalid_client", "the client assertion was already used", 401)
        return self.tokens.client_credentials(client, form.get("scope"), issuer).body()

    async def authorization_code(
        self, form: dict[str, str], proof: str | None, issuer: str, endpoint: str
    ) -> dict[str, Any]:
        """The code exchange, checked in the thread path's order: the client assertion, its
        single use, the DPoP proof, its single use, then the code (``fast_code``)."""
        codes = self.codes
        assert codes is not None
        with self.guard.group.announce() as jti_of, codes.group.announce() as code_of:
            client, jti, expires = await self._assertion(form, issuer, endpoint)
            proved: tuple[str, str, datetime] | OAuthError | None = None
            if proof is not None:  # a DPoP header, even an empty one, is checked
                try:
                    proved = self.dpop.check(proof, "POST", endpoint)
                except OAuthError as exc:
                    proved = exc
            uses: Uses = ((client.client_id, jti, expires),)
            if isinstance(proved, tuple):
                uses = (uses[0], (replay_key(proved[0]), proved[1], proved[2]))
            replayed = await jti_of.submit(uses)
            if replayed == 0:
                raise OAuthError("invalid_client", "the client assertion was already used", 401)
            if isinstance(proved, OAuthError):
                raise proved
            if replayed == 1:
                raise OAuthError("invalid_dpop_proof", "the DPoP proof was already used")
            jkt = proved[0] if proved is not None else ""
            code = form.get("code", "")
            outcome = await code_of.submit(Presented(client, digest(code), form, jkt))
        authorizer = codes.authorizer
        if isinstance(outcome, OAuthError):
            raise outcome
        if outcome is None:  # used before: the thread path revokes what its first use issued
            exchange = partial(authorizer.exchange, client, form, issuer, jkt)
            return await anyio.to_thread.run_sync(exchange, limiter=self.limiter)
        if outcome.reads_register:  # the ID token carries claims from the register
            answer = partial(authorizer.answer, client, issuer, outcome)
            return await anyio.to_thread.run_sync(answer, limiter=self.limiter)
        return authorizer.answer(client, issuer, outcome)

    async def _assertion(
        self, form: dict[str, str], issuer: str, endpoint: str
    ) -> tuple[Client, str, datetime]:
        """``TokenEndpoint.check_assertion``: on the loop when the client is cached, else on
        a worker thread (the database, perhaps a JWKS URI)."""
        assertion = form.get("client_assertion", "")
        client_id = assertion_issuer(assertion)
        check = partial(self.tokens.check_assertion, assertion, issuer, endpoint, client_id)
        if self.tokens.clients.cached(client_id) is not None:
            return check()  # CPU only: the client and keys are cached
        return await anyio.to_thread.run_sync(check, limiter=self.limiter)
