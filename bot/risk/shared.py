"""Global limits of several instances sharing one PostgreSQL ledger (docs/operations.md,
"Several instances").

Each instance's RiskManager judges its own signals against what it knows (its own orders and the
ledger as last read). That is not enough when several processes bet from one bankroll: two
instances can each see room under a cap that only one of them fits. So on a shared ledger the
intent commit is also the reservation (`Ledger.add_orders`): it runs under one advisory lock all
instances take, reads every instance's open orders and open bets, the trading state and the
day's settled PnL inside that transaction, and `GlobalLimits.refusals` refuses the rows that
would break a limit:

- TRADING_HALTED: the trading state (one record for all instances, `risk` in the ledger's state
  table) is HALTED: a halt from any instance, `bot risk halt` or the API stops all of them;
- LOSS_LIMIT: the day's settled loss of all instances reached `risk.daily_loss_limit`;
- EXPOSURE_SELECTION / EXPOSURE_FIXTURE / EXPOSURE_BOOKMAKER / EXPOSURE_TOTAL: the row's
  worst-case loss on top of everyone's open exposure would pass `risk.max_exposure_*` (a lay's
  is its liability at its orderPrice, the most it can be matched at);
- EXPOSURE_MARKET (with `risk.max_exposure_market`): the row would raise its market's worst case
  over its outcomes, everyone's backs and lays netted (bot/risk/market.py), above the cap.

Exposure is counted as everywhere else (bot/risk/positions.py: open bets plus the unfilled part
of open orders, worst-case loss). The rows of one commit are judged in order, each counting the
ones accepted before it. Refused rows are stored DECLINED with the reason and never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from bot.clock import Clock
from bot.ledger.models import OrderRow
from bot.ledger.store import SharedView
from bot.risk.config import RiskConfig
from bot.risk.control import TradingRecord, TradingState, trading_day
from bot.risk.positions import PositionBook, Scope, worst_case_loss
from bot.risk.reasons import Reason
from bot.types import Side


class GlobalLimits:
    """The `IntentGuard` of a shared ledger (bot/ledger/store.py). Money in the bot currency."""

    def __init__(self, config: RiskConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock

    def day_start(self) -> datetime:
        return trading_day(self._clock.now(), self._config.day_timezone)[1]

    def refusals(self, view: SharedView, rows: Sequence[OrderRow]) -> dict[str, str]:
        """{request_uuid: "global <REASON>: <figures>"} for each row that must not be placed."""
        stop = self._stopped(view)
        if stop is not None:
            return {row.request_uuid: stop for row in rows}
        book = PositionBook.from_rows(view.open_bets, view.bet_orders, view.open_orders)
        refused: dict[str, str] = {}
        for row in rows:
            over = self._over_cap(book, row)
            if over is None:
                book.add_order(row)
            else:
                refused[row.request_uuid] = over
        return refused

    def _stopped(self, view: SharedView) -> str | None:
        record = TradingRecord.from_dict(view.risk_state)
        if record.state is TradingState.HALTED:
            return f"global {Reason.TRADING_HALTED}: {record.reason}"
        day = trading_day(self._clock.now(), self._config.day_timezone)[0]
        baseline = record.day_baseline if record.day == day else Decimal(0)
        loss = baseline - view.day_pnl
        if loss >= self._config.daily_loss_limit:
            return f"global {Reason.LOSS_LIMIT}: day loss {loss} of all instances >= {self._config.daily_loss_limit}"
        return None

    def _over_cap(self, book: PositionBook, row: OrderRow) -> str | None:
        amount = worst_case_loss(Side.BACK if row.back else Side.LAY, row.stake, row.order_price)
        figures = book.figures(Scope.of_order(row))
        caps = (
            (Reason.EXPOSURE_SELECTION, figures.selection, self._config.max_exposure_selection),
            (Reason.EXPOSURE_FIXTURE, figures.fixture, self._config.max_exposure_fixture),
            (Reason.EXPOSURE_BOOKMAKER, figures.bookmaker, self._config.max_exposure_bookmaker),
            (Reason.EXPOSURE_TOTAL, figures.total, self._config.max_exposure_total),
        )
        for reason, held, cap in caps:
            if held + amount > cap:
                return f"global {reason}: {held} held by all instances + {amount} > {cap}"
        market_cap = self._config.max_exposure_market
        if market_cap is not None:  # as EXPOSURE_MARKET judges it (bot/risk/checks.py), over everyone's
            side = Side.BACK if row.back else Side.LAY
            current = book.market_worst_case(row.selection)
            after = book.market_worst_case(row.selection, (side, row.stake, row.order_price))
            if after > max(market_cap, current):
                return (f"global {Reason.EXPOSURE_MARKET}: the market's worst case {current} of all instances "
                        f"-> {after} > {market_cap}")
        return None
