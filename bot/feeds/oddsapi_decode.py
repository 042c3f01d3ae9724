"""The Odds API v4 `/v4/sports/{sport}/odds` responses -> feed events, by diffing snapshots.

A response is a list of events: `{"id", "sport_key", "sport_title", "commence_time",
"home_team", "away_team", "bookmakers": [{"key", "last_update", "markets": [{"key",
"outcomes": [{"name", "price", "point"?}]}]}]}` (The Odds API v4 docs, "GET odds"; the
historical endpoint wraps the same list as `{"timestamp", "data"}`). Each snapshot is the full
board, so `OddsApiDiffer.snapshot` returns ONE complete `OddsBatch` per response, applied to the
book as one step before any strategy runs (docs/architecture.md, Pipeline), holding:
- an `OddsUpdate` for every selection that is new or whose price changed;
- a suspended `OddsUpdate` for a selection that was priced and is missing now;
- a `BookCleared` for a fixture that left the board (finished or withdrawn).
`complete=True`: the board vouches for every price it did not change or withdraw.

Bad input (docs/architecture.md, Invariants > Nothing lost, nothing silent) is dropped alone,
logged and counted, and changes nothing else: an event that cannot be read keeps its previous
state (found by its `id`) and a bookmaker section that cannot be read keeps that bookmaker's
previous prices for the event; both are listed in the batch's `unconfirmed`, so the kept prices
age out unless a later snapshot confirms them. An event whose `id` cannot be read could be any
event missing from the snapshot, so no event leaves the board on that snapshot.

Range checks: every `price` must be a plausible price in the response's odds format (American:
100 <= |price| <= AMERICAN_MAX; decimal: PRICE_MIN <= price <= PRICE_MAX; the bounds live in
`bot.market.odds`) and every `point` a finite line within +-`bot.feeds.normalise.LINE_MAX`. An
impossible value (1e30, 1e307, inf, nan, 0, -0) makes its bookmaker section unreadable, as above:
the unit the book can keep unconfirmed, so a market never mixes a fresh price with a kept one.

Odds format: the caller states it, "american" or "decimal" (The Odds API `oddsFormat`; the
historical files and our bundled snapshots are American integers). It is never guessed from a
value's magnitude: 100.0 is a legal decimal price and a legal American one, 2.0 apart.

Mapping (the names of bot.types): sport = sport_title ("NFL"), fixture = home_team / away_team /
commence_time; h2h -> moneyline (1x2 when a Draw is offered), spreads -> spread with the HOME
handicap as line, totals -> total; outcomes home / away / draw / over / under.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from bot.feeds.base import FeedStats
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_american, feed_decimal
from bot.types import BookCleared, FeedEvent, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

SOURCE = "oddsapi"
OddsFormat = Literal["american", "decimal"]
_MARKET_TYPES = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}

Priced = tuple[float, int]  # decimal price, American odds
_Board = dict[str, tuple[FixtureKey, dict[tuple[str, Selection], Priced]]]  # event id -> ...


def parse_price(value: object, odds_format: OddsFormat) -> Priced:
    """An outcome `price` (a JSON number) in `odds_format` -> (decimal price, American int),
    both within the plausibility bounds of `bot.market.odds`.

    Raises:
        OddsError: not a number, or not a plausible price in that format.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OddsError(f"price must be a number, got {value!r}")
    if odds_format == "american":
        return feed_american(value)
    if odds_format == "decimal":
        return feed_decimal(value)
    raise OddsError(f"unknown odds format {odds_format!r}: american or decimal")


