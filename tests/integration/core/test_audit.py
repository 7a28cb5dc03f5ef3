"""Audit chains: durable group commit, change entries in the use case's transaction, and
tamper detection (edit, delete, truncate)."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import audit
from dancu.core.audit import Actor, Entry, GroupAuditWriter
from dancu.core.db import libpq_conninfo
from dancu.core.models import AuditEntry

ACTOR = Actor("officer1", "commune_officer", "00004", "registry-administration")


def _write_reads(factory: sessionmaker[Session], n: int) -> None:
    writer = GroupAuditWriter(factory, flush_ms=1.0)
    threads = [
        threading.Thread(target=writer.write, args=(Entry(ACTOR, "person.read", f"person:{i}"),))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()


def test_group_writer_commits_every_entry_in_one_chain(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _write_reads(session_factory, 50)
    with session_factory() as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        report = audit.verify(session)
    assert len(rows) == 50 and len({r.chain for r in rows}) == 1
    assert sorted(r.subject for r in rows) == sorted(f"person:{i}" for i in range(50))
    assert report.ok and report.entries == 50


def test_change_entries_roll_back_with_their_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        audit.record_change(session, Entry(ACTOR, "birth.register", "person:1"))
    try:
        with session_factory() as session, session.begin():
            audit.record_change(session, Entry(ACTOR, "birth.register", "person:2"))
            raise RuntimeError("use case failed")
    except RuntimeError:
        pass
    with session_factory() as session:
        subjects = list(session.scalars(select(AuditEntry.subject)))
        assert subjects == ["person:1"]
        assert audit.verify(session).ok


def test_edit_delete_and_truncation_are_detected(session_factory: sessionmaker[Session]) -> None:
    _write_reads(session_factory, 6)
    with session_factory() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(subject="person:999"))
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 6))
    with session_factory() as session:
        problems = " | ".join(audit.verify(session).problems)
    assert "#2: content does not match its hash" in problems
    assert "entry 4 missing" in problems
    assert "truncated" in problems


def test_signed_checkpoints_catch_a_rewritten_chain(session_factory: sessionmaker[Session]) -> None:
    _write_reads(session_factory, 4)
    with session_factory() as session, session.begin():
        assert audit.checkpoint(session, "server-secret") == 1
        assert audit.checkpoint(session, "server-secret") == 0  # nothing new to sign
    # An insider rewrites entry 2 and recomputes every later hash and the head: the chain
    # itself is consistent again, so only the signed checkpoint can tell.
    with session_factory() as session, session.begin():
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        prev = rows[0].hash
        for row in rows[1:]:
            if row.seq == 2:
                row.subject = "person:999"
            fields = {k: getattr(row, k) for k in audit._FIELDS}
            fields["prev_hash"] = prev
            row.prev_hash, row.hash = prev, audit.entry_hash(fields)
            prev = row.hash
        head = session.get(audit.AuditChainHead, rows[0].chain)
        assert head is not None
        head.hash = prev
    with session_factory() as session:
        assert audit.verify(session).ok  # the hash chain alone is fooled
        report = audit.verify(session, "server-secret")
        wrong_key = audit.verify(session, "another-key")
    assert not report.ok and "differs from its signed checkpoint" in report.problems[0]
    assert "bad signature" in wrong_key.problems[0]


# -- the async writer (PostgreSQL) ----------------------------------------------------------


def _async_writer(engine: Engine) -> audit.AsyncGroupAuditWriter:
    if engine.dialect.name != "postgresql":
        pytest.skip("the async audit writer serves the PostgreSQL server")
    return audit.AsyncGroupAuditWriter(libpq_conninfo(engine.url), gather_ms=20)


def test_async_writer_groups_concurrent_reads_into_few_commits(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    writer = _async_writer(engine)

    async def read(i: int) -> None:
        writer.expect()  # as a lookup does when it starts
        await asyncio.sleep(0.001 * (i % 5))  # the query
        await writer.awrite(Entry(ACTOR, "person.read", f"person:{i}"), expected=True)

    async def main() -> None:
        await writer.start()
        try:
            await asyncio.gather(*(read(i) for i in range(200)))
            await writer.awrite(Entry(ACTOR, "person.read", "person:lone"))  # nobody waits
        finally:
            await writer.stop()

    asyncio.run(main())
    assert writer.committed == 201 and writer.expected == 0
    assert writer.commits <= 20  # grouped, not one commit per read
    with session_factory() as session:
        subjects = sorted(session.scalars(select(AuditEntry.subject)))
        report = audit.verify(session)
    assert subjects == sorted([f"person:{i}" for i in range(200)] + ["person:lone"])
    assert report.ok and report.chains == 1 and report.entries == 201


def test_async_writer_reports_a_lost_connection_and_starts_a_new_chain(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """A commit that fails is reported to every waiting read (which then fails rather than
    answering unaudited); the next reads reconnect and go to a fresh chain, so the numbers
    of a commit whose outcome is unknown are never reused and the log still verifies."""
    writer = _async_writer(engine)
    admin = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")

    async def main() -> list[bool]:
        await writer.start()
        outcomes = []
        try:
            await writer.awrite(Entry(ACTOR, "person.read", "person:1"))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()",
                    [audit.APPLICATION_NAME],
                )
            for i in (2, 3):
                try:
                    await writer.awrite(Entry(ACTOR, "person.read", f"person:{i}"))
                    outcomes.append(True)
                except psycopg.OperationalError:
                    outcomes.append(False)
        finally:
            await writer.stop()
        return outcomes

    assert asyncio.run(main()) == [False, True]
    with session_factory() as session:
        subjects = sorted(session.scalars(select(AuditEntry.subject)))
        report = audit.verify(session)
    assert subjects == ["person:1", "person:3"]
    assert report.ok and report.chains == 2


def test_writers_racing_to_open_a_new_day_shard_both_commit(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first change of the day in a shard creates its head. A second transaction that
    finds no head yet waits for the first instead of failing on the duplicate head."""
    monkeypatch.setattr(audit, "CHANGE_SHARDS", 1)
    first = session_factory()
    first.begin()
    audit.record_change(first, Entry(ACTOR, "person.update", "person:1"))  # head created
    done: list[BaseException | None] = []

    def second() -> None:
        try:
            with session_factory() as session, session.begin():
                audit.record_change(session, Entry(ACTOR, "person.update", "person:2"))
            done.append(None)
        except BaseException as exc:
            done.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=0.5)  # it waits on the uncommitted head (PostgreSQL) or the lock
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert done == [None]
    with session_factory() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        assert seqs == [1, 2] and audit.verify(session).ok
