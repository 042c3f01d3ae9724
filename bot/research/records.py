"""One bet as the research loop sees it: what was backed, at what price, how it settled, and
how its price compared with the close (docs/research.md, "Closing line value")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class BetRecord:
    """A bet (fill) with its settlement and closing line.

    Money (`stake`, `pnl`) is `Decimal` in the ledger currency; `price` and `closing_price` are
    decimal odds; times are UTC. `market` is the market type ("moneyline", "1x2", "spread",
    "total", ...); `selection` is `Selection.key`. `status` is the settlement status
    (bot.types.SettlementStatus: WON, LOST, VOID, HALF_WON, HALF_LOST, PUSH, or UNSETTLED);
    `pnl` is None while unsettled. `closing_probability` is the reference's no-vig fair
    probability of the selection at close, and `clv` the expected value per unit stake at that
    probability (a back: price x closing_probability - 1; a lay: 1 - price x closing_probability;
    bot/market/closing.py), both None when no close was captured (e.g. the data ends before
    kickoff)."""

    bet_id: int
    strategy: str
    bookmaker: str
    sport: str
    market: str
    selection: str
    placed_at: datetime
    start_time: datetime | None
    price: float
    stake: Decimal
    status: str
    pnl: Decimal | None
    settled_at: datetime | None
    closing_price: float | None = None
    closing_probability: float | None = None
    clv: float | None = None
    side: str = "back"

    @property
    def settled(self) -> bool:
        return self.pnl is not None
