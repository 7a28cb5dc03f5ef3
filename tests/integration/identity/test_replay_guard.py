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
from dancu.identity.oidc.fast_token import AsyncReplayGuard, Uses
from dancu.identity.oidc.tokens import ReplayStore


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

    async def use(guard: AsyncReplayGuard, jti: str, proof: str = "") -> int | None:
        guard.group.expect()
        await asyncio.sleep(0)
        assertion = ("agency", jti, expires)
        keys: Uses = (assertion, ("dpop:key", proof, expires)) if proof else (assertion,)
        return await guard.group.submit(keys, expected=True)

    async def main() -> list[int | None]:
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
    assert results[:3].count(None) == 1 and results[:3].count(0) == 2
    assert results[3:5].count(None) == 1
    assert results[5] is None
    # The thread path's store sees the same records.
    assert ReplayStore(factory).first_use("agency", "jti-cccccccc", expires) is False
    assert ReplayStore(factory).first_use("agency", "jti-dddddddd", expires) is True


def test_a_dpop_proof_is_recorded_only_with_its_assertions_first_use(engine: Engine) -> None:
    """As the thread path checks them: the assertion's jti, then the proof's. A replayed
    assertion leaves its proof unused; a fresh assertion with a used proof is refused at the
    proof (index 1); in one group, the first request with a proof wins it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the event-loop replay guard serves the PostgreSQL server")
    guard = AsyncReplayGuard(libpq_conninfo(engine.url), gather_ms=20)
    expires = utcnow() + timedelta(minutes=5)

    def uses(assertion: str, proof: str) -> Uses:
        return (("agency", assertion, expires), ("dpop:holder", proof, expires))

    async def at_once(*items: Uses) -> list[int | None]:
        for _ in items:
            guard.group.expect()
        await asyncio.sleep(0)
        return list(await asyncio.gather(*(guard.group.submit(i, expected=True) for i in items)))

    async def main() -> list[list[int | None]]:
        await guard.group.start()
        try:
            return [
                await at_once(uses("assert-1-aaaa", "proof-1-aaaa")),
                # The assertion again, with a new proof: refused at the assertion...
                await at_once(uses("assert-1-aaaa", "proof-2-aaaa")),
                # ... so that proof is still unused; a used proof is refused at index 1.
                await at_once(uses("assert-2-aaaa", "proof-2-aaaa")),
                await at_once(uses("assert-3-aaaa", "proof-1-aaaa")),
                # One group: two requests with the same proof, then two with the same
                # assertion (the second's proof is not recorded).
                await at_once(
                    uses("assert-4-aaaa", "proof-3-aaaa"),
                    uses("assert-5-aaaa", "proof-3-aaaa"),
                    uses("assert-6-aaaa", "proof-4-aaaa"),
                    uses("assert-6-aaaa", "proof-5-aaaa"),
                ),
                await at_once(uses("assert-7-aaaa", "proof-5-aaaa")),
            ]
        finally:
            await guard.group.stop()

    assert asyncio.run(main()) == [[None], [0], [None], [1], [None, 1, None, 0], [None]]
