"""Strategy plug-in API: the `Strategy` base class, its `StrategyContext`, declared `Interests`
and the `StrategyParams` base model (docs/architecture.md, "Strategies").

A strategy subclasses `Strategy`, declares `Params` (a pydantic model validated at load) and
overrides the hooks it needs. Hooks are called with KEYWORD arguments only, so a hook written as
`def on_odds(self, *, update, **kwargs)` keeps working when the host passes more fields later.
A hook returns the Signals it wants placed (an iterable, one Signal or None), plain or async.

Odds reach a strategy after the book holds them whole (docs/architecture.md, Pipeline): a
snapshot or batched frame is applied completely, then `on_market(fixture=, market=, updates=)`
is called once per market it changed, with the new board in `ctx.book`; a single live update
comes to `on_odds(update=)`. The default `on_market` calls `on_odds` for each update, so a
strategy that only implements `on_odds` sees every update, each on the complete new board:

    class MyStrategy(Strategy):
        class Params(StrategyParams):
            max_price: float = 2.0

        def on_odds(self, *, update, **kwargs):
            if update.price and update.price <= self.params.max_price:
                return [self.ctx.signal(update.selection, stake=5, price=update.price,
                                        bookmakers=(update.bookmaker,))]

Quotes come from `ctx.book` (bot/market/book.py): `quote(selection, bookmaker)`, `quotes(selection)`,
`market(fixture, market, bookmaker)` (outcome -> `Quote`), `best(selection)` (the highest usable
back price across bookmakers) and `best_lay(selection)` (the lowest layable lay price). A quote's
`price` is the back price. An exchange quote (a Betfair Exchange Stream file, bookmaker
`betfair-ex`) also carries `ladder` (bot.types.Ladder; None for a sportsbook):
`ladder.back` / `ladder.lay` are (price, size) levels best first, to the feed's depth (size: the
backer's stake on offer, exchange currency), `ladder.best_back` / `ladder.best_lay` the top ones,
`ladder.last_traded` and `ladder.traded_volume`; `quote.lay_price` is the best lay price and
`quote.layable` says one may lay it now (not suspended, not stale), as `quote.usable` says for the
back price. A runner with a lay and no back is not suspended: `price` None, `layable` True.

    quote = self.ctx.book.quote(selection, "betfair-ex")
    if quote is not None and quote.layable and quote.ladder is not None:
        price, size = quote.ladder.lay[0]
        return [self.ctx.signal(selection, side=Side.LAY, stake=min(Decimal(5), Decimal(str(size))),
                                price=price, bookmakers=("betfair-ex",))]

A lay signal's `stake` is the backer's stake (the liability is (price - 1) x stake) and its
`min_price` (default: `price`) is the highest price it accepts: risk counts its exposure at
max(price, min_price) (bot/risk/positions.py `liability_price`). bot/strategy/builtin/exchange.py
is a worked example.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger
from pydantic import BaseModel, ConfigDict

from bot.clock import Clock
from bot.risk.positions import BetPosition, PositionBook
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Side, Signal

if TYPE_CHECKING:
    from loguru import Logger

    from bot.ledger.models import OrderRow, SignalRow
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook

CENT = Decimal("0.01")

MARKET_TYPES = frozenset({"moneyline", "1x2", "spread", "total", "team_total", "win", "place", "match_odds"})
"""The market types the feeds normalise to (bot.types.MarketKey; bot/feeds/normalise.py,
bot/feeds/oddsapi_decode.py). The Odds API h2h is "moneyline", or "1x2" when it offers a Draw
(3-way football); Betfair's WIN, PLACE and MATCH_ODDS markets are "win", "place", "match_odds"
(bot/feeds/history/betfair.py). A strategy's `markets` param naming anything else stops the bot at load with
one line listing these (bot/strategy/loader.py `check_markets`)."""

HookResult = Iterable[Signal] | Signal | None | Awaitable[Iterable[Signal] | Signal | None]


class StrategyParams(BaseModel):
    """Base of every strategy's `Params`: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Interests:
    """What a strategy wants to see; an empty set means "all". `markets` are market types
    (`MARKET_TYPES`: "moneyline", "1x2", "spread", "total", ...). The host dispatches only
    matching odds: single updates by `matches`, changed markets by `matches_market` with the
    updates of the wanted bookmakers."""

    sports: frozenset[str] = frozenset()
    bookmakers: frozenset[str] = frozenset()
    markets: frozenset[str] = frozenset()

    def matches(self, update: OddsUpdate) -> bool:
        sel = update.selection
        return (
            (not self.sports or sel.fixture.sport in self.sports)
            and (not self.bookmakers or update.bookmaker in self.bookmakers)
            and (not self.markets or sel.market.type in self.markets)
        )

    def matches_market(self, fixture: FixtureKey, market: MarketKey) -> bool:
        """Sport and market type match (bookmakers are matched per update by the host)."""
        return (not self.sports or fixture.sport in self.sports) and (
            not self.markets or market.type in self.markets
        )


