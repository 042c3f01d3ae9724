"""Periodic ABP upkeep the engine schedules in live mode:

- balances: `GET /accounts` -> a balance row per account in the ledger (docs/reference/abp.md §6.6);
- betslip keep-alive: every open order that targets named bookmakers keeps a betslip
  subscription alive (`subscribe_betslip`, docs/reference/abp.md §13.6), so the stream carries the
  live odds and limits of selections with pending intent. At most 20 subscriptions per client.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from bot.ledger.store import Ledger

MAX_BETSLIP_SUBSCRIPTIONS = 20
BETSLIP_TTL_SECONDS = 120
log = logger.bind(stage="upkeep")


class AbpUpkeep:
    """`jobs()` lists (name, interval, coroutine function) for `bot.engine.jobs.Jobs`."""

    def __init__(self, venue: Any, ledger: Ledger) -> None:
        self._venue = venue  # AbpVenue: .client (AbpClient), .stream (AbpStream | None)
        self._ledger = ledger

    def jobs(self) -> list[tuple[str, timedelta, Any]]:
        return [
            ("balances_refresh", timedelta(minutes=5), self.refresh_balances),
            ("betslip_keepalive", timedelta(seconds=BETSLIP_TTL_SECONDS // 2), self.keep_betslips),
        ]

    async def refresh_balances(self) -> None:
        for account in await self._venue.client.list_accounts():
            if account.balance is None:
                continue
            self._ledger.record_balance(account.bookmaker, Decimal(account.balance),
                                        account.currency_id or "USD", account.username)

    async def keep_betslips(self) -> int:
        """Refresh the subscriptions; returns how many were sent."""
        stream = self._venue.stream
        if stream is None:
            return 0
        wanted: dict[tuple[str, int, int], set[str]] = {}
        for order in self._ledger.open_orders():
            books = {b for b in order.bookmakers.split(",") if b and b != "*"}
            if order.fixture_id is None or order.outcome_id is None or not books:
                continue
            wanted.setdefault((order.fixture_id, order.outcome_id, order.player_id), set()).update(books)
        if len(wanted) > MAX_BETSLIP_SUBSCRIPTIONS:
            log.warning("{} selections pending, betslip subscriptions capped at {}", len(wanted),
                        MAX_BETSLIP_SUBSCRIPTIONS)
        sent = 0
        for (fixture_id, outcome_id, player_id), books in list(wanted.items())[:MAX_BETSLIP_SUBSCRIPTIONS]:
            await stream.subscribe_betslip(fixture_id, outcome_id, player_id, sorted(books), ttl=BETSLIP_TTL_SECONDS)
            sent += 1
        return sent
