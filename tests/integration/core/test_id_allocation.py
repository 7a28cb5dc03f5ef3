"""Personal ID allocation is unique under concurrency (DESIGN "Allocating personal ID
numbers"): 8 processes x 2,000 allocations on one prefix of PostgreSQL, no duplicates."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dancu.core import ids
from dancu.core.db import make_engine
from dancu.core.models import PersonalIdAllocation

PROCESSES, PER_PROCESS = 8, 2000


def _allocate_many(url: str, n: int) -> list[str]:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    numbers = []
    with Session(engine) as session:
        for _ in range(n):
            with session.begin():
                numbers.append(ids.allocate(session, "001", "F", 1990).number)
    engine.dispose()
    return numbers


def test_concurrent_allocation_never_duplicates(engine: Engine, database_url: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the concurrency test needs PostgreSQL (SQLite has one writer)")
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(_allocate_many, [(database_url, PER_PROCESS)] * PROCESSES)
    numbers = [n for chunk in results for n in chunk]
    assert len(numbers) == PROCESSES * PER_PROCESS
    assert len(set(numbers)) == len(numbers)
    assert all(n.startswith("001190") for n in numbers)
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(PersonalIdAllocation))
    assert stored == len(numbers)


def test_exhausted_prefix_fails_loudly(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # A ten-number space, pre-filled: allocation must raise, never loop or duplicate.
    monkeypatch.setattr(ids, "SUFFIX_SPACE", 10)
    prefix = ids.make_prefix("079", "M", 2001)
    with Session(engine) as session, session.begin():
        session.add_all(
            PersonalIdAllocation(number=f"{prefix}{n:06d}", prefix=prefix) for n in range(10)
        )
    with (
        Session(engine) as session,
        session.begin(),
        pytest.raises(ids.PrefixExhausted, match="10 of 10"),
    ):
        ids.allocate(session, "079", "M", 2001)


def test_last_free_number_is_found(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # 9 of 10 taken: 200 random tries miss the free one with probability 0.9**200 < 1e-9.
    monkeypatch.setattr(ids, "SUFFIX_SPACE", 10)
    monkeypatch.setattr(ids, "MAX_ATTEMPTS", 200)
    prefix = ids.make_prefix("079", "F", 2001)
    with Session(engine) as session, session.begin():
        session.add_all(
            PersonalIdAllocation(number=f"{prefix}{n:06d}", prefix=prefix) for n in range(9)
        )
    with Session(engine) as session, session.begin():
        assert ids.allocate(session, "079", "F", 2001).number == f"{prefix}000009"
