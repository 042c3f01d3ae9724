"""The engine's clocks (docs/architecture.md, Invariants > Two clocks).

Everything that reads time (strategies, risk windows, breaker timers, staleness, order expiry,
the paper venue) reads it from a `Clock`. Live runs use wall time; replays use event time, so a
replay is deterministic and the same strategy code runs live, in paper mode and in a backtest.
All times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of the current time (timezone-aware UTC)."""

    def now(self) -> datetime: ...


class WallClock:
    """Wall time, for live and live-paper runs."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ReplayClock:
    """Event time, advanced by the replay feed; never moves backwards.

    Raises:
        ValueError: if `advance` is given a naive datetime.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, to: datetime) -> None:
        if to.tzinfo is None:
            raise ValueError("ReplayClock.advance needs a timezone-aware datetime")
        self._now = max(self._now, to)
