"""The audit log: append-only, hash-chained, durable before the response leaves.

Every entry belongs to a chain and carries ``seq`` and the hash of the previous entry in that
chain, so an edited, inserted or deleted entry breaks the chain; each chain's head row
(``audit_chain_head``) is written in the same commit as its entries, so truncating a chain's
tail is detected too.

Chain heads are signed periodically (``checkpoint``, ``dancu audit checkpoint``) with an HMAC
key derived from the server secret, which lives outside the database: a chain rewritten and
re-hashed end to end no longer matches its signed checkpoints.

Two writers fill chains without ever serialising on one global head (DESIGN "durable audit"):

- **Changes** (``record_change``) are written inside the use case's own transaction, so a
  change and its audit commit or roll back together. The chain is one of ``CHANGE_SHARDS``
  per day, picked at random; the head row is locked with ``SELECT … FOR UPDATE`` on
  PostgreSQL, so only transactions that picked the same shard wait for one another.
- **Reads** go through ``GroupAuditWriter``: callers hand over an entry and wait; a single
  flusher thread gathers whatever arrived in the last few milliseconds into one transaction
  (one WAL flush for many requests) in a chain owned by this writer alone, and only then
  releases the callers. A crash loses no read whose response left. The async server on
  PostgreSQL uses ``AsyncGroupAuditWriter``, the same idea as a task on its event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import queue
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.db import insert_or_skip
from dancu.core.groupcommit import GroupCommit
from dancu.core.models import AuditChainHead, AuditCheckpoint, AuditEntry
from dancu.core.timeutil import utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CHANGE_SHARDS = 8
_FIELDS = (
    "chain",
    "seq",
    "at",
    "actor",
    "role",
    "unit",
    "purpose",
    "action",
    "subject",
    "detail",
    "prev_hash",
)


@dataclass(slots=True)
class Actor:
    """Who is acting, in what role, from which unit, for what purpose."""

    actor: str
    role: str
    unit: str
    purpose: str


SYSTEM = Actor("system", "system", "", "system")


@dataclass(slots=True)
class Entry:
    actor: Actor
    action: str
    subject: str
    detail: str = ""
    at: datetime = field(default_factory=utcnow)

    def row(self, chain: str, seq: int, prev_hash: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "chain": chain,
            "seq": seq,
            "at": self.at,
            "actor": self.actor.actor,
            "role": self.actor.role,
            "unit": self.actor.unit,
            "purpose": self.actor.purpose,
            "action": self.action,
            "subject": self.subject,
            "detail": self.detail,
            "prev_hash": prev_hash,
        }
        row["hash"] = entry_hash(row)
        return row


def entry_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the entry's fields in a fixed order (timestamps as ISO-8601 UTC)."""
    values = [row[k].isoformat() if isinstance(row[k], datetime) else row[k] for k in _FIELDS]
    return hashlib.sha256(orjson.dumps(values)).hexdigest()


def _today_chain(kind: str, suffix: str) -> str:
    return f"{kind}:{utcnow():%Y-%m-%d}:{suffix}"


def record_change(session: Session, entry: Entry) -> None:
    """Append a change entry inside the caller's transaction (commits with the change)."""
    chain = _today_chain("chg", str(secrets.randbelow(CHANGE_SHARDS)))
    head = _locked_head(session, chain)
    if head is None:
        # A new shard (once per shard per day): create its head so that concurrent writers
        # wait for one another instead of colliding (ON CONFLICT DO NOTHING waits for the
        # other inserter's commit), then lock it like any other day.
        insert_or_skip(
            session, AuditChainHead, chain=chain, seq=0, hash=GENESIS, updated_at=utcnow()
        )
        head = _locked_head(session, chain)
        assert head is not None
    row = entry.row(chain, head.seq + 1, head.hash)
    session.execute(insert(AuditEntry), [row])
    head.seq, head.hash, head.updated_at = row["seq"], row["hash"], utcnow()


def _locked_head(session: Session, chain: str) -> AuditChainHead | None:
    return session.execute(
        select(AuditChainHead).where(AuditChainHead.chain == chain).with_for_update()
    ).scalar_one_or_none()


@dataclass(slots=True)
class _Pending:
    entry: Entry
    done: threading.Event | None = None
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    error: BaseException | None = None


