"""Clock helpers. All stored timestamps are UTC; dates of civil facts are local calendar dates."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return utcnow().date()
