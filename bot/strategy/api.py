"""Strategy plug-in API: the `Strategy` base class, its `StrategyContext`, declared `Interests`
and the `StrategyParams` base model (docs/architecture.md, "Strategies").

A strategy subclasses `Strategy`, declares `Params` (a pydantic model validated at load) and
overrides the hooks it needs. Hooks are called with KEYWORD arguments only, so a hook written as
`def on_odds(self, *, update, **kwargs)` keeps working when the host passes more fields later.
A hook returns the Signals it wants placed (an iterable, one Signal or None), plain or async:

    class MyStrategy(Strategy):
        class Params(StrategyParams):
            max_price: float = 2.0

        def on_odds(self, *, update, **kwargs):
            if update.price and update.price <= self.params.max_price:
                return [self.ctx.signal(update.selection, stake=5, price=update.price,
                                        bookmakers=(update.bookmaker,))]
"""

from __future__ import annotations

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
from bot.types import OddsUpdate, Selection, Side, Signal

if TYPE_CHECKING:
    from loguru import Logger

    from bot.ledger.models import OrderRow
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook

CENT = Decimal("0.01")

HookResult = Iterable[Signal] | Signal | None | Awaitable[Iterable[Signal] | Signal | None]


class StrategyParams(BaseModel):
    """Base of every strategy's `Params`: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Interests:
    """What a strategy wants to see; an empty set means "all". `markets` are market types
    ("moneyline", "spread", "total", ...). The host dispatches only matching OddsUpdates."""

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
        accepted); `expires_in` is a timedelta or seconds from now.
        """
        now = self.clock.now()
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
            bookmakers=tuple(bookmakers),
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
      on_start(), on_odds(update=OddsUpdate), on_order_update(update=OrderUpdate, order=OrderRow|None),
      on_fill(fill=Fill, order=OrderRow|None), on_settlement(settlement=Settlement, order=OrderRow|None),
      on_timer(now=datetime), on_stop().
    Signals returned from order/fill/settlement hooks are handed to the engine on the host's next
    `on_timer` or `on_odds` call.
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

