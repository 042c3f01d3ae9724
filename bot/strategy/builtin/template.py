"""The smallest working strategy (the one the docs walk through).

Backs a selection at the bookmaker that offers it whenever its decimal price is at least
`min_price`. Copy this file into a directory listed in `strategy_dirs` and name it in config.yaml:

    strategy_dirs: [my_strategies]
    strategies:
      - name: longshots
        path: template.py:TemplateStrategy      # or my_module:MyStrategy, or the entry point `template`
        params: {min_price: 3.0, stake: 5}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from bot.strategy import Strategy, StrategyParams
from bot.types import OddsUpdate, Signal


class TemplateStrategy(Strategy):
    class Params(StrategyParams):
        min_price: float = Field(3.0, gt=1.0, description="decimal odds at or above which to back")
        stake: Decimal = Field(Decimal(5), gt=0, description="stake per signal, order currency")

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        if update.price is None or update.price < self.params.min_price:
            return []
        signal = self.ctx.signal(
            update.selection,
            stake=self.params.stake,
            price=update.price,
            bookmakers=(update.bookmaker,),
            reason=f"price {update.price} >= {self.params.min_price}",
        )
        return [signal]
