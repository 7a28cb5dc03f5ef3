"""The event-loop replay guard (PostgreSQL): each (client, jti) is accepted once, whether the
copies arrive in one group commit or in different ones, from one process or several."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from dancu.core.db import libpq_conninfo
from dancu.core.timeutil import utcnow
from dancu.identity.clients import ClientRegistration, ClientRegistry
from dancu.identity.fast_token import AsyncReplayGuard
from dancu.identity.tokens import ReplayStore


def test_each_assertion_is_accepted_once(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the event-loop replay guard serves the PostgreSQL server")
    from joserfc.jwk import ECKey

    from dancu.core.db import make_sessionmaker

    factory = make_sessionmaker(engine)
    key = ECKey.generate_key("P-256", private=True)
    ClientRegistry(factory).register(
        ClientRegistration(
            name="agency", purpose="replays", client_id="agency",
            jwks={"keys": [key.as_dict(private=False)]},
        )
    )  # fmt: skip
    expires = utcnow() + timedelta(minutes=5)
    first = AsyncReplayGuard(libpq_conninfo(engine.url), gather_ms=20)
    second = AsyncReplayGuard(libpq_conninfo(engine.url), gather_ms=20)

    async def use(guard: AsyncReplayGuard, jti: str) -> bool:
        guard.group.expect()
        await asyncio.sleep(0)
        return await guard.group.submit(("agency", jti, expires), expected=True)

    async def main() -> list[bool]:
        await first.group.start()
        await second.group.start()
        try:
            # "a" three times in one group, "b" in both processes, "c" once.
            return list(
                await asyncio.gather(
                    use(first, "jti-aaaaaaaa"),
                    use(first, "jti-aaaaaaaa"),
                    use(first, "jti-aaaaaaaa"),
                    use(first, "jti-bbbbbbbb"),
                    use(second, "jti-bbbbbbbb"),
                    use(second, "jti-cccccccc"),
                )
            )
        finally:
            await first.group.stop()
            await second.group.stop()

    results = asyncio.run(main())
    assert results[:3].count(True) == 1
    assert results[3:5].count(True) == 1
    assert results[5] is True
    # The thread path's store sees the same records.
    assert ReplayStore(factory).first_use("agency", "jti-cccccccc", expires) is False
    assert ReplayStore(factory).first_use("agency", "jti-dddddddd", expires) is True
