"""Group commit on the event loop, for writes a request must see committed before it answers
(an audited read, a client assertion's ``jti``) but which cost PostgreSQL far more per commit
than per row.

Requests hand an item over and await its result. One task on the server's event loop writes
what was handed over in one statement through its own connection (autocommit: one round trip,
one WAL flush per group). A request announces itself when it starts (``expect``); while
announced requests are still under way the task waits for their items, at most ``gather_ms``,
so an idle server commits a lone item at once and a busy one commits the items in flight
together. No thread, so no lock passes between the task and the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Writer = Callable[[psycopg.AsyncConnection[Any], list[T]], Awaitable[list[R]]]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        conninfo: str,
        write: Writer[T, R],
        *,
        application_name: str,
        max_batch: int = 512,
        gather_ms: float = 2.0,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        """``write(connection, items)`` writes a group in one statement and returns one
        result per item; ``on_error`` runs when a group fails (before the next one)."""
        self._conninfo, self._write = conninfo, write
        self._application_name = application_name
        self._max_batch, self._gather_s = max_batch, gather_ms / 1000
        self._on_error = on_error
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._expected = 0
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0  # for monitoring: items per commit is the grouping achieved
        self.committed = 0

    @property
    def expected(self) -> int:
        """Requests announced whose items have not been handed over yet."""
        return self._expected

    async def start(self) -> None:
        """Start on the running loop (the loop the server answers requests on)."""
        if self._task is None:
            self.loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._stopping = False
            await self._connect()
            self._task = asyncio.create_task(self._run(), name=self._application_name)

    async def stop(self) -> None:
        """Write what was handed over, then close."""
        if self._task is not None and self._wake is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def expect(self) -> None:
        """A request has started whose item will follow (``submit(…, expected=True)``), or
        not (``unexpect``)."""
        self._expected += 1

    def unexpect(self) -> None:
        self._expected -= 1
        if self._wake is not None:
            self._wake.set()

    def announce(self) -> Announcement[T, R]:
        """``expect`` as a context: its item is submitted through it, or on leaving the
        context it is ``unexpect``-ed."""
        return Announcement(self)

    async def submit(self, item: T, *, expected: bool = False) -> R:
        """The item's result once its group is committed; raises if the group failed."""
        if self._wake is None or self.loop is None or self._stopping:
            raise RuntimeError(f"{self._application_name} is not running")
        if expected:
            self._expected -= 1
        done: asyncio.Future[R] = self.loop.create_future()
        self._pending.append((item, done))
        self._wake.set()
        return await done

    async def _gather(self) -> None:
        """Wait while announced requests are under way, up to the gather time."""
        assert self._wake is not None and self.loop is not None
        deadline = self.loop.time() + self._gather_s
        while self._expected > 0 and len(self._pending) < self._max_batch and not self._stopping:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._write(await self._connect(), [item for item, _ in batch])
            except Exception as exc:  # report to every waiter, keep going
                log.exception("%s: a group commit failed", self._application_name)
                if self._on_error is not None:
                    self._on_error()
                if self._conn is not None and not self._conn.closed:
                    await self._conn.close()
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.commits += 1
            self.committed += len(batch)
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():  # the request may have gone away
                    done.set_result(result)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=self._application_name
            )
        return self._conn


class Announcement(Generic[T, R]):
    """A request announced to a group (``GroupCommit.announce``) whose item may follow."""

    def __init__(self, group: GroupCommit[T, R]) -> None:
        self._group, self._open = group, True
        group.expect()

    async def submit(self, item: T) -> R:
        if not self._open:
            raise RuntimeError("this announcement's item was submitted or withdrawn")
        self._open = False
        return await self._group.submit(item, expected=True)

    def withdraw(self) -> None:
        """The item will not follow (a no-op once it was submitted)."""
        if self._open:
            self._open = False
            self._group.unexpect()

    def __enter__(self) -> Announcement[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.withdraw()
