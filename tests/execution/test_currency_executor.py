"""The executor keeps one currency inside risk and PnL (docs/reference/abp.md §11): a bet's
placedStake and settlementAmount are in the bookmaker account's currency (`placedCurrency`); they
are converted into `execution.currency` at the rate of the `currencies` channel, the originals
stay on the ledger rows, and a bet whose rate is unknown is not applied (fail closed)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.clock import ReplayClock
from bot.execution.config import ExecutionConfig, PaperConfig
from bot.execution.executor import Executor
from bot.ledger.store import Ledger
from bot.risk.positions import PositionBook
from bot.sim.paper import PaperVenue
from bot.types import Fill, Settlement, SettlementStatus, VenueAlert, VenueAlertKind
from tests.execution.helpers import KICKOFF, Events, intent
from tests.execution.test_paper import BookQuotes

CFG = ExecutionConfig(reconcile_interval_seconds=0.1)
EUR_RATE = {"currency": "EUR", "currencyValue": 0.8}  # 0.8 EUR per USD: 8.00 EUR = 10 USD


class StreamingPaper(PaperVenue):
    """The paper venue plus what ABP's stream also carries: `push` sends a frame on any channel
    (`currencies`, or a bet row again, as ABP's at-least-once delivery may)."""

    async def push(self, channel: str, event: str, payload: Any) -> None:
        self._emit(channel, event, payload)
        await self.flush()


def setup(tmp_path: Path) -> tuple[StreamingPaper, Ledger, ReplayClock, Events, Executor]:
    clock = ReplayClock(KICKOFF - timedelta(hours=2))
    venue = StreamingPaper(clock, BookQuotes({"betcris": 2.0}), PaperConfig(default_max_stake=100),
                           book_currencies={"betcris": "EUR"}, currencies={"EUR": Decimal("0.8")})
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    events = Events()
    return venue, ledger, clock, events, Executor(venue, ledger, clock, CFG, events)


async def test_eur_bet_is_kept_in_usd_with_the_original_beside_it(tmp_path: Path) -> None:
    # Old behaviour caught: placedStake 8.00 EUR was stored and reported as 8 USD (stake, exposure)
    # and the 16.00 EUR return as 16 USD, so PnL read 8 instead of 10.
    venue, ledger, clock, events, ex = setup(tmp_path)
    await ex.start()
    await venue.push("currencies", "UPDATE", EUR_RATE)
    (u,) = await ex.submit([intent("10", books=("betcris",), now=clock.now())])
    (bet,) = ledger.bets(u)
    assert (bet.placed_stake, bet.placed_currency) == (Decimal(10), "USD")
    assert (bet.venue_stake, bet.venue_currency) == (Decimal("8.00"), "EUR")
    (fill,) = events.of(Fill)
    assert fill.stake == Decimal(10)
    assert PositionBook.from_ledger(ledger).summary().total == Decimal(10)  # risk after a restart
    live = PositionBook()
    live.apply_fill(fill, ledger.get_order)
    assert live.summary().total == Decimal(10)  # risk while running

    venue.settle(bet.bet_id, SettlementStatus.WON)
    await venue.flush()
    (settled,) = events.of(Settlement)
    assert (settled.amount, settled.pnl) == (Decimal(20), Decimal(10))
    (row,) = ledger.settlements()
    assert (row.stake, row.amount, row.pnl, row.currency) == (Decimal(10), Decimal(20), Decimal(10), "USD")
    assert (row.venue_stake, row.venue_amount, row.venue_currency) == (Decimal("8.00"), Decimal("16.00"), "EUR")
    assert ledger.settled_pnl() == Decimal(10)
    (bet,) = ledger.bets(u)
    assert (bet.settlement_amount, bet.venue_amount) == (Decimal(20), Decimal("16.00"))
    await ex.stop(cancel_pending=False)


async def test_bet_without_a_rate_fails_closed_until_the_rate_arrives(tmp_path: Path) -> None:
    # Old behaviour caught: a bet in a currency with no known rate was applied unconverted (EUR
    # counted as USD); here it must not reach the ledger, risk or PnL, and risk is told.
    venue, ledger, clock, events, ex = setup(tmp_path)
    await ex.start()
    (u,) = await ex.submit([intent("10", books=("betcris",), now=clock.now())])
    assert ledger.bets(u) == [] and events.of(Fill) == []
    alerts = events.of(VenueAlert)
    assert alerts and {a.kind for a in alerts} == {VenueAlertKind.MISSING_RATE}
    assert alerts[0].details["currency"] == "EUR" and alerts[0].bookmakers == ("betcris",)
    stored = ledger.events("venue.missing_rate")
    assert stored and stored[0].request_uuid == u and stored[0].payload["raw"]["placedCurrency"] == "EUR"

    await venue.push("currencies", "UPDATE", [EUR_RATE])
    (row,) = venue.bets(order_ids=[ledger.get_order(u).order_id])
    await venue.push("bets", "UPDATE", row)  # the bet again (recovery / at-least-once delivery)
    (bet,) = ledger.bets(u)
    assert (bet.placed_stake, bet.venue_stake, bet.venue_currency) == (Decimal(10), Decimal("8.00"), "EUR")
    (fill,) = events.of(Fill)
    assert fill.stake == Decimal(10)
    await ex.stop(cancel_pending=False)
