"""Audit chains: durable group commit, change entries in the use case's transaction, and
tamper detection (edit, delete, truncate)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.core import audit
from dancu.core.audit import Actor, Entry, GroupAuditWriter
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
