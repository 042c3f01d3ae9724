"""ABP upkeep jobs over loopback: balances from GET /accounts into the ledger; betslip
keep-alive subscriptions for open orders, answered on the WebSocket `betslip` channel; exchange
rates from the accounts' `currencyInfo`; the cross-check of GET /positions and GET /pnl with the
ledger (docs/reference/abp.md §6.6, §6.8, §11, §13.6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.clock import WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import AbpConfig, ExecutionConfig
from bot.execution.currency import CurrencyRates
from bot.execution.executor import Executor
from bot.execution.models import AccountCreate
from bot.execution.upkeep import AbpUpkeep
from bot.ledger.models import OrderRow
from bot.ledger.store import Ledger
from bot.sim.abp_server import LocalAbpServer
from bot.types import SettlementStatus, VenueAlert, VenueAlertKind
from tests.execution.conftest import abp_config
from tests.execution.helpers import Events, eventually, intent
from tests.execution.test_paper import order


async def test_balances_refresh_and_betslip_keepalive(tmp_path: Path) -> None:
    server = LocalAbpServer(api_key="k", accounts=[])  # only the account the test creates
    base = await server.start()
    ledger = Ledger(tmp_path / "bot.db")
    venue = AbpVenue(AbpConfig(base_url=base, ws_url=base.replace("http", "ws") + "/ws", api_key="k",
                               requests_per_second=500), ledger)
    messages = []

    async def on_message(msg) -> None:
        messages.append(msg)

    try:
        await venue.client.create_account(AccountCreate(bookmaker="pinnacle", username="alice", balance=Decimal("250.5")))
        await venue.connect(on_message)
        upkeep = AbpUpkeep(venue, ledger)
        await upkeep.refresh_balances()
        [balance] = ledger.balances()
        assert (balance.bookmaker, balance.username, balance.balance) == ("pinnacle", "alice", Decimal("250.5"))

        now = datetime.now(UTC)
        common = {"signal_id": "s", "strategy": "v", "selection": "x", "order_price": 2.0, "stake": Decimal(5),
                  "status": "PENDING", "created_at": now, "updated_at": now}
        ledger.add_orders([
            OrderRow(request_uuid="u1", fixture_id="id1400003190000003", outcome_id=14100,
                     bookmakers="pinnacle", **common),
            OrderRow(request_uuid="u2", fixture_id="id1400003190000003", outcome_id=14101,
                     bookmakers="", **common),  # any bookmaker: ABP routes it, nothing to watch
            OrderRow(request_uuid="u3", fixture_id=None, outcome_id=None, bookmakers="pinnacle",
                     **{**common, "status": "FILLED"}),
        ])
        assert await upkeep.keep_betslips() == 1
        async with asyncio.timeout(5):
            while not any(m.channel == "betslip" for m in messages):
                await asyncio.sleep(0.02)
        [slip] = [m for m in messages if m.channel == "betslip"]
        assert (slip.payload["fixtureId"], slip.payload["outcomeId"]) == ("id1400003190000003", 14100)
        assert list(slip.payload["odds"]) == ["pinnacle"]
    finally:
        await venue.close()
        ledger.close()
        await server.stop()


async def test_rates_from_accounts_and_cross_check_per_book_in_its_currency(tmp_path: Path) -> None:
    # Old behaviour caught: GET /accounts gave no rates; nothing compared ABP's positions and PnL
    # with the ledger; and comparing the ledger's USD figures with ABP's unconverted sums would
    # flag betcris (ABP: 8.00 EUR, ledger: 10 USD) although both agree.
    server = LocalAbpServer(api_key="local-test-key", book_currencies={"betcris": "EUR"}, rates={"EUR": 0.8})
    server.base_url = await server.start()
    ledger = Ledger(tmp_path / "bot.db")
    venue = AbpVenue(abp_config(server, emergency_wait_seconds=0), ledger)  # no emergency frame: clear at once
    rates = CurrencyRates("USD")
    alerts: list[VenueAlert] = []

    async def on_alert(alert: VenueAlert) -> None:
        alerts.append(alert)

    upkeep = AbpUpkeep(venue, ledger, rates=rates, on_alert=on_alert)
    ex = Executor(venue, ledger, WallClock(), ExecutionConfig(reconcile_interval_seconds=0.1), Events(), rates=rates)
    try:
        await upkeep.refresh_balances()  # before the stream connects: the rate comes from currencyInfo
        assert rates.rate("EUR") == Decimal("0.8")
        assert "cross_check" in [name for name, *_ in upkeep.jobs()]
        await ex.start()
        await ex.submit([intent("10", books=("betcris",)), intent("5", books=("pinnacle",))])
        await eventually(lambda: len(ledger.bets()) == 2, timeout=4)
        eur, usd = sorted(ledger.bets(), key=lambda b: b.bookmaker)
        assert (eur.placed_stake, eur.venue_stake, eur.venue_currency) == (Decimal(10), Decimal("8.00"), "EUR")
        server.venue.settle(usd.bet_id, SettlementStatus.WON)
        await eventually(lambda: len(ledger.settlements()) == 1, timeout=4)

        assert await upkeep.cross_check() == []  # betcris 8.00 EUR open, pinnacle +5 USD settled
        assert alerts == [] and ledger.events("venue.mismatch") == []

        # a bet the ledger never got (another client on the key, a lost message): ABP counts it
        status, _ = server.venue.place({"orders": [order("5", bookmakers="betcris")]})
        assert status == 200
        (mismatch,) = await upkeep.cross_check()
        figures = {k: Decimal(mismatch[k]) for k in ("venue", "ledger", "difference", "ledger_in_bot_currency")}
        assert figures == {"venue": 12, "ledger": 8, "difference": 4, "ledger_in_bot_currency": 10}
        assert (mismatch["figure"], mismatch["bookmaker"], mismatch["currency"]) == ("open_stake", "betcris", "EUR")
        (stored,) = ledger.events("venue.mismatch")
        assert stored.payload == mismatch
        (alert,) = alerts
        assert (alert.kind, alert.bookmakers, alert.details) == (VenueAlertKind.MISMATCH, ("betcris",), mismatch)
    finally:
        await ex.stop(cancel_pending=False)
        ledger.close()
        await server.stop()