class ReadChain:
    """The chain one group writer appends reads to (or, ``kind="chg"``, changes it commits
    itself): its own, so appending needs no lock on a shared head. A new chain starts each
    day and whenever a commit failed: a commit whose outcome is unknown (the connection
    dropped while committing) may or may not have stored its entries, so their sequence
    numbers are never reused."""

    def __init__(self, kind: str = "read") -> None:
        self.kind = kind
        self.abandon()

    def abandon(self) -> None:
        self._writer_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._name, self._seq, self._hash = "", 0, GENESIS

    def rows(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """The rows that append ``entries``; the chain moves on only with ``advance``."""
        name = _today_chain(self.kind, self._writer_id)
        seq, prev = (self._seq, self._hash) if name == self._name else (0, GENESIS)
        rows = []
        for entry in entries:
            seq += 1
            row = entry.row(name, seq, prev)
            prev = row["hash"]
            rows.append(row)
        return rows

    def advance(self, last: dict[str, Any]) -> None:
        """The rows up to ``last`` are committed."""
        self._name, self._seq, self._hash = last["chain"], last["seq"], last["hash"]


class GroupAuditWriter:
    """Durable audit of reads with group commit. One instance per process."""

    def __init__(
        self, factory: sessionmaker[Session], flush_ms: float = 2.0, max_batch: int = 512
    ) -> None:
        self._factory = factory
        self._flush_s = flush_ms / 1000
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._chain = ReadChain()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=10)
                self._thread = None

    def write(self, entry: Entry) -> None:
        """Block until the entry is committed."""
        self.start()
        pending = _Pending(entry, done=threading.Event())
        self._queue.put(pending)
        assert pending.done is not None
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    async def awrite(self, entry: Entry) -> None:
        """Await until the entry is committed, without blocking the event loop."""
        self.start()
        loop = asyncio.get_running_loop()
        pending = _Pending(entry, future=loop.create_future(), loop=loop)
        self._queue.put(pending)
        assert pending.future is not None
        await pending.future

    def _batches(self) -> Iterator[list[_Pending]]:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            # Gather what arrives within the flush window; the first caller waits at most this.
            deadline = threading.Event()
            deadline.wait(self._flush_s) if self._flush_s > 0 else None
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    yield batch
                    return
                batch.append(item)
            yield batch

    def _run(self) -> None:
        for batch in self._batches():
            error: BaseException | None = None
            try:
                self._commit(batch)
            except BaseException as exc:  # report to every waiter, keep the thread alive
                log.exception("audit flush failed")
                self._chain.abandon()
                error = exc
            for p in batch:
                self._release(p, error)

    def _commit(self, batch: list[_Pending]) -> None:
        rows = self._chain.rows([p.entry for p in batch])
        chain, seq, last = rows[-1]["chain"], rows[-1]["seq"], rows[-1]["hash"]
        with self._factory() as session, session.begin():
            session.execute(insert(AuditEntry), rows)
            head = session.get(AuditChainHead, chain)
            if head is None:
                session.add(AuditChainHead(chain=chain, seq=seq, hash=last, updated_at=utcnow()))
            else:
                head.seq, head.hash, head.updated_at = seq, last, utcnow()
        self._chain.advance(rows[-1])

    @staticmethod
    def _release(p: _Pending, error: BaseException | None) -> None:
        if p.done is not None:
            p.error = error
            p.done.set()
        elif p.future is not None and p.loop is not None:
            fut = p.future

            def _set() -> None:
                if fut.done():
                    return
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

            p.loop.call_soon_threadsafe(_set)


# One statement, so one round trip and one WAL flush per group in autocommit: the entries and
# the chain's head are written together or not at all. The rows travel as one JSON document
# (serialised by orjson in C) rather than as an array per column (dumped element by element).
# A writer committing changes of its own puts the two parts in its own statement.
APPEND_ENTRIES = """entries AS (
    INSERT INTO audit_entry
        (chain, seq, at, actor, role, unit, purpose, action, subject, detail, prev_hash, hash)
    SELECT chain, seq, at, actor, role, unit, purpose, action, subject, detail, prev_hash, hash
    FROM json_populate_recordset(NULL::audit_entry, %(audit_rows)s::json)
)"""
APPEND_HEAD = """INSERT INTO audit_chain_head (chain, seq, hash, updated_at)
VALUES (%(head_chain)s, %(head_seq)s, %(head_hash)s, %(now)s)
ON CONFLICT (chain) DO UPDATE
    SET seq = excluded.seq, hash = excluded.hash, updated_at = excluded.updated_at"""
_PG_APPEND = f"WITH {APPEND_ENTRIES}\n{APPEND_HEAD}"
APPLICATION_NAME = "dancu-audit-writer"  # how its connections show in pg_stat_activity


