"""The clock port: utcnow follows the installed clock everywhere, also through names imported
before it was installed, and the system clock comes back afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dancu.core import timeutil
from dancu.core.timeutil import FixedClock, SteppingClock, SystemClock, use_clock, utcnow

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_the_system_clock_is_the_default() -> None:
    assert isinstance(timeutil.current_clock(), SystemClock)
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)


def test_an_installed_clock_reaches_names_imported_earlier() -> None:
    with use_clock(FixedClock(AT)) as clock:
        assert utcnow() == AT and timeutil.utcnow() == AT
        assert timeutil.today() == AT.date()
        assert clock.advance(timedelta(minutes=5)) == AT + timedelta(minutes=5)
        clock.set(AT - timedelta(days=1))
        assert utcnow() == AT - timedelta(days=1)
    assert isinstance(timeutil.current_clock(), SystemClock)


def test_the_clock_comes_back_after_an_error() -> None:
    with pytest.raises(RuntimeError), use_clock(FixedClock(AT)):
        raise RuntimeError
    assert isinstance(timeutil.current_clock(), SystemClock)


def test_a_stepping_clock_moves_on_after_each_reading() -> None:
    with use_clock(SteppingClock(AT, timedelta(seconds=2))):
        assert [utcnow(), utcnow()] == [AT, AT + timedelta(seconds=2)]


def test_clock_times_are_aware() -> None:
    with pytest.raises(TypeError, match="timezone-aware"):
        FixedClock(datetime(2026, 3, 1))


def test_the_clock_fixture_stops_time(clock: FixedClock) -> None:
    first = utcnow()
    assert utcnow() == first == clock.now()
    clock.advance(timedelta(hours=1))
    assert utcnow() == first + timedelta(hours=1)
