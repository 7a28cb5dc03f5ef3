"""Outbox relay against the real NATS JetStream server: every event once, in order, and a relay
that crashes after publishing causes no duplicate."""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import date

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.models import OutboxEvent
from dancu.core.outbox import JetStreamPublisher, MemoryPublisher, OutboxRelay
from dancu.registry.service import RegistryService
from tests.helpers import resident

NATS_URL = os.environ.get("DANCU_TEST_NATS", "nats://127.0.0.1:4222")
ADMIN = OfficerContext("admin", Role.MINISTRY)


def _people(registry: RegistryService, n: int) -> None:
    for i in range(n):
        registry.register_person(
            ADMIN,
            resident(f"Lý Văn {'ABCDEFGHIK'[i]}", date(1980, 1, 1 + i), "M", date(2000, 1, 1)),
        )


async def _nats_or_skip() -> None:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires NATS at {NATS_URL}: {exc}")
        pytest.skip(f"NATS at {NATS_URL} unreachable: {exc}")
    await nc.close()


async def _stream_messages(stream: str, prefix: str) -> list[dict[str, object]]:
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream)
    out: list[dict[str, object]] = []
    try:
        while True:
            msgs = await sub.fetch(50, timeout=1)
            out += [orjson.loads(m.data) for m in msgs]
            for m in msgs:
                await m.ack()
    except (TimeoutError, nats.errors.TimeoutError):
        pass
    await js.delete_stream(stream)
    await nc.close()
    return out


def test_relay_publishes_each_event_once_to_jetstream(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    asyncio.run(_nats_or_skip())
    tag = secrets.token_hex(4)
    stream, prefix = f"DANCU_TEST_{tag}", f"dancu_test_{tag}"
    _people(registry, 3)

    async def scenario() -> list[dict[str, object]]:
        publisher = JetStreamPublisher(NATS_URL, stream, prefix)
        relay = OutboxRelay(session_factory, publisher, prefix, batch=2)
        assert await relay.relay_once() == 2
        assert await relay.relay_once() == 1
        assert await relay.relay_once() == 0
        # A relay that died after publishing but before committing: the rows look unsent.
        with session_factory() as session, session.begin():
            session.execute(update(OutboxEvent).values(published_at=None))
        assert await relay.relay_once() == 2
        await publisher.close()
        return await _stream_messages(stream, prefix)

    messages = asyncio.run(scenario())
    with session_factory() as session:
        ids = list(session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id)))
    assert [m["id"] for m in messages] == ids  # once each, in order
    assert {m["topic"] for m in messages} == {"registry.person.registered"}


def test_memory_publisher_and_run_loop_stop(
    registry: RegistryService, session_factory: sessionmaker[Session]
) -> None:
    _people(registry, 2)
    publisher = MemoryPublisher()
    relay = OutboxRelay(session_factory, publisher, "dancu")

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(interval_s=0.01, stop=stop))
        for _ in range(500):  # bounded: at most ~5 s
            if len(publisher.messages) >= 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(scenario())
    assert (
        sorted(subject for subject, _ in publisher.messages.values())
        == ["dancu.registry.person.registered"] * 2
    )
