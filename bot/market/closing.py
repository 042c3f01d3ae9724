"""The closing line of every bet, captured from the odds book at kickoff (docs/research.md,
"Closing line value").

For a bet on selection s at bookmaker b, placed at decimal odds P before kickoff:
- closing price: b's last pre-start price of s, its back price for a back and its best
  available-to-lay price for a lay (None when b no longer offered it);
- closing probability: the reference's no-vig fair probability of s at close
  (bot.market.odds.no_vig_probabilities with `clv.devig`): the mean over `clv.reference_books`
  with a complete market (every outcome any book quotes there, priced), or over every book with
  a complete market when the list is empty (the consensus); None when no book qualifies;
- CLV: the expected value per unit stake had the close been the true price, None without a
  closing probability. A back at P wins P - 1 with probability p and loses 1 otherwise:
  CLV = P x p - 1. A lay at P (its stake is the backer's stake, as the bot counts a lay's
  turnover) wins 1 with probability 1 - p and loses P - 1 otherwise: CLV = 1 - P x p. A lay
  matched at the fair closing price has CLV 0, one matched below it has CLV > 0.

"Last pre-start" is the board the engine holds just before it applies the first feed event at or
after kickoff (`due` is called with that event's time, before it is applied), so a replay and a
live run capture the same thing. Staleness is ignored here: a price the book still holds is the
last the source said. A bet placed at or after kickoff (in-play) has no close. When the data ends
before kickoff (`close_all` at the end of a replay), the last quotes it has are the close.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import count

from bot.market.book import OddsBook
from bot.market.config import ClvConfig
from bot.market.odds import OddsError, no_vig_probabilities
from bot.types import FixtureKey, MarketKey, Selection


@dataclass(frozen=True, slots=True)
class ClosingLine:
    """One bet's close: decimal odds, probability in [0, 1], CLV as a fraction; `kickoff` UTC."""

    bet_id: int
    price: float | None
    probability: float | None
    clv: float | None
    kickoff: datetime

    def row(self) -> tuple[int, float | None, float | None, float | None, datetime]:
        """As `Ledger.set_closing` takes it."""
        return self.bet_id, self.price, self.probability, self.clv, self.kickoff


@dataclass(frozen=True, slots=True)
class _Bet:
    bet_id: int
    selection: Selection
    bookmaker: str
    price: float
    back: bool


class ClosingLines:
    """Bets waiting for their fixture's kickoff, and the close of each once it comes."""

    def __init__(self, book: OddsBook, config: ClvConfig) -> None:
        self._book, self._config = book, config
        self._heap: list[tuple[datetime, int, FixtureKey]] = []
        self._waiting: dict[FixtureKey, list[_Bet]] = {}
        self._seq = count()

    @property
    def next_kickoff(self) -> datetime | None:
        """The earliest kickoff a bet waits for (the engine's cheap check before each event)."""
        return self._heap[0][0] if self._heap else None

    def watch(self, bet_id: int, selection: Selection, bookmaker: str, price: float,
              now: datetime, *, back: bool) -> ClosingLine | None:
        """Wait for the close of a bet placed at `price` (decimal odds), a back or (`back`
        False) a lay; a bet placed at or after kickoff has none: its (empty) close is returned
        at once, to be stored."""
        kickoff = selection.fixture.start_time
        if now >= kickoff:
            return ClosingLine(bet_id, None, None, None, kickoff)
        fixture = selection.fixture
        if fixture not in self._waiting:
            self._waiting[fixture] = []
            heapq.heappush(self._heap, (kickoff, next(self._seq), fixture))
        self._waiting[fixture].append(_Bet(bet_id, selection, bookmaker, price, back))
        return None

    def due(self, now: datetime) -> list[ClosingLine]:
        """The closes of every bet whose fixture kicked off at or before `now`, taken from the
        book as it is (call it before applying the event at `now`)."""
        closes: list[ClosingLine] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, fixture = heapq.heappop(self._heap)
            closes.extend(self._close(self._waiting.pop(fixture, ())))
        return closes

    def close_all(self) -> list[ClosingLine]:
        """The closes of every waiting bet from the book as it is (the data has ended)."""
        closes: list[ClosingLine] = []
        for _, _, fixture in sorted(self._heap):
            closes.extend(self._close(self._waiting.pop(fixture, ())))
        self._heap.clear()
        return closes

    def _close(self, bets: Iterable[_Bet]) -> list[ClosingLine]:
        closes = []
        fair: dict[MarketKey, dict[str, float] | None] = {}
        for bet in bets:
            sel = bet.selection
            quote = self._book.quote(sel, bet.bookmaker)
            price = None if quote is None or quote.suspended else quote.price if bet.back else quote.lay_price
            if sel.market not in fair:
                fair[sel.market] = self.reference(sel.fixture, sel.market)
            probs = fair[sel.market]
            probability = None if probs is None else probs.get(sel.outcome)
            if probability is None:
                clv = None
            else:
                clv = bet.price * probability - 1.0 if bet.back else 1.0 - bet.price * probability
            closes.append(ClosingLine(bet.bet_id, price, probability, clv, sel.fixture.start_time))
        return closes

    def reference(self, fixture: FixtureKey, market: MarketKey) -> dict[str, float] | None:
        """The reference's no-vig probabilities of a market now (outcome -> probability), or
        None when no reference book has a complete market (see the module docstring)."""
        books = self._book.bookmakers(fixture, market)
        quoted = [self._book.market(fixture, market, b) for b in books]
        outcomes = sorted({o for q in quoted for o in q})
        if len(outcomes) < 2:
            return None
        wanted = set(self._config.reference_books)
        sums = dict.fromkeys(outcomes, 0.0)
        n = 0
        for book, quotes in zip(books, quoted, strict=True):
            if wanted and book not in wanted:
                continue
            prices = [quotes[o].price if o in quotes and not quotes[o].suspended else None for o in outcomes]
            if any(p is None for p in prices):
                continue
            try:
                probs = no_vig_probabilities([p for p in prices if p is not None], self._config.devig)
            except OddsError:
                continue
            for outcome, p in zip(outcomes, probs, strict=True):
                sums[outcome] += p
            n += 1
        return None if n == 0 else {o: s / n for o, s in sums.items()}