def to_stake(value: Decimal | str | float) -> Decimal:
    """A stake as Decimal rounded DOWN to cents (floats go through str, never binary)."""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(CENT, rounding=ROUND_DOWN)


class StrategyContext:
    """What a strategy may read: the OddsBook, its own orders / positions / exposure from the
    ledger, its params, the engine clock and a logger bound with `strategy=<name>`."""

    def __init__(
        self,
        name: str,
        params: StrategyParams,
        *,
        book: OddsBook,
        clock: Clock,
        ledger: Ledger | None,
    ) -> None:
        self.name = name
        self.params = params
        self.book = book
        self.clock = clock
        self._ledger = ledger
        self.log: Logger = logger.bind(strategy=name)
        self._last_price: dict[tuple[str, str], float] | None = None  # seeded from the ledger on first use

    def now(self) -> datetime:
        """The engine clock (UTC): wall time live, event time in replay."""
        return self.clock.now()

    def orders(self, open_only: bool = False) -> list[OrderRow]:
        """This strategy's orders from the ledger (only non-final ones when `open_only`)."""
        if self._ledger is None:
            return []
        if open_only:
            return [o for o in self._ledger.open_orders() if o.strategy == self.name]
        return self._ledger.orders(strategy=self.name)

    def signals(self) -> list[SignalRow]:
        """This strategy's signals from the ledger, oldest first, whatever risk decided: selection
        key, side, stake, price, bookmakers (comma-joined), created_at (UTC)."""
        if self._ledger is None:
            return []
        return self._ledger.signals(strategy=self.name)

    def last_price(self, selection: Selection, bookmaker: str) -> float | None:
        """The price this strategy last signalled for `selection` at `bookmaker` (decimal odds),
        in this run or an earlier one on the same ledger, whatever risk decided; None if never.
        A strategy that skips a price equal to it never signals the same thing twice, across
        restarts and resumed replays too (docs/architecture.md, "Invariants > Runs never re-bet")."""
        if self._last_price is None:
            self.restore()
        assert self._last_price is not None
        return self._last_price.get((selection.key, bookmaker))

    def restore(self) -> None:
        """Read what this strategy signalled in earlier runs (`last_price`) from the ledger. The
        host calls it when it builds the strategy, so a long history costs start-up time, never
        the first signal's."""
        self._last_price = {}
        seen = [] if self._ledger is None else self._ledger.signalled_prices(self.name)
        for key, books, price in seen:  # oldest first: the latest wins
            for book in filter(None, books.split(",")):
                self._last_price[(key, book)] = price

    def positions(self) -> list[BetPosition]:
        """This strategy's open bets (PENDING, PLACED or CONFIRMED, unsettled): bet id, scope
        (selection, fixture, the bookmaker), side, stake, price and `exposure`, from
        bot/risk/positions.py like the risk manager's."""
        if self._ledger is None:
            return []
        return PositionBook.from_ledger(self._ledger).bets(self.name)

    def exposure(self) -> Decimal:
        """Worst-case loss of this strategy (order currency): open bets plus the unfilled part of
        open orders (back: stake; lay: (price - 1) x stake), the same figure `bot risk status`
        and `bot report` show (bot/risk/positions.py)."""
        if self._ledger is None:
            return Decimal(0)
        return PositionBook.from_ledger(self._ledger).strategy_exposure(self.name)

    def signal(
        self,
        selection: Selection,
        *,
        stake: Decimal | str | float,
        price: float,
        side: Side = Side.BACK,
        min_price: float | None = None,
        bookmakers: Iterable[str] = (),
        reason: str = "",
        edge: float = 0.0,
        expires_in: timedelta | float | None = None,
        tag: str = "",
        group: str | None = None,
    ) -> Signal:
        """Build a Signal stamped with this strategy's name and the clock.

        `stake` is rounded down to cents; `min_price` defaults to `price` (no worse odds
        accepted: for a back the lowest price taken, for a lay (`side=Side.LAY`, stake = the
        backer's stake) the highest, as bot/risk/positions.py `liability_price` counts it);
        `expires_in` is a timedelta or seconds from now.
        """
        now, books = self.clock.now(), tuple(bookmakers)
        if self._last_price is not None:
            for book in books:
                self._last_price[(selection.key, book)] = price
        if isinstance(expires_in, int | float):
            expires_in = timedelta(seconds=expires_in)
        return Signal(
            signal_id=uuid.uuid4().hex,
            strategy=self.name,
            selection=selection,
            side=side,
            stake=to_stake(stake),
            price=price,
            min_price=price if min_price is None else min_price,
            bookmakers=books,
            created_at=now,
            reason=reason,
            edge=edge,
            expires_at=None if expires_in is None else now + expires_in,
            tag=tag,
            group=group,
        )


