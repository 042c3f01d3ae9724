"""The trivial strategy of bench/betfair_vs_flumine.py, loaded as a user's strategy is
(`strategy_dirs: [bench/strategies]`, `path: best_back_every.py:BestBackEvery`).

On every market update (`on_market`: one per market a Betfair message changed) it reads the best
back price (decimal odds) of every runner of the market at `bookmaker`, and every `every`th
update it backs the first runner quoting a usable best back of at least `price`, at `price` for
`stake` (order currency): the same strategy as the flumine one in bench/betfair_loop.py, which
places a 2.00 back LimitOrder on the first ACTIVE runner of an OPEN market offering 2.00 or more.

`BestBackEvery.tally` counts, for the whole process (the benchmark runs one engine per process):
updates (on_market calls), reads (runners read) and signals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from bot.strategy import Strategy, StrategyParams
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Signal


class BestBackEvery(Strategy):
    class Params(StrategyParams):
        every: int = Field(5000, ge=1, description="signal on every Nth market update")
        price: float = Field(2.0, gt=1.0, description="decimal odds to back at")
        stake: Decimal = Field(Decimal(2), gt=0, description="stake per signal, order currency")
        bookmaker: str = Field("betfair-ex", description="the book whose quotes are read")

    tally: ClassVar[dict[str, int]] = {"updates": 0, "reads": 0, "signals": 0}

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, updates: tuple[OddsUpdate, ...],
                  **kwargs: Any) -> Signal | None:
        tally, params = self.tally, self.params
        tally["updates"] += 1
        target = None
        board = self.ctx.book.market(fixture, market, params.bookmaker)
        for outcome, quote in board.items():
            tally["reads"] += 1
            best = quote.price
            if target is None and quote.usable and best is not None and best >= params.price:
                target = outcome
        if target is None or tally["updates"] % params.every:
            return None
        tally["signals"] += 1
        return self.ctx.signal(Selection(fixture, market, target), stake=params.stake, price=params.price,
                               bookmakers=(params.bookmaker,), reason=f"update {tally['updates']}")
