"""Clock helpers. All stored timestamps are UTC; dates of civil facts are local calendar dates.

Every part of dancu asks the time through :func:`utcnow` (or :func:`today`), never through
``datetime.now``. ``utcnow`` reads the process-wide current :class:`Clock`, which is the
:class:`SystemClock` unless something installed another with :func:`use_clock`. Because the
lookup happens at each call, modules that did ``from dancu.core.timeutil import utcnow`` at
import time follow the installed clock as well: there is no per-module patching.

Tests stop or step time with a :class:`FixedClock` (the ``clock`` fixture in
``tests/conftest.py`` installs one and restores the system clock afterwards)::

    with use_clock(FixedClock(datetime(2026, 1, 1, tzinfo=UTC))) as clock:
        ...
        clock.advance(timedelta(minutes=5))

The clock is process-wide, not per thread: background threads (the audit writer, the
reconciliation worker) see the same time as the test that installed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypeVar


class Clock(Protocol):
    """Where the current time comes from; ``now`` returns an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until it is set or advanced (for tests)."""

    def __init__(self, at: datetime | None = None) -> None:
        self._at = _aware(at if at is not None else datetime.now(UTC))

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, by: timedelta) -> datetime:
        self._at += by
        return self._at


class SteppingClock(FixedClock):
    """A fixed clock that moves on by ``step`` after every reading, so that successive
    timestamps differ (for tests that order events by time)."""

    def __init__(self, at: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        super().__init__(at)
        self.step = step

    def now(self) -> datetime:
        at = self._at
        self._at += self.step
        return at


def _aware(at: datetime) -> datetime:
    # A naive datetime here would end up stored and be refused by the database layer. A
    # TypeError, not a ValueError: it is a programming error, not a message for the forms
    # (tools/messages.py extracts ValueError texts for translation).
    if at.tzinfo is None:
        raise TypeError("clock times must be timezone-aware (UTC)")
    return at.astimezone(UTC)


_SYSTEM = SystemClock()
# A one-element holder rather than a bare global, so that use_clock needs no ``global``.
_current: list[Clock] = [_SYSTEM]

C = TypeVar("C", bound=Clock)


def current_clock() -> Clock:
    return _current[0]


@contextmanager
def use_clock(clock: C) -> Iterator[C]:
    """Make ``clock`` the process-wide clock for the block; the previous one comes back after."""
    previous = _current[0]
    _current[0] = clock
    try:
        yield clock
    finally:
        _current[0] = previous


def utcnow() -> datetime:
    return _current[0].now()


def today() -> date:
    return utcnow().date()