class OddsApiDiffer:
    """Turns successive full snapshots into events (see the module docstring). Never raises
    on bad input: bad events, markets and outcomes are logged and counted in `stats`."""

    def __init__(
        self, source: str = SOURCE, odds_format: OddsFormat = "american", stats: FeedStats | None = None
    ) -> None:
        self.source = source
        self.odds_format = odds_format
        self.stats = stats if stats is not None else FeedStats(source)
        self._board: _Board = {}

    def snapshot(self, events: object, received_at: datetime) -> list[FeedEvent]:
        """Diff one full response (a list of events) against the previous one: `[OddsBatch]`,
        or `[]` when the response is not a list (nothing changes)."""
        self.stats["snapshots"] += 1
        if not isinstance(events, list):
            self.stats.bad("malformed_snapshot", "the response is not a list of events", events)
            return []
        updates: list[OddsUpdate] = []
        cleared: list[BookCleared] = []
        unconfirmed: list[tuple[FixtureKey, str | None]] = []
        board: _Board = {}
        unreadable = False  # an event without a readable id: it may be any missing one
        for event in events:
            try:
                event_id, fixture, prices, bad_books = self._event(event)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                self.stats.bad("bad_event", f"{type(exc).__name__}: {exc}", event)
                bad_id = _event_id(event)
                kept = None if bad_id is None else self._board.get(bad_id)
                if bad_id is None:
                    unreadable = True
                elif kept is not None:  # the event's previous state stands, unconfirmed
                    board[bad_id] = kept
                    unconfirmed.append((kept[0], None))
                continue
            old_fixture, old = self._board.get(event_id, (fixture, {}))
            if (old_fixture.home, old_fixture.away) == (fixture.home, fixture.away):
                # The API moves commence_time to the real kickoff; the game keeps the identity
                # it was first seen with, so exposure per fixture is not split in two.
                fixture, prices = old_fixture, _refixture(prices, old_fixture)
            else:  # the event now names other teams: its old selections are gone
                cleared.append(BookCleared(self.source, received_at, fixture=old_fixture))
                old = {}
            for bookmaker in bad_books:  # that bookmaker's previous prices stand, unconfirmed
                prices.update((k, v) for k, v in old.items() if k[0] == bookmaker)
                unconfirmed.append((fixture, bookmaker))
            board[event_id] = (fixture, prices)
            ids = {"oddsapi_event_id": event_id}
            for (bookmaker, selection), priced in prices.items():
                if old.get((bookmaker, selection)) != priced:
                    updates.append(OddsUpdate(self.source, bookmaker, selection, priced[0], priced[1],
                                              False, received_at, received_at, ids))
            updates.extend(
                OddsUpdate(self.source, bookmaker, selection, None, None, True, received_at,
                           received_at, ids)
                for bookmaker, selection in old
                if (bookmaker, selection) not in prices  # dict order: replays are deterministic
            )
        for event_id, (fixture, prices) in self._board.items():
            if event_id in board:
                continue
            if unreadable:  # perhaps the unreadable one: kept, unconfirmed, until a readable board
                board[event_id] = (fixture, prices)
                unconfirmed.append((fixture, None))
            else:
                cleared.append(BookCleared(self.source, received_at, fixture=fixture))
        self._board = board
        self.stats["updates"] += len(updates)
        return [OddsBatch(self.source, received_at, tuple(updates), tuple(cleared), complete=True,
                          unconfirmed=tuple(unconfirmed))]

    def _event(self, event: dict) -> tuple[str, FixtureKey, dict[tuple[str, Selection], Priced], list[str]]:
        """One event's prices, and the bookmakers whose section could not be read.

        Raises:
            KeyError, TypeError, ValueError, AttributeError: the event cannot be read (a
                bookmaker section without a readable `key` counts as the event's).
        """
        event_id, home, away = str(event["id"]), event["home_team"], event["away_team"]
        start = datetime.fromisoformat(event["commence_time"])
        if start.tzinfo is None or not (isinstance(home, str) and isinstance(away, str)):
            raise ValueError("commence_time needs a zone; home_team and away_team are strings")
        fixture = FixtureKey(str(event.get("sport_title") or event["sport_key"]), home, away, start)
        prices: dict[tuple[str, Selection], Priced] = {}
        bad_books: list[str] = []
        for book in event.get("bookmakers") or ():
            bookmaker = book["key"]
            if not isinstance(bookmaker, str):
                raise TypeError(f"bookmaker key must be a string, got {bookmaker!r}")
            section: dict[tuple[str, Selection], Priced] = {}
            try:
                for market in book["markets"]:
                    self._market(fixture, bookmaker, market, section)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, OddsError, LineError) as exc:
                self.stats.bad("bad_bookmaker", f"event {event_id} {bookmaker}: {type(exc).__name__}: {exc}", book)
                bad_books.append(bookmaker)
                continue
            prices.update(section)
        return event_id, fixture, prices, bad_books

    def _market(
        self, fixture: FixtureKey, bookmaker: str, market: dict,
        prices: dict[tuple[str, Selection], Priced],
    ) -> None:
        """Raises on any outcome that cannot be read (its bookmaker section is then dropped)."""
        kind = market["key"]
        outcomes: Iterable[dict] = market["outcomes"]
        type_ = _MARKET_TYPES.get(kind, kind)
        if not isinstance(type_, str):
            raise TypeError(f"market key must be a string, got {kind!r}")
        if type_ == "moneyline" and any(o.get("name") == "Draw" for o in outcomes):
            type_ = "1x2"
        for o in outcomes:
            name = o["name"]
            if not isinstance(name, str):
                raise TypeError(f"outcome name must be a string, got {name!r}")
            side = (
                "home" if name == fixture.home else "away" if name == fixture.away
                else name.lower() if name in ("Draw", "Over", "Under") else name
            )
            try:
                line = to_line(o.get("point")) if type_ in ("spread", "total") or "point" in o else None
                priced = parse_price(o["price"], self.odds_format)
            except (OddsError, LineError) as exc:  # name the outcome: the log line is all there is
                raise type(exc)(f"{kind} {name!r}: {exc}") from None
            if type_ == "spread" and side == "away" and line is not None:
                line = -line + 0
            selection = Selection(fixture, MarketKey(type_, "game", line), side)
            prices[(bookmaker, selection)] = priced


def _event_id(event: object) -> str | None:
    """The `id` of a (possibly malformed) event, when it can be read."""
    if isinstance(event, dict):
        value = event.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _refixture(prices: dict[tuple[str, Selection], Priced], fixture: FixtureKey) -> dict[tuple[str, Selection], Priced]:
    """The same prices keyed by selections of `fixture` (a no-op when it is already theirs)."""
    if all(sel.fixture is fixture or sel.fixture == fixture for _, sel in prices):
        return prices
    return {(bk, Selection(fixture, sel.market, sel.outcome)): p for (bk, sel), p in prices.items()}
