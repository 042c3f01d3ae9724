"""Cross-book arbitrage (surebets) in 2- and 3-way markets (docs/architecture.md, "Strategies";
odds maths in bot/market/odds.py).

For each market the best usable price of every outcome across `bookmakers` (empty = all) is
taken; when sum(1 / best_i) = S < 1 the book is beatable and margin = 1/S - 1 is the guaranteed
return. Above `min_margin`, one leg per outcome is signalled with stake_i = total_stake x
(1/best_i) / S, so every outcome pays total_stake / S. All legs share `Signal.group`: the risk
manager approves all legs or none.

No (selection, bookmaker, price) is signalled twice, across restarts too: `on_start` reads the
legs of this strategy's orders from the ledger. Legs are all or none, so an arb with any leg
already held at its price is not signalled at all (a new price on a leg makes a new arb).

Each changed market is evaluated once on the complete new board: `on_market` for a snapshot or
batch, `on_odds` for a single update (docs/architecture.md, Pipeline and Strategies).
"""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import Field

from bot.strategy.api import Interests, Strategy, StrategyParams
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Signal

CENT = Decimal("0.01")


class ArbitrageStrategy(Strategy):
    class Params(StrategyParams):
        min_margin: float = Field(0.005, ge=0, lt=1, description="minimum guaranteed return (0.005 = 0.5%)")
        total_stake: Decimal = Field(Decimal(100), gt=0, description="sum of all legs' stakes")
        bookmakers: list[str] = Field([], description="books to use; empty = all")
        sports: list[str] = Field([], description="sports to watch; empty = all")
        markets: list[str] = Field(["moneyline", "spread", "total"], description="market types to watch")
        max_price: float = Field(50.0, gt=1.0, description="prices above this are not used as legs")
        expiry_seconds: float = Field(10.0, gt=0, description="each leg's signal expires after this")

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._held: set[tuple[str, str, float]] = set()  # (Selection.key, bookmaker, price) signalled

    def on_start(self, **kwargs: Any) -> None:
        """Seed the legs already signalled from this strategy's orders in the ledger
        (`order_price` is the leg's price, as `min_price` defaults to it)."""
        for order in self.ctx.orders():
            for bookmaker in filter(None, order.bookmakers.split(",")):
                self._held.add((order.selection, bookmaker, order.order_price))

    def interests(self) -> Interests:
        return Interests(
            sports=frozenset(self.params.sports),
            bookmakers=frozenset(self.params.bookmakers),
            markets=frozenset(self.params.markets),
        )

    def _best(self, fixture: FixtureKey, market: MarketKey) -> dict[str, tuple[str, float]] | None:
        """outcome -> (bookmaker, best usable price); None unless every outcome is priced."""
        wanted = set(self.params.bookmakers)
        outcomes: set[str] = set()
        best: dict[str, tuple[str, float]] = {}
        for book in self.ctx.book.bookmakers(fixture, market):
            if wanted and book not in wanted:
                continue
            for outcome, quote in self.ctx.book.market(fixture, market, book).items():
                outcomes.add(outcome)
                price = quote.price if quote.usable else None
                if price is not None and price <= self.params.max_price and (
                    outcome not in best or price > best[outcome][1]
                ):
                    best[outcome] = (book, price)
        if len(outcomes) not in (2, 3) or set(best) != outcomes:
            return None
        return best

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        return self._evaluate(update.selection.fixture, update.selection.market)

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, **kwargs: Any) -> list[Signal]:
        return self._evaluate(fixture, market)

    def _evaluate(self, fixture: FixtureKey, market: MarketKey) -> list[Signal]:
        """The arb of one market on the current board, when its margin is enough and none of
        its legs is held already."""
        best = self._best(fixture, market)
        if best is None:
            return []
        inverse = sum(1.0 / price for _, price in best.values())
        margin = 1.0 / inverse - 1.0
        if margin < self.params.min_margin:
            return []
        legs = tuple(sorted((o, b, price) for o, (b, price) in best.items()))
        keys = [(Selection(fixture, market, o).key, b, price) for o, b, price in legs]
        if any(k in self._held for k in keys):
            return []
        self._held.update(keys)
        group = uuid.uuid4().hex
        total = self.params.total_stake
        out = []
        for outcome, book, price in legs:
            share = Decimal(str((1.0 / price) / inverse))
            out.append(
                self.ctx.signal(
                    Selection(fixture, market, outcome),
                    stake=(total * share).quantize(CENT, rounding=ROUND_DOWN),
                    price=price,
                    bookmakers=(book,),
                    edge=margin,
                    expires_in=self.params.expiry_seconds,
                    group=group,
                    reason=f"arbitrage {len(legs)}-way: margin {margin:.2%}, payout {total / Decimal(str(inverse)):.2f}",
                )
            )
        return out
