"""ABP upkeep jobs over loopback: balances from GET /accounts into the ledger; betslip
keep-alive subscriptions for open orders, answered on the WebSocket `betslip` channel
(docs/reference/abp.md §6.6, §13.6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.execution.abp_venue import AbpVenue
from bot.execution.config import AbpConfig
from bot.execution.models import AccountCreate
from bot.execution.upkeep import AbpUpkeep
from bot.ledger.models import OrderRow
from bot.ledger.store import Ledger
from bot.sim.abp_server import LocalAbpServer


async def test_balances_refresh_and_betslip_keepalive(tmp_path: Path) -> None:
    server = LocalAbpServer(api_key="k")
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