class AsyncGroupAuditWriter:
    """Durable audit of reads for the async server on PostgreSQL, with group commit
    (``core.groupcommit``): the same chains as ``GroupAuditWriter``, each group appended in
    one statement (the entries and the chain's head together)."""

    def __init__(self, conninfo: str, max_batch: int = 512, gather_ms: float = 2.0) -> None:
        self._chain = ReadChain()
        self._group: GroupCommit[Entry, None] = GroupCommit(
            conninfo,
            self._append,
            application_name=APPLICATION_NAME,
            max_batch=max_batch,
            gather_ms=gather_ms,
            on_error=self._chain.abandon,
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._group.loop

    @property
    def expected(self) -> int:
        return self._group.expected

    @property
    def commits(self) -> int:
        return self._group.commits

    @property
    def committed(self) -> int:
        return self._group.committed

    async def start(self) -> None:
        await self._group.start()

    async def stop(self) -> None:
        await self._group.stop()

    def expect(self) -> None:
        self._group.expect()

    def unexpect(self) -> None:
        self._group.unexpect()

    async def awrite(self, entry: Entry, *, expected: bool = False) -> None:
        """Return once ``entry`` is committed; raise if it could not be."""
        await self._group.submit(entry, expected=expected)

    async def _append(self, conn: psycopg.AsyncConnection[Any], entries: list[Entry]) -> list[None]:
        rows = self._chain.rows(entries)
        await append_rows(conn, rows)
        self._chain.advance(rows[-1])
        return [None] * len(entries)


async def append_rows(conn: psycopg.AsyncConnection[Any], rows: list[dict[str, Any]]) -> None:
    """Append the rows ``ReadChain.rows`` made (PostgreSQL) and move their chain's head, in
    one statement; the caller advances the chain once they are committed."""
    await conn.execute(_PG_APPEND, append_params(rows))


def append_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ``APPEND_ENTRIES`` and ``APPEND_HEAD`` for rows of one chain."""
    last = rows[-1]
    return {
        "audit_rows": orjson.dumps(rows).decode(),
        "head_chain": last["chain"],
        "head_seq": last["seq"],
        "head_hash": last["hash"],
        "now": utcnow(),
    }


@dataclass(slots=True)
class VerifyReport:
    chains: int = 0
    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _checkpoint_signature(key: str, chain: str, seq: int, hash_: str, at: datetime) -> str:
    message = f"{chain}|{seq}|{hash_}|{at.isoformat()}".encode()
    derived = hashlib.sha256(b"dancu.audit-checkpoint:" + key.encode()).digest()
    return hmac.new(derived, message, hashlib.sha256).hexdigest()


def checkpoint(session: Session, key: str) -> int:
    """Sign every chain head that has no checkpoint yet; returns how many were signed."""
    done = {(c.chain, c.seq) for c in session.scalars(select(AuditCheckpoint))}
    count = 0
    for head in session.scalars(select(AuditChainHead)):
        if (head.chain, head.seq) in done or head.seq == 0:
            continue
        at = utcnow()
        session.add(
            AuditCheckpoint(
                chain=head.chain,
                seq=head.seq,
                hash=head.hash,
                at=at,
                signature=_checkpoint_signature(key, head.chain, head.seq, head.hash, at),
            )
        )
        count += 1
    return count


def _verify_checkpoints(session: Session, key: str, report: VerifyReport) -> None:
    for c in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        if not hmac.compare_digest(
            c.signature, _checkpoint_signature(key, c.chain, c.seq, c.hash, c.at)
        ):
            report.problems.append(f"{c.chain}: checkpoint at entry {c.seq} has a bad signature")
            continue
        stored = session.scalar(
            select(AuditEntry.hash).where(AuditEntry.chain == c.chain, AuditEntry.seq == c.seq)
        )
        if stored != c.hash:
            report.problems.append(
                f"{c.chain}: entry {c.seq} differs from its signed checkpoint (chain rewritten)"
            )
        report.checkpoints += 1


def verify(session: Session, key: str | None = None) -> VerifyReport:
    """Walk every chain, recompute each hash, compare each chain's tail with its head, and
    (given the signing key) check every signed checkpoint against the entries."""
    report = VerifyReport()
    heads = {h.chain: h for h in session.scalars(select(AuditChainHead))}
    seen: set[str] = set()
    chain, expected_seq, prev = None, 0, GENESIS
    stmt = select(AuditEntry).order_by(AuditEntry.chain, AuditEntry.seq)
    for e in session.execute(stmt.execution_options(yield_per=5000)).scalars():
        if e.chain != chain:
            _close_chain(report, heads, chain, expected_seq, prev)
            chain, expected_seq, prev = e.chain, 0, GENESIS
            seen.add(e.chain)
            report.chains += 1
        expected_seq += 1
        report.entries += 1
        row = {k: getattr(e, k) for k in _FIELDS}
        if e.seq != expected_seq:
            report.problems.append(f"{e.chain}: entry {expected_seq} missing (found {e.seq})")
            expected_seq = e.seq
        if e.prev_hash != prev:
            report.problems.append(f"{e.chain}#{e.seq}: previous-hash link broken")
        if entry_hash(row) != e.hash:
            report.problems.append(f"{e.chain}#{e.seq}: content does not match its hash")
        prev = e.hash
    _close_chain(report, heads, chain, expected_seq, prev)
    for missing in sorted(set(heads) - seen):
        report.problems.append(f"{missing}: head recorded but every entry is missing")
    if key is not None:
        _verify_checkpoints(session, key, report)
    return report


def _close_chain(
    report: VerifyReport, heads: dict[str, AuditChainHead], chain: str | None, seq: int, last: str
) -> None:
    if chain is None:
        return
    head = heads.get(chain)
    if head is None:
        report.problems.append(f"{chain}: no head recorded")
    elif head.seq != seq or head.hash != last:
        report.problems.append(f"{chain}: tail is entry {seq}, head says {head.seq} (truncated?)")
