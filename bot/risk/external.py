"""Exposure held outside this bot that its caps must count: the 55-Tech MM engine's positions and
open orders (docs/reference/mm.md, "Combined exposure"; `mm.combined_exposure`).

A poller off the hot path (bot/execution/mm.py) puts a whole `ExternalSnapshot` here; the fixture
and bookmaker exposure checks (bot/risk/checks.py) read it in O(1). Keys are the venue's ids: the
OddsPapi fixture id (a signal's `Instrument.fixture_id`) and the ABP/MM bookmaker or exchange slug.
Amounts are worst-case loss in the bot's currency (`execution.currency`), Decimal.

Fail closed: until a first snapshot arrives, and once the last one is older than `stale_after`
on the trading clock, every read raises `Rejected(MM_STALE)`: the caps cannot be judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from bot.clock import Clock
from bot.risk.reasons import Reason

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ExternalSnapshot:
    """Exposure per fixture id and per bookmaker slug as of `at`."""

    at: datetime
    fixture: Mapping[str, Decimal] = field(default_factory=dict)
    bookmaker: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.fixture.values(), ZERO)


class ExternalStale(Exception):
    """No snapshot yet, or the last is too old: a cap that counts it cannot be judged."""

    def __init__(self, details: dict[str, str]) -> None:
        super().__init__(details.get("why", "stale"))
        self.reason = Reason.MM_STALE
        self.details = details


class ExternalExposure:
    """The latest snapshot of one outside source (`source`, e.g. "mm") and its freshness."""

    def __init__(self, clock: Clock, stale_after: timedelta, source: str = "mm") -> None:
        self._clock = clock
        self._stale_after = stale_after
        self.source = source
        self.snapshot: ExternalSnapshot | None = None
        self.last_error = ""  # why the last refresh failed ("" after a success)

    def update(self, snapshot: ExternalSnapshot) -> None:
        self.snapshot = snapshot
        self.last_error = ""

    def failed(self, why: str) -> None:
        """A refresh failed: the snapshot is kept and ages out (`stale_after`)."""
        self.last_error = why[:300]

    def _fresh(self) -> ExternalSnapshot:
        snap = self.snapshot
        if snap is None:
            raise ExternalStale({"source": self.source, "why": "no data yet", "error": self.last_error})
        age = self._clock.now() - snap.at
        if age > self._stale_after:
            raise ExternalStale({"source": self.source, "why": "data too old", "as_of": snap.at.isoformat(),
                                 "age_seconds": f"{age.total_seconds():.1f}",
                                 "stale_after_seconds": f"{self._stale_after.total_seconds():g}",
                                 "error": self.last_error})
        return snap

    def fixture(self, fixture_id: str | None) -> Decimal:
        """Exposure on the fixture (0 for None: a signal with no venue id cannot match one).

        Raises:
            ExternalStale: see the module docstring.
        """
        snap = self._fresh()
        return ZERO if fixture_id is None else snap.fixture.get(fixture_id, ZERO)

    def bookmaker(self, slug: str) -> Decimal:
        """Exposure at the bookmaker / exchange `slug`.

        Raises:
            ExternalStale: see the module docstring.
        """
        return self._fresh().bookmaker.get(slug, ZERO)

    def books(self) -> tuple[str, ...]:
        """Slugs with exposure in the latest snapshot (fresh or not)."""
        return tuple(self.snapshot.bookmaker) if self.snapshot is not None else ()

    def status(self) -> dict[str, str | None]:
        snap = self.snapshot
        return {"source": self.source, "as_of": None if snap is None else snap.at.isoformat(),
                "total": None if snap is None else str(snap.total), "error": self.last_error or None}