class Strategy:
    """Base class of every strategy. Subclasses set `Params` and override hooks.

    Hooks (all keyword-only, all optional, plain or async, each may return Signals):
      on_start(), on_odds(update=OddsUpdate),
      on_market(fixture=FixtureKey, market=MarketKey, updates=tuple[OddsUpdate, ...]),
      on_order_update(update=OrderUpdate, order=OrderRow|None),
      on_fill(fill=Fill, order=OrderRow|None), on_settlement(settlement=Settlement, order=OrderRow|None),
      on_timer(now=datetime), on_stop().
    Signals returned from order/fill/settlement hooks are handed to the engine on the host's next
    `on_timer`, `on_odds` or `on_markets` call. `on_start` runs once the executor has reconciled
    the ledger: the place to read `ctx.orders()` / `ctx.positions()` into in-memory state.
    """

    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx

    @property
    def params(self) -> Any:
        return self.ctx.params

    @property
    def name(self) -> str:
        return self.ctx.name

    def interests(self) -> Interests:
        """Default: read optional `sports`, `bookmakers`, `markets` params (empty = all)."""
        return Interests(
            sports=frozenset(getattr(self.params, "sports", ()) or ()),
            bookmakers=frozenset(getattr(self.params, "bookmakers", ()) or ()),
            markets=frozenset(getattr(self.params, "markets", ()) or ()),
        )

    def on_start(self, **kwargs: Any) -> HookResult:
        return None

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> HookResult:
        return None

    def on_market(
        self, *, fixture: FixtureKey, market: MarketKey, updates: tuple[OddsUpdate, ...], **kwargs: Any
    ) -> HookResult:
        """One market of a snapshot or batch changed; the book already holds all of the batch.

        `updates` are the batch's updates that changed this market's quotes and that match the
        strategy's bookmakers, in feed order (suspended ones included; empty when the market only
        lost quotes to a clear). Default: `on_odds(update=u)` for each, so a strategy that only
        implements `on_odds` keeps working (the host makes the same calls itself, isolating a
        failing call). Override it to evaluate the market once.
        """
        results = [self.on_odds(update=u) for u in updates]
        if any(inspect.isawaitable(r) for r in results):
            return _gather(results)
        return [signal for r in results for signal in _as_signals(r)]

    def on_order_update(self, **kwargs: Any) -> HookResult:
        return None

    def on_fill(self, **kwargs: Any) -> HookResult:
        return None

    def on_settlement(self, **kwargs: Any) -> HookResult:
        return None

    def on_timer(self, **kwargs: Any) -> HookResult:
        return None

    def on_stop(self, **kwargs: Any) -> HookResult:
        return None



def _as_signals(result: object) -> list[Signal]:
    """A hook's result (None, one Signal or an iterable of them) as a list; the host checks
    the items."""
    if result is None:
        return []
    if isinstance(result, Signal):
        return [result]
    return list(result)  # type: ignore[call-overload]


async def _gather(results: list[Any]) -> list[Signal]:
    out: list[Signal] = []
    for result in results:
        out.extend(_as_signals(await result if inspect.isawaitable(result) else result))
    return out
