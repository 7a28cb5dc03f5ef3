"""The outbox relay (DESIGN "Every change is an event, published exactly once").

Use cases write an ``outbox_event`` row in the same transaction as their change. The relay
reads unpublished rows in id order, publishes each to NATS JetStream with the row id as the
message id (``Nats-Msg-Id``), and marks them published in the same transaction that locked
them. If the relay dies after publishing but before committing, the rows are published again
and JetStream drops the duplicates within its duplicate window; consumers are idempotent too.
On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED`` so several relays can run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.models import OutboxCursor, OutboxEvent
from dancu.core.timeutil import utcnow

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    """Port: somewhere events go. ``msg_id`` must be used for de-duplication."""

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class MemoryPublisher:
    """Fake for development and tests: keeps what was published, de-duplicating by id."""

    messages: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        self.messages.setdefault(msg_id, (subject, payload))

    async def close(self) -> None:
        return None


class JetStreamPublisher:
    """NATS JetStream adapter. Creates the stream (subjects ``<prefix>.>``) when missing."""

    def __init__(self, url: str, stream: str, prefix: str) -> None:
        self.url, self.stream, self.prefix = url, stream, prefix
        self._nc: object | None = None
        self._js: object | None = None

    async def _connect(self) -> object:
        if self._js is None:
            import nats
            from nats.js.errors import NotFoundError

            nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
            js = nc.jetstream()
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
            self._nc, self._js = nc, js
        return self._js

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        js = await self._connect()
        await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()  # type: ignore[attr-defined]
            self._nc = self._js = None


class OutboxRelay:
    def __init__(
        self,
        factory: sessionmaker[Session],
        publisher: EventPublisher,
        prefix: str,
        batch: int = 500,
    ) -> None:
        self.factory, self.publisher, self.prefix, self.batch = factory, publisher, prefix, batch

    async def relay_once(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        with self.factory() as session, session.begin():
            stmt = (
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            for row in rows:
                envelope = {
                    "id": row.id,
                    "topic": row.topic,
                    "key": row.key,
                    "created_at": row.created_at.isoformat(),
                    "payload": row.payload,
                }
                await self.publisher.publish(
                    f"{self.prefix}.{row.topic}", orjson.dumps(envelope), str(row.id)
                )
            now = utcnow()
            for row in rows:
                row.published_at = now
        return len(rows)

    async def run(self, interval_s: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set, draining backlogs without waiting between batches."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                published = await self.relay_once()
            except Exception:  # a broker outage must not kill the relay; retry later
                log.exception("outbox relay failed; retrying")
                published = 0
            if published < self.batch:
                with contextlib.suppress(TimeoutError):  # idle: wait for the next poll
                    await asyncio.wait_for(stop.wait(), interval_s)


Handler = Callable[[str, dict[str, Any]], None]


class LocalSubscriber:
    """An in-process subscriber to the outbox, for contexts that share the database (the
    identity context suspends an account when the register records a death). Events reach
    ``handler`` in id order, at least once: the cursor is saved after a batch was handled,
    so a crash hands that batch over again, and two processes polling at once may both hand
    an event over; handlers are idempotent. No lock is held while a handler runs (on SQLite
    that would block the handler's own writes).

    On PostgreSQL a transaction may commit a lower outbox id after a higher one; events are
    therefore taken only once they are ``grace`` old, by which time any transaction that
    wrote a lower id has committed (the register's use cases take milliseconds). SQLite has a
    single writer, so ids commit in order. Deployments with NATS can subscribe to the same
    subjects through JetStream instead (the relay publishes every event there)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        name: str,
        topics: tuple[str, ...],
        handler: Handler,
        *,
        batch: int = 200,
        grace: timedelta = timedelta(seconds=5),
    ) -> None:
        self.factory, self.name, self.topics, self.handler = factory, name, topics, handler
        self.batch, self.grace = batch, grace

    def deliver(self) -> int:
        """Hand the pending events to the handler; returns how many were handled."""
        with self.factory() as session:
            cursor = session.get(OutboxCursor, self.name)
            start = cursor.last_id if cursor else 0
            query = (
                select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.payload)
                .where(OutboxEvent.id > start, OutboxEvent.topic.in_(self.topics))
                .order_by(OutboxEvent.id)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.where(OutboxEvent.created_at <= utcnow() - self.grace)
            events = session.execute(query).all()
        if not events:
            return 0
        for _id, topic, payload in events:
            self.handler(topic, payload)  # in its own transaction
        with self.factory() as session, session.begin():
            cursor = session.get(OutboxCursor, self.name, with_for_update=True)
            if cursor is None:
                session.add(OutboxCursor(consumer=self.name, last_id=events[-1][0]))
            elif cursor.last_id < events[-1][0]:
                cursor.last_id, cursor.updated_at = events[-1][0], utcnow()
        return len(events)


async def run_subscribers(
    subscribers: list[LocalSubscriber], interval_s: float, stop: asyncio.Event
) -> None:
    """Deliver pending events to each subscriber (on a worker thread: handlers use the
    synchronous services) every ``interval_s`` until ``stop`` is set."""
    import anyio

    while not stop.is_set():
        for subscriber in subscribers:
            try:
                while await anyio.to_thread.run_sync(subscriber.deliver) >= subscriber.batch:
                    pass  # a backlog: keep going without waiting
            except Exception:  # one failing handler must not stop the others; retry later
                log.exception("delivering events to %s failed; retrying", subscriber.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
