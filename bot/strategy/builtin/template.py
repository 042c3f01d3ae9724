"""The smallest working strategy (docs/architecture.md, "Strategies"): backs a selection at the
bookmaker that offers it whenever its decimal price is at least `min_price`.

`bot strategy new NAME` writes a copy of this file, renamed, as the start of a user strategy;
the entry point `template` runs it as it is:

    strategies:
      - name: longshots
        path: template
        params: {min_price: 3.0, stake: 5}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

# The plug-in API: everything a strategy needs comes from bot.strategy.
from bot.strategy import Strategy, StrategyParams
from bot.types import OddsUpdate, Signal


class TemplateStrategy(Strategy):
    # Params are validated when the bot starts (a wrong type or an unknown key stops it with one
    # line naming the field) and can be changed while it runs by the MQTT `reload` command.
    # `bot strategy list` shows each field with its default and description.
    class Params(StrategyParams):
        min_price: float = Field(3.0, gt=1.0, description="decimal odds at or above which to back")
        stake: Decimal = Field(Decimal(5), gt=0, description="stake per signal, order currency")
        # Optional filters read by the default `interests()`: only matching odds reach the hooks.
        sports: list[str] = Field([], description="sports to watch, e.g. [NFL]; empty = all")
        bookmakers: list[str] = Field([], description="books to watch; empty = all")
        markets: list[str] = Field([], description="market types (moneyline, spread, total); empty = all")

    # Every hook takes keyword arguments only (keep **kwargs: later versions may pass more) and
    # returns the Signals to place: a list, one Signal or None. Hooks may be `async def`.
    # on_odds sees each changed price once the book holds the whole snapshot or batch it came in;
    # override on_market(fixture, market, updates) instead to evaluate each changed market once.
    # Other hooks: on_start(), on_timer(now), on_order_update(update, order), on_fill(fill, order),
    # on_settlement(settlement, order), on_stop(). `self.ctx` gives the odds book (ctx.book),
    # this strategy's orders, positions and exposure, the clock (ctx.now()) and a logger (ctx.log).
    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        if update.price is None or update.price < self.params.min_price:
            return []
        # ctx.last_price remembers what this strategy signalled, in this run and earlier ones on
        # the same ledger: skipping an unchanged price means a restart never bets it again.
        if self.ctx.last_price(update.selection, update.bookmaker) == update.price:
            return []
        # ctx.signal stamps the strategy name and the clock; risk then approves, resizes or
        # rejects it before anything is placed.
        signal = self.ctx.signal(
            update.selection,
            stake=self.params.stake,
            price=update.price,
            bookmakers=(update.bookmaker,),
            reason=f"price {update.price} >= {self.params.min_price}",
        )
        return [signal]
