"""Circuit breakers, per bookmaker and global (docs/architecture.md, "Risk"); ABP keeps its own per
bookmaker too (ABP docs, Error Handling > Resilience patterns > Circuit breakers).

State machine (timed by the engine clock):
    CLOSED --(N consecutive failures, or error rate >= threshold over the window)--> OPEN
    OPEN --(cooldown elapsed)--> HALF_OPEN
    HALF_OPEN --(one probe order allowed; success)--> CLOSED
    HALF_OPEN --(probe fails)--> OPEN (cooldown restarts)

What counts (bot/risk/tracking.py):
- failure, global and each named book: a declined, rejected or failed order (it names a book only
  when it targeted exactly one), a rejected or failed bet, and a venue that gave no usable answer
  (5xx, timeout, connection error: `VenueAlert` UNAVAILABLE with the orders' books; without
  books, e.g. a failed lookup, it counts globally only);
- failure, that book only: ABP declined "Bookmaker not available" (docs/reference/abp.md §10: no
  odds there, or ABP's own breaker for the book is open). The `VenueAlert` BOOKMAKER_UNAVAILABLE
  counts it for each of the order's books; the decline itself then counts globally only, so a
  single-book order is not counted twice;
- success: a placed bet (global and its book).
Half-open probe: once the cooldown has elapsed, the first approved signal that targets the breaker
becomes its probe (`begin_probe`) and every other signal is rejected BREAKER_OPEN while it is in
flight. The next outcome the breaker records decides (the probe's, or e.g. an UNAVAILABLE alert):
a success closes it and the counts start afresh, a failure re-opens it for another cooldown. A
probe that ends without an outcome (cancelled, expired, never sent) frees the slot (`end_probe`).

Book names are made canonical first (`canonical`, in live mode the ABP slug of
bot/execution/bookmakers.py), so a feed's `ps3838` and ABP's `pinnacle` share one breaker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import Clock
from bot.risk.config import BreakerConfig

GLOBAL = "global"


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class Breaker:
    """One circuit breaker. `allow()` says whether an order may go; `begin_probe` marks the one
    order a HALF_OPEN breaker lets through."""

    def __init__(self, name: str, config: BreakerConfig, clock: Clock) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._window: deque[tuple[datetime, bool]] = deque()  # (at, failed)
        self.opened_at: datetime | None = None
        self.probe: str | None = None  # signal_id of the half-open probe in flight
        self.trips = 0

    @property
    def cooldown_seconds(self) -> float:
        return self._config.cooldown_seconds

    @property
    def state(self) -> BreakerState:
        """Current state; OPEN turns HALF_OPEN once the cooldown has elapsed on the clock."""
        if (
            self._state is BreakerState.OPEN
            and self.opened_at is not None
            and self._clock.now() >= self.opened_at + timedelta(seconds=self._config.cooldown_seconds)
        ):
            self._state = BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and self.probe is None)

    def begin_probe(self, signal_id: str) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self.probe = signal_id

    def end_probe(self, signal_id: str) -> None:
        """The probe order ended without an outcome (cancelled, expired): allow another probe."""
        if self.probe == signal_id:
            self.probe = None

    def _prune(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self._config.window_seconds)
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()

    def record(self, failed: bool) -> None:
        now = self._clock.now()
        self._window.append((now, failed))
        self._prune(now)
        state = self.state
        self.probe = None
        if not failed:
            self._consecutive = 0
            if state is BreakerState.HALF_OPEN:
                self._close()
            return
        self._consecutive += 1
        if state is BreakerState.HALF_OPEN or state is BreakerState.CLOSED and self._tripped():
            self._open(now)

    def _tripped(self) -> bool:
        cfg = self._config
        if self._consecutive >= cfg.max_consecutive_failures:
            return True
        if len(self._window) < cfg.min_samples:
            return False
        failures = sum(1 for _, f in self._window if f)
        return failures / len(self._window) >= cfg.error_rate

    def _open(self, now: datetime) -> None:
        self._state = BreakerState.OPEN
        self.opened_at = now
        self.trips += 1

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self.opened_at = None
        self._consecutive = 0
        self._window.clear()

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self._consecutive,
            "window_samples": len(self._window),
            "opened_at": self.opened_at,
            "trips": self.trips,
            "probe_in_flight": self.probe,
        }


class Breakers:
    """The global breaker and one per bookmaker (made on first use, named `canonical(name)`). An
    order targets the global breaker and the breaker of each of its bookmakers."""

    def __init__(self, *, global_config: BreakerConfig, bookmaker_config: BreakerConfig, clock: Clock,
                 canonical: Callable[[str], str] | None = None) -> None:
        self._clock = clock
        self._book_config = bookmaker_config
        self._canonical = canonical or str
        self._global = Breaker(GLOBAL, global_config, clock)
        self._books: dict[str, Breaker] = {}
        self.on_open: Callable[[Breaker], None] | None = None  # each trip (alerts, notifications)

    def book(self, name: str) -> Breaker:
        name = self._canonical(name)
        if name not in self._books:
            self._books[name] = Breaker(name, self._book_config, self._clock)
        return self._books[name]

    def targets(self, bookmakers: Iterable[str]) -> list[Breaker]:
        """The global breaker, then each bookmaker's (once, however many names it has)."""
        books = {b.name: b for b in map(self.book, bookmakers)}
        return [self._global, *books.values()]

    def blocking(self, bookmakers: Iterable[str]) -> Breaker | None:
        """The first target breaker that lets no order through, if any."""
        return next((b for b in self.targets(bookmakers) if not b.allow()), None)

    def begin_probe(self, signal_id: str, bookmakers: Iterable[str]) -> None:
        for breaker in self.targets(bookmakers):
            breaker.begin_probe(signal_id)

    def end_probe(self, signal_id: str, bookmakers: Iterable[str]) -> None:
        for breaker in self.targets(bookmakers):
            breaker.end_probe(signal_id)

    def record(self, bookmakers: Iterable[str], failed: bool, *, venue: bool = True) -> None:
        """An outcome: counted by each named bookmaker's breaker (once each) and, unless `venue`
        is False (the venue as a whole answered), by the global one."""
        targets = self.targets(bookmakers)
        for breaker in targets if venue else targets[1:]:
            trips = breaker.trips
            breaker.record(failed=failed)
            if breaker.trips != trips and self.on_open is not None:
                self.on_open(breaker)

    def states(self) -> dict[str, str]:
        return {GLOBAL: self._global.state.value} | {n: b.state.value for n, b in self._books.items()}

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {GLOBAL: self._global.snapshot()} | {n: b.snapshot() for n, b in self._books.items()}
