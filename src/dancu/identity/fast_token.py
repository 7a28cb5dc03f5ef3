"""The client-credentials grant with ``private_key_jwt`` answered on the server's event loop
(PostgreSQL): the grant agency systems call most. The assertion is checked as
``TokenEndpoint.check_assertion`` does (the client and its keys come from a cache); its
``jti`` is recorded through a group commit (one ``INSERT … ON CONFLICT DO NOTHING RETURNING``
per group), so a replay to any server process is refused and no request pays a commit of its
own. Other grants, ``client_secret_basic``, DPoP proofs and SQLite take the thread path.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from functools import partial
from typing import Any

import anyio
import psycopg

from dancu.core.groupcommit import GroupCommit
from dancu.core.timeutil import utcnow
from dancu.identity.tokens import OAuthError, TokenEndpoint, assertion_issuer

_RECORD = """
INSERT INTO identity_used_assertion (client_id, jti, expires_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING client_id, jti
"""
_PURGE = "DELETE FROM identity_used_assertion WHERE expires_at < %s"
PURGE_EVERY_S = 60.0

Seen = tuple[str, str, datetime]  # client id, jti, expiry


class AsyncReplayGuard:
    """First use of each (client, jti), recorded in groups."""

    def __init__(self, conninfo: str, gather_ms: float = 2.0) -> None:
        self.group: GroupCommit[Seen, bool] = GroupCommit(
            conninfo, self._record, application_name="dancu-replay-guard", gather_ms=gather_ms
        )
        self._next_purge = 0.0

    async def _record(self, conn: psycopg.AsyncConnection[Any], items: list[Seen]) -> list[bool]:
        cursor = await conn.execute(
            _RECORD, ([c for c, _, _ in items], [j for _, j, _ in items], [e for *_, e in items])
        )
        stored = {(c, j) for c, j in await cursor.fetchall()}
        if time.monotonic() > self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_S
            await conn.execute(_PURGE, (utcnow(),))
        first: list[bool] = []
        seen: set[tuple[str, str]] = set()
        for client_id, jti, _ in items:  # the same jti twice in one group: the first wins
            key = (client_id, jti)
            first.append(key in stored and key not in seen)
            seen.add(key)
        return first


class FastClientCredentials:
    def __init__(self, tokens: TokenEndpoint, guard: AsyncReplayGuard) -> None:
        self.tokens, self.guard = tokens, guard
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        await self.guard.group.start()
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._loop = None
        await self.guard.group.stop()

    def serves_here(self) -> bool:
        try:
            return self._loop is not None and asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def grant(self, form: dict[str, str], issuer: str, endpoint: str) -> dict[str, Any]:
        assertion = form.get("client_assertion", "")
        group = self.guard.group
        group.expect()  # the replay guard gathers the jtis of requests under way
        try:
            check = partial(self.tokens.check_assertion, assertion, issuer, endpoint)
            if self.tokens.clients.cached(assertion_issuer(assertion)) is not None:
                client, jti, expires = check()  # CPU only: the client and keys are cached
            else:  # the database (and perhaps a JWKS URI) on a worker thread
                client, jti, expires = await anyio.to_thread.run_sync(check)
        except BaseException:
            group.unexpect()
            raise
        if not await group.submit((client.client_id, jti, expires), expected=True):
            raise OAuthError("invalid_client", "the client assertion was already used", 401)
        return self.tokens.client_credentials(client, form.get("scope"), issuer).body()
