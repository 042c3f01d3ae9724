"""A strategy that floods risk with signals on a few fixtures (tests/engine/test_shared_ledger.py):
on every changed price of the fixtures kicking off in [`kickoff_from`, `kickoff_to`) (UTC),
`per_update` back signals at that book and price: every tenth for `small_stake`, the others for
`stake` plus 0-6. (The test's paper venue takes less than `stake` per book and selection, all or
nothing: the small ones fill, once per book and selection, the others wait and expire, so
exposure comes and goes all through the run.)"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from bot.strategy import Strategy, StrategyParams
from bot.types import OddsUpdate, Signal


class FloodStrategy(Strategy):
    class Params(StrategyParams):
        kickoff_from: datetime
        kickoff_to: datetime
        per_update: int = Field(2, ge=1)
        stake: Decimal = Field(Decimal(20), gt=0)
        small_stake: Decimal = Field(Decimal(10), gt=0)

    def on_start(self, **kwargs: Any) -> None:
        self.count = 0

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        if not self.params.kickoff_from <= update.selection.fixture.start_time < self.params.kickoff_to:
            return []
        if update.price is None or not 1.2 <= update.price <= 10.0:
            return []
        out = []
        for _ in range(self.params.per_update):
            self.count += 1
            # varied stakes, so the caps are met at odd amounts
            stake = self.params.small_stake if self.count % 10 == 0 else self.params.stake + self.count % 7
            out.append(self.ctx.signal(update.selection, stake=stake, price=update.price,
                                       bookmakers=(update.bookmaker,), reason="flood"))
        return out
